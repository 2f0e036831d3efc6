"""machine/boards/virt.py: memory map and the device tree, parsed back with the ``fdt`` library."""

from __future__ import annotations

import itertools

import fdt
import pytest

from machine.arch.riscv import RV32, RV64, RiscvArch
from machine.boards import virt
from machine.boards.virt import (
    DEFAULT_RAM_SIZE,
    FDT_MAX_SIZE,
    MMIO_REGIONS,
    RAM_BASE,
    Region,
    build_fdt,
    fdt_address,
    memory_map,
)

ARCHES = pytest.mark.parametrize("arch", [RV32, RV64], ids=["rv32", "rv64"])


def parse(arch: RiscvArch, ram_size: int = DEFAULT_RAM_SIZE) -> fdt.FDT:
    blob = build_fdt(arch, ram_size)
    assert blob[:4] == b"\xd0\x0d\xfe\xed"  # FDT magic
    assert int.from_bytes(blob[4:8], "big") == len(blob)  # totalsize
    assert len(blob) <= FDT_MAX_SIZE
    return fdt.parse_dtb(blob)


def prop(tree: fdt.FDT, path: str, name: str) -> list:
    p = tree.get_property(name, path)
    assert p is not None, f"{path}:{name} missing"
    return list(p.data)


def cells64(words: list[int]) -> list[int]:
    """Pairs of 32-bit cells as 64-bit numbers."""
    return [hi << 32 | lo for hi, lo in zip(words[::2], words[1::2], strict=True)]


@ARCHES
def test_root_and_cpus(arch: RiscvArch) -> None:
    tree = parse(arch)
    assert prop(tree, "/", "#address-cells") == [2]
    assert prop(tree, "/", "#size-cells") == [2]
    assert prop(tree, "/", "compatible") == ["riscv-virtio"]
    assert prop(tree, "/cpus", "timebase-frequency") == [10_000_000]
    assert prop(tree, "/cpus/cpu@0", "device_type") == ["cpu"]
    assert prop(tree, "/cpus/cpu@0", "reg") == [0]
    isa = prop(tree, "/cpus/cpu@0", "riscv,isa")[0]
    assert isa.startswith(f"rv{arch.xlen}i")
    assert prop(tree, "/cpus/cpu@0", "mmu-type") == ["riscv,sv32" if arch.xlen == 32 else "riscv,sv39"]
    assert prop(tree, "/cpus/cpu@0/interrupt-controller", "compatible") == ["riscv,cpu-intc"]


@ARCHES
@pytest.mark.parametrize("ram_size", [DEFAULT_RAM_SIZE, 16 << 20, 1 << 30])
def test_memory_node_matches_ram(arch: RiscvArch, ram_size: int) -> None:
    tree = parse(arch, ram_size)
    assert prop(tree, "/memory@80000000", "device_type") == ["memory"]
    assert cells64(prop(tree, "/memory@80000000", "reg")) == [RAM_BASE, ram_size]
    ram = memory_map(ram_size)[-1]
    assert (ram.base, ram.size, ram.kind) == (RAM_BASE, ram_size, "ram")


@ARCHES
def test_uart_node(arch: RiscvArch) -> None:
    tree = parse(arch)
    path = "/soc/serial@10000000"
    assert prop(tree, path, "compatible") == ["ns16550a"]
    assert prop(tree, path, "interrupts") == [10]
    assert cells64(prop(tree, path, "reg"))[0] == 0x1000_0000
    assert prop(tree, path, "clock-frequency") == [3_686_400]
    plic_phandle = prop(tree, "/soc/plic@c000000", "phandle")
    assert prop(tree, path, "interrupt-parent") == plic_phandle


@ARCHES
def test_plic_clint_test_rtc_nodes(arch: RiscvArch) -> None:
    tree = parse(arch)
    plic = "/soc/plic@c000000"
    assert prop(tree, plic, "riscv,ndev") == [96]  # QEMU 7.2's value
    assert "riscv,plic0" in prop(tree, plic, "compatible")
    assert cells64(prop(tree, plic, "reg")) == [0x0C00_0000, 0x60_0000]
    intc = prop(tree, "/cpus/cpu@0/interrupt-controller", "phandle")[0]
    assert prop(tree, plic, "interrupts-extended") == [intc, 11, intc, 9]  # context 0 = M, 1 = S
    clint = "/soc/clint@2000000"
    assert prop(tree, clint, "compatible") == ["sifive,clint0", "riscv,clint0"]
    assert prop(tree, clint, "interrupts-extended") == [intc, 3, intc, 7]
    assert cells64(prop(tree, clint, "reg")) == [0x0200_0000, 0x1_0000]
    test = "/soc/test@100000"
    assert prop(tree, test, "compatible") == ["sifive,test1", "sifive,test0", "syscon"]
    test_ph = prop(tree, test, "phandle")
    assert prop(tree, "/poweroff", "regmap") == test_ph
    assert prop(tree, "/poweroff", "value") == [0x5555]
    assert prop(tree, "/reboot", "value") == [0x7777]
    assert prop(tree, "/soc/rtc@101000", "compatible") == ["google,goldfish-rtc"]
    assert prop(tree, "/soc/rtc@101000", "interrupts") == [11]


@ARCHES
def test_chosen_stdout_path_points_at_uart(arch: RiscvArch) -> None:
    tree = parse(arch)
    path = prop(tree, "/chosen", "stdout-path")[0]
    assert path == "/soc/serial@10000000"
    assert tree.exist_node(path)


def test_every_mmio_region_has_a_node_with_its_reg() -> None:
    tree = parse(RV64)
    names = {"uart0": "serial", **{f"virtio{i}": "virtio_mmio" for i in range(virt.VIRTIO_COUNT)}}
    for region in MMIO_REGIONS:
        path = f"/soc/{names.get(region.name, region.name)}@{region.base:x}"
        assert tree.exist_node(path), path
        assert cells64(prop(tree, path, "reg"))[0] == region.base


def test_rv32_and_rv64_trees_differ_only_in_cpu() -> None:
    a, b = parse(RV32), parse(RV64)
    assert prop(a, "/cpus/cpu@0", "riscv,isa") != prop(b, "/cpus/cpu@0", "riscv,isa")
    assert prop(a, "/soc/plic@c000000", "reg") == prop(b, "/soc/plic@c000000", "reg")


def test_build_fdt_is_deterministic() -> None:
    assert build_fdt(RV32, DEFAULT_RAM_SIZE) == build_fdt(RV32, DEFAULT_RAM_SIZE)


def test_fdt_address_like_qemu() -> None:
    size = len(build_fdt(RV64, DEFAULT_RAM_SIZE))
    assert fdt_address(128 << 20, size) == 0x87E0_0000
    assert fdt_address(128 << 20, FDT_MAX_SIZE) == 0x87E0_0000
    assert fdt_address(256 << 20, size) == 0x8FE0_0000
    assert fdt_address(2 << 30, size) == 0xBFE0_0000  # RAM beyond 3 GiB: below 3 GiB
    assert fdt_address(4 << 30, size) == 0xBFE0_0000
    assert fdt_address(128 << 20, (2 << 20) + 1) == 0x87C0_0000


@pytest.mark.parametrize("ram_size", [16 << 20, DEFAULT_RAM_SIZE, 1 << 30])
def test_fdt_fits_in_ram(ram_size: int) -> None:
    size = len(build_fdt(RV32, ram_size))
    addr = fdt_address(ram_size, size)
    assert addr % (2 << 20) == 0
    assert memory_map(ram_size)[-1].contains(addr, size)


@pytest.mark.parametrize("ram_size", [16 << 20, DEFAULT_RAM_SIZE, 1 << 30])
def test_memory_map_regions_do_not_overlap(ram_size: int) -> None:
    regions = memory_map(ram_size)
    assert regions[-1].name == "ram"
    assert regions[0].name == "mrom" and regions[0].kind == "rom"
    assert [r.kind for r in regions[1:-1]] == ["mmio"] * len(MMIO_REGIONS)
    assert len({r.name for r in regions}) == len(regions)
    for a, b in itertools.combinations(regions, 2):
        assert a.end <= b.base or b.end <= a.base, (a, b)
    for r in regions:
        assert r.base % 0x1000 == 0 and r.size % 0x1000 == 0, r  # Unicorn maps whole pages


def test_region_contains() -> None:
    r = Region("x", 0x1000, 0x100, "mmio")
    assert r.end == 0x1100
    assert r.contains(0x1000) and r.contains(0x10FF) and r.contains(0x10FC, 4)
    assert not r.contains(0xFFF) and not r.contains(0x1100) and not r.contains(0x10FE, 4)


def test_board_constants() -> None:
    assert (virt.UART0_IRQ, virt.RTC_IRQ, virt.TIMEBASE_HZ) == (10, 11, 10_000_000)
    assert {r.name: r.base for r in MMIO_REGIONS} == {
        "test": 0x10_0000,
        "rtc": 0x10_1000,
        "clint": 0x200_0000,
        "plic": 0xC00_0000,
        "uart0": 0x1000_0000,
        **{f"virtio{i}": 0x1000_1000 + i * 0x1000 for i in range(8)},
    }


def test_virtio_slots_as_qemu_places_them() -> None:
    """QEMU 7.2's virt dtb (``-M virt,dumpdtb=``): /soc lists rtc, serial, test, (pci), the eight virtio_mmio
    nodes from the highest address down, plic, clint; each slot has interrupts 1+i on the PLIC and a 4 KiB reg."""
    tree = parse(RV64)
    soc = tree.get_node("/soc")
    slots = [f"virtio_mmio@{0x10001000 + i * 0x1000:x}" for i in reversed(range(8))]
    assert [n.name for n in soc.nodes] == ["rtc@101000", "serial@10000000", "test@100000", *slots,
                                           "plic@c000000", "clint@2000000"]  # fmt: skip
    plic = prop(tree, "/soc/plic@c000000", "phandle")
    for i in range(8):
        path = f"/soc/virtio_mmio@{0x10001000 + i * 0x1000:x}"
        assert [p.name for p in tree.get_node(path).props] == ["interrupts", "interrupt-parent", "reg", "compatible"]
        assert prop(tree, path, "interrupts") == [1 + i]
        assert prop(tree, path, "interrupt-parent") == plic
        assert cells64(prop(tree, path, "reg")) == [0x10001000 + i * 0x1000, 0x1000]
        assert prop(tree, path, "compatible") == ["virtio,mmio"]
    assert [virt.virtio_slot(i) for i in range(8)] == list(reversed(range(8)))  # the first drive: @10008000
