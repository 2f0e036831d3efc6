/*
 * virtioblk: a small polling virtio-blk driver over virtio-mmio, on both the
 * legacy (Version 1) and the modern (Version 2) register interface.
 *
 * The QEMU virt board has eight virtio-mmio transports at 0x10001000 +
 * i * 0x1000 (PLIC IRQs 1..8); QEMU puts the first -device in the highest
 * slot (7, 0x10008000). QEMU 7.2 presents the legacy interface by default
 * and the modern one with -global virtio-mmio.force-legacy=false.
 *
 * The guest scans the slots for a block device, does the status handshake
 * (accepting VERSION_1 on Version 2 and FLUSH when offered, nothing else),
 * sets up queue 0 with an 8-entry ring, prints the capacity, then:
 * reads sector 0 (CRC-32 and first 16 bytes), writes a known pattern to
 * sector 1, flushes if FLUSH was offered, reads sector 1 back and compares,
 * reads sectors 2..9 in one request (CRC-32), and exits through the finisher
 * (0, or the number of the failed step after printing "error: ...").
 * Completions are found by polling the used ring's idx; no interrupts, no
 * timer, nothing timing-dependent is printed.
 *
 * The line "virtio-mmio slot N version V" is the only one that differs
 * between the legacy and the modern interface: tests compare everything
 * else with expected/virtioblk.out (which leaves that line out).
 */
#include <stdint.h>
#include "platform.h"
#include "uart.h"

/* ---- virtio-mmio registers ------------------------------------------ */
#define VIRTIO_MMIO_BASE(i)   (0x10001000UL + 0x1000UL * (i))
#define VIRTIO_MMIO_SLOTS     8

#define VM_MAGIC              0x000
#define VM_VERSION            0x004
#define VM_DEVICE_ID          0x008
#define VM_VENDOR_ID          0x00c
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

#define VIRTIO_BLK_F_FLUSH    9             /* feature bit, low word */
#define VIRTIO_F_VERSION_1    32            /* feature bit, high word bit 0 */

#define VIRTIO_BLK_T_IN       0u
#define VIRTIO_BLK_T_OUT      1u
#define VIRTIO_BLK_T_FLUSH    4u

#define VIRTQ_DESC_F_NEXT     1u
#define VIRTQ_DESC_F_WRITE    2u

#define SECTOR_SIZE           512u
#define QSIZE                 8u
#define PAGE_SIZE             4096u
#define MULTI_SECTORS         8u            /* sectors 2..9 */

/* ---- the ring: one layout that suits both interfaces ------------------
 * Legacy: the descriptor table at QueuePFN * 4096, the available ring right
 * after it, the used ring at the next QueueAlign (4096) boundary.
 * Modern: the same three addresses are given separately. */
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
    struct virtq_desc desc[QSIZE];                          /* offset 0, 16-aligned */
    struct virtq_avail avail;                               /* offset 16 * QSIZE */
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

static struct blk_req_hdr req_hdr;
static volatile uint8_t req_status;
static uint8_t sector_buf[SECTOR_SIZE];
static uint8_t write_buf[SECTOR_SIZE];
static uint8_t multi_buf[MULTI_SECTORS * SECTOR_SIZE];

static uintptr_t base;
static uint32_t version;
static uint16_t avail_idx;
static uint16_t used_seen;

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

/* CRC-32 (IEEE, reflected, as zlib.crc32), bitwise. */
static uint32_t crc32(const uint8_t *p, unsigned long n)
{
    uint32_t crc = 0xffffffffu;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1u));
    }
    return ~crc;
}

static void put_hex32(uint32_t v)
{
    for (int s = 28; s >= 0; s -= 4)
        uart_putc("0123456789abcdef"[(v >> s) & 0xf]);
}

static void put_hex8(uint8_t v)
{
    uart_putc("0123456789abcdef"[v >> 4]);
    uart_putc("0123456789abcdef"[v & 0xf]);
}

/* The pattern written to sector 1 (inputs/make-disk.py guest_write_pattern()). */
static void write_pattern(uint8_t *p)
{
    for (unsigned j = 0; j < SECTOR_SIZE; j++)
        p[j] = (uint8_t)((j * 7u + 0x42u) ^ (j >> 8));
}

static void set_desc(unsigned i, const void *addr, uint32_t len, uint16_t flags)
{
    ring.desc[i].addr = (uint64_t)(uintptr_t)addr;
    ring.desc[i].len = len;
    ring.desc[i].flags = flags;
    ring.desc[i].next = (uint16_t)(i + 1);
}

/*
 * One request: header, optional data buffer, status byte (descriptors 0..2,
 * or 0..1 without data). Publishes head 0 in the available ring, notifies
 * queue 0 and polls the used ring. Returns the status byte, or -1 if the
 * used element is not the one expected.
 */
static int blk_request(const char *name, uint32_t type, uint64_t sector,
                       void *data, uint32_t len)
{
    unsigned n = 0;

    req_hdr.type = type;
    req_hdr.reserved = 0;
    req_hdr.sector = sector;
    req_status = 0xff;

    set_desc(n++, &req_hdr, sizeof req_hdr, VIRTQ_DESC_F_NEXT);
    if (data)
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

    while (used->idx == used_seen)
        ;
    fence();                        /* idx before the element and the data */
    volatile struct virtq_used_elem *e = &used->ring[used_seen % QSIZE];
    uint32_t id = e->id, used_len = e->len;
    used_seen++;
    /* Acknowledge the interrupt we did not take (keeps the line quiet). */
    wr(VM_INTERRUPT_ACK, rd(VM_INTERRUPT_STATUS));

    uart_puts(name);
    uart_puts(": status ");
    uart_putdec(req_status);
    uart_puts(" len ");
    uart_putdec(used_len);
    uart_putc('\n');
    if (id != 0)
        return -1;
    return req_status;
}

static int find_device(void)
{
    for (int i = VIRTIO_MMIO_SLOTS - 1; i >= 0; i--) {
        uintptr_t b = VIRTIO_MMIO_BASE(i);
        if (MMIO32(b + VM_MAGIC) == VIRTIO_MAGIC && MMIO32(b + VM_DEVICE_ID) == VIRTIO_ID_BLOCK)
            return i;
    }
    return -1;
}

int main(unsigned long hartid, void *fdt)
{
    (void)hartid;
    (void)fdt;

    uart_puts("virtioblk start\n");
    int slot = find_device();
    if (slot < 0)
        return fail(2, "no virtio-blk device");
    base = VIRTIO_MMIO_BASE(slot);
    version = rd(VM_VERSION);
    /* The one line that differs between the legacy and the modern interface. */
    uart_puts("virtio-mmio slot ");
    uart_putdec((unsigned long)slot);
    uart_puts(" version ");
    uart_putdec(version);
    uart_putc('\n');
    if (version != 1 && version != 2)
        return fail(3, "unknown virtio-mmio version");

    /* Status handshake. */
    wr(VM_STATUS, 0);
    if (rd(VM_STATUS) != 0)
        return fail(4, "reset did not clear status");
    wr(VM_STATUS, STATUS_ACKNOWLEDGE);
    wr(VM_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);

    wr(VM_DEVICE_FEATURES_SEL, 0);
    uint32_t feat_lo = rd(VM_DEVICE_FEATURES);
    uint32_t feat_hi = 0;
    if (version == 2) {
        wr(VM_DEVICE_FEATURES_SEL, 1);
        feat_hi = rd(VM_DEVICE_FEATURES);
        if (!(feat_hi & (1u << (VIRTIO_F_VERSION_1 - 32))))
            return fail(5, "VERSION_1 not offered on a version 2 device");
    }
    int flush = (feat_lo >> VIRTIO_BLK_F_FLUSH) & 1;
    uart_puts(flush ? "flush offered\n" : "flush not offered\n");

    wr(VM_DRIVER_FEATURES_SEL, 0);
    wr(VM_DRIVER_FEATURES, flush ? 1u << VIRTIO_BLK_F_FLUSH : 0);
    if (version == 2) {
        wr(VM_DRIVER_FEATURES_SEL, 1);
        wr(VM_DRIVER_FEATURES, 1u << (VIRTIO_F_VERSION_1 - 32));
        wr(VM_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
        if (!(rd(VM_STATUS) & STATUS_FEATURES_OK))
            return fail(6, "FEATURES_OK not accepted");
    }

    /* Queue 0. */
    wr(VM_QUEUE_SEL, 0);
    if ((version == 1 ? rd(VM_QUEUE_PFN) : rd(VM_QUEUE_READY)) != 0)
        return fail(7, "queue 0 already in use");
    uint32_t qmax = rd(VM_QUEUE_NUM_MAX);
    if (qmax < QSIZE)
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
    uart_puts("driver ok\n");

    /* Capacity (config offset 0, le64, in 512-byte sectors). */
    uint32_t gen, cap_lo, cap_hi;
    do {
        gen = version == 2 ? rd(VM_CONFIG_GENERATION) : 0;
        cap_lo = rd(VM_CONFIG);
        cap_hi = rd(VM_CONFIG + 4);
    } while (version == 2 && rd(VM_CONFIG_GENERATION) != gen);
    uint64_t capacity = ((uint64_t)cap_hi << 32) | cap_lo;
    uart_puts("capacity ");
    uart_putdec64(capacity);
    uart_puts(" sectors\n");
    if (capacity < 2 + MULTI_SECTORS)
        return fail(10, "disk too small");

    /* Sector 0. */
    if (blk_request("read sector 0", VIRTIO_BLK_T_IN, 0, sector_buf, SECTOR_SIZE) != 0)
        return fail(11, "read sector 0");
    uart_puts("sector 0 crc32 ");
    put_hex32(crc32(sector_buf, SECTOR_SIZE));
    uart_puts("\nsector 0 head");
    for (int j = 0; j < 16; j++) {
        uart_putc(' ');
        put_hex8(sector_buf[j]);
    }
    uart_putc('\n');

    /* Write sector 1, flush, read it back. */
    write_pattern(write_buf);
    if (blk_request("write sector 1", VIRTIO_BLK_T_OUT, 1, write_buf, SECTOR_SIZE) != 0)
        return fail(12, "write sector 1");
    if (flush && blk_request("flush", VIRTIO_BLK_T_FLUSH, 0, 0, 0) != 0)
        return fail(13, "flush");
    for (unsigned j = 0; j < SECTOR_SIZE; j++)
        sector_buf[j] = 0;
    if (blk_request("read sector 1", VIRTIO_BLK_T_IN, 1, sector_buf, SECTOR_SIZE) != 0)
        return fail(14, "read sector 1");
    int same = 1;
    for (unsigned j = 0; j < SECTOR_SIZE; j++)
        if (sector_buf[j] != write_buf[j])
            same = 0;
    uart_puts(same ? "sector 1 readback ok\n" : "sector 1 readback mismatch\n");
    if (!same)
        return fail(15, "sector 1 readback");

    /* Sectors 2..9 in one request. */
    if (blk_request("read sectors 2-9", VIRTIO_BLK_T_IN, 2, multi_buf, sizeof multi_buf) != 0)
        return fail(16, "read sectors 2-9");
    uart_puts("sectors 2-9 crc32 ");
    put_hex32(crc32(multi_buf, sizeof multi_buf));
    uart_putc('\n');

    uart_puts("virtioblk done\n");
    return 0;
}
