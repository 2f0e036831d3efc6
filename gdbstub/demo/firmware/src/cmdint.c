/*
 * cmdint: a small UART command interpreter -- the bug-hunt demo's firmware.
 *
 * The UART receive interrupt (through the PLIC) fills a ring buffer; a 1 ms
 * timer tick counts time. main reads lines from the ring and runs commands:
 *
 *   name TEXT   set the probe's name           scale N   set the scale (1..100)
 *   sample      take a measurement             wait N    sleep N ticks
 *   report      print the totals               quit      exit 0
 *
 * THE BUG: `name` copies TEXT into the 16-byte name field with no bounds
 * check. A name of 17+ characters runs into the next field, `scale`. Nothing
 * notices at once: later samples are multiplied by the corrupted scale, and
 * only `report`, several commands and timer ticks later, checks its
 * invariants and fails ("ASSERT FAILED"), exiting through the test finisher
 * with code 7. tests/guests/riscv/inputs/cmdint-bug.txt triggers it;
 * cmdint-ok.txt is a run that passes.
 */
#include <stdint.h>
#include "platform.h"
#include "riscv.h"
#include "uart.h"

#define RING_SIZE 256u                              /* power of two */
#define TICK_INTERVAL (CLINT_TIMEBASE_HZ / 1000u)   /* 1 ms */
#define ASSERT_EXIT_CODE 7

static volatile uint8_t ring[RING_SIZE];
static volatile unsigned ring_head;   /* written by the interrupt handler */
static volatile unsigned ring_tail;   /* written by main */
static volatile unsigned long ticks;
static uint64_t next_cmp;

struct probe {
    char name[16];
    uint32_t scale;     /* 1..100 */
    uint32_t samples;
    uint32_t total;
};

static struct probe probe = { "probe", 1, 0, 0 };

#define ASSERT(cond) do { if (!(cond)) assert_failed(#cond, __LINE__); } while (0)

static void __attribute__((noreturn)) assert_failed(const char *what, int line)
{
    uart_puts("ASSERT FAILED at cmdint.c:");
    uart_putdec((unsigned long)line);
    uart_puts(": ");
    uart_puts(what);
    uart_putc('\n');
    guest_exit(ASSERT_EXIT_CODE);
}

/* ---- interrupts ------------------------------------------------------- */
static void uart_drain_rx(void)
{
    while (ring_head - ring_tail < RING_SIZE && (uart_read_reg(UART_LSR) & UART_LSR_DR)) {
        unsigned h = ring_head;
        ring[h % RING_SIZE] = uart_read_reg(UART_RBR);
        ring_head = h + 1;
    }
}

unsigned long trap_handler(unsigned long mcause, unsigned long mepc, unsigned long mtval)
{
    if (mcause == (MCAUSE_INTERRUPT | IRQ_M_TIMER)) {
        ticks = ticks + 1;
        next_cmp += TICK_INTERVAL;
        clint_write_mtimecmp(next_cmp);
        return mepc;
    }
    if (mcause == (MCAUSE_INTERRUPT | IRQ_M_EXT)) {
        uint32_t irq = plic_claim();
        if (irq == IRQ_UART0)
            uart_drain_rx();
        if (irq != 0)
            plic_complete(irq);
        return mepc;
    }
    unexpected_trap("cmdint: ", mcause, mepc, mtval);
}

/* ---- input ------------------------------------------------------------ */
static int read_char(void)
{
    for (;;) {
        csr_clear(mstatus, MSTATUS_MIE);
        if (ring_tail != ring_head) {
            unsigned t = ring_tail;
            int c = ring[t % RING_SIZE];
            ring_tail = t + 1;
            csr_set(mstatus, MSTATUS_MIE);
            return c;
        }
        wfi();   /* wakes on a pending interrupt, taken once MIE is set again */
        csr_set(mstatus, MSTATUS_MIE);
    }
}

static unsigned read_line(char *buf, unsigned size)
{
    unsigned n = 0;
    for (;;) {
        int c = read_char();
        if (c == '\n' || c == '\r') {
            buf[n] = 0;
            return n;
        }
        if (n + 1 < size)
            buf[n++] = (char)c;
    }
}

static int starts_with(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return 0;
    return 1;
}

static unsigned long parse_number(const char *s)
{
    unsigned long v = 0;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (unsigned long)(*s++ - '0');
    return v;
}

/* ---- commands --------------------------------------------------------- */
static void set_name(const char *text)
{
    char *dst = probe.name;
    while (*text)              /* BUG: no bound: a long name runs into probe.scale */
        *dst++ = *text++;
    *dst = 0;
}

static void set_scale(unsigned long value)
{
    if (value < 1 || value > 100) {
        uart_puts("scale must be 1..100\n");
        return;
    }
    probe.scale = (uint32_t)value;
}

static uint32_t window[32];   /* the last scaled readings, newest first */
static uint32_t average;

static void take_sample(void)
{
    uint32_t reading = (uint32_t)(ticks * 7u + 3u) % 50u;
    uint32_t sum = 0;
    for (unsigned i = 31; i > 0; i--) {   /* slide the window and average it */
        window[i] = window[i - 1];
        sum += window[i];
    }
    window[0] = reading * probe.scale;
    average = (sum + window[0]) / 32u;
    probe.samples++;
    probe.total += reading * probe.scale;
}

static void wait_ticks(unsigned long n)
{
    unsigned long until = ticks + n;
    while (ticks < until)
        wfi();
}

static void report(void)
{
    ASSERT(probe.scale >= 1 && probe.scale <= 100);
    ASSERT(probe.total <= probe.samples * 49u * 100u);
    uart_puts(probe.name);
    uart_puts(": ");
    uart_putdec(probe.samples);
    uart_puts(" samples, total ");
    uart_putdec(probe.total);
    uart_puts(", average ");
    uart_putdec(average);
    uart_putc('\n');
}

int main(unsigned long hartid, void *fdt)
{
    static char line[64];
    (void)hartid;
    (void)fdt;

    install_trap_handler();
    uart_write_reg(UART_IER, UART_IER_ERBFI);
    plic_set_priority(IRQ_UART0, 1);
    plic_enable(IRQ_UART0);
    plic_set_threshold(0);
    next_cmp = clint_read_mtime() + TICK_INTERVAL;
    clint_write_mtimecmp(next_cmp);
    csr_set(mie, MIE_MEIE | MIE_MTIE);
    csr_set(mstatus, MSTATUS_MIE);

    uart_puts("cmdint ready\n");
    for (;;) {
        read_line(line, sizeof line);
        if (starts_with(line, "name "))
            set_name(line + 5);
        else if (starts_with(line, "scale "))
            set_scale(parse_number(line + 6));
        else if (starts_with(line, "sample"))
            take_sample();
        else if (starts_with(line, "wait "))
            wait_ticks(parse_number(line + 5));
        else if (starts_with(line, "report"))
            report();
        else if (starts_with(line, "quit"))
            break;
        else if (line[0]) {
            uart_puts("unknown command: ");
            uart_puts(line);
            uart_putc('\n');
        }
    }
    uart_puts("bye\n");
    return 0;
}
