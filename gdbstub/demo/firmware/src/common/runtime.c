/* Minimal C runtime for chronicorn RISC-V test guests. */
#include <stddef.h>
#include <stdint.h>
#include "platform.h"
#include "riscv.h"
#include "uart.h"

void guest_exit(int code)
{
    uint32_t v = code == 0 ? FINISHER_PASS
                           : (FINISHER_FAIL | ((uint32_t)code << 16));
    MMIO32(FINISHER_BASE) = v;
    for (;;)
        wfi();
}

/* Report a trap the guest did not expect and fail. */
void unexpected_trap(const char *who, unsigned long mcause, unsigned long mepc,
                     unsigned long mtval)
{
    uart_puts(who);
    uart_puts("unexpected trap mcause=0x");
    uart_puthex(mcause);
    uart_puts(" mepc=0x");
    uart_puthex(mepc);
    uart_puts(" mtval=0x");
    uart_puthex(mtval);
    uart_putc('\n');
    guest_exit(1);
}

/* Default handler: any trap is unexpected. Guests override this. */
__attribute__((weak))
unsigned long trap_handler(unsigned long mcause, unsigned long mepc,
                           unsigned long mtval)
{
    unexpected_trap("", mcause, mepc, mtval);
}

/*
 * GCC may emit calls to these even with -ffreestanding. Loop-idiom
 * recognition is disabled so the loops below are not turned back into
 * calls to themselves.
 */
#define NO_LIBCALL __attribute__((optimize("no-tree-loop-distribute-patterns")))

NO_LIBCALL
void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

NO_LIBCALL
void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

NO_LIBCALL
void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) {
        while (n--)
            *d++ = *s++;
    } else {
        while (n--)
            d[n] = s[n];
    }
    return dst;
}

NO_LIBCALL
int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}
