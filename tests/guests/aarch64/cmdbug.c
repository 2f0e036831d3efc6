/*
 * cmdbug: a UART command interpreter with a planted bug, for fault
 * localisation (`chronicorn locate`, a debugger's watchpoint).
 *
 * Input is read by polling (UARTFR.RXFE), one command a line:
 *
 *   set N V    values[N] = V (N = 0..7)       scale S   scale = S (1..10)
 *   sum        print scale * (values[0] + ... + values[7])
 *   show       print the values               q         print "bye", power off
 *
 * THE BUG: cmd_set's bounds check is off by one (`n > NVALUES` instead of
 * `n >= NVALUES`), so `set 8 V` is accepted and its store `values[n] = v;`
 * (one `str`, the only instruction of that line) writes one element past the
 * array -- into the global `scale`, which the linker places right after it
 * (-fno-toplevel-reorder keeps the definition order; the Makefile checks
 * &scale == &values[8] after linking). Nothing notices at once; the next
 * `sum` is wrong. inputs/cmdbug-bug.txt triggers it, inputs/cmdbug-ok.txt
 * is the same session without the bad `set` (and shows that `set 9 ...` is
 * refused).
 */
#include <stdint.h>
#include "arm.h"
#include "runtime.h"
#include "uart.h"

#define NVALUES 8

/* In this order, adjacent, in .data (see above). */
uint32_t values[NVALUES] __attribute__((section(".data.cmdbug")));
uint32_t scale __attribute__((section(".data.cmdbug"))) = 1;

static unsigned read_line(char *buf, unsigned size)
{
    unsigned n = 0;
    for (;;) {
        int c = uart_getc();
        if (c == '\n' || c == '\r') {
            if (n == 0)
                continue;       /* skip empty lines (and the \n of \r\n) */
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

/* Parses a decimal number at *s, advancing past it and one space. */
static uint32_t parse_number(const char **s)
{
    uint32_t v = 0;
    while (**s >= '0' && **s <= '9')
        v = v * 10 + (uint32_t)(*(*s)++ - '0');
    if (**s == ' ')
        (*s)++;
    return v;
}

static void __attribute__((noinline)) cmd_set(uint32_t n, uint32_t v)
{
    if (n > NVALUES) {              /* BUG: should be n >= NVALUES */
        uart_puts("index out of range\n");
        return;
    }
    values[n] = v;                  /* the culprit store: values[8] is scale */
    uart_puts("values[");
    print_dec(n);
    uart_puts("] = ");
    print_dec(v);
    uart_putc('\n');
}

static void __attribute__((noinline)) cmd_scale(uint32_t s)
{
    if (s < 1 || s > 10) {
        uart_puts("scale must be 1..10\n");
        return;
    }
    scale = s;
    uart_puts("scale = ");
    print_dec(s);
    uart_putc('\n');
}

static void cmd_sum(void)
{
    uint32_t sum = 0;
    for (unsigned i = 0; i < NVALUES; i++)
        sum += values[i];
    uart_puts("sum = ");
    print_dec((uint64_t)sum * scale);
    uart_putc('\n');
}

static void cmd_show(void)
{
    uart_puts("values:");
    for (unsigned i = 0; i < NVALUES; i++) {
        uart_putc(' ');
        print_dec(values[i]);
    }
    uart_putc('\n');
}

int main(void)
{
    static char line[64];

    uart_puts("cmdbug ready\n");
    for (;;) {
        const char *p;
        read_line(line, sizeof line);
        p = line;
        if (starts_with(line, "set ")) {
            p += 4;
            uint32_t n = parse_number(&p);
            uint32_t v = parse_number(&p);
            cmd_set(n, v);
        } else if (starts_with(line, "scale ")) {
            p += 6;
            cmd_scale(parse_number(&p));
        } else if (starts_with(line, "sum")) {
            cmd_sum();
        } else if (starts_with(line, "show")) {
            cmd_show();
        } else if (line[0] == 'q' && line[1] == 0) {
            break;
        } else {
            uart_puts("unknown command: ");
            uart_puts(line);
            uart_putc('\n');
        }
    }
    uart_puts("bye\n");
    return 0;
}
