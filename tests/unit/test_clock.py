"""machine/clock.py: the icount-driven virtual clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from machine.clock import VirtualClock
from machine.devices.clint import NS_PER_TICK


def test_defaults_are_qemu_shift_3() -> None:
    clock = VirtualClock()
    assert (clock.shift, clock.bias_ns) == (3, 0)
    assert NS_PER_TICK == 100


def test_ns_is_icount_shifted_plus_bias() -> None:
    clock = VirtualClock(shift=3, bias_ns=0)
    assert clock.ns(0) == 0
    assert clock.ns(1) == 8
    assert clock.ns(1_000_000) == 8_000_000
    clock.bias_ns = 123
    assert clock.ns(10) == 203
    assert VirtualClock(shift=0, bias_ns=5).ns(7) == 12


def test_ticks_are_floor_of_100ns() -> None:
    clock = VirtualClock(shift=3)
    assert clock.ticks(12) == 0  # 96 ns
    assert clock.ticks(13) == 1  # 104 ns
    assert clock.ticks(25) == 2  # 200 ns exactly
    assert VirtualClock(shift=3, bias_ns=1_000).ticks(0) == 10


def test_icount_at_ticks_examples() -> None:
    clock = VirtualClock(shift=3)
    assert clock.icount_at_ticks(1, 0) == 13
    assert clock.icount_at_ticks(2, 0) == 25
    assert clock.icount_at_ticks(2, 40) == 40  # already reached: now
    assert clock.icount_at_ticks(0, 7) == 7
    assert clock.icount_at_ticks(-5, 7) == 7
    warped = VirtualClock(shift=3, bias_ns=150)
    assert warped.icount_at_ticks(1, 0) == 0  # the warp alone got there
    assert warped.icount_at_ticks(2, 0) == 7  # 56 + 150 = 206 ns


@given(
    shift=st.integers(0, 10),
    bias_ns=st.integers(0, 10**12),
    now=st.integers(0, 2**40),
    target=st.integers(-(10**6), 2**42),
)
def test_icount_at_ticks_is_the_first_icount_reaching_target(shift: int, bias_ns: int, now: int, target: int) -> None:
    clock = VirtualClock(shift=shift, bias_ns=bias_ns)
    icount = clock.icount_at_ticks(target, now)
    assert icount >= now
    assert clock.ticks(icount) >= target
    if icount > now:
        assert clock.ticks(icount - 1) < target


@given(shift=st.integers(0, 10), bias_ns=st.integers(0, 10**9), a=st.integers(0, 2**40), b=st.integers(0, 2**40))
def test_ticks_are_monotonic(shift: int, bias_ns: int, a: int, b: int) -> None:
    clock = VirtualClock(shift=shift, bias_ns=bias_ns)
    lo, hi = sorted((a, b))
    assert clock.ns(lo) <= clock.ns(hi)
    assert clock.ticks(lo) <= clock.ticks(hi)
