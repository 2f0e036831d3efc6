"""A saved recording carries its execution index (format version 5, as version 4 did; issue 12 item 5).

A live timeline runs forward (indexing as it goes), :func:`save_timeline` writes it, :func:`load_recording`
and :func:`open_recording` give a timeline whose index answers as the live one did for every function of
the guest over many windows, before it has run anything; backward continues on it stop where they stop
without the index. Hostile index chunks inside a real recording are ignored with a reason (the rest of the
recording loads); ``record``'s files (no periodic snapshots) carry none.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
import zstandard

from machine.loader import load_image
from machine.results import RunKind
from replay.code_index import encode_entries
from replay.events import End
from replay.history import HistoryInputs
from replay.log import FORMAT_VERSION, MAGIC, ChunkKind, LogReader
from replay.recording import LoadedRecording, load_recording, make_header
from replay.saver import RecordingWriter, history_inputs, open_recording, save_timeline
from replay.store import SnapshotStore
from replay.timeline import Timeline
from tests.conftest import guest, run_cli, varint
from tests.integration.test_timeline import (
    INTERVAL,
    _machine,
    _scripted,
    backward_breakpoint_stops,
    live_timeline,
    reference_trace,
)

_CHUNK_HEAD = struct.Struct("<2sBIIIQQ")


SAVED_INTERVAL = INTERVAL // 4  # the saving timeline's windows: finer than the loading one's


def save(name: str, directory: Path) -> tuple[Timeline, Path]:
    inputs = HistoryInputs([], 0, _scripted(name))
    live = Timeline(_machine(name, inputs), inputs, SnapshotStore(), SAVED_INTERVAL)
    live.run_forward()
    machine = live.machine
    header = make_header(machine.image, machine.arch.name, machine.config.ram_size, 3, "off", {})
    return live, save_timeline(live, header, directory, f"{name}.chrec")


def load(data: bytes) -> LoadedRecording:
    return load_recording(io.BytesIO(data))


def opened(name: str, loaded: LoadedRecording, interval: int | None = INTERVAL) -> Timeline:
    inputs = history_inputs(loaded)
    return open_recording(loaded, _machine(name, inputs), inputs, SnapshotStore(), interval=interval)


def functions(name: str) -> list[int]:
    return sorted(set(load_image(guest("rv32", name)).symbols.values()))


def chunk_kinds(data: bytes) -> list[int]:
    return [chunk.kind for chunk in LogReader(io.BytesIO(data)).chunks()]


@pytest.mark.parametrize("name", ["cmdint", "timer"])
def test_a_saved_index_answers_as_the_live_one(name: str, tmp_path: Path) -> None:
    live, path = save(name, tmp_path)
    data = path.read_bytes()
    assert struct.unpack_from("<I", data, len(MAGIC))[0] == FORMAT_VERSION
    kinds = chunk_kinds(data)
    assert kinds[-2:] == [ChunkKind.CODE_INDEX, ChunkKind.EVENTS] and kinds.count(ChunkKind.CODE_INDEX) == 1
    loaded = load(data)
    assert loaded.header.format_version == FORMAT_VERSION and loaded.code_index_problem is None
    assert loaded.end is not None and loaded.end.kind == RunKind.EXITED
    assert loaded.code_index is not None and len(loaded.code_index.entries) == len(live.code_index) >= 10
    timeline = opened(name, loaded)  # nothing run yet: the index is there at once
    index, original = timeline.code_index, live.code_index
    assert index.until == original.until and index.entries()[-1][1] == original.until
    unknown = lambda: None  # noqa: E731  (never asked: every window lies inside the index)
    cuts = sorted({0, index.until, *range(0, index.until, index.until // 23 + 1), *range(7, index.until, 9_001)})
    windows = [(a, b) for i, a in enumerate(cuts) for b in cuts[i + 1 : i + 4]]
    assert len(windows) > 50
    for addr in functions(name):
        for start, end in windows:
            want = original.last_start([addr], start, end, unknown)
            assert index.last_start([addr], start, end, unknown) == want, (hex(addr), start, end)
            assert index.may_run([addr], start, end, unknown) == (want < end)


@pytest.mark.parametrize("interval", [INTERVAL, None])
@pytest.mark.parametrize(("name", "function"), [("cmdint", "uart_putdec"), ("cmdint", "uart_puts")])
def test_backward_continues_with_the_loaded_index_stop_where_they_stop_without(
    name: str, function: str, interval: int | None, tmp_path: Path
) -> None:
    addr = load_image(guest("rv32", name)).symbols[function]
    live, path = save(name, tmp_path)
    loaded = load(path.read_bytes())
    found, scans = {}, {}
    for use in (True, False):
        timeline = opened(name, loaded, interval)
        found[use], scans[use] = backward_breakpoint_stops(timeline, addr, use)
        assert timeline.code_index.until >= live.code_index.until
    pcs, _ = reference_trace(name)
    assert [icount for icount, _, _ in found[True]] == [i for i, pc in enumerate(pcs) if pc == addr][::-1]
    assert found[True] == found[False]
    if interval is not None:
        assert len(scans[True]) < len(scans[False])


def test_a_breakpoint_never_reached_costs_no_scan_on_a_loaded_recording(tmp_path: Path) -> None:
    """The index comes with the file: the first backward continue skips every window."""
    _, path = save("cmdint", tmp_path)
    timeline = opened("cmdint", load(path.read_bytes()))
    timeline.seek(timeline.end)
    scans: list[int] = []
    scan = timeline._scan
    timeline._scan = lambda *args: scans.append(args[0]) or scan(*args)  # type: ignore[method-assign]
    timeline.add_breakpoint(load_image(guest("rv32", "cmdint")).symbols["unexpected_trap"])
    assert timeline.continue_backward().kind == RunKind.HISTORY_BEGIN
    assert scans == []


def test_the_timeline_goes_on_indexing_past_the_loaded_part(tmp_path: Path) -> None:
    """Half an index loaded: the rest is built as the timeline first runs there, as without a file."""
    _, path = save("cmdint", tmp_path)
    loaded = load(path.read_bytes())
    assert loaded.code_index is not None
    half = loaded.code_index.entries[: len(loaded.code_index.entries) // 2]
    partial = LoadedRecording(**{**loaded.__dict__, "code_index": type(loaded.code_index)(half, 0)})
    timeline = opened("cmdint", partial)
    assert timeline.code_index.until == half[-1][1]
    timeline.seek(timeline.end)
    reference = opened("cmdint", loaded)
    assert timeline.code_index.until == reference.code_index.until
    for addr in functions("cmdint"):  # the part built here notes at least the code that ran
        for start in range(0, reference.code_index.until - INTERVAL, INTERVAL):
            want = reference.code_index.may_run([addr], start, start + INTERVAL, lambda: None)
            assert timeline.code_index.may_run([addr], start, start + INTERVAL, lambda: None) >= want


def test_record_writes_version_3_files_without_an_index(tmp_path: Path) -> None:
    """A timeline without periodic snapshots (``record``) keeps no index: the file is what it always was."""
    inputs = HistoryInputs([], 0, live_timeline("echo").inputs.live)
    machine = _machine("echo", inputs)
    timeline = Timeline(machine, inputs, periodic_snapshots=False)
    stream = io.BytesIO()
    header = make_header(machine.image, machine.arch.name, machine.config.ram_size, 3, "off", {})
    writer = RecordingWriter(stream, header, timeline)
    timeline.run_forward()
    writer.finish()
    data = stream.getvalue()
    assert struct.unpack_from("<I", data, len(MAGIC))[0] == FORMAT_VERSION
    assert ChunkKind.CODE_INDEX not in chunk_kinds(data)
    loaded = load(data)
    assert loaded.header.format_version == FORMAT_VERSION and loaded.code_index is None
    assert isinstance(loaded.end, End) and opened("echo", loaded).code_index.until == 0  # built lazily


# -- hostile index chunks in a real recording ------------------------------------------------------------------
def with_index_chunk(data: bytes, raw: bytes | None = None, stamp: int | None = None, twice: bool = False) -> bytes:
    """``data`` with its index chunk's inflated payload replaced by ``raw`` (right lengths and CRC)."""
    reader = LogReader(io.BytesIO(data))
    chunks = list(reader.chunks())
    index = next(c for c in chunks if c.kind == ChunkKind.CODE_INDEX)
    start = index.offset
    head = _CHUNK_HEAD.unpack_from(data, start)
    end = start + _CHUNK_HEAD.size + head[2]
    if raw is None:
        raw = zstandard.ZstdDecompressor().decompress(data[start + _CHUNK_HEAD.size : end])
    payload = zstandard.ZstdCompressor().compress(raw)
    first = last = head[5] if stamp is None else stamp
    chunk = _CHUNK_HEAD.pack(b"CK", ChunkKind.CODE_INDEX, len(payload), len(raw), zlib.crc32(payload), first, last)
    return data[:start] + (chunk + payload) * (2 if twice else 1) + data[end:]


@pytest.fixture(scope="module")
def saved_cmdint(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return save("cmdint", tmp_path_factory.mktemp("index"))[1].read_bytes()


def test_hostile_index_chunks_are_ignored_and_the_recording_loads(saved_cmdint: bytes) -> None:
    data = saved_cmdint
    intact = load(data)
    assert intact.code_index is not None
    good = encode_entries(intact.code_index.entries)
    end = intact.last_icount
    variants = {
        "truncated": varint(0) + good[: len(good) // 2 - 1],
        "a count beyond the payload": varint(0) + varint(5) + varint(1 << 40) + b"\x01\x02",
        "past the end": varint(0) + varint(end + 1) + b"\x00",
        "starting past its stamp": varint(end + 1) + varint(1) + b"\x00",
        "an empty entry": varint(0) + b"\x00\x00",
        "a range past 2**64": varint(0) + varint(5) + b"\x02" + varint((1 << 64) - 1) + b"\x05",
        "a huge varint": varint(0) + b"\xff" * 12,
        "an empty range": varint(0) + varint(5) + b"\x02\x10\x00",
    }
    for description, raw in variants.items():
        loaded = load(with_index_chunk(data, raw))
        assert loaded.code_index is None and loaded.code_index_problem, description
        assert loaded.end == intact.end and loaded.damage is None, description
        assert opened("cmdint", loaded).code_index.until == 0, description  # built as it runs instead
    twice = load(with_index_chunk(data, twice=True))
    assert twice.code_index is None and twice.code_index_problem == "the recording has two execution indexes"
    cut = load(with_index_chunk(data, b"\x80"))  # no prefix: the chunk's framing, damage as in any chunk
    assert cut.end is None and cut.damage is not None and cut.code_index is None
    late = load(with_index_chunk(data, stamp=end + 1))  # the End's chunk then goes back in time: damage
    assert late.end is None and late.damage is not None and "out of order" in late.damage.reason


def test_an_index_past_a_damaged_recordings_intact_part_is_cut_there(saved_cmdint: bytes) -> None:
    data = saved_cmdint[:-5]  # the End's chunk cut: history ends at the last verification point
    loaded = load(data)
    assert loaded.end is None and loaded.damage is not None and loaded.code_index is not None
    last = loaded.last_icount
    entries = loaded.code_index.entries
    assert entries[-1][1] == last < load(saved_cmdint).code_index.until  # type: ignore[union-attr]
    assert opened("cmdint", loaded).code_index.until == last


def test_info_shows_the_index(saved_cmdint: bytes, tmp_path: Path) -> None:
    path = tmp_path / "i.chrec"
    path.write_bytes(saved_cmdint)
    loaded = load(saved_cmdint)
    assert loaded.code_index is not None
    out = run_cli("info", str(path)).stdout.decode()
    assert f"execution index      {len(loaded.code_index.entries)} entries" in out
    assert f"{loaded.code_index.stored_bytes} bytes" in out
    path.write_bytes(with_index_chunk(saved_cmdint, varint(0) + b"\xff" * 12))
    shown = run_cli("info", str(path))
    assert "execution index      ignored (execution index has an over-long number)" in shown.stdout.decode()
    assert shown.returncode == 0 and b"execution index is ignored" in shown.stderr
