"""The query index and its cache beside a recording (replay/query_index.py, gdbstub/query.py).

A query answers the same with the cache, without it (``cache=False``, ``--no-cache``) and with windows of
another interval; a damaged, stale or foreign cache is ignored with a warning and rebuilt (answers unchanged,
never a traceback); the cache is written with the permissions ``open()`` gives, and not at all in a read-only
directory (answers still right); the page sets the index keeps cover every page written in their window.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdbstub.cli import timelines
from gdbstub.query import open_engine
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import Machine
from machine.ram import PAGE
from machine.watch import WatchKind
from replay.code_index import encode_entries
from replay.history import HistoryInputs
from replay.log import RecordingError
from replay.query import QueryEngine
from replay.query_index import (
    _HEAD,
    MAGIC,
    MAX_BODY,
    VERSION,
    build_index,
    cache_path,
    decode_index,
    encode_index,
    load_cached,
    recording_digest,
)
from replay.saver import open_recording
from replay.store import SnapshotStore
from replay.timeline import Timeline
from tests.conftest import GUESTS, ROOT, guest, require_tool

CMDINT = guest("rv32", "cmdint")  # timer and UART interrupts, a ring buffer, a probe struct
TIMER = guest("rv32", "timer")
BUG_INPUT = GUESTS / "inputs" / "cmdint-bug.txt"
OK_INPUT = GUESTS / "inputs" / "cmdint-ok.txt"
SYMBOLS = load_image(CMDINT).symbols
WATCHED = [("probe", 28), ("ticks", 4), ("ring", 16), ("window", 8)]
CALLED = ["trap_handler", "uart_puts", "memset", "assert_failed"]
OTHER_INTERVAL = 1000
WARNING = "ignoring the query index"


def record(elf: Path, out: Path, uart_input: Path | None = None) -> Path:
    args = [sys.executable, "-m", "gdbstub.cli", "record", str(elf), "-o", str(out)]
    args += ["--uart-input", str(uart_input)] if uart_input is not None else []
    done = subprocess.run(args, capture_output=True, timeout=120, cwd=ROOT)
    assert out.is_file(), done.stderr.decode(errors="replace")
    return out


def timeline_with_interval(path: Path, interval: int) -> Timeline:
    """A recording's timeline as the commands build it, with snapshot windows of ``interval``."""
    args = argparse.Namespace(guest=None, ram=None, icount_shift=None, drive=[])
    with mock.patch.object(timelines, "open_recording", functools.partial(open_recording, interval=interval)):
        return timelines.recording_timeline(args, timelines.read_recording(path), show_output=False)


def answers(engine: QueryEngine, few: bool = False) -> dict[str, Any]:
    """A battery of questions about cmdint's recording (every kind, whole history and a part of it); ``few``:
    one of each kind that uses the index (the damage cases: many, each rebuilding the cache)."""
    end = engine.timeline.end
    if few:
        probe, handler = SYMBOLS["probe"], SYMBOLS["trap_handler"]
        return {"WRITE probe": engine.accesses(probe, 28, WatchKind.WRITE), "calls trap_handler": engine.calls(handler),
                "interrupts": engine.interrupts()}  # fmt: skip
    out: dict[str, Any] = {}
    for name, size in WATCHED:
        for kind in WatchKind:
            out[f"{kind.name} {name}"] = engine.accesses(SYMBOLS[name], size, kind)
        out[f"WRITE {name} part"] = engine.accesses(SYMBOLS[name], size, WatchKind.WRITE, end // 2, end - 1000)
    for name in CALLED:
        out[f"calls {name}"] = engine.calls(SYMBOLS[name])
    out["interrupts"] = engine.interrupts()
    out["interrupts part"] = engine.interrupts(end // 2, end)
    out["values"] = [engine.value_at(SYMBOLS["probe"], 28, at) for at in range(0, end + 1, end // 7)]
    return out


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cmdint recorded with the bug input (never cached: tests query copies of it)."""
    return record(CMDINT, tmp_path_factory.mktemp("query-index") / "cmdint.chrec", BUG_INPUT)


@pytest.fixture(scope="module")
def expected(original: Path) -> dict[str, Any]:
    found = answers(open_engine(original, cache=False))
    assert not cache_path(original).exists()
    assert found["interrupts"] and found["WRITE probe"] and found["calls trap_handler"]  # not vacuous
    return found


@pytest.fixture
def rec(original: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(original, tmp_path / "cmdint.chrec"))


def cached_bytes(rec: Path) -> bytes:
    """Build and write the cache of ``rec`` (as the first query does); its bytes."""
    engine = open_engine(rec)
    engine.ensure_index()
    return cache_path(rec).read_bytes()


# -- the cache is used, and answers the same ------------------------------------------------------------
def test_cache_is_written_beside_the_recording_and_read_back(rec: Path, expected: dict[str, Any]) -> None:
    first = open_engine(rec)
    assert first.index is None  # nothing cached yet
    assert answers(first) == expected
    path = cache_path(rec)
    assert path == rec.with_name("cmdint.chrec.index") and path.is_file()
    assert sorted(p.name for p in rec.parent.iterdir()) == ["cmdint.chrec", "cmdint.chrec.index"]  # no leftovers
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() creates files, not mkstemp's 0600
    written = path.stat().st_mtime_ns
    second = open_engine(rec)
    assert second.index is not None  # read from the cache, not rebuilt
    assert answers(second) == expected
    assert path.stat().st_mtime_ns == written  # not written again


def test_no_cache_neither_reads_nor_writes(
    rec: Path, expected: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    assert answers(open_engine(rec, cache=False)) == expected
    assert not cache_path(rec).exists()
    cache_path(rec).write_bytes(b"not an index")
    with caplog.at_level(logging.WARNING):
        assert answers(open_engine(rec, cache=False), few=True) == few(expected)
    assert WARNING not in caplog.text
    assert cache_path(rec).read_bytes() == b"not an index"


def test_windows_of_another_interval_answer_the_same(original: Path, expected: dict[str, Any]) -> None:
    engine = QueryEngine(timeline_with_interval(original, OTHER_INTERVAL))
    assert answers(engine) == expected
    index = engine.ensure_index()
    assert len(index.windows) == -(-engine.timeline.end // OTHER_INTERVAL)
    assert all(not w.may_write(0, 0) for w in index.windows)  # the page of code: skipped by writes


def test_index_round_trips_through_its_encoding(original: Path) -> None:
    timeline = timeline_with_interval(original, OTHER_INTERVAL)
    index = build_index(timeline)
    sha = recording_digest(original)
    data = encode_index(index, timeline, sha)
    decoded, entries = decode_index(data, timeline, sha)
    assert (decoded.start, decoded.end, decoded.interval) == (index.start, index.end, index.interval)
    assert decoded.windows == index.windows and decoded.traps == index.traps
    assert sorted(decoded.snapshots) == sorted(index.snapshots)
    assert encode_entries(entries) == encode_entries([e for e in timeline.code_index.entries() if e[1] <= index.end])
    assert encode_index(decoded, timeline, sha) == data


def test_window_page_sets_cover_every_page_written(original: Path) -> None:
    """Soundness of skipping: a page whose bytes differ between a window's two ends is in its page set."""
    timeline = timeline_with_interval(original, OTHER_INTERVAL)
    machine = timeline.machine
    index = build_index(timeline)
    base, size = 0x8000_0000, 0x6000  # cmdint's code, data and stack
    offset = machine.ram_offset(base, size)
    assert offset is not None

    def pages_at(icount: int) -> list[bytes]:
        timeline.restore_at(icount)
        data = machine.memory.read(base, size)
        return [data[i : i + PAGE] for i in range(0, size, PAGE)]

    changed_somewhere = False
    for window in index.windows:
        before, after = pages_at(window.start), pages_at(window.end)
        for n, (a, b) in enumerate(zip(before, after, strict=True)):
            if a != b:
                changed_somewhere = True
                assert window.may_write(offset // PAGE + n, offset // PAGE + n), (window, n)
    assert changed_somewhere


# -- damaged, stale and foreign caches ------------------------------------------------------------------------
def flip(offset: int) -> Any:
    def damage(data: bytes) -> bytes:
        out = bytearray(data)
        out[offset % len(out)] ^= 0x5A
        return bytes(out)

    return damage


def with_version(version: int) -> Any:
    def damage(data: bytes) -> bytes:
        magic, _, *rest = _HEAD.unpack_from(data)
        return _HEAD.pack(magic, version, *rest) + data[_HEAD.size :]

    return damage


def reinflated(change: Any) -> Any:
    """The body inflated, changed, compressed again, with a correct checksum: a crafted file."""

    def damage(data: bytes) -> bytes:
        magic, version, sha, _, _, _ = _HEAD.unpack_from(data)
        body = change(zstandard.ZstdDecompressor().decompress(data[_HEAD.size :]))
        return pack(body, sha, version)

    return damage


def pack(body: bytes, sha: bytes, version: int = VERSION) -> bytes:
    return raw(zstandard.ZstdCompressor().compress(body), len(body), sha, version)


def raw(packed: bytes, body_len: int, sha: bytes, version: int = VERSION) -> bytes:
    """A cache file of these compressed bytes, declared to inflate to ``body_len``, with a correct checksum."""
    digest = hashlib.blake2b(packed, digest_size=32).digest()
    return _HEAD.pack(MAGIC, version, sha, digest, len(packed), body_len) + packed


DAMAGE = {
    "empty": lambda d: b"",
    "magic only": lambda d: d[:8],
    "header minus one": lambda d: d[: _HEAD.size - 1],
    "header only": lambda d: d[: _HEAD.size],
    "half": lambda d: d[: len(d) // 2],
    "last byte dropped": lambda d: d[:-1],
    "byte appended": lambda d: d + b"\0",
    "magic flipped": flip(0),
    "version flipped": flip(8),
    "recording sha flipped": flip(10),
    "checksum flipped": flip(_HEAD.size - 20),
    "body length flipped": flip(_HEAD.size - 16),
    "inflated length flipped": flip(_HEAD.size - 8),
    "body flipped": flip(_HEAD.size + 40),
    "last byte flipped": flip(-1),
    "version 0": with_version(0),
    "next version": with_version(VERSION + 1),
    "body truncated, checksum right": reinflated(lambda b: b[: len(b) // 2]),
    "body extended, checksum right": reinflated(lambda b: b + b"\x01" * 9),
    "first window moved, checksum right": reinflated(lambda b: b[:3] + bytes([b[3] ^ 1]) + b[4:]),
    "zeros, checksum right": reinflated(lambda b: bytes(len(b))),
    "0xff, checksum right": reinflated(lambda b: b"\xff" * len(b)),
    "declared beyond the bound": lambda d: raw(zstandard.ZstdCompressor().compress(b"x"), MAX_BODY + 1, d[10:42]),
    "inflates past its declared size": lambda d: raw(
        zstandard.ZstdCompressor().compress(bytes(1 << 20)), 100, d[10:42]
    ),
    "inflates short of its declared size": lambda d: raw(zstandard.ZstdCompressor().compress(b"abc"), 1000, d[10:42]),
    "not zstandard": lambda d: raw(zlib.compress(b"abcd"), 4, d[10:42]),
}


def few(expected: dict[str, Any]) -> dict[str, Any]:
    """The answers of ``answers(engine, few=True)`` among all of them."""
    return {k: expected[k] for k in ("WRITE probe", "calls trap_handler", "interrupts")}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_damaged_cache_is_ignored_and_rebuilt(
    damage: str, rec: Path, expected: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    good = cached_bytes(rec)
    cache_path(rec).write_bytes(DAMAGE[damage](good))
    with caplog.at_level(logging.WARNING, logger="replay.query_index"):
        engine = open_engine(rec)
    assert engine.index is None
    assert [r.getMessage() for r in caplog.records if WARNING in r.getMessage()], caplog.text
    assert answers(engine, few=True) == few(expected)
    assert cache_path(rec).read_bytes() == good  # rebuilt, byte for byte
    assert open_engine(rec).index is not None


def test_another_recordings_cache_is_ignored(
    rec: Path, tmp_path: Path, expected: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    other = record(TIMER, tmp_path / "timer.chrec")
    shutil.copy(Path(cached_bytes_path(other)), cache_path(rec))
    with caplog.at_level(logging.WARNING):
        engine = open_engine(rec)
    assert engine.index is None and "made for another recording" in caplog.text
    assert answers(engine, few=True) == few(expected)


def cached_bytes_path(rec: Path) -> Path:
    cached_bytes(rec)
    return cache_path(rec)


def test_cache_of_the_recording_before_it_was_made_again_is_ignored(
    rec: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same path recorded again (another input): the old cache is stale, ignored, replaced."""
    stale = cached_bytes(rec)
    record(CMDINT, rec, OK_INPUT)
    fresh = answers(open_engine(rec, cache=False), few=True)
    with caplog.at_level(logging.WARNING):
        engine = open_engine(rec)
    assert engine.index is None and "made for another recording" in caplog.text
    assert answers(engine, few=True) == fresh
    assert cache_path(rec).read_bytes() != stale


def test_cache_of_other_windows_is_ignored(
    rec: Path, expected: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A cache built with another snapshot interval covers other windows: not this timeline's."""
    timeline = timeline_with_interval(rec, OTHER_INTERVAL)
    cache_path(rec).write_bytes(encode_index(build_index(timeline), timeline, recording_digest(rec)))
    with caplog.at_level(logging.WARNING):
        engine = open_engine(rec)
    assert engine.index is None and "another history" in caplog.text
    assert answers(engine, few=True) == few(expected)


def test_cache_that_is_a_directory_or_fifo_is_ignored(rec: Path, expected: dict[str, Any]) -> None:
    cache_path(rec).mkdir()
    engine = open_engine(rec)
    assert answers(engine, few=True) == few(expected)  # (and not written: a directory is in the way)
    assert cache_path(rec).is_dir()
    cache_path(rec).rmdir()
    os.mkfifo(cache_path(rec))
    assert answers(open_engine(rec), few=True) == few(expected)  # a FIFO is not read (it would block) but replaced


@settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_crafted_bodies_fail_as_recording_errors(original: Path, data: st.DataObject) -> None:
    """Hostile bodies with correct checksums: decode_index raises RecordingError or decodes; nothing else."""
    timeline = timeline_with_interval(original, OTHER_INTERVAL)
    body_source = _body(original)
    body = bytearray(body_source)
    for _ in range(data.draw(st.integers(1, 4), label="changes")):
        at = data.draw(st.integers(0, len(body) - 1), label="at")
        how = data.draw(st.sampled_from(["set", "insert", "delete"]), label="how")
        value = data.draw(st.integers(0, 255), label="value")
        if how == "set":
            body[at] = value
        elif how == "insert":
            body.insert(at, value)
        else:
            del body[at]
    sha = recording_digest(original)
    with contextlib.suppress(RecordingError):
        decode_index(pack(bytes(body), sha), timeline, sha)


@functools.cache
def _body(original: Path) -> bytes:
    timeline = timeline_with_interval(original, OTHER_INTERVAL)
    data = encode_index(build_index(timeline), timeline, recording_digest(original))
    return zstandard.ZstdDecompressor().decompress(data[_HEAD.size :])


def test_load_cached_without_a_file_is_quiet(rec: Path, caplog: pytest.LogCaptureFixture) -> None:
    timeline = timeline_with_interval(rec, OTHER_INTERVAL)
    with caplog.at_level(logging.DEBUG, logger="replay.query_index"):
        assert load_cached(rec, timeline) is None
    assert not caplog.records


# -- where the cache may not be written -------------------------------------------------------------------------
def run_cli_in_readonly(directory: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``chronicorn ARGS`` with ``directory`` read-only: its mode when not root; for root (whom modes do not
    stop) a read-only bind mount in a private mount namespace of the command alone."""
    command = [sys.executable, "-m", "gdbstub.cli", *args]
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            return subprocess.run(command, capture_output=True, timeout=120, cwd=ROOT)
        finally:
            directory.chmod(0o755)
    unshare = shutil.which("unshare")
    require_tool(unshare, "unshare (util-linux): a read-only directory for root")
    script = 'mount -o bind,ro "$0" "$0" && exec "$@"'
    return subprocess.run([str(unshare), "-rm", "sh", "-c", script, str(directory), *command],
                          capture_output=True, timeout=120, cwd=ROOT)  # fmt: skip


def test_readonly_directory_gets_no_cache_and_right_answers(rec: Path) -> None:
    plain = subprocess.run([sys.executable, "-m", "gdbstub.cli", "query", str(rec), "writes", "probe", "--json",
                            "--no-cache"], capture_output=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    done = run_cli_in_readonly(rec.parent, "query", str(rec), "writes", "probe", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stdout == plain.stdout
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chronicorn: ") and "cannot cache the query index" in lines[0]
    assert sorted(p.name for p in rec.parent.iterdir()) == ["cmdint.chrec"]


def test_cli_with_a_damaged_cache_warns_in_one_line(rec: Path) -> None:
    good = cached_bytes(rec)
    command = [sys.executable, "-m", "gdbstub.cli", "query", str(rec), "interrupts", "--csv"]
    clean = subprocess.run(command, capture_output=True, timeout=120, cwd=ROOT)
    cache_path(rec).write_bytes(flip(len(good) // 2)(good))
    damaged = subprocess.run(command, capture_output=True, timeout=120, cwd=ROOT)
    assert (damaged.returncode, damaged.stdout) == (clean.returncode, clean.stdout) == (0, clean.stdout)
    lines = damaged.stderr.decode().splitlines()
    assert len(lines) == 1 and "checksum mismatch" in lines[0] and "Traceback" not in damaged.stderr.decode()
    assert cache_path(rec).read_bytes() == good


# -- a live history (serve) that grows between queries ----------------------------------------------------
def test_index_of_a_growing_live_history_is_the_index_built_afresh() -> None:
    """``serve`` queries while the guest runs on: the index grows from the last one (its whole windows kept,
    its open traps carried) and must answer as an index built from scratch over the same history."""
    schedule = [(17_000 + 1_500 * i, line) for i, line in enumerate([b"sample\n", b"scale 3\n", b"wait 1\n"] * 5)]
    inputs = HistoryInputs([], 0, ScriptedInputs(schedule=schedule))
    machine = Machine(load_image(CMDINT), inputs, lambda byte: None)
    timeline = Timeline(machine, inputs, SnapshotStore(), interval=4096)
    grown = QueryEngine(timeline)

    def ask(engine: QueryEngine) -> tuple[Any, ...]:
        return (engine.interrupts(), engine.accesses(SYMBOLS["ticks"], 4, WatchKind.WRITE),
                engine.accesses(SYMBOLS["probe"], 28, WatchKind.ACCESS), engine.calls(SYMBOLS["trap_handler"]),
                engine.calls(SYMBOLS["uart_putc"]))  # fmt: skip

    for until in (17_500, 18_700, 21_000, 28_672, 30_001):  # (28_672: a window's end)
        timeline.run_forward(until=until)
        assert (timeline.icount, timeline.end) == (until, until)
        answers_grown = ask(grown)
        assert answers_grown == ask(QueryEngine(timeline))
        assert timeline.icount == until
    assert all(answers_grown[:4]) and len(grown.ensure_index().windows) == -(-30_001 // 4096)
