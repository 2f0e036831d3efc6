/*
 * systick: SysTick interrupts from the processor clock (CSR.CLKSOURCE = 1,
 * 25 MHz on mps2-an385), reload 25000 - 1: one tick a millisecond. The
 * handler counts ticks; main sleeps in wfi and prints "tick N" for
 * N = 1..5 as the count advances (every N is printed even if several ticks
 * arrive during one wakeup), then stops SysTick and prints "systick done".
 * No counter value is printed, so the output does not depend on speed.
 */
#include <stdint.h>
#include "platform.h"
#include "uart.h"

#define TICK_RELOAD (SYSCLK_HZ / 1000u - 1u)   /* 1 ms */
#define NTICKS 5u

static volatile uint32_t ticks;

void SysTick_Handler(void)
{
    ticks = ticks + 1;
}

int main(void)
{
    uint32_t printed = 0;

    MMIO32(SYST_RVR) = TICK_RELOAD;
    MMIO32(SYST_CVR) = 0;              /* any write clears it and COUNTFLAG */
    MMIO32(SYST_CSR) = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;

    while (printed < NTICKS) {
        wfi();
        while (printed < NTICKS && printed < ticks) {
            printed++;
            uart_puts("tick ");
            uart_putdec(printed);
            uart_putc('\n');
        }
    }

    MMIO32(SYST_CSR) = 0;
    MMIO32(SCB_ICSR) = ICSR_PENDSTCLR;   /* drop a tick that came meanwhile */
    uart_puts("systick done\n");
    return 0;
}
