/* NS16550A UART0 on the QEMU virt board (0x10000000, reg shift 0). */
#ifndef GUEST_UART_H
#define GUEST_UART_H

#include <stdint.h>

#define UART0_BASE 0x10000000UL

#define UART_RBR 0  /* read:  receive buffer */
#define UART_THR 0  /* write: transmit holding */
#define UART_IER 1
#define UART_IIR 2  /* read */
#define UART_FCR 2  /* write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5

#define UART_IER_ERBFI 0x01
#define UART_FCR_FIFO_ENABLE 0x01
#define UART_LSR_DR   0x01
#define UART_LSR_THRE 0x20

static inline uint8_t uart_read_reg(unsigned reg)
{
    return *(volatile uint8_t *)(UART0_BASE + reg);
}

static inline void uart_write_reg(unsigned reg, uint8_t v)
{
    *(volatile uint8_t *)(UART0_BASE + reg) = v;
}

void uart_putc(char c);
void uart_puts(const char *s);
void uart_putdec(unsigned long v);     /* decimal, no padding */
void uart_putdec64(uint64_t v);
void uart_puthex(unsigned long v);     /* lower-case hex, no prefix, no padding */
void uart_puthex64(uint64_t v);

#endif
