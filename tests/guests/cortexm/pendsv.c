/*
 * pendsv: a PendSV context switch between two tasks, each on its own
 * process stack (PSP), unprivileged (CONTROL = nPRIV | SPSEL = 3).
 *
 * main (privileged, MSP) builds each task's initial stack: an exception
 * frame (r0 = the task's argument, lr = task_exit, pc = the entry point,
 * xpsr = T) under eight words for r4-r11, sets PendSV to the lowest
 * priority and starts task A with `svc 0` (pendsv_switch.S). A task gives
 * the CPU away with `svc 1` (yield): svc_handler sets ICSR.PENDSVSET and
 * PendSV, tail-chained after the SVC, switches to the other task. When a
 * task returns, task_exit does `svc 2`; when both are done, the SVC handler
 * prints the summary and exits 0 (semihosting works only privileged, and
 * Handler mode is).
 *
 * Output: "A start control=3", "A 1", "B start control=3", "B 1", "A 2",
 * ..., "B 5", then each task's result (a value kept in registers across
 * every switch), "pendsv done: switches 11".
 */
#include <stdint.h>
#include "platform.h"
#include "uart.h"

#define ROUNDS      5u
#define STACK_WORDS 512u    /* 2 KiB per task */
#define NTASKS      2u

static uint32_t stack_a[STACK_WORDS] __attribute__((aligned(8)));
static uint32_t stack_b[STACK_WORDS] __attribute__((aligned(8)));

/* Used by pendsv_switch.S. */
uint32_t task_sp[NTASKS];   /* saved PSP of each task that is not running */
uint32_t current;           /* index of the running task */

static uint32_t done_mask;
static uint32_t switches;
static uint32_t results[NTASKS];

static void yield(void)
{
    __asm__ volatile ("svc 1" ::: "memory");
}

static void task_exit(void)
{
    __asm__ volatile ("svc 2" ::: "memory");
    for (;;)
        ;
}

static void print_line(char name, const char *what, uint32_t v)
{
    uart_putc(name);
    uart_putc(' ');
    uart_puts(what);
    uart_putdec(v);
    uart_putc('\n');
}

/* The body of both tasks; `acc` lives in a callee-saved register across
 * each yield, so a switch that lost r4-r11 would show in the result. */
static void task(uint32_t index, char name)
{
    uint32_t acc = 0x811c9dc5u ^ name;

    print_line(name, "start control=", read_control());
    for (uint32_t i = 1; i <= ROUNDS; i++) {
        print_line(name, "", i);
        acc = (acc ^ (name + i)) * 16777619u;
        yield();
        acc = (acc << 5) | (acc >> 27);
    }
    results[index] = acc;
}

static void task_a(void *arg) { task((uint32_t)(uintptr_t)arg, 'A'); }
static void task_b(void *arg) { task((uint32_t)(uintptr_t)arg, 'B'); }

static void task_init(uint32_t index, uint32_t *stack, void (*entry)(void *))
{
    uint32_t *sp = stack + STACK_WORDS;

    *--sp = 0x01000000u;                             /* xPSR: Thumb */
    *--sp = (uint32_t)(uintptr_t)entry & ~1u;        /* pc */
    *--sp = (uint32_t)(uintptr_t)task_exit;          /* lr */
    *--sp = 0x12121212u;                             /* r12 */
    *--sp = 0x03030303u;                             /* r3 */
    *--sp = 0x02020202u;                             /* r2 */
    *--sp = 0x01010101u;                             /* r1 */
    *--sp = index;                                   /* r0: the argument */
    for (uint32_t r = 11; r >= 4; r--)               /* r11 .. r4 */
        *--sp = r * 0x01010101u;
    task_sp[index] = (uint32_t)(uintptr_t)sp;
}

/* Called by PendSV_Handler with the running task's saved sp; returns the
 * sp of the task to run next (the other one, unless it has finished). */
uint32_t pendsv_switch(uint32_t sp)
{
    uint32_t next = current ^ 1u;

    task_sp[current] = sp;
    if (done_mask & (1u << next))
        next = current;
    if (next != current)
        switches++;
    current = next;
    return task_sp[current];
}

/* Called by SVC_Handler for every number but 0 (frame: r0-r3, r12, lr,
 * pc, xpsr of the caller). */
void svc_handler(uint32_t number, uint32_t *frame)
{
    (void)frame;
    switch (number) {
    case 1:                           /* yield */
        MMIO32(SCB_ICSR) = ICSR_PENDSVSET;
        break;
    case 2:                           /* the running task has returned */
        done_mask |= 1u << current;
        if (done_mask == (1u << NTASKS) - 1u) {
            uart_puts("A result 0x");
            uart_puthex8(results[0]);
            uart_puts("\nB result 0x");
            uart_puthex8(results[1]);
            uart_puts("\npendsv done: switches ");
            uart_putdec(switches);
            uart_putc('\n');
            guest_exit(0);
        }
        MMIO32(SCB_ICSR) = ICSR_PENDSVSET;
        break;
    default:
        uart_puts("unexpected svc ");
        uart_putdec(number);
        uart_putc('\n');
        guest_exit(1);
    }
}

int main(void)
{
    task_init(0, stack_a, task_a);
    task_init(1, stack_b, task_b);
    current = 0;

    /* SVCall priority 0 (the highest), PendSV and SysTick 0xff (the lowest). */
    MMIO32(SCB_SHPR2) = 0;
    MMIO32(SCB_SHPR3) = 0xffff0000u;

    uart_puts("pendsv start control=");
    uart_putdec(read_control());
    uart_putc('\n');
    __asm__ volatile ("svc 0" ::: "memory");

    uart_puts("not reached\n");
    return 1;
}
