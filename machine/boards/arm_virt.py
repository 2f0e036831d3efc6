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
FLASH_BASES, FLASH_SIZE = (0x0000_0000, 0x0400_0000), 0x0400_0000  # two CFI banks (pflash_cfi01)
GICD_BASE, GICC_BASE = 0x0800_0000, 0x0801_0000
GPIO_BASE, GPIO_SPI = 0x0903_0000, 7
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
    Region("gpio", GPIO_BASE, 0x1000, "mmio"),
)
PCI_REGIONS = (
    Region("pcie-ecam", 0x40_1000_0000, 0x1000_0000, "mmio"),  # gpex.ECAM_BASE: highmem ECAM
    Region("pcie-pio", 0x3EFF_0000, 0x1_0000, "mmio"),
    Region("pcie-mmio", 0x1000_0000, 0x2EFF_0000, "mmio"),
    Region("pcie-mmio-high", 0x80_0000_0000, 0x80_0000_0000, "mmio"),
)
FW_CFG_REGION = Region("fw-cfg", 0x0902_0000, 0x1000, "mmio")
FLASH_REGIONS = tuple(Region(f"flash{i}", base, FLASH_SIZE, "rom") for i, base in enumerate(FLASH_BASES))


def memory_map(ram_size: int, firmware: bool = False) -> tuple[Region, ...]:
    """The board's regions, RAM last (``firmware``: booted from flash, QEMU has no PL061 then)."""
    mmio = tuple(r for r in MMIO_REGIONS if not (firmware and r.name == "gpio"))
    return (*FLASH_REGIONS, *mmio, FW_CFG_REGION, VIRTIO_BANK, *PCI_REGIONS, Region("ram", RAM_BASE, ram_size, "ram"))


def is_firmware(image: Image) -> bool:
    """The image lies in flash: QEMU's ``-bios`` (the CPU starts in flash 0; the device tree is at RAM's base)."""
    end = FLASH_BASES[0] + 2 * FLASH_SIZE
    return bool(image.segments) and all(seg.addr + seg.mem_size <= end for seg in image.segments)


def flash_contents(image: Image) -> bytes:
    """Flash bank 0 as ``-bios`` fills it (a firmware bigger than a bank is refused)."""
    out = bytearray()
    for seg in image.segments:
        if seg.addr + len(seg.data) > FLASH_SIZE:
            raise ImageError(f"{image.path}: a firmware for flash 0 must fit in {FLASH_SIZE >> 20} MiB")
        if len(out) < seg.addr + len(seg.data):
            out.extend(bytes(seg.addr + len(seg.data) - len(out)))
        out[seg.addr : seg.addr + len(seg.data)] = seg.data
    return bytes(out)


def place_image(ram: mmap.mmap, image: Image, ram_size: int) -> int:
    """Copy the image's segments into RAM as QEMU's ``-kernel`` does; returns the entry point. The device tree
    goes to RAM's base when the image leaves its 1 MiB free there (QEMU: otherwise none)."""
    region = memory_map(ram_size)[-1]
    for seg in image.segments:
        if not region.contains(seg.addr, max(seg.mem_size, 1)):
            raise ImageError(f"{image.path}: segment at {seg.addr:#x}..{seg.addr + seg.mem_size:#x} lies outside "
                             f"RAM ({region.base:#x}..{region.end:#x})")  # fmt: skip
        off = seg.addr - region.base
        ram[off : off + len(seg.data)] = seg.data
    if not region.contains(image.entry, 4):
        raise ImageError(f"{image.path}: entry point {image.entry:#x} lies outside RAM")
    if all(seg.addr >= RAM_BASE + FDT_ROOM for seg in image.segments):
        place_fdt(ram, ram_size)
    return image.entry


FDT_ROOM = 0x10_0000  # the 1 MiB blob QEMU places


def place_fdt(ram: mmap.mmap, ram_size: int, firmware: bool = False) -> None:
    """QEMU's device tree (``dtb-randomness=off``: no seeds, the same in every run) at RAM's base."""
    from .arm_virt_fdt import build_fdt

    blob = build_fdt(ram_size, firmware=firmware)
    ram[: len(blob)] = blob


FW_CFG_KERNEL_SIZE, FW_CFG_KERNEL_DATA = 0x08, 0x11  # QEMU's fw_cfg keys for -kernel next to -bios
MAX_KERNEL_BYTES = 256 * 1024 * 1024  # QEMU's LOAD_IMAGE_MAX_GUNZIP_BYTES


def kernel_items(path: str) -> tuple[dict[int, bytes], str]:
    """The fw_cfg items QEMU's ``arm_setup_firmware_boot`` gives a firmware for ``-kernel FILE`` (a gzip file is
    decompressed first, as QEMU tries for AArch64), and the file's SHA-256."""
    import hashlib
    import zlib

    try:
        with open(path, "rb") as stream:
            raw = stream.read(MAX_KERNEL_BYTES + 1)
    except OSError as exc:
        raise ImageError(f"cannot read the kernel {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_KERNEL_BYTES:
        raise ImageError(f"the kernel {path} is larger than {MAX_KERNEL_BYTES >> 20} MiB")
    data = raw
    if raw[:2] == b"\x1f\x8b":
        try:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            data = inflater.decompress(raw, MAX_KERNEL_BYTES + 1)
            if len(data) > MAX_KERNEL_BYTES or inflater.unconsumed_tail:
                raise ImageError(f"the kernel {path} inflates to more than {MAX_KERNEL_BYTES >> 20} MiB")
        except zlib.error:
            data = raw  # not really gzip: QEMU then passes the file as it is
    items = {FW_CFG_KERNEL_SIZE: len(data).to_bytes(4, "little"), FW_CFG_KERNEL_DATA: data}
    return items, hashlib.sha256(raw).hexdigest()


ARM64_IMAGE_MAGIC = b"ARM\x64"  # at offset 0x38 of a Linux arm64 Image
# QEMU's bootloader_aarch64 (hw/arm/boot.c), at RAM's base: x0 = the device tree, x1-x3 = 0, jump to the kernel.
_BOOT_STUB = (0x580000C0, 0xAA1F03E1, 0xAA1F03E2, 0xAA1F03E3, 0x58000084, 0xD61F0080)


def is_linux_image(image: Image) -> bool:
    """A raw arm64 Linux Image (its header's magic): QEMU's ``-kernel`` boots it as Linux's boot protocol says."""
    if image.elf_machine is not None or len(image.segments) != 1:
        return False
    data = image.segments[0].data
    return len(data) >= 64 and data[0x38:0x3C] == ARM64_IMAGE_MAGIC


def place_linux_image(ram: mmap.mmap, image: Image, ram_size: int) -> int:
    """QEMU's ``load_aarch64_image`` and Linux boot: the Image at RAM's base + its text_offset, the device tree
    after where an initrd would go (RAM's base + min(RAM / 2, 128 MiB), 2 MiB aligned), the boot stub at RAM's
    base passing it in x0. Returns where execution starts (the stub)."""
    data = image.segments[0].data
    text_offset = int.from_bytes(data[8:16], "little")
    size = int.from_bytes(data[16:24], "little") or len(data)
    load = RAM_BASE + text_offset
    if text_offset % 4096 or load + max(size, len(data)) > RAM_BASE + ram_size:
        raise ImageError(f"{image.path}: an arm64 Image with text_offset {text_offset:#x} and size {size:#x} does "
                         f"not fit in {ram_size >> 20} MiB of RAM")  # fmt: skip
    ram[text_offset : text_offset + len(data)] = data
    initrd_start = RAM_BASE + min(ram_size // 2, 128 << 20)
    initrd_start = max(initrd_start, (load + size + 4095) & ~4095)
    fdt_start = (initrd_start + (2 << 20) - 1) & ~((2 << 20) - 1)
    if fdt_start + FDT_ROOM > RAM_BASE + ram_size:
        raise ImageError(f"{image.path}: no room for the device tree after the Image")
    from .arm_virt_fdt import build_fdt

    blob = build_fdt(ram_size)
    ram[fdt_start - RAM_BASE : fdt_start - RAM_BASE + len(blob)] = blob
    words = (*_BOOT_STUB, fdt_start & 0xFFFF_FFFF, fdt_start >> 32, load & 0xFFFF_FFFF, load >> 32)
    ram[: 4 * len(words)] = b"".join(w.to_bytes(4, "little") for w in words)
    return RAM_BASE
