"""QEMU 7.2's memory-mapped fw_cfg (``fw_cfg_mem``, ``hw/nvram/fw_cfg.c``), at 0x09020000 on the Arm ``virt`` board.

QEMU's ``create_fw_cfg`` maps three register blocks (``fw_cfg_init_mem_wide(base + 8, base, 8, base + 16, as)``),
0x18 bytes in all, every one big-endian (QEMU's ``DEVICE_BIG_ENDIAN``):

========  =====  ===========================================================================================
offset    width  register
========  =====  ===========================================================================================
0x00      1..8   data: reads the selected item from the current offset, as a string (the first byte of the
                 item is the byte at the lowest address); the offset advances by the bytes read, stopping at
                 the item's end, past which reads give zeros. Writes are ignored (QEMU 2.4+).
0x08      2      selector: a 16-bit big-endian key; selecting sets the offset to 0.
0x10      8      DMA address: a 64-bit big-endian guest address of a ``FWCfgDmaAccess`` descriptor, written
                 whole (8 bytes at 0x10) or as two big-endian halves (high at 0x10, low at 0x14: the low
                 write starts the transfer, as Linux's driver does it). Reads give the signature "QEMU CFG".
========  =====  ===========================================================================================

Every other access is one QEMU refuses (a decode error, which the ``virt`` board's CPU takes as a synchronous
external abort: checked with U-Boot, ``md.l 0x9020004``, ``md.w 0x9020008`` and ``md.l 0x9020018`` abort with
ESR 0x96000010): data at any offset but 0, any read of the selector or write to it but a 2-byte one, DMA writes
but those above, and the rest of the page from 0x18. :meth:`FwCfgMmio.accepts` says which accesses QEMU takes;
the Device protocol has no way to abort, so here refused reads give 0 and refused writes do nothing.

The items are those of QEMU 7.2 ``-M virt -cpu cortex-a72 -m 128M -nic none`` with or without ``-kernel`` (a
directly booted kernel adds none; only ``-bios`` with ``-kernel`` would), read back from QEMU through qtest
(each item's bytes) and U-Boot (``qfw list``, ``qfw cpus``): signature "QEMU", ID 3 (traditional interface and
DMA), a zero UUID, NOGRAPHIC (1 with ``-nographic``, 0 with ``-display none``), NB_CPUS 1, BOOT_MENU 0, and the
file directory with QEMU's nine files, sorted by name (:data:`VIRT_FILES`). The ACPI tables (DSDT, FACP, APIC,
PPTT, GTDT, MCFG, SPCR, DBG2, IORT, XSDT, padded to 128 KiB), the table loader's script, the RSDP and the
SMBIOS 3.0 anchor and tables are QEMU's bytes (:data:`_FILE_BYTES`); of them only two SMBIOS fields depend on
the RAM size (type 16's maximum capacity in KiB and type 17's size in MiB, both rounded up), which
:func:`virt_files` fills in for up to 16 GiB (checked against QEMU at 127, 128, 128.5, 129, 256, 1024 and 2048
MiB).

DMA (``FW_CFG_DMA_CTL_*`` in the descriptor's control word, QEMU's ``fw_cfg_dma_transfer``): SELECT first selects
the key in the control word's high half; then READ copies ``length`` bytes of the item from the offset to guest
memory (zeros past the item's end), else WRITE fails (every item here is read-only: ERROR, and the offset still
moves over what it would have written), else SKIP moves the offset; with none of them nothing moves. The
control word is then written back as 0, or ERROR (1) if a guest access failed or a WRITE was refused. Guest
memory is the ``dma`` seam (:class:`~machine.devices.virtqueue.GuestMemory`: RAM only). Where QEMU's DMA would
reach a device's registers or write the part of a buffer that lies in RAM before failing, here an access
outside RAM writes nothing and sets ERROR.

State: the selected key (QEMU's ``cur_entry``: the key written, or 0xFFFF when it is past the last slot), the
offset in it (``cur_offset``), and the DMA address (``dma_addr``: QEMU keeps and migrates it, and it holds the
high half between a guest's two 32-bit writes). The items are constant configuration, never saved.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import ClassVar

from ..fields import FieldError, Int, spec
from .base import checked
from .virtqueue import GuestMemory, GuestMemoryError

FW_CFG_BASE = 0x0902_0000
REGISTERS_SIZE = 0x18  # QEMU's three blocks; the rest of the page is unassigned there
DATA, SELECTOR, DMA_ADDRESS = 0x00, 0x08, 0x10

# Keys (include/standard-headers/linux/qemu_fw_cfg.h)
FW_CFG_SIGNATURE, FW_CFG_ID, FW_CFG_UUID, FW_CFG_RAM_SIZE = 0x00, 0x01, 0x02, 0x03
FW_CFG_NOGRAPHIC, FW_CFG_NB_CPUS, FW_CFG_BOOT_MENU, FW_CFG_FILE_DIR, FW_CFG_FILE_FIRST = 0x04, 0x05, 0x0E, 0x19, 0x20
FW_CFG_WRITE_CHANNEL, FW_CFG_ARCH_LOCAL, FW_CFG_ENTRY_MASK, FW_CFG_INVALID = 0x4000, 0x8000, 0x3FFF, 0xFFFF
FILE_SLOTS = 0x20  # QEMU's default x-file-slots
MAX_ENTRY = FW_CFG_FILE_FIRST + FILE_SLOTS  # keys (less the channel bits) at or past this select nothing
FILE_NAME_SIZE = 56
FILE_DIR_SIZE = 4 + (8 + FILE_NAME_SIZE) * FILE_SLOTS  # the count, then every slot (used or not)

FEATURES = 0x3  # FW_CFG_ID: FW_CFG_VERSION (traditional interface) | FW_CFG_VERSION_DMA
DMA_SIGNATURE = b"QEMU CFG"
FW_CFG_DMA_CTL_ERROR, FW_CFG_DMA_CTL_READ, FW_CFG_DMA_CTL_SKIP = 0x01, 0x02, 0x04
FW_CFG_DMA_CTL_SELECT, FW_CFG_DMA_CTL_WRITE = 0x08, 0x10
_DESCRIPTOR = struct.Struct(">IIQ")  # FWCfgDmaAccess: control, length, address
_ZERO_CHUNK = 1 << 20
MASK64 = (1 << 64) - 1

DEFAULT_RAM_SIZE = 128 * 1024 * 1024

VIRT_FILES = (  # (name, size): QEMU 7.2's directory for this board, in its order (selector 0x20 + index)
    ("bios-geometry", 0),
    ("bootorder", 0),
    ("etc/acpi/rsdp", 36),
    ("etc/acpi/tables", 131072),
    ("etc/boot-fail-wait", 4),
    ("etc/smbios/smbios-anchor", 24),
    ("etc/smbios/smbios-tables", 266),
    ("etc/table-loader", 3072),
    ("etc/tpm/log", 0),
)
SMBIOS_TABLES = "etc/smbios/smbios-tables"
SMBIOS_TYPE16_MAX_CAPACITY = 169 + 7  # type 16 (Physical Memory Array) at 169: maximum capacity, u32 KiB
SMBIOS_TYPE17_SIZE = 194 + 12  # type 17 (Memory Device) at 194: size, u16 MiB
MAX_SMBIOS_RAM_SIZE = 16 << 30  # one type 17 DIMM (QEMU's MAX_DIMM_SZ): beyond, the tables' layout changes

# The non-empty files of VIRT_FILES, concatenated in directory order, as QEMU 7.2 gives them with 128 MiB of
# RAM (read back through qtest); zlib, then base64.
_FILE_BYTES = (
    "eNrt2EtvG9cdhvEzHEoiR5RMSpRE3eVEcYMmsSnSF8V1XFGkbqloMaQUGVAB2rVdRLVRGLEToA2KCC6QtG43jYGsXcBANwGy7bJAVwWy8KZo"
    "ga676RfozuwZzpA8f+f4boAN8PwMcjjkzHvmHR6R9FRrpbnKdnVOLW8V12tzEaXN69uxjGor1Urbm2mlIuFGy+crxTnN0a/5j/1l8vNl58f1"
    "2nJ979ZEMZvNxurrG6WBQrGyoVdOqVh9Z6Ok9m6dLm6VW69Vy+vZ7MJC+FqsXqzWUhPe2Gdx5QfGVVKp3/Yqxzms136h911c3S2uBvu+t1Le"
    "0bk5vVdtu+D1652LBSeISHmDQUQkngn3LETfr7YOafNcdUvveqIzbHvPzuCe7hoMnjUjFmwRji0iYkQshBHLfkTOFuFFbBlRIyNnZuStGa4t"
    "o9fIyJsZx60ZUVtGzMg4bmacsGb02DI8I+OEmXHSmtFry0gYGSfNjFPWjD5bxqCRccrMWLRmxGwZSSNj0cx425oRt2UMGRlvGxkL1lnqebaM"
    "tJFx2sywTlP5R9LKGDUyfmBm2OdpwpaRMTLOmBn2eTpgy5gwMt4xM+zzdNCWMWVknDUz7PP0kC1jxsj4oZlhn6dJW8ackbFkZtjnacqW8YqR"
    "UTAz7PN0yJYxb2Qsmxn2eTpsyzhiZBSNjJx9nqZtGa8bGSUzwz5PR2wZ3zcyVswM+zwdtWW8aWSsmhn2eTpmyzhqZKyZGfZ5mrFlZI2MdTPD"
    "Pk/HbRk5I2PDzLDP0wlbxnEj410zwz5PJ20ZJ42MH5kZ9nk6ZctYNDI2zQz7PJ22ZZw2MspGRt4+T2dsGWeMjHNmhn2eztoyzhoZW2HGuT9V"
    "ihvhcVTOVbKF7KL/s6O9lvd/xays6fvl5XPtnyW17Wpq1puqqKLaUFf0h0pW30r60cdqX13SS9X+7VKpbg9v3vAOhvqj/Y2GWqttZFXw2NGP"
    "F9RQwn/sRfRKrrXi6pW8GhqIJvRWSgXbhWtOsOFgsNbcL99ZdYP85raR5p659ppjbBoJ9sx2Vl1jFLe5Z7695hibusGeC51V1xglqpRxBFHl"
    "GJtGVatla9Xs2SN69oiePbJnj+zZK3r2ip69smev7NknevaJnn2yZ5/sGRM9Y6JnTPaMyZ5x0TMuesZlz7js6YmenujpyZ6e7NkvevaLnv2y"
    "Z7/smRA9E6JnQvZMyJ4DoueA6Dkgew7InoOi56DoOSh7Dsqeh0TPQ6LnIdnzkOyZFD2TomdS9kzKninRMyV6pmTPlOw5JHoOiZ5DsueQ7Dks"
    "eg6LnsOy57DsmRY906JnWvZMy54joueI6Dkie47InqOi56joOSp7jsqeY6LnmOg5JnuOyZ4Z0TMjemZkz4zsOS56joue47LnuOw5IXpOiJ4T"
    "sueE7Dkpek6KnpOy56TsOSV6TomeU7LnlOw5LXpOi57Tsue07Dkjes6InjOy54zsOSt6zoqes7LnbKvn3q2NqL9Z5yu6mF1tfxFX9Nf7oNff"
    "/Ep/tfmVHnzly+fSvfVateaEUQuWKEdGzVui5mXUu35UzhLlXy8ws16zZL1mycrbslyZdcSSdcTMSifrxeWCujfoX/VZCn6G6G3X+7ybvxlQ"
    "kUTzklHDv3M+139dCSe8ipRsNB6cDR42jupXnITbusDUaG7e0K866vYbxj5NB80tGsFGDz2vj7S2U6moWHG7uqnSq/H6Vq0YvX1VFUu7C3fX"
    "++58kBr2knvlf+X/Ozu19OXuzcJf3vnHT29f9aJ6g5xexvQyf91f8XP8B3k/6hP/zpv17+8mv7iz7/zKD2xuvXB39Is7re2Cp5P+/XV/3X/+"
    "3tU/DgbP+4Ms3LuafqteqpWjdw8HR3P/1N/+XTvxy/Ifxv5THv9rsXw3fudn6l7KdRz/Ts/GcrS6UhOzMRee5LyX/db5ab4H+uzMLsnTk1St"
    "37B9a5UtcdHt5CMuurmdi27fC6dBYWUj9ao393v9iRH+0/TbOq7/q6x3UH60PzcG6iv6h+xnld3qsnewd2vcf2A2KIYjrhaKlbQO6X3MtcSX"
    "KylXXfV/w7+K6S8LlY3iV3oZfYpzkuhcl421HvgXbfsrnW1a24+J0Zxw+2i4dGOPO7aB9jiRWCtzSVVUpbK9fUE9/lqwSneOoS0dLOYfek7/"
    "4lSLxlNr26Un5jdC/vbT4X4zzfOn1GS4PtH+aGmIz45ycXXtTLPPU82/ZPhH1dy/VilWK084Njd4Z4Ir2M2Hh5vPOpHgWMzw0vJabrf56NF5"
    "b7bezzeU06OOhJ98/iij6hUxkj/R/avramOrun3QHPTRsf6UybaOIyPfrdZKZFG5Trg+33m+/Qe0JD69O3nna6Xty084xZvhdLgwEk7r0WB5"
    "LVx+Ey5j4Rw+Hy6/HlMAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAvksaWr1WztdVxlXKUZ7Tec2ZVI4Tcb+1T69S762Ud5p3c+/vf3jzo4vX5soXL32w"
    "//Mr6mO9/tapozml3FHl6v31A9eNtHdu7tnZKJpVUcd12q/7o93vu99XcBpN/mH4IU74r1jZmcs+HJIcU0nH1YcVUQ8aRgGVel2lVPJBM+lA"
    "xfX+ff5IkYcblTbK5VasmutXc+1XPo2qT/3zotSVm5eOXbx0ff/YhzcuX3+GM5y0DfiMxPg3L/7k2pUbT73vUrj/i3BfYPx4uNxMP//4kRcY"
    "/3n3+6c+3thL6L+TDrqnne6c//0RpS7o21ddev9HRpVK6NuFLo3/kR77WhfH/7se+xt9O9Ol8VNjeh7rW6VL41/UY5/Xt90ujf9nPfbX+nag"
    "vlufP7VM5/OnG+PvdXn8S10e/2qXx7/R5fE/6fL4v+7y+L/LvJzv/0Wdc0zfLr+sz79n/P3Z6pB+WZ9/zzj+8563jHrE+X/G8Vu/5edfoP//"
    "AG0TZtE="
)


@cache
def _recorded_files() -> dict[str, bytes]:
    blob = zlib.decompress(base64.b64decode("".join(_FILE_BYTES)))
    files, pos = {}, 0
    for name, size in VIRT_FILES:
        files[name], pos = blob[pos : pos + size], pos + size
    if pos != len(blob):
        raise AssertionError("recorded fw_cfg files do not match their sizes")
    return files


def file_dir(files: Mapping[str, bytes]) -> bytes:
    """FW_CFG_FILE_DIR for ``files`` (in the order given, selectors from 0x20): a big-endian count, then for each
    slot a ``FWCfgFile`` (size BE32, select BE16, reserved, name padded to 56 bytes); unused slots are zeros."""
    if len(files) > FILE_SLOTS:
        raise ValueError(f"{len(files)} files, at most {FILE_SLOTS}")
    out = bytearray(struct.pack(">I", len(files)))
    for index, (name, data) in enumerate(files.items()):
        encoded = name.encode()
        if len(encoded) >= FILE_NAME_SIZE:
            raise ValueError(f"fw_cfg file name too long: {name}")
        out += struct.pack(">IHH56s", len(data), FW_CFG_FILE_FIRST + index, 0, encoded)
    return bytes(out.ljust(FILE_DIR_SIZE, b"\0"))


def virt_files(ram_size: int = DEFAULT_RAM_SIZE) -> dict[str, bytes]:
    """The ``virt`` board's fw_cfg files, by name in directory order, for ``ram_size`` bytes of RAM."""
    if not 0 < ram_size <= MAX_SMBIOS_RAM_SIZE:
        raise ValueError(f"RAM size {ram_size:#x} out of range")
    files = dict(_recorded_files())
    smbios = bytearray(files[SMBIOS_TABLES])
    struct.pack_into("<I", smbios, SMBIOS_TYPE16_MAX_CAPACITY, -(-ram_size // 1024))
    struct.pack_into("<H", smbios, SMBIOS_TYPE17_SIZE, -(-ram_size // (1024 * 1024)))
    files[SMBIOS_TABLES] = bytes(smbios)
    return files


def virt_items(ram_size: int = DEFAULT_RAM_SIZE, nographic: bool = True) -> dict[int, bytes]:
    """Every item QEMU 7.2's ``virt`` board has, by key (less the channel bits), as the data register reads it."""
    files = virt_files(ram_size)
    items = {
        FW_CFG_SIGNATURE: b"QEMU",
        FW_CFG_ID: struct.pack("<I", FEATURES),  # QEMU's fw_cfg_add_i32/i16 store little-endian
        FW_CFG_UUID: bytes(16),  # no -uuid
        FW_CFG_NOGRAPHIC: struct.pack("<H", int(nographic)),
        FW_CFG_NB_CPUS: struct.pack("<H", 1),
        FW_CFG_BOOT_MENU: struct.pack("<H", 0),
        FW_CFG_FILE_DIR: file_dir(files),
    }
    for index, data in enumerate(files.values()):
        items[FW_CFG_FILE_FIRST + index] = data
    return items


class _Items:
    """The item a selector key reads (``b""`` for none): constant configuration, kept as a callable."""

    def __init__(self, items: Mapping[int, bytes]) -> None:
        self._items = dict(items)

    def __call__(self, key: int) -> bytes:
        if key & FW_CFG_ARCH_LOCAL:  # the Arm board has no architecture-local items (nor does FW_CFG_INVALID)
            return b""
        return self._items.get(key & FW_CFG_ENTRY_MASK, b"")


def _selectable(key: int) -> bool:
    return (key & FW_CFG_ENTRY_MASK) < MAX_ENTRY


@dataclass(frozen=True, slots=True)
class FwCfgState:
    """QEMU's ``cur_entry``, ``cur_offset`` and ``dma_addr``."""

    VERSION: ClassVar[int] = 1
    selector: int = spec(Int(16))
    offset: int = spec(Int(32))
    dma_addr: int = spec(Int(64))

    def check_invariants(self) -> None:
        if self.selector != FW_CFG_INVALID and not _selectable(self.selector):
            raise FieldError(f"FwCfgState.selector {self.selector:#x}: past the last slot, yet not FW_CFG_INVALID")


class FwCfgMmio:
    """The device (see the module docstring); ``dma`` is guest RAM as DMA reaches it (the board's DmaMemory)."""

    name = "fw-cfg"
    size = 0x1000  # the page the board maps; QEMU's registers are the first REGISTERS_SIZE bytes
    access_size = 8
    state_type = FwCfgState

    def __init__(self, dma: GuestMemory, *, ram_size: int = DEFAULT_RAM_SIZE, nographic: bool = True,
                 extra_items: Mapping[int, bytes] | None = None) -> None:  # fmt: skip
        self._read_memory = dma.read
        self._write_memory = dma.write
        self._check_memory = dma.check
        self._item: Callable[[int], bytes] = _Items({**virt_items(ram_size, nographic), **(extra_items or {})})
        self.selector = FW_CFG_SIGNATURE  # fw_cfg_reset selects the signature
        self.offset = 0
        self.dma_addr = 0

    @staticmethod
    def accepts(offset: int, size: int, is_write: bool) -> bool:
        """Whether QEMU 7.2 takes this access (else a decode error: a synchronous external abort on ``virt``)."""
        if size not in (1, 2, 4, 8) or offset % size:
            return False
        if offset < SELECTOR:
            return offset == DATA
        if offset < DMA_ADDRESS:
            return offset == SELECTOR and size == 2 and is_write
        if offset < REGISTERS_SIZE:
            return not is_write or (size == 4 and offset in (0x10, 0x14)) or (size == 8 and offset == 0x10)
        return False

    # -- registers ---------------------------------------------------------------------------------------
    def peek(self, offset: int, size: int) -> int | None:
        if offset == DATA:
            return None  # advances the offset: only at an exact instruction boundary
        return self.read(offset, size)

    def read(self, offset: int, size: int) -> int:
        if offset == DATA:
            data = self._item(self.selector)
            chunk = data[self.offset : self.offset + size]
            self.offset += len(chunk)
            return int.from_bytes(chunk, "little")  # zero padded: the string's first byte lowest
        if DMA_ADDRESS <= offset < REGISTERS_SIZE:
            start = offset - DMA_ADDRESS
            return int.from_bytes(DMA_SIGNATURE[start : start + size], "little")
        return 0  # refused by QEMU (see accepts)

    def write(self, offset: int, size: int, value: int) -> None:
        value &= (1 << (8 * size)) - 1
        if offset == SELECTOR and size == 2:
            self._select(int.from_bytes(value.to_bytes(2, "little"), "big"))
        elif offset == DMA_ADDRESS and size == 8:
            self.dma_addr = int.from_bytes(value.to_bytes(8, "little"), "big")
            self._dma_transfer()
        elif offset == DMA_ADDRESS and size == 4:
            self.dma_addr = int.from_bytes(value.to_bytes(4, "little"), "big") << 32
        elif offset == DMA_ADDRESS + 4 and size == 4:
            self.dma_addr |= int.from_bytes(value.to_bytes(4, "little"), "big")
            self._dma_transfer()
        # Data writes are ignored, as QEMU 2.4+; the rest QEMU refuses.

    def _select(self, key: int) -> None:
        """QEMU's ``fw_cfg_select`` (no item here has a select callback)."""
        self.offset = 0
        self.selector = key if _selectable(key) else FW_CFG_INVALID

    # -- DMA ---------------------------------------------------------------------------------------------
    def _dma_transfer(self) -> None:
        """QEMU's ``fw_cfg_dma_transfer`` for the descriptor at ``dma_addr`` (which it clears)."""
        descriptor, self.dma_addr = self.dma_addr, 0
        try:
            control, length, address = _DESCRIPTOR.unpack(self._read_memory(descriptor, _DESCRIPTOR.size))
        except GuestMemoryError:
            self._store_control(descriptor, FW_CFG_DMA_CTL_ERROR)
            return
        if control & FW_CFG_DMA_CTL_SELECT:
            self._select(control >> 16)
        data = self._item(self.selector)
        read = bool(control & FW_CFG_DMA_CTL_READ)
        write = not read and bool(control & FW_CFG_DMA_CTL_WRITE)
        if not control & (FW_CFG_DMA_CTL_READ | FW_CFG_DMA_CTL_WRITE | FW_CFG_DMA_CTL_SKIP):
            length = 0
        status = 0
        while length > 0 and not status & FW_CFG_DMA_CTL_ERROR:
            if self.offset >= len(data):  # past the item's end (or no item): zeros to read, nothing to write
                count = length
                if read and not self._zero_memory(address, count):
                    status |= FW_CFG_DMA_CTL_ERROR
                if write:
                    status |= FW_CFG_DMA_CTL_ERROR
            else:
                count = min(length, len(data) - self.offset)
                if read and not self._write(address, data[self.offset : self.offset + count]):
                    status |= FW_CFG_DMA_CTL_ERROR
                if write:  # every item is read-only: refused, and the offset moves on as QEMU's does
                    status |= FW_CFG_DMA_CTL_ERROR
                self.offset += count
            address = (address + count) & MASK64
            length -= count
        self._store_control(descriptor, status)

    def _write(self, addr: int, data: bytes) -> bool:
        try:
            self._write_memory(addr, data)
        except GuestMemoryError:
            return False
        return True

    def _zero_memory(self, addr: int, size: int) -> bool:
        try:
            self._check_memory(addr, size)
        except GuestMemoryError:
            return False
        for start in range(0, size, _ZERO_CHUNK):
            self._write_memory(addr + start, bytes(min(_ZERO_CHUNK, size - start)))
        return True

    def _store_control(self, descriptor: int, status: int) -> None:
        self._write(descriptor, struct.pack(">I", status))  # QEMU ignores a failure here too

    # -- state -------------------------------------------------------------------------------------------
    def save(self) -> FwCfgState:
        return FwCfgState(self.selector, self.offset, self.dma_addr)

    def load(self, state: FwCfgState, check: bool = True) -> None:
        if check:
            state = checked(state, FwCfgState)
            length = len(self._item(state.selector))
            if state.offset > length:
                raise FieldError(f"FwCfgState.offset {state.offset} is past the end of item {state.selector:#x} "
                                 f"({length} bytes)")  # fmt: skip
        self.selector, self.offset, self.dma_addr = state.selector, state.offset, state.dma_addr
