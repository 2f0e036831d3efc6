"""Bookmarks and named snapshots: names for moments of history, kept with the timeline and in recordings.

A *bookmark* (``monitor bookmark NAME``) names an icount and the pc there: cheap, no machine state; going to
it is a seek. A *named snapshot* (``monitor snapshot save NAME``) holds the whole machine state and lives in
the snapshot store, pinned. Both share one namespace: a name means one place in history.

A recording carries them in format version 6 (:mod:`replay.log`): one bookmarks chunk (kind 4) listing every
name, then one chunk (kind 5) per named snapshot holding its state, so ``replay --port`` has them again
without re-running. The bookmarks chunk's payload, after its varint prefix (the number of entries), is::

    entry*: varint name length (1..MAX_NAME_BYTES) | name (UTF-8) | varint kind (0 bookmark, 1 snapshot)
            | varint icount | bookmarks only: varint pc + 1 (0: not known)

A named snapshot chunk's payload, after its varint prefix (the snapshot's log position)::

    varint name length | name | varint icount | machine state (machine.state.encode_state)

Names are checked as the monitor checks them (:func:`name_problem`), unique, every length against the bytes
left before use; icounts lie within the chunk's stamp (the end of history). A recording's names are only an
annotation of its history: one that is malformed is left out with a warning (a named snapshot whose state
cannot be used becomes a bookmark at its icount), never an error, and the history replays as without it.

Trust. A named snapshot read from a file is a claim about history, checked before it is first used
(:func:`check_against_history`): the state must decode on the machine, lie inside history with a log position
that fits the events, and agree with the recording's next verification point (registers, CSRs and network
output) when replayed forward to it. One that contradicts history is refused and becomes a bookmark (going
there replays history). What no verification point covers (RAM the guest does not read before the next
point, or a snapshot with no point after it before the end or a keyframe) is trusted as the file's initial
snapshot and keyframes are: the monitor says so.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from machine.results import RunKind

from .log import MAX_ICOUNT, RecordingError, get_varint, put_varint
from .snapshot import Snapshot, restore_snapshot
from .verify import verify_digest

if TYPE_CHECKING:
    from .timeline import Timeline

MAX_NAME_BYTES = 128
MAX_NAMES = 4096  # names in one recording (a bookmarks chunk holds at most ~0.6 MiB of them)
NO_PC = 0  # an entry's pc field when the pc is not known


class NameKind(enum.IntEnum):
    """What an entry of the bookmarks chunk names (wire values: never reused)."""

    BOOKMARK = 0
    SNAPSHOT = 1


@dataclass(frozen=True, slots=True)
class Bookmark:
    """A named moment: the icount, and the pc there when known (a stop after an interrupt was entered at that
    icount has the handler's pc: going there enters it again, as a backward continue does)."""

    icount: int
    pc: int | None = None


@dataclass(frozen=True, slots=True)
class NameEntry:
    """One entry of a recording's bookmarks chunk."""

    name: str
    kind: NameKind
    icount: int
    pc: int | None = None  # bookmarks only


@dataclass
class Bookmarks:
    """One timeline's bookmarks, and which of its named snapshots came from a recording unchecked."""

    marks: dict[str, Bookmark] = field(default_factory=dict)
    unchecked: set[str] = field(default_factory=set)  # named snapshots loaded from a file, not yet checked


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a bookmark or snapshot (None: it can): 1 to MAX_NAME_BYTES bytes of UTF-8,
    printable, no spaces (the monitor splits its words at spaces)."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "a name must be UTF-8 text"
    if not 0 < size <= MAX_NAME_BYTES:
        return f"a name is 1 to {MAX_NAME_BYTES} bytes"
    if not name.isprintable() or any(c.isspace() for c in name):
        return "a name is printable text without spaces"
    return None


# -- the encoding ---------------------------------------------------------------------------------------
def _put_name(out: bytearray, name: str) -> None:
    data = name.encode("utf-8")
    put_varint(out, len(data))
    out += data


def _get_name(buf: memoryview, pos: int, what: str) -> tuple[str, int]:
    length, pos = get_varint(buf, pos, what)
    if not 0 < length <= MAX_NAME_BYTES or length > len(buf) - pos:
        raise RecordingError(f"{what}: a name of {length} bytes (1..{MAX_NAME_BYTES}, within the chunk)")
    try:
        name = bytes(buf[pos : pos + length]).decode("utf-8")
    except UnicodeDecodeError:
        raise RecordingError(f"{what}: a name that is not UTF-8") from None
    problem = name_problem(name)
    if problem is not None:
        raise RecordingError(f"{what}: {name[:40]!r} is not a name ({problem})")
    return name, pos + length


def encode_names(entries: list[NameEntry]) -> bytes:
    """The bookmarks chunk's entries (its prefix, the count, is written by :meth:`LogWriter.write_bookmarks`)."""
    out = bytearray()
    for entry in entries:
        _put_name(out, entry.name)
        put_varint(out, int(entry.kind))
        put_varint(out, entry.icount)
        if entry.kind == NameKind.BOOKMARK:
            put_varint(out, NO_PC if entry.pc is None else entry.pc + 1)
    return bytes(out)


def decode_names(data: bytes | memoryview, count: int, until: int) -> list[NameEntry]:
    """The entries of a bookmarks chunk's payload (hostile input): exactly ``count`` of them, at most
    :data:`MAX_NAMES`, names valid and unique, icounts at most ``until`` (the chunk's stamp), pcs 64-bit.
    RecordingError names the first problem."""
    buf = memoryview(data)
    what = "bookmarks"
    if count > MAX_NAMES or count > len(buf) // 4:  # an entry takes at least 4 bytes
        raise RecordingError(f"{what}: {count} entries (at most {MAX_NAMES}, in {len(buf)} bytes)")
    pos, entries, seen = 0, [], set()
    for _ in range(count):
        name, pos = _get_name(buf, pos, what)
        if name in seen:
            raise RecordingError(f"{what}: the name {name!r} twice")
        seen.add(name)
        kind_value, pos = get_varint(buf, pos, what)
        icount, pos = get_varint(buf, pos, what)
        if kind_value not in (NameKind.BOOKMARK, NameKind.SNAPSHOT):
            raise RecordingError(f"{what}: {name!r} of unknown kind {kind_value}")
        if icount > until or icount >= MAX_ICOUNT:
            raise RecordingError(f"{what}: {name!r} at icount {icount}, past the end of history ({until})")
        pc = None
        if kind_value == NameKind.BOOKMARK:
            value, pos = get_varint(buf, pos, what)
            if value > 1 << 64:
                raise RecordingError(f"{what}: {name!r} at a pc beyond 64 bits")
            pc = None if value == NO_PC else value - 1
        entries.append(NameEntry(name, NameKind(kind_value), icount, pc))
    if pos != len(buf):
        raise RecordingError(f"{what}: {len(buf) - pos} bytes after the last of {count} entries")
    return entries


def encode_named_state(name: str, icount: int, state: bytes) -> bytes:
    """A named snapshot chunk's payload after its prefix (the log position)."""
    out = bytearray()
    _put_name(out, name)
    put_varint(out, icount)
    return bytes(out) + state


def decode_named_state(data: bytes | memoryview) -> tuple[str, int, memoryview]:
    """``(name, icount, state bytes)`` of a named snapshot chunk's payload (the state is decoded later, on a
    machine: :func:`replay.saver.check_state`)."""
    buf = memoryview(data)
    what = "named snapshot"
    name, pos = _get_name(buf, 0, what)
    icount, pos = get_varint(buf, pos, what)
    if icount >= MAX_ICOUNT:
        raise RecordingError(f"{what} {name!r}: icount {icount} beyond any icount")
    if pos == len(buf):
        raise RecordingError(f"{what} {name!r}: no state")
    return name, icount, buf[pos:]


# -- going there ----------------------------------------------------------------------------------------
def go_to_bookmark(timeline: Timeline, mark: Bookmark) -> None:
    """Seek to the bookmark's icount, standing at its pc there (:meth:`Timeline.land`: a bookmark set on a
    handler's first instruction enters its exception or interrupt again)."""
    if mark.pc is None:
        timeline.seek(mark.icount)
    else:
        timeline.land(mark.icount, mark.pc)


# -- trust ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Check:
    """What checking a named snapshot from a recording against history found."""

    problem: str | None  # why it contradicts history (None: it agrees as far as checked)
    checked_at: int | None  # the verification point it was replayed to and agreed with (None: none to check)


def check_against_history(timeline: Timeline, snapshot: Snapshot) -> Check:
    """Replay from ``snapshot`` (a named snapshot read from a recording) to the recording's next verification
    point before the end or a keyframe, and compare (registers, CSRs, network output: :func:`verify_digest`).

    Costs at most two verification intervals of replay. The machine is left anywhere: the caller then loads
    the snapshot (it agrees) or seeks (it does not). Nothing enters the snapshot store on the way.
    """
    machine, inputs = timeline.machine, timeline.inputs
    here = snapshot.icount
    if here > timeline.end:
        return Check(f"icount {here} lies past the end of history ({timeline.end})", None)
    if here in timeline.keyframes:
        return Check(None, None)  # loading it restores the keyframe, which is history
    later_keyframes = [icount for icount in timeline.keyframes if icount > here]
    stop = min([timeline.end, *later_keyframes])  # (a point at a keyframe's icount is taken before its write)
    points = sorted(p for p in timeline.verify_points if here <= p <= stop)
    inputs.position = restore_snapshot(machine, snapshot)
    machine.arm((), ())
    for point in points:
        while machine.icount < point:
            result = machine.run(point, resume=False)
            if result.kind != RunKind.LIMIT and machine.icount < point:
                return Check(f"replayed from it, the guest stopped ({result.describe()}) inside history", None)
        if not machine.is_at_first_boundary:
            continue  # (the snapshot was taken after an interrupt entered right there: the next point)
        if verify_digest(machine) != timeline.verify_points[point]:
            return Check(f"replayed from it, the registers at icount {point} differ from the recorded ones", None)
        return Check(None, point)
    return Check(None, None)
