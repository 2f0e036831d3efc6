"""The Arm virt board's parts: machine/devices/bank.py, machine/devices/pl061.py, machine/flash_window.py (through a
real ArmVirtMachine booted from a small firmware in flash), machine/boards/arm_virt.py and machine/factory.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from unicorn import arm64_const as ac

from machine.arch.aarch64 import AARCH64
from machine.arch.armv7m import ARMV7M
from machine.arm_virt import ArmVirtMachine
from machine.boards import arm_virt as board
from machine.boards import mps2, virt
from machine.devices.bank import DeviceBank
from machine.devices.pl061 import PL061_ID, Pl061, Pl061State
from machine.factory import make_machine, ram_base_for, virtio_layout_for
from machine.fields import FieldError
from machine.inputs import ScriptedInputs
from machine.loader import Image, ImageError, Segment, load_image
from machine.machine import Machine, MachineConfig
from machine.mps2 import Mps2Machine
from machine.results import RunKind
from tests.conftest import ROOT, guest

# -- DeviceBank ----------------------------------------------------------------------------------------------------


class FakeDevice:
    """A device of ``size`` bytes whose register at offset ``o`` reads ``base + o``; writes are recorded."""

    access_size = 4

    def __init__(self, name: str, size: int, base: int) -> None:
        self.name, self.size, self.base = name, size, base
        self.writes: list[tuple[int, int, int]] = []

    def read(self, offset: int, size: int) -> int:
        return self.base + offset

    def peek(self, offset: int, size: int) -> int | None:
        return None if offset == 0x10 else self.base + offset + 1

    def write(self, offset: int, size: int, value: int) -> None:
        self.writes.append((offset, size, value))


def _bank() -> tuple[DeviceBank, list[FakeDevice]]:
    devices = [FakeDevice(f"d{i}", 0x100, 0x1000 * (i + 1)) for i in range(3)]
    return DeviceBank("bank", 0x200, devices), devices


def test_bank_routes_by_stride() -> None:
    bank, devices = _bank()
    assert bank.size == 0x600 and bank.name == "bank"
    assert bank.read(0x000, 4) == 0x1000
    assert bank.read(0x0FC, 4) == 0x10FC
    assert bank.read(0x204, 4) == 0x2004
    assert bank.read(0x408, 2) == 0x3008
    bank.write(0x20C, 4, 0xAB)
    bank.write(0x400, 1, 0xCD)
    assert devices[0].writes == [] and devices[1].writes == [(0xC, 4, 0xAB)] and devices[2].writes == [(0, 1, 0xCD)]
    assert bank.peek(0x204, 4) == 0x2005
    assert bank.peek(0x210, 4) is None  # the device's own answer: defer the access


def test_bank_gaps_read_zero_and_ignore_writes() -> None:
    bank, devices = _bank()
    for offset in (0x100, 0x1FC, 0x300, 0x5FC):
        assert bank.read(offset, 4) == 0
        assert bank.peek(offset, 4) == 0  # answered now: nothing there
        bank.write(offset, 4, 0xFFFF_FFFF)
    assert bank.read(0x0FE, 4) == 0  # straddles the device's end
    bank.write(0x2FE, 4, 1)
    assert all(d.writes == [] for d in devices)


def test_virt_board_bank_of_virtio_transports() -> None:
    assert board.VIRTIO_BANK.size == board.VIRTIO_STRIDE * board.VIRTIO_COUNT == 0x4000
    assert board.VIRTIO_BANK.base == 0x0A00_0000


# -- PL061 ----------------------------------------------------------------------------------------------------------


def _gpio() -> tuple[Pl061, list[bool]]:
    levels: list[bool] = []
    return Pl061(levels.append), levels


def test_pl061_data_is_masked_by_address_bits() -> None:
    gpio, _ = _gpio()
    gpio.write(0x400, 4, 0xFF)  # all outputs
    gpio.write(0x3FC, 4, 0xA5)  # mask 0xFF
    assert gpio.read(0x3FC, 4) == 0xA5
    gpio.write(0x004, 4, 0x00)  # mask 0x01: only line 0
    assert gpio.read(0x3FC, 4) == 0xA4
    gpio.write(0x020 | 0x004, 4, 0xFF)  # mask 0x09: lines 0 and 3
    assert gpio.read(0x3FC, 4) == 0xAD
    gpio.write(0x000, 4, 0x00)  # mask 0: nothing
    assert gpio.read(0x3FC, 4) == 0xAD
    assert gpio.read(0x004, 4) == 0x01  # a read sees only the lines in its address
    assert gpio.read(0x080, 4) == 0x20
    assert gpio.read(0x040, 4) == 0x00
    assert gpio.read(0x000, 4) == 0
    gpio.write(0x3FC, 4, 0x1_0000_0F0F)  # only 8 lines
    assert gpio.read(0x3FC, 4) == 0x0F and gpio.save().data == 0x0F


def test_pl061_inputs_read_zero() -> None:
    gpio, levels = _gpio()
    assert gpio.read(0x3FC, 4) == 0  # reset: all inputs, nothing drives them
    gpio.write(0x400, 4, 0x0F)
    gpio.write(0x3FC, 4, 0xFF)
    assert gpio.read(0x3FC, 4) == 0x0F
    assert gpio.read(0x400, 4) == 0x0F
    assert not any(levels)  # edge-sensitive lines (the reset state) never interrupt: nothing drives the inputs


def test_pl061_configuration_registers_keep_eight_bits() -> None:
    gpio, _ = _gpio()
    for offset, name in ((0x400, "direction"), (0x404, "isense"), (0x408, "ibe"), (0x40C, "iev"), (0x410, "im"),
                         (0x420, "afsel")):  # fmt: skip
        gpio.write(offset, 4, 0x1234_5600 | offset >> 2)
        assert gpio.read(offset, 4) == (offset >> 2) & 0xFF
        assert getattr(gpio.save(), name) == (offset >> 2) & 0xFF
    gpio.write(0x41C, 4, 0xFF)  # IC: nothing pending to clear
    assert gpio.read(0x418, 4) == 0
    assert gpio.read(0x500, 4) == 0  # (the Luminary registers are not there)


def test_pl061_id_registers() -> None:
    gpio, _ = _gpio()
    ids = [gpio.read(0xFE0 + 4 * i, 4) for i in range(8)]
    assert ids == list(PL061_ID) == [0x61, 0x10, 0x04, 0x00, 0x0D, 0xF0, 0x05, 0xB1]
    assert [gpio.peek(0xFE0 + 4 * i, 4) for i in range(8)] == ids
    assert gpio.read(0xFD0, 4) == gpio.read(0xFDC, 4) == 0
    gpio.write(0xFE0, 4, 0)  # read-only
    assert gpio.read(0xFE0, 4) == 0x61


def test_pl061_save_and_load() -> None:
    gpio, _ = _gpio()
    for offset, value in ((0x400, 0xF0), (0x404, 0x01), (0x408, 0x02), (0x40C, 0x04), (0x410, 0x08), (0x420, 0x10),
                          (0x3FC, 0xC3)):  # fmt: skip
        gpio.write(offset, 4, value)
    state = gpio.save()
    # Only the output lines (GPIODIR 0xF0) took the data; line 0, level-sensitive (GPIOIS) for low (GPIOIEV bit 0
    # clear) and undriven (0), latched its interrupt (GPIORIS), as QEMU's pl061_update does.
    assert state == Pl061State(0xC0, 0xF0, 0x01, 0x02, 0x04, 0x08, 0x10, 0x01)
    other, _ = _gpio()
    other.load(state)
    assert other.save() == state
    assert other.read(0x3FC, 4) == 0xC0
    other.write(0x3FC, 4, 0)
    assert gpio.read(0x3FC, 4) == 0xC0  # not shared
    with pytest.raises(FieldError):
        other.load(Pl061State(0x100, 0, 0, 0, 0, 0, 0, 0))
    with pytest.raises(FieldError):
        other.load(board)  # type: ignore[arg-type]
    assert other.save() == Pl061State(0, 0xF0, 0x01, 0x02, 0x04, 0x08, 0x10, other.save().istate)


def test_pl061_data_as_qemu_keeps_it() -> None:
    gpio, _ = _gpio()
    gpio.write(0x3FC, 4, 0xFF)  # all lines inputs: QEMU drops the write
    gpio.write(0x400, 4, 0xFF)
    first = gpio.read(0x3FC, 4)
    gpio.write(0x3FC, 4, 0xFF)
    gpio.write(0x400, 4, 0x00)  # inputs again: QEMU still reads the data register
    assert (first, gpio.read(0x3FC, 4)) == (0x00, 0xFF)


def test_pl061_level_interrupt_of_an_undriven_line() -> None:
    gpio, levels = _gpio()
    gpio.write(0x404, 4, 0x01)  # GPIOIS: line 0 level-sensitive
    gpio.write(0x410, 4, 0x01)  # GPIOIE
    assert gpio.read(0x414, 4) == 0x01  # GPIORIS
    assert gpio.read(0x418, 4) == 0x01  # GPIOMIS
    assert levels and levels[-1]


# -- boards/arm_virt -------------------------------------------------------------------------------------------------


def _image(*segments: tuple[int, bytes] | tuple[int, bytes, int], entry: int = 0) -> Image:
    segs = tuple(Segment(s[0], s[1], s[2] if len(s) == 3 else len(s[1])) for s in segments)  # type: ignore[misc]
    return Image("test.bin", entry, segs, None, "0" * 64)


def test_is_firmware_when_every_segment_lies_in_the_flash_banks() -> None:
    assert board.is_firmware(_image((0, b"\x00" * 16)))
    assert board.is_firmware(_image((0x0400_0000, b"\x00" * 16)))  # bank 1
    assert board.is_firmware(_image((0x07FF_FF00, b"\x00" * 0x100)))  # ends exactly at the end of bank 1
    assert not board.is_firmware(_image((0x07FF_FF00, b"\x00" * 0x100, 0x101)))  # its bss does not
    assert not board.is_firmware(_image((board.RAM_BASE + 0x8_0000, b"\x00" * 16)))
    assert not board.is_firmware(_image((0, b"\x00" * 16), (board.RAM_BASE, b"\x00" * 16)))
    assert not board.is_firmware(Image("empty", 0, (), None, "0" * 64))


def test_flash_contents_place_segments_and_zero_the_gaps() -> None:
    contents = board.flash_contents(_image((0x10, b"\x11\x22"), (0, b"\xaa"), (0x20, b"\xbb" * 4, 0x100)))
    assert contents == b"\xaa" + bytes(15) + b"\x11\x22" + bytes(14) + b"\xbb" * 4
    assert board.flash_contents(_image((board.FLASH_SIZE - 4, b"\xcc" * 4)))[-4:] == b"\xcc" * 4


@pytest.mark.parametrize("segment", [(board.FLASH_SIZE - 4, b"\x00" * 8), (0x0400_0000, b"\x00" * 4)],
                         ids=["across-the-end", "in-bank-1"])  # fmt: skip
def test_flash_contents_refuse_a_firmware_bigger_than_bank_0(segment: tuple[int, bytes]) -> None:
    with pytest.raises(ImageError, match="64 MiB"):
        board.flash_contents(_image(segment))


def test_memory_map_has_no_gpio_when_booted_from_flash() -> None:
    names = [r.name for r in board.memory_map(board.DEFAULT_RAM_SIZE)]
    assert "gpio" in names
    firmware = board.memory_map(board.DEFAULT_RAM_SIZE, firmware=True)
    assert "gpio" not in [r.name for r in firmware]
    assert [r.name for r in firmware] == [n for n in names if n != "gpio"]
    ram = firmware[-1]
    assert (ram.name, ram.base, ram.size, ram.kind) == ("ram", board.RAM_BASE, board.DEFAULT_RAM_SIZE, "ram")
    assert [(r.name, r.base, r.kind) for r in firmware[:2]] == [("flash0", 0, "rom"), ("flash1", 0x0400_0000, "rom")]
    regions = sorted(firmware, key=lambda r: r.base)
    for a, b in zip(regions, regions[1:], strict=False):
        assert a.end <= b.base, f"{a.name} overlaps {b.name}"


# -- machine/factory.py -------------------------------------------------------------------------------------------


def _make(image: Image, **config: object):  # noqa: ANN202
    return make_machine(image, ScriptedInputs(0, None), lambda _: None, MachineConfig(**config))  # type: ignore[arg-type]


AARCH64_HELLO = ROOT / "tests" / "guests" / "aarch64" / "build" / "hello.elf"
CORTEXM_HELLO = ROOT / "tests" / "guests" / "cortexm" / "build" / "hello.elf"


def test_make_machine_picks_the_board_by_image() -> None:
    assert type(_make(load_image(AARCH64_HELLO))) is ArmVirtMachine
    assert type(_make(load_image(CORTEXM_HELLO))) is Mps2Machine
    assert type(_make(load_image(guest("rv64", "hello")))) is Machine
    assert type(_make(load_image(guest("rv32", "hello")))) is Machine


def test_make_machine_picks_the_board_of_a_raw_image_by_arch(tmp_path: Path) -> None:
    raw = tmp_path / "raw.bin"
    raw.write_bytes(bytes.fromhex("1f2003d5"))  # nop (a64)
    assert type(_make(load_image(raw, board.RAM_BASE), arch=AARCH64)) is ArmVirtMachine
    assert type(_make(load_image(raw, 0), arch=ARMV7M)) is Mps2Machine
    with pytest.raises(ImageError, match="--arch"):
        _make(load_image(raw, 0))


@pytest.mark.parametrize(
    ("path", "wanted", "runs_on"),
    [(AARCH64_HELLO, "mps2-an385", "virt"), (CORTEXM_HELLO, "virt", "mps2-an385"),
     (guest("rv32", "hello"), "mps2-an385", "virt")],
    ids=["aarch64-on-mps2", "armv7m-on-virt", "riscv-on-mps2"],
)  # fmt: skip
def test_a_board_the_image_does_not_run_on_is_refused(path: Path, wanted: str, runs_on: str) -> None:
    with pytest.raises(ImageError, match=f"runs on the {runs_on} board, not {wanted}"):
        _make(load_image(path), board=wanted)


def test_the_images_own_board_by_name_is_accepted() -> None:
    assert type(_make(load_image(AARCH64_HELLO), board="virt")) is ArmVirtMachine
    assert type(_make(load_image(CORTEXM_HELLO), board="mps2-an385")) is Mps2Machine
    assert type(_make(load_image(guest("rv64", "hello")), board="virt")) is Machine


def test_virtio_layout_and_ram_base_per_architecture() -> None:
    assert virtio_layout_for("aarch64") == board.VIRTIO_LAYOUT
    assert (board.VIRTIO_LAYOUT.count, board.VIRTIO_LAYOUT.first_irq) == (32, 32 + 16)
    assert virtio_layout_for("aarch64").slot(0) == 31  # the highest slot first, as QEMU
    assert virtio_layout_for("armv7m") == mps2.VIRTIO_LAYOUT and mps2.VIRTIO_LAYOUT.count == 0
    assert virtio_layout_for("riscv64") == virtio_layout_for("riscv32") == virt.VIRTIO_LAYOUT
    assert (ram_base_for("aarch64"), ram_base_for("armv7m"), ram_base_for("riscv32")) == (0x4000_0000, 0, 0x8000_0000)


# -- FlashWindow, through an ArmVirtMachine booted from flash -------------------------------------------------------

# A firmware for flash 0 (aarch64-linux-gnu-as, ld -Ttext=0, objcopy -O binary): copies `ramcode` to RAM and runs it
# there; it issues flash commands, then branches back to `back` in flash.
#    0: ldr x1, =0x40200000; adr x2, ramcode; adr x3, ramcode_end
#    c: copy: ldr w4, [x2], #4; str w4, [x1], #4; cmp x2, x3; b.ne copy
#   1c: ldr x1, =0x40200000; br x1
#   24: back: ldr w21, [x0, #0x1000]; mov x20, #0x1234; movz x0, #8; movk x0, #0x8400, lsl #16; hvc #0 (SYSTEM_OFF)
#   38: .ltorg
#   40: ramcode (at RAM_CODE):
#       +00: mov x0, #0; mov w1, #0x98; str w1, [x0]                 CFI query: the bank becomes the device
#       +0c: ldr w10, [x0, #0x40]; ldr w11, [x0, #0x44]; ldr w12, [x0, #0x48]    "Q", "R", "Y"
#       +18: mov w1, #0xff; str w1, [x0]                              read array
#       +20: ldr w13, [x0]                                           the array (still the device mapping)
#       +24: mov w1, #0x40; str w1, [x0, #0x1000]; ldr w1, =0xcafebabe; str w1, [x0, #0x1000]   program a word
#       +34: ldr w15, [x0]                                           the status
#       +38: mov w1, #0xff; str w1, [x0]; ldr w14, [x0, #0x1000]      read array: the programmed word
#       +44: ldr x1, =back; br x1                                     a fetch from the bank
#       .ltorg
FIRMWARE = bytes.fromhex(
    "c1010058e201001083040010444440b8244400b85f0003eba1ffff54e100005820001fd6150050b9944682d2000180d20080b0f2020000"
    "d40000204000000000000080d201138052010000b90a4040b90b4440b90c4840b9e11f8052010000b90d0040b901088052010010b9010100"
    "18010010b90f0040b9e11f8052010000b90e0050b96100005820001fd6bebafeca2400000000000000"
)
RAM_CODE = 0x4020_0000
AFTER_QUERY, AFTER_ARRAY_READ, BACK = RAM_CODE + 0x0C, RAM_CODE + 0x24, 0x24


def _firmware_machine(tmp_path: Path, native: bool = True) -> ArmVirtMachine:
    path = tmp_path / "firmware.bin"
    path.write_bytes(FIRMWARE)
    machine = _make(load_image(path, load_addr=0), arch=AARCH64, prefer_native=native)
    assert isinstance(machine, ArmVirtMachine)
    return machine


def _x(machine: ArmVirtMachine, n: int) -> int:
    return int(machine.uc.reg_read(ac.UC_ARM64_REG_X0 + n))


def test_firmware_boot_maps_flash_0_as_memory(tmp_path: Path) -> None:
    machine = _firmware_machine(tmp_path)
    window = machine._flash_windows[0]
    assert window.base == 0 and window.device is machine.flash[0]
    assert window.contains(0) and window.contains(board.FLASH_SIZE - 1) and not window.contains(board.FLASH_SIZE)
    assert window._as_array and machine._flash_windows[1]._as_array
    assert machine.pc == 0
    assert bytes(machine.uc.mem_read(0, len(FIRMWARE))) == FIRMWARE  # plain memory, read by Unicorn itself
    assert "gpio" not in machine.devices and "gpio" not in [r.name for r in machine.regions]


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
def test_flash_commands_switch_to_the_device_and_a_fetch_switches_back(tmp_path: Path, native: bool) -> None:
    machine = _firmware_machine(tmp_path, native)
    window, flash = machine._flash_windows[0], machine.flash[0]
    for addr in (AFTER_QUERY, AFTER_ARRAY_READ, BACK):
        machine.add_breakpoint(addr)

    result = machine.run(10_000)  # the write of 0x98 faulted on the memory mapping: the device took it
    assert (result.kind, result.pc) == (RunKind.BREAKPOINT, AFTER_QUERY)
    assert not window._as_array and not flash.is_array_mode

    result = machine.run(10_000)
    assert (result.kind, result.pc) == (RunKind.BREAKPOINT, AFTER_ARRAY_READ)
    assert (_x(machine, 10), _x(machine, 11), _x(machine, 12)) == (0x0051_0051, 0x0052_0052, 0x0059_0059)
    assert flash.is_array_mode and _x(machine, 13) == int.from_bytes(FIRMWARE[:4], "little")
    assert not window._as_array  # reading the array again needs no remapping

    result = machine.run(10_000)  # the fetch at `back` faulted on the device mapping: the array is mapped again
    assert (result.kind, result.pc) == (RunKind.BREAKPOINT, BACK)
    assert window._as_array
    assert (_x(machine, 14), _x(machine, 15)) == (0xCAFE_BABE, 0x0080_0080)  # programmed word, status

    result = machine.run(10_000)
    assert (result.kind, result.exit_code) == (RunKind.EXITED, 0)
    assert _x(machine, 20) == 0x1234
    assert _x(machine, 21) == 0xCAFE_BABE  # read from the array mapping, refilled with the written page
    assert bytes(machine.uc.mem_read(0x1000, 4)) == (0xCAFE_BABE).to_bytes(4, "little")


def test_restoring_a_state_taken_in_command_mode_maps_the_device_again(tmp_path: Path) -> None:
    machine = _firmware_machine(tmp_path)
    window = machine._flash_windows[0]
    machine.add_breakpoint(AFTER_QUERY)
    assert machine.run(10_000).pc == AFTER_QUERY
    machine.remove_breakpoint(AFTER_QUERY)
    in_query = machine.save_state()
    query_digest = machine.digest()
    end = machine.run(10_000)
    assert end.kind == RunKind.EXITED and window._as_array
    end_digest = machine.digest()

    machine.restore_state(in_query)
    assert not window._as_array  # the device in query mode is mapped: the next reads answer the CFI query
    assert machine.digest() == query_digest
    again = machine.run(10_000)
    assert (again.kind, again.icount, again.pc) == (end.kind, end.icount, end.pc)
    assert (_x(machine, 10), _x(machine, 14), _x(machine, 21)) == (0x0051_0051, 0xCAFE_BABE, 0xCAFE_BABE)
    assert machine.digest() == end_digest


def test_restoring_a_state_in_array_mode_refills_the_array(tmp_path: Path) -> None:
    machine = _firmware_machine(tmp_path)
    window = machine._flash_windows[0]
    start = machine.save_state()
    assert machine.run(10_000).kind == RunKind.EXITED
    assert bytes(machine.uc.mem_read(0x1000, 4)) == (0xCAFE_BABE).to_bytes(4, "little")
    machine.restore_state(start)
    assert window._as_array
    assert bytes(machine.uc.mem_read(0x1000, 4)) == bytes(4)  # the page programmed later is as it was
    assert bytes(machine.uc.mem_read(0, len(FIRMWARE))) == FIRMWARE
    assert machine.run(10_000).kind == RunKind.EXITED
    assert _x(machine, 21) == 0xCAFE_BABE
