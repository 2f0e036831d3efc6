/*
 * rtc: reads the Goldfish RTC (the host clock, QEMU's "host clock") and
 * prints the nanoseconds since the epoch in hex, then whether the time is
 * plausible (after 2020). (No 64-bit division: rv32 would need libgcc.) The output depends on when the guest runs: under
 * chronicorn the read is an input that a recording logs and a replay serves.
 */
#include <stdint.h>
#include "platform.h"
#include "uart.h"

#define RTC_BASE      0x00101000UL
#define RTC_TIME_LOW  0x00
#define RTC_TIME_HIGH 0x04

int main(unsigned long hartid, void *fdt)
{
    (void)hartid;
    (void)fdt;
    uint32_t low = MMIO32(RTC_BASE + RTC_TIME_LOW);   /* latches TIME_HIGH */
    uint32_t high = MMIO32(RTC_BASE + RTC_TIME_HIGH);
    uint64_t ns = ((uint64_t)high << 32) | low;
    uart_puts("rtc ns: 0x");
    uart_puthex64(ns);
    uart_putc('\n');
    uart_puts(ns > 1577836800ULL * 1000000000ULL ? "rtc plausible\n" : "rtc not plausible\n");
    return 0;
}
