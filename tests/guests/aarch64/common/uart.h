/* PL011 UART0 on the QEMU virt board (0x09000000), polled output. */
#ifndef GUEST_UART_H
#define GUEST_UART_H

#include <stdint.h>
#include "platform.h"

static inline uint32_t uart_read_reg(unsigned off)
{
    return MMIO32(UART0_BASE + off);
}

static inline void uart_write_reg(unsigned off, uint32_t v)
{
    MMIO32(UART0_BASE + off) = v;
}

void uart_init(void);                  /* UARTCR = UARTEN|TXE|RXE; called by start.S */
void uart_putc(char c);                /* waits while UARTFR.TXFF */
void uart_puts(const char *s);
int  uart_getc(void);                  /* polls UARTFR.RXFE, returns the byte */
int  uart_rx_ready(void);              /* !UARTFR.RXFE */

void print_dec(uint64_t v);            /* decimal, no padding */
void print_hex(uint64_t v);            /* lower-case hex, no prefix, no padding */
void print_hex0x(uint64_t v);          /* "0x" then print_hex */

#endif
