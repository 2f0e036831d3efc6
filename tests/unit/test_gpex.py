"""machine/devices/gpex.py: the virt board's PCIe ECAM window and empty PCI windows, as QEMU 7.2's gpex.

The reference bytes were read from QEMU 7.2 (``qemu-system-aarch64 -M virt -cpu cortex-a72 -m 128M -nographic
-nic none``): the reset configuration space and the write mask through qtest, U-Boot's view with ``pci display``.
"""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from machine.devices.gpex import (
    CLASS_CODE,
    DEVICE_ID,
    ECAM_BASE,
    ECAM_SIZE,
    MMIO_BASE,
    MMIO_HIGH_BASE,
    MMIO_HIGH_SIZE,
    MMIO_SIZE,
    PCI_WINDOWS,
    PIO_BASE,
    PIO_SIZE,
    VENDOR_ID,
    GpexEcam,
    GpexEcamState,
    PciMmioHighWindow,
    PciMmioWindow,
    PciPioWindow,
    PciWindowState,
    ecam_offset,
)
from machine.fields import FieldError, decode_fields, encode_fields

# 00:00.0's configuration space as QEMU 7.2 resets it (qtest ``read 0x4010000000 0x100`` under -S): this
# header, then 0xC0 zero bytes.
QEMU_RESET_HEADER = bytes.fromhex(
    "361b0800000000000000000600000000"
    "00000000000000000000000000000000"
    "000000000000000000000000f41a0011"
    "00000000000000000000000000000000"
)
# The same after writing 0xFF to each byte alone (qtest writeb, readb, then the old byte back): the write
# mask over the reset values; 0x40..0xFF read back 0xFF.
QEMU_AFTER_FF_HEADER = bytes.fromhex(
    "361b08000705000000000006ff000000"
    "00000000000000000000000000000000"
    "000000000000000000000000f41a0011"
    "000000000000000000000000ff000000"
)
# U-Boot 2023.01 ``pci display.b 00.00.00 0 100`` on QEMU, after its enumeration set MASTER and a cache line.
UBOOT_DISPLAY = """
00000000: 36 1b 08 00 04 00 00 00 00 00 00 06 08 00 00 00
00000010: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
00000020: 00 00 00 00 00 00 00 00 00 00 00 00 f4 1a 00 11
00000030: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
"""  # 0x40..0xFF: all zeros


def uboot_bytes() -> bytes:
    data = b"".join(bytes.fromhex(line.split(":")[1]) for line in UBOOT_DISPLAY.strip().splitlines())
    return data + bytes(0xC0)


def reset_config() -> bytes:
    return QEMU_RESET_HEADER + bytes(0xC0)


def read_bytes(dev: GpexEcam, offset: int, count: int) -> bytes:
    return b"".join(dev.read(offset + i, 4).to_bytes(4, "little") for i in range(0, count, 4))


def test_window_placement_matches_the_virt_device_tree() -> None:
    # pcie@10000000: reg = <0x40 0x10000000 0x00 0x10000000>; ranges: PIO 0x3eff0000+0x10000,
    # MMIO 0x10000000+0x2eff0000, MMIO64 0x8000000000+0x8000000000 (QEMU 7.2, -m 128M, dumpdtb).
    assert (ECAM_BASE, ECAM_SIZE, GpexEcam.size, GpexEcam.name) == (0x40_1000_0000, 0x1000_0000, 0x1000_0000,
                                                                     "pcie-ecam")  # fmt: skip
    assert (PIO_BASE, PIO_SIZE) == (0x3EFF_0000, 0x1_0000)
    assert (MMIO_BASE, MMIO_SIZE) == (0x1000_0000, 0x2EFF_0000)
    assert (MMIO_HIGH_BASE, MMIO_HIGH_SIZE) == (0x80_0000_0000, 0x80_0000_0000)
    assert [(base, cls.name, cls.size) for base, cls in PCI_WINDOWS] == [
        (0x3EFF_0000, "pcie-pio", 0x1_0000),
        (0x1000_0000, "pcie-mmio", 0x2EFF_0000),
        (0x80_0000_0000, "pcie-mmio-high", 0x80_0000_0000),
    ]


def test_ecam_offset_decode() -> None:
    assert ecam_offset(0, 0, 0) == 0
    assert ecam_offset(0, 0, 0, 0x3C) == 0x3C
    assert ecam_offset(1, 0, 0) == 0x10_0000
    assert ecam_offset(0, 1, 0) == 0x8000
    assert ecam_offset(0, 0, 1) == 0x1000
    assert ecam_offset(0xFF, 31, 7, 0xFFC) == 0x0FFF_FFFC == ECAM_SIZE - 4
    assert ecam_offset(0x12, 0x0A, 3, 0x40) == 0x12 << 20 | 0x0A << 15 | 3 << 12 | 0x40
    for bad in [(256, 0, 0, 0), (0, 32, 0, 0), (0, 0, 8, 0), (0, 0, 0, 0x1000), (-1, 0, 0, 0)]:
        with pytest.raises(ValueError):
            ecam_offset(*bad)


def test_the_host_bridge_ids() -> None:
    dev = GpexEcam()
    assert (VENDOR_ID, DEVICE_ID, CLASS_CODE) == (0x1B36, 0x0008, 0x060000)
    assert dev.read(0x00, 2) == 0x1B36  # Red Hat
    assert dev.read(0x02, 2) == 0x0008  # PCIe host bridge
    assert dev.read(0x00, 4) == 0x0008_1B36
    assert dev.read(0x08, 4) == 0x0600_0000  # class 06 (bridge) 00 (host), prog-if 0, revision 0
    assert dev.read(0x0E, 1) == 0x00  # header type 0, single function
    assert dev.read(0x06, 2) & 0x10 == 0 and dev.read(0x34, 1) == 0  # no capability list
    assert dev.read(0x2C, 4) == 0x1100_1AF4  # subsystem 0x1af4:0x1100
    assert dev.read(0x3D, 1) == 0  # no interrupt pin
    assert all(dev.read(bar, 4) == 0 for bar in range(0x10, 0x28, 4)) and dev.read(0x30, 4) == 0


def test_reset_configuration_space_is_qemus() -> None:
    dev = GpexEcam()
    assert dev.config() == reset_config()
    assert read_bytes(dev, 0, 0x100) == reset_config()
    assert bytes(dev.read(i, 1) for i in range(0x100)) == reset_config()


def test_absent_functions_read_all_ones() -> None:
    dev = GpexEcam()
    for bus, device, function in [(0, 0, 1), (0, 0, 7), (0, 1, 0), (0, 31, 7), (1, 0, 0), (255, 31, 7), (0x80, 3, 2)]:
        base = ecam_offset(bus, device, function)
        for reg in (0, 0x3C, 0xFC, 0x100, 0xFFC):
            assert dev.read(base + reg, 4) == 0xFFFF_FFFF
            assert dev.read(base + reg, 2) == 0xFFFF
            assert dev.read(base + reg, 1) == 0xFF
            assert dev.read(base + reg, 8) == 0xFFFF_FFFF_FFFF_FFFF
    assert dev.read(ECAM_SIZE - 4, 4) == 0xFFFF_FFFF


def test_the_root_has_256_bytes_of_configuration_space() -> None:
    dev = GpexEcam()
    for reg in (0x100, 0x104, 0x800, 0xFFC):
        assert dev.read(reg, 4) == 0xFFFF_FFFF
        dev.write(reg, 4, 0)
        assert dev.read(reg, 4) == 0xFFFF_FFFF
    assert dev.read(0xFC, 8) == 0xFFFF_FFFF_0000_0000  # the last word, then nothing


def test_writes_to_absent_functions_are_ignored() -> None:
    dev = GpexEcam()
    before = dev.save()
    for offset in (ecam_offset(0, 1, 0, 4), ecam_offset(1, 0, 0, 4), ecam_offset(0, 0, 1, 0x40)):
        dev.write(offset, 4, 0xFFFF_FFFF)
        assert dev.read(offset, 4) == 0xFFFF_FFFF
    assert dev.save() == before


def test_write_mask_is_qemus() -> None:
    """Writing 0xFF to each byte alone, then restoring it, shows the mask QEMU 7.2 showed."""
    dev = GpexEcam()
    seen = bytearray()
    for reg in range(0x100):
        old = dev.read(reg, 1)
        dev.write(reg, 1, 0xFF)
        seen.append(dev.read(reg, 1))
        dev.write(reg, 1, old)
    assert bytes(seen) == QEMU_AFTER_FF_HEADER + b"\xff" * 0xC0
    assert dev.config() == reset_config()


def test_command_register_keeps_only_its_writable_bits() -> None:
    dev = GpexEcam()
    dev.write(0x04, 4, 0xFFFF_FFFF)  # command and status together
    assert dev.read(0x04, 4) == 0x0000_0507  # status: read-only or write-1-to-clear (never set)
    dev.write(0x04, 2, 0x0004)
    assert dev.read(0x04, 2) == 0x0004 and dev.command == 0x0004
    dev.write(0x05, 1, 0xFF)
    assert dev.read(0x04, 2) == 0x0504


def test_bars_and_rom_ignore_writes() -> None:
    dev = GpexEcam()
    for reg in (*range(0x10, 0x28, 4), 0x30, 0x00, 0x08, 0x2C):
        before = dev.read(reg, 4)
        dev.write(reg, 4, 0xFFFF_FFFF)
        assert dev.read(reg, 4) == before


def test_device_specific_bytes_are_storage() -> None:
    dev = GpexEcam()
    dev.write(0x40, 8, 0x1122_3344_5566_7788)
    assert dev.read(0x40, 8) == 0x1122_3344_5566_7788
    assert dev.read(0x44, 4) == 0x1122_3344  # as QEMU: two 4-byte halves, little-endian
    dev.write(0xFE, 4, 0xAABB_CCDD)  # only the bytes below 0x100 land
    assert dev.read(0xFC, 4) == 0xCCDD_0000
    assert dev.device_specific[-2:] == bytes.fromhex("ddcc")
    dev.write(0x3E, 4, 0x1234_5678)  # straddles the header's end: 0x3E/0x3F read-only, 0x40/0x41 stored
    assert dev.read(0x3C, 4) == 0x0000_0000 and dev.read(0x40, 2) == 0x1234


def test_uboot_view_after_enumeration() -> None:
    """U-Boot sets MASTER and a cache line size of 8; its ``pci display`` then shows these bytes."""
    dev = GpexEcam()
    dev.write(0x04, 2, 0x0004)
    dev.write(0x0C, 1, 0x08)
    assert dev.config() == uboot_bytes()
    assert dev.read(0x00, 8) == 0x0000_0004_0008_1B36  # U-Boot's ``md.q 0x4010000000 2``
    assert dev.read(0x08, 8) == 0x0000_0008_0600_0000


def test_peek_is_read() -> None:
    dev = GpexEcam()
    dev.write(0x44, 4, 0xDEAD_BEEF)
    for offset in (0, 4, 0x44, 0x100, ecam_offset(0, 1, 0)):
        for size in (1, 2, 4, 8):
            assert dev.peek(offset, size) == dev.read(offset, size)


def test_pci_windows_read_ones_and_ignore_writes() -> None:
    for _, cls in PCI_WINDOWS:
        window = cls()
        for size in (1, 2, 4, 8):
            assert window.read(0, size) == window.peek(0x10, size) == (1 << (8 * size)) - 1
        window.write(0, 4, 0)
        assert window.read(0, 4) == 0xFFFF_FFFF
        assert window.save() == PciWindowState()
        window.load(PciWindowState())
        with pytest.raises(FieldError):
            window.load(object())  # type: ignore[arg-type]
        assert not vars(window)  # no state, no wiring
    assert {PciPioWindow.name, PciMmioWindow.name, PciMmioHighWindow.name} == {"pcie-pio", "pcie-mmio",
                                                                                "pcie-mmio-high"}  # fmt: skip


def test_save_load_round_trip() -> None:
    source = GpexEcam()
    source.write(0x04, 2, 0x0406)
    source.write(0x0C, 1, 0x10)
    source.write(0x3C, 1, 0x23)
    source.write(0x80, 4, 0xCAFE_F00D)
    state = source.save()
    assert state == GpexEcamState(0x0406, 0x10, 0x23, bytes(0x40) + bytes.fromhex("0df0feca") + bytes(0x7C))
    assert decode_fields(GpexEcamState, encode_fields(state)) == state
    target = GpexEcam()
    target.load(state)
    assert target.save() == state
    assert target.config() == source.config()


def test_every_public_attribute_is_a_state_field() -> None:
    dev = GpexEcam()
    assert {k for k in vars(dev) if not k.startswith("_")} == {f.name for f in fields(GpexEcamState)}
    assert all(callable(v) for k, v in vars(dev).items() if k.startswith("_"))


@pytest.mark.parametrize(
    "change",
    [{"command": 0x0008}, {"command": 0x1_0000}, {"cache_line_size": 256}, {"interrupt_line": -1},
     {"device_specific": bytes(0xBF)}, {"device_specific": bytes(0xC1)}, {"device_specific": bytearray(0xC0)},
     {"command": True}],
)  # fmt: skip
def test_load_refuses_malformed_states(change: dict[str, object]) -> None:
    dev = GpexEcam()
    dev.write(0x04, 2, 0x0004)
    good = dev.save()
    with pytest.raises(FieldError):
        dev.load(replace(good, **change))  # type: ignore[arg-type]
    assert dev.save() == good


def test_decode_refuses_a_short_device_specific_area() -> None:
    state = replace(GpexEcam().save(), device_specific=bytes(0xBF))
    with pytest.raises(FieldError):
        decode_fields(GpexEcamState, encode_fields(state))
