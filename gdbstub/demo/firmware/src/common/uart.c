#include "uart.h"

void uart_putc(char c)
{
    while (!(uart_read_reg(UART_LSR) & UART_LSR_THRE))
        ;
    uart_write_reg(UART_THR, (uint8_t)c);
}

void uart_puts(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

/* 64-bit division on rv32 goes through libgcc (__udivdi3/__umoddi3). */
void uart_putdec64(uint64_t v)
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

void uart_putdec(unsigned long v)
{
    uart_putdec64(v);
}

void uart_puthex64(uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    int shift = 60;
    while (shift > 0 && ((v >> shift) & 0xf) == 0)
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        uart_putc(digits[(v >> shift) & 0xf]);
}

void uart_puthex(unsigned long v)
{
    uart_puthex64(v);
}
