/*
 * stray: a write through a dangling pointer (a bug for `chronicorn locate`).
 *
 * A two-slot pool hands out message slots. A request is started, remembered in
 * `pending`, and released early by mistake; its slot is then reused for the
 * alarm configuration. When the request "completes" a few timer ticks later,
 * the write through the stale `pending` pointer lands in the configuration's
 * threshold. The check at the end fails and the guest exits with code 7.
 */
#include <stdint.h>
#include "platform.h"
#include "riscv.h"
#include "uart.h"

#define TICK_INTERVAL (CLINT_TIMEBASE_HZ / 1000u)
#define THRESHOLD 100u

struct slot {
    uint32_t kind;
    uint32_t value;
    uint32_t in_use;
};

static struct slot pool[2];
static struct slot *pending;
static volatile unsigned long ticks;
static uint64_t next_cmp;

static __attribute__((noinline)) struct slot *slot_alloc(uint32_t kind)
{
    for (unsigned i = 0; i < 2; i++) {
        if (!pool[i].in_use) {
            pool[i].in_use = 1;
            pool[i].kind = kind;
            return &pool[i];
        }
    }
    return 0;
}

static __attribute__((noinline)) void slot_free(struct slot *s)
{
    s->in_use = 0;
}

unsigned long trap_handler(unsigned long mcause, unsigned long mepc, unsigned long mtval)
{
    if (mcause == (MCAUSE_INTERRUPT | IRQ_M_TIMER)) {
        ticks = ticks + 1;
        next_cmp += TICK_INTERVAL;
        clint_write_mtimecmp(next_cmp);
        return mepc;
    }
    unexpected_trap("stray: ", mcause, mepc, mtval);
}

static void wait_ticks(unsigned long n)
{
    unsigned long until = ticks + n;
    while (ticks < until)
        wfi();
}

static __attribute__((noinline)) void start_request(void)
{
    pending = slot_alloc(1);
    pending->value = 42;
    slot_free(pending);          /* BUG: released while still pending */
}

static __attribute__((noinline)) void complete_request(void)
{
    pending->value = 0;          /* the stray write: this slot is the alarm now */
    pending = 0;
}

int main(unsigned long hartid, void *fdt)
{
    (void)hartid;
    (void)fdt;
    install_trap_handler();
    next_cmp = clint_read_mtime() + TICK_INTERVAL;
    clint_write_mtimecmp(next_cmp);
    csr_set(mie, MIE_MTIE);
    csr_set(mstatus, MSTATUS_MIE);

    start_request();
    struct slot *alarm = slot_alloc(2);
    alarm->value = THRESHOLD;
    uart_puts("alarm threshold set\n");
    wait_ticks(2);
    complete_request();
    wait_ticks(3);
    if (alarm->value != THRESHOLD) {
        uart_puts("CHECK FAILED: alarm threshold is ");
        uart_putdec(alarm->value);
        uart_putc('\n');
        guest_exit(7);
    }
    uart_puts("stray ok\n");
    return 0;
}
