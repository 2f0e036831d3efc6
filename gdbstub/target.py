"""The Target seam the session drives, and its implementation over a live machine.

Execution is synchronous: :meth:`Target.resume` returns a stop value when the
machine stops; long runs poll ``interrupted()`` so Ctrl-C (0x03) stops them.
Optional capabilities return None when absent, so ``qSupported`` advertises
only what the target really implements.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from machine.arch.common import RegisterError
from machine.debug_memory import DebugMemoryError
from machine.results import Cause, RunKind, RunResult
from machine.watch import WatchKind
from machine.watch import Watchpoint as MachineWatchpoint
from replay.errors import ReplayDivergence
from replay.store import SnapshotBudgetError
from replay.timeline import Timeline

from .rsp.stops import (
    SIGILL,
    SIGINT,
    SIGSEGV,
    SIGTRAP,
    Breakpoint,
    HistoryBoundary,
    HistoryEnd,
    Signal,
    Stop,
    Watchpoint,
)

log = logging.getLogger(__name__)


class TargetError(Exception):
    """A request the target refuses; ``errno`` becomes the ``Exx`` reply."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno


EINVAL, EFAULT, EACCES = 0x16, 0x0E, 0x0D
READ_CACHE_ENTRIES = 1024  # reads kept per stop (each at most half a packet, 8 KiB)


class ResumeAction(enum.Enum):
    CONTINUE = "continue"
    STEP = "step"
    REVERSE_CONTINUE = "reverse-continue"  # bc
    REVERSE_STEP = "reverse-step"  # bs


class Breakpoints(Protocol):
    """Capability: ``Z0``/``Z1`` breakpoints that never touch guest memory."""

    def add(self, addr: int, hardware: bool = False) -> None: ...

    def remove(self, addr: int, hardware: bool = False) -> None: ...


class Watchpoints(Protocol):
    """Capability: ``Z2``/``Z3``/``Z4`` write, read and access watchpoints of any length."""

    def add(self, kind: WatchKind, addr: int, length: int) -> None: ...

    def remove(self, kind: WatchKind, addr: int, length: int) -> None: ...


class Target(Protocol):
    """What the session needs from whatever it debugs."""

    def read_registers(self) -> bytes: ...

    def write_registers(self, data: bytes) -> None: ...

    def read_register(self, regnum: int) -> bytes: ...

    def write_register(self, regnum: int, data: bytes) -> None: ...

    def read_memory(self, addr: int, length: int) -> bytes: ...

    def write_memory(self, addr: int, data: bytes) -> None: ...

    def resume(self, action: ResumeAction, interrupted: Callable[[], bool], addr: int | None = None) -> Stop:
        """Continue or step (from ``addr`` when given) until the next stop."""
        ...

    def last_stop(self) -> Stop: ...

    def breakpoints(self) -> Breakpoints | None: ...

    def can_reverse(self) -> bool:
        """True when ``bs``/``bc`` work (``ReverseStep+``/``ReverseContinue+`` in qSupported)."""
        ...

    def watchpoints(self) -> Watchpoints | None: ...

    def description(self) -> str | None:
        """The target description XML, or None."""
        ...

    def memory_map(self) -> str | None: ...

    def monitor(self, command: str) -> str:
        """Run a ``monitor`` command; returns the text to show (raises TargetError)."""
        ...

    def release_debug_state(self) -> None:
        """The client left: remove every breakpoint and watchpoint it inserted."""
        ...


@dataclass
class _TimelineBreakpoints:
    """Both kinds are the same code hook; each address stays armed while a ``Z0`` or a ``Z1`` holds it."""

    timeline: Timeline
    inserted: dict[int, set[bool]] = field(default_factory=dict)  # addr -> {hardware?}

    def add(self, addr: int, hardware: bool = False) -> None:
        if not 0 <= addr <= self.timeline.machine.arch.mask:
            raise TargetError(EINVAL, f"no instruction at {addr:#x}")
        self.timeline.add_breakpoint(addr)
        self.inserted.setdefault(addr, set()).add(hardware)

    def remove(self, addr: int, hardware: bool = False) -> None:
        kinds = self.inserted.get(addr, set())
        kinds.discard(hardware)
        if not kinds:
            self.inserted.pop(addr, None)
            self.timeline.remove_breakpoint(addr)

    def clear(self) -> None:
        for addr in list(self.inserted):
            self.timeline.remove_breakpoint(addr)
        self.inserted.clear()


@dataclass
class _TimelineWatchpoints:
    timeline: Timeline

    def add(self, kind: WatchKind, addr: int, length: int) -> None:
        if not 0 <= addr <= addr + length - 1 <= self.timeline.machine.arch.mask:
            raise TargetError(EINVAL, f"cannot watch {length} bytes at {addr:#x}")
        if not self.timeline.machine.is_ram(addr, length):
            # Device registers change without a guest store and their reads have side effects (or depend on
            # the exact icount): refused here, where gdb shows the error, rather than half-supported.
            raise TargetError(EFAULT, f"watchpoints cover RAM only: {length} bytes at {addr:#x} are not RAM")
        self.timeline.add_watchpoint(MachineWatchpoint(WatchKind(kind), addr, length))

    def remove(self, kind: WatchKind, addr: int, length: int) -> None:
        self.timeline.remove_watchpoint(MachineWatchpoint(WatchKind(kind), addr, length))

    def clear(self) -> None:
        self.timeline.watchpoints.clear()


FAULT_SIGNALS = {
    Cause.ILLEGAL_INSTRUCTION: SIGILL,
    Cause.BREAKPOINT: SIGTRAP,
    Cause.ECALL: SIGTRAP,
}


def _history_ends_here(result: RunResult) -> Stop:
    # The guest ended this history: no 'W' (gdb would forget the program and refuse to go back).
    text = f"{result.describe()}; history ends here (reverse commands still work)"
    log.info("%s", text)
    return HistoryEnd(HistoryBoundary.END, f"chronicorn: {text}\n")


def _written_by(result: RunResult) -> str:
    """The console note of a watchpoint a device (or the board itself: Cortex-M exception stacking) fired, empty
    for an instruction's access."""
    if result.written_by is None:
        return ""
    verb = "written" if result.watch_kind in (None, WatchKind.WRITE) else "accessed"
    return f"chronicorn: the watched bytes were {verb} by {result.written_by} (shown as the next instruction's)\n"


STOP_REPLIES: dict[RunKind, Callable[[RunResult], Stop]] = {
    RunKind.BREAKPOINT: lambda r: Breakpoint(),
    RunKind.WATCHPOINT: lambda r: Watchpoint(int(r.watch_kind or WatchKind.WRITE), r.fault_addr, _written_by(r)),
    RunKind.FAULT: lambda r: Signal(FAULT_SIGNALS.get(r.cause, SIGSEGV) if r.cause else SIGSEGV),
    RunKind.INTERRUPTED: lambda r: Signal(SIGINT),
    RunKind.LIMIT: lambda r: Signal(SIGTRAP),  # a completed step
    RunKind.EXITED: _history_ends_here,
    RunKind.RESET: _history_ends_here,  # machine reset is not modelled: the history ends there
    RunKind.IDLE_FOREVER: _history_ends_here,
    RunKind.HISTORY_BEGIN: lambda r: HistoryEnd(HistoryBoundary.BEGIN),
    RunKind.HISTORY_END: lambda r: HistoryEnd(HistoryBoundary.END),
}
"""The one mapping from how a run ended to what gdb is told (GDB manual, "Stop Reply Packets")."""


class TimelineTarget:
    """A machine's :class:`~replay.timeline.Timeline` behind the Target seam: both directions of time.

    Live (``serve``): going forward past the end of history runs and records
    the guest live. Saved (``replay --port``): the history is fixed. A guest
    exit ends the history without a ``W`` reply, so the user can still go back.
    """

    def __init__(self, timeline: Timeline, monitor: Callable[[str], str] | None = None) -> None:
        self.timeline = timeline
        self.machine = timeline.machine
        self._monitor = monitor
        self._last: Stop = Signal(SIGTRAP)
        self._breakpoints = _TimelineBreakpoints(timeline)
        self._watchpoints = _TimelineWatchpoints(timeline)
        self._reads: dict[object, bytes] = {}  # what was read since the machine last changed (see _read)
        self._reads_at = -1  # the icount they were read at

    # -- registers and memory ------------------------------------------------
    def read_registers(self) -> bytes:
        return self._read("g", self.machine.registers.read_all)

    def write_registers(self, data: bytes) -> None:
        self._write(self.machine.registers.write_all, data)

    def read_register(self, regnum: int) -> bytes:
        try:
            return self._read(("p", regnum), lambda: self.machine.registers.read(regnum))
        except RegisterError as exc:
            raise TargetError(EINVAL, str(exc)) from None

    def write_register(self, regnum: int, data: bytes) -> None:
        self._write(self.machine.registers.write, regnum, data)

    def read_memory(self, addr: int, length: int) -> bytes:
        try:
            return self._read((addr, length), lambda: self.machine.memory.read(addr, length))
        except DebugMemoryError as exc:
            raise TargetError(EFAULT, str(exc)) from None

    def _read(self, key: object, read: Callable[[], bytes]) -> bytes:
        """``read()``, or what it gave for ``key`` since the machine last changed.

        After a stop gdb reads the same few words several times (docs/gdb-protocol-facts.md, "Every stop
        costs round trips"): a stopped machine cannot change them, nor device registers (their debugger
        reads have no side effects, and inputs reach devices only while the machine runs). The reads are
        forgotten at every change that goes through this target (writes, resumes, monitor commands, see
        :meth:`forget_reads`) and whenever the icount differs from theirs (a seek made behind its back).
        Errors are not kept.
        """
        icount = self.machine.icount
        if icount != self._reads_at:
            self._reads.clear()
            self._reads_at = icount
        value = self._reads.get(key)
        if value is None:
            value = read()
            if len(self._reads) >= READ_CACHE_ENTRIES:
                self._reads.clear()
            self._reads[key] = value
        return value

    def forget_reads(self) -> None:
        """The machine may have changed: the next reads go to it."""
        self._reads.clear()
        self._reads_at = -1

    def write_memory(self, addr: int, data: bytes) -> None:
        self._write(self.machine.memory.write, addr, data, span=(addr, len(data)))

    def _write(self, fn: Callable[..., None], *args: object, span: tuple[int, int] | None = None) -> None:
        """A debugger write at the end of a live history becomes part of it (a keyframe); refused before it is
        made when that keyframe would take the pinned snapshots past the budget (``span``: the RAM written)."""
        self.forget_reads()
        self._check_writable()
        try:
            self.timeline.reserve_keyframe(*(span or ()))
        except SnapshotBudgetError as exc:
            hint = "raise --snapshot-budget, or free some with 'monitor snapshot delete NAME'"
            raise TargetError(0x0C, f"write refused: {exc} ({hint})") from None  # ENOMEM
        try:
            fn(*args)
        except RegisterError as exc:
            raise TargetError(EINVAL, str(exc)) from None
        except DebugMemoryError as exc:
            raise TargetError(EACCES, str(exc)) from None
        self.timeline.note_write()

    def _check_writable(self) -> None:
        """History is fixed: a write inside it would make it unreplayable (branching timelines are not built)."""
        t = self.timeline
        if not t.is_writable:
            where = "a saved recording" if not t.is_live else f"history (icount {t.icount}; it ends at {t.end})"
            raise TargetError(EACCES, f"cannot write registers or memory inside {where}")

    # -- execution -------------------------------------------------------------
    def resume(self, action: ResumeAction, interrupted: Callable[[], bool], addr: int | None = None) -> Stop:
        try:
            return self._resume(action, interrupted, addr)
        finally:
            self.forget_reads()  # even a stop at the same icount may differ (a trap entered)

    def _resume(self, action: ResumeAction, interrupted: Callable[[], bool], addr: int | None) -> Stop:
        if addr is not None and addr != self.machine.pc:  # 'c ADDR' / 's ADDR': a jump is a write
            self._check_address(addr)
            self._write(self.machine.set_pc, addr)
        t = self.timeline
        start = t.icount
        try:
            if action == ResumeAction.REVERSE_STEP:
                result = t.step_backward()
            elif action == ResumeAction.REVERSE_CONTINUE:
                result = t.continue_backward(interrupted)
            else:
                result = t.run_forward(action == ResumeAction.STEP, interrupted)
        except ReplayDivergence as exc:
            # A damaged or foreign recording: it is only known good up to where this command started.
            # Say so, go back there and keep the session.
            log.error("%s", exc)
            t.cut_history(start)
            t.seek(start)
            note = f"chronicorn: {exc}; history ends at icount {start}, where this command started\n"
            self._last = HistoryEnd(HistoryBoundary.END, note)
            return self._last
        if log.isEnabledFor(logging.DEBUG):  # describe() is not free: one per stop
            log.debug("stopped: %s", result.describe())
        self._last = STOP_REPLIES[result.kind](result)
        return self._last

    def last_stop(self) -> Stop:
        return self._last

    # -- capabilities ------------------------------------------------------------
    def breakpoints(self) -> Breakpoints | None:
        return self._breakpoints

    def can_reverse(self) -> bool:
        return True

    def _check_address(self, addr: int) -> None:
        if not 0 <= addr <= self.machine.arch.mask:
            raise TargetError(EINVAL, f"address {addr:#x} does not fit a {self.machine.arch.xlen}-bit hart")

    def release_debug_state(self) -> None:
        self._breakpoints.clear()
        self._watchpoints.clear()

    def watchpoints(self) -> Watchpoints | None:
        return self._watchpoints

    def description(self) -> str | None:
        return self.machine.arch.target_xml()

    def memory_map(self) -> str | None:
        return self.machine.memory.memory_map_xml()

    def monitor(self, command: str) -> str:
        if self._monitor is None:
            raise TargetError(EINVAL, "no monitor commands")
        try:
            return self._monitor(command)
        finally:
            self.forget_reads()  # seek, snapshot load...: the machine may be elsewhere
