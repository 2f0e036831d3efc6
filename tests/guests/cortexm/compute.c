/*
 * compute: CPU-bound work with no MMIO in the hot loops. Each round runs a
 * sieve of Eratosthenes and a bitwise CRC-32 over a buffer filled by an
 * LCG; every round's results fold into the checksums printed at the end:
 * the sieve digest, the CRC-32 digest and the overall result.
 *
 * ROUNDS (default 16, about 10M instructions; build/bench/compute100m.elf
 * is -DROUNDS=... for about 100M): see README.md. Build with
 * -DCOMPUTE_PRINT_ICOUNT and run QEMU with `-icount shift=0` to print the
 * instruction count of the loop (development only, `make measure`).
 */
#include <stdint.h>
#include "platform.h"
#include "uart.h"

#ifndef ROUNDS
#define ROUNDS    16u
#endif
#define SIEVE_N   32768u
#define BUF_LEN   2048u

static uint8_t composite[SIEVE_N];
static uint8_t buf[BUF_LEN];

/* A digest of (number of primes, sum of primes) below n. */
static uint32_t sieve(uint32_t n)
{
    uint32_t i, j, count = 0, sum = 0;

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
            sum += i;
        }
    }
    return count * 2654435761u ^ sum;
}

/* Bitwise CRC-32 (the zlib one). */
static uint32_t crc32(const uint8_t *p, uint32_t len)
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

#ifdef COMPUTE_PRINT_ICOUNT
/* Under -icount shift=0 an instruction takes 1 ns of virtual time and the
 * 25 MHz SysTick counts once every 40 ns: 40 instructions a count. */
static void systick_start(void)
{
    MMIO32(SYST_RVR) = 0x00ffffffu;
    MMIO32(SYST_CVR) = 0;
    MMIO32(SYST_CSR) = SYST_CSR_CLKSOURCE | SYST_CSR_ENABLE;
    while (MMIO32(SYST_CVR) == 0)   /* reads 0 until the first reload */
        ;
}
#endif

int main(void)
{
    uint32_t acc = 0x12345678u, sieves = 0, crcs = 0;

#ifdef COMPUTE_PRINT_ICOUNT
    systick_start();
    uint32_t start = MMIO32(SYST_CVR);
#endif

    for (uint32_t r = 0; r < ROUNDS; r++) {
        uint32_t s = sieve(SIEVE_N - (r & 255u));
        fill(acc ^ r);
        uint32_t c = crc32(buf, BUF_LEN);
        sieves = sieves * 33u + s;
        crcs = crcs * 33u + c;
        acc = (acc * 31u + s) ^ c;
        acc = (acc << 7) | (acc >> 25);
    }

#ifdef COMPUTE_PRINT_ICOUNT
    uint32_t end = MMIO32(SYST_CVR);
    uint32_t wraps = MMIO32(SYST_CSR) & SYST_CSR_COUNTFLAG ? 1 : 0;
    uart_puts("icount main~=");
    uart_putdec((start - end) * 40u);
    uart_puts(wraps ? " (SysTick wrapped: wrong)\n" : "\n");
#endif

    uart_puts("rounds ");
    uart_putdec(ROUNDS);
    uart_puts("\nsieve digest 0x");
    uart_puthex8(sieves);
    uart_puts("\ncrc32 digest 0x");
    uart_puthex8(crcs);
    uart_puts("\ncompute result: ");
    uart_putdec(acc);
    uart_putc('\n');
    return 0;
}
