/*
 * fault: a load from unmapped physical memory with no trap handler
 * (mtvec == 0). On QEMU the access fault vectors to address 0, which
 * faults again forever, so the guest never exits; an emulator is expected
 * to report the unhandled fault. "not reached" must never be printed.
 */
#include <stdint.h>
#include "uart.h"

#define UNMAPPED_ADDR 0x90000000UL   /* beyond the 128 MiB of RAM */

int main(unsigned long hartid, void *fdt)
{
    (void)hartid;
    (void)fdt;
    uart_puts("about to fault\n");
    uint32_t v = *(volatile uint32_t *)UNMAPPED_ADDR;
    uart_puts("not reached\n");
    return (int)v;
}
