/*
 * virtio_blk.h: the polling virtio-blk driver over virtio-mmio shared by the
 * virtioblk and blkscript guests, on both the legacy (Version 1) and the
 * modern (Version 2) register interface. Header-only (static functions and
 * data, one copy per guest): one device, queue 0 with an 8-entry ring, one
 * request in flight at a time, always as the chain with head 0.
 *
 * Set-up, in this order (each step returns 0 or the number of the failed step
 * after printing "error: ...", which the guest exits with):
 *   blk_probe()            scan the eight slots (highest first), print
 *                          "virtio-mmio slot N version V", reset, ACKNOWLEDGE,
 *                          DRIVER, read the device features (2..4)
 *   blk_check_version_1()  Version 2 must offer VERSION_1 (5)
 *   blk_start(FEATURES)    accept FEATURES (low word; VERSION_1 too on Version
 *                          2, then FEATURES_OK), set up queue 0, DRIVER_OK (6..9)
 *   blk_capacity()         print "capacity N sectors", return N
 * A request: blk_publish(), wr(VM_QUEUE_NOTIFY, 0), wait until BLK_USED()
 * (polling, or after the interrupt), blk_complete().
 */
#ifndef VIRTIO_BLK_H
#define VIRTIO_BLK_H

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
#define QSIZE                 8u
#define PAGE_SIZE             4096u

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

static uintptr_t base;              /* the device's registers */
static int slot;                    /* its virtio-mmio slot (PLIC IRQ slot + 1) */
static uint32_t version;            /* 1 legacy, 2 modern */
static uint32_t feat_lo, feat_hi;   /* the device's features (feat_hi: Version 2 only) */
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

static void put_hex32(uint32_t v)
{
    for (int s = 28; s >= 0; s -= 4)
        uart_putc("0123456789abcdef"[(v >> s) & 0xf]);
}

/* ---- CRC-32 (IEEE, reflected, as zlib.crc32), table-driven ------------- */
static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & -(c & 1u));
        crc_table[i] = c;
    }
}

/* zlib.crc32(data, crc), after crc_init(). A real function (not inlined):
 * tests/e2e/test_blk_reverse.py expects virtioblk's reads of sector_buf in crc32. */
static __attribute__((noinline)) uint32_t crc32(uint32_t crc, const uint8_t *p, unsigned long n)
{
    uint32_t c = ~crc;
    while (n--)
        c = crc_table[(c ^ *p++) & 0xffu] ^ (c >> 8);
    return ~c;
}

/* ---- set-up ----------------------------------------------------------- */
static int find_device(void)
{
    for (int i = VIRTIO_MMIO_SLOTS - 1; i >= 0; i--) {
        uintptr_t b = VIRTIO_MMIO_BASE(i);
        if (MMIO32(b + VM_MAGIC) == VIRTIO_MAGIC && MMIO32(b + VM_DEVICE_ID) == VIRTIO_ID_BLOCK)
            return i;
    }
    return -1;
}

/* Find the device, print "virtio-mmio slot N version V" (the one line that
 * differs between the legacy and the modern interface), reset it, ACKNOWLEDGE,
 * DRIVER, read its features into feat_lo/feat_hi. 0 or the failed step (2..4). */
static int blk_probe(void)
{
    slot = find_device();
    if (slot < 0)
        return fail(2, "no virtio-blk device");
    base = VIRTIO_MMIO_BASE(slot);
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
    feat_lo = rd(VM_DEVICE_FEATURES);
    feat_hi = 0;
    if (version == 2) {
        wr(VM_DEVICE_FEATURES_SEL, 1);
        feat_hi = rd(VM_DEVICE_FEATURES);
    }
    return 0;
}

/* 0, or step 5 failed: a Version 2 device must offer VERSION_1. */
static int blk_check_version_1(void)
{
    if (version == 2 && !(feat_hi & (1u << (VIRTIO_F_VERSION_1 - 32))))
        return fail(5, "VERSION_1 not offered on a version 2 device");
    return 0;
}

/* Accept the features `accept` (low word; and VERSION_1, then FEATURES_OK, on
 * Version 2), set up queue 0 with QSIZE entries in `ring`, then DRIVER_OK (read
 * back). 0 or the failed step (6..9). */
static int blk_start(uint32_t accept)
{
    wr(VM_DRIVER_FEATURES_SEL, 0);
    wr(VM_DRIVER_FEATURES, accept);
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
    return 0;
}

/* The capacity (config offset 0, le64, in 512-byte sectors; inside a
 * ConfigGeneration loop on Version 2), printed as "capacity N sectors". */
static uint64_t blk_capacity(void)
{
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
    return capacity;
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
 * blk_publish() and blk_complete() are real functions (noinline), so that in
 * virtioblk's blk_request, around the notify and the completion, gdb steps
 * over them as calls, forward and backward, and BLK_USED() is a macro for the
 * same reason: tests/e2e/test_blk_reverse.py steps there line by line.
 */

/*
 * Make one request available as head 0: the header, then the data buffer if
 * any (device-writable for IN; the write-zeroes segment for WRITE_ZEROES),
 * then the status byte (descriptors 0..2, or 0..1 without data); req_status
 * is 0xff until the device writes it. The caller then notifies queue 0
 * (wr(VM_QUEUE_NOTIFY, 0)) and waits for BLK_USED().
 */
static __attribute__((noinline)) void blk_publish(uint32_t type, uint64_t sector,
                                                  const void *data, uint32_t len)
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
    avail->ring[avail_idx % QSIZE] = 0;
    fence();                        /* descriptors and ring entry before idx */
    avail->idx = ++avail_idx;
    fence();                        /* idx before the notify */
}

/* Whether the device has used the request: the used ring's idx moved. */
#define BLK_USED() (((volatile struct virtq_used *)&ring.used)->idx != used_seen)

/* Once BLK_USED(): takes the used element and acknowledges the device's
 * interrupt (taken or not: that keeps the line quiet). Returns the element's
 * id (0 for our head); *used_len gets its len. */
static __attribute__((noinline)) uint32_t blk_complete(uint32_t *used_len)
{
    fence();                        /* idx before the element and the data */
    volatile struct virtq_used_elem *e = &((volatile struct virtq_used *)&ring.used)->ring[used_seen % QSIZE];
    uint32_t id = e->id;
    *used_len = e->len;
    used_seen++;
    wr(VM_INTERRUPT_ACK, rd(VM_INTERRUPT_STATUS));
    return id;
}

#endif /* VIRTIO_BLK_H */
