"""replay/log.py: the recording container (header, checksummed zstd chunks), events codecs."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from machine.results import RunKind
from replay.events import ClockWarp, End, HostClock, UartInput, Verify
from replay.log import (
    FORMAT_VERSION,
    MAGIC,
    ChunkKind,
    LogReader,
    LogWriter,
    RecordingError,
    decode_events,
    encode_events,
    read_all,
)

END_KINDS = [RunKind.EXITED, RunKind.INTERRUPTED, RunKind.LIMIT, RunKind.RESET, RunKind.FAULT]
HEADER = {"format": FORMAT_VERSION, "arch": "riscv32", "board": "virt"}


def events_strategy() -> st.SearchStrategy:
    icount = st.integers(min_value=0, max_value=1 << 40)
    event = st.one_of(
        st.builds(UartInput, icount, st.binary(min_size=1, max_size=20)),
        st.builds(HostClock, icount, st.integers(min_value=0, max_value=1 << 63)),
        st.builds(ClockWarp, icount, st.integers(min_value=0, max_value=1 << 40)),
        st.builds(Verify, icount, st.binary(min_size=16, max_size=16)),
        st.builds(End, icount, st.sampled_from(END_KINDS), st.integers(min_value=0, max_value=255)),
    )
    return st.lists(event, max_size=30).map(lambda evs: sorted(evs, key=lambda e: e.icount))


def write(chunks: list[list]) -> bytes:  # noqa: ANN001
    out = io.BytesIO()
    writer = LogWriter(out, HEADER)
    writer.write_snapshot(0, 0, b"initial state" * 50)
    for events in chunks:
        writer.write_events(events)
    return out.getvalue()


@given(events_strategy())
def test_event_records_round_trip(events: list) -> None:  # noqa: ANN001
    assert decode_events(encode_events(events)) == events


@given(events_strategy(), st.lists(st.integers(min_value=0, max_value=30), max_size=4))
def test_recording_round_trips_chunk_by_chunk(events: list, cuts: list[int]) -> None:  # noqa: ANN001
    bounds = sorted({0, len(events), *(min(c, len(events)) for c in cuts)})
    chunks = [events[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    data = write(chunks)
    header, read, damage = read_all(data)
    assert header == HEADER and damage is None
    assert read[0].kind == ChunkKind.SNAPSHOT and bytes(read[0].data) == b"initial state" * 50
    assert len(read) == 1 + sum(1 for c in chunks if c)
    assert list(LogReader(io.BytesIO(data)).events()) == events


def test_truncation_anywhere_keeps_every_complete_chunk() -> None:
    chunks = [[UartInput(10, b"a"), HostClock(20, 5)], [ClockWarp(30, 7)], [End(40, RunKind.EXITED, 3)]]
    full = write(chunks)
    _, all_chunks, _ = read_all(full)
    ends = [c.offset for c in all_chunks[1:]] + [len(full)]
    for cut in range(all_chunks[0].offset, len(full) + 1):
        _, read, damage = read_all(full[:cut])
        assert read == [c for c, end in zip(all_chunks, ends, strict=True) if end <= cut], cut
        assert (damage is None) == (cut in {all_chunks[0].offset, *ends}), cut


def test_a_flipped_byte_is_reported_as_corruption() -> None:
    full = bytearray(write([[UartInput(10, b"abc")], [End(20, RunKind.INTERRUPTED)]]))
    _, chunks, _ = read_all(bytes(full))
    full[chunks[2].offset + 35] ^= 0xFF  # inside the last chunk's payload (the head is 31 bytes)
    _, read, damage = read_all(bytes(full))
    assert len(read) == 2 and damage is not None and "checksum" in damage.reason


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a chronicorn recording"),
        (b"\x7fELF" + bytes(100), "not a chronicorn recording"),
        (MAGIC + b"\x01", "truncated inside its header"),
        (MAGIC + struct.pack("<II", 99, 2) + b"{}", "format version 99"),
        (MAGIC + struct.pack("<II", 2, 2) + b"{}", "version 2 is not supported .*chronicorn 0.1.0 .*reads it"),
        (MAGIC + struct.pack("<II", FORMAT_VERSION, 1 << 30) + b"{}", "implausibly large"),
        (MAGIC + struct.pack("<II", FORMAT_VERSION, 2) + b"{}" + b"\x00\x00\x00\x00", "checksum"),
    ],
)
def test_refusals_have_clear_messages(data: bytes, message: str) -> None:
    with pytest.raises(RecordingError, match=message):
        LogReader(io.BytesIO(data))


def test_unknown_event_kind_is_reported() -> None:
    with pytest.raises(RecordingError, match="unknown event kind 99"):
        decode_events(bytes([99, 0]))


def test_icounts_must_not_go_backwards() -> None:
    with pytest.raises(ValueError):
        encode_events([UartInput(5, b"a"), UartInput(4, b"b")])


def _chunk_head_offset(data: bytes, index: int) -> int:
    _, chunks, _ = read_all(data)
    return chunks[index].offset


def test_a_decompression_bomb_is_refused_without_inflating_it() -> None:
    """A chunk that inflates past its declared raw length is damage, read with bounded memory."""
    import zlib

    import zstandard

    full = write([[UartInput(10, b"a")]])
    offset = _chunk_head_offset(full, 1)
    bomb = zstandard.ZstdCompressor(level=19).compress(bytes(64 << 20))
    head = struct.pack("<2sBIIIQQ", b"CK", 2, len(bomb), 4096, zlib.crc32(bomb), 10, 10)
    _, read, damage = read_all(full[:offset] + head + bomb)
    assert len(read) == 1 and damage is not None and "declared size" in damage.reason


def test_a_chunk_longer_than_the_file_or_the_limit_is_damage() -> None:
    full = write([[UartInput(10, b"a")]])
    offset = _chunk_head_offset(full, 1)
    for raw_length, length in ((1 << 31, 100), (100, 1 << 31), (4, 4)):
        head = struct.pack("<2sBIIIQQ", b"CK", 2, length, raw_length, 0, 10, 10)
        _, read, damage = read_all(full[:offset] + head + full[offset + 31 :])
        assert len(read) == 1 and damage is not None, (raw_length, length)


def test_over_long_varints_are_refused() -> None:
    with pytest.raises(RecordingError, match="over-long"):
        decode_events(bytes([1]) + b"\xff" * 20)
