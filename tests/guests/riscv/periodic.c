/*
 * periodic: a long CPU-bound guest for scripts/bench_vs_qemu.py (chronicorn
 * against QEMU's record/replay on the same image).
 *
 * The work is compute.c's (a sieve of Eratosthenes and a bitwise CRC-32 over
 * a pseudo-random buffer, ~0.65M instructions a step, short basic blocks).
 * Every SUBROUNDS steps (~14M instructions on rv64) it calls tick(), a small
 * function the benchmark puts breakpoints on to arrive at a given depth by
 * `continue`. The word `shared` lives in the same 4 KiB page as the CRC
 * buffer, which every step rewrites, so that page is written all along; tick()
 * writes `shared` once, in round WATCH_ROUND (the reverse watchpoint target).
 * marker() is called once, after round MARK_ROUND (the far reverse-continue
 * target). No device is touched until the result is printed at the end.
 *
 * Code layout: the hot loops (main and its helpers) have a 4 KiB page of
 * their own (.text.hot), with unhit(), which is never called: a breakpoint
 * there is one that is never hit in the hot page. tick() and marker() are on
 * the next page (.text.far), before the runtime (guest_exit), so breakpoints
 * on them do not make QEMU single-step the hot page.
 *
 * ROUNDS selects the size: 31 (~440M instructions), 78 (~1.1e9), 5 (~71M).
 */
#include <stdint.h>
#include "uart.h"

#ifndef ROUNDS
#define ROUNDS 31u
#endif
#ifndef WATCH_ROUND                 /* the 6th round from the end: ~71M before it */
#define WATCH_ROUND (ROUNDS > 6u ? ROUNDS - 6u : ROUNDS / 2u)
#endif
#define MARK_ROUND  1u              /* marker() after round 1: ~28M instructions in */
#define SUBROUNDS   22u
#define SIEVE_N     32768u
#define BUF_LEN     2048u

static uint8_t composite[SIEVE_N];

/* The CRC buffer (rewritten by every step) and the watched word share one 4 KiB page. */
static struct {
    uint8_t buf[BUF_LEN];
    volatile uint32_t shared;
} page __attribute__((aligned(4096)));

/* Source order is link order (-fno-toplevel-reorder): hot page, then tick()/marker()'s page, then the runtime. */
#define HOT __attribute__((section(".text.hot")))
#define FAR __attribute__((noinline, section(".text.far")))

volatile uint32_t ticks;
volatile uint32_t marks;

void tick(uint32_t round, uint32_t acc);
void marker(uint32_t acc);

/* Returns a digest of (number of primes, sum of primes) below n. */
HOT __attribute__((aligned(4096))) static uint32_t sieve(unsigned long n)
{
    unsigned long i, j;
    uint32_t count = 0, sum = 0;

    for (i = 0; i < n; i++)
        composite[i] = 0;
    for (i = 2; i * i < n; i++) {
        if (composite[i])
            continue;
        for (j = i * i; j < n; j += i)
            composite[j] = 1;
    }
    for (i = 2; i < n; i++) {
        if (!composite[i]) {
            count++;
            sum += (uint32_t)i;
        }
    }
    return count * 2654435761u ^ sum;
}

HOT static uint32_t crc32(const uint8_t *p, unsigned long len)
{
    unsigned long crc = 0xffffffffu;   /* always < 2^32 */
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320ul & (0ul - (crc & 1u)));
    }
    return ~(uint32_t)crc;
}

HOT static void fill(uint32_t seed)
{
    uint32_t x = seed;
    for (uint32_t i = 0; i < BUF_LEN; i++) {
        x = x * 1664525u + 1013904223u;   /* LCG */
        page.buf[i] = (uint8_t)(x >> 24);
    }
}

HOT int main(unsigned long hartid, void *fdt)
{
    uint32_t acc = 0x12345678u;

    (void)hartid;
    (void)fdt;
    for (uint32_t r = 0; r < ROUNDS; r++) {
        for (uint32_t k = 0; k < SUBROUNDS; k++) {
            uint32_t step = r * SUBROUNDS + k;
            uint32_t s = sieve(SIEVE_N - (step & 255u));
            fill(acc ^ step);
            uint32_t c = crc32(page.buf, BUF_LEN);
            acc = (acc * 31u + s) ^ c;
            acc = (acc << 7) | (acc >> 25);
        }
        tick(r, acc);
        if (r == MARK_ROUND)
            marker(acc);
    }
    uart_puts("periodic result: ");
    uart_putdec(acc ^ page.shared);
    uart_putc('\n');
    return 0;
}

/* Never called: the target of the never-hit breakpoint in the hot page. */
HOT __attribute__((noinline)) void unhit(void)
{
    marks = 0;
}

FAR __attribute__((aligned(4096))) void tick(uint32_t round, uint32_t acc)
{
    ticks = ticks + 1;
    if (round == WATCH_ROUND)
        page.shared = acc;
}

FAR void marker(uint32_t acc)
{
    marks = marks + acc;
}
