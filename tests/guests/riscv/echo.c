/*
 * echo: interrupt-driven UART receive through the PLIC.
 * The external-interrupt handler claims the PLIC, drains RBR into a ring
 * buffer while LSR.DR is set, and completes the claim. main echoes every
 * received character upper-cased; on 'q' it prints "\nbye\n" and exits 0.
 *
 * "echo ready\n" is printed once the UART, PLIC and interrupts are set up.
 * The output is the same whether the input is already queued at boot or
 * sent after "echo ready" (see the FIFO note in main).
 */
#include <stdint.h>
#include "platform.h"
#include "riscv.h"
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
 * Called from the interrupt handler: move received bytes into the ring
 * while LSR.DR is set. If the ring fills up, stop (the rest stays in the
 * UART / host side) and mask the RX interrupt until main has caught up;
 * otherwise a fast sender could starve main or overflow the ring.
 */
static void uart_drain_rx(void)
{
    while (!ring_full() && (uart_read_reg(UART_LSR) & UART_LSR_DR)) {
        unsigned h = ring_head;
        ring[h % RING_SIZE] = uart_read_reg(UART_RBR);
        ring_head = h + 1;
    }
    if (ring_full()) {
        uart_write_reg(UART_IER, 0);
        rx_paused = 1;
    }
}

unsigned long trap_handler(unsigned long mcause, unsigned long mepc,
                           unsigned long mtval)
{
    if (mcause == (MCAUSE_INTERRUPT | IRQ_M_EXT)) {
        uint32_t irq = plic_claim();
        if (irq == IRQ_UART0)
            uart_drain_rx();
        if (irq != 0)
            plic_complete(irq);
        return mepc;
    }
    unexpected_trap("echo: ", mcause, mepc, mtval);
}

int main(unsigned long hartid, void *fdt)
{
    (void)hartid;
    (void)fdt;

    /*
     * Enable the receive FIFO (trigger level 1) -- but only if no input is
     * waiting yet. Changing FCR.FE flushes the receiver on a 16550 (QEMU's
     * model included), and once RBR has been read to save a byte the host
     * may deliver the next one at any moment, so there is no race-free way
     * to switch the FIFO on while input is arriving. If input was already
     * queued at boot (e.g. piped into QEMU), stay in 16450 mode: one byte
     * at a time, still interrupt-driven, and nothing is lost.
     */
    if (!(uart_read_reg(UART_LSR) & UART_LSR_DR))
        uart_write_reg(UART_FCR, UART_FCR_FIFO_ENABLE);

    install_trap_handler();
    uart_write_reg(UART_IER, UART_IER_ERBFI);

    plic_set_priority(IRQ_UART0, 1);
    plic_enable(IRQ_UART0);
    plic_set_threshold(0);

    csr_set(mie, MIE_MEIE);
    csr_set(mstatus, MSTATUS_MIE);

    uart_puts("echo ready\n");

    for (;;) {
        while (ring_tail != ring_head) {
            unsigned t = ring_tail;
            char c = (char)ring[t % RING_SIZE];
            ring_tail = t + 1;
            if (c == 'q') {
                uart_puts("\nbye\n");
                return 0;
            }
            if (c >= 'a' && c <= 'z')
                c = (char)(c - 'a' + 'A');
            uart_putc(c);
        }
        if (rx_paused) {   /* ring drained: take RX interrupts again */
            rx_paused = 0;
            uart_write_reg(UART_IER, UART_IER_ERBFI);
        }
        /* Sleep with MIE off so an interrupt arriving between the check
         * and wfi is not lost: wfi still wakes on a pending enabled
         * interrupt, which is then taken once MIE is set again. */
        csr_clear(mstatus, MSTATUS_MIE);
        if (ring_tail == ring_head)
            wfi();
        csr_set(mstatus, MSTATUS_MIE);
    }
}
