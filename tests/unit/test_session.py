"""gdbstub/session.py without sockets: bytes in, actions out, against a fake target."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import pytest

from gdbstub.rsp.codec import Decoder, Packet, encode
from gdbstub.rsp.stops import SIGINT, SIGTRAP, Breakpoint, HistoryBoundary, HistoryEnd, Signal, Stop
from gdbstub.session import Action, Close, Run, Send, Session
from gdbstub.target import EACCES, EFAULT, ResumeAction, TargetError


class FakeTarget:
    """Records what the session asks; resume runs until interrupted or a fixed number of polls."""

    def __init__(self) -> None:
        self.memory = {0x1000: 0xAB}
        self.resumes: list[ResumeAction] = []
        self.polls_before_stop = 3
        self.added: list[int] = []
        self._last: Stop = Signal(SIGTRAP)

    def read_registers(self) -> bytes:
        return bytes(range(8))

    def write_registers(self, data: bytes) -> None: ...

    def read_register(self, regnum: int) -> bytes:
        if regnum > 40:
            raise TargetError(0x16, "no such register")
        return b"\x01\x00\x00\x00"

    def write_register(self, regnum: int, data: bytes) -> None: ...

    def read_memory(self, addr: int, length: int) -> bytes:
        if addr not in self.memory:
            raise TargetError(EFAULT, "unmapped")
        return bytes([self.memory[addr]]) * length

    def write_memory(self, addr: int, data: bytes) -> None:
        self.memory[addr] = data[0]

    def resume(self, action: ResumeAction, interrupted: Callable[[], bool], addr: int | None = None) -> Stop:
        self.resumes.append(action)
        self.resume_addr = addr
        for _ in range(self.polls_before_stop):
            if interrupted():
                self._last = Signal(SIGINT)
                return self._last
        self._last = Breakpoint() if action == ResumeAction.CONTINUE else Signal(SIGTRAP)
        return self._last

    def last_stop(self) -> Stop:
        return self._last

    def breakpoints(self):  # noqa: ANN201
        return self

    def watchpoints(self) -> None:
        return None

    def add(self, addr: int, hardware: bool = False) -> None:
        self.added.append(addr)

    def remove(self, addr: int, hardware: bool = False) -> None:
        self.added.remove(addr)

    def can_reverse(self) -> bool:
        return False

    def description(self) -> str | None:
        return "<target>" + "x" * 100 + "</target>"

    def memory_map(self) -> str | None:
        return None

    def monitor(self, command: str) -> str:
        return f"ran {command}\n"

    def release_debug_state(self) -> None:
        self.added.clear()


def perform(session: Session, actions: list[Action], interrupted: Callable[[], bool] = lambda: False,
            sent: list[bytes] | None = None) -> bytes:  # fmt: skip
    """Carry out ``actions`` as the server does, without a socket; returns every byte sent.

    A :class:`Run` marked ``interrupt_pending`` sees ``interrupted()`` True at its first poll.
    """
    out = sent if sent is not None else []
    queue = deque(actions)
    while queue:
        action = queue.popleft()
        if isinstance(action, Send):
            out.append(action.data)
        elif isinstance(action, Run):
            try:
                outcome: Stop | TargetError = session.target.resume(
                    action.action, poll_for(action, interrupted), action.addr
                )
            except TargetError as exc:
                outcome = exc
            queue.extend(session.stopped(outcome))
    return b"".join(out)


def poll_for(run: Run, interrupted: Callable[[], bool]) -> Callable[[], bool]:
    """The run's ``interrupted()``: True at once when a 0x03 came with its packet, then ``interrupted``."""
    first = iter([run.interrupt_pending])
    return lambda: next(first, False) or interrupted()


def feed(session: Session, data: bytes, interrupted: Callable[[], bool] = lambda: False) -> bytes:
    """Feed ``data`` and carry out the actions: bytes in, bytes out."""
    return perform(session, session.feed(data), interrupted)


def replies(session: Session, data: bytes, interrupted: Callable[[], bool] = lambda: False) -> list[bytes]:
    return [e.payload for e in Decoder().feed(feed(session, data, interrupted)) if isinstance(e, Packet)]


def test_acks_then_no_ack_mode() -> None:
    session = Session(FakeTarget())
    out = feed(session, encode(b"QStartNoAckMode"))
    assert out == b"+" + encode(b"OK")
    assert feed(session, encode(b"?")) == encode(b"T05thread:1;")  # no '+' any more


def test_bad_checksum_gets_a_nack_and_nothing_else() -> None:
    assert Session(FakeTarget()).feed(b"$g#00") == [Send(b"-")]


def test_nack_resends_the_last_reply_once() -> None:
    session = Session(FakeTarget())
    first = feed(session, encode(b"g"))
    assert feed(session, b"-") == first[1:]
    assert feed(session, b"-" * 1000) == b""  # no amplification


def test_nack_resends_a_stop_reply_once() -> None:
    session = Session(FakeTarget())
    assert session.feed(encode(b"c")) == [Send(b"+"), Run(ResumeAction.CONTINUE)]
    assert session.stopped(Breakpoint()) == [Send(encode(b"T05thread:1;"))]
    assert session.feed(b"-") == [Send(encode(b"T05thread:1;"))]
    assert session.feed(b"-") == []
    assert session.feed(b"+") == []


def test_nack_is_ignored_in_no_ack_mode() -> None:
    session = Session(FakeTarget())
    feed(session, encode(b"QStartNoAckMode"))
    feed(session, encode(b"?"))
    assert feed(session, b"-") == b""


def test_ack_goes_out_before_the_command_runs() -> None:
    """gdb retransmits an un-acked packet after its timeout: a long continue must be acked first."""
    sent: list[bytes] = []
    target = FakeTarget()
    original = target.resume

    def resume(action, interrupted, addr=None):  # noqa: ANN001, ANN202
        assert sent == [b"+"]  # acked before the target runs
        return original(action, interrupted, addr)

    target.resume = resume  # type: ignore[method-assign]
    session = Session(target)
    perform(session, session.feed(encode(b"c")), sent=sent)
    assert sent[1:] == [encode(b"T05thread:1;")]


def test_ack_is_an_action_before_the_run() -> None:
    target = FakeTarget()
    session = Session(target)
    assert session.feed(encode(b"c80000010")) == [Send(b"+"), Run(ResumeAction.CONTINUE, 0x80000010)]
    assert session.is_running and target.resumes == []  # the session never runs the target itself


def test_interrupt_while_stopped_is_not_answered_but_stops_the_next_resume() -> None:
    target = FakeTarget()
    target.polls_before_stop = 1_000_000
    session = Session(target)
    assert feed(session, b"\x03") == b""  # an answer here would be taken as the reply to gdb's next packet
    assert replies(session, encode(b"qC")) == [b"QC1"]
    assert replies(session, encode(b"c")) == [b"T02thread:1;"]


def test_resume_at_an_address() -> None:
    target = FakeTarget()
    session = Session(target)
    replies(session, encode(b"s80000010"))
    assert target.resume_addr == 0x80000010


def test_supported_advertises_only_what_works() -> None:
    (reply,) = replies(Session(FakeTarget()), encode(b"qSupported:swbreak+"))
    features = reply.decode().split(";")
    assert "qXfer:features:read+" in features
    assert "swbreak+" not in features and "hwbreak+" not in features  # gdb reads pc once more per stop with them
    assert "qXfer:memory-map:read+" not in features  # the fake has no memory map
    assert not any(f.startswith("Reverse") for f in features)


def test_memory_errors_and_unknown_packets() -> None:
    session = Session(FakeTarget())
    assert replies(session, encode(b"m1000,2")) == [b"abab"]
    assert replies(session, encode(b"m2000,2")) == [b"E0e"]
    assert replies(session, encode(b"mzz,2")) == [b"E16"]
    assert replies(session, encode(b"qTStatus")) == [b""]
    assert replies(session, encode(b"p99")) == [b"E16"]


def test_xfer_reads_in_chunks() -> None:
    session = Session(FakeTarget())
    (first,) = replies(session, encode(b"qXfer:features:read:target.xml:0,10"))
    (last,) = replies(session, encode(b"qXfer:features:read:target.xml:10,1000"))
    assert first[:1] == b"m" and last[:1] == b"l"
    assert first[1:] + last[1:] == ("<target>" + "x" * 100 + "</target>").encode()


def test_interrupt_right_behind_continue_stops_that_continue() -> None:
    target = FakeTarget()
    target.polls_before_stop = 1_000_000  # would run "forever" without the interrupt
    session = Session(target)
    assert replies(session, encode(b"vCont;c") + b"\x03", interrupted=lambda: False) == [b"T02thread:1;"]


def test_interrupt_right_behind_continue_marks_that_run() -> None:
    session = Session(FakeTarget())
    assert session.feed(encode(b"c") + b"\x03") == [Send(b"+"), Run(ResumeAction.CONTINUE, interrupt_pending=True)]
    assert session.stopped(Signal(SIGINT)) == [Send(encode(b"T02thread:1;"))]
    assert session.feed(encode(b"c")) == [Send(b"+"), Run(ResumeAction.CONTINUE)]  # used up by that run


def test_interrupt_from_the_socket_while_running() -> None:
    target = FakeTarget()
    polls = iter([False, False, True])
    session = Session(target)
    assert replies(session, encode(b"c"), interrupted=lambda: next(polls)) == [b"T02thread:1;"]


def test_packets_received_during_a_run_are_processed_after_it_in_order() -> None:
    session = Session(FakeTarget())
    assert session.feed(encode(b"c") + encode(b"qC")) == [Send(b"+"), Run(ResumeAction.CONTINUE)]
    assert session.feed(encode(b"m1000,1") + b"+") == []  # the run is still in progress
    stop, qc, memory = encode(b"T05thread:1;"), encode(b"QC1"), encode(b"ab")
    assert session.stopped(Breakpoint()) == [Send(stop + b"+" + qc + b"+" + memory)]
    assert not session.is_running
    assert session.feed(b"-") == []  # the '+' queued behind the run acked the stop reply


def test_a_packet_queued_behind_a_run_may_start_the_next_run() -> None:
    session = Session(FakeTarget())
    assert session.feed(encode(b"s") + encode(b"c")) == [Send(b"+"), Run(ResumeAction.STEP)]
    assert session.stopped(Signal(SIGTRAP)) == [Send(encode(b"T05thread:1;") + b"+"), Run(ResumeAction.CONTINUE)]
    assert session.stopped(Breakpoint()) == [Send(encode(b"T05thread:1;"))]


def test_a_refused_run_is_answered_with_an_error() -> None:
    session = Session(FakeTarget())
    session.feed(encode(b"c80000000"))
    assert session.stopped(TargetError(EACCES, "inside history")) == [Send(encode(b"E0d"))]
    with pytest.raises(RuntimeError):
        session.stopped(Breakpoint())  # no run in progress


def test_step_continue_breakpoints_monitor_detach() -> None:
    target = FakeTarget()
    session = Session(target)
    assert replies(session, encode(b"vCont;s:1")) == [b"T05thread:1;"]
    assert replies(session, encode(b"Z0,80000000,2")) == [b"OK"] and target.added == [0x80000000]
    assert replies(session, encode(b"c")) == [b"T05thread:1;"]
    assert replies(session, encode(b"Z2,1000,4")) == [b""]  # the fake offers no watchpoints
    assert replies(session, encode(b"qRcmd," + b"icount".hex().encode())) == [b"ran icount\n".hex().encode()]
    assert target.resumes == [ResumeAction.STEP, ResumeAction.CONTINUE]
    assert replies(session, encode(b"D")) == [b"OK"] and session.closed


def test_detach_and_kill_close_the_connection() -> None:
    session = Session(FakeTarget())
    assert session.feed(encode(b"D") + encode(b"?")) == [Send(b"+" + encode(b"OK")), Close()]
    assert session.feed(encode(b"?")) == []  # nothing after the close
    killed = Session(FakeTarget())
    assert killed.feed(encode(b"k")) == [Send(b"+"), Close()]  # a kill gets no reply


def test_reverse_packets_are_unsupported_without_the_capability() -> None:
    session = Session(FakeTarget())
    assert b"ReverseStep+" not in replies(session, encode(b"qSupported:swbreak+"))[0]
    assert replies(session, encode(b"bs")) == [b""]
    assert replies(session, encode(b"bc")) == [b""]


def test_console_note_before_a_stop_reply_is_acked_separately() -> None:
    target = FakeTarget()
    target.resume = lambda action, interrupted, addr=None: HistoryEnd(HistoryBoundary.END, "bye\n")  # type: ignore[method-assign]
    session = Session(target)
    out = feed(session, encode(b"c"))
    assert out == b"+" + encode(b"O" + b"bye\n".hex().encode()) + encode(b"T05thread:1;replaylog:end;")
    assert feed(session, b"+") == b""  # acks the O packet
    assert feed(session, b"-") == encode(b"T05thread:1;replaylog:end;")  # the reply itself is resent


def test_console_note_in_no_ack_mode_needs_no_ack() -> None:
    session = Session(FakeTarget())
    feed(session, encode(b"QStartNoAckMode"))
    session.feed(encode(b"c"))
    note = encode(b"O" + b"bye\n".hex().encode())
    assert session.stopped(HistoryEnd(HistoryBoundary.END, "bye\n")) == [
        Send(note + encode(b"T05thread:1;replaylog:end;"))
    ]
    assert session.feed(b"-") == []


def test_the_servers_in_process_driver_carries_out_the_same_actions() -> None:
    from gdbstub.server import drive

    target = FakeTarget()
    target.polls_before_stop = 1_000_000
    session = Session(target)
    assert drive(session, encode(b"c") + b"\x03") == b"+" + encode(b"T02thread:1;")
    assert drive(session, encode(b"s") + encode(b"qC")) == b"+" + encode(b"T05thread:1;") + b"+" + encode(b"QC1")
    assert drive(session, encode(b"D")) == b"+" + encode(b"OK") and session.closed


# -- one packet per feed (the session's fast path) answers exactly as packets queued together -------------
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SESSION_PACKETS = [
    b"QStartNoAckMode", b"?", b"g", b"p20", b"p99", b"m1000,4", b"m2000,4", b"m1000,zz", b"M1000,1:cd",
    b"Z0,80000010,2", b"z0,80000010,2", b"Z1,1004,4", b"qfThreadInfo", b"qsThreadInfo", b"vCont;c", b"s", b"c",
    b"qXfer:features:read:target.xml:0,20", b"qRcmd,6869", b"qUnknown", b"Hg0", b"D", b"k", b"",
]  # fmt: skip


class TolerantTarget(FakeTarget):
    def remove(self, addr: int, hardware: bool = False) -> None:
        if addr in self.added:
            self.added.remove(addr)


@given(st.lists(st.sampled_from(SESSION_PACKETS), max_size=16), st.lists(st.sampled_from([b"+", b"-", b""])))
def test_one_packet_per_feed_answers_as_all_packets_at_once(packets: list[bytes], acks: list[bytes]) -> None:
    stream = [encode(p) + (acks[i] if i < len(acks) else b"") for i, p in enumerate(packets)]
    one_by_one = Session(TolerantTarget())
    each = b"".join(feed(one_by_one, chunk) for chunk in stream)
    all_at_once = Session(TolerantTarget())
    assert each == feed(all_at_once, b"".join(stream))
    assert one_by_one.closed == all_at_once.closed and one_by_one.ack_mode == all_at_once.ack_mode


@given(st.lists(st.sampled_from(SESSION_PACKETS), max_size=24), st.lists(st.integers(min_value=1, max_value=40)))
def test_packets_seen_before_answer_as_the_first_time_in_any_chunking(packets: list[bytes], cuts: list[int]) -> None:
    """Repeated packets are answered from what they parsed as; split packets, never kept, are decoded afresh."""
    stream = b"".join(encode(p) for p in packets) * 2
    chunks, at = [], 0
    for size in cuts or [len(stream) or 1]:
        chunks.append(stream[at : at + size])
        at += size
    chunks += [stream[at:]] * (at < len(stream))
    chunked = Session(TolerantTarget())
    out = b"".join(feed(chunked, chunk) for chunk in chunks)
    assert out == feed(Session(TolerantTarget()), stream)
    whole = Session(TolerantTarget())
    assert b"".join(feed(whole, encode(p)) for p in packets * 2) == out
