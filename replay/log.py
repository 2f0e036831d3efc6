"""The recording's container format (versions 3 to 6): a header, then checksummed zstandard chunks.

Layout (all integers little-endian)::

    magic "CHRONREC" | u32 format version | u32 header length (<= 64 KiB) | header (JSON, UTF-8)
    | u32 crc32(header)
    chunk*:  "CK" | u8 chunk kind | u32 payload length | u32 raw length | u32 crc32(payload)
             | u64 first icount | u64 last icount | payload (zstandard-compressed, raw length bytes inflated)

Chunk kinds: 1 = snapshot (``varint log position | machine state`` in :mod:`machine.state`'s encoding),
2 = events (``varint prefix icount | records``), 3 = the execution index (``varint first entry's start icount
| entries``, :mod:`replay.code_index`; in versions 4 to 6, at most one, stamped first = last = the end of
history and written just before the events chunk holding the End event). Version 4 is version 3 plus that
chunk: a writer uses 4 only for a file that carries an index, so files without one stay readable by readers
of version 3 only, and those refuse a version 4 file by its version. Version 6 is version 5 plus two chunk kinds,
written only by a file that carries names (``monitor bookmark``, ``monitor snapshot save``):
4 = bookmarks (``varint count | entries``, :mod:`replay.bookmarks`: every name, with its icount), at most one,
and 5 = a named snapshot (``varint log position | varint name length | name | varint icount | machine state``),
one per named snapshot; all stamped first = last = the end of history and written, bookmarks first, just before
the events chunk holding the End event (after the index). An events chunk holds records
``varint kind | varint icount delta | kind-specific fields``, the first delta relative to the prefix icount;
each kind's encoding lives only in :data:`CODECS`. Chunks are written whole and flushed, so a recorder killed
at any moment leaves a file whose complete chunks all read back; :class:`LogReader` stops at the first
incomplete or corrupt chunk and says where.

Every file is treated as hostile: lengths are checked against the file's size and the header's
``max_chunk_bytes`` before anything is read or allocated, a chunk inflates to exactly its declared raw length
or is refused (zstandard's ``max_output_size``: no decompression bomb), varints are at most 10 bytes, icounts
never go backwards and stay below :data:`MAX_ICOUNT`. Named snapshots inflate at most to
:attr:`LogReader.named_budget` bytes in all: later ones are read and checked but not inflated (``Chunk.skipped``).
"""

from __future__ import annotations

import enum
import io
import json
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from machine.results import RunKind

from .events import (
    KIND_OF,
    AudioInput,
    AudioOutput,
    ClockWarp,
    End,
    Event,
    EventKind,
    HostClock,
    IoCompletion,
    NetFrame,
    UartInput,
    Verify,
)

MAGIC = b"CHRONREC"
# 5: drives and the virtio interface in the header, device completion events, machine states with virtio slots
# and disks (state format 2), an execution index chunk where the timeline has one; written by every writer now.
FORMAT_VERSION = 5
NAMED_FORMAT_VERSION = 6  # 6: 5 plus bookmarks and named snapshots (chunk kinds 4 and 5), only in files that have some
INDEXED_FORMAT_VERSION = 4  # 4: 3 plus an execution index chunk (read, no longer written)
BASE_FORMAT_VERSION = 3  # 3: explicit machine state, bounded chunks, End carries RunKind; 2: exact host-clock icounts
READABLE_VERSIONS = (BASE_FORMAT_VERSION, INDEXED_FORMAT_VERSION, FORMAT_VERSION, NAMED_FORMAT_VERSION)
READERS_OF = {1: "chronicorn 0.1.0 before host-clock events (commit 97abf55)", 2: "chronicorn 0.1.0 (commit 3ceba3e)"}
MAX_HEADER_BYTES = 64 << 10
MAX_ICOUNT = 1 << 62
HARD_CHUNK_LIMIT = (2 << 30) + (16 << 20)  # the largest RAM a machine has, plus room for the rest of a state
EVENTS_CHUNK_LIMIT = 4 << 20  # a writer's events chunk holds 4096 events of at most a few dozen bytes
CODE_INDEX_CHUNK_LIMIT = 64 << 20  # a timeline's index holds 32 MiB; its encoding takes at most ~1.25x that
BOOKMARKS_CHUNK_LIMIT = 1 << 20  # at most MAX_NAMES names of at most MAX_NAME_BYTES bytes, with their numbers
EVENTS_INFLATION = 64  # events and the index inflate to at most this many times the file size (+16 MiB) in all
_CHUNK_HEAD = struct.Struct("<2sBIIIQQ")
_MAX_VARINT_BYTES = 10


class ChunkKind(enum.IntEnum):
    SNAPSHOT = 1
    EVENTS = 2
    CODE_INDEX = 3  # format versions 4 to 6
    BOOKMARKS = 4  # format version 6 only
    NAMED_SNAPSHOT = 5  # format version 6 only


class RecordingError(Exception):
    """The file is not a usable recording: a clear, one-line reason."""


# -- varints and fields ---------------------------------------------------------------
def put_varint(out: bytearray, value: int) -> None:
    """Append ``value`` (unsigned) as a little-endian base-128 varint."""
    if value < 0:
        raise ValueError("varints are unsigned")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def get_varint(buf: memoryview, pos: int, what: str = "event record") -> tuple[int, int]:
    """The varint at ``pos`` and the position after it (RecordingError naming ``what`` if cut or over-long)."""
    value = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(buf):
            raise RecordingError(f"{what} cut short")
        byte = buf[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise RecordingError(f"{what} has an over-long number")


def _put_bytes(out: bytearray, data: bytes) -> None:
    put_varint(out, len(data))
    out += data


def _get_bytes(buf: memoryview, pos: int) -> tuple[bytes, int]:
    length, pos = get_varint(buf, pos)
    if length > len(buf) - pos:
        raise RecordingError("event record cut short")
    return bytes(buf[pos : pos + length]), pos + length


@dataclass(frozen=True, slots=True)
class Codec:
    """How one event kind's fields (after kind and icount) are written and read."""

    encode: Callable[[bytearray, Event], None]
    decode: Callable[[int, memoryview, int], tuple[Event, int]]


def _decode_uart(icount: int, buf: memoryview, pos: int) -> tuple[Event, int]:
    data, pos = _get_bytes(buf, pos)
    if not data:
        raise RecordingError("empty UART input event")
    return UartInput(icount, data), pos


def _decode_int(cls: type) -> Callable[[int, memoryview, int], tuple[Event, int]]:
    def decode(icount: int, buf: memoryview, pos: int) -> tuple[Event, int]:
        value, pos = get_varint(buf, pos)
        if value >= 1 << 64:
            raise RecordingError(f"{cls.__name__} value out of range")
        return cls(icount, value), pos

    return decode


def _decode_io(icount: int, buf: memoryview, pos: int) -> tuple[Event, int]:
    slots, pos = get_varint(buf, pos)
    if not 0 < slots < 1 << 32:
        raise RecordingError(f"device completion for slots {slots:#x}: not a set of virtio slots 0..31")
    return IoCompletion(icount, slots), pos


MAX_FRAME_BYTES = 65536 + 64  # the largest Ethernet frame a network hands the guest, with room to spare


def _encode_frame(out: bytearray, event: NetFrame) -> None:
    put_varint(out, event.slot)
    _put_bytes(out, event.data)


def _decode_frame(icount: int, buf: memoryview, pos: int) -> tuple[Event, int]:
    slot, pos = get_varint(buf, pos)
    data, pos = _get_bytes(buf, pos)
    if slot > 7 or not 0 < len(data) <= MAX_FRAME_BYTES:
        raise RecordingError(f"network frame for slot {slot} of {len(data)} bytes: no such slot or frame size")
    return NetFrame(icount, slot, data), pos


MAX_AUDIO_BYTES = 1 << 20  # one capture or playback buffer (the device's queues hold far less)
AUDIO_RATES = (8000, 16000, 44100, 48000)


def _encode_audio_in(out: bytearray, event: AudioInput) -> None:
    for value in (event.slot, event.rate, event.channels):
        put_varint(out, value)
    _put_bytes(out, event.data)


def _audio_format(buf: memoryview, pos: int) -> tuple[int, int, int, int]:
    slot, pos = get_varint(buf, pos)
    rate, pos = get_varint(buf, pos)
    channels, pos = get_varint(buf, pos)
    if slot > 7 or rate not in AUDIO_RATES or channels not in (1, 2):
        raise RecordingError(f"audio for slot {slot} at {rate} Hz, {channels} channels: no such slot or format")
    return slot, rate, channels, pos


def _decode_audio_in(icount: int, buf: memoryview, pos: int) -> tuple[Event, int]:
    slot, rate, channels, pos = _audio_format(buf, pos)
    data, pos = _get_bytes(buf, pos)
    if not 0 < len(data) <= MAX_AUDIO_BYTES or len(data) % (2 * channels):
        raise RecordingError(f"captured audio of {len(data)} bytes: not whole frames of a buffer")
    return AudioInput(icount, slot, rate, channels, data), pos


def _encode_audio_out(out: bytearray, event: AudioOutput) -> None:
    for value in (event.slot, event.rate, event.channels, event.nbytes):
        put_varint(out, value)


def _decode_audio_out(icount: int, buf: memoryview, pos: int) -> tuple[Event, int]:
    slot, rate, channels, pos = _audio_format(buf, pos)
    nbytes, pos = get_varint(buf, pos)
    if not 0 < nbytes <= MAX_AUDIO_BYTES:
        raise RecordingError(f"played audio of {nbytes} bytes: not a buffer")
    return AudioOutput(icount, slot, rate, channels, nbytes), pos


VERIFY_DIGEST_BYTES = 16


def _decode_verify(icount: int, buf: memoryview, pos: int) -> tuple[Event, int]:
    digest, pos = _get_bytes(buf, pos)
    if len(digest) != VERIFY_DIGEST_BYTES:
        raise RecordingError(f"verification digest of {len(digest)} bytes (expected {VERIFY_DIGEST_BYTES})")
    return Verify(icount, digest), pos


_END_KINDS = {RunKind.EXITED, RunKind.INTERRUPTED, RunKind.LIMIT, RunKind.RESET, RunKind.IDLE_FOREVER, RunKind.FAULT}


def _decode_end(icount: int, buf: memoryview, pos: int) -> tuple[Event, int]:
    value, pos = get_varint(buf, pos)
    code, pos = get_varint(buf, pos)
    if value not in {int(k) for k in _END_KINDS}:
        raise RecordingError(f"unknown end reason {value}")
    if code > 0xFFFFFFFF:
        raise RecordingError("exit code out of range")
    return End(icount, RunKind(value), code), pos


CODECS: dict[EventKind, Codec] = {
    EventKind.UART_INPUT: Codec(lambda out, e: _put_bytes(out, e.data), _decode_uart),  # type: ignore[union-attr]
    EventKind.HOST_CLOCK: Codec(lambda out, e: put_varint(out, e.ns), _decode_int(HostClock)),  # type: ignore[union-attr]
    EventKind.CLOCK_WARP: Codec(lambda out, e: put_varint(out, e.warp_ns), _decode_int(ClockWarp)),  # type: ignore[union-attr]
    EventKind.IO_COMPLETION: Codec(lambda out, e: put_varint(out, e.slots), _decode_io),  # type: ignore[union-attr]
    EventKind.NET_FRAME: Codec(_encode_frame, _decode_frame),  # type: ignore[arg-type]
    EventKind.AUDIO_INPUT: Codec(_encode_audio_in, _decode_audio_in),  # type: ignore[arg-type]
    EventKind.AUDIO_OUTPUT: Codec(_encode_audio_out, _decode_audio_out),  # type: ignore[arg-type]
    EventKind.VERIFY: Codec(lambda out, e: _put_bytes(out, e.digest), _decode_verify),  # type: ignore[union-attr]
    EventKind.END: Codec(
        lambda out, e: (put_varint(out, int(e.kind)), put_varint(out, e.code)),  # type: ignore[union-attr, func-returns-value]
        _decode_end,
    ),
}  # fmt: skip


def encode_events(events: list[Event], previous_icount: int = 0) -> bytes:
    """Records for ``events`` (icounts must not decrease)."""
    out = bytearray()
    last = previous_icount
    for event in events:
        kind = KIND_OF[type(event)]
        if event.icount < last:
            raise ValueError(f"event at icount {event.icount} after one at {last}")
        put_varint(out, int(kind))
        put_varint(out, event.icount - last)
        CODECS[kind].encode(out, event)
        last = event.icount
    return bytes(out)


def decode_events(raw: bytes | memoryview, previous_icount: int = 0, last_icount: int = MAX_ICOUNT) -> list[Event]:
    """The events of one chunk's payload; every icount must lie in ``[previous_icount, last_icount]``."""
    buf = memoryview(raw)
    pos, last, events = 0, previous_icount, []
    while pos < len(buf):
        kind_value, pos = get_varint(buf, pos)
        delta, pos = get_varint(buf, pos)
        try:
            codec = CODECS[EventKind(kind_value)]
        except ValueError:
            raise RecordingError(f"unknown event kind {kind_value} (written by a newer chronicorn?)") from None
        last += delta
        if last > last_icount:
            raise RecordingError(f"event at icount {last} lies past its chunk's last icount {last_icount}")
        event, pos = codec.decode(last, buf, pos)
        events.append(event)
    return events


# -- writing -------------------------------------------------------------------------
class LogWriter:
    """Writes a recording incrementally; every chunk is complete on disk once written."""

    def __init__(self, stream: BinaryIO, header: dict[str, object], version: int = FORMAT_VERSION) -> None:
        """``version``: :data:`INDEXED_FORMAT_VERSION` for a file that will carry an execution index."""
        if version not in READABLE_VERSIONS:
            raise ValueError(f"cannot write format version {version}")
        self.version = version
        self._stream = stream
        self._compressor = zstandard.ZstdCompressor(level=3, write_content_size=True)
        body = json.dumps(header, sort_keys=True).encode()
        if len(body) > MAX_HEADER_BYTES:
            raise ValueError("recording header too large")
        stream.write(MAGIC + struct.pack("<II", version, len(body)) + body + struct.pack("<I", zlib.crc32(body)))
        self._last_icount = 0
        stream.flush()

    @property
    def last_icount(self) -> int:
        """The icount of the last event written."""
        return self._last_icount

    def write_snapshot(self, icount: int, log_position: int, state: bytes) -> None:
        """A machine state (``machine.state.encode_state``) and the index of the next input event there."""
        self._chunk(ChunkKind.SNAPSHOT, icount, icount, log_position, state)

    def write_events(self, events: list[Event]) -> None:
        if not events:
            return
        raw = encode_events(events, self._last_icount)
        first, last = events[0].icount, events[-1].icount
        self._chunk(ChunkKind.EVENTS, first, last, self._last_icount, raw)
        self._last_icount = last

    def write_code_index(self, icount: int, start: int, entries: bytes) -> None:
        """The execution index (:func:`replay.code_index.encode_entries` of entries from ``start`` on), stamped
        at ``icount``, the end of history (version 4 files only)."""
        if self.version < INDEXED_FORMAT_VERSION:
            raise ValueError(f"a format version {self.version} file carries no execution index")
        self._chunk(ChunkKind.CODE_INDEX, icount, icount, start, entries)

    def write_bookmarks(self, icount: int, count: int, entries: bytes) -> None:
        """The names (:func:`replay.bookmarks.encode_names`: ``count`` entries), stamped at ``icount``, the end of
        history (version 6 files only)."""
        self._named_chunk(ChunkKind.BOOKMARKS, icount, count, entries)

    def write_named_snapshot(self, icount: int, log_position: int, data: bytes) -> None:
        """One named snapshot (:func:`replay.bookmarks.encode_named_state`), stamped at ``icount``, the end of
        history (version 6 files only)."""
        self._named_chunk(ChunkKind.NAMED_SNAPSHOT, icount, log_position, data)

    def _named_chunk(self, kind: ChunkKind, icount: int, prefix: int, data: bytes) -> None:
        if self.version < NAMED_FORMAT_VERSION:
            raise ValueError(f"a format version {self.version} file carries no bookmarks or named snapshots")
        self._chunk(kind, icount, icount, prefix, data)

    def _chunk(self, kind: ChunkKind, first: int, last: int, prefix: int, data: bytes) -> None:
        # The icount the first delta is relative to travels in the chunk, so chunks decode independently.
        raw = bytearray()
        put_varint(raw, prefix)
        raw += data
        payload = self._compressor.compress(bytes(raw))
        head = _CHUNK_HEAD.pack(b"CK", int(kind), len(payload), len(raw), zlib.crc32(payload), first, last)
        self._stream.write(head + payload)
        self._stream.flush()


# -- reading -------------------------------------------------------------------------
_KINDS_OF = {
    BASE_FORMAT_VERSION: (1, 2),
    INDEXED_FORMAT_VERSION: (1, 2, 3),
    FORMAT_VERSION: (1, 2, 3),
    NAMED_FORMAT_VERSION: (1, 2, 3, 4, 5),
}  # chunk kinds each version may hold
_KIND_LIMITS = {ChunkKind.EVENTS: EVENTS_CHUNK_LIMIT, ChunkKind.CODE_INDEX: CODE_INDEX_CHUNK_LIMIT,
                ChunkKind.BOOKMARKS: BOOKMARKS_CHUNK_LIMIT}  # fmt: skip
_STATE_KINDS = (ChunkKind.SNAPSHOT, ChunkKind.NAMED_SNAPSHOT)  # bounded by the RAM size, not the events budget
_STAMPED_KINDS = (ChunkKind.CODE_INDEX, ChunkKind.BOOKMARKS, ChunkKind.NAMED_SNAPSHOT)  # first = last
_KIND_NAMES = {ChunkKind.CODE_INDEX: "execution index", ChunkKind.BOOKMARKS: "bookmarks",
               ChunkKind.NAMED_SNAPSHOT: "named snapshot"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Chunk:
    kind: ChunkKind
    first_icount: int
    last_icount: int
    prefix: int  # events: the icount the first delta is relative to; snapshots: the log position;
    # the execution index: its first entry's start icount
    data: memoryview  # the inflated payload after the u64 prefix
    offset: int  # file offset of the chunk
    skipped: bool = False  # a named snapshot past LogReader.named_budget: checked, not inflated (data empty)


@dataclass(frozen=True, slots=True)
class Damage:
    """Where and why reading stopped early (None when the file ended cleanly)."""

    offset: int
    reason: str


def _stream_size(stream: BinaryIO) -> int | None:
    try:
        return os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        if isinstance(stream, io.BytesIO):
            return len(stream.getbuffer())
        return None


class LogReader:
    """Reads a recording: the header, then chunks up to the end or the first damaged one.

    ``chunk_limit`` bounds the inflated size of any chunk (the caller derives it from the header's RAM size);
    chunks beyond it count as damage. ``named_budget`` bounds the named snapshots' inflated bytes in all (the
    caller derives it from the RAM size too): a named snapshot beyond it is yielded ``skipped``, not inflated.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._size = _stream_size(stream)
        self.header = self._read_header()
        self.damage: Damage | None = None
        self.chunk_limit = HARD_CHUNK_LIMIT
        self.named_budget = HARD_CHUNK_LIMIT
        self._events_budget = (16 << 20) + EVENTS_INFLATION * (self._size if self._size is not None else 1 << 20)
        self._decompressor = zstandard.ZstdDecompressor()

    def _read_header(self) -> dict[str, object]:
        head = self._stream.read(len(MAGIC) + 8)
        if len(head) < len(MAGIC) or head[: len(MAGIC)] != MAGIC:
            raise RecordingError("not a chronicorn recording (bad magic)")
        if len(head) < len(MAGIC) + 8:
            raise RecordingError("recording is truncated inside its header")
        version, length = struct.unpack("<II", head[len(MAGIC) :])
        if version not in READABLE_VERSIONS:
            reader = READERS_OF.get(version)
            hint = f"; {reader} reads it" if reader else ""
            raise RecordingError(
                f"recording format version {version} is not supported (this chronicorn reads "
                f"{', '.join(map(str, READABLE_VERSIONS))}){hint}"
            )
        self.version = version
        if length > MAX_HEADER_BYTES:
            raise RecordingError(f"recording header of {length} bytes is implausibly large")
        body = self._stream.read(length)
        crc = self._stream.read(4)
        if len(body) < length or len(crc) < 4:
            raise RecordingError("recording is truncated inside its header")
        if struct.unpack("<I", crc)[0] != zlib.crc32(body):
            raise RecordingError("recording header is corrupt (checksum mismatch)")
        try:
            header = json.loads(body)
        except (ValueError, RecursionError):
            raise RecordingError("recording header is not valid JSON") from None
        if not isinstance(header, dict):
            raise RecordingError("recording header is not an object")
        return header

    def _stop(self, offset: int, reason: str) -> None:
        self.damage = Damage(offset, reason)

    def chunks(self) -> Iterator[Chunk]:
        """Complete, intact chunks in order; sets :attr:`damage` when it stops early."""
        previous_last = 0
        while True:
            offset = self._stream.tell()
            head = self._stream.read(_CHUNK_HEAD.size)
            if not head:
                return
            if len(head) < _CHUNK_HEAD.size:
                return self._stop(offset, "the file ends inside a chunk header (recorder killed?)")
            tag, kind, length, raw_length, crc, first, last = _CHUNK_HEAD.unpack(head)
            if tag != b"CK" or kind not in _KINDS_OF[self.version]:
                return self._stop(offset, "bad chunk header")
            if not previous_last <= first <= last < MAX_ICOUNT:
                return self._stop(offset, f"chunk icounts {first}..{last} out of order")
            limit = min(self.chunk_limit, _KIND_LIMITS.get(kind, self.chunk_limit))
            if not 1 <= raw_length <= limit:
                return self._stop(offset, f"chunk of {raw_length} bytes: outside 1..{limit} bytes")
            if kind not in _STATE_KINDS:
                self._events_budget -= raw_length
                if self._events_budget < 0:
                    return self._stop(offset, "events inflate far beyond the file's size (a decompression bomb?)")
            if length > raw_length + 1024 + raw_length // 64:  # zstandard never grows data that much
                return self._stop(offset, f"chunk of {length} compressed bytes for {raw_length} bytes of data")
            if self._size is not None and length > self._size - offset - _CHUNK_HEAD.size:
                return self._stop(offset, "the file ends inside a chunk (recorder killed?)")
            payload = self._stream.read(length)
            if len(payload) < length:
                return self._stop(offset, "the file ends inside a chunk (recorder killed?)")
            if zlib.crc32(payload) != crc:
                return self._stop(offset, "chunk checksum mismatch (corrupt file)")
            if kind in _STAMPED_KINDS and first != last:
                return self._stop(offset, f"{_KIND_NAMES[kind]} chunk not stamped at one icount")
            if kind == ChunkKind.NAMED_SNAPSHOT:
                if raw_length > self.named_budget:  # read and checked, but not inflated: memory stays bounded
                    previous_last = last
                    yield Chunk(ChunkKind(kind), first, last, 0, memoryview(b""), offset, skipped=True)
                    continue
                self.named_budget -= raw_length
            raw = self._inflate(payload, raw_length)
            if raw is None:
                return self._stop(offset, "chunk does not inflate to its declared size")
            try:
                prefix, start = get_varint(memoryview(raw), 0)
            except RecordingError as exc:
                return self._stop(offset, str(exc))
            if kind == ChunkKind.EVENTS and prefix > first:
                return self._stop(offset, "events chunk starts before its own prefix icount")
            previous_last = last
            yield Chunk(ChunkKind(kind), first, last, prefix, memoryview(raw)[start:], offset)

    def _inflate(self, payload: bytes, raw_length: int) -> bytes | None:
        try:
            declared = zstandard.frame_content_size(payload)
            if declared not in (-1, raw_length):  # -1: unknown, then max_output_size bounds the buffer
                return None
            raw = self._decompressor.decompress(payload, max_output_size=raw_length)
        except (zstandard.ZstdError, MemoryError):
            return None
        return raw if len(raw) == raw_length else None

    def events(self) -> Iterator[Event]:
        """Every event of every intact events chunk."""
        for chunk in self.chunks():
            if chunk.kind == ChunkKind.EVENTS:
                try:
                    events = decode_events(chunk.data, chunk.prefix, chunk.last_icount)
                except RecordingError as exc:
                    self._stop(chunk.offset, str(exc))
                    return
                yield from events


def read_all(data: bytes) -> tuple[dict[str, object], list[Chunk], Damage | None]:
    """Convenience for tests: header, intact chunks, damage."""
    reader = LogReader(io.BytesIO(data))
    chunks = list(reader.chunks())
    return reader.header, chunks, reader.damage
