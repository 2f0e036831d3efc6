"""CFI parallel NOR flash with the Intel command set: QEMU 7.2's ``pflash_cfi01`` (``hw/block/pflash_cfi01.c``) as
the Arm ``virt`` board makes its two banks (``virt_flash_create1``): 64 MiB each, 256 KiB sectors, ``width`` 4
with ``device-width`` 2 (two interleaved x16 chips on a 32-bit bus; ``max-device-width`` defaults to 2),
little-endian, ``id0`` 0x89 (Intel) ``id1`` 0x18, not ``secure``, ``old-multiple-chip-handling`` off. With
``-bios`` and no ``-drive if=pflash`` QEMU loads the file at offset 0 of bank 0 and every other byte reads as
zero (the memory is not backed by a file and is never "pre-erased"); both banks are writable.

The model is QEMU 7.2.22's (the behaviour below was checked against ``qemu-system-aarch64`` 7.2.22 running
U-Boot 2023.01: tests/unit/test_pflash_cfi01.py records what it returned):

- Read array (``cmd`` 0, QEMU's reset value): reads return the array, little-endian. QEMU then maps the
  bank as ROM; any write turns it into MMIO until the device is back in read array mode.
- ``0x98`` CFI query (at any offset, not only 0x55 * width), ``0x90`` read identifier, ``0x70`` read status:
  reads return one value per chip, replicated in both 16-bit halves of the bus. A query or identifier read
  of any size at ``offset`` answers for the 32-bit word ``offset >> 2`` (a byte read at 0x41 returns the
  same byte as one at 0x40), truncated to the access size; an 8-byte access is two 4-byte accesses (QEMU's
  ops have no ``impl`` sizes). The identifier answers ``boff & 0xFF`` (0: 0x89, 1: 0x18, else 0). Status
  reads of 1 or 2 bytes return the status byte, 4-byte ones ``status | status << 16``.
- Query mode ends only with ``0xFF``: any other write leaves it in query mode (QEMU's "leaving query mode"
  does nothing). ``0x50`` clears the status and returns to read array; ``0x00``, ``0xF0``, ``0xFF`` and any
  unknown command return to read array.
- ``0x10``/``0x40`` program: the next write stores its bytes (all of them: no AND with the old contents).
  ``0x20`` block erase fills the 256 KiB sector with 0xFF at once (before ``0xD0``, which only confirms).
  After a program or erase the device stays in status mode (reads return the status) until ``0xFF``.
- ``0xE8`` buffered write: the next write gives the word count - 1 (its low 16 bits) and opens a 4 KiB
  buffer (the chips' 2 KiB x 2) aligned at *that write's* offset, filled from the array; count + 1 data
  writes go into the buffer (one outside it sets status bit 0x10 and is dropped), then ``0xD0`` copies the
  buffer into the array unless status bit 0x10 is set; anything else, or 0xD0 with 0x10 set, drops the
  buffer and returns to read array. This is the "update buffer" QEMU stable 7.2.9 took from 9.0 (before
  it, data went straight to the array). U-Boot 2023.01 writes the count at its sector's base, so of each
  of its 128 KiB sectors only the first 4 KiB take data; QEMU 7.2.22 then prints "Flash buffer write
  timeout" and ``saveenv`` fails, and so does this model.
- Status: 0x80 (ready) is set by every operation; 0x20 (erase error) and 0x10 (program error) are set on a
  read-only device and by a write outside the buffer, and stay until ``0x50``. ``0x60`` lock commands only
  set ready (no lock state).
- Reads never change state, so :meth:`PflashCfi01.peek` is :meth:`PflashCfi01.read` in every mode.

The array is a :class:`FlashPages`: the image underneath, written 4 KiB pages on top, copy on write like a
:class:`~machine.overlay.DiskOverlay`. The saved state keeps them as a :class:`~machine.ram.PageTable` whose
``None`` means "as in the image": a snapshot copies only the pages written since the last one and shares
every other page with it, and a flash nobody wrote costs nothing. A state is relative to the image the
device was made with, as a disk overlay is to its disk image.

Suggested board design (not done here): U-Boot runs from bank 0 until it relocates, so reads in read array
mode are the hot path. Map the bank in Unicorn as read-only memory holding :meth:`~PflashCfi01.array_bytes`
while :attr:`~PflashCfi01.is_array_mode` holds, and catch writes to it (a write-protection fault hook). On
a write, take ``before = flash.written_pages()``, remap the bank as MMIO and pass the write (and later
accesses) to the device, as QEMU switches its ROM device out of ROMD mode. After a write that leaves the
device in read array mode, map it as memory again, rewriting only the pages of
``changed_pages(before, flash.written_pages())``. After a state is loaded, choose the mapping by
:attr:`~PflashCfi01.is_array_mode` and rewrite the pages that differ between the two states' tables.

Not modelled, as in QEMU: timings, erase suspend, block locking, the protection registers; unaligned MMIO
accesses (QEMU refuses them) are answered as aligned ones at the same word.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ..fields import Bytes, FieldError, Int, Optional, Reader, spec
from ..ram import NODE_PAGES, PAGE, PageTable
from .base import checked

VIRT_FLASH_SIZE = 0x400_0000  # each bank of QEMU's virt
SECTOR_LEN = 0x4_0000  # VIRT_FLASH_SECTOR_SIZE: the erase block of the 32-bit bank (two 128 KiB chip blocks)
BANK_WIDTH, DEVICE_WIDTH = 4, 2
NUM_DEVICES = BANK_WIDTH // DEVICE_WIDTH
IDENT0, IDENT1 = 0x89, 0x18  # Intel; id2/id3 (0) are read only without a device-width
CFI_LEN = 0x52  # sizeof(cfi_table)
WRITE_BLOCK = (1 << 0x0B) * NUM_DEVICES  # writeblock_size: 2 KiB per chip (cfi_table[0x2A]) x 2 chips
MAX_SIZE = 1 << 30  # what a state may describe (hostile input bound), far above the boards' 64 MiB
MAX_NODES = MAX_SIZE // (PAGE * NODE_PAGES)

STATUS_READY, STATUS_ERASE_ERROR, STATUS_PROGRAM_ERROR = 0x80, 0x20, 0x10
STATUS_BITS = STATUS_READY | STATUS_ERASE_ERROR | STATUS_PROGRAM_ERROR
CMD_READ_ARRAY = 0x00  # QEMU's value for read array mode (written as 0xFF, 0xF0 or 0x00)
CMD_PROGRAM, CMD_PROGRAM_ALT, CMD_ERASE, CMD_CLEAR_STATUS, CMD_LOCK = 0x10, 0x40, 0x20, 0x50, 0x60
CMD_READ_STATUS, CMD_READ_ID, CMD_QUERY, CMD_WRITE_BUFFER = 0x70, 0x90, 0x98, 0xE8
CMD_CONFIRM, CMD_LOCK_SET, CMD_AMD_RESET, CMD_RESET = 0xD0, 0x01, 0xF0, 0xFF
U64_MASK = (1 << 64) - 1

# The command each write cycle can be in (what QEMU 7.2 reaches from reset): read array, status and
# identifier modes take no second cycle; query mode stays in cycle 1; only a buffered write has cycles 2, 3.
CMDS_AT_CYCLE = (
    frozenset({CMD_READ_ARRAY, CMD_PROGRAM, CMD_PROGRAM_ALT, CMD_ERASE, CMD_LOCK, CMD_READ_STATUS, CMD_READ_ID,
               CMD_WRITE_BUFFER}),
    frozenset({CMD_PROGRAM, CMD_PROGRAM_ALT, CMD_ERASE, CMD_LOCK, CMD_QUERY, CMD_WRITE_BUFFER}),
    frozenset({CMD_WRITE_BUFFER}),
    frozenset({CMD_WRITE_BUFFER}),
)  # fmt: skip
_ERASED_PAGE = b"\xff" * PAGE
_MASKS = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFF_FFFF, 8: U64_MASK}


def _ctz(value: int) -> int:
    return (value & -value).bit_length() - 1


def cfi_table(size: int, sector_len: int = SECTOR_LEN) -> bytes:
    """QEMU's ``cfi_table`` (``pflash_cfi01_fill_cfi_table``) for a ``size``-byte bank of two x16 chips, one chip's
    view: each chip has all ``size // sector_len`` blocks, of half the bank's sector length."""
    blocks = size // sector_len  # num-blocks; blocks_per_device without old-multiple-chip-handling
    chip_sector = sector_len // NUM_DEVICES
    t = bytearray(CFI_LEN)
    t[0x10:0x13] = b"QRY"
    t[0x13], t[0x14] = 0x01, 0x00  # primary command set: Intel/Sharp extended
    t[0x15], t[0x16] = 0x31, 0x00  # primary extended table at 0x31
    t[0x1B], t[0x1C] = 0x45, 0x55  # Vcc min, max
    t[0x1F], t[0x20], t[0x21], t[0x22] = 0x07, 0x07, 0x0A, 0x00  # typical timeouts
    t[0x23], t[0x24], t[0x25], t[0x26] = 0x04, 0x04, 0x04, 0x00  # maximum timeouts
    t[0x27] = _ctz(chip_sector * blocks)  # device size, log2 bytes
    t[0x28], t[0x29] = 0x02, 0x00  # interface: x8/x16
    t[0x2A], t[0x2B] = 0x0B, 0x00  # write buffer: 2^11 bytes
    t[0x2C] = 0x01  # one erase block region
    t[0x2D], t[0x2E] = (blocks - 1) & 0xFF, ((blocks - 1) >> 8) & 0xFF
    t[0x2F], t[0x30] = (chip_sector >> 8) & 0xFF, (chip_sector >> 16) & 0xFF
    t[0x31:0x36] = b"PRI10"
    t[0x3F] = 0x01  # number of protection fields
    return bytes(t)


class FlashPages:
    """The array's bytes: the image underneath (zeros past its end), written pages on top, copy on write.

    Pages written since the last :meth:`freeze` are ``bytearray`` in a dict; :meth:`freeze` moves them into
    a new :class:`PageTable` that shares every other page and node with the previous one.
    """

    def __init__(self, image: bytes, size: int) -> None:
        self._image = image
        self._size = size
        self._table = PageTable.empty(size)
        self._dirty: dict[int, bytearray] = {}

    def _written(self, index: int) -> bytes | bytearray | None:
        page = self._dirty.get(index)
        return page if page is not None else self._table.page(index)

    def _page(self, index: int) -> bytes | bytearray:
        page = self._written(index)
        if page is not None:
            return page
        start = index * PAGE
        return self._image[start : start + PAGE].ljust(PAGE, b"\0")

    def load_le(self, offset: int, size: int) -> int:
        """The little-endian value of ``size`` bytes at ``offset``."""
        index, within = divmod(offset, PAGE)
        if within + size > PAGE:
            return int.from_bytes(self.read(offset, size), "little")
        page = self._written(index)
        if page is None:
            return int.from_bytes(self._image[offset : offset + size], "little")  # past the image: zeros
        return int.from_bytes(page[within : within + size], "little")

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (the caller keeps it inside the array); unwritten runs are sliced
        from the image in one piece."""
        chunks: list[bytes | bytearray] = []
        end = offset + length
        while offset < end:
            index, within = divmod(offset, PAGE)
            page = self._written(index)
            if page is None:
                stop = min(end, (index + 1) * PAGE)
                while stop < end and self._written(stop // PAGE) is None:
                    stop = min(end, stop + PAGE)
                chunk = self._image[offset:stop]
                chunks.append(chunk)
                if len(chunk) < stop - offset:
                    chunks.append(bytes(stop - offset - len(chunk)))
                offset = stop
            else:
                take = min(PAGE - within, end - offset)
                chunks.append(page[within : within + take])
                offset += take
        return b"".join(chunks)

    def write(self, offset: int, data: bytes | bytearray) -> None:
        pos = 0
        while pos < len(data):
            index, within = divmod(offset + pos, PAGE)
            take = min(PAGE - within, len(data) - pos)
            page = self._dirty.get(index)
            if page is None:
                page = self._dirty[index] = bytearray(self._page(index))
            page[within : within + take] = data[pos : pos + take]
            pos += take

    def erase(self, offset: int, length: int) -> None:
        """Fill page-aligned ``[offset, offset + length)`` with 0xFF."""
        for index in range(offset // PAGE, (offset + length) // PAGE):
            self._dirty[index] = bytearray(_ERASED_PAGE)

    def freeze(self) -> PageTable:
        """The written pages now, sharing every page not written since the last freeze (or load)."""
        if self._dirty:
            nodes: list[Any] = list(self._table.nodes)
            edited: dict[int, list[bytes | None]] = {}
            for index, page in self._dirty.items():
                n = index // NODE_PAGES
                node = edited.get(n)
                if node is None:
                    old = nodes[n]
                    node = edited[n] = [None] * NODE_PAGES if old is None else list(old)
                frozen = bytes(page)
                node[index % NODE_PAGES] = _ERASED_PAGE if frozen == _ERASED_PAGE else frozen
            for n, node in edited.items():
                nodes[n] = tuple(node)
            self._table = PageTable(tuple(nodes))
            self._dirty.clear()
        return self._table

    def load(self, table: PageTable) -> None:
        self._table = table
        self._dirty.clear()


def changed_pages(earlier: PageTable, later: PageTable) -> list[int]:
    """Indices of the pages that are not the same object in both tables of one flash (a page written in
    between is a new object; shared nodes are skipped whole)."""
    if len(earlier.nodes) != len(later.nodes):
        raise ValueError("page tables of flashes of different sizes")
    changed = []
    for n, (old, new) in enumerate(zip(earlier.nodes, later.nodes, strict=True)):
        if old is new:
            continue
        for i in range(NODE_PAGES):
            if (None if old is None else old[i]) is not (None if new is None else new[i]):
                changed.append(n * NODE_PAGES + i)
    return changed


class WrittenPages:
    """The kind of a :class:`PageTable` of written pages: u32 node count, u32 page count, then per page (in
    increasing order) its u32 index and its 4096 bytes."""

    def check(self, value: object) -> None:
        if type(value) is not PageTable or type(value.nodes) is not tuple or len(value.nodes) > MAX_NODES:
            raise FieldError(f"not a page table of at most {MAX_NODES} nodes")
        for node in value.nodes:
            if node is None:
                continue
            if type(node) is not tuple or len(node) != NODE_PAGES:
                raise FieldError(f"a node is not a tuple of {NODE_PAGES} pages")
            if not all(page is None or (type(page) is bytes and len(page) == PAGE) for page in node):
                raise FieldError(f"a page is neither None nor {PAGE} bytes")

    def encode(self, value: PageTable, out: bytearray) -> None:
        pages = list(value.chunks())
        out += len(value.nodes).to_bytes(4, "little") + len(pages).to_bytes(4, "little")
        for offset, page in pages:
            out += (offset // PAGE).to_bytes(4, "little")
            out += page

    def decode(self, reader: Reader) -> PageTable:
        node_count = reader.uint(4, "node count")
        if node_count > MAX_NODES:
            raise FieldError(f"{node_count} nodes, at most {MAX_NODES}")
        count = reader.uint(4, "page count")
        limit = node_count * NODE_PAGES
        if count > limit or count * (4 + PAGE) > reader.remaining:
            raise FieldError(f"{count} pages: more than {limit} or than the bytes left hold")
        nodes: list[list[bytes | None] | None] = [None] * node_count
        previous = -1
        for _ in range(count):
            index = reader.uint(4, "page index")
            if not previous < index < limit:
                raise FieldError(f"page {index} out of order or past {limit}")
            node = nodes[index // NODE_PAGES]
            if node is None:
                node = nodes[index // NODE_PAGES] = [None] * NODE_PAGES
            node[index % NODE_PAGES] = bytes(reader.take(PAGE, "page"))
            previous = index
        return PageTable(tuple(None if node is None else tuple(node) for node in nodes))

    def describe(self) -> str:
        return "written pages"


@dataclass(frozen=True, slots=True)
class PflashCfi01State:
    """The array's written pages and QEMU's vmstate (``wcycle``, ``cmd``, ``status``, ``counter``, and the update
    buffer's subsection: ``blk_offset`` (None: -1, no buffer) and ``blk_bytes``)."""

    VERSION: ClassVar[int] = 1
    written: PageTable = spec(WrittenPages())  # None: the page as in the image
    cmd: int = spec(Int(8))  # the command in progress (0: read array)
    wcycle: int = spec(Int(8, maximum=3))  # its write cycle
    status: int = spec(Int(8, mask=STATUS_BITS))
    counter: int = spec(Int(64))  # buffered write: data writes left - 1 (wraps to 2^64 - 1 after the last)
    buffer_offset: int | None = spec(Optional(Int(32)))
    buffer: bytes = spec(Bytes(WRITE_BLOCK))  # WRITE_BLOCK bytes with a buffer_offset, else empty

    def check_invariants(self) -> None:
        if self.cmd not in CMDS_AT_CYCLE[self.wcycle]:
            raise FieldError(f"PflashCfi01State: command {self.cmd:#x} cannot be at write cycle {self.wcycle}")
        if self.wcycle == 2 and self.counter > 0xFFFF or self.wcycle == 3 and self.counter != U64_MASK:
            raise FieldError(f"PflashCfi01State.counter: {self.counter:#x} at write cycle {self.wcycle}")
        if (self.buffer_offset is not None) != (self.wcycle >= 2):
            raise FieldError("PflashCfi01State.buffer_offset: a buffer exists exactly in write cycles 2 and 3")
        if self.buffer_offset is not None and self.buffer_offset % WRITE_BLOCK:
            raise FieldError(f"PflashCfi01State.buffer_offset: {self.buffer_offset:#x} not {WRITE_BLOCK}-aligned")
        if len(self.buffer) != (0 if self.buffer_offset is None else WRITE_BLOCK):
            raise FieldError(f"PflashCfi01State.buffer: {len(self.buffer)} bytes")


@dataclass(frozen=True, slots=True)
class _Config:
    name: str
    size: int
    readonly: bool
    cfi: bytes


class PflashCfi01:
    """One flash bank; ``contents`` (at most ``size`` bytes) is its image at offset 0, zeros after it.

    ``size`` must be a whole number of 256 KiB sectors. ``readonly``: programs and erases fail (status
    bits 0x10, 0x20) and change nothing, as QEMU's flash on a read-only drive.
    """

    access_size = 4
    state_type = PflashCfi01State

    def __init__(self, name: str, contents: bytes = b"", size: int = VIRT_FLASH_SIZE, readonly: bool = False) -> None:
        if size <= 0 or size % SECTOR_LEN or size > MAX_SIZE:
            raise ValueError(f"flash size {size:#x}: not a whole number of {SECTOR_LEN:#x}-byte sectors up to "
                             f"{MAX_SIZE:#x}")  # fmt: skip
        if len(contents) > size:
            raise ValueError(f"flash image of {len(contents)} bytes does not fit in {name} ({size:#x} bytes)")
        config = _Config(name, size, readonly, cfi_table(size))
        self._config: Callable[[], _Config] = lambda: config  # configuration, kept as wiring (not state)
        self.written = FlashPages(bytes(contents), size)
        self.cmd = CMD_READ_ARRAY
        self.wcycle = 0
        self.status = STATUS_READY
        self.counter = 0
        self.buffer_offset: int | None = None
        self.buffer = bytearray()

    @property
    def name(self) -> str:
        """The device's name on the board (QEMU's ``virt.flash0``, ``virt.flash1``)."""
        return self._config().name

    @property
    def size(self) -> int:
        return self._config().size

    @property
    def readonly(self) -> bool:
        return self._config().readonly

    @property
    def cfi(self) -> bytes:
        """The CFI query table (one chip's, ``CFI_LEN`` bytes) this bank answers with."""
        return self._config().cfi

    # -- the board's fast path ------------------------------------------------------------------
    @property
    def is_array_mode(self) -> bool:
        """True when reads return the array (QEMU's ROMD mode): the bank may be mapped as plain memory."""
        return self.cmd == CMD_READ_ARRAY

    def array_bytes(self, offset: int, length: int) -> bytes:
        """The array's bytes at ``offset`` whatever the mode (what read array mode returns)."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ValueError(f"{length} bytes at {offset:#x} outside the {self.size:#x}-byte flash")
        return self.written.read(offset, length)

    def written_pages(self) -> PageTable:
        """The pages written so far (None: as in the image), for :func:`changed_pages`."""
        return self.written.freeze()

    def reset(self) -> None:
        """A system reset (``pflash_cfi01_system_reset``): read array, status ready, no buffer; the array,
        and the buffered write counter, stay."""
        self.cmd = CMD_READ_ARRAY
        self.wcycle = 0
        self.status = STATUS_READY
        self.buffer_offset = None
        self.buffer = bytearray()

    # -- reads ---------------------------------------------------------------------------------
    def peek(self, offset: int, size: int) -> int | None:
        return self.read(offset, size)  # no read has a side effect

    def read(self, offset: int, size: int) -> int:
        if size == 8:  # two 4-byte accesses, as QEMU's memory core splits them
            return self.read(offset, 4) | self.read(offset + 4, 4) << 32
        cmd = self.cmd
        if cmd == CMD_READ_ARRAY:
            return self.written.load_le(offset, size)
        if cmd == CMD_QUERY:
            boff = offset >> 2  # bank width 4, device width = max device width 2
            value = self.cfi[boff] if boff < CFI_LEN else 0
            value |= value << 16
        elif cmd == CMD_READ_ID:
            value = {0: IDENT0, 1: IDENT1}.get((offset >> 2) & 0xFF, 0)
            value |= value << 16
        else:  # a program, erase, lock, status or buffered write command: the status of each chip
            value = self.status | self.status << 16 if size == 4 else self.status
        return value & _MASKS[size]

    # -- writes --------------------------------------------------------------------------------
    def write(self, offset: int, size: int, value: int) -> None:
        if size == 8:
            self.write(offset, 4, value & 0xFFFF_FFFF)
            self.write(offset + 4, 4, (value >> 32) & 0xFFFF_FFFF)
            return
        value &= _MASKS[size]
        if self.wcycle == 0:
            self._command(offset, value & 0xFF)
        elif self.wcycle == 1:
            self._second_cycle(offset, size, value)
        elif self.wcycle == 2:
            self._buffer_data(offset, size, value)
        elif value & 0xFF == CMD_CONFIRM and not self.status & STATUS_PROGRAM_ERROR:  # cycle 3: confirm
            self.written.write(self.buffer_offset, self.buffer)  # type: ignore[arg-type]
            self._drop_buffer()
            self.wcycle = 0
            self.status |= STATUS_READY
        else:
            self._drop_buffer()
            self._read_array()

    def _read_array(self) -> None:
        self.wcycle = 0
        self.cmd = CMD_READ_ARRAY

    def _drop_buffer(self) -> None:
        self.buffer_offset = None
        self.buffer = bytearray()

    def _command(self, offset: int, cmd: int) -> None:
        """The first cycle of a command (``wcycle`` 0)."""
        if cmd in (CMD_PROGRAM, CMD_PROGRAM_ALT, CMD_LOCK, CMD_QUERY):
            pass
        elif cmd == CMD_ERASE:
            if self.readonly:
                self.status |= STATUS_ERASE_ERROR
            else:
                self.written.erase(offset & ~(SECTOR_LEN - 1), SECTOR_LEN)
            self.status |= STATUS_READY
        elif cmd == CMD_WRITE_BUFFER:
            self.status |= STATUS_READY
        elif cmd in (CMD_READ_STATUS, CMD_READ_ID):
            self.cmd = cmd  # no second cycle
            return
        else:
            if cmd == CMD_CLEAR_STATUS:
                self.status = 0
            self._read_array()  # 0x00, 0xF0, 0xFF, 0x50, and any unknown command
            return
        self.wcycle = 1
        self.cmd = cmd

    def _second_cycle(self, offset: int, size: int, value: int) -> None:
        cmd, byte = self.cmd, value & 0xFF
        if cmd in (CMD_PROGRAM, CMD_PROGRAM_ALT):
            if self.readonly:
                self.status |= STATUS_PROGRAM_ERROR
            else:
                self._data_write(offset, size, value)
            self.status |= STATUS_READY
            self.wcycle = 0
        elif cmd == CMD_ERASE:  # the sector is already erased: 0xD0 only confirms
            if byte != CMD_CONFIRM:
                self._read_array()  # 0xFF, or an unimplemented sequence
                return
            self.wcycle = 0
            self.status |= STATUS_READY
        elif cmd == CMD_WRITE_BUFFER:
            self.counter = value & 0xFFFF  # the word count - 1, one chip's width
            self.wcycle = 2
            self.buffer_offset = offset & ~(WRITE_BLOCK - 1)
            self.buffer = bytearray(self.written.read(self.buffer_offset, WRITE_BLOCK))
        elif cmd == CMD_LOCK:
            if byte not in (CMD_CONFIRM, CMD_LOCK_SET):
                self._read_array()
                return
            self.wcycle = 0
            self.status |= STATUS_READY
        elif byte == CMD_RESET:  # query mode: only 0xFF leaves it
            self._read_array()

    def _buffer_data(self, offset: int, size: int, value: int) -> None:
        if self.readonly:
            self.status |= STATUS_PROGRAM_ERROR
        else:
            self._data_write(offset, size, value)
        self.status |= STATUS_READY
        if not self.counter:
            self.wcycle = 3
        self.counter = (self.counter - 1) & U64_MASK

    def _data_write(self, offset: int, size: int, value: int) -> None:
        data = value.to_bytes(size, "little")
        start = self.buffer_offset
        if start is None:
            self.written.write(offset, data)
        elif offset < start or offset + size > start + WRITE_BLOCK:
            self.status |= STATUS_PROGRAM_ERROR  # outside the buffer: dropped
        else:
            self.buffer[offset - start : offset - start + size] = data

    # -- state -----------------------------------------------------------------------------------
    def save(self) -> PflashCfi01State:
        return PflashCfi01State(self.written.freeze(), self.cmd, self.wcycle, self.status, self.counter,
                                self.buffer_offset, bytes(self.buffer))  # fmt: skip

    def load(self, state: PflashCfi01State, check: bool = True) -> None:
        if check:
            state = checked(state, PflashCfi01State)
            nodes = len(PageTable.empty(self.size).nodes)
            if len(state.written.nodes) != nodes:
                raise FieldError(f"PflashCfi01State.written: {len(state.written.nodes)} nodes, {self.name} has {nodes}")
            if state.buffer_offset is not None and state.buffer_offset + WRITE_BLOCK > self.size:
                raise FieldError(f"PflashCfi01State.buffer_offset: {state.buffer_offset:#x} past {self.name}")
        self.written.load(state.written)
        self.cmd, self.wcycle, self.status, self.counter = state.cmd, state.wcycle, state.status, state.counter
        self.buffer_offset, self.buffer = state.buffer_offset, bytearray(state.buffer)
