/*
 * blkscript: a virtio-blk driver (virtioblk.c's, polling, both register
 * interfaces) that carries out a request script read from the UART.
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

/* ---- virtio-mmio registers (as virtioblk.c) ------------------------- */
#define VIRTIO_MMIO_BASE(i)   (0x10001000UL + 0x1000UL * (i))
#define VIRTIO_MMIO_SLOTS     8

#define VM_MAGIC              0x000
#define VM_VERSION            0x004
#define VM_DEVICE_ID          0x008
#define VM_DEVICE_FEATURES    0x010
#define VM_DEVICE_FEATURES_SEL 0x014
#define VM_DRIVER_FEATURES    0x020
#define VM_DRIVER_FEATURES_SEL 0x024
#define VM_GUEST_PAGE_SIZE    0x028   /* legacy */
#define VM_QUEUE_SEL          0x030
#define VM_QUEUE_NUM_MAX      0x034
#define VM_QUEUE_NUM          0x038
#define VM_QUEUE_ALIGN        0x03c   /* legacy */
#define VM_QUEUE_PFN          0x040   /* legacy */
#define VM_QUEUE_READY        0x044   /* modern */
#define VM_QUEUE_NOTIFY       0x050
#define VM_INTERRUPT_STATUS   0x060
#define VM_INTERRUPT_ACK      0x064
#define VM_STATUS             0x070
#define VM_QUEUE_DESC_LOW     0x080   /* modern */
#define VM_QUEUE_DESC_HIGH    0x084
#define VM_QUEUE_DRIVER_LOW   0x090
#define VM_QUEUE_DRIVER_HIGH  0x094
#define VM_QUEUE_DEVICE_LOW   0x0a0
#define VM_QUEUE_DEVICE_HIGH  0x0a4
#define VM_CONFIG_GENERATION  0x0fc   /* modern */
#define VM_CONFIG             0x100

#define VIRTIO_MAGIC          0x74726976u   /* "virt" */
#define VIRTIO_ID_BLOCK       2

#define STATUS_ACKNOWLEDGE    1u
#define STATUS_DRIVER         2u
#define STATUS_DRIVER_OK      4u
#define STATUS_FEATURES_OK    8u
#define STATUS_FAILED         128u

#define VIRTIO_BLK_F_FLUSH    9             /* feature bits, low word */
#define VIRTIO_BLK_F_WRITE_ZEROES 14
#define VIRTIO_F_VERSION_1    32            /* high word bit 0 */

#define VIRTIO_BLK_T_IN       0u
#define VIRTIO_BLK_T_OUT      1u
#define VIRTIO_BLK_T_FLUSH    4u
#define VIRTIO_BLK_T_WRITE_ZEROES 13u

#define VIRTQ_DESC_F_NEXT     1u
#define VIRTQ_DESC_F_WRITE    2u

#define SECTOR_SIZE           512u
#define MAX_SECTORS           128u          /* 64 KiB per request */
#define QSIZE                 8u
#define PAGE_SIZE             4096u

/* ---- the ring (virtioblk.c's layout) --------------------------------- */
struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct virtq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[QSIZE];
    uint16_t used_event;
};

struct virtq_used_elem {
    uint32_t id;
    uint32_t len;
};

struct virtq_used {
    uint16_t flags;
    uint16_t idx;
    struct virtq_used_elem ring[QSIZE];
    uint16_t avail_event;
};

struct vring {
    struct virtq_desc desc[QSIZE];
    struct virtq_avail avail;
    uint8_t pad[PAGE_SIZE - 16 * QSIZE - sizeof(struct virtq_avail)];
    struct virtq_used used;                                 /* offset 4096 */
};

_Static_assert(__builtin_offsetof(struct vring, used) == PAGE_SIZE, "used ring at 4096");

static struct vring ring __attribute__((aligned(PAGE_SIZE)));

struct blk_req_hdr {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

struct blk_dwz {                    /* struct virtio_blk_discard_write_zeroes */
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
};

static struct blk_req_hdr req_hdr;
static struct blk_dwz req_dwz;
static volatile uint8_t req_status;
static uint8_t data_buf[MAX_SECTORS * SECTOR_SIZE] __attribute__((aligned(8)));
static uint32_t crc_table[256];

static uintptr_t base;
static uint32_t version;
static uint16_t avail_idx;
static uint16_t used_seen;
static int has_flush, has_write_zeroes;
static unsigned irq;                /* the device's PLIC source */
static int irq_mode;
static unsigned long n_irqs;

/* Totals for the summary. */
static unsigned long n_requests, n_errors;
static uint64_t bytes_read, bytes_written;

static inline void fence(void) { __asm__ volatile ("fence rw, rw" ::: "memory"); }

static inline uint32_t rd(unsigned off) { return MMIO32(base + off); }
static inline void wr(unsigned off, uint32_t v) { MMIO32(base + off) = v; }

static int fail(int code, const char *what)
{
    uart_puts("error: ");
    uart_puts(what);
    uart_putc('\n');
    if (base)
        wr(VM_STATUS, rd(VM_STATUS) | STATUS_FAILED);
    return code;
}

/* ---- CRC-32 (zlib.crc32), table-driven -------------------------------- */
static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & -(c & 1u));
        crc_table[i] = c;
    }
}

/* zlib.crc32(data, crc) */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, unsigned long n)
{
    uint32_t c = ~crc;
    while (n--)
        c = crc_table[(c ^ *p++) & 0xffu] ^ (c >> 8);
    return ~c;
}

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

static void put_hex32(uint32_t v)
{
    for (int s = 28; s >= 0; s -= 4)
        uart_putc("0123456789abcdef"[(v >> s) & 0xf]);
}

/* ---- requests --------------------------------------------------------- */
static void set_desc(unsigned i, const void *addr, uint32_t len, uint16_t flags)
{
    ring.desc[i].addr = (uint64_t)(uintptr_t)addr;
    ring.desc[i].len = len;
    ring.desc[i].flags = flags;
    ring.desc[i].next = (uint16_t)(i + 1);
}

/*
 * One request, head 0: header, then the data buffer (device-writable for IN)
 * or the write-zeroes segment if any, then the status byte. Polls the used
 * ring. Returns the status byte; *used_len gets the used element's len.
 */
static unsigned blk_request(uint32_t type, uint64_t sector, const void *data,
                            uint32_t len, uint32_t *used_len)
{
    unsigned n = 0;

    req_hdr.type = type;
    req_hdr.reserved = 0;
    req_hdr.sector = sector;
    req_status = 0xff;

    set_desc(n++, &req_hdr, sizeof req_hdr, VIRTQ_DESC_F_NEXT);
    if (data && len)
        set_desc(n++, data, len,
                 VIRTQ_DESC_F_NEXT | (type == VIRTIO_BLK_T_IN ? VIRTQ_DESC_F_WRITE : 0));
    set_desc(n++, (const void *)&req_status, 1, VIRTQ_DESC_F_WRITE);

    volatile struct virtq_avail *avail = &ring.avail;
    volatile struct virtq_used *used = &ring.used;

    avail->ring[avail_idx % QSIZE] = 0;
    fence();                        /* descriptors and ring entry before idx */
    avail->idx = ++avail_idx;
    fence();                        /* idx before the notify */
    wr(VM_QUEUE_NOTIFY, 0);

    if (irq_mode) {
        uint32_t claimed;
        for (;;) {
            wfi();
            claimed = plic_claim();
            if (claimed == irq)
                break;
            if (claimed) {
                plic_complete(claimed);
                fail(21, "another interrupt claimed");
                guest_exit(21);
            }
        }
        wr(VM_INTERRUPT_ACK, rd(VM_INTERRUPT_STATUS));
        plic_complete(claimed);
        n_irqs++;
        if (used->idx == used_seen) {
            fail(22, "interrupt without a used element");
            guest_exit(22);
        }
    } else {
        while (used->idx == used_seen)
            ;
        wr(VM_INTERRUPT_ACK, rd(VM_INTERRUPT_STATUS));
    }
    fence();                        /* idx before the element and the data */
    volatile struct virtq_used_elem *e = &used->ring[used_seen % QSIZE];
    uint32_t id = e->id;
    *used_len = e->len;
    used_seen++;
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
        put_hex32(crc);
    else
        uart_putc('-');
}

/* r S C, R S C T [FLAGS] */
static void cmd_read(char cmd, const uint64_t *arg, int nargs)
{
    uint64_t sector = arg[0], count = arg[1], times = cmd == 'R' ? arg[2] : 1;
    uint64_t flags = cmd == 'r' || nargs < 4 ? 3 : arg[3];
    int check = flags & 1, lines = cmd == 'R' && (flags & 2);
    uint32_t len = (uint32_t)count * SECTOR_SIZE, used_len, crc = 0;
    unsigned long errors = 0;
    unsigned status = 0;

    for (uint64_t i = 0; i < times; i++) {
        if (check)                  /* else the data is never looked at */
            fill_words(data_buf, len, 0xa5a5a5a5u);
        uint64_t s = sector + i * count;
        status = blk_request(VIRTIO_BLK_T_IN, s, data_buf, len, &used_len);
        if (status == 0)
            bytes_read += len;
        else
            errors++;
        if (check)
            crc = crc32_update(crc, data_buf, len);
        if (lines) {
            uart_puts("R#");
            uart_putdec64(i);
            uart_puts(" sector ");
            uart_putdec64(s);
            put_status(status, used_len);
            uart_putc('\n');
        }
    }
    put_args(cmd, arg, nargs);
    if (cmd == 'r') {
        put_status(status, used_len);
    } else {
        uart_puts(" done errors ");
        uart_putdec(errors);
    }
    put_crc(check, crc);
    uart_putc('\n');
}

/* w S C SEED, W S C T SEED [FLAGS] */
static void cmd_write(char cmd, const uint64_t *arg, int nargs)
{
    uint64_t sector = arg[0], count = arg[1], times = cmd == 'W' ? arg[2] : 1;
    uint64_t seed = cmd == 'W' ? arg[3] : arg[2];
    uint64_t flags = cmd == 'w' || nargs < 5 ? 3 : arg[4];
    int check = flags & 1, lines = cmd == 'W' && (flags & 2);
    uint32_t len = (uint32_t)count * SECTOR_SIZE, used_len, crc = 0;
    uint32_t state = pattern_start(seed);
    unsigned long errors = 0;
    unsigned status = 0;

    for (uint64_t i = 0; i < times; i++) {
        pattern_fill(&state, data_buf, len);
        if (check)
            crc = crc32_update(crc, data_buf, len);
        uint64_t s = sector + i * count;
        status = blk_request(VIRTIO_BLK_T_OUT, s, data_buf, len, &used_len);
        if (status == 0)
            bytes_written += len;
        else
            errors++;
        if (lines) {
            uart_puts("W#");
            uart_putdec64(i);
            uart_puts(" sector ");
            uart_putdec64(s);
            put_status(status, used_len);
            uart_putc('\n');
        }
    }
    put_args(cmd, arg, nargs);
    if (cmd == 'w') {
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
    case 'r': case 'R': cmd_read(cmd, arg, nargs); break;
    case 'w': case 'W': cmd_write(cmd, arg, nargs); break;
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
static int find_device(void)
{
    for (int i = VIRTIO_MMIO_SLOTS - 1; i >= 0; i--) {
        uintptr_t b = VIRTIO_MMIO_BASE(i);
        if (MMIO32(b + VM_MAGIC) == VIRTIO_MAGIC && MMIO32(b + VM_DEVICE_ID) == VIRTIO_ID_BLOCK)
            return i;
    }
    return -1;
}

static int setup(void)
{
    int slot = find_device();
    if (slot < 0)
        return fail(2, "no virtio-blk device");
    base = VIRTIO_MMIO_BASE(slot);
    irq = (unsigned)slot + 1;
    version = rd(VM_VERSION);
    uart_puts("virtio-mmio slot ");
    uart_putdec((unsigned long)slot);
    uart_puts(" version ");
    uart_putdec(version);
    uart_putc('\n');
    if (version != 1 && version != 2)
        return fail(3, "unknown virtio-mmio version");

    wr(VM_STATUS, 0);
    if (rd(VM_STATUS) != 0)
        return fail(4, "reset did not clear status");
    wr(VM_STATUS, STATUS_ACKNOWLEDGE);
    wr(VM_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);

    wr(VM_DEVICE_FEATURES_SEL, 0);
    uint32_t feat_lo = rd(VM_DEVICE_FEATURES);
    uint32_t feat_hi = 0;
    uart_puts("device features 0x");
    put_hex32(feat_lo);
    if (version == 2) {
        wr(VM_DEVICE_FEATURES_SEL, 1);
        feat_hi = rd(VM_DEVICE_FEATURES);
        uart_puts(" 0x");
        put_hex32(feat_hi);
    }
    uart_putc('\n');
    if (version == 2 && !(feat_hi & (1u << (VIRTIO_F_VERSION_1 - 32))))
        return fail(5, "VERSION_1 not offered on a version 2 device");
    has_flush = (feat_lo >> VIRTIO_BLK_F_FLUSH) & 1;
    has_write_zeroes = (feat_lo >> VIRTIO_BLK_F_WRITE_ZEROES) & 1;
    uart_puts(has_flush ? "flush offered\n" : "flush not offered\n");
    uart_puts(has_write_zeroes ? "write-zeroes offered\n" : "write-zeroes not offered\n");

    wr(VM_DRIVER_FEATURES_SEL, 0);
    wr(VM_DRIVER_FEATURES, (uint32_t)has_flush << VIRTIO_BLK_F_FLUSH
                           | (uint32_t)has_write_zeroes << VIRTIO_BLK_F_WRITE_ZEROES);
    if (version == 2) {
        wr(VM_DRIVER_FEATURES_SEL, 1);
        wr(VM_DRIVER_FEATURES, 1u << (VIRTIO_F_VERSION_1 - 32));
        wr(VM_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
        if (!(rd(VM_STATUS) & STATUS_FEATURES_OK))
            return fail(6, "FEATURES_OK not accepted");
    }

    wr(VM_QUEUE_SEL, 0);
    if ((version == 1 ? rd(VM_QUEUE_PFN) : rd(VM_QUEUE_READY)) != 0)
        return fail(7, "queue 0 already in use");
    if (rd(VM_QUEUE_NUM_MAX) < QSIZE)
        return fail(8, "queue 0 too small");
    wr(VM_QUEUE_NUM, QSIZE);
    uintptr_t desc = (uintptr_t)&ring.desc, drv = (uintptr_t)&ring.avail,
              dev = (uintptr_t)&ring.used;
    if (version == 1) {
        wr(VM_GUEST_PAGE_SIZE, PAGE_SIZE);
        wr(VM_QUEUE_ALIGN, PAGE_SIZE);
        wr(VM_QUEUE_PFN, (uint32_t)(desc / PAGE_SIZE));
    } else {
        wr(VM_QUEUE_DESC_LOW, (uint32_t)desc);
        wr(VM_QUEUE_DESC_HIGH, (uint32_t)((uint64_t)desc >> 32));
        wr(VM_QUEUE_DRIVER_LOW, (uint32_t)drv);
        wr(VM_QUEUE_DRIVER_HIGH, (uint32_t)((uint64_t)drv >> 32));
        wr(VM_QUEUE_DEVICE_LOW, (uint32_t)dev);
        wr(VM_QUEUE_DEVICE_HIGH, (uint32_t)((uint64_t)dev >> 32));
        wr(VM_QUEUE_READY, 1);
    }

    uint32_t st = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK
                  | (version == 2 ? STATUS_FEATURES_OK : 0);
    wr(VM_STATUS, st);
    if (rd(VM_STATUS) != st)
        return fail(9, "device did not accept DRIVER_OK");

    uint32_t gen, cap_lo, cap_hi;
    do {
        gen = version == 2 ? rd(VM_CONFIG_GENERATION) : 0;
        cap_lo = rd(VM_CONFIG);
        cap_hi = rd(VM_CONFIG + 4);
    } while (version == 2 && rd(VM_CONFIG_GENERATION) != gen);
    uart_puts("capacity ");
    uart_putdec64(((uint64_t)cap_hi << 32) | cap_lo);
    uart_puts(" sectors\n");
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
