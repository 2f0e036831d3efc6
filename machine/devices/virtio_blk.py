"""virtio-blk (virtio 1.1 §5.2) over a :class:`~machine.overlay.DiskOverlay`: QEMU 7.2's ``virtio-blk-device``.

A :class:`VirtioBlk` is the :class:`~.virtio_mmio.VirtioBackend` behind one virtio-mmio slot. It presents what
QEMU 7.2 presents for ``-drive if=none,file=...,format=raw -device virtio-blk-device`` (measured on QEMU:
tests/guests/riscv/README.md, "virtioblk"): the same feature words, configuration space and used lengths.

Features. QEMU computes one host feature set per device, and it depends on the transport: on a legacy slot
virtio_blk_get_features clears ANY_LAYOUT and adds SCSI; on a modern one (VERSION_1 in the set) it keeps
neither, and the modern DeviceFeatures register also hides the "legacy features" (NOTIFY_ON_EMPTY,
ANY_LAYOUT). The transport here offers ``info().features`` as it is (legacy: the low word; modern: with
VERSION_1 added) and does not tell the backend which interface it is, so the board says it: ``legacy`` must
match the transport class (:class:`~.virtio_mmio.LegacyVirtioMmio` or :class:`~.virtio_mmio.VirtioMmio`).
Legacy: 0x31006ed4; modern: 0x30006e54 and 0x101 (VERSION_1, RING_RESET); a read-only drive adds RO.

Requests (``struct virtio_blk_outhdr`` in the readable buffers, then data, the status byte last): IN, OUT,
FLUSH, GET_ID, DISCARD, WRITE_ZEROES as QEMU 7.2's virtio_blk_handle_request decodes them (the BARRIER bit is
ignored; the type is matched with the OUT bit masked, so e.g. type 5 is a FLUSH). The used length is QEMU's
``in_len``: all the chain's writable bytes, whatever the outcome (a read of N bytes gives N + 1, a write or
FLUSH 1). DISCARD does not change the data, as QEMU with its default ``discard=ignore``. A malformed request
(no header or no status byte, a short discard header) raises VirtqueueError, which the transport turns into
DEVICE_NEEDS_RESET as QEMU's virtio_error does. All guest data moves through :class:`~.virtqueue.ChainIO`.

Completion is synchronous: :meth:`VirtioBlk.process` does the I/O and returns the used length. For blkreplay
(a completion taking effect at a logged icount) the request decoding (:meth:`VirtioBlk.decode`) is separate
from carrying it out (:meth:`VirtioBlk.perform`), so a deferring backend can return None from ``process``
while the completion is not due (the transport then leaves the chain on the available ring) and, when the
driver delivers the completion event, mark it due and call the transport's ``service(0)``, which hands the
same chain back to ``process``. That completes requests in ring order only; out-of-order completion (as QEMU's
thread pool may record) needs the transport to keep chains in flight (popped, not yet used) in its state.

State: the disk is the overlay's :class:`~machine.overlay.OverlayState` (immutable, sharing unwritten
pages): :meth:`VirtioBlk.save` / :meth:`VirtioBlk.load`. The only other state is the configuration's
``writeback`` byte (the driver may write it, as QEMU's virtio_blk_set_config): :class:`VirtioBlkState` via
:meth:`VirtioBlk.save_config` / :meth:`VirtioBlk.load_config`. Queue state belongs to the transport. For
snapshots (not wired yet), the machine should carry, per disk, the OverlayState beside RAM (a part of
MachineState like ``ram``: page-shared, encoded in files as the written 4 KiB pages with their offsets and
the image's SHA-256 to check against) and the VirtioBlkState beside the transport's VirtioMmioState.

Not modelled: QEMU's "auto writethrough" (at DRIVER_OK without CONFIG_WCE negotiated, QEMU sets the write
cache to whether FLUSH was negotiated; the backend does not see Status writes). The data is never cached
here, so only the ``writeback`` byte a driver reads back could differ.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from ..fields import Bool, spec
from ..overlay import SECTOR, DiskOverlay, OverlayState
from .base import checked
from .virtio_mmio import BackendInfo
from .virtqueue import VIRTIO_F_ANY_LAYOUT, ChainIO, VirtqueueError, offered_features

VIRTIO_ID_BLOCK = 2

# Feature bits (Linux include/uapi/linux/virtio_blk.h)
VIRTIO_BLK_F_SIZE_MAX = 1 << 1
VIRTIO_BLK_F_SEG_MAX = 1 << 2
VIRTIO_BLK_F_GEOMETRY = 1 << 4
VIRTIO_BLK_F_RO = 1 << 5
VIRTIO_BLK_F_BLK_SIZE = 1 << 6
VIRTIO_BLK_F_SCSI = 1 << 7  # legacy only
VIRTIO_BLK_F_FLUSH = 1 << 9  # legacy name: WCE
VIRTIO_BLK_F_TOPOLOGY = 1 << 10
VIRTIO_BLK_F_CONFIG_WCE = 1 << 11
VIRTIO_BLK_F_DISCARD = 1 << 13
VIRTIO_BLK_F_WRITE_ZEROES = 1 << 14

BLK_FEATURES = (
    VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_GEOMETRY | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_FLUSH
    | VIRTIO_BLK_F_TOPOLOGY | VIRTIO_BLK_F_CONFIG_WCE | VIRTIO_BLK_F_DISCARD | VIRTIO_BLK_F_WRITE_ZEROES
)  # fmt: skip
"""QEMU 7.2's default virtio-blk device features (both interfaces)."""
LEGACY_FEATURES = offered_features(BLK_FEATURES | VIRTIO_BLK_F_SCSI, legacy=True) & ~VIRTIO_F_ANY_LAYOUT  # 0x31006ed4
MODERN_FEATURES = offered_features(BLK_FEATURES, legacy=False)
"""0x101_30006e54 (the transport adds VERSION_1 itself too)."""

# Request types and statuses
VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_SCSI_CMD, VIRTIO_BLK_T_FLUSH = 0, 1, 2, 4
VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES = 8, 11, 13
VIRTIO_BLK_T_BARRIER = 0x8000_0000
VIRTIO_BLK_S_OK, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_UNSUPP = 0, 1, 2
VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 1
VIRTIO_BLK_ID_BYTES = 20

QUEUE_SIZE = 256  # QEMU's queue-size
SEG_MAX = QUEUE_SIZE - 2  # seg-max-adjust (default on since 5.0): queue-size - 2
MAX_DISCARD_SECTORS = MAX_WRITE_ZEROES_SECTORS = 0x3F_FFFF  # QEMU's defaults (BDRV_REQUEST_MAX_SECTORS-bound)

_OUTHDR = struct.Struct("<IIQ")  # type, ioprio (legacy: reserved), sector
_DWZ = struct.Struct("<QII")  # struct virtio_blk_discard_write_zeroes: sector, num_sectors, flags

# struct virtio_blk_config (virtio 1.1 §5.2.4), offsets: what QEMU 7.2 fills in without the later fields.
CONFIG_WRITEBACK = 0x20
CONFIG_SIZE = 0x3C
_CONFIG = struct.Struct("<QIIHBBIBBHIBBHIIIIIB3x")
assert _CONFIG.size == CONFIG_SIZE


@dataclass(frozen=True, slots=True)
class VirtioBlkState:
    """The backend's state besides the disk (an :class:`OverlayState`): the config's ``writeback`` byte."""

    VERSION: ClassVar[int] = 1
    writeback: bool = spec(Bool())


@dataclass(frozen=True, slots=True)
class Geometry:
    cylinders: int
    heads: int
    sectors: int


def guess_geometry(sector0: bytes, total_sectors: int) -> Geometry:
    """QEMU's hd_geometry_guess (hw/block/hd-geometry.c) for a drive without a geometry given.

    guess_disk_lchs: with an MBR signature, the first partition entry with sectors and an end head gives
    heads = end_head + 1 and sectors = end_sector & 63 (skipped if 0), cylinders = total / (heads * sectors)
    (skipped outside 1..16383); used as is when heads <= 16. Otherwise guess_chs_for_size: 16 heads,
    63 sectors, cylinders = total / 1008 clamped to 2..16383 (a 64 KiB disk: 2/16/63).
    """
    if len(sector0) >= SECTOR and sector0[510] == 0x55 and sector0[511] == 0xAA:
        for i in range(4):
            entry = sector0[0x1BE + 16 * i : 0x1BE + 16 * (i + 1)]
            end_head, end_sector = entry[5], entry[6]
            nr_sects = int.from_bytes(entry[12:16], "little")
            if not (nr_sects and end_head):
                continue
            heads, sectors = end_head + 1, end_sector & 63
            if sectors == 0:
                continue
            cylinders = total_sectors // (heads * sectors)
            if not 1 <= cylinders <= 16383:
                continue
            if heads <= 16:
                return Geometry(cylinders, heads, sectors)
            break  # heads > 16: a BIOS translation was active; a standard geometry is fine
    return Geometry(min(max(total_sectors // (16 * 63), 2), 16383), 16, 63)


@dataclass(frozen=True, slots=True)
class Request:
    """One decoded request: the header, where the data and the status byte are."""

    type: int
    sector: int
    data_out: int  # readable bytes after the header
    data_in: int  # writable bytes before the status byte
    used: int  # the used element's len (QEMU's in_len: every writable byte)


class VirtioBlk:
    """virtio-blk over ``disk``; ``legacy`` says which interface the transport presents (see the module)."""

    def __init__(self, disk: DiskOverlay, *, legacy: bool, serial: bytes = b"") -> None:
        self.disk = disk
        self.legacy = legacy
        self.serial = serial[:VIRTIO_BLK_ID_BYTES]  # QEMU's serial property ("" by default)
        self.writeback = True
        self.total_sectors = disk.size // SECTOR
        # QEMU guesses at realize, from the image as it is then (the overlay is still empty).
        self.geometry = guess_geometry(disk.image.read(0, SECTOR), self.total_sectors)
        features = LEGACY_FEATURES if legacy else MODERN_FEATURES
        if disk.readonly:
            features |= VIRTIO_BLK_F_RO
        self._info = BackendInfo(VIRTIO_ID_BLOCK, features, (QUEUE_SIZE,), CONFIG_SIZE)

    # -- VirtioBackend -----------------------------------------------------------------------------------
    def info(self) -> BackendInfo:
        return self._info

    def config_bytes(self) -> bytes:
        """The whole configuration space (virtio_blk_update_config)."""
        g = self.geometry
        return _CONFIG.pack(
            self.total_sectors, 0, SEG_MAX, g.cylinders, g.heads, g.sectors, SECTOR,
            0, 0, 0, 0,  # topology: physical_block_exp, alignment_offset, min_io_size, opt_io_size
            int(self.writeback), 0, 1,  # writeback, unused0, num_queues
            MAX_DISCARD_SECTORS, 1, 1,  # max_discard_seg, discard_sector_alignment (blk_size / 512)
            MAX_WRITE_ZEROES_SECTORS, 1, 1,  # max_write_zeroes_seg, write_zeroes_may_unmap
        )  # fmt: skip

    def read_config(self, offset: int, size: int) -> int:
        return int.from_bytes(self.config_bytes()[offset : offset + size], "little")

    def write_config(self, offset: int, size: int, value: int) -> None:
        # QEMU's virtio_blk_set_config takes only wce from the config written; the rest is regenerated.
        if offset <= CONFIG_WRITEBACK < offset + size:
            self.writeback = bool(value >> (8 * (CONFIG_WRITEBACK - offset)) & 0xFF)

    def reset(self) -> None:
        """Nothing to forget: the disk and the write cache setting outlive a reset, as on QEMU."""

    def process(self, queue: int, request: ChainIO) -> int | None:
        req = self.decode(request)
        self.perform(req, request)
        return req.used

    # -- requests ----------------------------------------------------------------------------------------
    def decode(self, io: ChainIO) -> Request:
        """The request's header and layout (VirtqueueError, as QEMU's virtio_error, if it has none)."""
        readable, writable = io.chain.readable_length, io.chain.writable_length
        if not io.chain.readable or not io.chain.writable:
            raise VirtqueueError("virtio-blk missing headers")
        if readable < _OUTHDR.size:
            raise VirtqueueError("virtio-blk request outhdr too short")
        type_, _ioprio, sector = _OUTHDR.unpack(io.read(0, _OUTHDR.size))
        return Request(type_, sector, readable - _OUTHDR.size, writable - 1, writable)

    def perform(self, req: Request, io: ChainIO) -> None:
        """Carry the request out and write its status byte (the last writable byte)."""
        handler = _HANDLERS.get(req.type & ~(VIRTIO_BLK_T_OUT | VIRTIO_BLK_T_BARRIER), VirtioBlk._unsupported)
        status = handler(self, req, io)
        io.write(bytes((status,)), req.data_in)

    def _range_ok(self, sector: int, size: int) -> bool:
        """virtio_blk_sect_range_ok: whole 512-byte blocks inside the disk."""
        return size % SECTOR == 0 and sector <= self.total_sectors and size // SECTOR <= self.total_sectors - sector

    def _read_write(self, req: Request, io: ChainIO) -> int:
        if req.type & VIRTIO_BLK_T_OUT:
            if not self._range_ok(req.sector, req.data_out) or self.disk.readonly:
                return VIRTIO_BLK_S_IOERR
            if req.data_out:
                self.disk.write(req.sector * SECTOR, io.read(_OUTHDR.size, req.data_out))
            return VIRTIO_BLK_S_OK
        if not self._range_ok(req.sector, req.data_in):
            return VIRTIO_BLK_S_IOERR
        if req.data_in:
            io.write(self.disk.read(req.sector * SECTOR, req.data_in))
        return VIRTIO_BLK_S_OK

    def _flush(self, req: Request, io: ChainIO) -> int:
        return VIRTIO_BLK_S_OK  # the overlay is the disk: nothing is cached

    def _get_id(self, req: Request, io: ChainIO) -> int:
        # QEMU: the serial with its NUL only when shorter than the buffer (20 bytes at most); with the default
        # empty serial that is one zero byte, the rest of the buffer left as it was.
        size = min(len(self.serial) + 1, req.data_in, VIRTIO_BLK_ID_BYTES)
        io.write((self.serial + b"\0")[:size])
        return VIRTIO_BLK_S_OK

    def _scsi(self, req: Request, io: ChainIO) -> int:
        # QEMU 7.2 (SCSI passthrough removed; the feature is still offered on legacy): IOERR without the
        # segments a SCSI request has, else UNSUPP, and virtio_scsi_inhdr.errors (the second-to-last writable
        # buffer) set to 255. Recalled from QEMU's source, not measured.
        chain = io.chain
        if len(chain.readable) < 2 or len(chain.writable) < 3:
            return VIRTIO_BLK_S_IOERR
        errors_at = sum(s.length for s in chain.writable[:-2])
        io.write(struct.pack("<I", 255)[: chain.writable[-2].length], errors_at)
        return VIRTIO_BLK_S_UNSUPP

    def _discard_write_zeroes(self, req: Request, io: ChainIO) -> int:
        is_write_zeroes = (req.type & ~VIRTIO_BLK_T_BARRIER) == VIRTIO_BLK_T_WRITE_ZEROES
        if not req.type & VIRTIO_BLK_T_OUT or req.data_out > _DWZ.size:  # max_*_seg is 1
            return VIRTIO_BLK_S_UNSUPP
        if req.data_out < _DWZ.size:
            raise VirtqueueError("virtio-blk discard/write_zeroes header too short")
        sector, num_sectors, flags = _DWZ.unpack(io.read(_OUTHDR.size, _DWZ.size))
        limit = MAX_WRITE_ZEROES_SECTORS if is_write_zeroes else MAX_DISCARD_SECTORS
        if num_sectors > limit or not self._range_ok(sector, num_sectors * SECTOR):
            return VIRTIO_BLK_S_IOERR
        if flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP:
            return VIRTIO_BLK_S_UNSUPP
        if not is_write_zeroes:
            # Discard with UNMAP is UNSUPP (spec); else QEMU's discard=ignore: nothing changes, even read-only.
            return VIRTIO_BLK_S_UNSUPP if flags else VIRTIO_BLK_S_OK
        if self.disk.readonly:
            return VIRTIO_BLK_S_IOERR
        if num_sectors:
            self.disk.write(sector * SECTOR, bytes(num_sectors * SECTOR))  # UNMAP or not: reads give zeros
        return VIRTIO_BLK_S_OK

    def _unsupported(self, req: Request, io: ChainIO) -> int:
        return VIRTIO_BLK_S_UNSUPP

    # -- state -------------------------------------------------------------------------------------------
    def save(self) -> OverlayState:
        """The disk now (pages written since the last save are copied; the others are shared)."""
        return self.disk.save()

    def load(self, state: OverlayState) -> None:
        self.disk.load(state)

    def save_config(self) -> VirtioBlkState:
        return VirtioBlkState(self.writeback)

    def load_config(self, state: VirtioBlkState, check: bool = True) -> None:
        self.writeback = (checked(state, VirtioBlkState) if check else state).writeback


_HANDLERS = {
    VIRTIO_BLK_T_IN: VirtioBlk._read_write,  # IN and OUT: the OUT bit is masked
    VIRTIO_BLK_T_SCSI_CMD: VirtioBlk._scsi,
    VIRTIO_BLK_T_FLUSH: VirtioBlk._flush,
    VIRTIO_BLK_T_GET_ID: VirtioBlk._get_id,
    VIRTIO_BLK_T_DISCARD & ~VIRTIO_BLK_T_OUT: VirtioBlk._discard_write_zeroes,
    VIRTIO_BLK_T_WRITE_ZEROES & ~VIRTIO_BLK_T_OUT: VirtioBlk._discard_write_zeroes,
}
"""QEMU's switch on ``type & ~(OUT | BARRIER)``; anything else is UNSUPP."""
