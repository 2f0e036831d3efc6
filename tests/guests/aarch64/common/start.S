/*
 * Entry point and exception vectors for chronicorn bare-metal AArch64 test
 * guests.
 *
 * Boot contract (QEMU 7.2 virt, -cpu cortex-a72, -kernel guest.elf, no
 * EL2/EL3): the CPU starts at the ELF entry (_start = 0x40080000) in EL1h
 * with DAIF all masked, the MMU and caches off and x0 = 0. (An ELF is not
 * booted as a Linux kernel: no boot stub, no DTB pointer in x0, although
 * QEMU still puts the DTB at 0x40000000.)
 */
#define STACK_SIZE 16384
#define FRAME_SIZE 272          /* struct exc_frame in exc.h: 34 * 8 */

    .section .text.init, "ax", %progbits
    .globl _start
    .type _start, %function
_start:
    mov     x19, x0                     /* keep x0 for main */
    msr     daifset, #0xf
    adrp    x1, exception_vectors
    add     x1, x1, :lo12:exception_vectors
    msr     vbar_el1, x1
    isb

    adrp    x1, __stack_top
    add     x1, x1, :lo12:__stack_top
    mov     sp, x1

    /* Zero .bss (start/end are 16-byte aligned by the linker script). */
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:
    bl      uart_init
    mov     x0, x19
    bl      main                        /* main(x0 at entry) */
    bl      guest_exit                  /* PSCI SYSTEM_OFF, does not return */
3:  wfi
    b       3b
    .size _start, . - _start

/*
 * The vector table: 16 entries of 0x80 bytes, 2 KiB aligned. Every entry
 * saves x0/x1, puts its number in x1 and branches to exc_common.
 */
.macro VENTRY num
    .balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x1, #\num
    b       exc_common
.endm

    .section .text.vectors, "ax", %progbits
    .balign 0x800
    .globl exception_vectors
exception_vectors:
    VENTRY  0       /* current EL, SP0: sync */
    VENTRY  1       /*                  IRQ */
    VENTRY  2       /*                  FIQ */
    VENTRY  3       /*                  SError */
    VENTRY  4       /* current EL, SPx: sync */
    VENTRY  5       /*                  IRQ */
    VENTRY  6       /*                  FIQ */
    VENTRY  7       /*                  SError */
    VENTRY  8       /* lower EL, AArch64 */
    VENTRY  9
    VENTRY  10
    VENTRY  11
    VENTRY  12      /* lower EL, AArch32 */
    VENTRY  13
    VENTRY  14
    VENTRY  15

    .balign 0x80
    .type exc_common, %function
exc_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el1
    mrs     x3, spsr_el1
    stp     x30, x2, [sp, #240]
    str     x3, [sp, #256]

    mov     x0, sp                      /* exception_dispatch(frame, vector) */
    bl      exception_dispatch

    ldr     x3, [sp, #256]
    ldp     x30, x2, [sp, #240]
    msr     elr_el1, x2
    msr     spsr_el1, x3
    ldp     x28, x29, [sp, #224]
    ldp     x26, x27, [sp, #208]
    ldp     x24, x25, [sp, #192]
    ldp     x22, x23, [sp, #176]
    ldp     x20, x21, [sp, #160]
    ldp     x18, x19, [sp, #144]
    ldp     x16, x17, [sp, #128]
    ldp     x14, x15, [sp, #112]
    ldp     x12, x13, [sp, #96]
    ldp     x10, x11, [sp, #80]
    ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #FRAME_SIZE
    eret
    .size exc_common, . - exc_common

    .section .bss.stack, "aw", %nobits
    .balign 16
    .globl __stack_bottom
__stack_bottom:
    .space  STACK_SIZE
    .globl __stack_top
__stack_top:
