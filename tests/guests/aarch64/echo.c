/*
 * echo: interrupt-driven UART receive through the GICv2.
 *
 * The PL011 receive interrupt (UARTIMSC.RXIM) goes to SPI 1 = INTID 33. The
 * IRQ handler acknowledges with GICC_IAR, moves bytes from UARTDR into a
 * ring buffer while UARTFR.RXFE is clear, clears the interrupt in UARTICR
 * and ends with GICC_EOIR. main echoes each byte (a-z upper-cased, the rest
 * as is); a newline ('\n' or '\r', a '\n' right after '\r' is skipped) is
 * echoed as '\n' followed by "[line N]\n"; on 'q' it prints "\nbye\n" and
 * powers off.
 *
 * "echo ready\n" is printed once the UART, the GIC and interrupts are set
 * up. The FIFOs stay off (UARTLCR_H untouched, see uart.c), so the UART
 * holds one byte at a time and QEMU delivers the next only once it is read:
 * the output is the same whether the input is queued at boot or typed later.
 */
#include <stdint.h>
#include "arm.h"
#include "exc.h"
#include "gic.h"
#include "runtime.h"
#include "uart.h"

#define RING_SIZE 256u   /* power of two */

static volatile uint8_t ring[RING_SIZE];
static volatile unsigned ring_head;   /* written by the handler */
static volatile unsigned ring_tail;   /* written by main */
static volatile unsigned rx_paused;   /* set by the handler when full */

static unsigned ring_full(void)
{
    return ring_head - ring_tail >= RING_SIZE;
}

/*
 * Move received bytes into the ring. If it fills up, stop (the rest stays in
 * the UART / on the host side) and mask the RX interrupt until main has
 * caught up, so a fast sender can neither starve main nor overflow the ring.
 */
static void uart_drain_rx(void)
{
    while (!ring_full() && uart_rx_ready()) {
        unsigned h = ring_head;
        ring[h % RING_SIZE] = (uint8_t)uart_read_reg(UART_DR);
        ring_head = h + 1;
    }
    uart_write_reg(UART_ICR, UART_INT_RX | UART_INT_RT);
    if (ring_full()) {
        uart_write_reg(UART_IMSC, 0);
        rx_paused = 1;
    }
}

void irq_handler(struct exc_frame *f)
{
    uint32_t iar = gic_ack();
    unsigned intid = iar & 0x3ff;

    if (intid == GIC_SPURIOUS)
        return;
    if (intid == INTID_UART0) {
        uart_drain_rx();
    } else {
        uart_puts("echo: unexpected interrupt ");
        print_dec(intid);
        uart_putc('\n');
        guest_exit(2);
    }
    gic_eoi(iar);
    (void)f;
}

int main(void)
{
    unsigned lines = 0;
    int after_cr = 0;

    gic_init();
    gic_enable_irq(INTID_UART0, 0xa0);
    uart_write_reg(UART_IMSC, UART_INT_RX);
    irq_enable();

    uart_puts("echo ready\n");

    for (;;) {
        while (ring_tail != ring_head) {
            unsigned t = ring_tail;
            char c = (char)ring[t % RING_SIZE];
            ring_tail = t + 1;
            if (c == '\n' && after_cr) {
                after_cr = 0;
                continue;
            }
            after_cr = c == '\r';
            if (c == 'q') {
                uart_puts("\nbye\n");
                return 0;
            }
            if (c == '\n' || c == '\r') {
                lines++;
                uart_puts("\n[line ");
                print_dec(lines);
                uart_puts("]\n");
                continue;
            }
            if (c >= 'a' && c <= 'z')
                c = (char)(c - 'a' + 'A');
            uart_putc(c);
        }
        if (rx_paused) {   /* ring drained: take RX interrupts again */
            rx_paused = 0;
            uart_write_reg(UART_IMSC, UART_INT_RX);
        }
        /* Sleep with IRQs masked so an interrupt arriving between the check
         * and wfi is not lost: wfi still wakes on a pending interrupt, which
         * is then taken once DAIF.I is cleared. */
        irq_disable();
        if (ring_tail == ring_head)
            wfi();
        irq_enable();
    }
}
