"""Same guest, same inputs -> same state digest, at many icounts and at the end."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import XLENS_RV64_SLOW, guest, make_machine, run_machine

CHECKPOINTS = [500, 16_400, 16_450, 17_000, 40_000, 90_000, 250_000]


@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
@pytest.mark.parametrize("name", ["timer", "echo", "traps"])
def test_two_runs_same_digests(xlen: str, name: str) -> None:
    schedule = [(20_000, b"hi\n"), (60_000, b"there\nq")] if name == "echo" else None
    a = make_machine(guest(xlen, name), schedule=schedule)
    b = make_machine(guest(xlen, name), schedule=schedule)
    for point in CHECKPOINTS:
        ra, rb = a.run(point), b.run(point)
        assert ra == rb
        assert a.digest() == b.digest(), f"diverged by icount {point}"
    end_a, end_b = a.run(), b.run()
    assert end_a == end_b and end_a.kind.label == "exited"
    assert a.digest() == b.digest()


def test_counters_come_from_icount_not_the_host(xlen: str) -> None:
    """rdcycle/rdinstret/rdtime read through the board: identical across runs.

    (docs/unicorn-facts.md, "Hidden non-determinism")
    """
    first = run_machine(guest(xlen, "timer"))
    second = run_machine(guest(xlen, "timer"))
    assert first.result == second.result
    assert first.machine.digest() == second.machine.digest()


def test_different_input_schedules_give_different_digests(xlen: str) -> None:
    """The digest sees the difference an input makes (so equality above means something)."""
    a = run_machine(guest(xlen, "echo"), schedule=[(1_000, b"a\nq")])
    b = run_machine(guest(xlen, "echo"), schedule=[(1_000, b"b\nq")])
    assert a.output != b.output
    assert a.machine.digest() != b.machine.digest()


def test_digest_independent_of_stop_pattern(xlen: str) -> None:
    """Stopping often (mid-block) or never must not change what the guest does."""
    steady = make_machine(guest(xlen, "timer"))
    steady.run(300_000)
    choppy = make_machine(guest(xlen, "timer"))
    for target in range(997, 300_000, 9_973):
        choppy.run(target)
    choppy.run(300_000)
    assert steady.digest() == choppy.digest()


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(stops=st.lists(st.integers(min_value=1, max_value=1 << 30), min_size=1, max_size=12))
def test_any_stop_pattern_gives_the_reference_states(stops: list[int]) -> None:
    """Property: stopping at arbitrary icounts (mid-block, in handlers, in wfi) changes nothing.

    A machine stopped at every target reaches the same state at each one as a
    machine that stopped only there, and both end in the digest of a straight run.
    """
    path = guest("rv32", "timer")
    straight = run_machine(path)
    end = straight.result.icount
    targets = sorted({1 + s % (end - 1) for s in stops})
    probe = make_machine(path)
    for target in targets:
        single = make_machine(path)
        single.run(target)
        probe.run(target)
        assert probe.icount == single.icount == target
        assert probe.digest() == single.digest()
    assert probe.run() == straight.result
    assert probe.digest() == straight.machine.digest()


@pytest.mark.slow
@settings(max_examples=10, deadline=None)
@given(
    stops=st.lists(st.integers(min_value=1, max_value=1 << 30), min_size=1, max_size=8),
    schedule=st.lists(
        st.tuples(st.integers(min_value=0, max_value=60_000), st.binary(min_size=1, max_size=5)),
        min_size=1,
        max_size=4,
    ),
)
def test_input_arrives_at_the_same_icount_whatever_the_stops(
    stops: list[int], schedule: list[tuple[int, bytes]]
) -> None:
    """Scripted UART input is delivered at its exact icount, not at whichever stop comes next."""
    path = guest("rv32", "echo")
    schedule = [*schedule, (70_000, b"q")]
    straight = run_machine(path, schedule=schedule)
    assert straight.result.kind.label == "exited"
    end = straight.result.icount
    probe = make_machine(path, schedule=schedule)
    for target in sorted({1 + s % (end - 1) for s in stops}):
        probe.run(target)
    assert probe.run() == straight.result
    assert probe.digest() == straight.machine.digest()
