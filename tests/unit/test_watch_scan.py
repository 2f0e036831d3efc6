"""Watch scans on a real guest: the native hook, its Python twin and the scan before issue 12 agree.

Three scans of the same watch sets (random kinds, lengths and addresses around the cmdint guest's hot data
and stack, overlapping each other and the guest's accesses partially): ``native`` (machine/native/watch.c,
hooks ranged around the watched bytes), ``python`` (the same ranged hooks, checked in Python: the fallback)
and ``unranged`` (one unranged read and write hook checked in Python, as chronicorn did before). Each must
report the same hits going forward and backward: icount, pc, address, kind, and the memory around the
watched bytes at every stop (a write is undone, so that memory holds the bytes it replaced).
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unicorn import UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE

from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import Machine, MachineConfig
from machine.results import RunKind, RunResult
from machine.watch import WatchKind, Watchpoint, WatchpointSet, _load_native
from replay.history import HistoryInputs
from replay.store import SnapshotStore
from replay.timeline import Timeline
from tests.conftest import GUESTS, guest

PATH = guest("rv64", "cmdint")
SCHEDULE = [(0, (GUESTS / "inputs" / "cmdint-bug.txt").read_bytes())]
SYMBOLS = load_image(str(PATH)).symbols
# Hot data (the probe's fields, counters, the ring, the line buffer) and the top of the stack.
ANCHORS = [
    *(SYMBOLS[name] for name in ("average", "ticks", "ring_tail", "line.0")),
    *(SYMBOLS["probe"] + 16, SYMBOLS["ring"] + 2, SYMBOLS["window"] + 8),
    *(SYMBOLS["__stack_top"] - 16, SYMBOLS["__stack_top"] - 60),
]
SCANS = ("native", "python", "unranged")
MAX_HITS = 24
INTERVAL = 2048
CONFIG = MachineConfig(ram_size=4 << 20)  # small RAM: cheap digests


class UnrangedWatchpointSet(WatchpointSet):
    """The scan before issue 12: one unranged read and one unranged write hook, checked in Python."""

    def _hook_ranges(self) -> dict[int, list[tuple[int, int]]]:
        return {UC_HOOK_MEM_READ: [(1, 0)], UC_HOOK_MEM_WRITE: [(1, 0)]} if self else {}


def new_machine(scan: str, inputs: object) -> Machine:
    machine = Machine(load_image(str(PATH)), inputs, lambda b: None, CONFIG)  # type: ignore[arg-type]
    engine = machine.engine
    kind = UnrangedWatchpointSet if scan == "unranged" else WatchpointSet
    engine.watchpoints = kind(engine.uc, engine.counter.state, native=scan == "native")
    assert engine.watchpoints.is_native == (scan == "native")
    return machine


@cache
def history() -> tuple[tuple[object, ...], int]:
    """The guest's recorded events and the end of its history."""
    inputs = HistoryInputs([], 0, ScriptedInputs(0, list(SCHEDULE)))
    live = Timeline(new_machine("native", inputs), inputs, SnapshotStore(), INTERVAL)
    live.run_forward()
    return tuple(live.inputs.events), live.end


def hit(result: RunResult, machine: Machine, watchpoints: list[Watchpoint]) -> tuple[object, ...]:
    """What a hit reports, and the memory the watched accesses can touch (starting up to 15 bytes below)."""
    lo = min(w.addr for w in watchpoints) - 16
    hi = max(w.addr + w.length for w in watchpoints) + 16
    return result.icount, result.pc, result.fault_addr, result.watch_kind, bytes(machine.memory.read(lo, hi - lo))


def forward_hits(scan: str, watchpoints: list[Watchpoint]) -> list[tuple[object, ...]]:
    machine = new_machine(scan, ScriptedInputs(0, list(SCHEDULE)))
    for w in watchpoints:  # in this order: the first watchpoint an access hits is reported
        machine.add_watchpoint(w.kind, w.addr, w.length)
    hits: list[tuple[object, ...]] = []
    while (result := machine.run()).kind == RunKind.WATCHPOINT and len(hits) < MAX_HITS:
        hits.append(hit(result, machine, watchpoints))
    assert not machine.engine.watchpoints.suspended
    hits.append((result.kind, result.icount, machine.digest()))
    return hits


def backward_hits(scan: str, watchpoints: list[Watchpoint]) -> list[tuple[object, ...]]:
    events, end = history()
    inputs = HistoryInputs(list(events), end)  # type: ignore[arg-type]
    timeline = Timeline(new_machine(scan, inputs), inputs, SnapshotStore(), INTERVAL)
    timeline.seek(end)
    hits: list[tuple[object, ...]] = []
    for w in watchpoints:
        timeline.add_watchpoint(w)
    while (result := timeline.continue_backward()).kind == RunKind.WATCHPOINT and len(hits) < MAX_HITS:
        hits.append(hit(result, timeline.machine, watchpoints))
        for w in watchpoints:  # as gdb does: back over the access itself without them, then on
            timeline.remove_watchpoint(w)
        timeline.step_backward()
        hits.append((timeline.icount, timeline.machine.digest()))
        for w in watchpoints:
            timeline.add_watchpoint(w)
    hits.append((result.kind, timeline.icount))
    return hits


watchpoint_sets = st.lists(
    st.builds(
        Watchpoint,
        st.sampled_from(list(WatchKind)),
        st.builds(int.__add__, st.sampled_from(ANCHORS), st.integers(-9, 9)),
        st.integers(1, 9),
    ),
    min_size=1,
    max_size=3,
    unique=True,
)


@pytest.mark.slow  # ~6 s; CI runs it
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(watchpoints=watchpoint_sets)
def test_native_python_and_unranged_scans_report_the_same_hits(watchpoints: list[Watchpoint]) -> None:
    if _load_native() is None:
        pytest.skip("native helper not built")
    forward = {scan: forward_hits(scan, watchpoints) for scan in SCANS}
    assert forward["native"] == forward["python"] == forward["unranged"]
    backward = {scan: backward_hits(scan, watchpoints) for scan in SCANS}
    assert backward["native"] == backward["python"] == backward["unranged"]


def test_the_pure_python_machine_reports_the_same_hits() -> None:
    """The whole fallback (Python icount and watch scan, as with CHRONICORN_NATIVE=0) against the native one."""
    if _load_native() is None:
        pytest.skip("native helper not built")
    watchpoints = [
        Watchpoint(WatchKind.WRITE, SYMBOLS["ticks"] + 2, 4),
        Watchpoint(WatchKind.READ, SYMBOLS["probe"] + 15, 3),
        Watchpoint(WatchKind.ACCESS, SYMBOLS["__stack_top"] - 20, 9),
    ]
    runs = []
    for native in (True, False):
        config = MachineConfig(ram_size=CONFIG.ram_size, prefer_native=native)
        machine = Machine(load_image(str(PATH)), ScriptedInputs(0, list(SCHEDULE)), lambda b: None, config)
        assert machine.engine.watchpoints.is_native == native == machine.is_counter_native
        for w in watchpoints:
            machine.add_watchpoint(w.kind, w.addr, w.length)
        hits = []
        while (result := machine.run()).kind == RunKind.WATCHPOINT:
            hits.append(hit(result, machine, watchpoints))
        runs.append((hits, result.kind, result.icount, machine.digest()))
    assert runs[0] == runs[1] and len(runs[0][0]) > 10
