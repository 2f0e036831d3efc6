"""Save the whole machine, run on, restore, run again: the same states at the same icounts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import XLENS_RV64_SLOW, guest, make_machine, run_machine


@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
@pytest.mark.parametrize("name", ["timer", "echo", "traps", "hello"])
def test_restore_then_rerun_reaches_the_same_states(xlen: str, name: str) -> None:
    schedule = [(16_800, b"ab\n"), (40_000, b"q")] if name == "echo" else None
    machine = make_machine(guest(xlen, name), schedule=schedule)
    machine.run(16_700)
    saved = machine.save_state()
    saved_digest = machine.digest()
    digests = []
    for point in (16_750, 17_000, 20_000):
        machine.run(point)
        digests.append(machine.digest())
    end = machine.run()
    end_digest = machine.digest()
    machine.restore_state(saved)
    assert machine.digest() == saved_digest
    if schedule is not None:  # the input source is outside the machine: replay it from the same point
        machine.inputs = make_machine(guest(xlen, name), schedule=schedule).inputs
        machine.inputs.poll_input(16_700, 0)  # consume what was due before the snapshot
    for point, digest in zip((16_750, 17_000, 20_000), digests, strict=True):
        machine.run(point)
        assert machine.digest() == digest, point
    assert machine.run() == end and machine.digest() == end_digest


@pytest.mark.slow
@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=17_000), min_size=2, max_size=5, unique=True))
def test_any_save_points_restore_exactly(points: list[int]) -> None:
    path = guest("rv32", "timer")
    reference = run_machine(path)
    machine = make_machine(path)
    saved = {}
    for point in sorted(points):
        machine.run(point)
        saved[point] = (machine.save_state(), machine.digest())
    for point in sorted(points, reverse=True):  # go back in time, in any order
        state, digest = saved[point]
        machine.restore_state(state)
        assert machine.icount == point and machine.digest() == digest
    assert machine.run() == reference.result and machine.digest() == reference.machine.digest()


def test_state_is_small_for_a_small_guest() -> None:
    machine = make_machine(guest("rv32", "timer"))
    machine.run(10_000)
    assert machine.save_state().ram_bytes < 1 << 20  # non-zero chunks only, not 128 MiB
