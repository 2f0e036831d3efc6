/*
 * isrbug: an off-by-one in an interrupt handler (a bug for `chronicorn locate`).
 *
 * The timer interrupt stores one sample of mtime per tick into an 8-entry
 * buffer. Its bound check says `<=` where it means `<`, so the ninth tick
 * writes one element past the buffer, over the guard word behind it. main
 * waits a few more ticks, checks the guard, and exits with code 7.
 */
#include <stdint.h>
#include "platform.h"
#include "riscv.h"
#include "uart.h"

#define TICK_INTERVAL (CLINT_TIMEBASE_HZ / 1000u)
#define NSAMPLES 8u
#define GUARD 0x600dcafeu

static struct {
    uint32_t samples[NSAMPLES];
    uint32_t guard;
} capture = { {0}, GUARD };

static volatile unsigned count;
static volatile unsigned long ticks;
static uint64_t next_cmp;

unsigned long trap_handler(unsigned long mcause, unsigned long mepc, unsigned long mtval)
{
    if (mcause == (MCAUSE_INTERRUPT | IRQ_M_TIMER)) {
        ticks = ticks + 1;
        if (count <= NSAMPLES)    /* BUG: should be < */
            capture.samples[count++] = (uint32_t)clint_read_mtime();
        next_cmp += TICK_INTERVAL;
        clint_write_mtimecmp(next_cmp);
        return mepc;
    }
    unexpected_trap("isrbug: ", mcause, mepc, mtval);
}

int main(unsigned long hartid, void *fdt)
{
    (void)hartid;
    (void)fdt;
    install_trap_handler();
    next_cmp = clint_read_mtime() + TICK_INTERVAL;
    clint_write_mtimecmp(next_cmp);
    csr_set(mie, MIE_MTIE);
    csr_set(mstatus, MSTATUS_MIE);

    while (ticks < 12)
        wfi();
    uart_puts("captured ");
    uart_putdec(count);
    uart_puts(" samples\n");
    if (capture.guard != GUARD) {
        uart_puts("CHECK FAILED: guard is 0x");
        uart_puthex(capture.guard);
        uart_putc('\n');
        guest_exit(7);
    }
    uart_puts("isrbug ok\n");
    return 0;
}
