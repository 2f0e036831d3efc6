"""The query index: what one pass over a history learns for the query engine (:mod:`replay.query`).

One forward pass over ``[start, end)`` of a timeline, window by window (the timeline's periodic snapshot
interval), notes for each window:

- the RAM pages that *may* have been written there (page identity of the snapshots at its two ends, as the
  reverse write watchpoint uses it: a page object shared by both is provably unwritten; every other page of
  RAM counts as maybe written, so the index only ever skips work);
- a snapshot at its start (kept in the timeline's store; and, encoded, in the cache file);

and for the whole pass every trap taken (:class:`Trap`: icount, handler, cause, and the icount at which the
interrupted code went on, found with a breakpoint on its resume address armed only while the trap is open).
The pass also fills the timeline's execution index (:mod:`replay.code_index`), which ``calls`` uses.

The cache file beside a recording (``REC.index``) holds all of it, so a second query of the same recording
replays only the windows that can hold its answers. It is versioned and tied to the recording by the
recording's SHA-256; a stale, damaged or crafted cache is ignored (a warning) and rebuilt. Layout::

    b"CHRQIDX\\n" | u16 version | 32-byte SHA-256 of the recording | 32-byte BLAKE2b of the body
    | u64 body length (compressed) | u64 body length (inflated, at most MAX_BODY) | body (zstandard)

the inflated body being varints: start, end, interval; window count, then per window its start, log
position, state length and state (:func:`machine.state.encode_state`), and its written pages as ranges
(count + 1, 0 for "all of RAM"; each range a gap from the previous range's end and a length); trap count,
then per trap icount, handler, resume, cause, interrupt flag, returned + 1 (0: not in history); then the
execution index's entries (:func:`replay.code_index.encode_entries`, its first start first).
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from machine.ram import NODE_PAGES, PAGE, PageTable
from machine.results import RunKind, TrapEntry
from machine.state import StateError, decode_state, encode_state

from .code_index import decode_entries, encode_entries
from .errors import ReplayDivergence
from .log import MAX_ICOUNT, RecordingError, get_varint, put_varint
from .snapshot import Snapshot
from .timeline import Timeline

log = logging.getLogger(__name__)

MAGIC = b"CHRQIDX\n"
VERSION = 1
MAX_BODY = 1 << 30  # an index inflates to at most this (states of a 2 GiB RAM are refused sooner: per state)
_HEAD = struct.Struct("<8sH32s32sQQ")

PageRanges = tuple[tuple[int, int], ...]  # (first page, count) sorted, disjoint; None elsewhere: all of RAM


@dataclass(frozen=True, slots=True)
class Trap:
    """A trap or interrupt taken in history, and when the interrupted code went on."""

    icount: int  # the handler's first instruction runs at this icount
    handler: int
    resume: int  # where the interrupted code goes on (the saved pc)
    cause: int  # the architecture's number for it (see machine.results.TrapEntry)
    interrupt: bool
    returned: int | None  # the icount at which execution was back at ``resume`` (None: not in history)


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end)`` of history, and the RAM pages that may have been written there (None: any)."""

    start: int
    end: int
    written: PageRanges | None

    def may_write(self, first_page: int, last_page: int) -> bool:
        """Whether a page of ``[first_page, last_page]`` may have been written in this window."""
        if self.written is None:
            return True
        return any(p <= last_page and first_page < p + n for p, n in self.written)


@dataclass
class QueryIndex:
    """The windows of ``[start, end)`` and the traps taken there; see the module's docstring."""

    start: int
    end: int
    interval: int
    windows: list[Window] = field(default_factory=list)
    traps: list[Trap] = field(default_factory=list)
    snapshots: dict[int, Snapshot] = field(default_factory=dict)  # window start -> its snapshot

    def windows_between(self, start: int, end: int) -> list[Window]:
        """The windows overlapping ``[start, end)``, in order."""
        return [w for w in self.windows if w.start < end and start < w.end]


# -- building --------------------------------------------------------------------------------------
def written_pages(earlier: PageTable, later: PageTable) -> PageRanges | None:
    """Pages of RAM not provably unwritten between two images (identity, as :func:`machine.ram.is_shared_between`)."""
    if len(earlier.nodes) != len(later.nodes):
        return None
    ranges: list[tuple[int, int]] = []

    def note(page: int, count: int) -> None:
        if ranges and ranges[-1][0] + ranges[-1][1] == page:
            ranges[-1] = (ranges[-1][0], ranges[-1][1] + count)
        else:
            ranges.append((page, count))

    for n, (a, b) in enumerate(zip(earlier.nodes, later.nodes, strict=True)):
        if a is not None and a is b:
            continue
        if a is None or b is None:
            note(n * NODE_PAGES, NODE_PAGES)
            continue
        for i, (pa, pb) in enumerate(zip(a, b, strict=True)):
            if pa is None or pa is not pb:
                note(n * NODE_PAGES + i, 1)
    return tuple(ranges)


def build_index(timeline: Timeline, progress: Callable[[int], None] | None = None,
                base: QueryIndex | None = None) -> QueryIndex:  # fmt: skip
    """One pass over the whole history (see the module's docstring); the timeline ends where it was.

    ``base``: an index of an earlier, shorter state of the same history (a live one that grew): its whole
    windows are kept and the pass starts where they end.
    """
    machine = timeline.machine
    here = timeline.icount
    start, end, interval = timeline.start, timeline.end, timeline.interval
    index = QueryIndex(start, end, interval)
    tracked = machine.is_ram_tracked
    open_traps: list[list[int]] = []  # [icount, handler, resume, cause, interrupt] while not returned
    traps: list[Trap] = []
    at = start
    if base is not None and (base.start, base.interval) == (start, interval) and base.end <= end:
        kept = [w for w in base.windows if w.end % interval == 0 or w.end == end]
        if kept:
            at = kept[-1].end
            index.windows = kept
            index.snapshots = {w.start: base.snapshots[w.start] for w in kept if w.start in base.snapshots}
            traps = [t for t in base.traps if t.icount < at and t.returned is not None and t.returned < at]
            open_traps = [[t.icount, t.handler, t.resume, t.cause, int(t.interrupt)] for t in base.traps
                          if t.icount < at and (t.returned is None or t.returned >= at)]  # fmt: skip

    def on_trap(entry: TrapEntry) -> None:
        try:
            machine.add_breakpoint(entry.resume)  # armed now: the run goes on from the handler
        except ValueError:  # not an address code can be at: it never returns there
            traps.append(Trap(entry.icount, entry.handler, entry.resume, entry.cause, entry.interrupt, None))
            return
        open_traps.append([entry.icount, entry.handler, entry.resume, entry.cause, int(entry.interrupt)])

    def resumes() -> set[int]:
        return {t[2] for t in open_traps}

    timeline.restore_at(at)
    machine.trap_tap = on_trap
    try:
        while at < end:
            window_end = min(end, (at // interval + 1) * interval)
            snapshot = timeline.snapshot() if not timeline.store.has(at) else timeline.store.at_or_before(at)
            index.snapshots[at] = snapshot
            machine.arm(resumes(), ())
            resume = False
            while True:
                result = timeline.run_to(window_end, resume=resume)
                resume = True
                if result.kind == RunKind.BREAKPOINT:
                    _close_traps(open_traps, traps, machine.pc, machine.icount)
                    machine.arm(resumes(), ())
                    continue
                if result.kind != RunKind.LIMIT and machine.icount < window_end:
                    raise ReplayDivergence(result.icount, f"the guest stopped ({result.describe()}) inside history")
                break
            later = machine.ram_image()
            written = written_pages(snapshot.state.ram, later) if tracked else None
            index.windows.append(Window(at, window_end, written))
            at = window_end
            if progress is not None:
                progress(at)
    finally:
        machine.trap_tap = None
        machine.arm((), ())
    traps += [Trap(t[0], t[1], t[2], t[3], bool(t[4]), None) for t in open_traps]
    index.traps = sorted(traps, key=lambda t: t.icount)
    timeline.seek(here)
    return index


def _close_traps(open_traps: list[list[int]], done: list[Trap], pc: int, icount: int) -> None:
    """Execution is at ``pc``: every open trap resuming there returned (a trap returns the first time execution
    is back at its resume address: also one whose handler chained into another's, as Cortex-M's tail-chaining
    does, or whose return was met by an interrupt taken before the instruction there)."""
    for t in [t for t in open_traps if t[2] == pc]:
        done.append(Trap(t[0], t[1], t[2], t[3], bool(t[4]), icount))
    open_traps[:] = [t for t in open_traps if t[2] != pc]


# -- the cache file ------------------------------------------------------------------------------------
def cache_path(recording: Path) -> Path:
    """Where a recording's query index is cached: beside it."""
    return recording.with_name(recording.name + ".index")


def recording_digest(recording: Path) -> bytes:
    """The SHA-256 the cache is tied to."""
    digest = hashlib.sha256()
    with open(recording, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def encode_index(index: QueryIndex, timeline: Timeline, recording_sha256: bytes) -> bytes:
    """The cache file's bytes (layout in the module's docstring)."""
    machine = timeline.machine
    body = bytearray()
    for value in (index.start, index.end, index.interval, len(index.windows)):
        put_varint(body, value)
    for window in index.windows:
        snapshot = index.snapshots[window.start]
        state = encode_state(snapshot.state, machine.arch, machine.uc)
        for value in (window.start, window.end, snapshot.log_position, len(state)):
            put_varint(body, value)
        body += state
        ranges = window.written
        put_varint(body, 0 if ranges is None else len(ranges) + 1)
        previous = 0
        for first, count in ranges or ():
            put_varint(body, first - previous)
            put_varint(body, count)
            previous = first + count
    put_varint(body, len(index.traps))
    for t in index.traps:
        for value in (t.icount, t.handler, t.resume, t.cause, int(t.interrupt), 0 if t.returned is None else
                      t.returned + 1):  # fmt: skip
            put_varint(body, value)
    entries = [e for e in timeline.code_index.entries() if e[1] <= index.end]
    put_varint(body, entries[0][0] if entries else index.start)
    body += encode_entries(entries)
    packed = zstandard.ZstdCompressor(level=3).compress(bytes(body))
    digest = hashlib.blake2b(packed, digest_size=32).digest()
    return _HEAD.pack(MAGIC, VERSION, recording_sha256, digest, len(packed), len(body)) + packed


def decode_index(data: bytes, timeline: Timeline, recording_sha256: bytes,
                 disks: tuple | None = None) -> tuple[QueryIndex, list]:  # fmt: skip
    """The index in a cache file, every byte checked (hostile input), and the execution-index entries it
    carries: RecordingError naming the first problem (the caller ignores the file then)."""
    if len(data) < _HEAD.size:
        raise RecordingError("query index: shorter than its header")
    magic, version, sha, digest, packed_len, body_len = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise RecordingError("query index: not a query index file")
    if version != VERSION:
        raise RecordingError(f"query index: version {version}, this chronicorn reads {VERSION}")
    if sha != recording_sha256:
        raise RecordingError("query index: made for another recording (or the recording changed)")
    packed = data[_HEAD.size :]
    if len(packed) != packed_len:
        raise RecordingError(f"query index: body of {len(packed)} bytes, the header says {packed_len}")
    if hashlib.blake2b(packed, digest_size=32).digest() != digest:
        raise RecordingError("query index: checksum mismatch (damaged)")
    if body_len > MAX_BODY:
        raise RecordingError(f"query index: body of {body_len} bytes is beyond the {MAX_BODY}-byte bound")
    try:
        body = zstandard.ZstdDecompressor().decompress(packed, max_output_size=body_len)
    except zstandard.ZstdError as exc:
        raise RecordingError(f"query index: cannot inflate: {exc}") from None
    if len(body) != body_len:
        raise RecordingError("query index: body inflates to another size than declared")
    return _parse_body(memoryview(body), timeline, disks)


def _parse_body(buf: memoryview, timeline: Timeline, disks: tuple | None) -> tuple[QueryIndex, list]:
    what = "query index"
    pos = 0

    def varint() -> int:
        nonlocal pos
        value, pos = get_varint(buf, pos, what)
        return value

    start, end, interval, count = varint(), varint(), varint(), varint()
    if (start, end) != (timeline.start, timeline.end) or interval != timeline.interval:
        raise RecordingError("query index: covers another history than this recording's")
    if count > (end - start) // max(1, interval) + 2:
        raise RecordingError(f"query index: {count} windows in {end - start} instructions")
    index = QueryIndex(start, end, interval)
    pages = len(timeline.machine.ram_image().nodes) * NODE_PAGES
    at = start
    for _ in range(count):
        w_start, w_end, log_position, size = varint(), varint(), varint(), varint()
        if w_start != at or not w_start < w_end <= end:
            raise RecordingError(f"query index: window at icount {w_start} is out of order")
        if size > len(buf) - pos:
            raise RecordingError(f"query index: state of {size} bytes at icount {w_start} runs past the end")
        if log_position > len(timeline.inputs.events):
            raise RecordingError(f"query index: window at icount {w_start} names event {log_position}")
        try:
            state = decode_state(buf[pos : pos + size], timeline.machine, disks)
        except StateError as exc:
            raise RecordingError(f"query index: state at icount {w_start}: {exc}") from None
        if state.icount != w_start:
            raise RecordingError(f"query index: the state for icount {w_start} is at icount {state.icount}")
        pos += size
        n = varint()
        written: PageRanges | None = None
        if n:
            ranges, previous = [], 0
            if n - 1 > (len(buf) - pos) // 2:
                raise RecordingError(f"query index: window at icount {w_start} claims {n - 1} page ranges")
            for _ in range(n - 1):
                first = previous + varint()
                length = varint()
                if length < 1 or first + length > pages:
                    raise RecordingError(f"query index: window at icount {w_start} names pages outside RAM")
                ranges.append((first, length))
                previous = first + length
            written = tuple(ranges)
        index.windows.append(Window(w_start, w_end, written))
        index.snapshots[w_start] = Snapshot(state, log_position)
        at = w_end
    if at != end:
        raise RecordingError(f"query index: windows end at icount {at}, history at {end}")
    n_traps = varint()
    if n_traps > (len(buf) - pos) // 6:
        raise RecordingError(f"query index: {n_traps} traps in {len(buf) - pos} bytes")
    for _ in range(n_traps):
        icount, handler, resume, cause, interrupt, returned = (varint() for _ in range(6))
        if not start <= icount <= end or returned > end + 1 or interrupt > 1:
            raise RecordingError(f"query index: trap at icount {icount} is outside history")
        index.traps.append(Trap(icount, handler, resume, cause, bool(interrupt), returned - 1 if returned else None))
    code_start = varint()
    entries = decode_entries(buf[pos:], code_start, min(end, MAX_ICOUNT - 1), 32 << 20)
    return index, entries


def load_cached(recording: Path, timeline: Timeline, disks: tuple | None = None) -> QueryIndex | None:
    """The cached index of ``recording`` for this timeline, or None (missing, stale, damaged: a warning)."""
    path = cache_path(recording)
    try:
        if not path.is_file():
            return None
        if path.stat().st_size > MAX_BODY:
            raise RecordingError("query index: file too large")
        data = path.read_bytes()
        index, entries = decode_index(data, timeline, recording_digest(recording), disks)
    except (OSError, RecordingError) as exc:
        log.warning("ignoring the query index %s: %s; rebuilding it", path, exc)
        return None
    for snapshot in index.snapshots.values():
        if not timeline.store.has(snapshot.icount):
            timeline.store.add(snapshot)
    if len(timeline.code_index) == 0 and entries:
        try:
            timeline.code_index.load(entries)
        except ValueError as exc:
            log.warning("ignoring the execution index in %s: %s", path, exc)
    return index


def save_cached(recording: Path, index: QueryIndex, timeline: Timeline) -> Path | None:
    """Write the index beside the recording (through a temporary file and a rename); None, with a warning,
    when the directory is not writable."""
    path = cache_path(recording)
    try:
        data = encode_index(index, timeline, recording_digest(recording))
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        try:
            umask = os.umask(0o022)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)  # as open() would create it (mkstemp makes it private)
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.warning("cannot cache the query index beside %s: %s", recording, exc.strerror or exc)
        return None
    return path


__all__ = ["PAGE", "QueryIndex", "Trap", "Window", "build_index", "load_cached", "save_cached", "written_pages"]
