"""machine/devices/pflash_cfi01.py: the Arm virt board's CFI flash as QEMU 7.2's pflash_cfi01.

The QEMU reference values were observed on qemu-system-aarch64 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18):
``qemu-system-aarch64 -M virt -cpu cortex-a72 -m 128M -nographic -bios /usr/lib/u-boot/qemu_arm64/u-boot.bin``,
U-Boot 2023.01's ``mw``/``md`` commands typed on its console (stdin) against flash bank 1 (0x04000000), and
QEMU's ``-trace 'pflash_io*'`` for the accesses U-Boot makes itself. ``md`` lines are pasted as printed.
"""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from machine.devices.pflash_cfi01 import (
    CFI_LEN,
    MAX_NODES,
    SECTOR_LEN,
    VIRT_FLASH_SIZE,
    WRITE_BLOCK,
    PflashCfi01,
    PflashCfi01State,
    cfi_table,
    changed_pages,
)
from machine.fields import FieldError, decode_fields, encode_fields, fingerprint
from machine.ram import PAGE, PageTable

# `mw.l 0x04000000 0x98` then `md.l 0x04000000 0x58` on QEMU 7.2.22 (the whole table, then zeros).
QEMU_QUERY_DUMP = """
04000000: 00000000 00000000 00000000 00000000
04000010: 00000000 00000000 00000000 00000000
04000020: 00000000 00000000 00000000 00000000
04000030: 00000000 00000000 00000000 00000000
04000040: 00510051 00520052 00590059 00010001
04000050: 00000000 00310031 00000000 00000000
04000060: 00000000 00000000 00000000 00450045
04000070: 00550055 00000000 00000000 00070007
04000080: 00070007 000a000a 00000000 00040004
04000090: 00040004 00040004 00000000 00190019
040000a0: 00020002 00000000 000b000b 00000000
040000b0: 00010001 00ff00ff 00000000 00000000
040000c0: 00020002 00500050 00520052 00490049
040000d0: 00310031 00300030 00000000 00000000
040000e0: 00000000 00000000 00000000 00000000
040000f0: 00000000 00000000 00000000 00010001
04000100: 00000000 00000000 00000000 00000000
04000110: 00000000 00000000 00000000 00000000
04000120: 00000000 00000000 00000000 00000000
04000130: 00000000 00000000 00000000 00000000
04000140: 00000000 00000000 00000000 00000000
04000150: 00000000 00000000 00000000 00000000
"""

# One chip's table, as those words hold it (cfi_table[0x10..0x3F]; the rest is zero).
VIRT_CFI = bytes.fromhex(
    "00000000000000000000000000000000"  # 0x00
    "515259 0100 3100 0000 0000 45 55 00 00 07"  # 0x10: QRY, Intel, PRI at 0x31, no alternate, Vcc, Vpp
    "07 0a 00 04 04 04 00 19 0200 0b00 01 ff00 0002"  # 0x20: timeouts, 2^25 bytes, x8/x16, 2^11 buffer, 256 x 128K
    "505249 3130 00000000 00 0000 0000 01"  # 0x31: PRI, version 1.0, features, ..., one protection field
    "000000000000000000000000000000000000"  # 0x40..0x51
)

# U-Boot 2023.01's probe of flash1 at boot (flash_detect_cfi, then the identifier and the first sectors' lock
# status), as QEMU 7.2.22 traced it: W offset size value, R offset size value QEMU computed (before the
# memory core truncated it to the access size). Everything in hex.
UBOOT_PROBE = """
W 0 1 f0 / W 0 1 ff / W 55 1 98 / R 10 1 0 / W 555 1 98 / R 10 1 0 / W 0 1 f0 / W 0 1 ff / W aa 1 98 / R 20 1 0
W aaa 1 98 / R 20 1 0 / W 0 2 f0f0 / W 0 2 ffff / W aa 2 9898 / R 20 2 0 / W aaa 2 9898 / R 20 2 0 / W 0 2 f0f0
W 0 2 ffff / W 154 2 9898 / R 40 2 510051 / W 1554 2 9898 / R 40 2 510051 / W 0 2 f0 / W 0 2 ff / W aa 2 98
R 20 2 0 / W aaa 2 98 / R 20 2 0 / W 0 2 f0 / W 0 2 ff / W 154 2 98 / R 40 2 510051 / R 44 2 520052
R 48 2 590059 / R 40 1 510051 / R 44 1 520052 / R 48 1 590059 / R 4c 1 10001 / R 50 1 0 / R 54 1 310031
R 58 1 0 / R 5c 1 0 / R 60 1 0 / R 64 1 0 / R 68 1 0 / R 6c 1 450045 / R 70 1 550055 / R 74 1 0 / R 78 1 0
R 7c 1 70007 / R 80 1 70007 / R 84 1 a000a / R 88 1 0 / R 8c 1 40004 / R 90 1 40004 / R 94 1 40004 / R 98 1 0
R 9c 1 190019 / R a0 1 20002 / R a4 1 0 / R a8 1 b000b / R ac 1 0 / R b0 1 10001 / R b4 1 ff00ff / R b8 1 0
R bc 1 0 / R c0 1 20002 / R c4 1 500050 / R c8 1 520052 / R cc 1 490049 / R d0 1 310031 / R d4 1 300030
R d8 1 0 / R dc 1 0 / R e0 1 0 / R e4 1 0 / R e8 1 0 / R ec 1 0 / R f0 1 0 / R d0 1 310031 / R d4 1 300030
W 0 2 ff / W 0 2 90 / R 0 1 890089 / R 4 2 180018 / W 0 2 ff / W 154 2 98 / W 0 2 90 / R 8 2 0 / W 0 2 ff
W 20000 2 90 / R 20008 2 0 / W 20000 2 ff
"""


def dump_words(dump: str) -> dict[int, int]:
    """``md.l`` lines as {offset in the bank: 32-bit word}."""
    words = {}
    for line in dump.strip().splitlines():
        address, values = line.split(":")
        for i, word in enumerate(values.split()):
            words[int(address, 16) - 0x0400_0000 + 4 * i] = int(word, 16)
    return words


def flash(contents: bytes = b"", **kwargs: object) -> PflashCfi01:
    return PflashCfi01("virt.flash1", contents, **kwargs)  # type: ignore[arg-type]


def cmd(dev: PflashCfi01, value: int, offset: int = 0, size: int = 4) -> None:
    dev.write(offset, size, value)


# -- identification ------------------------------------------------------------------------------------
def test_cfi_query_words_are_qemus() -> None:
    dev = flash()
    cmd(dev, 0x98)
    for offset, word in dump_words(QEMU_QUERY_DUMP).items():
        assert dev.read(offset, 4) == word, hex(offset)
    assert dev.cfi == cfi_table(VIRT_FLASH_SIZE) == VIRT_CFI
    assert len(VIRT_CFI) == CFI_LEN


def test_cfi_query_narrow_wide_and_unaligned_reads() -> None:
    dev = flash()
    cmd(dev, 0x00980098)  # what U-Boot writes to both chips
    # md.b 0x04000040 0x20: every byte of a word answers for the word (offset >> 2), truncated to the size
    assert bytes(dev.read(0x40 + i, 1) for i in range(16)) == bytes.fromhex("51515151525252525959595901010101")
    assert [dev.read(0x41, 1), dev.read(0x42, 2)] == [0x51, 0x0051]  # md.b 0x04000041, md.w 0x04000042
    assert [dev.read(0x40 + 2 * i, 2) for i in range(4)] == [0x51, 0x51, 0x52, 0x52]
    # md.q 0x04000040 8: two 32-bit queries
    assert [dev.read(0x40 + 8 * i, 8) for i in range(4)] == [
        0x0052005200510051, 0x0001000100590059, 0x0031003100000000, 0x0000000000000000]  # fmt: skip
    assert dev.read(0x148, 4) == dev.read(0x1000, 4) == 0  # past the table


def test_query_mode_is_left_only_by_0xff() -> None:
    dev = flash(b"\x11\x22\x33\x44")
    cmd(dev, 0x98)
    for other in (0xF0, 0x00, 0x60, 0x01, 0x90, 0x70, 0xD0):  # QEMU's "leaving query mode" changes nothing
        cmd(dev, other)
        assert dev.read(0x40, 4) == 0x00510051
        assert (dev.cmd, dev.wcycle) == (0x98, 1)
    cmd(dev, 0xFF)
    assert dev.is_array_mode and dev.read(0, 4) == 0x44332211


def test_read_identifier_is_qemus() -> None:
    dev = flash()
    cmd(dev, 0x90)
    # md.l 0x04000000 4, md.b 0x04000000 8, md.l 0x04000400 2 (the offset's low 8 word bits), md.q 0x04000000 2
    assert [dev.read(4 * i, 4) for i in range(4)] == [0x00890089, 0x00180018, 0, 0]
    assert bytes(dev.read(i, 1) for i in range(8)) == bytes.fromhex("8989898918181818")
    assert [dev.read(0x400, 4), dev.read(0x404, 4)] == [0x00890089, 0x00180018]
    assert [dev.read(0, 8), dev.read(8, 8)] == [0x0018001800890089, 0]
    assert (dev.cmd, dev.wcycle) == (0x90, 0)


def test_uboot_probe_as_qemu_traced_it() -> None:
    dev = flash()
    for event in UBOOT_PROBE.replace("\n", " / ").split(" / "):
        if not event.strip():
            continue
        op, offset, size, value = event.split()
        o, s, v = int(offset, 16), int(size), int(value, 16)
        if op == "W":
            dev.write(o, s, v)
        else:
            assert dev.read(o, s) == v & ((1 << 8 * s) - 1), event
    assert dev.is_array_mode


# -- status --------------------------------------------------------------------------------------------
def test_status_reads_and_clear() -> None:
    dev = flash()
    cmd(dev, 0x70)
    assert [dev.read(0, 4), dev.read(0, 2), dev.read(2, 2), dev.read(3, 1)] == [0x00800080, 0x80, 0x80, 0x80]
    assert dev.read(0x1234, 8) == 0x0080008000800080
    cmd(dev, 0x50)  # clear status: back to read array
    assert dev.is_array_mode and dev.status == 0
    cmd(dev, 0x70)
    assert dev.read(0, 4) == 0


def test_lock_commands_only_set_ready() -> None:
    dev = flash()
    cmd(dev, 0x50)
    for second in (0xD0, 0x01):
        cmd(dev, 0x60)
        cmd(dev, second)
        assert (dev.cmd, dev.wcycle, dev.read(0, 4)) == (0x60, 0, 0x00800080)
        cmd(dev, 0xFF)
    cmd(dev, 0x60)
    cmd(dev, 0x33)  # QEMU: unknown (un)locking command, back to read array
    assert dev.is_array_mode


def test_unknown_commands_return_to_read_array() -> None:
    dev = flash(b"\xaa" * 8)
    cmd(dev, 0x70)
    for value in (0x42, 0xF0, 0x00, 0xFF):
        cmd(dev, 0x70)
        cmd(dev, value)
        assert dev.is_array_mode and dev.read(4, 4) == 0xAAAAAAAA


# -- program, erase -------------------------------------------------------------------------------------
def test_program_then_read_back() -> None:
    dev = flash()
    cmd(dev, 0x40)
    dev.write(0x100, 4, 0x12345678)
    assert not dev.is_array_mode and dev.read(0x100, 4) == 0x00800080  # status until 0xFF
    cmd(dev, 0xFF)
    assert dev.read(0x100, 4) == 0x12345678
    cmd(dev, 0x10)
    dev.write(0x102, 2, 0xBEEF)  # no AND with the old bits
    cmd(dev, 0xFF)
    assert dev.read(0x100, 4) == 0xBEEF5678
    assert dev.array_bytes(0x100, 4) == bytes.fromhex("7856efbe")


def test_a_64_bit_write_is_two_32_bit_writes() -> None:
    dev = flash()
    cmd(dev, 0x40)
    dev.write(0x400, 8, 0x000000FF_CAFEF00D)  # mw.q: the low word is programmed, the high one is 0xFF
    assert dev.is_array_mode
    assert dev.read(0x400, 8) == 0xCAFEF00D


def test_erase_fills_the_256k_sector_at_the_first_cycle() -> None:
    dev = flash(bytes(range(256)) * 0x1000)  # 1 MiB of image
    dev.write(0x40000, 4, 0x20)
    assert dev.array_bytes(0x40000, SECTOR_LEN) == b"\xff" * SECTOR_LEN  # before 0xD0, as QEMU
    assert dev.read(0x40000, 4) == 0x00800080
    dev.write(0x40010, 4, 0xD0)
    assert (dev.cmd, dev.wcycle, dev.read(0, 4)) == (0x20, 0, 0x00800080)
    cmd(dev, 0xFF)
    # md.l 0x0403fffc 2 / md.l 0x0407fffc 2 on QEMU (there over zeros): the neighbours are untouched
    assert [dev.read(0x3FFFC, 4), dev.read(0x40000, 4), dev.read(0x7FFFC, 4), dev.read(0x80000, 4)] == [
        0xFFFEFDFC, 0xFFFFFFFF, 0xFFFFFFFF, 0x03020100]  # fmt: skip
    dev.write(0x40000, 4, 0x20)
    dev.write(0x40000, 4, 0x77)  # not a confirm: read array (the sector is erased anyway)
    assert dev.is_array_mode


# -- buffered writes -----------------------------------------------------------------------------------
def test_buffered_write() -> None:
    dev = flash()
    dev.write(0x200, 4, 0xE8)
    assert dev.read(0x200, 4) == 0x00800080
    dev.write(0x200, 4, 0x00010001)  # two words (each chip's count - 1)
    dev.write(0x200, 4, 0xAAAAAAAA)
    assert dev.array_bytes(0x200, 4) == bytes(4)  # staged in the buffer
    dev.write(0x204, 4, 0xBBBBBBBB)
    assert (dev.wcycle, dev.counter) == (3, (1 << 64) - 1)
    dev.write(0x200, 4, 0xD0)
    assert (dev.cmd, dev.wcycle, dev.read(0x200, 4), dev.buffer_offset) == (0xE8, 0, 0x00800080, None)
    cmd(dev, 0xFF)
    assert [dev.read(0x200, 4), dev.read(0x204, 4)] == [0xAAAAAAAA, 0xBBBBBBBB]


def test_buffered_write_aborted_changes_nothing() -> None:
    dev = flash()
    for value in (0xE8, 0, 0x11111111, 0xFF):  # 0xFF instead of the confirm
        dev.write(0x300, 4, value)
    assert dev.is_array_mode and dev.read(0x300, 4) == 0 and dev.status == 0x80


def test_buffered_write_outside_its_4k_window_fails_until_status_is_cleared() -> None:
    dev = flash()
    dev.write(0x300, 4, 0xE8)
    dev.write(0x300, 4, 0)  # opens the buffer at 0x0 (the count write's offset, 4 KiB aligned)
    dev.write(0x1000, 4, 0x22222222)  # outside: dropped, program error
    assert dev.read(0, 4) == 0x00900090  # md.l 0x04000000 1 on QEMU
    dev.write(0x300, 4, 0xD0)  # error set: abort, read array
    assert dev.is_array_mode and dev.read(0x1000, 4) == 0 and dev.status == 0x90
    for value in (0xE8, 1, 0x33333333, 0x44444444):  # a good write now fails too: 0x10 is sticky
        dev.write(0x300 if value != 0x44444444 else 0x304, 4, value)
    assert dev.read(0, 4) == 0x00900090
    dev.write(0x300, 4, 0xD0)
    assert dev.is_array_mode and dev.read(0x300, 8) == 0
    cmd(dev, 0x50)
    for offset, value in ((0x300, 0xE8), (0x300, 1), (0x300, 0x33333333), (0x304, 0x44444444), (0x300, 0xD0)):
        dev.write(offset, 4, value)
    assert dev.read(0, 4) == 0x00800080
    cmd(dev, 0xFF)
    assert dev.read(0x300, 8) == 0x44444444_33333333


def uboot_buffer(dev: PflashCfi01, sector: int, dest: int, data: bytes) -> int:
    """flash_write_cfibuffer of U-Boot 2023.01 as traced on QEMU (16-bit port: halfword writes, the commands
    and the count at the sector's base); returns the status check's first read after the confirm."""
    for value in (0x50, 0x70, 0xE8):
        dev.write(sector, 2, value)
    assert dev.read(sector, 2) == 0x80
    dev.write(sector, 2, len(data) // 2 - 1)
    for i in range(0, len(data), 2):
        dev.write(dest + i, 2, int.from_bytes(data[i : i + 2], "little"))
    dev.write(sector, 2, 0xD0)
    status = dev.read(sector, 2)
    dev.write(sector, 2, 0xFF)
    return status


def test_uboot_saveenv_pattern_fails_after_4k_as_on_qemu() -> None:
    """QEMU 7.2.22's trace of ``saveenv``: the first two 2 KiB buffers of a sector are flushed, the third
    (0x1000, outside the window opened at the sector base) is aborted, the array read instead of the status."""
    dev = flash()
    dev.write(0, 2, 0x20)
    dev.write(0, 2, 0xD0)
    dev.write(0, 2, 0xFF)
    chunks = [bytes([n]) * 2048 for n in (0x11, 0x22, 0x33)]
    assert uboot_buffer(dev, 0, 0, chunks[0]) == 0x80
    assert uboot_buffer(dev, 0, 0x800, chunks[1]) == 0x80
    assert uboot_buffer(dev, 0, 0x1000, chunks[2]) == 0x1111  # aborted: read array at the sector base
    assert dev.array_bytes(0, 0x1800) == chunks[0] + chunks[1] + b"\xff" * 2048
    assert dev.status == 0x90


# -- read-only -------------------------------------------------------------------------------------------
def test_readonly_flash_reports_errors_and_keeps_its_contents() -> None:
    """As QEMU with ``-drive if=pflash,unit=1,readonly=on``: erase 0xA0, program and buffered write 0x90."""
    image = bytes(range(1, 33))
    dev = flash(image, readonly=True)
    cmd(dev, 0x20)
    assert dev.read(0, 4) == 0x00A000A0
    cmd(dev, 0xD0)
    assert dev.read(0, 4) == 0x00A000A0
    cmd(dev, 0xFF)
    cmd(dev, 0x50)
    cmd(dev, 0x40)
    dev.write(8, 4, 0)
    assert dev.read(0, 4) == 0x00900090
    cmd(dev, 0x50)
    for offset, value in ((0, 0xE8), (0, 0), (0x10, 0), (0, 0xD0)):
        dev.write(offset, 4, value)
    assert dev.is_array_mode and dev.status == 0x90
    assert dev.array_bytes(0, 32) == image


# -- the array, the board's fast path ---------------------------------------------------------------------
def test_image_at_offset_zero_then_zeros() -> None:
    image = bytes(range(1, 256)) * 20
    dev = PflashCfi01("virt.flash0", image)
    assert dev.name == "virt.flash0" and dev.size == VIRT_FLASH_SIZE and dev.access_size == 4 and not dev.readonly
    assert dev.is_array_mode
    assert dev.array_bytes(0, len(image) + 100) == image + bytes(100)
    assert dev.array_bytes(VIRT_FLASH_SIZE - 8, 8) == bytes(8)
    assert dev.read(len(image) - 2, 4) == int.from_bytes(image[-2:], "little")
    assert len(dev.array_bytes(0, VIRT_FLASH_SIZE)) == VIRT_FLASH_SIZE
    with pytest.raises(ValueError):
        dev.array_bytes(VIRT_FLASH_SIZE - 4, 8)


def test_array_bytes_mixes_written_pages_and_the_image() -> None:
    image = bytes(range(256)) * 64  # 4 pages
    dev = flash(image)
    cmd(dev, 0x40)
    dev.write(PAGE + 10, 2, 0xABCD)
    cmd(dev, 0x70)  # array_bytes answers in any mode
    expected = bytearray(image + bytes(PAGE))
    expected[PAGE + 10 : PAGE + 12] = b"\xcd\xab"
    assert dev.array_bytes(0, 5 * PAGE) == expected
    assert dev.array_bytes(PAGE + 9, 4) == expected[PAGE + 9 : PAGE + 13]


@pytest.mark.parametrize("size", [0, SECTOR_LEN - 1, SECTOR_LEN * 3 + 1, 2 << 30])
def test_bad_sizes_are_refused(size: int) -> None:
    with pytest.raises(ValueError):
        PflashCfi01("f", b"", size)


def test_image_larger_than_the_flash_is_refused() -> None:
    with pytest.raises(ValueError):
        PflashCfi01("f", bytes(SECTOR_LEN + 1), SECTOR_LEN)


def test_cfi_table_follows_the_size() -> None:
    table = cfi_table(0x200_0000)  # 32 MiB: 128 blocks, 2^24 bytes a chip
    assert table[0x27] == 24 and table[0x2D:0x31] == bytes((0x7F, 0, 0, 2))


def test_peek_is_read_in_every_mode_and_changes_nothing() -> None:
    dev = flash(b"\x01\x02\x03\x04")
    for command in (0xFF, 0x98, 0x90, 0x70, 0xE8):
        cmd(dev, 0xFF)
        cmd(dev, command)
        before = dev.save()
        for offset, size in ((0, 4), (0x40, 1), (4, 2), (0, 8)):
            assert dev.peek(offset, size) == dev.read(offset, size)
        assert dev.save() == before


def test_reset_returns_to_read_array_and_keeps_the_array() -> None:
    dev = flash()
    cmd(dev, 0x40)
    dev.write(0, 4, 0x5A5A5A5A)
    for offset, value in ((0x300, 0xE8), (0x300, 3), (0x300, 1)):
        dev.write(offset, 4, value)
    dev.reset()
    assert (dev.cmd, dev.wcycle, dev.status, dev.buffer_offset, dev.buffer) == (0, 0, 0x80, None, bytearray())
    assert dev.read(0, 4) == 0x5A5A5A5A and dev.read(0x300, 4) == 0


# -- state ------------------------------------------------------------------------------------------------
def test_every_public_attribute_is_a_state_field() -> None:
    dev = flash()
    assert {k for k in vars(dev) if not k.startswith("_")} == {f.name for f in fields(PflashCfi01State)}
    assert all(callable(v) for k, v in vars(dev).items() if k.startswith("_"))


def test_state_layout() -> None:
    assert PflashCfi01State.VERSION == 1
    assert fingerprint(PflashCfi01State) == (
        "written:written pages;cmd:u8;wcycle:u8;status:u8;counter:u64;buffer_offset:optional u32;buffer:bytes<=4096"
    )


def program(dev: PflashCfi01, offset: int, value: int) -> None:
    dev.write(offset, 4, 0x40)
    dev.write(offset, 4, value)
    dev.write(offset, 4, 0xFF)


def test_snapshots_share_unwritten_pages() -> None:
    dev = flash(b"\x77" * 3 * PAGE)
    assert dev.save().written == PageTable.empty(VIRT_FLASH_SIZE)  # nothing written: nothing kept
    program(dev, 0x10, 1)
    program(dev, 5 * PAGE, 2)
    first = dev.save()
    program(dev, 0x14, 3)  # page 0 again
    program(dev, 0x300_0000, 4)  # a page of another node
    second = dev.save()
    assert dev.save().written is second.written  # nothing written since: the same table
    assert changed_pages(first.written, second.written) == [0, 0x300_0000 // PAGE]
    assert second.written.page(5) is first.written.page(5)  # shared, not copied
    assert sorted(off for off, _ in second.written.chunks()) == [0, 5 * PAGE, 0x300_0000]
    dev.load(first)
    assert [dev.read(0x10, 4), dev.read(0x14, 4), dev.read(5 * PAGE, 4), dev.read(0x300_0000, 4)] == [
        1, 0x77777777, 2, 0]  # fmt: skip
    assert changed_pages(dev.written_pages(), second.written) == [0, 0x300_0000 // PAGE]


def test_an_erase_shares_one_erased_page() -> None:
    dev = flash()
    cmd(dev, 0x20, 0x80000)
    pages = [page for _, page in dev.save().written.chunks()]
    assert len(pages) == SECTOR_LEN // PAGE and all(page is pages[0] for page in pages)


def test_save_load_round_trip_mid_buffered_write() -> None:
    source = flash(b"\x01" * 64)
    for offset, value in ((0x20, 0xE8), (0x20, 1), (0x20, 0xCAFE0000)):
        source.write(offset, 4, value)
    state = source.save()
    assert (state.cmd, state.wcycle, state.counter, state.buffer_offset, len(state.buffer)) == (0xE8, 2, 0, 0, 4096)
    assert decode_fields(PflashCfi01State, encode_fields(state)) == state
    target = flash(b"\x01" * 64)
    target.load(state)
    assert target.save() == state
    for dev in (source, target):
        dev.write(0x24, 4, 0xBEEF)
        dev.write(0x20, 4, 0xD0)
        dev.write(0, 4, 0xFF)
    assert target.save() == source.save()
    assert target.array_bytes(0x1C, 12) == b"\x01" * 4 + bytes.fromhex("0000fecaefbe0000") and target.is_array_mode


def test_encoding_round_trips_written_pages() -> None:
    dev = flash()
    program(dev, 0x12344, 0xDEADBEEF)
    cmd(dev, 0x20, 0x3FC_0000)
    cmd(dev, 0xD0, 0x3FC_0000)
    cmd(dev, 0xFF)
    state = dev.save()
    data = encode_fields(state)
    again = decode_fields(PflashCfi01State, data)
    assert again == state
    target = flash()
    target.load(again)
    assert target.read(0x12344, 4) == 0xDEADBEEF and target.read(0x3FF_FFFC, 4) == 0xFFFFFFFF
    with pytest.raises(FieldError):
        decode_fields(PflashCfi01State, data[:-1])


def encoded_pages(node_count: int, pages: list[tuple[int, bytes]]) -> bytes:
    out = node_count.to_bytes(4, "little") + len(pages).to_bytes(4, "little")
    for index, page in pages:
        out += index.to_bytes(4, "little") + page
    rest = encode_fields(flash().save())[8:]  # cmd ... buffer of a fresh flash (no pages written)
    return out + rest


@pytest.mark.parametrize(
    "data",
    [
        encoded_pages(MAX_NODES + 1, []),
        encoded_pages(1, [(64, bytes(PAGE))]),  # past the nodes
        encoded_pages(4, [(3, bytes(PAGE)), (2, bytes(PAGE))]),  # out of order
        encoded_pages(4, [(3, bytes(PAGE)), (3, bytes(PAGE))]),
        encoded_pages(4, [(3, bytes(PAGE - 1))]),  # short
        (1).to_bytes(4, "little") + (1 << 31).to_bytes(4, "little"),  # more pages than bytes
    ],
)
def test_decoding_refuses_malformed_pages(data: bytes) -> None:
    with pytest.raises(FieldError):
        decode_fields(PflashCfi01State, data)


def test_decoding_accepts_well_formed_pages() -> None:
    state = decode_fields(PflashCfi01State, encoded_pages(256, [(2, b"\x01" * PAGE), (300, b"\x02" * PAGE)]))
    dev = flash()
    dev.load(state)
    assert dev.read(2 * PAGE, 4) == 0x01010101 and dev.read(300 * PAGE + 4, 4) == 0x02020202


def bad_table(kind: str) -> PageTable:
    nodes = list(PageTable.empty(VIRT_FLASH_SIZE).nodes)
    if kind == "short page":
        nodes[0] = (b"\x00" * (PAGE - 1),) + (None,) * 63  # type: ignore[assignment]
    elif kind == "short node":
        nodes[0] = (None,) * 63  # type: ignore[assignment]
    elif kind == "bytearray page":
        nodes[0] = (bytearray(PAGE),) + (None,) * 63  # type: ignore[assignment]
    elif kind == "other size":
        nodes = nodes[:-1]
    return PageTable(tuple(nodes))


@pytest.mark.parametrize(
    "change",
    [
        {"cmd": 0x98},  # query mode is at write cycle 1
        {"cmd": 0x70, "wcycle": 1},
        {"cmd": 0x42},
        {"wcycle": 2},  # cycle 2 is a buffered write's
        {"cmd": 0xE8, "wcycle": 2, "counter": 1},  # no buffer
        {"cmd": 0xE8, "wcycle": 2, "counter": 0x10000, "buffer_offset": 0, "buffer": bytes(WRITE_BLOCK)},
        {"cmd": 0xE8, "wcycle": 3, "counter": 0, "buffer_offset": 0, "buffer": bytes(WRITE_BLOCK)},
        {"cmd": 0xE8, "wcycle": 2, "buffer_offset": 0x800, "buffer": bytes(WRITE_BLOCK)},  # unaligned
        {"cmd": 0xE8, "wcycle": 2, "buffer_offset": 0, "buffer": bytes(16)},
        {"cmd": 0xE8, "wcycle": 2, "buffer_offset": VIRT_FLASH_SIZE, "buffer": bytes(WRITE_BLOCK)},  # past the end
        {"buffer_offset": 0, "buffer": bytes(WRITE_BLOCK)},  # a buffer in read array mode
        {"status": 0x01},
        {"status": 0x100},
        {"counter": -1},
        {"wcycle": 4},
        {"written": bad_table("short page")},
        {"written": bad_table("short node")},
        {"written": bad_table("bytearray page")},
        {"written": bad_table("other size")},
        {"written": None},
        {"buffer": bytearray()},
    ],
)
def test_load_refuses_malformed_states(change: dict[str, object]) -> None:
    dev = flash()
    program(dev, 0, 0x1234)
    good = dev.save()
    with pytest.raises(FieldError):
        dev.load(replace(good, **change))  # type: ignore[arg-type]
    assert dev.save() == good
    with pytest.raises(FieldError):
        dev.load(object())  # type: ignore[arg-type]


def test_a_state_of_a_smaller_flash_is_refused() -> None:
    small = PflashCfi01("f", b"", SECTOR_LEN)
    with pytest.raises(FieldError, match="nodes"):
        flash().load(small.save())
