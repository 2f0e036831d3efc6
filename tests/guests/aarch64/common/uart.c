#include "uart.h"

/*
 * Enable the UART (UARTEN, TXE, RXE). QEMU 7.2's PL011 sends and receives
 * whatever UARTCR says, but a real PL011 needs these bits. UARTLCR_H is
 * left alone: at reset the FIFOs are off (FEN = 0) and QEMU flushes the
 * receive FIFO when FEN changes, which would lose input already queued.
 */
void uart_init(void)
{
    uart_write_reg(UART_CR, UART_CR_UARTEN | UART_CR_TXE | UART_CR_RXE);
}

void uart_putc(char c)
{
    while (uart_read_reg(UART_FR) & UART_FR_TXFF)
        ;
    uart_write_reg(UART_DR, (uint8_t)c);
}

void uart_puts(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

int uart_rx_ready(void)
{
    return !(uart_read_reg(UART_FR) & UART_FR_RXFE);
}

int uart_getc(void)
{
    while (!uart_rx_ready())
        ;
    return (int)(uart_read_reg(UART_DR) & 0xff);
}

void print_dec(uint64_t v)
{
    char buf[21];
    int i = 0;
    do {
        buf[i++] = (char)('0' + (v % 10));
        v /= 10;
    } while (v);
    while (i)
        uart_putc(buf[--i]);
}

void print_hex(uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    int shift = 60;
    while (shift > 0 && ((v >> shift) & 0xf) == 0)
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        uart_putc(digits[(v >> shift) & 0xf]);
}

void print_hex0x(uint64_t v)
{
    uart_puts("0x");
    print_hex(v);
}
