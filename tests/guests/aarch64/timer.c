/*
 * timer: EL1 virtual-timer interrupts (PPI 27) through the GICv2.
 *
 * The timer is armed with CNTV_TVAL_EL0 = CNTFRQ_EL0 / 1000 (1 ms). The IRQ
 * handler acknowledges with GICC_IAR, counts the tick, re-arms the timer
 * (writing TVAL clears the condition, so the level-sensitive PPI drops) or,
 * after the fifth tick, disables it, and ends with GICC_EOIR. main sleeps in
 * wfi and prints "tick N" for N = 1..5 as the count goes up (every N is
 * printed even if several ticks arrive during one wakeup), then "timer
 * done". No time values are printed, so the output does not depend on
 * emulation speed.
 */
#include <stdint.h>
#include "arm.h"
#include "exc.h"
#include "gic.h"
#include "runtime.h"
#include "timer.h"
#include "uart.h"

#define NTICKS 5

static volatile unsigned ticks;
static uint32_t interval;

void irq_handler(struct exc_frame *f)
{
    uint32_t iar = gic_ack();
    unsigned intid = iar & 0x3ff;

    if (intid == INTID_VTIMER) {
        ticks = ticks + 1;
        if (ticks < NTICKS)
            vtimer_arm(interval);
        else
            vtimer_stop();
    } else if (intid != GIC_SPURIOUS) {
        uart_puts("timer: unexpected interrupt ");
        print_dec(intid);
        uart_putc('\n');
        guest_exit(2);
    }
    if (intid != GIC_SPURIOUS)
        gic_eoi(iar);
    (void)f;
}

int main(void)
{
    unsigned printed = 0;

    interval = (uint32_t)(timer_freq() / 1000);

    gic_init();
    gic_enable_irq(INTID_VTIMER, 0xa0);
    vtimer_arm(interval);
    irq_enable();

    while (printed < NTICKS) {
        irq_disable();
        if (ticks == printed)
            wfi();              /* wakes on a pending IRQ even while masked */
        irq_enable();           /* the IRQ is taken here */
        while (printed < NTICKS && printed < ticks) {
            printed++;
            uart_puts("tick ");
            print_dec(printed);
            uart_putc('\n');
        }
    }

    irq_disable();
    gic_disable_irq(INTID_VTIMER);
    uart_puts("timer done\n");
    return 0;
}
