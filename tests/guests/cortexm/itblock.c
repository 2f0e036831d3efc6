/*
 * itblock: a loop full of Thumb-2 IT blocks (itblock_loop.S: ITTE, ITTT,
 * ITETE with conditional adds, loads, stores and a rotate, IT with a mov,
 * IT ending with a branch), run for a few seeds over a 64-word buffer. It
 * prints each run's accumulator and a checksum of the buffer: any IT block
 * executed wrongly (a conditional instruction run or skipped when it should
 * not be, e.g. after a stop inside the block) changes them. Used to test
 * that landing on an exact instruction count never splits an IT block.
 */
#include <stdint.h>
#include "uart.h"

#define WORDS 64u
#define ITERS 5000u

uint32_t it_kernel(uint32_t *buf, uint32_t n, uint32_t seed);

static uint32_t buf[WORDS];

int main(void)
{
    static const uint32_t seeds[] = { 1u, 0x12345678u, 0xdeadbeefu };
    uint32_t sum = 0;

    for (uint32_t i = 0; i < WORDS; i++)
        buf[i] = i * 0x9e3779b9u;

    for (uint32_t r = 0; r < sizeof seeds / sizeof seeds[0]; r++) {
        uint32_t acc = it_kernel(buf, ITERS, seeds[r]);
        uart_puts("run ");
        uart_putdec(r);
        uart_puts(" acc 0x");
        uart_puthex8(acc);
        uart_putc('\n');
    }
    for (uint32_t i = 0; i < WORDS; i++)
        sum = (sum << 3 | sum >> 29) ^ buf[i];
    uart_puts("itblock checksum 0x");
    uart_puthex8(sum);
    uart_putc('\n');
    return 0;
}
