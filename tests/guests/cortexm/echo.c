/*
 * echo: interrupt-driven UART0 receive through the NVIC (IRQ 0, UART0 RX).
 * The handler acknowledges the RX interrupt (INTCLEAR), then moves bytes
 * into a ring buffer while STATE.RXFULL is set. main sleeps in wfi and
 * echoes every received character, a-z upper-cased; at a newline it prints
 * the newline and then "line N"; at 'q' it prints "bye" (on a line of its
 * own) and exits 0.
 *
 * "echo ready" is printed once the UART and the NVIC are set up. The output
 * is the same whether the input is already waiting at boot or comes later:
 * QEMU's CMSDK UART holds one received byte (no FIFO) and takes the next
 * one from the host only once DATA has been read, so nothing is lost.
 */
#include <stdint.h>
#include "platform.h"
#include "uart.h"

#define RING_SIZE 256u   /* power of two */

static volatile uint8_t ring[RING_SIZE];
static volatile uint32_t ring_head;   /* written by the handler */
static volatile uint32_t ring_tail;   /* written by main */
static volatile uint32_t rx_paused;   /* set by the handler when full */

static uint32_t ring_full(void)
{
    return ring_head - ring_tail >= RING_SIZE;
}

/*
 * UART0 RX interrupt. INTCLEAR first, then read: a byte that arrives after
 * the last STATE check raises INTSTATUS.RX (and the interrupt) again. If the
 * ring fills up, the IRQ is masked in the NVIC until main has caught up (the
 * byte stays in the UART, which then takes no more from the host).
 */
void UART0RX_IRQHandler(void)
{
    uart_write_reg(UART_INTSTATUS, UART_INT_RX);
    while (!ring_full() && (uart_read_reg(UART_STATE) & UART_STATE_RXFULL)) {
        uint32_t h = ring_head;
        ring[h % RING_SIZE] = (uint8_t)uart_read_reg(UART_DATA);
        ring_head = h + 1;
    }
    if (ring_full()) {
        nvic_disable(IRQ_UART0_RX);
        rx_paused = 1;
    }
}

int main(void)
{
    uint32_t lines = 0, column = 0;

    uart_init(UART_CTRL_RXEN | UART_CTRL_RXINTEN);
    nvic_set_priority(IRQ_UART0_RX, 0x80);
    nvic_clear_pending(IRQ_UART0_RX);
    nvic_enable(IRQ_UART0_RX);

    uart_puts("echo ready\n");

    for (;;) {
        while (ring_tail != ring_head) {
            uint32_t t = ring_tail;
            char c = (char)ring[t % RING_SIZE];
            ring_tail = t + 1;
            if (c == 'q') {
                if (column)
                    uart_putc('\n');
                uart_puts("bye\n");
                return 0;
            }
            if (c >= 'a' && c <= 'z')
                c = (char)(c - 'a' + 'A');
            uart_putc(c);
            column++;
            if (c == '\n') {
                column = 0;
                uart_puts("line ");
                uart_putdec(++lines);
                uart_putc('\n');
            }
        }
        if (rx_paused) {   /* ring drained: take RX interrupts again */
            rx_paused = 0;
            nvic_enable(IRQ_UART0_RX);
        }
        /* Sleep with PRIMASK set so an interrupt arriving between the check
         * and wfi is not lost: wfi still wakes on a pending enabled
         * interrupt, which is taken once PRIMASK is cleared again. */
        irq_disable();
        if (ring_tail == ring_head)
            wfi();
        irq_enable();
    }
}
