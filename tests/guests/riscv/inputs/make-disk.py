#!/usr/bin/env python3
"""Write the deterministic 64 KiB raw disk image used by the virtioblk guest.

    python3 tests/guests/riscv/inputs/make-disk.py [OUT]    # default: disk.img next to this script

128 sectors of 512 bytes. Byte j of sector i is (i * 37 + j * 13 + (j >> 7)) & 0xff, except that
sector 0 starts with a recognisable text header (HEADER below). The committed disk.img is the output
of this script; tests copy it before running a guest, since the guest writes sector 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

SECTOR = 512
SECTORS = 128
HEADER = b"CHRONICORN VIRTIO-BLK TEST DISK\nsectors=128 sector_size=512\n\0"


def sector_pattern(i: int) -> bytes:
    data = bytearray((i * 37 + j * 13 + (j >> 7)) & 0xFF for j in range(SECTOR))
    if i == 0:
        data[: len(HEADER)] = HEADER
    return bytes(data)


def guest_write_pattern() -> bytes:
    """What the virtioblk guest writes to sector 1 (see write_pattern() in virtioblk.c)."""
    return bytes(((j * 7 + 0x42) ^ (j >> 8)) & 0xFF for j in range(SECTOR))


def disk_image() -> bytes:
    return b"".join(sector_pattern(i) for i in range(SECTORS))


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("disk.img")
    out.write_bytes(disk_image())


if __name__ == "__main__":
    main()
