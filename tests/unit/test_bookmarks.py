"""Bookmarks and named snapshots (issue 16 item 3): the encoding (round trips, every truncation, crafted
lengths), the container (format version 6, chunk kinds 4 and 5), recordings that carry them (saved, loaded,
opened, crafted), the check of a recording's named snapshot against history, and the monitor commands.

The recordings are real: the timer guest (short, no verification point after its first few thousand
instructions) and compute (75 M instructions, a verification point every 2**20), saved as ``monitor record
save`` saves a live history.
"""

from __future__ import annotations

import io
import logging
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from gdbstub.monitor import Monitor
from machine.factory import make_machine
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import Machine, MachineConfig
from replay.bookmarks import (
    MAX_NAME_BYTES,
    MAX_NAMES,
    Bookmark,
    NameEntry,
    NameKind,
    check_against_history,
    decode_named_state,
    decode_names,
    encode_named_state,
    encode_names,
    name_problem,
)
from replay.events import Verify
from replay.history import HistoryInputs
from replay.log import (
    FORMAT_VERSION,
    MAGIC,
    NAMED_FORMAT_VERSION,
    ChunkKind,
    LogReader,
    LogWriter,
    RecordingError,
    decode_events,
    encode_events,
    get_varint,
    read_all,
)
from replay.recording import LoadedRecording, load_recording, make_header
from replay.saver import history_inputs, open_recording, save_timeline
from replay.store import SnapshotStore
from replay.timeline import Timeline
from tests.conftest import ROOT, guest, run_cli, varint

_CHUNK_HEAD = struct.Struct("<2sBIIIQQ")

ENTRIES = [
    NameEntry("start", NameKind.BOOKMARK, 0, 0x8000_0000),
    NameEntry("é-ü", NameKind.SNAPSHOT, 17),
    NameEntry("x" * MAX_NAME_BYTES, NameKind.BOOKMARK, 1 << 40, (1 << 64) - 1),
    NameEntry("no-pc", NameKind.BOOKMARK, 99),
]


# -- the encoding --------------------------------------------------------------------------------------------
def test_names_round_trip() -> None:
    data = encode_names(ENTRIES)
    assert decode_names(data, len(ENTRIES), 1 << 40) == ENTRIES
    assert decode_names(b"", 0, 0) == []


def test_every_truncation_of_the_names_is_refused() -> None:
    data = encode_names(ENTRIES)
    for cut in range(len(data)):
        with pytest.raises(RecordingError, match="bookmarks"):
            decode_names(data[:cut], len(ENTRIES), 1 << 40)
    with pytest.raises(RecordingError, match="after the last"):
        decode_names(data + b"\x00", len(ENTRIES), 1 << 40)
    with pytest.raises(RecordingError, match="after the last"):
        decode_names(data, len(ENTRIES) - 1, 1 << 40)


def entry(name: bytes, kind: int = 0, icount: int = 5, *pc: int) -> bytes:
    return varint(len(name)) + name + varint(kind) + varint(icount) + b"".join(varint(p) for p in (pc or (0,)))


@pytest.mark.parametrize(
    ("count", "payload", "reason"),
    [
        (1 << 40, entry(b"a"), "entries"),  # a count beyond the bytes
        (MAX_NAMES + 1, entry(b"a") * (MAX_NAMES + 1), "entries"),
        (1, varint(0) + b"a\x00\x05\x00", "a name of 0 bytes"),
        (1, varint(MAX_NAME_BYTES + 1) + b"a" * (MAX_NAME_BYTES + 1) + b"\x00\x05\x00", "a name of"),
        (1, varint(1 << 40) + b"abcd", "a name of"),  # a name length beyond the chunk
        (1, entry(b"\xff\xfe"), "not UTF-8"),
        (1, entry(b"a b"), "not a name"),
        (1, entry(b"a\x07"), "not a name"),
        (2, entry(b"a") + entry(b"a"), "twice"),
        (1, entry(b"a", 2), "unknown kind 2"),
        (1, entry(b"a", 0, 101), "past the end of history"),
        (1, entry(b"a", 0, 5, (1 << 64) + 1), "beyond 64 bits"),
        (1, varint(1) + b"a" + b"\xff" * 11, "over-long number"),
    ],
)
def test_crafted_names_are_refused(count: int, payload: bytes, reason: str) -> None:
    with pytest.raises(RecordingError, match=reason):
        decode_names(payload, count, 100)


def test_a_name_is_printable_text_without_spaces() -> None:
    assert name_problem("A") is None and name_problem("é" * (MAX_NAME_BYTES // 2)) is None
    for bad in ("", "a b", "a\tb", "\x00", "x" * (MAX_NAME_BYTES + 1), "é" * (MAX_NAME_BYTES // 2 + 1), "\ud800"):
        assert name_problem(bad) is not None, bad


def test_named_state_round_trip_and_truncations() -> None:
    state = bytes(range(40))
    data = encode_named_state("snap", 1234, state)
    name, icount, body = decode_named_state(data)
    assert (name, icount, bytes(body)) == ("snap", 1234, state)
    header = len(data) - len(state)
    for cut in range(header + 1):  # inside the name or icount, or no state at all
        with pytest.raises(RecordingError, match="named snapshot"):
            decode_named_state(data[:cut])
    for cut in range(header + 1, len(data)):  # a shorter state: machine.state's decoder refuses it later
        assert bytes(decode_named_state(data[:cut])[2]) == state[: cut - header]
    with pytest.raises(RecordingError, match="beyond any icount"):
        decode_named_state(varint(1) + b"a" + varint(1 << 62) + b"s")


# -- the container -------------------------------------------------------------------------------------------
def container(version: int, kinds: list[int], named_budget: int | None = None) -> tuple[list, object]:
    stream = io.BytesIO()
    writer = LogWriter(stream, {"format_version": version}, version)
    writer.write_snapshot(0, 0, b"state0")
    for kind in kinds:
        if kind == ChunkKind.BOOKMARKS:
            writer.write_bookmarks(100, len(ENTRIES[:2]), encode_names(ENTRIES[:2]))
        else:
            writer.write_named_snapshot(100, 3, encode_named_state("é-ü", 17, b"s" * 1000))
    reader = LogReader(io.BytesIO(stream.getvalue()))
    if named_budget is not None:
        reader.named_budget = named_budget
    return list(reader.chunks()), reader.damage


def test_the_new_chunks_are_written_and_read_in_version_6_files_only() -> None:
    chunks, damage = container(NAMED_FORMAT_VERSION, [4, 5])
    assert damage is None and [c.kind for c in chunks] == [1, 4, 5]
    assert chunks[1].prefix == 2 and decode_names(chunks[1].data, 2, 100) == ENTRIES[:2]
    assert chunks[2].prefix == 3 and decode_named_state(chunks[2].data)[:2] == ("é-ü", 17)
    assert chunks[2].first_icount == chunks[2].last_icount == 100 and not chunks[2].skipped
    with pytest.raises(ValueError, match="no bookmarks"):
        container(FORMAT_VERSION, [4])
    stream = io.BytesIO()
    writer = LogWriter(stream, {}, NAMED_FORMAT_VERSION)
    writer.write_bookmarks(100, 0, b"")
    data = bytearray(stream.getvalue())
    data[len(MAGIC) : len(MAGIC) + 4] = FORMAT_VERSION.to_bytes(4, "little")  # what a version 5 reader meets
    _, chunks, damage = read_all(bytes(data))
    assert chunks == [] and damage is not None and damage.reason == "bad chunk header"


def test_named_snapshots_past_the_budget_are_checked_but_not_inflated() -> None:
    chunks, damage = container(NAMED_FORMAT_VERSION, [4, 5, 5, 5], named_budget=2500)
    assert damage is None and [c.skipped for c in chunks] == [False, False, False, False, True]
    assert bytes(chunks[4].data) == b""


def test_a_new_chunk_stamped_over_a_range_is_damage() -> None:
    stream = io.BytesIO()
    writer = LogWriter(stream, {}, NAMED_FORMAT_VERSION)
    writer._chunk(ChunkKind.BOOKMARKS, 5, 6, 0, b"")
    _, chunks, damage = read_all(stream.getvalue())
    assert chunks == [] and damage is not None and damage.reason == "bookmarks chunk not stamped at one icount"


# -- recordings that carry names ----------------------------------------------------------------------------
def live(name: str, budget: int = 256 << 20) -> tuple[Timeline, Monitor]:
    inputs = HistoryInputs([], 0, ScriptedInputs())
    machine = Machine(load_image(guest("rv32", name)), inputs, lambda b: None, MachineConfig())
    timeline = Timeline(machine, inputs, SnapshotStore(budget))
    return timeline, Monitor(timeline, lambda: "", lambda path, overwrite: "")


def save(timeline: Timeline, directory: Path, name: str = "r.chrec") -> bytes:
    m = timeline.machine
    header = make_header(m.image, m.arch.name, m.config.ram_size, 3, "off", {})
    return save_timeline(timeline, header, directory, name, overwrite=True).read_bytes()


def load(data: bytes) -> LoadedRecording:
    return load_recording(io.BytesIO(data))


def opened(data: bytes | LoadedRecording, budget: int = 256 << 20) -> tuple[Timeline, Monitor]:
    loaded = load(data) if isinstance(data, bytes) else data
    inputs = history_inputs(loaded)
    machine = Machine(load_image(loaded.header.image_path), inputs, lambda b: None, MachineConfig())
    timeline = open_recording(loaded, machine, inputs, SnapshotStore(budget))
    return timeline, Monitor(timeline, lambda: "", lambda path, overwrite: "")


class Saved:
    """A live history with names, saved; the digests at the named places."""

    def __init__(self, name: str, snapshot_at: int, bookmark_at: int, directory: Path) -> None:
        self.timeline, monitor = live(name)
        self.timeline.run_forward(until=snapshot_at)
        assert monitor("snapshot save A").startswith("snapshot 'A' saved")
        self.digest_a = self.timeline.machine.digest()
        self.timeline.run_forward(until=bookmark_at)
        assert monitor("bookmark B").startswith(f"bookmark 'B' at icount {bookmark_at}")
        self.digest_b = self.timeline.machine.digest()
        self.timeline.run_forward()
        self.data = save(self.timeline, directory)


@pytest.fixture(scope="module")
def timer(tmp_path_factory: pytest.TempPathFactory) -> Saved:
    return Saved("timer", 5_000, 9_000, tmp_path_factory.mktemp("timer"))


@pytest.fixture(scope="module")
def compute(tmp_path_factory: pytest.TempPathFactory) -> Saved:
    return Saved("compute", 3_000_123, 4_500_000, tmp_path_factory.mktemp("compute"))


def chunk_kinds(data: bytes) -> list[int]:
    return [chunk.kind for chunk in LogReader(io.BytesIO(data)).chunks()]


def test_a_saved_history_carries_its_names(timer: Saved) -> None:
    data = timer.data
    assert struct.unpack_from("<I", data, len(MAGIC))[0] == NAMED_FORMAT_VERSION
    assert chunk_kinds(data)[-3:] == [ChunkKind.BOOKMARKS, ChunkKind.NAMED_SNAPSHOT, ChunkKind.EVENTS]
    loaded = load(data)
    assert loaded.names_problems == () and loaded.end is not None and loaded.damage is None
    assert loaded.bookmarks == (("B", Bookmark(9_000, timer.timeline.bookmarks.marks["B"].pc)),)
    assert [(n.name, n.state.icount) for n in loaded.named_snapshots] == [("A", 5_000)]
    timeline, monitor = opened(data)
    assert monitor("snapshot list") == (f"A  icount 5000  (from the recording)\n"
                                        f"B  icount 9000  bookmark, pc {loaded.bookmarks[0][1].pc:#x}\n")  # fmt: skip
    reply = monitor("snapshot load A")
    assert reply.startswith("icount 5000") and "trusted as written" in reply  # (timer: no verification point)
    assert timeline.machine.digest() == timer.digest_a
    assert monitor("bookmark goto B").startswith("icount 9000") and timeline.machine.digest() == timer.digest_b
    assert monitor("snapshot load A").startswith("icount 5000") and "trusted" not in monitor("snapshot load A")
    assert timeline.step_backward().icount == 4_999  # history goes on from the loaded state
    assert timeline.machine.digest() != timer.digest_a
    timeline.run_forward(step=True)
    assert timeline.machine.digest() == timer.digest_a


def test_files_without_names_stay_version_5(tmp_path: Path) -> None:
    timeline, monitor = live("timer")
    timeline.run_forward()
    assert struct.unpack_from("<I", save(timeline, tmp_path), len(MAGIC))[0] == FORMAT_VERSION
    monitor("bookmark x")
    monitor("bookmark delete x")
    data = save(timeline, tmp_path)
    assert struct.unpack_from("<I", data, len(MAGIC))[0] == FORMAT_VERSION
    assert ChunkKind.BOOKMARKS not in chunk_kinds(data) and load(data).bookmarks == ()


def test_names_survive_a_second_save_from_the_replay(timer: Saved, tmp_path: Path) -> None:
    timeline, _ = opened(timer.data)
    again = load(save(timeline, tmp_path))
    first = load(timer.data)
    assert again.bookmarks == first.bookmarks
    assert [(n.name, bytes(n.state.data)) for n in again.named_snapshots] == [
        (n.name, bytes(n.state.data)) for n in first.named_snapshots]  # fmt: skip


def test_a_named_snapshot_is_checked_against_the_next_verification_point(compute: Saved) -> None:
    timeline, monitor = opened(compute.data)
    assert timeline.bookmarks.unchecked == {"A"}
    reply = monitor("snapshot load A")
    assert "agrees with history at icount 3145728" in reply and timeline.machine.digest() == compute.digest_a
    assert timeline.bookmarks.unchecked == set() and "(from the recording)" not in monitor("snapshot list")


# -- crafted recordings ----------------------------------------------------------------------------------------
Transform = Callable[[int, int, int, bytes], list[tuple[int, int, int, bytes]]]


def rewrite(data: bytes, transform: Transform) -> bytes:
    """``data`` with each chunk (kind, first, last, raw payload incl. its prefix) replaced by what
    ``transform`` makes of it, each with right lengths and CRC."""
    chunks = list(LogReader(io.BytesIO(data)).chunks())
    out = bytearray(data[: chunks[0].offset])
    for chunk in chunks:
        raw = varint(chunk.prefix) + bytes(chunk.data)
        for kind, first, last, new in transform(chunk.kind, chunk.first_icount, chunk.last_icount, raw):
            payload = zstandard.ZstdCompressor().compress(new)
            out += _CHUNK_HEAD.pack(b"CK", kind, len(payload), len(new), zlib.crc32(payload), first, last) + payload
    return bytes(out)


def replacing(kind: int, make: Callable[[bytes], list[bytes]]) -> Transform:
    def transform(k: int, first: int, last: int, raw: bytes) -> list[tuple[int, int, int, bytes]]:
        return [(k, first, last, new) for new in make(raw)] if k == kind else [(k, first, last, raw)]

    return transform


def named_raw(position: int, name: bytes, icount: int, state: bytes) -> bytes:
    return varint(position) + varint(len(name)) + name + varint(icount) + state


def split_named(raw: bytes) -> tuple[int, str, int, bytes]:
    position = raw[0]  # (the timer's log position: 0, one byte)
    name, icount, state = decode_named_state(raw[1:])
    return position, name, icount, bytes(state)


def test_a_malformed_bookmarks_chunk_is_ignored_with_a_warning(timer: Saved, caplog: pytest.LogCaptureFixture) -> None:
    intact = load(timer.data)
    for payload in (varint(1 << 40), varint(1) + b"\x05", varint(2) + entry(b"a") + entry(b"a"), varint(0) + b"x"):
        with caplog.at_level(logging.WARNING):
            loaded = load(rewrite(timer.data, replacing(ChunkKind.BOOKMARKS, lambda raw, p=payload: [p])))
        assert loaded.bookmarks == () and loaded.named_snapshots == () and len(loaded.names_problems) == 1
        assert "bookmarks and named snapshots are ignored" in loaded.names_problems[0]
        assert loaded.end == intact.end and loaded.damage is None and loaded.inputs == intact.inputs
        assert "the recording's names" in caplog.text
    twice = load(rewrite(timer.data, replacing(ChunkKind.BOOKMARKS, lambda raw: [raw, raw])))
    assert twice.bookmarks == () and "two bookmarks chunks" in twice.names_problems[0]


def test_a_named_snapshot_that_cannot_be_used_is_a_bookmark(timer: Saved) -> None:
    cases: dict[str, Callable[[bytes], list[bytes]]] = {
        "ignored (named snapshot: a name of 0 bytes": lambda raw: [raw[:1] + b"\x00"],
        "its state is not loaded": lambda raw: [],
        "its state is listed at icount 5001": lambda raw: [named_raw(0, b"A", 5_001, split_named(raw)[3])],
        "its log position does not fit the events": lambda raw: [named_raw(7, b"A", 5_000, split_named(raw)[3])],
        "is in the recording twice": lambda raw: [raw, raw],
        "'Z' is not listed as a snapshot": lambda raw: [raw, named_raw(0, b"Z", 5_000, split_named(raw)[3])],
    }
    for reason, make in cases.items():
        loaded = load(rewrite(timer.data, replacing(ChunkKind.NAMED_SNAPSHOT, make)))
        assert any(reason in problem for problem in loaded.names_problems), (reason, loaded.names_problems)
        assert loaded.end is not None and loaded.damage is None
        names = dict(loaded.bookmarks)
        if "twice" in reason or "not listed" in reason:
            assert [n.name for n in loaded.named_snapshots] == ["A"], reason
        else:
            assert loaded.named_snapshots == () and names["A"] == Bookmark(5_000), reason
            timeline, monitor = opened(loaded)
            assert monitor("snapshot load A").startswith("icount 5000")  # by replay
            assert timeline.machine.digest() == timer.digest_a


def test_a_malformed_named_state_is_a_bookmark(timer: Saved, caplog: pytest.LogCaptureFixture) -> None:
    def cut(raw: bytes) -> list[bytes]:
        position, name, icount, state = split_named(raw)
        return [named_raw(position, name.encode(), icount, state[:-3])]

    loaded = load(rewrite(timer.data, replacing(ChunkKind.NAMED_SNAPSHOT, cut)))
    assert [n.name for n in loaded.named_snapshots] == ["A"]  # (states are decoded on a machine)
    with caplog.at_level(logging.WARNING):
        timeline, monitor = opened(loaded)
    assert "snapshot 'A' (icount 5000) is a bookmark" in caplog.text and "malformed" in caplog.text
    assert timeline.store.names() == [] and timeline.bookmarks.marks["A"] == Bookmark(5_000)


def test_info_shows_the_names(timer: Saved, tmp_path: Path) -> None:
    path = tmp_path / "names.chrec"
    path.write_bytes(timer.data)
    out = run_cli("info", str(path))
    pc = load(timer.data).bookmarks[0][1].pc
    assert out.returncode == 0 and out.stderr == b""
    text = out.stdout.decode()
    assert "names                1 bookmarks, 1 named snapshots\n" in text
    assert "  A                  icount 5000: snapshot (" in text
    assert f"  B                  icount 9000: bookmark, pc {pc:#x}\n" in text

    def cut(raw: bytes) -> list[bytes]:
        position, name, icount, state = split_named(raw)
        return [named_raw(position, name.encode(), icount, state[:-3])]

    path.write_bytes(rewrite(timer.data, replacing(ChunkKind.NAMED_SNAPSHOT, cut)))
    out = run_cli("info", str(path))
    assert out.returncode == 0
    assert b"  A                  icount 5000: a bookmark (its snapshot: the named" in out.stdout
    path.write_bytes(rewrite(timer.data, replacing(ChunkKind.BOOKMARKS, lambda raw: [varint(1) + b"\x05"])))
    out = run_cli("info", str(path))
    assert out.returncode == 0 and b"names                none\n" in out.stdout
    assert b"names left out       the bookmarks and named snapshots are ignored (bookmarks: " in out.stdout
    assert b"the recording's names: the bookmarks and named snapshots are ignored" in out.stderr


def test_names_past_a_damaged_recordings_intact_part_are_left_out(compute: Saved) -> None:
    loaded = load(compute.data[:-5])  # the End's chunk cut: history ends at the last verification point
    assert loaded.end is None and loaded.damage is not None
    assert dict(loaded.bookmarks) == {"B": load(compute.data).bookmarks[0][1]}
    assert [n.name for n in loaded.named_snapshots] == ["A"]
    late = compute.timeline.end - 10
    moved = rewrite(compute.data, replacing(ChunkKind.BOOKMARKS, lambda raw: [
        varint(1) + entry(b"late", 0, late, 0)]))[:-5]  # fmt: skip
    cut = load(moved)
    assert cut.bookmarks == () and any("'late'" in p and "past the end" in p for p in cut.names_problems)


def test_named_snapshots_past_the_snapshot_budget_are_bookmarks(timer: Saved, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        timeline, monitor = opened(timer.data, budget=64 << 10)
    assert "does not fit half the snapshot budget" in caplog.text and "--snapshot-budget" in caplog.text
    assert timeline.store.names() == [] and timeline.bookmarks.marks["A"] == Bookmark(5_000)
    assert monitor("snapshot load A").startswith("icount 5000") and timeline.machine.digest() == timer.digest_a


def test_named_snapshots_past_one_ram_of_state_are_bookmarks(timer: Saved) -> None:
    """Their states are checked but not inflated (memory stays bounded by the RAM size): bookmarks."""
    ram_size = load(timer.data).header.ram_size

    def huge(raw: bytes) -> list[bytes]:
        position, name, icount, state = split_named(raw)
        return [named_raw(position, name.encode(), icount, state + bytes(ram_size))]

    loaded = load(rewrite(timer.data, replacing(ChunkKind.NAMED_SNAPSHOT, huge)))
    assert loaded.named_snapshots == () and dict(loaded.bookmarks)["A"] == Bookmark(5_000)
    assert any("need more memory than the recording's RAM size" in p for p in loaded.names_problems)
    assert loaded.end is not None and loaded.damage is None


def test_a_named_snapshot_that_contradicts_history_is_refused_when_first_loaded(compute: Saved) -> None:
    """Its stack pointer moved by 16: it decodes and loads, but replayed to the next verification point the
    registers differ: the monitor says so, the name becomes a bookmark and the machine is where history is."""

    def shift_sp(raw: bytes) -> list[bytes]:
        position = raw[0]
        name, icount, state = decode_named_state(raw[1:])
        body = bytearray(state)
        (sp,) = struct.unpack_from("<Q", body, 32)  # machine.state: 24-byte header and count, then x1, x2
        struct.pack_into("<Q", body, 32, sp + 16)
        return [varint(position) + varint(len(name)) + name.encode() + varint(icount) + bytes(body)]

    crafted = rewrite(compute.data, replacing(ChunkKind.NAMED_SNAPSHOT, shift_sp))
    timeline, monitor = opened(crafted)
    reply = monitor("snapshot load A")
    assert reply.startswith("icount 3000123") and "contradicts history" in reply and "3145728" in reply
    assert timeline.machine.digest() == compute.digest_a  # history's state there, by replay
    assert timeline.store.names() == [] and timeline.bookmarks.marks["A"] == Bookmark(3_000_123)
    assert monitor("snapshot list").startswith("A  icount 3000123  bookmark\n")
    assert check_against_history(timeline, timeline.store.at_or_before(0)).problem is None


# -- the monitor ------------------------------------------------------------------------------------------------
def test_bookmark_commands() -> None:
    timeline, monitor = live("timer")
    timeline.run_forward(until=1_000)
    pc = timeline.machine.pc
    assert monitor("bookmark one") == f"bookmark 'one' at icount 1000, pc {pc:#x}\n"
    digest = timeline.machine.digest()
    timeline.run_forward(until=3_000)
    assert monitor("snapshot save two") == "snapshot 'two' saved at icount 3000\n"
    assert monitor("bookmark list") == monitor("snapshot list") == (f"one  icount 1000  bookmark, pc {pc:#x}\n"
                                                                    "two  icount 3000\n")  # fmt: skip
    assert monitor("bookmark goto one").startswith("icount 1000") and timeline.machine.digest() == digest
    assert monitor("snapshot load one").startswith("icount 1000")
    assert monitor("bookmark goto two").startswith("icount 3000")
    assert monitor("bookmark two").endswith("(replaced the snapshot at icount 3000)\n")
    assert timeline.store.names() == []
    assert monitor("snapshot save two").endswith("(replaced the bookmark at icount 3000)\n")
    assert monitor("bookmark delete two") == "snapshot 'two' (icount 3000) deleted\n"
    assert monitor("snapshot delete one") == "bookmark 'one' (icount 1000) deleted\n"
    assert monitor("bookmark list") == "no named snapshots\n"
    assert monitor("bookmark goto one").startswith("error: no snapshot named 'one', nor a bookmark")
    assert monitor("bookmark delete one").startswith("error: no snapshot named 'one'")
    assert monitor("bookmark") == "error: expected a name: bookmark NAME\n"
    assert monitor("bookmark a b") == "error: expected a name: bookmark NAME\n"
    assert monitor("bookmark goto") == "error: expected a name: bookmark goto NAME\n"
    assert monitor(f"bookmark {'x' * 200}").startswith("error: 'xxxx")
    assert monitor("snapshot save \x01").startswith("error: '\\x01' cannot be a name")
    assert "bookmark NAME" in monitor("help") and "bookmark goto NAME" in monitor("help")
    monitor("bookmark three")
    assert "bookmarks: 1 (no state held)\n" in monitor("history")


def test_a_bookmark_set_in_an_interrupt_handler_goes_back_into_it(tmp_path: Path) -> None:
    """A stop at a breakpoint on the handler's first instruction: the handler's pc at the icount where the
    interrupt was entered; going to the bookmark in a replay lands there, in the handler (a board where a seek
    to that icount stands before the entry enters it again, as a backward continue does)."""
    timeline, monitor = live("timer")
    handler = load_image(guest("rv32", "timer")).symbols["trap_handler"]
    timeline.add_breakpoint(handler)
    result = timeline.run_forward()
    assert result.pc == handler
    timeline.remove_breakpoint(handler)
    digest = timeline.machine.digest()
    assert monitor("bookmark isr") == f"bookmark 'isr' at icount {result.icount}, pc {handler:#x}\n"
    timeline.run_forward()
    replay, monitor = opened(save(timeline, tmp_path))
    assert monitor("bookmark goto isr").startswith(f"icount {result.icount}, pc {handler:#x}\n")
    assert replay.machine.digest() == digest


def test_a_goto_through_a_divergence_ends_history_where_it_started(compute: Saved) -> None:
    """A verification point the replay does not match on the way to a bookmark: the monitor says so, history
    ends where the command started (as for a resume) and the session goes on."""

    def wrong_digest(kind: int, first: int, last: int, raw: bytes) -> list[tuple[int, int, int, bytes]]:
        if kind != ChunkKind.EVENTS:
            return [(kind, first, last, raw)]
        prefix, start = get_varint(memoryview(raw), 0)
        events = [Verify(e.icount, bytes(16)) if isinstance(e, Verify) and e.icount == 2 << 20 else e
                  for e in decode_events(raw[start:], prefix, last)]  # fmt: skip
        return [(kind, first, last, varint(prefix) + encode_events(events, prefix))]

    timeline, monitor = opened(rewrite(compute.data, wrong_digest))
    reply = monitor("bookmark goto B")
    assert reply.startswith("error: ") and "2097152" in reply and "history ends at icount 0" in reply
    assert timeline.icount == timeline.end == 0
    assert monitor("snapshot load A").startswith("error: snapshot 'A' at icount 3000123 lies past the end of history")
    assert monitor("icount") == "0\n"


def test_a_bookmark_in_a_fault_handler_enters_the_fault_again(tmp_path: Path) -> None:
    """Cortex-M: a stop at a breakpoint on HardFault_Handler is at the faulting instruction's icount, in the
    handler; a seek to that icount stands before the fault. Going to the bookmark in a replay runs on into
    the handler without retiring an instruction: the very state the live session saw."""
    image = load_image(ROOT / "tests" / "guests" / "cortexm" / "build" / "hardfault.elf")
    handler = image.symbols["HardFault_Handler"] & ~1
    inputs = HistoryInputs([], 0, ScriptedInputs())
    machine = make_machine(image, inputs, lambda b: None)
    timeline = Timeline(machine, inputs, SnapshotStore())
    monitor = Monitor(timeline, lambda: "", lambda path, overwrite: "")
    timeline.add_breakpoint(handler)
    stop = timeline.run_forward()
    assert stop.pc == handler
    timeline.remove_breakpoint(handler)
    digest = machine.digest()
    monitor("bookmark fault")
    timeline.run_forward(until=stop.icount + 1000)
    m = timeline.machine
    header = make_header(m.image, m.arch.name, m.config.ram_size, 3, "off", {}, m)
    loaded = load(save_timeline(timeline, header, tmp_path, "fault.chrec").read_bytes())
    replay_inputs = history_inputs(loaded)
    replay = open_recording(loaded, make_machine(image, replay_inputs, lambda b: None, m.config), replay_inputs)
    monitor = Monitor(replay, lambda: "", lambda path, overwrite: "")
    assert not monitor(f"seek {stop.icount}").startswith(f"icount {stop.icount}, pc {handler:#x}\n")
    assert monitor("seek 0").startswith("icount 0")
    assert monitor("bookmark goto fault").startswith(f"icount {stop.icount}, pc {handler:#x}\n")
    assert replay.machine.digest() == digest
    replay.bookmarks.marks["elsewhere"] = Bookmark(stop.icount, 0x1234)  # a pc it cannot get to: the seek's place
    monitor("seek 0")
    assert monitor("bookmark goto elsewhere").startswith(f"icount {stop.icount}, pc ")
    assert replay.machine.pc != handler and replay.icount == stop.icount
