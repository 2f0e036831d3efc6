"""The execution index in a recording (format version 4): its encoding round-trips, any bytes decode to
checked entries or a RecordingError (never another exception, never more memory than the bytes and the
bound allow), :meth:`CodeIndex.load` answers as the index it was saved from; the container's versions."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machine.executed import CodeRanges
from machine.icount import merge_ranges
from replay.code_index import CodeIndex, Entry, decode_entries, encode_entries
from replay.log import (
    BASE_FORMAT_VERSION,
    INDEXED_FORMAT_VERSION,
    ChunkKind,
    LogReader,
    LogWriter,
    RecordingError,
    read_all,
)
from tests.conftest import varint

ROOT = Path(__file__).resolve().parents[2]
BIG = (1 << 62) - 1  # the largest icount

RANGES = st.lists(st.tuples(st.integers(0, (1 << 64) - 400), st.integers(1, 300)), max_size=12).map(
    lambda xs: CodeRanges(merge_ranges(sorted((a, a + n) for a, n in xs), 0))
)
ENTRIES = st.lists(st.tuples(st.integers(1, 1 << 40), st.one_of(st.none(), RANGES)), max_size=10)


def build(start: int, spec: list[tuple[int, CodeRanges | None]]) -> list[Entry]:
    entries, at = [], start
    for length, ranges in spec:
        entries.append((at, at + length, ranges))
        at += length
    return entries


def same(a: list[Entry], b: list[Entry]) -> bool:
    def flat(entries: list[Entry]) -> list[tuple[int, int, list[int] | None]]:
        return [(s, e, None if r is None else r.pairs()) for s, e, r in entries]

    return flat(a) == flat(b)


def check_entries(entries: list[Entry], start: int, until: int, max_bytes: int) -> None:
    """What decode_entries promises about what it returns."""
    at, total = start, 0
    for s, e, ranges in entries:
        assert s == at < e <= until
        at = e
        total += 64 if ranges is None else ranges.nbytes + 64
        if ranges is not None:
            pairs = ranges.pairs()
            assert all(a < b for a, b in zip(pairs[0::2], pairs[1::2], strict=True))  # non-empty
            assert all(b <= a for b, a in zip(pairs[1::2], pairs[2::2], strict=False))  # sorted, disjoint
    assert total <= max_bytes


# -- the encoding ----------------------------------------------------------------------------------------
@given(st.integers(0, 1 << 40), ENTRIES)
def test_entries_round_trip(start: int, spec: list[tuple[int, CodeRanges | None]]) -> None:
    entries = build(start, spec)
    until = entries[-1][1] if entries else start
    decoded = decode_entries(encode_entries(entries), start, until, 1 << 30)
    assert same(decoded, entries)
    check_entries(decoded, start, until, 1 << 30)


@settings(max_examples=300)
@given(st.binary(max_size=200), st.integers(0, 1 << 20), st.integers(0, 1 << 62), st.integers(0, 4000))
def test_any_bytes_decode_to_checked_entries_or_a_recording_error(
    data: bytes, start: int, until: int, max_bytes: int
) -> None:
    try:
        entries = decode_entries(data, start, until, max_bytes)
    except RecordingError:
        return
    check_entries(entries, start, until, max_bytes)


@settings(max_examples=200)
@given(ENTRIES, st.data())
def test_mutated_payloads_decode_to_checked_entries_or_a_recording_error(
    spec: list[tuple[int, CodeRanges | None]], data: st.DataObject
) -> None:
    raw = bytearray(encode_entries(build(0, spec)) or b"\x01\x00")
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        how = data.draw(st.sampled_from(["flip", "cut", "insert", "huge"]))
        if how == "flip":
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
        elif how == "cut":
            del raw[at:]
        elif how == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        else:
            raw[at:at] = varint(data.draw(st.sampled_from([1 << 32, 1 << 63, (1 << 64) - 1, 1 << 64, 1 << 69])))
        if not raw:
            break
    until = data.draw(st.sampled_from([BIG, sum(n for n, _ in spec), 5]))
    try:
        entries = decode_entries(bytes(raw), 0, until, 1 << 20)
    except RecordingError:
        return
    check_entries(entries, 0, until, 1 << 20)


@pytest.mark.parametrize(
    ("payload", "start", "until", "reason"),
    [
        (b"\x05", 0, BIG, "cut short"),  # an entry without its count
        (b"\x05\x03\x01", 0, BIG, "claims 2 ranges in 1 bytes"),  # truncated ranges
        (varint(5) + varint((1 << 40) + 1) + b"\x00\x01", 0, BIG, "claims"),  # a count far beyond the payload
        (b"\x00\x00", 0, BIG, "is empty"),
        (varint(11) + b"\x00", 0, 10, "runs past 10"),  # past the end
        (b"\x05\x00" + varint(6) + b"\x00", 0, 10, "runs past 10"),  # the second one past the end
        (b"\x05\x00", 11, 10, "past its end"),  # starts past the end
        (b"\xff" * 11, 0, BIG, "over-long number"),  # a varint that does not end
        (b"\x05\x02" + varint(1 << 63) + varint(1 << 63), 0, BIG, "bad address range"),  # past 2**64
        (b"\x05\x02" + varint((1 << 64) - 1) + varint(1), 0, BIG, "bad address range"),  # to 2**64 exactly
        (b"\x05\x03\x10\x04\x00\x00", 0, BIG, "bad address range"),  # an empty range
        (b"\x05\x02\x10\x04", 0, 1, "runs past 1"),
        (b"\x05\x00" * 10, 0, BIG, "more than 300 bytes"),  # the memory bound
    ],
)
def test_hostile_payloads_are_refused_with_a_reason(payload: bytes, start: int, until: int, reason: str) -> None:
    with pytest.raises(RecordingError, match=reason):
        decode_entries(payload, start, until, 300)


def test_ranges_are_sorted_and_disjoint_by_construction() -> None:
    """Gaps count from the previous range's end: overlapping or unsorted ranges cannot be written down;
    touching ones (gap 0) are disjoint and accepted."""
    entries = decode_entries(b"\x05\x03" + b"\x10\x04" + b"\x00\x04", 0, BIG, 1 << 20)
    ranges = entries[0][2]
    assert ranges is not None and ranges.pairs() == [16, 20, 20, 24]
    with pytest.raises(ValueError, match="not contiguous"):
        encode_entries([(0, 5, None), (4, 9, None)])  # overlapping entries are not written either


@pytest.mark.slow  # ~5 s in all (tracemalloc over large payloads); CI runs it
@pytest.mark.parametrize("shape", ["unknown entries", "one entry of many ranges", "a count beyond the bytes"])
def test_decoding_allocates_no_more_than_the_bytes_and_the_bound_allow(shape: str) -> None:
    size = 1 << 20
    if shape == "unknown entries":
        payload = b"\x01\x00" * (size // 2)
    elif shape == "one entry of many ranges":
        payload = b"\x05" + varint(200_001) + b"\x01\x01" * 200_000 + b"\x01"  # 200k ranges, then cut short
    else:
        payload = b"\x05" + varint(1 << 60) + bytes(size)
    tracemalloc.start()
    try:
        with pytest.raises(RecordingError):
            decode_entries(payload, 0, BIG, 4 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20  # the 4 MiB bound, with arrays' slack and copies while building CodeRanges


# -- CodeIndex.load ------------------------------------------------------------------------------------------
ADDRS = st.lists(st.integers(0, 3000), min_size=1, max_size=3)
SMALL_RANGES = st.lists(st.integers(0, 3000), max_size=5).map(
    lambda xs: CodeRanges(merge_ranges(sorted((x, x + 40) for x in set(xs)), 0))
)


@given(st.lists(st.tuples(st.integers(1, 50), st.one_of(st.none(), SMALL_RANGES)), min_size=1, max_size=12),
       st.lists(st.tuples(st.integers(0, 700), st.integers(0, 700), ADDRS), max_size=10),
       st.integers(300, 5000), st.integers(0, 40))  # fmt: skip
def test_a_loaded_index_answers_as_the_one_it_was_saved_from(
    spec: list[tuple[int, CodeRanges | None]], queries: list[tuple[int, int, list[int]]], max_bytes: int,
    offset: int,
) -> None:  # fmt: skip
    saved = CodeIndex(offset)
    for length, ranges in spec:
        saved.add(saved.until + length, ranges)
    entries = decode_entries(encode_entries(saved.entries()), offset, saved.until, 1 << 30)
    loaded = CodeIndex(0)
    loaded.load(entries)
    small = CodeIndex(0, max_bytes=max_bytes)  # merged down to its own bound
    small.load(entries)
    assert loaded.until == small.until == saved.until and small.nbytes <= max(max_bytes, small.nbytes)
    assert len(small) == 1 or small.nbytes <= max_bytes
    nothing = lambda: CodeRanges([])  # noqa: E731
    for a, b, addrs in queries:
        start, end = min(a, b), max(a, b)
        want = saved.last_start(addrs, max(start, offset), end, nothing)
        if offset and start < offset:
            assert loaded.last_start(addrs, start, end, nothing) >= want or want == end  # (unknown before)
            continue
        assert loaded.last_start(addrs, start, end, nothing) == want
        merged = small.last_start(addrs, start, end, nothing)
        assert merged <= want  # merging only coarsens: never later than the exact answer
    loaded.add(loaded.until + 7, None)  # and it goes on from there
    assert loaded.until == saved.until + 7


def test_load_refuses_a_non_empty_index_and_gaps() -> None:
    index = CodeIndex(0)
    index.add(5, None)
    with pytest.raises(ValueError, match="empty"):
        index.load([(5, 9, None)])
    with pytest.raises(ValueError, match="contiguous"):
        CodeIndex(0).load([(0, 5, None), (6, 9, None)])
    with pytest.raises(ValueError, match="before the index"):
        CodeIndex(10).load([(0, 5, None)])


# -- the container ---------------------------------------------------------------------------------------------
HEADER = {"x": 1}


def container(version: int, kinds: list[int]) -> bytes:
    stream = io.BytesIO()
    writer = LogWriter(stream, HEADER, version)
    for kind in kinds:
        if kind == ChunkKind.CODE_INDEX:
            writer.write_code_index(100, 0, encode_entries([(0, 64, None), (64, 100, CodeRanges([16, 32]))]))
        else:
            writer.write_snapshot(0, 0, b"state")
    return stream.getvalue()


def test_an_index_chunk_is_read_from_version_4_files_only() -> None:
    _, chunks, damage = read_all(container(INDEXED_FORMAT_VERSION, [1, 3]))
    assert damage is None and [c.kind for c in chunks] == [1, 3]
    assert chunks[1].first_icount == chunks[1].last_icount == 100 and chunks[1].prefix == 0
    assert len(decode_entries(chunks[1].data, 0, 100, 1 << 20)) == 2
    data = bytearray(container(INDEXED_FORMAT_VERSION, [1, 3]))
    data[len(b"CHRONREC") : len(b"CHRONREC") + 4] = BASE_FORMAT_VERSION.to_bytes(4, "little")
    _, chunks, damage = read_all(bytes(data))  # a version 3 file holding one: damage, as old readers see it
    assert [c.kind for c in chunks] == [1] and damage is not None and damage.reason == "bad chunk header"
    with pytest.raises(ValueError, match="no execution index"):
        container(BASE_FORMAT_VERSION, [1, 3])


def test_unknown_versions_are_refused_by_name() -> None:
    data = bytearray(container(INDEXED_FORMAT_VERSION, [1]))
    data[len(b"CHRONREC") : len(b"CHRONREC") + 4] = (7).to_bytes(4, "little")
    with pytest.raises(RecordingError, match="version 7 is not supported .this chronicorn reads 3, 4, 5, 6"):
        LogReader(io.BytesIO(bytes(data)))


OLD_READER_COMMIT = "74b0079"  # the last commit whose reader reads version 3 only


def test_a_reader_of_version_3_only_refuses_a_version_4_file_by_its_version() -> None:
    """What chronicorn before version 4 says about a new file (its log.py, run from git history)."""
    try:
        source = subprocess.run(["git", "show", f"{OLD_READER_COMMIT}:replay/log.py"], cwd=ROOT,
                                capture_output=True, check=True, timeout=30).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        pytest.skip("no git history here (an installed copy)")
    spec = importlib.util.spec_from_loader("replay._log_v3", loader=None)
    assert spec is not None
    old = importlib.util.module_from_spec(spec)
    old.__package__ = "replay"
    sys.modules["replay._log_v3"] = old
    try:
        exec(compile(source, "replay/_log_v3.py", "exec"), old.__dict__)  # noqa: S102
        assert old.FORMAT_VERSION == 3
        with pytest.raises(old.RecordingError, match="version 4 is not supported .this chronicorn reads 3."):
            old.LogReader(io.BytesIO(container(INDEXED_FORMAT_VERSION, [1, 3])))
        old.LogReader(io.BytesIO(container(BASE_FORMAT_VERSION, [1])))  # and reads the files without an index
    finally:
        del sys.modules["replay._log_v3"]
