/* Minimal C runtime for chronicorn AArch64 test guests. */
#include <stddef.h>
#include <stdint.h>
#include "arm.h"
#include "exc.h"
#include "psci.h"
#include "runtime.h"
#include "uart.h"

void guest_exit(int code)
{
    if (code != 0) {
        uart_puts("exit code ");
        print_dec((uint64_t)(unsigned)code);
        uart_putc('\n');
    }
    psci_system_off();
}

void unexpected_exception(struct exc_frame *f, unsigned vec)
{
    uart_puts("unexpected exception vector ");
    print_dec(vec);
    uart_puts(" ESR=");
    print_hex0x(read_sysreg(esr_el1));
    uart_puts(" ELR=");
    print_hex0x(f->elr);
    uart_puts(" FAR=");
    print_hex0x(read_sysreg(far_el1));
    uart_putc('\n');
    guest_exit(1);
}

/* Defaults: any exception is unexpected. Guests override these. */
__attribute__((weak)) void sync_handler(struct exc_frame *f)
{
    unexpected_exception(f, VEC_SYNC_SPX);
}

__attribute__((weak)) void irq_handler(struct exc_frame *f)
{
    unexpected_exception(f, VEC_IRQ_SPX);
}

/* Called by start.S's exc_common with the saved frame and the vector number. */
void exception_dispatch(struct exc_frame *f, unsigned vec)
{
    if (vec == VEC_SYNC_SPX)
        sync_handler(f);
    else if (vec == VEC_IRQ_SPX)
        irq_handler(f);
    else
        unexpected_exception(f, vec);
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
