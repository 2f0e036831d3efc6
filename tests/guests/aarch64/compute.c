/*
 * compute: CPU-bound work with no MMIO in the hot loops. Each round runs a
 * sieve of Eratosthenes below ~32768, an LCG buffer fill, a bitwise CRC-32
 * over the 2 KiB buffer and an 8x8 integer matrix multiply; the results of
 * all rounds fold into one 32-bit checksum. Printed: the first round's
 * sieve, CRC-32 and matrix trace, then the checksum of all rounds.
 *
 * ROUNDS sets the length (see README.md for instruction counts): the default
 * build and build/bench/compute100m.elf (-DROUNDS=...) differ only in it.
 * -DCOMPUTE_PRINT_INSTRET (make measure, development only) also prints the
 * instructions retired in the loop, from the PMU's INST_RETIRED event, which
 * QEMU counts only under -icount.
 */
#include <stdint.h>
#include "arm.h"
#include "uart.h"

#ifndef ROUNDS
#define ROUNDS    120u
#endif
#define SIEVE_N   32768u
#define BUF_LEN   2048u
#define MAT_N     8u

static uint8_t composite[SIEVE_N];
static uint8_t buf[BUF_LEN];
static uint32_t mat_a[MAT_N][MAT_N], mat_b[MAT_N][MAT_N], mat_c[MAT_N][MAT_N];

static uint32_t sieve_count, sieve_sum;

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
    sieve_count = count;
    sieve_sum = sum;
    return count * 2654435761u ^ sum;
}

static uint32_t crc32(const uint8_t *p, unsigned long len)
{
    uint32_t crc = 0xffffffffu;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void fill(uint32_t seed)
{
    uint32_t x = seed;
    for (uint32_t i = 0; i < BUF_LEN; i++) {
        x = x * 1664525u + 1013904223u;   /* LCG */
        buf[i] = (uint8_t)(x >> 24);
    }
}

/* C = A * B over the buffer's first 128 bytes; returns the trace of C. */
static uint32_t matmul(void)
{
    uint32_t trace = 0;
    for (unsigned i = 0; i < MAT_N; i++)
        for (unsigned j = 0; j < MAT_N; j++) {
            mat_a[i][j] = buf[i * MAT_N + j];
            mat_b[i][j] = buf[64 + i * MAT_N + j];
        }
    for (unsigned i = 0; i < MAT_N; i++)
        for (unsigned j = 0; j < MAT_N; j++) {
            uint32_t s = 0;
            for (unsigned k = 0; k < MAT_N; k++)
                s += mat_a[i][k] * mat_b[k][j];
            mat_c[i][j] = s;
        }
    for (unsigned i = 0; i < MAT_N; i++)
        trace += mat_c[i][i];
    return trace;
}

#ifdef COMPUTE_PRINT_INSTRET
/* PMU event counter 0 counting INST_RETIRED (0x08) at EL1 and EL0. */
static void instret_start(void)
{
    write_sysreg(pmevtyper0_el0, 0x08);
    write_sysreg(pmevcntr0_el0, 0);
    write_sysreg(pmcntenset_el0, 1);
    write_sysreg(pmcr_el0, read_sysreg(pmcr_el0) | 1);   /* E */
    isb();
}

static uint64_t instret_read(void)
{
    isb();
    return read_sysreg(pmevcntr0_el0) & 0xffffffffu;
}
#endif

int main(void)
{
    uint32_t acc = 0x12345678u;
    uint32_t first_sieve = 0, first_count = 0, first_sum = 0, first_crc = 0, first_trace = 0;

#ifdef COMPUTE_PRINT_INSTRET
    instret_start();
#endif

    for (uint32_t r = 0; r < ROUNDS; r++) {
        uint32_t s = sieve(SIEVE_N - (r & 255u));
        fill(acc ^ r);
        uint32_t c = crc32(buf, BUF_LEN);
        uint32_t t = matmul();
        if (r == 0) {
            first_sieve = s;
            first_count = sieve_count;
            first_sum = sieve_sum;
            first_crc = c;
            first_trace = t;
        }
        acc = (acc * 31u + s) ^ c ^ (t << 3);
        acc = (acc << 7) | (acc >> 25);
    }

#ifdef COMPUTE_PRINT_INSTRET
    uint64_t n = instret_read();
    uart_puts("instret main=");
    print_dec(n);
    uart_putc('\n');
#endif

    uart_puts("primes below 32768: ");
    print_dec(first_count);
    uart_puts(", sum ");
    print_dec(first_sum);
    uart_puts(", digest 0x");
    print_hex(first_sieve);
    uart_puts("\ncrc32 of round 0 buffer: 0x");
    print_hex(first_crc);
    uart_puts("\nmatrix trace of round 0: ");
    print_dec(first_trace);
    uart_puts("\nrounds: ");
    print_dec(ROUNDS);
    uart_puts("\ncompute result: ");
    print_dec(acc);
    uart_putc('\n');
    return 0;
}
