/*
 * virtioblk: a small polling virtio-blk driver over virtio-mmio, on both the
 * legacy (Version 1) and the modern (Version 2) register interface (the
 * driver is virtio_blk.h, shared with blkscript.c).
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
#include "uart.h"
#include "virtio_blk.h"

#define MULTI_SECTORS         8u            /* sectors 2..9 */

static uint8_t sector_buf[SECTOR_SIZE];
static uint8_t write_buf[SECTOR_SIZE];
static uint8_t multi_buf[MULTI_SECTORS * SECTOR_SIZE];

/* The pattern written to sector 1 (inputs/make-disk.py guest_write_pattern()). */
static void write_pattern(uint8_t *p)
{
    for (unsigned j = 0; j < SECTOR_SIZE; j++)
        p[j] = (uint8_t)((j * 7u + 0x42u) ^ (j >> 8));
}

/*
 * One request (see blk_publish()): notifies queue 0, polls the used ring and
 * prints "NAME: status S len L". Returns the status byte, or -1 if the used
 * element is not the one expected. A real function, called from main, with the
 * notify store in it (inlined wr()): tests/e2e/test_blk_reverse.py steps and
 * breaks in it by name, and reads `name` and `type`.
 */
static __attribute__((noinline)) int blk_request(const char *name, uint32_t type, uint64_t sector,
                                                 void *data, uint32_t len)
{
    uint32_t used_len;

    blk_publish(type, sector, data, len);
    wr(VM_QUEUE_NOTIFY, 0);
    while (!BLK_USED())
        ;
    uint32_t id = blk_complete(&used_len);

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

int main(unsigned long hartid, void *fdt)
{
    (void)hartid;
    (void)fdt;

    uart_puts("virtioblk start\n");
    int err = blk_probe();
    if (!err)
        err = vm_check_version_1();
    if (err)
        return err;
    int flush = (feat_lo >> VIRTIO_BLK_F_FLUSH) & 1;
    uart_puts(flush ? "flush offered\n" : "flush not offered\n");
    err = blk_start(flush ? 1u << VIRTIO_BLK_F_FLUSH : 0);
    if (err)
        return err;
    uart_puts("driver ok\n");
    uint64_t capacity = blk_capacity();
    if (capacity < 2 + MULTI_SECTORS)
        return fail(10, "disk too small");
    crc_init();

    /* Sector 0. */
    if (blk_request("read sector 0", VIRTIO_BLK_T_IN, 0, sector_buf, SECTOR_SIZE) != 0)
        return fail(11, "read sector 0");
    uart_puts("sector 0 crc32 ");
    put_hex(crc32(0, sector_buf, SECTOR_SIZE), 8);
    uart_puts("\nsector 0 head");
    for (int j = 0; j < 16; j++) {
        uart_putc(' ');
        put_hex(sector_buf[j], 2);
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
    put_hex(crc32(0, multi_buf, sizeof multi_buf), 8);
    uart_putc('\n');

    uart_puts("virtioblk done\n");
    return 0;
}
