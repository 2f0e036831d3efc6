/*
 * compute: CPU-bound work with no MMIO in the hot loop. Each round runs a
 * sieve of Eratosthenes and a bitwise CRC-32 over a pseudo-random buffer;
 * the results of all rounds are folded into one 32-bit checksum.
 * Hot loops use native-width `unsigned long` (so rv64 needs no extra
 * zero/sign-extension instructions) but every value stays below 2^32,
 * and checksums are uint32_t, so rv32 and rv64 print the same result.
 *
 * Tuned for roughly 60-90 million retired instructions on both rv32 and
 * rv64 (see README.md). Build with -DCOMPUTE_PRINT_INSTRET and run QEMU
 * with `-icount shift=0` to print the minstret count (development only).
 */
#include <stdint.h>
#include "uart.h"

#ifndef ROUNDS
#define ROUNDS    116u
#endif
#define SIEVE_N   32768u
#define BUF_LEN   2048u

static uint8_t composite[SIEVE_N];
static uint8_t buf[BUF_LEN];

/* Returns a digest of (number of primes, sum of primes) below n. */
static uint32_t sieve(unsigned long n)
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

static uint32_t crc32(const uint8_t *p, unsigned long len)
{
    unsigned long crc = 0xffffffffu;   /* always < 2^32 */
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320ul & (0ul - (crc & 1u)));
    }
    return ~(uint32_t)crc;
}

static void fill(uint32_t seed)
{
    uint32_t x = seed;
    for (uint32_t i = 0; i < BUF_LEN; i++) {
        x = x * 1664525u + 1013904223u;   /* LCG */
        buf[i] = (uint8_t)(x >> 24);
    }
}

#ifdef COMPUTE_PRINT_INSTRET
static uint64_t read_instret(void)
{
#if __riscv_xlen == 32
    uint32_t hi, lo, hi2;
    do {
        __asm__ volatile ("csrr %0, minstreth" : "=r"(hi));
        __asm__ volatile ("csrr %0, minstret" : "=r"(lo));
        __asm__ volatile ("csrr %0, minstreth" : "=r"(hi2));
    } while (hi != hi2);
    return ((uint64_t)hi << 32) | lo;
#else
    uint64_t v;
    __asm__ volatile ("csrr %0, minstret" : "=r"(v));
    return v;
#endif
}
#endif

int main(unsigned long hartid, void *fdt)
{
    uint32_t acc = 0x12345678u;

    (void)hartid;
    (void)fdt;

#ifdef COMPUTE_PRINT_INSTRET
    uint64_t start = read_instret();
#endif

    for (uint32_t r = 0; r < ROUNDS; r++) {
        uint32_t s = sieve(SIEVE_N - (r & 255u));
        fill(acc ^ r);
        uint32_t c = crc32(buf, BUF_LEN);
        acc = (acc * 31u + s) ^ c;
        acc = (acc << 7) | (acc >> 25);
    }

#ifdef COMPUTE_PRINT_INSTRET
    uint64_t end = read_instret();
    uart_puts("instret main=");
    uart_putdec64(end - start);
    uart_putc('\n');
#endif

    uart_puts("compute result: ");
    uart_putdec(acc);
    uart_putc('\n');
    return 0;
}
