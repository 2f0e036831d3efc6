/*
 * cmdbug: a small command interpreter on UART0, polled (STATE.RXFULL, no
 * interrupts), with a planted bug for fault localisation.
 *
 *   set N V   values[N] = V (V signed decimal)   prints "values[N] = V"
 *   sum       prints "sum = S", S = scale * (values[0] + ... + values[7])
 *   q         prints "bye" and exits 0
 *
 * Nothing is echoed; '\r' is ignored; anything else prints "? unknown
 * command", an empty line nothing.
 *
 * THE BUG: `set` does not check N against the size of values[] (8). The
 * global `scale` (10) is the word right after the array (-fno-toplevel-reorder
 * keeps the definitions in order in .data), so `set 8 V` silently sets the
 * scale to V, and a later `sum` is wrong. inputs/cmdbug-bug.txt does that
 * (its second sum prints 175 instead of 250); inputs/cmdbug-ok.txt is the
 * same session without the stray `set 8 7`.
 */
#include <stdint.h>
#include "uart.h"

#define NVALUES 8u

static int32_t values[NVALUES] = { 3, 1, 4, 1, 5, 9, 2, 6 };
static int32_t scale = 10;

static uint32_t read_line(char *buf, uint32_t size)
{
    uint32_t n = 0;
    for (;;) {
        int c = uart_getc_poll();
        if (c == '\r')
            continue;
        if (c == '\n') {
            buf[n] = 0;
            return n;
        }
        if (n + 1 < size)
            buf[n++] = (char)c;
    }
}

static const char *skip_spaces(const char *s)
{
    while (*s == ' ')
        s++;
    return s;
}

/* Signed decimal; *ok = 0 if there are no digits. */
static const char *parse_int(const char *s, int32_t *v, int *ok)
{
    int neg = 0;
    uint32_t x = 0;

    s = skip_spaces(s);
    if (*s == '-') {
        neg = 1;
        s++;
    }
    *ok = *s >= '0' && *s <= '9';
    while (*s >= '0' && *s <= '9')
        x = x * 10u + (uint32_t)(*s++ - '0');
    *v = neg ? (int32_t)(0u - x) : (int32_t)x;
    return s;
}

static void cmd_set(const char *args)
{
    int32_t n, v;
    int ok1, ok2;

    args = parse_int(args, &n, &ok1);
    args = parse_int(args, &v, &ok2);
    if (!ok1 || !ok2 || n < 0 || *skip_spaces(args)) {
        uart_puts("? usage: set N V\n");
        return;
    }
    values[n] = v;            /* BUG: no check that n < NVALUES */
    uart_puts("values[");
    uart_putsdec(n);
    uart_puts("] = ");
    uart_putsdec(v);
    uart_putc('\n');
}

static void cmd_sum(void)
{
    int32_t s = 0;
    for (uint32_t i = 0; i < NVALUES; i++)
        s += values[i];
    uart_puts("sum = ");
    uart_putsdec(scale * s);
    uart_putc('\n');
}

static int starts_with(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return 0;
    return 1;
}

int main(void)
{
    static char line[64];

    uart_init(UART_CTRL_RXEN);
    uart_puts("cmdbug ready\n");
    for (;;) {
        read_line(line, sizeof line);
        if (starts_with(line, "set "))
            cmd_set(line + 4);
        else if (!line[0])
            continue;
        else if (starts_with(line, "sum") && !line[3])
            cmd_sum();
        else if (starts_with(line, "q") && !line[1])
            break;
        else
            uart_puts("? unknown command\n");
    }
    uart_puts("bye\n");
    return 0;
}
