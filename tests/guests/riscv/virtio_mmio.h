/*
 * virtio_mmio.h: the virtio-mmio transport shared by the virtio guests
 * (virtioblk and blkscript through virtio_blk.h, netping), on both the legacy
 * (Version 1) and the modern (Version 2) register interface: the registers,
 * the split-ring layout, device discovery by DeviceID, the status handshake,
 * queue set-up, and publishing and taking ring entries. Header-only (static
 * functions and data, one copy per guest): one device per guest, polled.
 *
 * The includer defines QSIZE, the entries of each of its queues, first.
 *
 * Set-up, in this order (each step returns 0 or the number of the failed step
 * after printing "error: ...", which the guest exits with):
 *   vm_find(ID, MISSING)     find the device with DeviceID ID (the highest
 *                            slot first; 2, printing MISSING), its version (3)
 *   vm_reset()               reset (4), ACKNOWLEDGE, DRIVER, read the device
 *                            features into feat_lo/feat_hi
 *   vm_check_version_1()     Version 2 must offer VERSION_1 (5)
 *   vm_accept(FEATURES, N)   accept FEATURES (low word; VERSION_1 too on
 *                            Version 2, then FEATURES_OK: N); GuestPageSize
 *                            on Version 1
 *   vm_setup_queue(Q, RING)  0, or 1 (queue Q in use), 2 (it is too small):
 *                            the guest says which step failed
 *   vm_driver_ok(N)          DRIVER_OK, read back (N)
 * A request: vq_set_desc() for each descriptor, vq_publish() the head,
 * wr(VM_QUEUE_NOTIFY, Q), wait until VQ_USED(), vq_take().
 */
#ifndef VIRTIO_MMIO_H
#define VIRTIO_MMIO_H

#include <stdint.h>
#include "platform.h"
#include "uart.h"

#ifndef QSIZE
#error "define QSIZE (entries per queue) before including virtio_mmio.h"
#endif

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

#define STATUS_ACKNOWLEDGE    1u
#define STATUS_DRIVER         2u
#define STATUS_DRIVER_OK      4u
#define STATUS_FEATURES_OK    8u
#define STATUS_FAILED         128u

#define VIRTIO_F_VERSION_1    32            /* high word bit 0 */

#define VIRTQ_DESC_F_NEXT     1u
#define VIRTQ_DESC_F_WRITE    2u

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

/* ---- the device ------------------------------------------------------- */
static uintptr_t base;              /* the device's registers */
static int slot;                    /* its virtio-mmio slot (PLIC IRQ slot + 1) */
static uint32_t version;            /* 1 legacy, 2 modern */
static uint32_t feat_lo, feat_hi;   /* the device's features (feat_hi: Version 2 only) */

static inline void fence(void) { __asm__ volatile ("fence rw, rw" ::: "memory"); }

static inline uint32_t rd(unsigned off) { return MMIO32(base + off); }
static inline void wr(unsigned off, uint32_t v) { MMIO32(base + off) = v; }

/* v as its `digits` low hex digits, lower case. */
static void put_hex(uint32_t v, int digits)
{
    for (int s = 4 * (digits - 1); s >= 0; s -= 4)
        uart_putc("0123456789abcdef"[(v >> s) & 0xf]);
}

/* Print "error: WHAT", set FAILED in the device's Status (once found) and
 * return code (the guest exits with it). */
static int fail(int code, const char *what)
{
    uart_puts("error: ");
    uart_puts(what);
    uart_putc('\n');
    if (base)
        wr(VM_STATUS, rd(VM_STATUS) | STATUS_FAILED);
    return code;
}

/* "virtio-mmio slot N version V" (no newline). */
static void vm_put_slot(void)
{
    uart_puts("virtio-mmio slot ");
    uart_putdec((unsigned long)slot);
    uart_puts(" version ");
    uart_putdec(version);
}

/* "device features 0xLOW", with " 0xHIGH" on Version 2 (no newline). */
static __attribute__((unused)) void vm_put_features(void)
{
    uart_puts("device features 0x");
    put_hex(feat_lo, 8);
    if (version == 2) {
        uart_puts(" 0x");
        put_hex(feat_hi, 8);
    }
}

/* ---- set-up ----------------------------------------------------------- */
/* The device with DeviceID `id` (the highest slot first): slot, base and
 * version. 0, or step 2 (none: "error: MISSING") or 3 (a version other than
 * 1 and 2, after the line "virtio-mmio slot N version V") failed. */
static int vm_find(uint32_t id, const char *missing)
{
    for (slot = VIRTIO_MMIO_SLOTS - 1; slot >= 0; slot--) {
        uintptr_t b = VIRTIO_MMIO_BASE(slot);
        if (MMIO32(b + VM_MAGIC) == VIRTIO_MAGIC && MMIO32(b + VM_DEVICE_ID) == id)
            break;
    }
    if (slot < 0)
        return fail(2, missing);
    base = VIRTIO_MMIO_BASE(slot);
    version = rd(VM_VERSION);
    if (version != 1 && version != 2) {
        vm_put_slot();
        uart_putc('\n');
        return fail(3, "unknown virtio-mmio version");
    }
    return 0;
}

/* Reset the device, ACKNOWLEDGE, DRIVER, read its features into
 * feat_lo/feat_hi. 0, or step 4 failed. */
static int vm_reset(void)
{
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
static int vm_check_version_1(void)
{
    if (version == 2 && !(feat_hi & (1u << (VIRTIO_F_VERSION_1 - 32))))
        return fail(5, "VERSION_1 not offered on a version 2 device");
    return 0;
}

/* Accept the features `accept` (low word; and VERSION_1, then FEATURES_OK,
 * on Version 2); on Version 1, GuestPageSize 4096 for the queues' PFNs.
 * 0, or `step` (FEATURES_OK not accepted). */
static int vm_accept(uint32_t accept, int step)
{
    wr(VM_DRIVER_FEATURES_SEL, 0);
    wr(VM_DRIVER_FEATURES, accept);
    if (version == 1) {
        wr(VM_GUEST_PAGE_SIZE, PAGE_SIZE);
        return 0;
    }
    wr(VM_DRIVER_FEATURES_SEL, 1);
    wr(VM_DRIVER_FEATURES, 1u << (VIRTIO_F_VERSION_1 - 32));
    wr(VM_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    if (!(rd(VM_STATUS) & STATUS_FEATURES_OK))
        return fail(step, "FEATURES_OK not accepted");
    return 0;
}

/* Queue q with QSIZE entries in r (legacy: QueueAlign 4096 and QueuePFN;
 * modern: the three addresses, then QueueReady). Prints nothing: 0, or 1 if
 * the queue is already in use, 2 if it has fewer than QSIZE entries. */
static int vm_setup_queue(unsigned q, struct vring *r)
{
    wr(VM_QUEUE_SEL, q);
    if ((version == 1 ? rd(VM_QUEUE_PFN) : rd(VM_QUEUE_READY)) != 0)
        return 1;
    if (rd(VM_QUEUE_NUM_MAX) < QSIZE)
        return 2;
    wr(VM_QUEUE_NUM, QSIZE);
    uintptr_t desc = (uintptr_t)&r->desc, drv = (uintptr_t)&r->avail,
              dev = (uintptr_t)&r->used;
    if (version == 1) {
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
    return 0;
}

/* DRIVER_OK (FEATURES_OK kept on Version 2), read back. 0, or `step`. */
static int vm_driver_ok(int step)
{
    uint32_t st = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK
                  | (version == 2 ? STATUS_FEATURES_OK : 0);
    wr(VM_STATUS, st);
    if (rd(VM_STATUS) != st)
        return fail(step, "device did not accept DRIVER_OK");
    return 0;
}

/* Config space reads: do { gen = vm_config_gen(); read } while
 * (vm_config_gen() != gen); (ConfigGeneration on Version 2, 0 on Version 1,
 * which has none: one pass). */
static inline uint32_t vm_config_gen(void)
{
    return version == 2 ? rd(VM_CONFIG_GENERATION) : 0;
}

/* ---- ring entries ----------------------------------------------------- */
static void vq_set_desc(struct vring *r, unsigned i, const void *addr, uint32_t len,
                        uint16_t flags, uint16_t next)
{
    r->desc[i].addr = (uint64_t)(uintptr_t)addr;
    r->desc[i].len = len;
    r->desc[i].flags = flags;
    r->desc[i].next = next;
}

/* Make the chain at `head` available (*avail_idx: the driver's count); the
 * caller then notifies the queue. */
static inline void vq_publish(struct vring *r, uint16_t *avail_idx, uint16_t head)
{
    volatile struct virtq_avail *avail = &r->avail;
    avail->ring[*avail_idx % QSIZE] = head;
    fence();                        /* descriptors and ring entry before idx */
    avail->idx = ++*avail_idx;
    fence();                        /* idx before the notify */
}

/* Whether the device has used another chain of r: the used ring's idx is not
 * `seen` (the driver's count). A macro, so that a polling loop stays a loop in
 * its own function (gdb steps there line by line). */
#define VQ_USED(r, seen) (((volatile struct virtq_used *)&(r)->used)->idx != (seen))

/* Once VQ_USED(r, *used_seen): takes the used element and acknowledges the
 * device's interrupt (taken or not: that keeps the line quiet). Returns the
 * element's id (the chain's head); *len gets its len. */
static inline uint32_t vq_take(struct vring *r, uint16_t *used_seen, uint32_t *len)
{
    fence();                        /* idx before the element and the data */
    volatile struct virtq_used_elem *e = &((volatile struct virtq_used *)&r->used)->ring[*used_seen % QSIZE];
    uint32_t id = e->id;
    *len = e->len;
    ++*used_seen;
    wr(VM_INTERRUPT_ACK, rd(VM_INTERRUPT_STATUS));
    return id;
}

#endif /* VIRTIO_MMIO_H */
