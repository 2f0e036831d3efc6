"""machine/devices/fw_cfg.py: QEMU 7.2's memory-mapped fw_cfg on the virt board (registers, items, DMA, state).

The reference values were read from QEMU 7.2 ``qemu-system-aarch64 -M virt -cpu cortex-a72 -m 128M -nographic
-nic none``: every item's bytes through qtest (the same with ``-kernel`` and with ``-bios`` U-Boot), and U-Boot
2023.01's ``qfw list``, ``qfw cpus`` and ``md`` of the registers.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import fields, replace

import pytest

from machine.devices.fw_cfg import (
    DATA,
    DMA_ADDRESS,
    FEATURES,
    FW_CFG_BASE,
    FW_CFG_BOOT_MENU,
    FW_CFG_DMA_CTL_ERROR,
    FW_CFG_DMA_CTL_READ,
    FW_CFG_DMA_CTL_SELECT,
    FW_CFG_DMA_CTL_SKIP,
    FW_CFG_DMA_CTL_WRITE,
    FW_CFG_FILE_DIR,
    FW_CFG_ID,
    FW_CFG_INVALID,
    FW_CFG_NB_CPUS,
    FW_CFG_NOGRAPHIC,
    FW_CFG_RAM_SIZE,
    FW_CFG_SIGNATURE,
    FW_CFG_UUID,
    REGISTERS_SIZE,
    SELECTOR,
    FwCfgMmio,
    FwCfgState,
    file_dir,
    virt_files,
    virt_items,
)
from machine.devices.virtqueue import BufferMemory
from machine.fields import FieldError, decode_fields, encode_fields

RAM = 0x4000_0000
MIB = 1024 * 1024

# QEMU's FW_CFG_FILE_DIR: (name, size, select), and the SHA-256 of each file's bytes as read from QEMU.
QEMU_FILES = [
    ("bios-geometry", 0, 0x20, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("bootorder", 0, 0x21, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("etc/acpi/rsdp", 36, 0x22, "a6993a5f979fe7202c2da4ad07b8492b9da952f7698bb29150b18f6ae6f96f24"),
    ("etc/acpi/tables", 131072, 0x23, "dbaa1c662f8235c81c42500d03facc0315442c708812291c23706e5318730e9d"),
    ("etc/boot-fail-wait", 4, 0x24, "ad95131bc0b799c0b1af477fb14fcf26a6a9f76079e48bf090acb7e8367bfd0e"),
    ("etc/smbios/smbios-anchor", 24, 0x25, "1a079d182d694ab9ba5ee9185cb260efbc05a287fee6f093da1127c3945991dc"),
    ("etc/smbios/smbios-tables", 266, 0x26, "e5896353946d67cec378825d3652481bf6e1a89a9615515a8934688f8988b923"),
    ("etc/table-loader", 3072, 0x27, "8d696484650b9c201562d42f7e0605ebdfdb81a702861d9eea24cd24637569ea"),
    ("etc/tpm/log", 0, 0x28, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
]
QEMU_FILE_DIR_SHA256 = "b0f98eae7af231148e03ad2528e564c4a1201a75fe9f07daa4b57151c992e08d"  # all 2052 bytes
# The first 32 bytes of FW_CFG_FILE_DIR as qtest read them.
QEMU_FILE_DIR_START = bytes.fromhex("00000009000000000020000062696f732d67656f6d6574727900000000000000")
# U-Boot 2023.01 ``qfw list`` on QEMU (names only).
UBOOT_QFW_LIST = """
bios-geometry
bootorder
etc/acpi/rsdp
etc/acpi/tables
etc/boot-fail-wait
etc/smbios/smbios-anchor
etc/smbios/smbios-tables
etc/table-loader
etc/tpm/log
"""
# etc/smbios/smbios-tables with other -m values (QEMU aligns -m up to 8 KiB: 132097K is 132104K of RAM).
QEMU_SMBIOS_SHA256 = {
    127 * MIB: "ac93ae01249e388b91a1ad7192f7f6f216d65da82291e4320b4a897de3cb3bb9",
    129 * MIB: "29e5f2c74058f1b4d9e5e47fce27a217f91e7db4a4eb0a9a94470fcf65e036a5",
    131584 * 1024: "f5a3cfb5a6f488ef10c8200447636b5f30148b806c6df18b28ecc00fd787477b",
    132104 * 1024: "7a52ecdb67823c68418a781a9ce1e52acb045b71e71662adfea8475f8dc7a840",
    256 * MIB: "cfc5a6bb4a603fc2917793c5f776999754a278cf3b4a30d539eb741c7c80022d",
    1024 * MIB: "c843b349402d99604ffc778c555806d2e54baae0511a7cdf238f405f834935aa",
    2048 * MIB: "ec206a44715edea14640b4c26c2f2070716a1181e02da619b7fa6de268aef989",
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make(size: int = 0x1_0000, **kw: object) -> tuple[FwCfgMmio, bytearray]:
    ram = bytearray(size)
    return FwCfgMmio(BufferMemory(ram, RAM), **kw), ram  # type: ignore[arg-type]


def select(dev: FwCfgMmio, key: int) -> None:
    """As a little-endian CPU writes the big-endian selector (U-Boot: ``mw.w 0x9020008 0x1900`` for 0x19)."""
    dev.write(SELECTOR, 2, int.from_bytes(key.to_bytes(2, "big"), "little"))


def read_item(dev: FwCfgMmio, key: int, size: int) -> bytes:
    select(dev, key)
    return b"".join(dev.read(DATA, 8).to_bytes(8, "little") for _ in range((size + 7) // 8))[:size]


def start_dma(dev: FwCfgMmio, descriptor: int, halves: bool = False) -> None:
    if halves:  # Linux: iowrite32be(high), iowrite32be(low)
        dev.write(DMA_ADDRESS, 4, int.from_bytes((descriptor >> 32).to_bytes(4, "big"), "little"))
        dev.write(DMA_ADDRESS + 4, 4, int.from_bytes((descriptor & 0xFFFF_FFFF).to_bytes(4, "big"), "little"))
    else:
        dev.write(DMA_ADDRESS, 8, int.from_bytes(descriptor.to_bytes(8, "big"), "little"))


def dma(dev: FwCfgMmio, ram: bytearray, control: int, length: int, address: int, at: int = 0x100,
        halves: bool = False) -> int:  # fmt: skip
    """Run one descriptor placed at RAM + ``at``; returns the control word the device wrote back."""
    ram[at : at + 16] = struct.pack(">IIQ", control, length, address)
    start_dma(dev, RAM + at, halves)
    return struct.unpack_from(">I", ram, at)[0]


# -- registers ----------------------------------------------------------------------------------------------


def test_placement() -> None:
    dev, _ = make()
    assert (FW_CFG_BASE, REGISTERS_SIZE, dev.name, dev.size) == (0x0902_0000, 0x18, "fw-cfg", 0x1000)
    assert (DATA, SELECTOR, DMA_ADDRESS) == (0x00, 0x08, 0x10)


def test_signature_is_selected_at_reset() -> None:
    dev, _ = make()
    assert dev.save() == FwCfgState(FW_CFG_SIGNATURE, 0, 0)
    assert dev.read(DATA, 4) == 0x554D_4551  # U-Boot ``md.l 0x9020000 1`` right after selecting 0: "QEMU"
    assert dev.read(DATA, 4) == 0  # then zeros (U-Boot's second md.l)
    assert dev.offset == 4


def test_data_reads_are_strings_of_any_width() -> None:
    dev, _ = make()
    assert dev.read(DATA, 8) == 0x0000_0000_554D_4551  # U-Boot ``md.q 0x9020000 1``: "QEMU\0\0\0\0"
    select(dev, FW_CFG_SIGNATURE)
    assert [dev.read(DATA, 1) for _ in range(5)] == [ord("Q"), ord("E"), ord("M"), ord("U"), 0]
    select(dev, FW_CFG_SIGNATURE)
    assert dev.read(DATA, 2) == 0x4551 and dev.read(DATA, 2) == 0x554D and dev.read(DATA, 2) == 0
    select(dev, FW_CFG_SIGNATURE)
    assert dev.read(DATA, 1) == ord("Q") and dev.read(DATA, 8) == int.from_bytes(b"EMU", "little")
    assert dev.offset == 4


def test_selector_is_big_endian_and_resets_the_offset() -> None:
    dev, _ = make()
    dev.write(SELECTOR, 2, 0x0100)  # U-Boot ``mw.w 0x9020008 0x0100``: key 1, FW_CFG_ID
    assert dev.selector == FW_CFG_ID and dev.read(DATA, 4) == 3
    dev.write(SELECTOR, 2, 0x0500)
    assert dev.read(DATA, 2) == 1  # NB_CPUS (U-Boot ``md.w``: 0001)
    dev.read(DATA, 1)
    dev.write(SELECTOR, 2, 0x0500)
    assert dev.offset == 0 and dev.read(DATA, 2) == 1


def test_selectors_past_the_last_slot_select_nothing() -> None:
    dev, _ = make()
    for key in (0x40, 0x1000, 0x3FFF, 0xFFFF, 0x7FFF):
        select(dev, key)
        assert dev.selector == FW_CFG_INVALID and dev.offset == 0
        assert dev.read(DATA, 8) == 0 and dev.offset == 0
    select(dev, 0x3F)  # a free slot: selected, empty
    assert dev.selector == 0x3F and dev.read(DATA, 8) == 0 and dev.offset == 0


def test_channel_bits() -> None:
    dev, _ = make()
    select(dev, 0x4000)  # the write channel bit: the same item
    assert dev.selector == 0x4000 and dev.read(DATA, 4) == 0x554D_4551
    select(dev, 0x4000 | FW_CFG_ID)
    assert dev.read(DATA, 4) == FEATURES
    for key in (0x8000, 0x8001, 0xC000):  # architecture-local: none on this board
        select(dev, key)
        assert dev.selector == key and dev.read(DATA, 8) == 0


def test_data_writes_and_refused_accesses_change_nothing() -> None:
    dev, _ = make()
    dev.read(DATA, 1)
    before = dev.save()
    dev.write(DATA, 1, 0xFF)
    dev.write(DATA, 8, 0xFFFF_FFFF_FFFF_FFFF)
    dev.write(SELECTOR, 4, 0x0100)  # not a 2-byte write: QEMU refuses it
    dev.write(SELECTOR, 1, 0x01)
    dev.write(DMA_ADDRESS, 2, 0x1234)
    dev.write(0x18, 4, 0x1234)
    assert dev.save() == before
    assert dev.read(SELECTOR, 2) == 0 and dev.read(4, 4) == 0 and dev.read(0x18, 4) == 0
    assert dev.save() == before


def test_dma_register_reads_the_signature() -> None:
    dev, _ = make()
    assert dev.read(DMA_ADDRESS, 8) == 0x4746_4320_554D_4551  # U-Boot ``md.q 0x9020010 1``: "QEMU CFG"
    assert dev.read(DMA_ADDRESS, 4) == 0x554D_4551 and dev.read(DMA_ADDRESS + 4, 4) == 0x4746_4320  # md.l x2
    assert dev.read(DMA_ADDRESS + 6, 2) == int.from_bytes(b"FG", "little")
    assert dev.read(DMA_ADDRESS + 7, 1) == ord("G")


def test_accepts_is_qemus_validity() -> None:
    ok = FwCfgMmio.accepts
    assert all(ok(DATA, size, w) for size in (1, 2, 4, 8) for w in (False, True))
    assert not ok(4, 4, False)  # U-Boot ``md.l 0x9020004``: synchronous external abort
    assert not ok(1, 1, False)
    assert ok(SELECTOR, 2, True)
    assert not ok(SELECTOR, 2, False)  # U-Boot ``md.w 0x9020008``: abort
    assert not ok(SELECTOR, 4, True) and not ok(SELECTOR, 1, True)
    assert ok(0x10, 8, True) and ok(0x10, 4, True) and ok(0x14, 4, True)
    assert not ok(0x10, 2, True) and not ok(0x14, 8, True)
    assert all(ok(0x10 + i, 1, False) for i in range(8)) and ok(0x10, 8, False)
    assert not ok(0x18, 4, False)  # U-Boot ``md.l 0x9020018``: abort
    assert not ok(0x12, 4, False)  # unaligned


def test_peek() -> None:
    dev, _ = make()
    assert dev.peek(DATA, 4) is None and dev.peek(DATA, 8) is None
    assert dev.offset == 0
    assert dev.peek(DMA_ADDRESS, 8) == dev.read(DMA_ADDRESS, 8)
    assert dev.peek(SELECTOR, 2) == 0 and dev.peek(0x100, 4) == 0
    assert dev.save() == FwCfgState(0, 0, 0)


# -- items --------------------------------------------------------------------------------------------------


def test_items_as_qemu_gives_them() -> None:
    dev, _ = make()
    assert read_item(dev, FW_CFG_SIGNATURE, 4) == b"QEMU"
    assert read_item(dev, FW_CFG_ID, 4) == b"\x03\x00\x00\x00"  # traditional interface + DMA
    assert read_item(dev, FW_CFG_UUID, 16) == bytes(16)
    assert read_item(dev, FW_CFG_RAM_SIZE, 8) == bytes(8)  # not on Arm
    assert read_item(dev, FW_CFG_NOGRAPHIC, 2) == b"\x01\x00"
    assert read_item(dev, FW_CFG_NB_CPUS, 2) == b"\x01\x00"  # U-Boot ``qfw cpus``: 1 cpu(s) online
    assert read_item(dev, FW_CFG_BOOT_MENU, 2) == b"\x00\x00"
    for key in (*range(0x06, 0x0E), *range(0x0F, 0x19), *range(0x1A, 0x20), *range(0x29, 0x40)):
        assert read_item(dev, key, 8) == bytes(8), hex(key)  # nothing else (qtest read them all)
    graphic, _ = make(nographic=False)  # -display none
    assert read_item(graphic, FW_CFG_NOGRAPHIC, 2) == b"\x00\x00"


def test_file_dir_lists_qemus_files() -> None:
    dev, _ = make()
    directory = read_item(dev, FW_CFG_FILE_DIR, 4 + 64 * 32)
    assert directory[:32] == QEMU_FILE_DIR_START
    assert sha(directory) == QEMU_FILE_DIR_SHA256
    assert read_item(dev, FW_CFG_FILE_DIR, 4096)[2052:] == bytes(4096 - 2052)  # the item ends at 2052 bytes
    (count,) = struct.unpack_from(">I", directory)
    entries = [struct.unpack_from(">IHH56s", directory, 4 + 64 * i) for i in range(count)]
    assert [(name.rstrip(b"\0").decode(), size, select) for size, select, _, name in entries] == [
        (name, size, select) for name, size, select, _ in QEMU_FILES
    ]
    assert [name.rstrip(b"\0").decode() for *_, name in entries] == UBOOT_QFW_LIST.split()
    assert all(reserved == 0 for _, _, reserved, _ in entries)


@pytest.mark.parametrize(("name", "size", "key", "digest"), QEMU_FILES)
def test_file_contents_are_qemus(name: str, size: int, key: int, digest: str) -> None:
    dev, _ = make()
    data = read_item(dev, key, size + 16)
    assert data[size:] == bytes(16)
    assert sha(data[:size]) == digest
    assert virt_files()[name] == data[:size]


def test_recognisable_file_contents() -> None:
    files = virt_files()
    assert files["etc/acpi/rsdp"].startswith(b"RSD PTR \x00BOCHS ")
    assert files["etc/acpi/tables"].startswith(b"DSDT")
    assert files["etc/boot-fail-wait"] == b"\xff\xff\xff\xff"  # no -boot reboot-timeout: -1
    assert files["etc/smbios/smbios-anchor"].startswith(b"_SM3_")
    assert b"QEMU Virtual Machine\x00virt-7.2\x00" in files["etc/smbios/smbios-tables"]
    assert files["etc/table-loader"][4:17] == b"etc/acpi/rsdp"


@pytest.mark.parametrize(("ram_size", "digest"), sorted(QEMU_SMBIOS_SHA256.items()))
def test_smbios_tables_follow_the_ram_size(ram_size: int, digest: str) -> None:
    assert sha(virt_files(ram_size)["etc/smbios/smbios-tables"]) == digest
    dev, _ = make(ram_size=ram_size)
    assert sha(read_item(dev, 0x26, 266)) == digest
    other = virt_files(ram_size)
    assert {k: v for k, v in other.items() if k != "etc/smbios/smbios-tables"} == {
        k: v for k, v in virt_files().items() if k != "etc/smbios/smbios-tables"
    }


def test_bad_configuration() -> None:
    for ram_size in (0, -1, (16 << 30) + 1, 1 << 41):
        with pytest.raises(ValueError):
            virt_files(ram_size)
    with pytest.raises(ValueError):
        file_dir({f"f{i}": b"" for i in range(33)})
    with pytest.raises(ValueError):
        file_dir({"x" * 56: b""})


def test_virt_items_keys() -> None:
    assert sorted(virt_items()) == [0x00, 0x01, 0x02, 0x04, 0x05, 0x0E, 0x19, *range(0x20, 0x29)]


# -- DMA ----------------------------------------------------------------------------------------------------


def test_dma_select_and_read() -> None:
    dev, ram = make()
    control = FW_CFG_FILE_DIR << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ
    assert dma(dev, ram, control, 2052, RAM + 0x1000) == 0
    assert sha(bytes(ram[0x1000 : 0x1000 + 2052])) == QEMU_FILE_DIR_SHA256
    assert dev.save() == FwCfgState(FW_CFG_FILE_DIR, 2052, 0)  # dma_addr cleared


def test_dma_read_past_the_end_fills_zeros() -> None:
    dev, ram = make()
    ram[0x2000:0x2010] = b"\xaa" * 16
    assert dma(dev, ram, FW_CFG_DMA_CTL_READ, 16, RAM + 0x2000) == 0  # the signature is selected at reset
    assert bytes(ram[0x2000:0x2010]) == b"QEMU" + bytes(12)
    assert dev.offset == 4
    ram[0x2000:0x2010] = b"\xaa" * 16
    assert dma(dev, ram, FW_CFG_DMA_CTL_READ, 8, RAM + 0x2000) == 0
    assert bytes(ram[0x2000:0x2010]) == bytes(8) + b"\xaa" * 8


def test_dma_reads_continue_where_register_reads_stopped() -> None:
    dev, ram = make()
    select(dev, 0x22)  # etc/acpi/rsdp
    assert dev.read(DATA, 8) == int.from_bytes(b"RSD PTR ", "little")
    assert dma(dev, ram, FW_CFG_DMA_CTL_READ, 7, RAM + 0x2000) == 0
    assert bytes(ram[0x2000:0x2007]) == b"\x00BOCHS "
    assert dev.offset == 15


def test_dma_skip_moves_the_offset() -> None:
    dev, ram = make()
    control = 0x22 << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_SKIP
    assert dma(dev, ram, control, 9, RAM + 0x2000) == 0
    assert dev.offset == 9 and bytes(ram[0x2000:0x2010]) == bytes(16)
    assert dev.read(DATA, 8) == int.from_bytes(b"BOCHS \x02\x00", "little")
    assert dma(dev, ram, FW_CFG_DMA_CTL_SKIP, 1000, 0) == 0  # past the end: nothing to skip, no error
    assert dev.offset == 36


def test_dma_write_is_refused() -> None:
    dev, ram = make()
    ram[0x2000:0x2004] = b"ABCD"
    assert dma(dev, ram, FW_CFG_DMA_CTL_WRITE, 2, RAM + 0x2000) == FW_CFG_DMA_CTL_ERROR
    assert dev.offset == 2  # QEMU moves over what it refused to write
    assert dev.read(DATA, 2) == int.from_bytes(b"MU", "little")  # the item is unchanged
    assert dma(dev, ram, FW_CFG_DMA_CTL_WRITE, 0, RAM + 0x2000) == 0  # nothing to write: no error
    assert dma(dev, ram, FW_CFG_DMA_CTL_WRITE, 4, RAM + 0x2000) == FW_CFG_DMA_CTL_ERROR  # past the end


def test_dma_read_wins_over_write_and_skip() -> None:
    dev, ram = make()
    control = FW_CFG_DMA_CTL_READ | FW_CFG_DMA_CTL_WRITE | FW_CFG_DMA_CTL_SKIP
    assert dma(dev, ram, control, 4, RAM + 0x2000) == 0
    assert bytes(ram[0x2000:0x2004]) == b"QEMU"


def test_dma_without_an_operation_only_selects() -> None:
    dev, ram = make()
    dev.read(DATA, 2)
    assert dma(dev, ram, FW_CFG_DMA_CTL_SELECT | FW_CFG_ID << 16, 100, RAM + 0x2000) == 0
    assert dev.save() == FwCfgState(FW_CFG_ID, 0, 0)
    assert bytes(ram[0x2000:0x2010]) == bytes(16)
    assert dma(dev, ram, 0, 100, RAM + 0x2000) == 0  # no bits at all: nothing
    assert dev.save() == FwCfgState(FW_CFG_ID, 0, 0)


def test_dma_invalid_selection_reads_zeros() -> None:
    dev, ram = make()
    ram[0x2000:0x2008] = b"\xaa" * 8
    control = 0x1234 << 16 | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ
    assert dma(dev, ram, control, 8, RAM + 0x2000) == 0
    assert dev.selector == FW_CFG_INVALID and bytes(ram[0x2000:0x2008]) == bytes(8)


def test_dma_outside_ram_sets_error() -> None:
    dev, ram = make()
    assert dma(dev, ram, FW_CFG_DMA_CTL_READ, 4, RAM + len(ram) - 2) == FW_CFG_DMA_CTL_ERROR
    assert bytes(ram[-2:]) == bytes(2)  # nothing written (QEMU would write the part in RAM)
    assert dev.offset == 4  # the item's bytes were consumed, as in QEMU
    assert dma(dev, ram, FW_CFG_DMA_CTL_READ, 4, 0x5000_0000) == FW_CFG_DMA_CTL_ERROR  # zero fill fails
    assert dma(dev, ram, FW_CFG_DMA_CTL_READ, 0xFFFF_FFFF, RAM) == FW_CFG_DMA_CTL_ERROR  # 4 GiB of zeros
    assert dev.offset == 4


def test_dma_descriptor_outside_ram() -> None:
    dev, ram = make()
    before = bytes(ram)
    start_dma(dev, 0x5000_0000)
    assert bytes(ram) == before and dev.save() == FwCfgState(0, 0, 0)
    start_dma(dev, RAM + len(ram) - 8)  # the descriptor straddles RAM's end: ERROR into its control word
    assert bytes(ram[-8:-4]) == struct.pack(">I", FW_CFG_DMA_CTL_ERROR)


def test_dma_address_in_two_halves() -> None:
    dev, ram = make()
    high = struct.pack(">I", 0x1)
    dev.write(DMA_ADDRESS, 4, int.from_bytes(high, "little"))
    assert dev.dma_addr == 1 << 32  # kept (and saved) until the low half starts the transfer
    assert dev.save().dma_addr == 1 << 32
    assert dma(dev, ram, FW_CFG_DMA_CTL_READ, 4, RAM + 0x3000, halves=True) == 0
    assert bytes(ram[0x3000:0x3004]) == b"QEMU" and dev.dma_addr == 0


# -- state --------------------------------------------------------------------------------------------------


def test_save_load_round_trip() -> None:
    source, _ = make()
    select(source, 0x23)  # etc/acpi/tables
    source.read(DATA, 8)
    source.read(DATA, 4)
    source.write(DMA_ADDRESS, 4, 0x7856_3412)
    state = source.save()
    assert state == FwCfgState(0x23, 12, 0x1234_5678 << 32)
    assert decode_fields(FwCfgState, encode_fields(state)) == state
    target, _ = make()
    target.load(state)
    assert target.save() == state
    assert target.read(DATA, 8) == source.read(DATA, 8)  # the same bytes of the DSDT follow


def test_every_public_attribute_is_a_state_field() -> None:
    dev, _ = make()
    assert {k for k in vars(dev) if not k.startswith("_")} == {f.name for f in fields(FwCfgState)}
    assert all(callable(v) for k, v in vars(dev).items() if k.startswith("_"))


@pytest.mark.parametrize(
    "change",
    [{"selector": 0x40}, {"selector": 0x8040}, {"selector": 0x1_0000}, {"selector": -1},
     {"offset": 5},  # past the 4 bytes of the signature
     {"offset": 1 << 32}, {"offset": 1.0}, {"dma_addr": -1}, {"dma_addr": 1 << 64},
     {"selector": FW_CFG_INVALID, "offset": 1}, {"selector": 0x3F, "offset": 1}, {"selector": 0x20, "offset": 1}],
)  # fmt: skip
def test_load_refuses_malformed_states(change: dict[str, object]) -> None:
    dev, _ = make()
    dev.read(DATA, 2)
    good = dev.save()
    with pytest.raises(FieldError):
        dev.load(replace(good, **change))  # type: ignore[arg-type]
    assert dev.save() == good
    with pytest.raises(FieldError):
        dev.load(object())  # type: ignore[arg-type]


def test_load_accepts_the_end_of_an_item() -> None:
    dev, _ = make()
    dev.load(FwCfgState(0x23, 131072, 0))
    assert dev.read(DATA, 8) == 0
    dev.load(FwCfgState(FW_CFG_INVALID, 0, 0))
    assert dev.read(DATA, 8) == 0


def test_decode_refuses_an_unreachable_selector() -> None:
    data = encode_fields(FwCfgState(0x40, 0, 0))
    with pytest.raises(FieldError):
        decode_fields(FwCfgState, data)
