"""The timeline against a forward-only reference: every position has the digest the reference had there.

The reference is a plain machine run forward once with the same scripted inputs, tracing the pc of every
instruction; digests at any icount come from fresh reference runs. The timeline is driven live (recording
its inputs as it goes) and then as a fixed history, with a small snapshot interval so that seeks and
backward scans cross many snapshots and windows.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import Machine, MachineConfig
from machine.results import RunKind
from machine.watch import WatchKind, Watchpoint
from replay.history import HistoryInputs
from replay.store import SnapshotStore
from replay.timeline import Timeline
from tests.conftest import GUESTS, guest

SCHEDULE = {
    "echo": [(16_800, b"ab\n"), (30_000, b"hello\n"), (45_000, b"q")],
    "timer": [],
    "cmdint": [(0, (GUESTS / "inputs" / "cmdint-bug.txt").read_bytes())],
}
INTERVAL = 4096


def _machine(name: str, inputs: object) -> Machine:
    return Machine(load_image(guest("rv32", name)), inputs, lambda b: None, MachineConfig())  # type: ignore[arg-type]


def _scripted(name: str) -> ScriptedInputs:
    return ScriptedInputs(0, list(SCHEDULE[name]))


@cache
def reference_trace(name: str) -> tuple[tuple[int, ...], int]:
    """The pc before each icount (index = icount) and the icount at which the guest exits."""
    machine = _machine(name, _scripted(name))
    pcs: dict[int, int] = {}
    machine.enable_trace(lambda icount, pc, code: pcs.__setitem__(icount, pc))
    result = machine.run()
    assert result.kind == RunKind.EXITED
    return tuple(pcs[i] for i in range(result.icount)), result.icount


@cache
def reference_digest(name: str, icount: int) -> str:
    machine = _machine(name, _scripted(name))
    machine.run(icount)
    assert machine.icount == icount
    return machine.digest()


def live_timeline(name: str) -> Timeline:
    inputs = HistoryInputs([], 0, _scripted(name))
    return Timeline(_machine(name, inputs), inputs, SnapshotStore(), INTERVAL)


def fixed_timeline(name: str) -> Timeline:
    """A saved history: the live run's events, its end fixed, on a fresh machine."""
    live = live_timeline(name)
    live.run_forward()
    inputs = HistoryInputs(list(live.inputs.events), live.end)
    return Timeline(_machine(name, inputs), inputs, SnapshotStore(), INTERVAL)


def check_here(timeline: Timeline, name: str) -> None:
    assert timeline.machine.digest() == reference_digest(name, timeline.icount), timeline.icount


@pytest.mark.parametrize("name", ["timer", "echo"])
def test_live_run_records_then_seeks_anywhere(name: str) -> None:
    timeline = live_timeline(name)
    result = timeline.run_forward()
    pcs, end = reference_trace(name)
    assert result.kind == RunKind.EXITED and timeline.end == end == result.icount
    assert len(timeline.store) > 3  # periodic snapshots were taken
    for target in (end // 2, 1, end, 0, end - 1, end // 3):
        timeline.seek(target)
        assert timeline.icount == target and timeline.machine.pc == (pcs[target] if target < end else result.pc)
        check_here(timeline, name)


def test_step_backward_at_the_start_is_the_history_begin() -> None:
    timeline = live_timeline("timer")
    assert timeline.step_backward().kind == RunKind.HISTORY_BEGIN
    timeline.run_forward(step=True)
    assert timeline.step_backward().kind == RunKind.LIMIT and timeline.icount == 0


def test_fixed_history_ends_without_exit() -> None:
    timeline = fixed_timeline("echo")
    _, end = reference_trace("echo")
    assert timeline.run_forward().kind == RunKind.HISTORY_END and timeline.icount == end
    assert timeline.run_forward(step=True).kind == RunKind.HISTORY_END
    assert timeline.step_backward().kind == RunKind.LIMIT and timeline.icount == end - 1
    check_here(timeline, "echo")


@pytest.mark.parametrize("name", ["timer", "echo"])
def test_continue_backward_finds_every_earlier_hit_in_turn(name: str) -> None:
    pcs, end = reference_trace(name)
    timeline = fixed_timeline(name)
    timeline.seek(end)
    handler = load_image(guest("rv32", name)).symbols["trap_handler"]
    expected = [i for i, pc in enumerate(pcs) if pc == handler]
    assert len(expected) >= 2
    timeline.add_breakpoint(handler)
    found = []
    while (result := timeline.continue_backward()).kind == RunKind.BREAKPOINT:
        assert result.pc == handler and timeline.icount == result.icount
        found.append(result.icount)
    assert result.kind == RunKind.HISTORY_BEGIN and timeline.icount == 0
    assert found == expected[::-1]  # the last hit first, none skipped, the one we stand on never again


def test_continue_backward_watchpoint_reports_after_the_write() -> None:
    image = load_image(guest("rv32", "timer"))
    ticks = image.symbols["ticks"]
    timeline = fixed_timeline("timer")
    timeline.seek(timeline.end)
    final = int.from_bytes(timeline.machine.memory.read(ticks, 4), "little")
    timeline.add_watchpoint(Watchpoint(WatchKind.WRITE, ticks, 4))
    result = timeline.continue_backward()
    assert result.kind == RunKind.WATCHPOINT and result.fault_addr == ticks
    # Reported one instruction after the write: the value is the new one; one step back it is the old one.
    assert int.from_bytes(timeline.machine.memory.read(ticks, 4), "little") == final
    timeline.watchpoints.clear()
    timeline.step_backward()
    assert int.from_bytes(timeline.machine.memory.read(ticks, 4), "little") == final - 1
    check_here(timeline, "timer")


def test_debugger_write_at_the_live_end_is_replayed() -> None:
    timeline = live_timeline("timer")
    timeline.run_forward(step=False, interrupted=lambda: timeline.icount > 5000)
    ticks = load_image(guest("rv32", "timer")).symbols["ticks"]
    timeline.machine.memory.write(ticks, (7).to_bytes(4, "little"))
    timeline.note_write()
    written_at, digest = timeline.icount, timeline.machine.digest()
    timeline.run_forward(step=True)
    timeline.seek(0)
    timeline.seek(written_at)
    assert timeline.machine.digest() == digest
    with pytest.raises(ValueError):
        timeline.note_write()  # inside history now


MOVES = st.lists(
    st.one_of(
        st.tuples(st.just("seek"), st.floats(0, 1)),
        st.tuples(st.just("back"), st.just(0.0)),
        st.tuples(st.just("step"), st.just(0.0)),
        st.tuples(st.just("rcont"), st.just(0.0)),
        st.tuples(st.just("cont"), st.just(0.0)),
    ),
    min_size=3,
    max_size=8,
)


@pytest.mark.slow
@settings(max_examples=12, deadline=None)
@given(moves=MOVES, name=st.sampled_from(["timer", "echo"]))
def test_random_walk_matches_the_forward_reference(moves: list[tuple[str, float]], name: str) -> None:
    pcs, end = reference_trace(name)
    timeline = fixed_timeline(name)
    handler = load_image(guest("rv32", name)).symbols["trap_handler"]
    timeline.add_breakpoint(handler)
    hits = [i for i, pc in enumerate(pcs) if pc == handler]
    for move, fraction in moves:
        before = timeline.icount
        if move == "seek":
            timeline.seek(round(fraction * end))
        elif move == "back":
            timeline.step_backward()
            assert timeline.icount == max(0, before - 1)
        elif move == "step":
            timeline.run_forward(step=True)
            assert timeline.icount == min(end, before + 1)
        elif move == "rcont":
            timeline.continue_backward()
            assert timeline.icount == max([i for i in hits if i < before], default=0)
        else:
            timeline.run_forward()
            assert timeline.icount == min([i for i in hits if i > before], default=end)
        check_here(timeline, name)


@pytest.mark.parametrize(("variable", "offset"), [("probe", 16), ("main", 0)])  # probe.scale; a word of code
def test_skipping_unwritten_windows_finds_the_same_writes(variable: str, offset: int) -> None:
    """Backward write-watchpoint search with window skipping == without it, write after write to the start."""
    addr = load_image(guest("rv32", "cmdint")).symbols[variable] + offset
    found, scans = {}, {}
    for skip in (True, False):
        timeline = fixed_timeline("cmdint")
        timeline.skip_unwritten = skip
        scan, scans[skip] = timeline._scan, []
        timeline._scan = lambda *args, s=scan, n=scans[skip]: n.append(args[2]) or s(*args)  # type: ignore[method-assign]
        timeline.seek(timeline.end)
        watchpoint = Watchpoint(WatchKind.WRITE, addr, 4)
        timeline.add_watchpoint(watchpoint)
        stops = []
        while (result := timeline.continue_backward()).kind == RunKind.WATCHPOINT:
            stops.append((result.icount, result.pc, timeline.machine.digest()))
            timeline.remove_watchpoint(watchpoint)  # as gdb does: back over the write itself, then on
            timeline.step_backward()
            timeline.add_watchpoint(watchpoint)
        assert result.kind == RunKind.HISTORY_BEGIN
        found[skip] = stops
    assert found[True] == found[False]
    if variable == "probe":  # set_scale, then four bytes of the overflowing name (its stack shares the page)
        assert len(found[True]) == 5
    else:  # code is never written: not one window needs the memory hooks (with page-protection tracking)
        assert found[True] == []
        if timeline.machine.ram_pages.is_tracked:
            assert scans[True].count(True) == 0 < scans[False].count(True)


def test_step_backward_over_a_watched_write_reports_it() -> None:
    """``bs`` onto a write of a watched word: reported where we stand, as gdb's rule wants; then gdb steps."""
    ticks = load_image(guest("rv32", "timer")).symbols["ticks"]
    timeline = fixed_timeline("timer")
    timeline.seek(timeline.end)
    watchpoint = Watchpoint(WatchKind.WRITE, ticks, 4)
    timeline.add_watchpoint(watchpoint)
    hit = timeline.continue_backward()
    assert hit.kind == RunKind.WATCHPOINT
    after_write = timeline.icount
    timeline.remove_watchpoint(watchpoint)
    timeline.step_backward()  # onto the writing instruction
    timeline.run_forward(step=True)  # and forward over it again
    timeline.add_watchpoint(watchpoint)
    result = timeline.step_backward()
    assert result.kind == RunKind.WATCHPOINT and result.fault_addr == ticks and timeline.icount == after_write
    check_here(timeline, "timer")
    timeline.remove_watchpoint(watchpoint)
    assert timeline.step_backward().kind == RunKind.LIMIT and timeline.icount == after_write - 1


def test_live_runs_take_verification_points_a_replay_can_check() -> None:
    from replay.verify import verify_digest

    inputs = HistoryInputs([], 0, ScriptedInputs())
    machine = _machine("compute", inputs)
    timeline = Timeline(machine, inputs, SnapshotStore(), 1 << 20)
    timeline.run_forward(interrupted=lambda: machine.icount >= 4_500_000)
    points = sorted(timeline.verify_points)
    assert points[:4] == [1 << 20, 2 << 20, 3 << 20, 4 << 20] and points[-1] <= machine.icount
    reference = _machine("compute", ScriptedInputs())
    for icount, digest in sorted(timeline.verify_points.items()):
        reference.run(icount)
        assert verify_digest(reference) == digest


def test_a_far_seek_leaves_periodic_snapshots_on_ground_not_run_before() -> None:
    timeline = fixed_timeline("echo")
    assert timeline.store.icounts() == [0]
    timeline.seek(timeline.end)
    held = set(timeline.store.icounts())
    assert {INTERVAL * k for k in range(1, timeline.end // INTERVAL)} <= held  # as a forward run would have
    timeline.seek(INTERVAL * 2 + 5)
    check_here(timeline, "echo")


def backward_breakpoint_stops(
    timeline: Timeline, addr: int, use_index: bool
) -> tuple[list[tuple[int, int, str]], list[int]]:
    """From the end, reverse-continue to a breakpoint at ``addr`` hit after hit down to the start: the stops
    (icount, pc, digest) and the start of every stretch scanned (with or without the execution index)."""
    timeline.use_code_index = use_index
    scan, scans = timeline._scan, []
    timeline._scan = lambda *args: scans.append(args[0]) or scan(*args)  # type: ignore[method-assign]
    timeline.seek(timeline.end)
    timeline.add_breakpoint(addr)
    stops = []
    while (result := timeline.continue_backward()).kind == RunKind.BREAKPOINT:
        assert result.pc == addr
        stops.append((result.icount, result.pc, timeline.machine.digest()))
    assert result.kind == RunKind.HISTORY_BEGIN and timeline.icount == 0
    return stops, scans


@pytest.mark.parametrize(
    ("name", "function"), [("cmdint", "uart_putdec"), ("cmdint", "uart_puts"), ("timer", "trap_handler")]
)
def test_execution_index_finds_the_same_breakpoint_hits(name: str, function: str) -> None:
    """Backward continue to a breakpoint with the execution index == without it, hit after hit to the start;
    with the index, windows where the breakpoint's code never ran are not replayed."""
    addr = load_image(guest("rv32", name)).symbols[function]
    found, scans = {}, {}
    for use in (True, False):
        found[use], scans[use] = backward_breakpoint_stops(fixed_timeline(name), addr, use)
    pcs, _ = reference_trace(name)
    assert found[True]
    assert [icount for icount, _, _ in found[True]] == [i for i, pc in enumerate(pcs) if pc == addr][::-1]
    assert found[True] == found[False]
    if function != "trap_handler":  # a timer tick runs in every window; these do not
        assert len(scans[True]) < len(scans[False])


def test_execution_index_is_built_while_running_forward_and_bounded() -> None:
    """Each periodic point passed for the first time ends an index entry; replays add none; merging keeps
    the index within its bound without losing what ran."""
    timeline = live_timeline("timer")
    timeline.run_forward()
    index = timeline.code_index
    assert index.until == timeline.end // INTERVAL * INTERVAL and len(index) == index.until // INTERVAL
    handler = load_image(guest("rv32", "timer")).symbols["trap_handler"]
    before = len(index)
    timeline.seek(0)
    timeline.seek(timeline.end)
    assert len(index) == before
    pending = lambda: timeline.machine.take_executed_code(next_window=False)  # noqa: E731
    assert index.may_run([handler], 0, timeline.end, pending)
    assert not index.may_run([0x1234_5678], 0, timeline.end, pending)  # never code
    index._max_bytes = 1
    index.add(index.until + INTERVAL, timeline.machine.take_executed_code())
    assert len(index) == 1 and index.may_run([handler], 0, timeline.end, pending)


def test_execution_index_treats_ground_skipped_by_a_keyframe_as_unknown() -> None:
    """A recording's keyframe lies beyond ground not yet run: a seek restores it directly, so what ran before
    it is unknown to the index (it never claims a breakpoint's code did not run there)."""
    live = live_timeline("timer")
    live.run_forward(interrupted=lambda: live.icount > 6 * INTERVAL + 100)
    live.machine.memory.write(load_image(guest("rv32", "timer")).symbols["ticks"], (3).to_bytes(4, "little"))
    live.note_write()
    written_at = live.icount
    live.run_forward()
    handler = load_image(guest("rv32", "timer")).symbols["trap_handler"]
    found = {}
    for use in (True, False):
        inputs = HistoryInputs(list(live.inputs.events), live.end)
        timeline = Timeline(_machine("timer", inputs), inputs, SnapshotStore(), INTERVAL)
        timeline.add_keyframe(live.keyframes[written_at])
        timeline.use_code_index = use
        timeline.seek(timeline.end)  # restores the keyframe, then replays only past it
        pending = lambda t=timeline: t.machine.take_executed_code(next_window=False)  # noqa: E731
        never_code = 0x1234_5678
        assert timeline.code_index.may_run([never_code], 0, written_at, pending)
        assert not timeline.code_index.may_run([never_code], written_at + INTERVAL, timeline.end, pending)
        timeline.add_breakpoint(handler)
        found[use] = []
        while (result := timeline.continue_backward()).kind == RunKind.BREAKPOINT:
            found[use].append((result.icount, timeline.machine.digest()))
    assert len(found[True]) >= 2 and found[True] == found[False]
