/* hello: prints a greeting and the XLEN, exits 0. */
#include "uart.h"

int main(unsigned long hartid, void *fdt)
{
    (void)hartid;
    (void)fdt;
    uart_puts("Hello from chronicorn!\n");
    uart_puts("xlen=");
    uart_putdec(__riscv_xlen);
    uart_putc('\n');
    return 0;
}
