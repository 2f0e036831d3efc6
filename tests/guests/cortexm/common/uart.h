/* CMSDK APB UART0 on the QEMU mps2-an385 board (0x40004000). */
#ifndef GUEST_UART_H
#define GUEST_UART_H

#include <stdint.h>

#define UART0_BASE 0x40004000u

#define UART_DATA      0x00u
#define UART_STATE     0x04u   /* bit0 TX buffer full, bit1 RX buffer full, bits 2/3 TX/RX overrun */
#define UART_CTRL      0x08u
#define UART_INTSTATUS 0x0Cu   /* read: INTSTATUS; write 1s: INTCLEAR */
#define UART_BAUDDIV   0x10u

#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)

#define UART_CTRL_TXEN    (1u << 0)
#define UART_CTRL_RXEN    (1u << 1)
#define UART_CTRL_TXINTEN (1u << 2)
#define UART_CTRL_RXINTEN (1u << 3)

#define UART_INT_TX       (1u << 0)
#define UART_INT_RX       (1u << 1)

static inline uint32_t uart_read_reg(unsigned reg)
{
    return *(volatile uint32_t *)(uintptr_t)(UART0_BASE + reg);
}

static inline void uart_write_reg(unsigned reg, uint32_t v)
{
    *(volatile uint32_t *)(uintptr_t)(UART0_BASE + reg) = v;
}

/* BAUDDIV = 16 (the smallest valid divider), CTRL = TXEN | ctrl_extra.
 * The start code calls uart_init(0) before main: TX on, RX off. */
void uart_init(uint32_t ctrl_extra);
void uart_putc(char c);
void uart_puts(const char *s);
void uart_putdec(uint32_t v);     /* decimal, no padding */
void uart_putsdec(int32_t v);     /* signed decimal */
void uart_puthex(uint32_t v);     /* lower-case hex, no prefix, no padding */
void uart_puthex8(uint32_t v);    /* lower-case hex, 8 digits, no prefix */
int uart_getc_poll(void);         /* wait (polling STATE.RXFULL) for a byte */

#endif
