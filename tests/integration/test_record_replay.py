"""Record with scripted inputs, replay from the log, compare output and state digests."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import Machine
from machine.results import RunKind
from replay.errors import ReplayDivergence
from replay.events import End, HostClock, UartInput
from replay.history import HistoryInputs
from replay.log import LogReader
from replay.recording import load_recording, make_header
from replay.saver import RecordingWriter, history_inputs, open_recording
from replay.timeline import Timeline
from tests.conftest import XLENS_RV64_SLOW, guest


def record(path, schedule=None, checkpoints=(), inputs=None) -> tuple[bytes, bytes, list[str], object]:  # noqa: ANN001
    """Record as ``chronicorn record`` does (scripted ``schedule``, or ``inputs``); return (recording bytes,
    UART output, digests at checkpoints, (end result, end digest))."""
    stream, out = io.BytesIO(), bytearray()
    live = inputs if inputs is not None else ScriptedInputs(schedule=schedule)
    image = load_image(path)
    history = HistoryInputs([], 0, live)
    machine = Machine(image, history, out.append)
    timeline = Timeline(machine, history, periodic_snapshots=False)
    writer = RecordingWriter(stream, make_header(image, machine.arch.name, machine.config.ram_size, 3, "off", {}),
                             timeline)  # fmt: skip
    digests = []
    for point in checkpoints:
        timeline.run_forward(until=point)
        digests.append(machine.digest())
    result = timeline.run_forward()
    writer.finish()
    return stream.getvalue(), bytes(out), digests, (result, machine.digest())


def replay(path, log: bytes, checkpoints=()) -> tuple[bytes, list[str], object]:  # noqa: ANN001
    """Replay as ``chronicorn replay`` does: to the end, every verification point checked."""
    loaded = load_recording(io.BytesIO(log))
    inputs = history_inputs(loaded)
    out = bytearray()
    machine = Machine(load_image(path), inputs, out.append)
    timeline = open_recording(loaded, machine, inputs, periodic_snapshots=False)
    digests = []
    for point in checkpoints:
        timeline.run_forward(until=point)
        digests.append(machine.digest())
    result = timeline.replay_to_end()  # an exit or fault must happen again by itself
    return bytes(out), digests, (result, machine.digest())


@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
@pytest.mark.parametrize(
    "name", ["echo", "timer", "hello", "traps", "fault", pytest.param("compute", marks=pytest.mark.slow), "rtc"]
)
def test_replay_reproduces_output_and_digests(xlen: str, name: str) -> None:
    """Every guest in the repo: same output, same digests at checkpoints and at the end; twice."""
    path = guest(xlen, name)
    schedule = [(20_000, b"hello\n"), (45_000, b"again\n"), (80_000, b"q")] if name == "echo" else []
    points = [5_000, 17_000, 30_000, 50_000]
    log, out, digests, end = record(path, schedule, points)
    replayed_out, replayed_digests, replayed_end = replay(path, log, points)
    assert replayed_out == out and replayed_digests == digests and replayed_end == end
    assert replay(path, log, points) == (replayed_out, replayed_digests, replayed_end)  # replay twice: the same
    if name == "echo":
        events = list(LogReader(io.BytesIO(log)).events())
        assert [e.data for e in events if isinstance(e, UartInput)] == [b"hello\n", b"again\n", b"q"]
        assert isinstance(events[-1], End) and events[-1].kind == RunKind.EXITED


@pytest.mark.slow
@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=60_000), st.binary(min_size=1, max_size=6)), max_size=4))
def test_random_input_schedules_replay_identically(schedule: list[tuple[int, bytes]]) -> None:
    path = guest("rv32", "echo")
    schedule = [*schedule, (70_000, b"q")]
    log, out, _, end = record(path, schedule)
    replayed_out, _, replayed_end = replay(path, log)
    assert (replayed_out, replayed_end) == (out, end)


def test_replay_detects_a_missing_host_clock_read() -> None:
    history = HistoryInputs([HostClock(100, 5)], 100)
    with pytest.raises(ReplayDivergence, match="icount 99"):
        history.host_clock_ns(99)


def test_replay_detects_input_that_was_not_taken() -> None:
    history = HistoryInputs([UartInput(10, b"x")], 10)
    with pytest.raises(ReplayDivergence, match="not taken"):
        history.poll_input(12, 16)


@pytest.mark.parametrize("xlen_name", ["rv32", "rv64"])
def test_rtc_differs_when_recorded_under_other_clocks_but_replays_identically(xlen_name: str) -> None:
    """The RTC is the host clock: two recordings differ, each replay reproduces its recording."""
    path = guest(xlen_name, "rtc")
    outputs = []
    for clock_ns in (1_700_000_000_000_000_000, 1_800_000_000_123_456_789):
        log, out, _, end = record(path, inputs=ScriptedInputs(clock_ns=clock_ns))
        replayed_out, _, replayed_end = replay(path, log)
        assert (replayed_out, replayed_end) == (out, end)
        assert f"{clock_ns:016x}".encode() in out
        events = list(LogReader(io.BytesIO(log)).events())
        assert any(isinstance(e, HostClock) and e.ns == clock_ns for e in events)
        outputs.append(out)
    assert outputs[0] != outputs[1]


def test_sleep_on_records_and_replays_identically(tmp_path) -> None:  # noqa: ANN001
    """--sleep on (virtual time follows real time while idle): the recording replays identically."""
    import os

    from machine.inputs import HostInputs

    path = guest("rv32", "timer")
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"z")  # ends the first idle period at once (the timer guest never reads it)
    log, out, _, end = record(path, inputs=HostInputs(read_fd, sleep=True))
    os.close(write_fd)
    events = list(LogReader(io.BytesIO(log)).events())
    assert any(isinstance(e, UartInput) for e in events)
    replayed_out, _, replayed_end = replay(path, log)
    assert replayed_out == out == expected_output_timer()
    assert replayed_end == end


def expected_output_timer() -> bytes:
    from tests.conftest import expected_output

    return expected_output("rv32", "timer")


@pytest.mark.slow
@settings(max_examples=8, deadline=None)
@given(st.integers(min_value=0, max_value=(1 << 63) - 1))
def test_any_host_clock_value_replays_identically(clock_ns: int) -> None:
    path = guest("rv32", "rtc")
    log, out, _, end = record(path, inputs=ScriptedInputs(clock_ns=clock_ns))
    assert replay(path, log)[::2] == (out, end)


@pytest.mark.parametrize("name", ["traps", "timer", "rtc", "echo"])
def test_verification_points_asked_for_at_any_moment_replay(name: str) -> None:
    """The writer asks for a verification point at every chance (its clock says a second passed each time):
    points land after traps, inside device reads, while idle; each is taken where a replay stops, so the
    recording replays with every one of them checked."""
    import itertools

    path = guest("rv32", name)
    ticks = itertools.count(0, 2.0)
    image = load_image(path)
    writers: list[RecordingWriter] = []
    live = ScriptedInputs(schedule=[(20_000, b"hello\n"), (45_000, b"q")] if name == "echo" else [])
    history = HistoryInputs([], 0, live, on_record=lambda: writers[0].maybe_sync() if writers else None)
    machine = Machine(image, history, lambda byte: None)
    timeline = Timeline(machine, history, periodic_snapshots=False)
    stream = io.BytesIO()
    header = make_header(image, machine.arch.name, machine.config.ram_size, 3, "off", {})
    writer = RecordingWriter(stream, header, timeline, now=lambda: next(ticks))
    writers.append(writer)
    result = timeline.run_forward(progress=lambda icount: writer.maybe_sync())
    writer.finish()
    loaded = load_recording(io.BytesIO(stream.getvalue()))
    assert len(loaded.verify_points) >= 3
    inputs = history_inputs(loaded)
    replaying = Machine(image, inputs, lambda byte: None)
    replayed = open_recording(loaded, replaying, inputs, periodic_snapshots=False).replay_to_end()
    assert (replayed.kind, replayed.icount) == (result.kind, result.icount)
    assert replaying.digest() == machine.digest()
