"""What a picture of a recording shows, and how it is collected (``chronicorn view``; :mod:`gdbstub.view` draws it).

A :class:`Picture` is plain data: lanes of marks along the icount axis (the guest's UART output by line, one
lane per kind of logged input event, interrupts, query results, the snapshots, bookmarks and verification
points the file holds, the end), value series (a step plot per expression) and the virtual clock that maps an
icount to virtual nanoseconds. Most of it is in the recording itself (:func:`event_lanes`, :func:`state_lanes`);
the UART output and the clock's idle warps are known only by replaying it: a replay's UART bytes go to
:class:`OutputLines` and its idle periods are noted by :class:`ClockTapInputs`, the recording's input source
with a tap on ``idle`` (a warp to the next timer deadline is not logged, since a replay computes it again:
only a replay knows it).
"""

from __future__ import annotations

import bisect
import datetime
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace

from machine.inputs import IdleOutcome
from replay.events import AudioInput, AudioOutput, ClockWarp, End, HostClock, IoCompletion, NetFrame, UartInput
from replay.history import HistoryInputs, InputEvent
from replay.recording import LoadedRecording

LINE_CHARS = 200  # characters of a UART line or input shown in a mark's text
MAX_TEXT_LINES = 2000  # UART output lines listed under the plot (all of them are marks on the timeline)


@dataclass(frozen=True, slots=True)
class Mark:
    """One thing that happened at ``icount``; ``text`` says what (shown on hover, one line or a few)."""

    icount: int
    text: str


@dataclass(frozen=True, slots=True)
class Lane:
    """A row of the timeline: ``marks`` in icount order; ``style`` picks its look (a key of the view's STYLES)."""

    key: str  # stable identifier: the page names its trace by it (tests and scripts read it back)
    title: str  # the row's label
    style: str
    marks: tuple[Mark, ...]


@dataclass(frozen=True, slots=True)
class StepPoint:
    """A value from ``icount`` on (until the next point): ``text`` as shown, ``number`` if it is one."""

    icount: int
    text: str
    number: float | None


@dataclass(frozen=True, slots=True)
class Series:
    """The value of an expression over time (a step plot)."""

    title: str
    points: tuple[StepPoint, ...]


@dataclass(frozen=True, slots=True)
class ClockMap:
    """Virtual time along the recording, as :class:`machine.clock.VirtualClock` keeps it:
    ``ns(icount) = (icount << shift) + bias``, the bias growing at each idle warp (QEMU's warp timer)."""

    shift: int
    bias_ns: int = 0  # at the recording's start
    warps: tuple[tuple[int, int], ...] = ()  # (icount, bias from that icount on), icount ascending

    def ns(self, icount: int) -> int:
        """Virtual nanoseconds at ``icount`` (after any idle warp taken there)."""
        at = bisect.bisect_right(self.warps, icount, key=lambda warp: warp[0])
        return (icount << self.shift) + (self.warps[at - 1][1] if at else self.bias_ns)


@dataclass(frozen=True, slots=True)
class Fact:
    """A line of the page's header: ``name``, ``value``, and ``detail`` shown on hover (a full path)."""

    name: str
    value: str
    detail: str = ""


@dataclass(frozen=True)
class Picture:
    """Everything the page shows of one recording."""

    title: str
    facts: tuple[Fact, ...]  # lines about the recording
    end_icount: int
    clock: ClockMap
    lanes: tuple[Lane, ...]
    series: tuple[Series, ...] = ()
    notes: tuple[str, ...] = ()  # what the page could not show, and why
    output_lines: tuple[Mark, ...] = field(default=())  # the UART transcript listed under the plot
    start_icount: int = 0  # the window pictured: start_icount .. end_icount
    is_whole: bool = True  # the window reaches the end of history


# -- collecting a replay's output and clock ----------------------------------------------------------------


class OutputLines:
    """UART bytes as they are sent, in lines: each line at the icount of its first byte."""

    def __init__(self) -> None:
        self._lines: list[tuple[int, bytearray]] = []
        self._open = False  # the last line has no newline yet

    def add(self, icount: int, byte: int) -> None:
        if not self._open:
            self._lines.append((icount, bytearray()))
            self._open = True
        if byte == 0x0A:
            self._open = False
        else:
            self._lines[-1][1].append(byte)

    def marks(self) -> tuple[Mark, ...]:
        """One mark per line (a last line without its newline included), its text printable."""
        return tuple(Mark(icount, printable(bytes(line).rstrip(b"\r"))) for icount, line in self._lines)


class ClockTapInputs(HistoryInputs):
    """A recording's input source that tells ``on_warp(icount, warp_ns)`` each time idle virtual time passes."""

    def __init__(self, events: list[InputEvent], frontier: int, on_warp: Callable[[int, int], None]) -> None:
        super().__init__(events, frontier)
        self._on_warp = on_warp

    def idle(self, icount: int, deadline_ns: int | None) -> IdleOutcome:
        outcome = super().idle(icount, deadline_ns)
        if outcome.warp_ns:
            self._on_warp(icount, outcome.warp_ns)
        return outcome


class WarpLog:
    """The idle warps of one forward replay, made into a :class:`ClockMap`."""

    def __init__(self, shift: int, bias_ns: int = 0) -> None:
        self.shift = shift
        self.bias_ns = bias_ns
        self._warps: list[tuple[int, int]] = []

    def __call__(self, icount: int, warp_ns: int) -> None:
        bias = (self._warps[-1][1] if self._warps else self.bias_ns) + warp_ns
        if self._warps and self._warps[-1][0] == icount:  # idled again at the same icount
            self._warps[-1] = (icount, bias)
        else:
            self._warps.append((icount, bias))

    def clock(self) -> ClockMap:
        return ClockMap(self.shift, self.bias_ns, tuple(self._warps))

    def marks(self) -> tuple[Mark, ...]:
        """One mark per icount where the guest idled: how much virtual time passed there."""
        marks, bias = [], self.bias_ns
        for icount, after in self._warps:
            marks.append(Mark(icount, f"idle (wfi): virtual time jumps {format_ns(after - bias)}"))
            bias = after
        return tuple(marks)


# -- what the recording holds ------------------------------------------------------------------------------


def printable(data: bytes, limit: int = LINE_CHARS) -> str:
    """Bytes as text for a label: UTF-8 where it is, control characters and other bytes escaped, cut at
    ``limit`` characters."""
    text = data.decode("utf-8", "backslashreplace")
    text = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _slots(mask: int) -> str:
    return ", ".join(str(n) for n in range(mask.bit_length()) if mask >> n & 1)


def _mac(data: bytes) -> str:
    return ":".join(f"{b:02x}" for b in data)


def _frame(event: NetFrame) -> str:
    data = event.data
    if len(data) < 14:
        return f"network frame, slot {event.slot}, {len(data)} bytes"
    ethertype = int.from_bytes(data[12:14], "big")
    name = {0x0800: "IPv4", 0x0806: "ARP", 0x86DD: "IPv6"}.get(ethertype, f"type {ethertype:#06x}")
    return f"network frame, slot {event.slot}, {len(data)} bytes, {name}, {_mac(data[6:12])} -> {_mac(data[0:6])}"


def _audio(event: AudioInput | AudioOutput, what: str) -> str:
    nbytes = len(event.data) if isinstance(event, AudioInput) else event.nbytes
    frames = nbytes // max(1, 2 * event.channels)
    ms = 1000 * frames / event.rate if event.rate else 0.0
    return f"{what}, slot {event.slot}, {frames} frames ({ms:.1f} ms) at {event.rate} Hz x{event.channels}"


def _host_clock(event: HostClock) -> str:
    seconds, ns = divmod(event.ns, 10**9)
    try:
        when = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        when = f"{event.ns} ns"
    else:
        when = f"{when}.{ns:09d} UTC"
    return f"host clock read: {when}"


def format_ns(ns: int) -> str:
    """Virtual time in the unit that reads best: ``812 ns``, ``3.25 µs``, ``1.500000 s``."""
    if ns < 1_000:
        return f"{ns} ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.3f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.3f} ms"
    return f"{ns / 1e9:.6f} s"


@dataclass(frozen=True, slots=True)
class EventKindView:
    """How one kind of logged input event appears: its lane and the text of each mark."""

    key: str
    title: str
    describe: Callable[[InputEvent], str]


# One row per kind of input event (replay.events): the only place a kind's picture lives.
EVENT_KINDS: dict[type, EventKindView] = {
    UartInput: EventKindView("uart-input", "UART input", lambda e: f"UART input {printable(e.data)!r}"),
    HostClock: EventKindView("host-clock", "host clock", _host_clock),
    ClockWarp: EventKindView("clock-warp", "idle (sleep on)", lambda e: f"idle for {format_ns(e.warp_ns)} (logged)"),
    IoCompletion: EventKindView(
        "io-completion", "disk I/O done", lambda e: f"I/O completed on virtio slot(s) {_slots(e.slots)}"
    ),  # fmt: skip
    NetFrame: EventKindView("net-frame", "network in", _frame),
    AudioInput: EventKindView("audio-input", "audio in", lambda e: _audio(e, "captured audio")),
    AudioOutput: EventKindView("audio-output", "audio out", lambda e: _audio(e, "played audio")),
}


def event_lanes(inputs: Iterable[InputEvent]) -> list[Lane]:
    """One lane per kind of input event the recording holds, in :data:`EVENT_KINDS` order."""
    by_kind: dict[type, list[Mark]] = {kind: [] for kind in EVENT_KINDS}
    for event in inputs:
        view = EVENT_KINDS[type(event)]
        by_kind[type(event)].append(Mark(event.icount, view.describe(event)))
    return [Lane(EVENT_KINDS[kind].key, EVENT_KINDS[kind].title, "input", tuple(marks))
            for kind, marks in by_kind.items() if marks]  # fmt: skip


def bookmark_lane(loaded: LoadedRecording) -> Lane:
    """The bookmarks the recording carries (format version 6: ``monitor bookmark NAME`` before it was saved)."""
    marks = [Mark(mark.icount, f"bookmark {name}" + (f", pc {mark.pc:#x}" if mark.pc is not None else ""))
             for name, mark in loaded.bookmarks]  # fmt: skip
    return Lane("bookmarks", "bookmarks", "state", tuple(sorted(marks, key=lambda m: m.icount)))


def end_text(end: End | None, loaded: LoadedRecording) -> str:
    """How the recording ends: ``exited with code 7``, ``fault``, or where an intact prefix stops."""
    if end is not None:
        code = f" with code {end.code}" if end.code or end.kind.label == "exited" else ""
        return f"{end.kind.label}{code}"
    damage = loaded.damage
    where = f" (damaged at byte {damage.offset}: {damage.reason})" if damage is not None else ""
    return f"history ends: no end record{where}"


def state_lanes(loaded: LoadedRecording) -> list[Lane]:
    """The snapshots (initial, keyframes, named), bookmarks and verification points the file holds, and its end."""
    snapshots = [
        Mark(0, "initial snapshot"),
        *(Mark(k.icount, "keyframe: the state after a debugger write") for k in loaded.keyframes),
        *(Mark(n.state.icount, f"named snapshot {n.name}") for n in loaded.named_snapshots),
    ]
    lanes = [Lane("snapshots", "snapshots", "state", tuple(sorted(snapshots, key=lambda m: m.icount)))]
    lanes.append(bookmark_lane(loaded))
    checks = tuple(Mark(icount, f"verification point (register digest {digest.hex()})")
                   for icount, digest in sorted(loaded.verify_points.items()))  # fmt: skip
    lanes.append(Lane("verify", "verification", "check", checks))
    lanes.append(Lane("end", "end", "end", (Mark(loaded.last_icount, f"end: {end_text(loaded.end, loaded)}"),)))
    return lanes


def recording_facts(loaded: LoadedRecording, path: str) -> tuple[Fact, ...]:
    """A few lines about the recording for the page's header."""
    header = loaded.header
    counts: dict[str, int] = {}
    for event in loaded.inputs:
        title = EVENT_KINDS[type(event)].title
        counts[title] = counts.get(title, 0) + 1
    facts = [
        Fact("recording", os.path.basename(path), os.path.abspath(path)),
        Fact("guest", f"{os.path.basename(header.image_path)} ({header.arch} on {header.board})", header.image_path),
        Fact("history", f"icount 0 .. {loaded.last_icount}"),
        Fact("virtual time", f"icount << {header.icount_shift} ns, plus idle warps"),
        Fact("end", end_text(loaded.end, loaded)),
        Fact("events", ", ".join(f"{n} {title}" for title, n in counts.items()) or "none"),
    ]
    if loaded.bookmarks or loaded.named_snapshots:
        names = [f"{len(loaded.bookmarks)} bookmarks", f"{len(loaded.named_snapshots)} named snapshots"]
        facts.append(Fact("names", ", ".join(names)))
    if loaded.damage is not None:
        facts.append(Fact("damaged", f"at byte {loaded.damage.offset}: {loaded.damage.reason}"))
    return tuple(facts)


def windowed(lane: Lane, start: int, end: int) -> Lane:
    """The lane's marks within icount ``start`` .. ``end``."""
    return replace(lane, marks=tuple(m for m in lane.marks if start <= m.icount <= end))


def step_points(points: Sequence[object]) -> tuple[StepPoint, ...]:
    """Points with ``icount``, ``text`` and ``number`` (the query engine's ValuePoint) as StepPoints."""
    names = [f.name for f in fields(StepPoint)]
    return tuple(StepPoint(*(getattr(p, n) for n in names)) for p in points)
