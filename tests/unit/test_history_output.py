"""The timeline's input source (replay inside history, record past its end) and the UART output log."""

from __future__ import annotations

import pytest

from machine.inputs import ScriptedInputs
from replay.errors import ReplayDivergence
from replay.events import ClockWarp, HostClock, UartInput
from replay.history import HistoryInputs
from replay.output import OutputLog


def test_records_live_answers_past_the_frontier_and_replays_them_inside() -> None:
    live = ScriptedInputs(clock_ns=42, schedule=[(10, b"ab")])
    history = HistoryInputs([], 0, live)
    assert history.host_clock_ns(5) == 42
    assert history.poll_input(10, 16) == b"ab"
    assert history.events == [HostClock(5, 42), UartInput(10, b"ab")]
    history.frontier = 20
    history.position = 0  # back to the start of history: everything comes from the log now
    live._clock_ns = 99  # the live world changed meanwhile; history must not
    assert history.host_clock_ns(5) == 42
    assert history.next_input_icount(6) == 10
    assert history.poll_input(9, 16) == b""
    assert history.poll_input(10, 16) == b"ab"
    assert history.position == 2
    assert history.host_clock_ns(25) == 99  # past the frontier: live again, and logged
    assert history.events[-1] == HostClock(25, 99)


def test_a_fixed_history_diverges_loudly() -> None:
    history = HistoryInputs([HostClock(5, 1), ClockWarp(8, 100)], 10)
    with pytest.raises(ReplayDivergence, match="icount 4"):
        history.host_clock_ns(4)
    assert history.host_clock_ns(5) == 1
    assert history.idle(8, None).warp_ns == 100
    assert history.idle(9, 7).warp_ns == 7  # no event: to the timer deadline
    assert history.idle(9, None).forever


def test_output_is_shown_once_and_checked_when_replayed() -> None:
    shown = bytearray()
    output = OutputLog(shown.append)
    for icount, byte in ((10, 65), (20, 66), (30, 67)):
        output.emit(icount, byte)
    output.emit(10, 65)  # replayed: the same byte at the same icount, not shown again
    output.emit(20, 66)
    assert bytes(shown) == b"ABC" and output.mismatches == 0
    output.emit(20, 90)  # a replay that differs
    output.emit(25, 66)
    assert output.mismatches == 2 and bytes(shown) == b"ABC"
    output.emit(40, 68)  # new again
    assert bytes(shown) == b"ABCD"
