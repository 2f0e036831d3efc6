"""Timeline to recording and back: the one saver and the one loader.

``record`` writes through a :class:`RecordingWriter` while the guest runs (events flushed at least every
second, so a killed recorder leaves a replayable prefix); ``monitor record save`` writes a whole live
history with the same writer in one go (:func:`save_timeline`). Both produce the same layout: the initial
snapshot, then events (inputs and verification points, in icount order) with keyframes (states after
debugger writes) between them at their icounts, then the End event. A timeline that has an execution
index (:attr:`Timeline.code_index`: one with periodic snapshots, run past its first interval) writes it too,
just before the End, in a format version 4 file; others (``record``'s) write version 3 files as before.
A timeline with bookmarks or named snapshots (:mod:`replay.bookmarks`) writes them after the index, in a
format version 6 file: the names, then each named snapshot's whole state.
:func:`open_recording` turns a loaded recording back into a :class:`~replay.timeline.Timeline` with its end
fixed, its index loaded (a backward continue skips windows at once) or, without one, built as it runs, its
bookmarks back and, served to gdb, its named snapshots pinned in the store (checked against history when first
loaded: :func:`replay.bookmarks.check_against_history`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from machine.machine import Machine
from machine.results import RunKind
from machine.state import DiskShape, StateError, decode_state, encode_state

from .bookmarks import Bookmark, NameEntry, NameKind, encode_named_state, encode_names
from .code_index import encode_entries
from .events import End, Event, Verify
from .history import HistoryInputs, InputEvent
from .log import FORMAT_VERSION, NAMED_FORMAT_VERSION, LogWriter, RecordingError
from .recording import Header, LoadedRecording, StoredState
from .snapshot import Snapshot
from .store import SnapshotBudgetError, SnapshotStore
from .timeline import Timeline

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 1.0
EVENTS_PER_CHUNK = 4096


class RecordingWriter:
    """Writes one timeline's history to a stream as it grows: :meth:`sync` often, :meth:`finish` once.

    The file carries the timeline's execution index (format version 4) when the timeline has one as the
    writer starts (``monitor record save``: the whole history); ``record``'s timeline keeps none (no
    periodic snapshots) and its files stay version 3, readable by any chronicorn that reads version 3.
    """

    def __init__(self, stream: BinaryIO, header: Header, timeline: Timeline,
                 now: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._timeline = timeline
        self._arch = timeline.machine.arch
        self._uc = timeline.machine.uc
        self._with_index = len(timeline.code_index) > 0
        self._with_names = bool(timeline.bookmarks.marks or timeline.store.names())  # (then: version 6)
        version = NAMED_FORMAT_VERSION if self._with_names else FORMAT_VERSION
        self._log = LogWriter(stream, replace(header, format_version=version).to_json(), version)
        self._now = now
        self._last_flush = now()
        self._inputs_written = 0
        self._verify_written = 0  # icount of the last verification point written
        self._keyframes_written: set[int] = set()
        self._pending = False  # a flush waits for the verification point it asked for
        initial = timeline.store.at_or_before(timeline.start)
        state = encode_state(initial.state, self._arch, self._uc)
        self._log.write_snapshot(initial.icount, initial.log_position, state)

    def maybe_sync(self) -> None:
        """:meth:`sync` if a second has passed since the last write (cheap: called at every checkpoint).

        It asks the timeline for a verification point where the live run stands, and writes when it has it:
        the file then vouches for the history up to there (a killed recorder's file replays to that point),
        however long the guest idles. The point is taken where the run stops for it, never inside a run.
        """
        if self._now() - self._last_flush >= FLUSH_INTERVAL_S and not self._pending:
            self._pending = True
            self._timeline.request_verify(self._flush)

    def _flush(self) -> None:
        self._pending = False
        self.sync()

    def sync(self, upto: int | None = None, end: End | None = None) -> None:
        """Write the inputs, verification points and keyframes recorded so far (at most to ``upto``), and
        ``end`` after them."""
        t = self._timeline
        if upto is None:  # (during a live run the machine is ahead of the frontier noted after the last run)
            upto = max(t.end, t.icount) if t.is_live else t.end
        start = self._inputs_written
        inputs = [e for e in t.inputs.events[start:] if e.icount <= upto]
        checks = sorted((Verify(i, d) for i, d in t.verify_points.items() if self._verify_written < i <= upto),
                        key=lambda e: e.icount)  # fmt: skip
        if checks:
            self._verify_written = checks[-1].icount
        for icount in sorted(k for k in t.keyframes if k not in self._keyframes_written and k <= upto):
            keyframe = t.keyframes[icount]
            # The inputs taken before the debugger's write at this icount, then the state after it.
            taken = max(0, keyframe.log_position - start)
            earlier = [c for c in checks if c.icount <= icount]
            self._write_events(inputs[:taken], earlier)
            inputs, checks, start = inputs[taken:], checks[len(earlier) :], start + taken
            self._log.write_snapshot(icount, keyframe.log_position, encode_state(keyframe.state, self._arch, self._uc))
            self._keyframes_written.add(icount)
        self._write_events(inputs, checks, end)
        self._inputs_written = start + len(inputs)
        self._last_flush = self._now()

    def _write_events(self, inputs: list[InputEvent], checks: list[Verify], end: End | None = None) -> None:
        events: list[Event] = sorted([*inputs, *checks], key=lambda e: e.icount)  # stable: inputs first
        events += [end] if end is not None else []
        for first in range(0, len(events), EVENTS_PER_CHUNK):
            self._log.write_events(events[first : first + EVENTS_PER_CHUNK])

    def finish(self, stopped: RunKind = RunKind.INTERRUPTED) -> End:
        """Write everything and the End event: the guest's own ending, else ``stopped`` at the end of history."""
        t = self._timeline
        ending = t.ending
        end = ending if ending is not None and ending.icount == t.end else End(t.end, stopped)
        if self._with_index or self._with_names:  # everything else, the index, names, then the End alone
            self.sync()
            if self._with_index:
                self._write_code_index(end.icount)
            if self._with_names:
                self._write_names(end.icount)
        self.sync(end=end)
        return end

    def _write_names(self, end: int) -> None:
        """The bookmarks and named snapshots within history, stamped at its end: the names, then each state."""
        t = self._timeline
        snapshots = [(name, t.store.named(name)) for name, icount in t.store.names() if icount <= end]
        entries = [NameEntry(name, NameKind.BOOKMARK, mark.icount, mark.pc)
                   for name, mark in sorted(t.bookmarks.marks.items()) if mark.icount <= end]  # fmt: skip
        entries += [NameEntry(name, NameKind.SNAPSHOT, snapshot.icount) for name, snapshot in snapshots if snapshot]
        left_out = len(t.bookmarks.marks) + len(t.store.names()) - len(entries)
        if left_out:
            log.warning("%d bookmarks or named snapshots past the end of history (%d) are not saved", left_out, end)
        self._log.write_bookmarks(end, len(entries), encode_names(entries))
        for name, snapshot in snapshots:
            if snapshot is not None:
                state = encode_state(snapshot.state, self._arch, self._uc)
                self._log.write_named_snapshot(end, snapshot.log_position,
                                               encode_named_state(name, snapshot.icount, state))  # fmt: skip

    def _write_code_index(self, end: int) -> None:
        """The index's entries within history (the last one cut at its end), stamped at the end."""
        entries = [e for e in self._timeline.code_index.entries() if e[0] < end]
        if entries and entries[-1][1] > end:
            entries[-1] = (entries[-1][0], end, entries[-1][2])
        start = entries[0][0] if entries else end
        self._log.write_code_index(end, start, encode_entries(entries))


def save_timeline(timeline: Timeline, header: Header, directory: Path, name: str, overwrite: bool = False) -> Path:
    """Write the whole history to ``directory/name`` through a temporary file and a rename.

    A failed save never leaves half a file, and an existing file is replaced only when ``overwrite``.
    The caller has checked that the path stays inside ``directory`` (:func:`resolve_inside`).
    """
    path = directory / name
    if path.exists() and not overwrite:
        raise FileExistsError(f"{name} exists (use -f to replace it)")
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        os.fchmod(fd, _file_mode())  # as open() would create it (mkstemp makes it private)
        with os.fdopen(fd, "wb") as stream:
            RecordingWriter(stream, header, timeline).finish()
            stream.flush()
            os.fsync(stream.fileno())
        if not overwrite and path.exists():
            raise FileExistsError(f"{name} exists (use -f to replace it)")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _file_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def resolve_inside(directory: Path, name: str) -> Path:
    """``directory/name`` after resolving symlinks, refused (ValueError) when it leaves ``directory``."""
    base = directory.resolve()
    if not name or "\0" in name:
        raise ValueError("no file name given")
    target = (base / name).resolve()
    if target.parent != base and base not in target.parents:
        raise ValueError(f"{name} is outside the save directory {base}")
    if target.is_dir():
        raise ValueError(f"{name} is a directory")
    return target


def check_state(
    stored: StoredState, machine: Machine, what: str, disks: tuple[DiskShape, ...] | None = None
) -> Snapshot:
    """A stored snapshot decoded for ``machine`` (RecordingError naming it when any byte of it is wrong);
    ``disks``: the recording's drives, to check a state on a machine built without them (see decode_state)."""
    try:
        return Snapshot(decode_state(stored.data, machine, disks), stored.log_position)
    except StateError as exc:
        raise RecordingError(f"the {what} snapshot at icount {stored.icount} is malformed: {exc}") from None


def open_recording(loaded: LoadedRecording, machine: Machine, inputs: HistoryInputs,
                   store: SnapshotStore | None = None, periodic_snapshots: bool = True,
                   interval: int | None = None) -> Timeline:  # fmt: skip
    """A fixed timeline over a loaded recording, on ``machine`` (built on ``inputs`` for its header).

    With periodic snapshots (a timeline served to gdb), the recording's execution index is loaded into
    :attr:`Timeline.code_index`; the timeline indexes the ground past it as it first runs there.
    """
    initial = check_state(loaded.initial, machine, "initial")
    keyframes = [check_state(k, machine, "keyframe") for k in loaded.keyframes]
    machine.restore_state(initial.state)
    timeline = Timeline(machine, inputs, store, interval, periodic_snapshots=periodic_snapshots)
    if periodic_snapshots and loaded.code_index is not None:
        # The machine's notes since here cover every window the timeline will harvest past the loaded
        # part: more code than ran there (a superset), which the index allows.
        timeline.code_index.load(loaded.code_index.entries)
    for keyframe in keyframes:
        timeline.add_keyframe(keyframe)
    timeline.verifier.load(loaded.verify_points)
    timeline.ending = loaded.end
    timeline.bookmarks.marks.update(loaded.bookmarks)
    if periodic_snapshots:  # (served to gdb: ``replay`` without --port goes to the end only)
        _load_named(loaded, timeline)
    return timeline


def _load_named(loaded: LoadedRecording, timeline: Timeline) -> None:
    """Pin the recording's named snapshots in the store, to be checked against history when first loaded; one
    that is malformed or does not fit half the snapshot budget (the other half stays for the snapshots replay
    takes: loaded states share no RAM pages) becomes a bookmark at its icount (with a warning)."""
    store = timeline.store
    degraded: list[tuple[str, int, str]] = []
    for named in loaded.named_snapshots:
        name, stored = named.name, named.state
        why = None
        try:
            snapshot = check_state(stored, timeline.machine, f"named {name!r}")
            if snapshot.icount != stored.icount:
                raise RecordingError(f"the named snapshot {name!r} holds a state at icount {snapshot.icount}, "
                                     f"not {stored.icount}")  # fmt: skip
            store.name(name, snapshot)
        except RecordingError as exc:
            why = str(exc)
        except SnapshotBudgetError:
            why = _HALF_BUDGET
        else:
            if store.stats().pinned_bytes > store.budget // 2:
                store.delete(name)
                why = _HALF_BUDGET
        if why is None:
            timeline.bookmarks.unchecked.add(name)
            continue
        degraded.append((name, stored.icount, why))
        timeline.bookmarks.marks[name] = Bookmark(stored.icount)
    if degraded:  # (one line: many may not fit a small budget)
        name, icount, why = degraded[0]
        more = f" (and {len(degraded) - 1} more: see monitor snapshot list)" if len(degraded) > 1 else ""
        log.warning("the recording's snapshot %r (icount %d) is a bookmark: %s%s", name, icount, why, more)


_HALF_BUDGET = ("it does not fit half the snapshot budget, what a recording's named snapshots may pin (the rest is "
                "for the snapshots replay takes): start with a larger --snapshot-budget to load it")  # fmt: skip


def history_inputs(loaded: LoadedRecording) -> HistoryInputs:
    """The fixed input history of a recording: its events, its end fixed at the last icount it vouches for."""
    return HistoryInputs(list(loaded.inputs), loaded.last_icount)
