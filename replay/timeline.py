"""The timeline: seek, step and continue in both directions over one history (rr's ReplayTimeline).

The machine only runs forward; every backward move restores the nearest
snapshot at or before the target and replays forward to it. Snapshots are
taken periodically on the way forward (every ``interval`` instructions, past
the furthest point reached so far) and on the way to every seek target, halving
the distance each time, so repeated steps back near where the user works
replay only a few thousand instructions.

Positions are icounts: position ``i`` is the state before the instruction with
icount ``i`` executes (and before an interrupt due there is taken).

Breakpoints and watchpoints belong to the timeline; they are armed in the
machine only for runs that report them (never for seeks). Going backward,
:meth:`continue_backward` scans window after window ``[snapshot, end)`` forward
and reports the *last* hit: a breakpoint at its position, a watchpoint one
instruction after the accessing instruction (gdb's rule for non-steppable
watchpoints on RISC-V and ARM: it steps back over the access itself).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from unicorn import UcError

from machine.machine import Machine
from machine.ram import PAGE, PageTable
from machine.results import RunKind, RunResult
from machine.watch import WatchKind, Watchpoint

from .bookmarks import Bookmarks
from .code_index import CodeIndex
from .errors import ReplayDivergence
from .events import End
from .history import HistoryInputs
from .snapshot import Snapshot, restore_snapshot, take_snapshot
from .store import SnapshotStore
from .verify import Verifier

log = logging.getLogger(__name__)

Interrupted = Callable[[], bool]
Progress = Callable[[int], None]
Hit = tuple[int, RunResult]  # (the position to report, the machine's stop)


def _never() -> bool:
    return False


class Timeline:
    """One machine's history: where it is, where it can go, and how to get there."""

    def __init__(self, machine: Machine, inputs: HistoryInputs, store: SnapshotStore | None = None,
                 interval: int | None = None, periodic_snapshots: bool = True) -> None:  # fmt: skip
        """``periodic_snapshots`` False: only the start is kept (``record`` and ``replay``, where nobody goes
        back); verification points are taken and checked all the same."""
        if machine.inputs is not inputs:
            raise ValueError("the machine must take its inputs from the timeline's history")
        self.machine = machine
        self.inputs = inputs
        self.store = store if store is not None else SnapshotStore()
        self._interval = interval
        self._periodic = periodic_snapshots
        # Seeks leave snapshots halving the distance down to min_gap; a stop farther than trail_gap from
        # a snapshot leaves such a trail at once (flat first step back).
        self.min_gap = 8
        self.trail_gap = 8 * self.min_gap
        self.breakpoints: set[int] = set()
        self.watchpoints: set[Watchpoint] = set()
        self._scanned = machine.icount  # the furthest icount run so far: periodic snapshots past it
        self.keyframes: dict[int, Snapshot] = {}  # icount -> the state after debugger writes there
        self.skip_unwritten = True  # backward scans skip windows where no watched page was written
        self.use_code_index = True  # backward continues skip windows where no breakpoint address ran
        self.code_index = CodeIndex(machine.icount)
        if periodic_snapshots:
            machine.take_executed_code()  # the index's first window begins here
        self.verifier = Verifier(inputs.live is not None, machine.icount)
        self.ending: End | None = None  # how the run ended by itself at the end of history, if it did
        self.bookmarks = Bookmarks()  # names for icounts (monitor bookmark), saved in recordings
        self.store.add(take_snapshot(machine, inputs.position))

    @property
    def interval(self) -> int:
        """Instructions between periodic snapshots (~15 ms of guest time with the native helper).

        A snapshot costs 0.2 ms when RAM writes are tracked by page protection, but ~25 ms when RAM must be
        compared with a copy (no native helper, or tracking given up): then they are taken 4x less often.
        """
        if self._interval:
            return self._interval
        base = max(1 << 12, self.machine.checkpoint_interval // 2)
        return base if self.machine.is_ram_tracked else base * 4

    # -- where we are ----------------------------------------------------------------------
    @property
    def icount(self) -> int:
        return self.machine.icount

    @property
    def start(self) -> int:
        """The first icount of history (0 for a run from reset)."""
        return self.store.icounts()[0]

    @property
    def end(self) -> int:
        """The last icount of history: the frontier of a live run, the end of a recording."""
        return self.inputs.frontier

    @property
    def event_count(self) -> int:
        """Input events in history so far."""
        return len(self.inputs.events)

    @property
    def is_live(self) -> bool:
        """Going forward past the end continues live execution (and records it)."""
        return self.inputs.live is not None

    def _result(self, kind: RunKind) -> RunResult:
        return RunResult(kind, self.machine.icount, self.machine.pc)

    # -- breakpoints and watchpoints -----------------------------------------------------------
    def add_breakpoint(self, addr: int) -> None:
        self.machine.add_breakpoint(addr)  # validates the address now
        self.breakpoints.add(addr)

    def remove_breakpoint(self, addr: int) -> None:
        self.breakpoints.discard(addr)
        self.machine.remove_breakpoint(addr)

    def add_watchpoint(self, watchpoint: Watchpoint) -> None:
        self.watchpoints.add(watchpoint)

    def remove_watchpoint(self, watchpoint: Watchpoint) -> None:
        self.watchpoints.discard(watchpoint)

    def _arm(self, on: bool, watch: bool = True) -> None:
        """Make the machine report our breakpoints and (unless not ``watch``) watchpoints, or none of them."""
        self.machine.arm(self.breakpoints if on else (), self._watch_list() if on and watch else ())

    def _watch_list(self) -> list[Watchpoint]:
        return sorted(self.watchpoints, key=repr)

    # -- snapshots ----------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """A snapshot of now, kept in the store."""
        snapshot = take_snapshot(self.machine, self.inputs.position)
        self.store.add(snapshot)
        return snapshot

    def _restore(self, snapshot: Snapshot) -> None:
        self.inputs.position = restore_snapshot(self.machine, snapshot)
        if self._periodic and snapshot.icount > max(self.code_index.until, self._scanned):
            # Beyond all ground run so far (a recording's keyframe): what ran before it is unknown, and the
            # index's next window begins here.
            self.code_index.add(snapshot.icount, None)
            self.machine.take_executed_code()

    def load(self, snapshot: Snapshot) -> None:
        """Go to a snapshot taken on this timeline (``monitor snapshot load``)."""
        if snapshot.icount > self.end:
            raise ValueError(f"snapshot at icount {snapshot.icount} lies past the end of history ({self.end})")
        self.store.focus = snapshot.icount
        # History at that icount includes any debugger write made there after the snapshot was taken.
        self._restore(self.keyframes.get(snapshot.icount, snapshot))

    @property
    def is_writable(self) -> bool:
        """Registers and memory may be written: at the end of a live history (inside it, history is fixed)."""
        return self.is_live and self.machine.icount >= self.end

    def note_write(self) -> None:
        """The debugger wrote registers or memory here, at the live end: keep the new state as a keyframe.

        Replaying forward through this icount later restores the keyframe, so the
        write is part of history (and of a saved recording) like any input.
        """
        if not self.is_writable:
            raise ValueError("history is fixed here: writes are only possible at the end of a live run")
        # A verification point here stays: it was taken before the write, which is what a replay checks
        # (it restores the keyframe after the check). The guest's own ending, if it was here, is gone.
        self.ending = None
        # A file state carries no LR/SC reservation: drop it here too, so the live run and a replay of the
        # saved recording go on alike (an SC right after fails in both and the guest retries).
        self.machine.forget_reservation()
        self.add_keyframe(self.snapshot())

    def add_keyframe(self, snapshot: Snapshot) -> None:
        """Replaying through ``snapshot.icount`` puts this state in place (a recording's debugger writes).

        Pinned in the store even past its budget (it is history): a live write is checked before it is made
        (:meth:`reserve_keyframe`).
        """
        self.keyframes[snapshot.icount] = snapshot
        self.store.pin(snapshot)

    def reserve_keyframe(self, addr: int | None = None, length: int = 0) -> None:
        """Check, before a debugger write here, that its keyframe fits the snapshot budget; raise
        :class:`~replay.store.SnapshotBudgetError` (nothing changed) if it does not.

        The keyframe is sized as a snapshot of now (replacing a keyframe already here) plus, for a memory write
        of ``length`` bytes at ``addr``, a new copy of every page it touches.
        """
        pages = 0 if addr is None or length <= 0 else (addr + length - 1) // PAGE - addr // PAGE + 1
        now = take_snapshot(self.machine, self.inputs.position)
        self.store.check_pin(now, new_pages=pages, what=f"the keyframe of a debugger write at icount {now.icount}")

    def _run(self, limit: int | None, interrupted: Interrupted = _never, resume: bool = True) -> RunResult:
        """``machine.run`` that passes keyframes: reaching one's icount puts its state in place."""
        while True:
            later = [k for k in self.keyframes if k > self.machine.icount and (limit is None or k <= limit)]
            if not later:
                result = self.machine.run(limit, interrupted, resume=resume)
                self._note_progress()
                return result
            key = min(later)
            result = self.machine.run(key, interrupted, resume=resume)
            self._note_progress()
            if self.machine.icount != key:
                return result
            self._restore(self.keyframes[key])  # (also when the guest exited right there)
            if key == limit or result.kind != RunKind.LIMIT:
                return result
            resume = False

    def _note_progress(self) -> None:
        """After every run: take or check a verification point here (:class:`Verifier`), move the frontier."""
        icount = self.machine.icount
        # (cheapest tests first: this runs after every run, every stepi included)
        if (
            self._periodic
            and icount > self.code_index.until
            and icount >= self._scanned
            and icount % self.interval == 0
        ):
            self.code_index.add(icount, self.machine.take_executed_code())  # first time here: a window ends
        elif self._periodic and icount == self.code_index.until and icount >= self._scanned:
            self.machine.take_executed_code()  # where a loaded index ends: its next window begins here
        self._scanned = max(self._scanned, icount)
        self.verifier.note(self.machine, self.inputs.frontier, self.keyframes)
        if self.is_live:
            self.inputs.frontier = max(self.inputs.frontier, icount)

    @property
    def verify_points(self) -> dict[int, bytes]:
        """icount -> register digest: taken going forward live, checked going forward through a recording."""
        return self.verifier.points

    def request_verify(self, then: Callable[[], None]) -> None:
        """Take a verification point as soon as the live run can (callable from inside a run: the run stops
        at its next checkpoint for it), then call ``then`` (a recording's writer flushes from there, so its
        file vouches for the history up to now however long the guest then idles)."""
        self.verifier.request(self.machine.icount, then)

    def cut_history(self, icount: int) -> None:
        """History is only known good up to ``icount`` (a recording that diverged after it): it ends there."""
        if not self.is_live:
            self.inputs.frontier = min(self.inputs.frontier, max(icount, self.start))
            self.ending = None

    # -- seeking -------------------------------------------------------------------------------
    def seek(self, target: int) -> None:
        """Go to ``target`` (start <= target <= end): restore a snapshot, replay forward to it."""
        if not self.start <= target <= self.end:
            raise ValueError(f"icount {target} is outside history ({self.start}..{self.end})")
        self.store.focus = target
        self._arm(False)
        snapshot = self.store.at_or_before(target)
        if not snapshot.icount <= self.machine.icount <= target:
            self._restore(snapshot)
        self._approach(target)

    def _approach(self, target: int, points: set[int] | None = None) -> None:
        """Replay from here to ``target``, leaving snapshots on the way (and at ``points``)."""
        # Snapshots on the way, each halving the distance left: the next steps back are short replays.
        # Through ground not run before, the periodic ones too (as a forward run would have taken them).
        distance = target - self.machine.icount
        points = {p for p in points or () if self.machine.icount < p < target}
        while distance >= 2 * self.min_gap:
            distance //= 2
            points.add(target - distance)
        first_new = (max(self.machine.icount, self._scanned) // self.interval + 1) * self.interval
        points.update(range(first_new, target, self.interval))
        for point in [*sorted(points), target]:
            self._replay_to(point)
            if point != target and not self.store.has(point):
                self.snapshot()

    def land(self, position: int, pc: int) -> None:
        """Seek to ``position`` and stand at ``pc`` there: where a trap was entered at that icount (a stop on a
        handler's first instruction: an interrupt taken, or an exception raised by the instruction at that
        icount), enter it again by running on to ``pc`` without retiring an instruction. Where that does not
        get there, the seek's position stays."""
        self.seek(position)
        if self.machine.pc == pc:
            return
        here = take_snapshot(self.machine, self.inputs.position)
        try:
            self.machine.arm((pc,), ())
            result = self.machine.run(position + 1, resume=False)
            entered = result.kind == RunKind.BREAKPOINT and (self.machine.icount, self.machine.pc) == (position, pc)
        except (UcError, ValueError):  # (a pc no breakpoint can be set at: a crafted recording's bookmark)
            entered = False
        self.machine.arm((), ())
        if not entered:
            self.inputs.position = restore_snapshot(self.machine, here)

    def _leave_trail(self) -> None:
        """Make the first step back from here cheap: if the nearest snapshot is far behind, replay from it to
        here once now, leaving snapshots that halve the distance (as a seek does). Costs at most one
        snapshot interval of replay, once per stop; the machine ends exactly as it was."""
        here = self.machine.icount
        base = self.store.at_or_before(here)
        if here - base.icount <= self.trail_gap:
            return
        now = take_snapshot(self.machine, self.inputs.position)  # the stop as it is (watch bookkeeping too)
        self._arm(False)
        self._restore(base)
        self._approach(here, {here - 1})  # the first step back is then a restore, no replay
        self._restore(now)

    def restore_at(self, icount: int) -> None:
        """Put the machine at ``icount`` (inside history) by the shortest replay, leaving no snapshots and arming
        nothing (the query engine's windows: it arms what it scans for itself, then calls :meth:`run_to`)."""
        if not self.start <= icount <= self.end:
            raise ValueError(f"icount {icount} is outside history ({self.start}..{self.end})")
        self._arm(False)
        snapshot = self.store.at_or_before(icount)
        if not snapshot.icount <= self.machine.icount <= icount:
            self._restore(snapshot)
        self._replay_to(icount)

    def run_to(self, limit: int, resume: bool = False) -> RunResult:
        """Run the machine forward to at most ``limit`` (inside history) with whatever the caller armed in it,
        through keyframes as every run of the timeline does; ``resume`` as :meth:`Machine.run`."""
        if limit > self.end:
            raise ValueError(f"icount {limit} is past the end of history ({self.end})")
        return self._run(limit, resume=resume)

    def _replay_to(self, target: int) -> None:
        while self.machine.icount < target:
            result = self._run(target, resume=False)
            if result.kind != RunKind.LIMIT and self.machine.icount < target:
                raise ReplayDivergence(result.icount, f"the guest stopped ({result.describe()}) inside history")

    # -- forward -------------------------------------------------------------------------------
    def run_forward(self, step: bool = False, interrupted: Interrupted = _never, until: int | None = None,
                    progress: Progress | None = None) -> RunResult:  # fmt: skip
        """Continue (or step one instruction) forward, at most to ``until``; past the end of a live history,
        record live. ``progress(icount)`` is told at every periodic point."""
        result = self._forward(step, interrupted, until, progress)
        if not self.is_live and result.icount >= self.end and result.kind in _ENDS_AT_HISTORY_END:
            return self._result(RunKind.HISTORY_END)
        return result

    def replay_to_end(self, interrupted: Interrupted = _never, progress: Progress | None = None) -> RunResult:
        """Run a recording forward to its end, checking every verification point on the way.

        Returns how the run really ended there: the recording's :attr:`ending` says how it must (a guest
        that faulted or idled forever does so again at the next instruction, which is run to see it).
        """
        if self.is_live:
            raise ValueError("a live history has no end to replay to")
        if self.machine.icount < self.end:
            result = self._forward(False, interrupted, None, progress)
        else:  # already there: the machine says how it stands (an exit is seen at once)
            result = self._run(self.end, interrupted, resume=False)
        ending = self.ending
        if result.kind != RunKind.LIMIT or result.icount < self.end or ending is None or ending.icount != self.end:
            return result
        if ending.kind in (RunKind.FAULT, RunKind.IDLE_FOREVER):
            self._arm(False)
            return self._run(self.end + 1, interrupted, resume=False)
        return result

    def _forward(self, step: bool, interrupted: Interrupted, until: int | None, progress: Progress | None,
                 ) -> RunResult:  # fmt: skip
        self.store.focus = self.machine.icount
        if not self.is_live and self.machine.icount >= self.end:
            return self._result(RunKind.HISTORY_END)
        limit = self.machine.icount + 1 if step else None
        if until is not None:
            limit = until if limit is None else min(limit, until)
        if not self.is_live:
            limit = self.end if limit is None else min(limit, self.end)
        if (
            self._periodic
            and self.machine.icount - self.store.at_or_before(self.machine.icount).icount > self.trail_gap
        ):
            self.snapshot()  # a step or a short run then ends near a snapshot
        self._arm(True)
        resume = True

        def stop_for_us() -> bool:  # the user's Ctrl-C, or a verification point asked for meanwhile
            return self.verifier.requested or interrupted()

        while True:
            point = self._next_cut()
            cut = point is not None and (limit is None or point < limit)
            result = self._run(point if cut else limit, stop_for_us, resume=resume)
            resume = False
            if result.kind == RunKind.INTERRUPTED and not interrupted():
                continue  # stopped for a verification point (taken in _note_progress): go on
            if not (cut and result.kind == RunKind.LIMIT and self.machine.icount == point):
                break
            if progress is not None:
                progress(point)
            if self._periodic and point % self.interval == 0 and not self.store.has(point):
                self.snapshot()
        self.store.focus = self.machine.icount
        if self.is_live and result.kind.ends_by_itself and result.icount >= self.end:
            self.ending = End(result.icount, result.kind, result.exit_code or 0)  # a saved recording says so
        if self._periodic:
            self._leave_trail()
        return result

    def _next_cut(self) -> int | None:
        """The next icount a forward run stops at for bookkeeping: a periodic snapshot or a verification point."""
        here = self.machine.icount
        cuts = []
        if self._periodic:
            cuts.append((max(here, self._scanned) // self.interval + 1) * self.interval)
        verify = self.verifier.next_cut(here, self.inputs.frontier)
        if verify is not None:
            cuts.append(verify)
        return min(cuts, default=None)

    # -- backward ------------------------------------------------------------------------------
    def step_backward(self) -> RunResult:
        """Go back one instruction (``bs``); a watched access by that instruction is reported instead.

        As in :meth:`continue_backward`, the watchpoint is reported where we stand (one instruction after
        the access): gdb then removes its watchpoints and steps back over the access itself.
        """
        here = self.machine.icount
        if here <= self.start:
            return self._result(RunKind.HISTORY_BEGIN)
        self.seek(here - 1)
        if not self.watchpoints:
            return self._result(RunKind.LIMIT)
        before = self.snapshot()  # to come back to without a second seek
        self.machine.arm((), self._watch_list())
        hit = self._run(here, resume=False)
        if hit.kind != RunKind.WATCHPOINT:
            self._restore(before)
            return self._result(RunKind.LIMIT)
        self.seek(here)
        return RunResult(RunKind.WATCHPOINT, here, self.machine.pc, fault_addr=hit.fault_addr,
                         watch_kind=hit.watch_kind, written_by=hit.written_by)  # fmt: skip

    def continue_backward(self, interrupted: Interrupted = _never) -> RunResult:
        """Go back to the last breakpoint or watchpoint hit before here (``bc``), or the start.

        Window after window ``[snapshot, end)`` backward, each scanned forward only where a hit can be: not at
        all when no watched page was written and no breakpoint's code ran there, and for breakpoints alone from
        the start of the last stretch of the execution index where one's code ran.
        """
        end = self.machine.icount
        self.store.focus = end
        window_end = end
        later_ram = self.machine.ram_image()
        while window_end > self.start:
            snapshot = self.store.at_or_before(window_end - 1)
            watch = self._may_hit_watchpoints(snapshot.state.ram, later_ram)
            scan_from = snapshot.icount if watch else self._breakpoint_scan_start(snapshot.icount, window_end)
            if scan_from < window_end:
                self._arm(False)
                self._restore(snapshot)
                if scan_from > snapshot.icount:
                    self._replay_to(scan_from)
                    later_ram = self.machine.ram_image()
                else:
                    later_ram = snapshot.state.ram
                hits = self._scan(window_end, interrupted, watch)
                if hits is None:
                    return self._result(RunKind.INTERRUPTED)  # Ctrl-C: stop inside the window
                if hits:
                    position, hit = hits[-1]
                    if hit.kind == RunKind.BREAKPOINT:
                        self.land(position, hit.pc)
                    else:
                        self.seek(position)
                    return RunResult(hit.kind, position, self.machine.pc, fault_addr=hit.fault_addr,
                                     watch_kind=hit.watch_kind, written_by=hit.written_by)  # fmt: skip
                window_end = scan_from
                continue
            if interrupted():
                self.seek(window_end)
                return self._result(RunKind.INTERRUPTED)
            later_ram = snapshot.state.ram
            window_end = snapshot.icount
        self.seek(self.start)
        return self._result(RunKind.HISTORY_BEGIN)

    def _breakpoint_scan_start(self, start: int, end: int) -> int:
        """Where a scan of ``[start, end)`` for breakpoint hits must begin (``end``: none can be there).

        Exact about absence: the execution index says which code ran where (:mod:`replay.code_index`).
        """
        if not self.breakpoints:
            return end
        if not (self.use_code_index and self._periodic):
            return start
        pending = lambda: self.machine.take_executed_code(next_window=False)  # noqa: E731
        return self.code_index.last_start(self.breakpoints, start, end, pending)

    def _may_hit_watchpoints(self, earlier: PageTable, later: PageTable) -> bool:
        """Whether a watchpoint can fire between two RAM images (False lets a window run without memory hooks).

        A write watchpoint cannot fire where the machine vouches that none of its bytes was written between
        the two images (page identity under page-protection tracking); reads leave no trace, so read and
        access watchpoints always need the hooks.
        """
        if not self.watchpoints:
            return False
        if not self.skip_unwritten:
            return True
        return not all(
            w.kind == WatchKind.WRITE and self.machine.is_unwritten_between(earlier, later, w.addr, w.length)
            for w in self.watchpoints
        )

    def _scan(self, window_end: int, interrupted: Interrupted, watch: bool = True) -> list[Hit] | None:
        """Run forward to ``window_end`` (excluded), collecting (position, hit); None if interrupted."""
        self._arm(True, watch)
        hits: list[Hit] = []
        resume = False  # a hit at the window's first instruction counts
        while True:
            result = self._run(window_end, interrupted, resume=resume)
            resume = True
            if result.kind == RunKind.BREAKPOINT:
                hits.append((result.icount, result))
            elif result.kind == RunKind.WATCHPOINT:
                hits.append((result.icount + 1, result))  # reported after the access going backward
            elif result.kind == RunKind.INTERRUPTED:
                return None
            else:
                if result.icount < window_end:  # (an exit exactly at the window's end is that end)
                    raise ReplayDivergence(result.icount, f"the guest stopped ({result.describe()}) inside history")
                return hits


_ENDS_AT_HISTORY_END = (RunKind.LIMIT, RunKind.EXITED, RunKind.IDLE_FOREVER, RunKind.RESET)
