"""gdbstub/session.py without sockets: bytes in, bytes out, against a fake target."""

from __future__ import annotations

from collections.abc import Callable

from gdbstub.rsp.codec import Decoder, Packet, encode
from gdbstub.rsp.stops import SIGINT, SIGTRAP, Breakpoint, Signal, Stop
from gdbstub.session import Session
from gdbstub.target import EFAULT, ResumeAction, TargetError


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


def replies(session: Session, data: bytes) -> list[bytes]:
    return [e.payload for e in Decoder().feed(session.feed(data)) if isinstance(e, Packet)]


def test_acks_then_no_ack_mode() -> None:
    session = Session(FakeTarget())
    out = session.feed(encode(b"QStartNoAckMode"))
    assert out == b"+" + encode(b"OK")
    assert session.feed(encode(b"?")) == encode(b"T05thread:1;")  # no '+' any more


def test_bad_checksum_gets_a_nack_and_nothing_else() -> None:
    assert Session(FakeTarget()).feed(b"$g#00") == b"-"


def test_nack_resends_the_last_reply_once() -> None:
    session = Session(FakeTarget())
    first = session.feed(encode(b"g"))
    assert session.feed(b"-") == first[1:]
    assert session.feed(b"-" * 1000) == b""  # no amplification


def test_nack_is_ignored_in_no_ack_mode() -> None:
    session = Session(FakeTarget())
    session.feed(encode(b"QStartNoAckMode"))
    session.feed(encode(b"?"))
    assert session.feed(b"-") == b""


def test_ack_goes_out_before_the_command_runs() -> None:
    """gdb retransmits an un-acked packet after its timeout: a long continue must be acked first."""
    sent: list[bytes] = []
    target = FakeTarget()
    original = target.resume

    def resume(action, interrupted, addr=None):  # noqa: ANN001, ANN202
        assert sent == [b"+"]  # acked before the target runs
        return original(action, interrupted, addr)

    target.resume = resume  # type: ignore[method-assign]
    session = Session(target, send=sent.append)
    assert session.feed(encode(b"c")) == encode(b"T05thread:1;swbreak:;")


def test_interrupt_while_stopped_is_not_answered_but_stops_the_next_resume() -> None:
    target = FakeTarget()
    target.polls_before_stop = 1_000_000
    session = Session(target)
    assert session.feed(b"\x03") == b""  # an answer here would be taken as the reply to gdb's next packet
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
    assert "qXfer:features:read+" in features and "swbreak+" in features
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
    session = Session(target, interrupted=lambda: False)
    assert replies(session, encode(b"vCont;c") + b"\x03") == [b"T02thread:1;"]


def test_interrupt_from_the_socket_while_running() -> None:
    target = FakeTarget()
    polls = iter([False, False, True])
    session = Session(target, interrupted=lambda: next(polls))
    assert replies(session, encode(b"c")) == [b"T02thread:1;"]


def test_step_continue_breakpoints_monitor_detach() -> None:
    target = FakeTarget()
    session = Session(target)
    assert replies(session, encode(b"vCont;s:1")) == [b"T05thread:1;"]
    assert replies(session, encode(b"Z0,80000000,2")) == [b"OK"] and target.added == [0x80000000]
    assert replies(session, encode(b"c")) == [b"T05thread:1;swbreak:;"]
    assert replies(session, encode(b"Z2,1000,4")) == [b""]  # the fake offers no watchpoints
    assert replies(session, encode(b"qRcmd," + b"icount".hex().encode())) == [b"ran icount\n".hex().encode()]
    assert target.resumes == [ResumeAction.STEP, ResumeAction.CONTINUE]
    assert replies(session, encode(b"D")) == [b"OK"] and session.closed


def test_reverse_packets_are_unsupported_without_the_capability() -> None:
    session = Session(FakeTarget())
    assert b"ReverseStep+" not in replies(session, encode(b"qSupported:swbreak+"))[0]
    assert replies(session, encode(b"bs")) == [b""]
    assert replies(session, encode(b"bc")) == [b""]


def test_console_note_before_a_stop_reply_is_acked_separately() -> None:
    from gdbstub.rsp.stops import HistoryBoundary, HistoryEnd

    target = FakeTarget()
    target.resume = lambda action, interrupted, addr=None: HistoryEnd(HistoryBoundary.END, "bye\n")  # type: ignore[method-assign]
    session = Session(target)
    out = session.feed(encode(b"c"))
    assert out == b"+" + encode(b"O" + b"bye\n".hex().encode()) + encode(b"T05thread:1;replaylog:end;")
    assert session.feed(b"+") == b""  # acks the O packet
    assert session.feed(b"-") == encode(b"T05thread:1;replaylog:end;")  # the reply itself is resent
