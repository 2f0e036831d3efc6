/*
 * pendsv: the exception handlers of the context switch (see pendsv.c).
 *
 * A task's saved context is its PSP, pointing at r4-r11 (pushed by
 * PendSV_Handler, lowest address r4) on top of the exception frame the
 * core stacked on entry (r0-r3, r12, lr, pc, xpsr).
 */
    .syntax unified
    .thumb
    .text

/*
 * SVC: the number is the low byte of the 16-bit SVC instruction before the
 * stacked PC, the frame on MSP or PSP as EXC_RETURN bit 2 says.
 * svc 0 (from main, privileged, on MSP) starts the first task: its r4-r11
 * are popped from its initial stack, PSP set past them, CONTROL.nPRIV set,
 * and the exception returns with EXC_RETURN 0xFFFFFFFD (Thread mode, PSP),
 * which pops the task's initial exception frame. Every other number goes
 * to svc_handler(number, frame) in C.
 */
    .globl  SVC_Handler
    .type   SVC_Handler, %function
    .thumb_func
SVC_Handler:
    tst     lr, #4
    ite     eq
    mrseq   r1, msp
    mrsne   r1, psp
    ldr     r0, [r1, #24]           /* stacked PC: after the svc */
    ldrb    r0, [r0, #-2]           /* its immediate */
    cbz     r0, .Lstart_first_task
    push    {r4, lr}                /* keep EXC_RETURN (and 8-byte alignment) */
    bl      svc_handler
    pop     {r4, pc}                /* exception return */

.Lstart_first_task:
    ldr     r0, =current
    ldr     r0, [r0]
    ldr     r1, =task_sp
    ldr     r0, [r1, r0, lsl #2]
    ldmia   r0!, {r4-r11}
    msr     psp, r0
    movs    r0, #1                  /* CONTROL.nPRIV: the tasks run unprivileged */
    msr     control, r0
    isb
    ldr     lr, =0xFFFFFFFD         /* Thread mode, PSP, basic frame */
    bx      lr
    .pool
    .size   SVC_Handler, . - SVC_Handler

/*
 * PendSV (lowest priority): save r4-r11 of the running task on its PSP
 * stack, let pendsv_switch(sp) record that and choose the next task,
 * restore the next task's r4-r11 and return to it on its PSP. Only taken
 * from a task (Thread mode, PSP): EXC_RETURN is 0xFFFFFFFD already.
 */
    .globl  PendSV_Handler
    .type   PendSV_Handler, %function
    .thumb_func
PendSV_Handler:
    mrs     r0, psp
    stmdb   r0!, {r4-r11}
    push    {r3, lr}
    bl      pendsv_switch           /* r0: old sp in, new sp out */
    pop     {r3, lr}
    ldmia   r0!, {r4-r11}
    msr     psp, r0
    bx      lr
    .size   PendSV_Handler, . - PendSV_Handler
