/*
 * blkscript: a virtio-blk driver (virtio_blk.h, shared with virtioblk.c: polling,
 * both register interfaces) that carries out a request script read from the UART.
 *
 * Set-up as virtioblk: scan the eight virtio-mmio slots (highest first),
 * handshake (accept FLUSH and WRITE_ZEROES when offered, VERSION_1 on
 * Version 2), queue 0 with 8 entries, print the capacity, then "ready".
 *
 * Then one command per line from the UART (polled RX: LSR.DR, then RBR; the
 * FIFO is left off, so the UART never drops a byte; nothing is echoed).
 * Numbers are decimal. COUNT is in 512-byte sectors, at most 128 (64 KiB,
 * one .bss buffer) for r/w/R/W. Every request prints its status byte and the
 * used element's len (unless FLAGS below turn that off).
 *
 *   r SECTOR COUNT        read    -> "r S C status X len L crc H"
 *   w SECTOR COUNT SEED   write the pattern of SEED
 *                                 -> "w S C SEED status X len L crc H"
 *   f                     flush   -> "f status X len L"
 *   z SECTOR COUNT        write zeroes (if offered)
 *                                 -> "z S C status X len L" or "z S C unsupported"
 *   R SECTOR COUNT TIMES [FLAGS]
 *                         TIMES reads of COUNT sectors, sequentially from SECTOR
 *                         (mod 2^64); one line per request "R#i sector S status X
 *                         len L", then "R S C T done errors E crc H" (H over all
 *                         the data read). FLAGS (default 3): bit 0 off, "crc -"
 *                         (the data is not looked at); bit 1 off, no R#i lines
 *                         (for benchmarks: the UART costs more than the disk)
 *   W SECTOR COUNT TIMES SEED [FLAGS]
 *                         TIMES writes, likewise, of one pattern stream from SEED
 *                         (so W S C T SEED writes what w S C*T SEED would);
 *                         "W#i ..." lines, then "W S C T SEED done errors E crc H"
 *   i MODE                how to wait for a completion: 0 (the default) polls the
 *                         used ring; 1 sleeps in wfi until the device's PLIC
 *                         interrupt (IRQ slot + 1; MEIE on, MSTATUS.MIE off: no
 *                         trap), claims it, acknowledges InterruptStatus and
 *                         completes it. Switching to 1 first claims what the PLIC
 *                         latched while polling (QEMU's PLIC keeps an IRQ pending
 *                         once raised, until claimed): "i 1 stale N"; "i 0".
 *   q                     "summary requests N errors E read B written B irqs I",
 *                         then exit 0 through the test finisher (I: interrupts
 *                         claimed in mode 1, one per request)
 *
 * Anything else prints "? WHY" and the script goes on. Empty lines and '\r'
 * are ignored.
 *
 * Data: a read buffer is filled with 0xa5 before each request (a failed read
 * leaves it so: the crc then shows whether the device wrote anything; not
 * with R's FLAGS bit 0 off, where the data is not looked at). CRC-32
 * is zlib.crc32 (table-driven); "crc over all" is zlib.crc32 continued over
 * every request's buffer. The write pattern is xorshift32 (x ^= x << 13;
 * x ^= x >> 17; x ^= x << 5) started at (SEED mod 2^32) ^ 0x9e3779b9 (1 if
 * that is 0), each output word stored little-endian, first word first.
 * STATUS X is the status byte (0 OK, 1 IOERR, 2 UNSUPP; 255 if the device
 * left it alone); errors counts requests whose status is not 0.
 */
#include <stdint.h>
#include "platform.h"
#include "riscv.h"
#include "uart.h"
#include "virtio_blk.h"

#define MAX_SECTORS           128u          /* 64 KiB per request */

struct blk_dwz {                    /* struct virtio_blk_discard_write_zeroes */
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
};

static struct blk_dwz req_dwz;
static uint8_t data_buf[MAX_SECTORS * SECTOR_SIZE] __attribute__((aligned(8)));

static int has_flush, has_write_zeroes;
static unsigned irq;                /* the device's PLIC source */
static int irq_mode;
static unsigned long n_irqs;

/* Totals for the summary. */
static unsigned long n_requests, n_errors;
static uint64_t bytes_read, bytes_written;

/* ---- the write pattern ------------------------------------------------ */
static uint32_t pattern_start(uint64_t seed)
{
    uint32_t x = (uint32_t)seed ^ 0x9e3779b9u;
    return x ? x : 1u;
}

static void pattern_fill(uint32_t *state, uint8_t *p, unsigned long n)
{
    uint32_t x = *state, *w = (uint32_t *)(void *)p;
    for (unsigned long i = 0; i < n / 4; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        w[i] = x;               /* little-endian */
    }
    *state = x;
}

static void fill_words(uint8_t *p, unsigned long n, uint32_t v)
{
    uint32_t *w = (uint32_t *)(void *)p;
    for (unsigned long i = 0; i < n / 4; i++)
        w[i] = v;
}

/* ---- requests --------------------------------------------------------- */
/*
 * One request (see blk_publish()): notifies queue 0 and waits for it, polling
 * the used ring or, in irq_mode, in wfi for the device's PLIC interrupt.
 * Returns the status byte; *used_len gets the used element's len.
 */
static unsigned blk_request(uint32_t type, uint64_t sector, const void *data,
                            uint32_t len, uint32_t *used_len)
{
    blk_publish(type, sector, data, len);
    wr(VM_QUEUE_NOTIFY, 0);

    if (irq_mode) {
        for (;;) {
            wfi();
            uint32_t claimed = plic_claim();
            if (claimed == irq)
                break;
            if (claimed) {
                plic_complete(claimed);
                fail(21, "another interrupt claimed");
                guest_exit(21);
            }
        }
        if (!BLK_USED()) {
            fail(22, "interrupt without a used element");
            guest_exit(22);
        }
    } else {
        while (!BLK_USED())
            ;
    }
    uint32_t id = blk_complete(used_len);   /* acknowledges InterruptStatus */
    if (irq_mode) {
        plic_complete(irq);     /* after the acknowledgement: the line is low again */
        n_irqs++;
    }
    if (id != 0) {
        fail(20, "used element is not head 0");
        guest_exit(20);
    }
    unsigned status = req_status;
    n_requests++;
    if (status != 0)
        n_errors++;
    return status;
}

static void put_status(unsigned status, uint32_t used_len)
{
    uart_puts(" status ");
    uart_putdec(status);
    uart_puts(" len ");
    uart_putdec(used_len);
}

/* ---- script parsing --------------------------------------------------- */
#define LINE_MAX_LEN 120
#define MAX_ARGS     6

static char line[LINE_MAX_LEN + 1];

static char uart_getc(void)
{
    while (!(uart_read_reg(UART_LSR) & UART_LSR_DR))
        ;
    return (char)uart_read_reg(UART_RBR);
}

/* The next line without its '\n' (and without '\r'); 0 if it was too long. */
static int read_line(void)
{
    unsigned n = 0;
    int too_long = 0;
    for (;;) {
        char c = uart_getc();
        if (c == '\n')
            break;
        if (c == '\r')
            continue;
        if (n < LINE_MAX_LEN)
            line[n++] = c;
        else
            too_long = 1;
    }
    line[n] = 0;
    return !too_long;
}

/* Decimal, 0 .. 2^64-1; 0 if the token is not one. */
static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 0;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

static void put_args(char cmd, const uint64_t *arg, int n)
{
    uart_putc(cmd);
    for (int i = 0; i < n; i++) {
        uart_putc(' ');
        uart_putdec64(arg[i]);
    }
}

static void put_crc(int check, uint32_t crc)
{
    uart_puts(" crc ");
    if (check)
        put_hex(crc, 8);
    else
        uart_putc('-');
}

/* r S C, R S C T [FLAGS], w S C SEED, W S C T SEED [FLAGS] */
static void cmd_transfer(char cmd, const uint64_t *arg, int nargs)
{
    int write = cmd == 'w' || cmd == 'W', repeat = cmd == 'R' || cmd == 'W';
    int nfixed = 2 + repeat + write;    /* the arguments before FLAGS, SEED last */
    uint64_t sector = arg[0], count = arg[1], times = repeat ? arg[2] : 1;
    uint64_t flags = nargs > nfixed ? arg[nfixed] : 3;
    int check = flags & 1, lines = repeat && (flags & 2);
    uint32_t len = (uint32_t)count * SECTOR_SIZE, used_len, crc = 0;
    uint32_t state = write ? pattern_start(arg[nfixed - 1]) : 0;
    uint64_t *bytes = write ? &bytes_written : &bytes_read;
    unsigned long errors = 0;
    unsigned status = 0;

    for (uint64_t i = 0; i < times; i++) {
        if (write)
            pattern_fill(&state, data_buf, len);
        else if (check)             /* else the data is never looked at */
            fill_words(data_buf, len, 0xa5a5a5a5u);
        uint64_t s = sector + i * count;
        status = blk_request(write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, s, data_buf, len, &used_len);
        if (status == 0)
            *bytes += len;
        else
            errors++;
        if (check)                  /* what was read, or written (the device only reads it) */
            crc = crc32(crc, data_buf, len);
        if (lines) {
            uart_putc(cmd);
            uart_putc('#');
            uart_putdec64(i);
            uart_puts(" sector ");
            uart_putdec64(s);
            put_status(status, used_len);
            uart_putc('\n');
        }
    }
    put_args(cmd, arg, nargs);
    if (!repeat) {
        put_status(status, used_len);
    } else {
        uart_puts(" done errors ");
        uart_putdec(errors);
    }
    put_crc(check, crc);
    uart_putc('\n');
}

static void cmd_flush(void)
{
    uint32_t used_len;
    if (!has_flush) {
        uart_puts("f unsupported\n");
        return;
    }
    unsigned status = blk_request(VIRTIO_BLK_T_FLUSH, 0, 0, 0, &used_len);
    uart_putc('f');
    put_status(status, used_len);
    uart_putc('\n');
}

static void cmd_write_zeroes(const uint64_t *arg)
{
    uint32_t used_len;
    put_args('z', arg, 2);
    if (!has_write_zeroes) {
        uart_puts(" unsupported\n");
        return;
    }
    req_dwz.sector = arg[0];
    req_dwz.num_sectors = (uint32_t)arg[1];
    req_dwz.flags = 0;
    unsigned status = blk_request(VIRTIO_BLK_T_WRITE_ZEROES, 0, &req_dwz, sizeof req_dwz, &used_len);
    put_status(status, used_len);
    uart_putc('\n');
}

static void cmd_irq_mode(uint64_t mode)
{
    uart_puts(mode ? "i 1" : "i 0");
    if (mode && !irq_mode) {
        plic_set_priority(irq, 1);
        plic_set_threshold(0);
        plic_enable(irq);
        unsigned long stale = 0;
        uint32_t c;
        while ((c = plic_claim()) != 0) {
            plic_complete(c);
            stale++;
        }
        csr_set(mie, MIE_MEIE);
        uart_puts(" stale ");
        uart_putdec(stale);
    } else if (!mode && irq_mode) {
        csr_clear(mie, MIE_MEIE);
        MMIO32(PLIC_ENABLE_CTX0 + 4u * (irq / 32)) &= ~(1u << (irq % 32));
    }
    irq_mode = mode != 0;
    uart_putc('\n');
}

static void run_line(void)
{
    char *tok[MAX_ARGS + 1];
    int ntok = 0;
    for (char *p = line; *p;) {
        while (*p == ' ' || *p == '\t')
            *p++ = 0;
        if (!*p)
            break;
        if (ntok == MAX_ARGS + 1) {
            uart_puts("? too many words\n");
            return;
        }
        tok[ntok++] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
    if (ntok == 0)
        return;
    if (tok[0][1] != 0) {
        uart_puts("? unknown command\n");
        return;
    }
    char cmd = tok[0][0];
    uint64_t arg[MAX_ARGS];
    int nargs = ntok - 1;
    for (int i = 0; i < nargs; i++)
        if (!parse_u64(tok[i + 1], &arg[i])) {
            uart_puts("? bad number\n");
            return;
        }

    int lo, hi;         /* allowed numbers of arguments */
    switch (cmd) {
    case 'r': lo = hi = 2; break;
    case 'w': lo = hi = 3; break;
    case 'f': case 'q': lo = hi = 0; break;
    case 'i': lo = hi = 1; break;
    case 'z': lo = hi = 2; break;
    case 'R': lo = 3; hi = 4; break;
    case 'W': lo = 4; hi = 5; break;
    default:
        uart_puts("? unknown command\n");
        return;
    }
    if (nargs < lo || nargs > hi) {
        uart_puts("? wrong number of arguments\n");
        return;
    }
    if ((cmd == 'r' || cmd == 'w' || cmd == 'R' || cmd == 'W') && arg[1] > MAX_SECTORS) {
        uart_puts("? count over 128\n");
        return;
    }
    if (cmd == 'z' && arg[1] > 0xffffffffu) {
        uart_puts("? count over 2^32-1\n");
        return;
    }

    switch (cmd) {
    case 'r': case 'R': case 'w': case 'W': cmd_transfer(cmd, arg, nargs); break;
    case 'f': cmd_flush(); break;
    case 'z': cmd_write_zeroes(arg); break;
    case 'i': cmd_irq_mode(arg[0]); break;
    case 'q':
        uart_puts("summary requests ");
        uart_putdec(n_requests);
        uart_puts(" errors ");
        uart_putdec(n_errors);
        uart_puts(" read ");
        uart_putdec64(bytes_read);
        uart_puts(" written ");
        uart_putdec64(bytes_written);
        uart_puts(" irqs ");
        uart_putdec(n_irqs);
        uart_putc('\n');
        guest_exit(0);
    }
}

/* ---- set-up (virtioblk.c's handshake) --------------------------------- */
static int setup(void)
{
    int err = blk_probe();
    if (err)
        return err;
    irq = (unsigned)slot + 1;
    vm_put_features();
    uart_putc('\n');
    err = vm_check_version_1();
    if (err)
        return err;
    has_flush = (feat_lo >> VIRTIO_BLK_F_FLUSH) & 1;
    has_write_zeroes = (feat_lo >> VIRTIO_BLK_F_WRITE_ZEROES) & 1;
    uart_puts(has_flush ? "flush offered\n" : "flush not offered\n");
    uart_puts(has_write_zeroes ? "write-zeroes offered\n" : "write-zeroes not offered\n");
    err = blk_start((uint32_t)has_flush << VIRTIO_BLK_F_FLUSH
                    | (uint32_t)has_write_zeroes << VIRTIO_BLK_F_WRITE_ZEROES);
    if (err)
        return err;
    blk_capacity();
    return 0;
}

int main(unsigned long hartid, void *fdt)
{
    (void)hartid;
    (void)fdt;

    uart_puts("blkscript start\n");
    int err = setup();
    if (err)
        return err;
    crc_init();
    uart_puts("ready\n");
    for (;;) {
        if (!read_line()) {
            uart_puts("? line too long\n");
            continue;
        }
        run_line();
    }
}
