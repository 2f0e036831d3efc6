"""The recording's container format: a header, then checksummed zstandard chunks.

Layout (all integers little-endian)::

    magic "CHRONREC" | u32 format version | u32 header length | header (JSON, UTF-8) | u32 crc32(header)
    chunk*:  "CK" | u8 chunk kind | u32 payload length | u32 crc32(payload) | u64 first icount
             | u64 last icount | payload (zstandard-compressed)

Chunk kinds: 1 = initial snapshot (opaque bytes), 2 = events. An events chunk
holds records ``varint kind | varint icount delta | kind-specific fields``;
each kind's encoding lives only in :data:`CODECS`. Chunks are written whole
and flushed, so a recorder killed at any moment leaves a file whose complete
chunks all read back; :class:`LogReader` stops at the first incomplete or
corrupt chunk and says where.
"""

from __future__ import annotations

import enum
import io
import json
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from .events import KIND_OF, ClockWarp, End, EndReason, Event, EventKind, HostClock, UartInput, Verify

MAGIC = b"CHRONREC"
FORMAT_VERSION = 2  # 2: host-clock events stamped with the reading instruction's exact icount
_CHUNK_HEAD = struct.Struct("<2sBIIQQ")


class ChunkKind(enum.IntEnum):
    SNAPSHOT = 1
    EVENTS = 2


class RecordingError(Exception):
    """The file is not a usable recording: a clear, one-line reason."""


# -- varints and fields ---------------------------------------------------------------
def _put_varint(out: bytearray, value: int) -> None:
    if value < 0:
        raise ValueError("varints are unsigned")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _get_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise RecordingError("event record cut short")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _put_bytes(out: bytearray, data: bytes) -> None:
    _put_varint(out, len(data))
    out += data


def _get_bytes(buf: memoryview, pos: int) -> tuple[bytes, int]:
    length, pos = _get_varint(buf, pos)
    if pos + length > len(buf):
        raise RecordingError("event record cut short")
    return bytes(buf[pos : pos + length]), pos + length


@dataclass(frozen=True, slots=True)
class Codec:
    """How one event kind's fields (after kind and icount) are written and read."""

    encode: Callable[[bytearray, Event], None]
    decode: Callable[[int, memoryview, int], tuple[Event, int]]


def _decode_uart(icount: int, buf: memoryview, pos: int) -> tuple[Event, int]:
    data, pos = _get_bytes(buf, pos)
    return UartInput(icount, data), pos


def _decode_int(cls: type) -> Callable[[int, memoryview, int], tuple[Event, int]]:
    def decode(icount: int, buf: memoryview, pos: int) -> tuple[Event, int]:
        value, pos = _get_varint(buf, pos)
        return cls(icount, value), pos

    return decode


def _decode_verify(icount: int, buf: memoryview, pos: int) -> tuple[Event, int]:
    digest, pos = _get_bytes(buf, pos)
    return Verify(icount, digest), pos


def _decode_end(icount: int, buf: memoryview, pos: int) -> tuple[Event, int]:
    reason, pos = _get_varint(buf, pos)
    code, pos = _get_varint(buf, pos)
    try:
        return End(icount, EndReason(reason), code), pos
    except ValueError:
        raise RecordingError(f"unknown end reason {reason}") from None


CODECS: dict[EventKind, Codec] = {
    EventKind.UART_INPUT: Codec(lambda out, e: _put_bytes(out, e.data), _decode_uart),  # type: ignore[union-attr]
    EventKind.HOST_CLOCK: Codec(lambda out, e: _put_varint(out, e.ns), _decode_int(HostClock)),  # type: ignore[union-attr]
    EventKind.CLOCK_WARP: Codec(lambda out, e: _put_varint(out, e.warp_ns), _decode_int(ClockWarp)),  # type: ignore[union-attr]
    EventKind.VERIFY: Codec(lambda out, e: _put_bytes(out, e.digest), _decode_verify),  # type: ignore[union-attr]
    EventKind.END: Codec(
        lambda out, e: (_put_varint(out, int(e.reason)), _put_varint(out, e.code)),  # type: ignore[union-attr, func-returns-value]
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
        _put_varint(out, int(kind))
        _put_varint(out, event.icount - last)
        CODECS[kind].encode(out, event)
        last = event.icount
    return bytes(out)


def decode_events(raw: bytes, previous_icount: int = 0) -> list[Event]:
    """The events of one chunk's payload."""
    buf = memoryview(raw)
    pos, last, events = 0, previous_icount, []
    while pos < len(buf):
        kind_value, pos = _get_varint(buf, pos)
        delta, pos = _get_varint(buf, pos)
        try:
            codec = CODECS[EventKind(kind_value)]
        except ValueError:
            raise RecordingError(f"unknown event kind {kind_value} (written by a newer chronicorn?)") from None
        last += delta
        event, pos = codec.decode(last, buf, pos)
        events.append(event)
    return events


# -- writing -------------------------------------------------------------------------
class LogWriter:
    """Writes a recording incrementally; every chunk is complete on disk once written."""

    def __init__(self, stream: BinaryIO, header: dict[str, object]) -> None:
        self._stream = stream
        self._compressor = zstandard.ZstdCompressor(level=3)
        body = json.dumps(header, sort_keys=True).encode()
        stream.write(MAGIC + struct.pack("<II", FORMAT_VERSION, len(body)) + body + struct.pack("<I", zlib.crc32(body)))
        self._last_icount = 0
        stream.flush()

    def write_snapshot(self, icount: int, data: bytes) -> None:
        self._chunk(ChunkKind.SNAPSHOT, icount, icount, data)

    def write_events(self, events: list[Event]) -> None:
        if not events:
            return
        raw = encode_events(events, self._last_icount)
        first, last = events[0].icount, events[-1].icount
        self._chunk(ChunkKind.EVENTS, first, last, raw, prefix_icount=self._last_icount)
        self._last_icount = last

    def _chunk(self, kind: ChunkKind, first: int, last: int, raw: bytes, prefix_icount: int = 0) -> None:
        # The icount the first delta is relative to travels in the chunk, so chunks decode independently.
        payload = self._compressor.compress(struct.pack("<Q", prefix_icount) + raw)
        head = _CHUNK_HEAD.pack(b"CK", int(kind), len(payload), zlib.crc32(payload), first, last)
        self._stream.write(head + payload)
        self._stream.flush()


# -- reading -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Chunk:
    kind: ChunkKind
    first_icount: int
    last_icount: int
    data: bytes  # decompressed payload without the prefix icount
    prefix_icount: int
    offset: int  # file offset of the chunk


@dataclass(frozen=True, slots=True)
class Damage:
    """Where and why reading stopped early (None when the file ended cleanly)."""

    offset: int
    reason: str


class LogReader:
    """Reads a recording: the header, then chunks up to the end or the first damaged one."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.header = self._read_header()
        self.damage: Damage | None = None
        self._decompressor = zstandard.ZstdDecompressor()

    def _read_header(self) -> dict[str, object]:
        head = self._stream.read(len(MAGIC) + 8)
        if len(head) < len(MAGIC) or head[: len(MAGIC)] != MAGIC:
            raise RecordingError("not a chronicorn recording (bad magic)")
        if len(head) < len(MAGIC) + 8:
            raise RecordingError("recording is truncated inside its header")
        version, length = struct.unpack("<II", head[len(MAGIC) :])
        if version != FORMAT_VERSION:
            raise RecordingError(
                f"recording format version {version} is not supported (this chronicorn reads {FORMAT_VERSION})"
            )
        body = self._stream.read(length)
        crc = self._stream.read(4)
        if len(body) < length or len(crc) < 4:
            raise RecordingError("recording is truncated inside its header")
        if struct.unpack("<I", crc)[0] != zlib.crc32(body):
            raise RecordingError("recording header is corrupt (checksum mismatch)")
        try:
            header = json.loads(body)
        except ValueError:
            raise RecordingError("recording header is not valid JSON") from None
        if not isinstance(header, dict):
            raise RecordingError("recording header is not an object")
        return header

    def chunks(self) -> Iterator[Chunk]:
        """Complete, intact chunks in order; sets :attr:`damage` when it stops early."""
        while True:
            offset = self._stream.tell()
            head = self._stream.read(_CHUNK_HEAD.size)
            if not head:
                return
            if len(head) < _CHUNK_HEAD.size:
                self.damage = Damage(offset, "the file ends inside a chunk header (recorder killed?)")
                return
            tag, kind, length, crc, first, last = _CHUNK_HEAD.unpack(head)
            if tag != b"CK" or kind not in (1, 2):
                self.damage = Damage(offset, "bad chunk header")
                return
            payload = self._stream.read(length)
            if len(payload) < length:
                self.damage = Damage(offset, "the file ends inside a chunk (recorder killed?)")
                return
            if zlib.crc32(payload) != crc:
                self.damage = Damage(offset, "chunk checksum mismatch (corrupt file)")
                return
            try:
                raw = self._decompressor.decompress(payload)
            except zstandard.ZstdError as exc:
                self.damage = Damage(offset, f"chunk does not decompress: {exc}")
                return
            prefix = struct.unpack("<Q", raw[:8])[0]
            yield Chunk(ChunkKind(kind), first, last, raw[8:], prefix, offset)

    def events(self) -> Iterator[Event]:
        """Every event of every intact events chunk."""
        for chunk in self.chunks():
            if chunk.kind == ChunkKind.EVENTS:
                try:
                    yield from decode_events(chunk.data, chunk.prefix_icount)
                except RecordingError as exc:
                    self.damage = Damage(chunk.offset, str(exc))
                    return


def read_all(data: bytes) -> tuple[dict[str, object], list[Chunk], Damage | None]:
    """Convenience for tests and ``chronicorn info``: header, intact chunks, damage."""
    reader = LogReader(io.BytesIO(data))
    chunks = list(reader.chunks())
    return reader.header, chunks, reader.damage
