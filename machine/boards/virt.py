"""QEMU's riscv ``virt`` board: memory map, device placement and device tree.

Addresses and FDT layout follow QEMU 7.2 ``hw/riscv/virt.c`` so that an image
built for ``qemu-system-riscv32/64 -M virt -bios none -kernel X`` runs
unchanged: RAM at 0x80000000, the FDT at the end of RAM (2 MiB aligned), a0 =
hart id, a1 = FDT address at entry.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass

import fdt

from ..arch.riscv import RiscvArch
from ..loader import Image, ImageError
from ..virtio_slots import VirtioLayout

RAM_BASE = 0x8000_0000
DEFAULT_RAM_SIZE = 128 * 1024 * 1024
FDT_MAX_SIZE = 0x10_0000
UART0_IRQ = 10
RTC_IRQ = 11
UART_CLOCK_HZ = 3_686_400
TIMEBASE_HZ = 10_000_000
VIRTIO_BASE = 0x1000_1000  # slot i at VIRTIO_BASE + i * VIRTIO_STRIDE, PLIC source VIRTIO_IRQ + i
VIRTIO_STRIDE = 0x1000
VIRTIO_COUNT = 8
VIRTIO_IRQ = 1


@dataclass(frozen=True, slots=True)
class Region:
    """One entry of the memory map."""

    name: str
    base: int
    size: int
    kind: str  # "ram" or "mmio"
    reg_size: int = 0  # size in the device tree when smaller than the mapped page (0: same)

    @property
    def end(self) -> int:
        return self.base + self.size

    def contains(self, addr: int, size: int = 1) -> bool:
        return self.base <= addr and addr + size <= self.end


MROM = Region("mrom", 0x1000, 0xF000, "rom")
FW_DYNAMIC_MAGIC = 0x4942534F  # "OSBI"
FW_DYNAMIC_VERSION = 2
FW_DYNAMIC_NEXT_MODE_S = 1

MMIO_REGIONS = (
    Region("test", 0x0010_0000, 0x1000, "mmio"),
    Region("rtc", 0x0010_1000, 0x1000, "mmio"),
    Region("clint", 0x0200_0000, 0x1_0000, "mmio"),
    Region("plic", 0x0C00_0000, 0x60_0000, "mmio"),
    Region("uart0", 0x1000_0000, 0x1000, "mmio", reg_size=0x100),
    *(Region(f"virtio{i}", VIRTIO_BASE + i * VIRTIO_STRIDE, VIRTIO_STRIDE, "mmio") for i in range(VIRTIO_COUNT)),
)


VIRTIO_LAYOUT = VirtioLayout(VIRTIO_COUNT, VIRTIO_IRQ, RAM_BASE)


def virtio_slot(drive: int) -> int:
    """The slot of the ``drive``-th virtio device given: QEMU fills the highest slot first."""
    return VIRTIO_LAYOUT.slot(drive)


def memory_map(ram_size: int) -> tuple[Region, ...]:
    """The board's regions, RAM last."""
    return (MROM, *MMIO_REGIONS, Region("ram", RAM_BASE, ram_size, "ram"))


def boot_rom(xlen: int, start_addr: int, fdt_addr: int, next_addr: int) -> bytes:
    """QEMU 7.2's reset vector at 0x1000 (``riscv_setup_rom_reset_vec``) and its fw_dynamic_info.

    It sets a0 = mhartid, a1 = the FDT, a2 = the fw_dynamic_info block (so
    OpenSBI's ``fw_dynamic`` finds its next stage) and jumps to ``start_addr``.
    """
    load = (0x0202A583, 0x0182A283) if xlen == 32 else (0x0202B583, 0x0182B283)  # lw/ld a1, 32(t0); t0, 24(t0)
    words = (
        0x00000297,  # auipc t0, 0
        0x02828613,  # addi  a2, t0, 40   (fw_dynamic_info)
        0xF1402573,  # csrr  a0, mhartid
        *load,
        0x00028067,  # jr    t0
        start_addr & 0xFFFFFFFF, start_addr >> 32,
        fdt_addr & 0xFFFFFFFF, fdt_addr >> 32,
    )  # fmt: skip
    vector = b"".join(w.to_bytes(4, "little") for w in words)
    info = (FW_DYNAMIC_MAGIC, FW_DYNAMIC_VERSION, next_addr, FW_DYNAMIC_NEXT_MODE_S, 0, 0)
    return vector + b"".join(v.to_bytes(xlen // 8, "little") for v in info)


def fdt_address(ram_size: int, fdt_size: int) -> int:
    """Where QEMU places the FDT: the top of RAM (below 3 GiB), 2 MiB aligned."""
    top = min(RAM_BASE + ram_size, 0xC000_0000)
    return (top - fdt_size) & ~(2 * 1024 * 1024 - 1)


def _reg(base: int, size: int) -> fdt.PropWords:
    return fdt.PropWords("reg", base >> 32, base & 0xFFFFFFFF, size >> 32, size & 0xFFFFFFFF)


def _node(name: str, *items: fdt.Property | fdt.Node) -> fdt.Node:
    node = fdt.Node(name)
    for item in items:
        node.append(item)
    return node


# The single-letter extensions of Unicorn's RISC-V CPU, as its misa says (I, M, A, F, D, C; S and U are
# privilege modes, not named in the ISA string), in the canonical order. Linux and U-Boot read the device tree's
# riscv,isa to learn about the FPU: "imac" hid F and D from them (tests/unit/test_virt_isa.py checks the
# letters against the CPU's misa). Multi-letter extensions (QEMU 7.2 lists _zicsr_zifencei...) are left out:
# U-Boot looks letters up anywhere in the string, so "zifencei" would claim F.
ISA_LETTERS = "imafdc"


def build_fdt(arch: RiscvArch, ram_size: int, bootargs: str | None = None,
              initrd: tuple[int, int] | None = None) -> bytes:  # fmt: skip
    """A device tree describing this board, as QEMU's virt generates it; ``bootargs`` (``-append``) and the
    ``initrd``'s [start, end) in /chosen as QEMU puts them there."""
    cpu_intc, plic_ph, test_ph = 1, 2, 3
    regions = {r.name: r for r in MMIO_REGIONS}
    isa = f"rv{arch.xlen}{ISA_LETTERS}"
    mmu = "riscv,sv32" if arch.xlen == 32 else "riscv,sv39"
    intc = _node(
        "interrupt-controller",
        fdt.PropWords("#interrupt-cells", 1),
        fdt.PropBytes("interrupt-controller"),
        fdt.PropStrings("compatible", "riscv,cpu-intc"),
        fdt.PropWords("phandle", cpu_intc),
    )
    cpu = _node(
        "cpu@0",
        fdt.PropWords("phandle", 4),
        fdt.PropStrings("device_type", "cpu"),
        fdt.PropWords("reg", 0),
        fdt.PropStrings("status", "okay"),
        fdt.PropStrings("compatible", "riscv"),
        fdt.PropStrings("riscv,isa", isa),
        fdt.PropStrings("mmu-type", mmu),
        intc,
    )
    cpus = _node(
        "cpus",
        fdt.PropWords("#address-cells", 1),
        fdt.PropWords("#size-cells", 0),
        fdt.PropWords("timebase-frequency", TIMEBASE_HZ),
        cpu,
        _node("cpu-map", _node("cluster0", _node("core0", fdt.PropWords("cpu", 4)))),
    )
    memory = _node("memory@80000000", fdt.PropStrings("device_type", "memory"), _reg(RAM_BASE, ram_size))

    def virtio(i: int) -> fdt.Node:  # QEMU's create_fdt_virtio; its nodes end up highest address first
        base = VIRTIO_BASE + i * VIRTIO_STRIDE
        return _node(
            f"virtio_mmio@{base:x}",
            fdt.PropWords("interrupts", VIRTIO_IRQ + i),
            fdt.PropWords("interrupt-parent", plic_ph),
            _reg(base, VIRTIO_STRIDE),
            fdt.PropStrings("compatible", "virtio,mmio"),
        )

    def dev(region: str, *items: fdt.Property | fdt.Node) -> fdt.Node:
        r = regions[region]
        name = {"test": "test", "rtc": "rtc", "clint": "clint", "plic": "plic", "uart0": "serial"}[region]
        return _node(f"{name}@{r.base:x}", *items, _reg(r.base, r.reg_size or r.size))

    soc = _node(
        "soc",
        fdt.PropWords("#address-cells", 2),
        fdt.PropWords("#size-cells", 2),
        fdt.PropStrings("compatible", "simple-bus"),
        fdt.PropBytes("ranges"),
        dev(
            "rtc",
            fdt.PropWords("interrupts", RTC_IRQ),
            fdt.PropWords("interrupt-parent", plic_ph),
            fdt.PropStrings("compatible", "google,goldfish-rtc"),
        ),
        dev(
            "uart0",
            fdt.PropWords("interrupts", UART0_IRQ),
            fdt.PropWords("interrupt-parent", plic_ph),
            fdt.PropWords("clock-frequency", UART_CLOCK_HZ),
            fdt.PropStrings("compatible", "ns16550a"),
        ),
        dev(
            "test",
            fdt.PropWords("phandle", test_ph),
            fdt.PropStrings("compatible", "sifive,test1", "sifive,test0", "syscon"),
        ),
        *(virtio(i) for i in reversed(range(VIRTIO_COUNT))),
        dev(
            "plic",
            fdt.PropWords("phandle", plic_ph),
            fdt.PropWords("interrupts-extended", cpu_intc, 11, cpu_intc, 9),
            fdt.PropWords("riscv,ndev", 96),  # as QEMU 7.2 says (its PLIC has sources 1-95; Linux maps 96)
            fdt.PropWords("#address-cells", 0),
            fdt.PropWords("#interrupt-cells", 1),
            fdt.PropStrings("compatible", "sifive,plic-1.0.0", "riscv,plic0"),
            fdt.PropBytes("interrupt-controller"),
        ),
        dev(
            "clint",
            fdt.PropWords("interrupts-extended", cpu_intc, 3, cpu_intc, 7),
            fdt.PropStrings("compatible", "sifive,clint0", "riscv,clint0"),
        ),
    )
    poweroff = _node(
        "poweroff",
        fdt.PropWords("value", 0x5555),
        fdt.PropWords("offset", 0),
        fdt.PropWords("regmap", test_ph),
        fdt.PropStrings("compatible", "syscon-poweroff"),
    )
    reboot = _node(
        "reboot",
        fdt.PropWords("value", 0x7777),
        fdt.PropWords("offset", 0),
        fdt.PropWords("regmap", test_ph),
        fdt.PropStrings("compatible", "syscon-reboot"),
    )
    uart = regions["uart0"]
    chosen = _node("chosen", fdt.PropStrings("stdout-path", f"/soc/serial@{uart.base:x}"))
    if bootargs:
        chosen.append(fdt.PropStrings("bootargs", bootargs))
    if initrd is not None:  # (one cell each, as QEMU 7.2's qemu_fdt_setprop_cell writes them)
        for name, value in zip(("linux,initrd-start", "linux,initrd-end"), initrd, strict=True):
            chosen.append(fdt.PropWords(name, value & 0xFFFFFFFF))
    tree = fdt.FDT()
    for item in (
        fdt.PropWords("#address-cells", 2),
        fdt.PropWords("#size-cells", 2),
        fdt.PropStrings("compatible", "riscv-virtio"),
        fdt.PropStrings("model", "riscv-virtio,qemu"),
        poweroff,
        reboot,
        chosen,
        memory,
        cpus,
        soc,
    ):
        tree.add_item(item)
    blob = tree.to_dtb(version=17)
    if len(blob) > FDT_MAX_SIZE:
        raise ValueError("device tree too large")
    return blob


@dataclass(frozen=True, slots=True)
class Placed:
    """Where :func:`place_image` put things: the device tree, and the boot ROM to map at MROM."""

    fdt_addr: int
    boot_rom: bytes


def kernel_start_addr(xlen: int, firmware_end: int) -> int:
    """Where QEMU 7.2 loads a raw ``-kernel`` (``riscv_calc_kernel_start_addr``): the firmware's end, aligned
    up to 4 MiB on rv32 and 2 MiB on rv64."""
    align = (4 if xlen == 32 else 2) << 20
    return (firmware_end + align - 1) & ~(align - 1)


def firmware_end(image: Image) -> int:
    """The end of the firmware in memory (QEMU's ``firmware_end_addr``)."""
    return max(seg.addr + max(seg.mem_size, len(seg.data)) for seg in image.segments)


def place_image(ram: mmap.mmap, image: Image, arch: RiscvArch, ram_size: int, kernel: Image | None = None,
                initrd: Image | None = None, append: str | None = None) -> Placed:  # fmt: skip
    """Copy the image's segments and the device tree into RAM (``ram[offset]`` from RAM_BASE), as QEMU does.

    The image is the firmware (QEMU's ``-bios IMAGE``): the reset vector ROM sets a0/a1/a2 and jumps to its
    entry; its fw_dynamic_info names ``kernel``'s entry as the next stage (QEMU's ``-kernel``), or none
    (next_addr 0). ``initrd`` and ``append`` are named in the device tree's /chosen (QEMU's ``-initrd``,
    ``-append``). Images must not overlap each other or the device tree.
    """
    region = memory_map(ram_size)[-1]
    images = [each for each in (image, kernel, initrd) if each is not None]
    for each in images:
        for seg in each.segments:
            if not region.contains(seg.addr, max(seg.mem_size, 1)):
                raise ImageError(
                    f"{each.path}: segment at {seg.addr:#x}..{seg.addr + seg.mem_size:#x} lies outside RAM "
                    f"({region.base:#x}..{region.end:#x})"
                )
        if not region.contains(each.entry, 2):
            raise ImageError(f"{each.path}: entry point {each.entry:#x} lies outside RAM")
    roles = [role for role, each in (("firmware", image), ("kernel", kernel), ("initrd", initrd)) if each is not None]
    for n, later in enumerate(images):
        for m, earlier in enumerate(images[:n]):
            for seg in later.segments:
                for other in earlier.segments:
                    if seg.addr < other.addr + max(other.mem_size, 1) and other.addr < seg.addr + max(seg.mem_size, 1):
                        raise ImageError(f"the {roles[n]} {later.path} at {seg.addr:#x} would overlap the {roles[m]} "
                                         f"{earlier.path}")  # fmt: skip
    for each in images:
        for seg in each.segments:
            off = seg.addr - region.base
            ram[off : off + len(seg.data)] = seg.data
    initrd_span = None if initrd is None else (initrd.entry, initrd.entry + len(initrd.segments[0].data))
    blob = build_fdt(arch, ram_size, append, initrd_span)
    fdt_addr = fdt_address(ram_size, len(blob))
    fdt_end = fdt_addr + len(blob)
    for each in images:
        for seg in each.segments:
            if seg.addr < fdt_end and fdt_addr < seg.addr + seg.mem_size:
                raise ImageError(
                    f"{each.path}: the device tree at {fdt_addr:#x} would overlap the image "
                    f"(segment at {seg.addr:#x}); give more RAM with --ram"
                )
    off = fdt_addr - region.base
    ram[off : off + len(blob)] = blob
    next_addr = 0 if kernel is None else kernel.entry
    return Placed(fdt_addr, boot_rom(arch.xlen, image.entry, fdt_addr, next_addr=next_addr))
