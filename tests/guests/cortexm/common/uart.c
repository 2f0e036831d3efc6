#include "uart.h"

void uart_init(uint32_t ctrl_extra)
{
    uart_write_reg(UART_BAUDDIV, 16);
    uart_write_reg(UART_CTRL, UART_CTRL_TXEN | ctrl_extra);
}

void uart_putc(char c)
{
    while (uart_read_reg(UART_STATE) & UART_STATE_TXFULL)
        ;
    uart_write_reg(UART_DATA, (uint8_t)c);
}

void uart_puts(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

void uart_putdec(uint32_t v)
{
    char buf[10];
    int i = 0;
    do {
        buf[i++] = (char)('0' + (v % 10));
        v /= 10;
    } while (v);
    while (i)
        uart_putc(buf[--i]);
}

void uart_putsdec(int32_t v)
{
    if (v < 0) {
        uart_putc('-');
        uart_putdec(0u - (uint32_t)v);
    } else {
        uart_putdec((uint32_t)v);
    }
}

static const char hexdigits[] = "0123456789abcdef";

void uart_puthex(uint32_t v)
{
    int shift = 28;
    while (shift > 0 && ((v >> shift) & 0xf) == 0)
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        uart_putc(hexdigits[(v >> shift) & 0xf]);
}

void uart_puthex8(uint32_t v)
{
    for (int shift = 28; shift >= 0; shift -= 4)
        uart_putc(hexdigits[(v >> shift) & 0xf]);
}

int uart_getc_poll(void)
{
    while (!(uart_read_reg(UART_STATE) & UART_STATE_RXFULL))
        ;
    return (int)(uart_read_reg(UART_DATA) & 0xffu);
}
