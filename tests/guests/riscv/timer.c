/*
 * timer: CLINT machine-timer interrupts. The handler re-arms mtimecmp
 * 1 ms (10000 ticks of the 10 MHz timebase) later and counts ticks; main
 * sleeps in wfi and prints "tick N" for N = 1..5 as the count advances.
 * The output contains no time values, so it does not depend on speed.
 */
#include <stdint.h>
#include "platform.h"
#include "riscv.h"
#include "uart.h"

#define TICK_INTERVAL 10000u   /* 1 ms at 10 MHz */
#define NTICKS 5

static volatile unsigned long ticks;
static uint64_t next_cmp;

unsigned long trap_handler(unsigned long mcause, unsigned long mepc,
                           unsigned long mtval)
{
    if (mcause == (MCAUSE_INTERRUPT | IRQ_M_TIMER)) {
        next_cmp += TICK_INTERVAL;
        clint_write_mtimecmp(next_cmp);
        ticks = ticks + 1;
        return mepc;
    }
    unexpected_trap("timer: ", mcause, mepc, mtval);
}

int main(unsigned long hartid, void *fdt)
{
    unsigned long printed = 0;

    (void)hartid;
    (void)fdt;

    install_trap_handler();
    next_cmp = clint_read_mtime() + TICK_INTERVAL;
    clint_write_mtimecmp(next_cmp);
    csr_set(mie, MIE_MTIE);
    csr_set(mstatus, MSTATUS_MIE);

    while (printed < NTICKS) {
        wfi();
        while (printed < NTICKS && printed < ticks) {
            printed++;
            uart_puts("tick ");
            uart_putdec(printed);
            uart_putc('\n');
        }
    }

    csr_clear(mstatus, MSTATUS_MIE);
    csr_clear(mie, MIE_MTIE);
    uart_puts("timer done\n");
    return 0;
}
