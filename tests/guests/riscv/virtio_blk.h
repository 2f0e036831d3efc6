/*
 * virtio_blk.h: the polling virtio-blk driver shared by the virtioblk and
 * blkscript guests, on virtio_mmio.h's transport (both the legacy, Version 1,
 * and the modern, Version 2, register interface). Header-only (static
 * functions and data, one copy per guest): one device, queue 0 with an
 * 8-entry ring, one request in flight at a time, always as the chain with
 * head 0.
 *
 * Set-up, in this order (each step returns 0 or the number of the failed step
 * after printing "error: ...", which the guest exits with):
 *   blk_probe()            scan the eight slots (highest first), print
 *                          "virtio-mmio slot N version V", reset, ACKNOWLEDGE,
 *                          DRIVER, read the device features (2..4)
 *   vm_check_version_1()   Version 2 must offer VERSION_1 (5)
 *   blk_start(FEATURES)    accept FEATURES (low word; VERSION_1 too on Version
 *                          2, then FEATURES_OK), set up queue 0, DRIVER_OK (6..9)
 *   blk_capacity()         print "capacity N sectors", return N
 * A request: blk_publish(), wr(VM_QUEUE_NOTIFY, 0), wait until BLK_USED()
 * (polling, or after the interrupt), blk_complete().
 */
#ifndef VIRTIO_BLK_H
#define VIRTIO_BLK_H

#include <stdint.h>
#include "uart.h"

#define QSIZE                 8u            /* queue 0's entries */
#include "virtio_mmio.h"

#define VIRTIO_ID_BLOCK       2

#define VIRTIO_BLK_F_FLUSH    9             /* feature bits, low word */
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN       0u
#define VIRTIO_BLK_T_OUT      1u
#define VIRTIO_BLK_T_FLUSH    4u
#define VIRTIO_BLK_T_WRITE_ZEROES 13u

#define SECTOR_SIZE           512u

static struct vring ring __attribute__((aligned(PAGE_SIZE)));

struct blk_req_hdr {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

static struct blk_req_hdr req_hdr;
static volatile uint8_t req_status;

static uint16_t avail_idx;
static uint16_t used_seen;

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
/* Find the device, print "virtio-mmio slot N version V" (the one line that
 * differs between the legacy and the modern interface), reset it, ACKNOWLEDGE,
 * DRIVER, read its features into feat_lo/feat_hi. 0 or the failed step (2..4). */
static int blk_probe(void)
{
    int err = vm_find(VIRTIO_ID_BLOCK, "no virtio-blk device");
    if (err)
        return err;
    vm_put_slot();
    uart_putc('\n');
    return vm_reset();
}

/* Accept the features `accept` (low word; and VERSION_1, then FEATURES_OK, on
 * Version 2), set up queue 0 with QSIZE entries in `ring`, then DRIVER_OK (read
 * back). 0 or the failed step (6..9). */
static int blk_start(uint32_t accept)
{
    int err = vm_accept(accept, 6);
    if (err)
        return err;
    err = vm_setup_queue(0, &ring);
    if (err)
        return fail(6 + err, err == 1 ? "queue 0 already in use" : "queue 0 too small");
    return vm_driver_ok(9);
}

/* The capacity (config offset 0, le64, in 512-byte sectors; inside a
 * ConfigGeneration loop on Version 2), printed as "capacity N sectors". */
static uint64_t blk_capacity(void)
{
    uint32_t gen, cap_lo, cap_hi;
    do {
        gen = vm_config_gen();
        cap_lo = rd(VM_CONFIG);
        cap_hi = rd(VM_CONFIG + 4);
    } while (vm_config_gen() != gen);
    uint64_t capacity = ((uint64_t)cap_hi << 32) | cap_lo;
    uart_puts("capacity ");
    uart_putdec64(capacity);
    uart_puts(" sectors\n");
    return capacity;
}

/* ---- requests --------------------------------------------------------- */
/* Descriptor i of the request's chain (the next one is i + 1). */
static void set_desc(unsigned i, const void *addr, uint32_t len, uint16_t flags)
{
    vq_set_desc(&ring, i, addr, len, flags, (uint16_t)(i + 1));
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

    vq_publish(&ring, &avail_idx, 0);
}

/* Whether the device has used the request: the used ring's idx moved. */
#define BLK_USED() VQ_USED(&ring, used_seen)

/* Once BLK_USED(): takes the used element and acknowledges the device's
 * interrupt (taken or not: that keeps the line quiet). Returns the element's
 * id (0 for our head); *used_len gets its len. */
static __attribute__((noinline)) uint32_t blk_complete(uint32_t *used_len)
{
    return vq_take(&ring, &used_seen, used_len);
}

#endif /* VIRTIO_BLK_H */
