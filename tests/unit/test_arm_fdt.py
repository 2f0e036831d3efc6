"""machine/boards/arm_virt_fdt.py: the Arm virt device tree, against the one QEMU 7.2 dumps (``-M virt,dumpdtb=``)
and, without QEMU, its facts read back with the ``fdt`` library."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import fdt
import pytest

from machine.boards import arm_virt
from machine.boards.arm_virt_fdt import FDT_SIZE, build_fdt, check_ram_size, parse_ram_size
from tests.conftest import require_tool

QEMU = "qemu-system-aarch64"
SIZES = pytest.mark.parametrize("ram", ["128M", "1G"])
M128 = 128 << 20


def qemu_dtb(tmp_path: Path, ram: str, machine: str = "virt") -> bytes:
    """The blob ``qemu-system-aarch64 -M virt,dumpdtb=FILE -cpu cortex-a72 -m RAM -nic none`` writes."""
    require_tool(shutil.which(QEMU), f"{QEMU} not installed")
    out = tmp_path / f"qemu-{ram}.dtb"
    cmd = [QEMU, "-M", f"{machine},dumpdtb={out}", "-cpu", "cortex-a72", "-m", ram, "-nic", "none", "-nographic"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    return out.read_bytes()


def seeds(blob: bytes) -> dict[str, Any]:
    """``/chosen``'s random kaslr-seed and rng-seed from QEMU's blob, as :func:`build_fdt` takes them."""
    chosen = fdt.parse_dtb(blob).get_node("/chosen")
    kaslr = chosen.get_property("kaslr-seed").data
    rng = chosen.get_property("rng-seed").data
    return {"kaslr_seed": kaslr[0] << 32 | kaslr[1], "rng_seed": b"".join(w.to_bytes(4, "big") for w in rng)}


def flatten(blob: bytes) -> list[tuple[str, list[tuple[str, list]]]]:
    """Every node's path and its properties (name, value), in the blob's order."""
    out = []

    def walk(node: fdt.Node, path: str) -> None:
        out.append((path, [(p.name, list(p.data) if hasattr(p, "data") else None) for p in node.props]))
        for sub in node.nodes:
            walk(sub, f"{path.rstrip('/')}/{sub.name}")

    walk(fdt.parse_dtb(blob).root, "/")
    return out


def dts(blob: bytes, tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    path.write_bytes(blob)
    return subprocess.run(["dtc", "-I", "dtb", "-O", "dts", str(path)], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def tree(ram_size: int = M128) -> fdt.FDT:
    return fdt.parse_dtb(build_fdt(ram_size))


def prop(t: fdt.FDT, path: str, name: str) -> list:
    p = t.get_property(name, path)
    assert p is not None, f"{path}:{name} missing"
    return list(p.data) if hasattr(p, "data") else []


def cells64(words: list[int]) -> list[int]:
    return [hi << 32 | lo for hi, lo in zip(words[::2], words[1::2], strict=True)]


# Against QEMU


@SIZES
def test_same_tree_as_qemu(tmp_path: Path, ram: str) -> None:
    """Nodes, properties, values and order as QEMU's (its random /chosen seeds given), then the very bytes:
    strings block order, stale padding after values, layout, 1 MiB totalsize."""
    blob = qemu_dtb(tmp_path, ram)
    ours = build_fdt(parse_ram_size(ram), **seeds(blob))
    assert flatten(ours) == flatten(blob)
    assert ours[:0x40] == blob[:0x40]  # header, reservation map
    assert ours == blob


@SIZES
def test_same_bytes_as_qemu_without_randomness(tmp_path: Path, ram: str) -> None:
    """Without seeds, the tree is QEMU's ``-M virt,dtb-randomness=off``: no kaslr-seed or rng-seed."""
    blob = qemu_dtb(tmp_path, ram, "virt,dtb-randomness=off")
    assert build_fdt(parse_ram_size(ram)) == blob
    assert [p.name for p in fdt.parse_dtb(blob).get_node("/chosen").props] == ["stdout-path"]


@SIZES
def test_same_dts_as_qemu(tmp_path: Path, ram: str) -> None:
    require_tool(shutil.which("dtc"), "dtc not installed (apt-get install device-tree-compiler)")
    blob = qemu_dtb(tmp_path, ram)
    ours = build_fdt(parse_ram_size(ram), **seeds(blob))
    assert dts(ours, tmp_path, "ours.dtb") == dts(blob, tmp_path, "qemu.dtb")


# The facts, without QEMU


def test_blob_layout_as_libfdt_leaves_it() -> None:
    blob = build_fdt(M128)
    words = [int.from_bytes(blob[i : i + 4], "big") for i in range(0, 40, 4)]
    magic, total, off_struct, off_strings, off_rsvmap, version, last_comp, cpuid, size_strings, size_struct = words
    assert (magic, total, off_rsvmap, off_struct, version, last_comp, cpuid) == (
        0xD00DFEED, FDT_SIZE, 0x30, 0x40, 17, 16, 0)  # fmt: skip
    assert len(blob) == FDT_SIZE
    assert off_strings == off_struct + size_struct
    assert blob[0x30:0x40] == bytes(16)  # no reserved memory
    strings = blob[off_strings : off_strings + size_strings].split(b"\0")[:-1]
    assert strings[:4] == [b"compatible", b"#address-cells", b"#size-cells", b"model"]  # create_fdt's first
    assert strings[-5:] == [b"method", b"cpu_suspend", b"cpu_off", b"cpu_on", b"migrate"]  # fdt_add_psci_node's last
    assert not any(blob[off_strings + size_strings :])


def test_root_and_node_order() -> None:
    t = tree()
    assert prop(t, "/", "compatible") == ["linux,dummy-virt"]
    assert prop(t, "/", "model") == ["linux,dummy-virt"]
    assert [p.name for p in t.root.props] == ["interrupt-parent", "model", "#size-cells", "#address-cells",
                                              "compatible"]  # fmt: skip
    virtio = [f"virtio_mmio@{0x0A000000 + 0x200 * i:x}" for i in range(32)]
    assert [n.name for n in t.root.nodes] == [
        "psci", "memory@40000000", "platform-bus@c000000", "fw-cfg@9020000", *virtio, "gpio-keys",
        "pl061@9030000", "pcie@10000000", "pl031@9010000", "pl011@9000000", "pmu", "intc@8000000", "flash@0",
        "cpus", "timer", "apb-pclk", "chosen"]  # fmt: skip


def test_phandles_as_qemu_allocates_them() -> None:
    t = tree()
    assert prop(t, "/apb-pclk", "phandle") == [0x8000]
    assert prop(t, "/cpus/cpu@0", "phandle") == [0x8001]
    assert prop(t, "/intc@8000000", "phandle") == [0x8002]
    assert prop(t, "/intc@8000000/v2m@8020000", "phandle") == [0x8003]
    assert prop(t, "/pl061@9030000", "phandle") == [0x8004]
    assert prop(t, "/", "interrupt-parent") == [0x8002]
    assert prop(t, "/platform-bus@c000000", "interrupt-parent") == [0x8002]
    assert prop(t, "/cpus/cpu-map/socket0/cluster0/core0", "cpu") == [0x8001]
    assert prop(t, "/pcie@10000000", "msi-map") == [0, 0x8003, 0, 0x10000]


def test_gic() -> None:
    t = tree()
    intc = "/intc@8000000"
    assert prop(t, intc, "compatible") == ["arm,cortex-a15-gic"]  # GICv2
    assert cells64(prop(t, intc, "reg")) == [arm_virt.GICD_BASE, 0x10000, arm_virt.GICC_BASE, 0x10000]
    assert prop(t, intc, "#interrupt-cells") == [3]
    assert t.exist_property("interrupt-controller", intc)
    assert prop(t, f"{intc}/v2m@8020000", "compatible") == ["arm,gic-v2m-frame"]
    assert cells64(prop(t, f"{intc}/v2m@8020000", "reg")) == [0x0802_0000, 0x1000]


def test_uart_rtc_gpio_interrupts_level_high_spis() -> None:
    t = tree()
    assert prop(t, "/pl011@9000000", "interrupts") == [0, arm_virt.UART0_SPI, 4]  # SPI 1, level-high
    assert prop(t, "/pl011@9000000", "compatible") == ["arm,pl011", "arm,primecell"]
    assert cells64(prop(t, "/pl011@9000000", "reg")) == [arm_virt.UART0_BASE, 0x1000]
    assert prop(t, "/pl011@9000000", "clocks") == [0x8000, 0x8000]
    assert prop(t, "/pl011@9000000", "clock-names") == ["uartclk", "apb_pclk"]
    assert prop(t, "/chosen", "stdout-path") == ["/pl011@9000000"]
    assert prop(t, "/pl031@9010000", "interrupts") == [0, arm_virt.RTC_SPI, 4]
    assert cells64(prop(t, "/pl031@9010000", "reg")) == [arm_virt.RTC_BASE, 0x1000]
    assert prop(t, "/pl061@9030000", "interrupts") == [0, 7, 4]
    assert prop(t, "/gpio-keys/poweroff", "gpios") == [0x8004, 3, 0]
    assert prop(t, "/gpio-keys/poweroff", "linux,code") == [116]  # KEY_POWER
    assert prop(t, "/apb-pclk", "clock-frequency") == [24_000_000]


def test_timer_and_pmu_ppis() -> None:
    t = tree()
    assert prop(t, "/timer", "compatible") == ["arm,armv8-timer", "arm,armv7-timer"]
    assert t.exist_property("always-on", "/timer")
    words = prop(t, "/timer", "interrupts")
    triples = [tuple(words[i : i + 3]) for i in range(0, len(words), 3)]
    assert triples == [(1, 13, 0x104), (1, 14, 0x104), (1, 11, 0x104), (1, 10, 0x104)]  # PPI, CPU 0, level-high
    assert (arm_virt.PPI_PHYS_TIMER, arm_virt.PPI_VIRT_TIMER) == (16 + 14, 16 + 11)  # INTIDs: NS EL1, virtual
    assert prop(t, "/pmu", "interrupts") == [1, 7, 0x104]


def test_cpu_psci_flash_fw_cfg() -> None:
    t = tree()
    assert prop(t, "/cpus/cpu@0", "compatible") == ["arm,cortex-a72"]
    assert prop(t, "/cpus/cpu@0", "reg") == [0]
    assert prop(t, "/psci", "compatible") == ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]
    assert prop(t, "/psci", "method") == ["hvc"]
    assert prop(t, "/psci", "cpu_on") == [0xC4000003]
    assert cells64(prop(t, "/flash@0", "reg")) == [0, 0x0400_0000, 0x0400_0000, 0x0400_0000]  # two 64 MiB banks
    assert prop(t, "/flash@0", "bank-width") == [4]
    assert prop(t, "/flash@0", "compatible") == ["cfi-flash"]
    assert cells64(prop(t, "/fw-cfg@9020000", "reg")) == [0x0902_0000, 0x18]


def test_pcie() -> None:
    t = tree()
    pcie = "/pcie@10000000"
    assert prop(t, pcie, "compatible") == ["pci-host-ecam-generic"]
    assert cells64(prop(t, pcie, "reg")) == [0x40_1000_0000, 0x1000_0000]
    assert prop(t, pcie, "bus-range") == [0, 255]
    assert prop(t, pcie, "ranges") == [0x1000000, 0, 0, 0, 0x3EFF0000, 0, 0x10000,
                                       0x2000000, 0, 0x10000000, 0, 0x10000000, 0, 0x2EFF0000,
                                       0x3000000, 0x80, 0, 0x80, 0, 0x80, 0]  # fmt: skip
    imap = prop(t, pcie, "interrupt-map")
    entries = [imap[i : i + 10] for i in range(0, len(imap), 10)]
    assert len(entries) == 16
    assert entries[0] == [0, 0, 0, 1, 0x8002, 0, 0, 0, 3, 4]  # slot 0 INTA: SPI 3
    assert entries[5] == [0x800, 0, 0, 2, 0x8002, 0, 0, 0, 5, 4]  # slot 1 INTB: swizzled to SPI 5
    assert prop(t, pcie, "interrupt-map-mask") == [0x1800, 0, 0, 7]


def test_virtio_transports() -> None:
    t = tree()
    for i in range(32):
        path = f"/virtio_mmio@{arm_virt.VIRTIO_BASE + i * arm_virt.VIRTIO_STRIDE:x}"
        assert [p.name for p in t.get_node(path).props] == ["dma-coherent", "interrupts", "reg", "compatible"]
        assert prop(t, path, "interrupts") == [0, arm_virt.VIRTIO_SPI + i, 1]  # edge-triggered
        assert cells64(prop(t, path, "reg")) == [arm_virt.VIRTIO_BASE + i * 0x200, 0x200]
    few = fdt.parse_dtb(build_fdt(M128, virtio_count=4))
    assert [n.name for n in few.root.nodes if n.name.startswith("virtio")] == [
        "virtio_mmio@a000000", "virtio_mmio@a000200", "virtio_mmio@a000400", "virtio_mmio@a000600"]  # fmt: skip
    assert not [n for n in fdt.parse_dtb(build_fdt(M128, virtio_count=0)).root.nodes if "virtio" in n.name]


@pytest.mark.parametrize("ram_size", [128 << 20, 256 << 20, 1 << 30, 3 << 29, 2 << 30])
def test_memory_node(ram_size: int) -> None:
    t = tree(ram_size)
    assert prop(t, "/memory@40000000", "device_type") == ["memory"]
    assert cells64(prop(t, "/memory@40000000", "reg")) == [arm_virt.RAM_BASE, ram_size]


def test_randomness_only_when_given() -> None:
    t = fdt.parse_dtb(build_fdt(M128, kaslr_seed=0x0123456789ABCDEF, rng_seed=bytes(range(32))))
    assert prop(t, "/chosen", "kaslr-seed") == [0x01234567, 0x89ABCDEF]
    assert prop(t, "/chosen", "rng-seed")[:2] == [0x00010203, 0x04050607]
    assert not tree().exist_property("kaslr-seed", "/chosen")
    assert build_fdt(M128) == build_fdt(M128)


def test_parse_ram_size() -> None:
    assert parse_ram_size("128M") == 128 << 20
    assert parse_ram_size("128") == 128 << 20  # a bare number is MiB
    assert parse_ram_size("1G") == parse_ram_size("1g") == parse_ram_size("1024M") == 1 << 30
    assert parse_ram_size("1.5G") == 3 << 29
    assert parse_ram_size("2G") == 2 << 30 == arm_virt.MAX_RAM_SIZE
    for bad in ("64M", "3G", "2049M", "lots", ""):
        with pytest.raises(ValueError):
            parse_ram_size(bad)
    assert check_ram_size(M128) == M128


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        build_fdt(M128 + 4096)
    with pytest.raises(ValueError):
        build_fdt(M128, virtio_count=33)
    with pytest.raises(ValueError):
        build_fdt(M128, rng_seed=b"short")


def test_the_tree_of_a_firmware_boot_is_qemus_with_bios(tmp_path: Path) -> None:
    """Booting from flash (``-bios``), QEMU gives the board an ACPI GED instead of the PL061 and its power key:
    ``build_fdt(firmware=True)`` is that tree, byte for byte (``dtb-randomness=off``)."""
    bios = Path("/usr/lib/u-boot/qemu_arm64/u-boot.bin")
    require_tool(bios.exists(), f"{bios} missing (apt-get install u-boot-qemu)")
    require_tool(shutil.which(QEMU), f"{QEMU} not installed")
    out = tmp_path / "bios.dtb"
    cmd = [QEMU, "-M", f"virt,dtb-randomness=off,dumpdtb={out}", "-cpu", "cortex-a72", "-m", "128M", "-nic", "none",
           "-nographic", "-bios", str(bios)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert build_fdt(M128, firmware=True) == out.read_bytes()
    assert b"pl061" not in build_fdt(M128, firmware=True) and b"pl061" in build_fdt(M128)
