/*
 * hello: a greeting and a few facts about the boot state that are the same
 * at every run: the exception level, the stack pointer selected, MPIDR's
 * Aff0 (the core number) and the value of x0 at the entry.
 */
#include <stdint.h>
#include "arm.h"
#include "uart.h"

int main(uint64_t x0)
{
    uint64_t el = (read_sysreg(CurrentEL) >> 2) & 3;
    uint64_t spsel = read_sysreg(SPSel) & 1;
    uint64_t aff0 = read_sysreg(mpidr_el1) & 0xff;

    uart_puts("Hello from chronicorn!\n");
    uart_puts("CurrentEL=");
    print_dec(el);
    uart_puts("\nSPSel=");
    print_dec(spsel);
    uart_puts("\nMPIDR.Aff0=");
    print_dec(aff0);
    uart_puts("\nx0 at entry=");
    print_hex0x(x0);
    uart_putc('\n');
    return 0;
}
