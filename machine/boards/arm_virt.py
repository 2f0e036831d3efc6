"""QEMU's Arm ``virt`` board (7.2, ``hw/arm/virt.c``): memory map, interrupt numbers, image placement.

An ELF image given as QEMU's ``-kernel`` goes to its segments' addresses in RAM and starts at its entry at
EL1h with x0 = 0 and no device tree (QEMU 7.2 loads the 1 MiB tree at the start of RAM only when the image
leaves room for it there: the test guests, linked at 0x40080000, get none).
"""

from __future__ import annotations

import mmap

from ..loader import Image, ImageError
from ..virtio_slots import VirtioLayout
from .virt import Region

RAM_BASE = 0x4000_0000
DEFAULT_RAM_SIZE = 128 * 1024 * 1024
MAX_RAM_SIZE = 0x8000_0000  # below 3 GiB of RAM addresses are plain (QEMU allows more, above the PCIe holes)
GICD_BASE, GICC_BASE = 0x0800_0000, 0x0801_0000
UART0_BASE, RTC_BASE = 0x0900_0000, 0x0901_0000
SPI_BASE = 32  # INTID of SPI 0
UART0_SPI, RTC_SPI, VIRTIO_SPI = 1, 2, 16
VIRTIO_BASE, VIRTIO_STRIDE, VIRTIO_COUNT = 0x0A00_0000, 0x200, 32
PPI_VIRT_TIMER, PPI_PHYS_TIMER = 27, 30

# 32 virtio-mmio transports 0x200 apart (QEMU's virt.c), SPI 16 + i; devices fill the highest slot first.
VIRTIO_LAYOUT = VirtioLayout(VIRTIO_COUNT, SPI_BASE + VIRTIO_SPI, RAM_BASE)
VIRTIO_BANK = Region("virtio", VIRTIO_BASE, VIRTIO_STRIDE * VIRTIO_COUNT, "mmio")

MMIO_REGIONS = (
    Region("gicd", GICD_BASE, 0x1_0000, "mmio"),
    Region("gicc", GICC_BASE, 0x1_0000, "mmio"),
    Region("uart0", UART0_BASE, 0x1000, "mmio"),
    Region("rtc", RTC_BASE, 0x1000, "mmio"),
)


def memory_map(ram_size: int) -> tuple[Region, ...]:
    """The board's regions, RAM last."""
    return (*MMIO_REGIONS, VIRTIO_BANK, Region("ram", RAM_BASE, ram_size, "ram"))


def place_image(ram: mmap.mmap, image: Image, ram_size: int) -> int:
    """Copy the image's segments into RAM as QEMU's ``-kernel`` does; returns the entry point."""
    region = memory_map(ram_size)[-1]
    for seg in image.segments:
        if not region.contains(seg.addr, max(seg.mem_size, 1)):
            raise ImageError(f"{image.path}: segment at {seg.addr:#x}..{seg.addr + seg.mem_size:#x} lies outside "
                             f"RAM ({region.base:#x}..{region.end:#x})")  # fmt: skip
        off = seg.addr - region.base
        ram[off : off + len(seg.data)] = seg.data
    if not region.contains(image.entry, 4):
        raise ImageError(f"{image.path}: entry point {image.entry:#x} lies outside RAM")
    return image.entry
