/*
 * hello: prints a greeting, the CPUID register (0xE000ED00) and where the
 * vector table is (VTOR), then exits 0 through semihosting.
 */
#include <stdint.h>
#include "platform.h"
#include "uart.h"

int main(void)
{
    uart_puts("Hello from chronicorn!\n");
    uart_puts("cpuid=0x");
    uart_puthex8(MMIO32(SCB_CPUID));
    uart_puts("\nvtor=0x");
    uart_puthex8(MMIO32(SCB_VTOR));
    uart_putc('\n');
    return 0;
}
