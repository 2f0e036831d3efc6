"""One gdb connection as a sans-IO state machine: bytes in, actions out.

:meth:`Session.feed` takes the bytes received from gdb and returns the
:data:`Action` values its caller must carry out, in order: :class:`Send`
bytes (acks, replies, console ``O`` packets), :class:`Run` the target, or
:class:`Close` the connection. After executing a :class:`Run` (calling
``Target.resume`` with an ``interrupted`` poll of its own), the caller hands
the outcome back to :meth:`Session.stopped`, which returns the stop reply
followed by whatever the packets that waited behind the run produce.

The session never resumes the target, never reads a socket, never waits:
:mod:`gdbstub.server` does all of that (the h11 design). Each packet is
handled by one small function from the ``HANDLERS`` table.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from machine.watch import WatchKind

from .rsp import commands as c
from .rsp.codec import BadPacket, Decoder, Event, Interrupt, Nack, Packet, encode
from .rsp.parse import ParseError, parse
from .rsp.stops import SIGINT, HistoryEnd, Signal, Watchpoint, stop_reply
from .target import EINVAL, ResumeAction, Target, TargetError

if TYPE_CHECKING:
    from .rsp.stops import Stop

log = logging.getLogger(__name__)

PACKET_SIZE = 0x4000
# gdb repeats the same few packets at every stop (g, m at the pc and around it, thread queries, Z/z at the
# next pc...): decoding and parsing are pure, so what a framed packet parsed as is kept, up to these bounds.
MEMO_PACKET_BYTES = 64
MEMO_PACKETS = 4096
THREAD_ID = 1


@dataclass(frozen=True, slots=True)
class Send:
    """Transmit ``data`` to gdb now: acks, framed replies and console ``O`` packets, already in wire order."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Run:
    """Resume the target: ``target.resume(action, interrupted, addr)``, then :meth:`Session.stopped`.

    ``interrupt_pending``: gdb's Ctrl-C (0x03) already arrived, often right behind ``c``; the caller's
    ``interrupted()`` must answer True from its first call. Otherwise ``interrupted()`` reports a 0x03
    that arrives during the run; other bytes received meanwhile are fed to :meth:`Session.feed` after it.
    """

    action: ResumeAction
    addr: int | None = None
    interrupt_pending: bool = False


@dataclass(frozen=True, slots=True)
class Close:
    """The client detached or killed the target: close the connection (after the sends before it)."""


Action = Send | Run | Close
Reply = bytes | Run | None  # None: send nothing (a kill)
Handler = Callable[["Session", c.Command], Reply]


class Session:
    """The RSP state of one client: ack mode, the run in progress, queued packets and interrupts.

    Protocol for the caller::

        actions = session.feed(received)        # or session.stopped(outcome) after a Run
        for each action, in order:
            Send  -> transmit its bytes
            Run   -> outcome = target.resume(...) (or the TargetError it raised);
                     carry out session.stopped(outcome)
            Close -> close the connection

    The ``+`` ack of a packet comes before its :class:`Run`: gdb retransmits an
    un-acked packet after its timeout, which would resume the target again.
    Bytes fed while a run is in progress are decoded at once but their packets
    are processed after :meth:`stopped`, in order. A 0x03 is never answered by
    itself: it interrupts the next resume (the manual's "Interrupts" section;
    gdb often sends it right behind ``c``); one that arrives while a run is in
    progress is the caller's to poll.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.ack_mode = True
        self.closed = False
        self._decoder = Decoder(PACKET_SIZE)
        self._backlog: deque[Event] = deque()  # decoded, not yet processed (they wait for the run to end)
        self._running: Run | None = None
        self._interrupt_pending = False
        self._last_sent = b""
        self._may_resend = False
        self._console_sent = b""  # O packets sent, not yet acked
        self._commands: dict[bytes, c.Command] = {}  # framed packets seen before -> their (immutable) command

    @property
    def is_running(self) -> bool:
        """True between a :class:`Run` action and the matching :meth:`stopped` call."""
        return self._running is not None

    def feed(self, data: bytes) -> list[Action]:
        """Process bytes received from gdb; return the actions to carry out, in order."""
        if self._running is None and not self._backlog and not self.closed:
            # gdb's usual exchange, one packet per read with nothing waiting: no queueing, no coalescing
            fresh = self._decoder.is_idle
            command = self._commands.get(data) if fresh else None
            if command is not None:
                return self._on_command(command)
            events = self._decoder.feed(data)
            if len(events) == 1 and type(events[0]) is Packet:
                return self._on_packet(events[0].payload, data if fresh and self._decoder.is_idle else b"")
        else:
            events = self._decoder.feed(data)
        for event in events:
            if isinstance(event, Interrupt):
                self._interrupt_pending = True
            else:
                self._backlog.append(event)
        return self._drain()

    def stopped(self, outcome: Stop | TargetError) -> list[Action]:
        """The :class:`Run` ended with ``outcome`` (a stop, or the refusal of the target, answered ``Exx``).

        Returns the stop reply (after any console note a :class:`HistoryEnd` or :class:`Watchpoint` carries),
        then the actions of the packets that arrived behind the run.
        """
        if self._running is None:
            raise RuntimeError("stopped() without a Run in progress")
        run, self._running = self._running, None
        if isinstance(outcome, TargetError):
            log.info("%s refused: %s", run.action.value, outcome)
            reply = self._reply(_error(outcome.errno))
        else:
            console = b""
            if isinstance(outcome, HistoryEnd | Watchpoint) and outcome.note:
                console = encode(b"O" + outcome.note.encode().hex().encode())
            reply = self._reply(stop_reply(outcome, THREAD_ID), console)
        return _coalesce([reply, *self._drain()])

    # -- events ---------------------------------------------------------------------
    def _drain(self) -> list[Action]:
        actions: list[Action] = []
        while self._backlog and self._running is None and not self.closed:
            actions += self._event(self._backlog.popleft())
        if self.closed:
            self._backlog.clear()
        return _coalesce(actions)

    def _event(self, event: Event) -> list[Action]:
        if isinstance(event, Packet):
            return self._on_packet(event.payload)
        if isinstance(event, BadPacket):
            log.warning("bad packet from gdb: %s", event.reason)
            return [Send(b"-")] if self.ack_mode else []
        return self._on_ack(isinstance(event, Nack))

    def _on_packet(self, payload: bytes, framed: bytes = b"") -> list[Action]:
        """Parse and answer a packet; ``framed``: the bytes that brought exactly it (they parse as it again)."""
        try:
            command = parse(payload)
        except ParseError as exc:
            log.info("malformed packet %r: %s", payload[:64], exc)
            return self._answer(_error(EINVAL))
        if 0 < len(framed) <= MEMO_PACKET_BYTES:
            if len(self._commands) >= MEMO_PACKETS:
                self._commands.clear()
            self._commands[framed] = command
        return self._on_command(command)

    def _on_command(self, command: c.Command) -> list[Action]:
        ack = b"+" if self.ack_mode else b""  # (QStartNoAckMode is acked: the mode it sets is for later packets)
        handler = HANDLERS.get(type(command))
        if handler is None:
            return self._answer(b"", ack)
        try:
            reply = handler(self, command)
        except TargetError as exc:
            log.info("%s refused: %s", type(command).__name__, exc)
            reply = _error(exc.errno)
        return self._answer(reply, ack)

    def _answer(self, reply: Reply, ack: bytes | None = None) -> list[Action]:
        """The ack (in ack mode) and the reply in one :class:`Send`, or the ack and the :class:`Run`."""
        if ack is None:
            ack = b"+" if self.ack_mode else b""
        actions: list[Action]
        if isinstance(reply, Run):
            self._running = Run(reply.action, reply.addr, self._interrupt_pending)
            self._interrupt_pending = False
            actions = [Send(ack), self._running] if ack else [self._running]
        elif reply is not None:
            send = self._reply(reply)
            actions = [Send(ack + send.data) if ack else send]
        else:
            actions = [Send(ack)] if ack else []
        if self.closed:
            actions.append(Close())
        return actions

    def _on_ack(self, nack: bool) -> list[Action]:
        if self._console_sent:  # in ack mode gdb acks the O packet first: that ack (or nack) is not the reply's
            resend, self._console_sent = self._console_sent, b""
            return [Send(resend)] if nack else []
        if nack and self._may_resend:  # once per reply; ignored in no-ack mode
            self._may_resend = False
            return [Send(self._last_sent)]
        if not nack:
            self._may_resend = False
        return []

    def _reply(self, payload: bytes, console: bytes = b"") -> Send:
        framed = encode(payload)
        self._last_sent = framed
        self._may_resend = self.ack_mode
        self._console_sent = console if self.ack_mode else b""
        return Send(console + framed)


def _error(errno: int) -> bytes:
    return b"E%02x" % (errno & 0xFF)


def _coalesce(actions: list[Action]) -> list[Action]:
    """Adjacent sends become one (one write, one TCP segment with TCP_NODELAY)."""
    out: list[Action] = []
    for action in actions:
        if isinstance(action, Send) and out and isinstance(out[-1], Send):
            out[-1] = Send(out[-1].data + action.data)
        else:
            out.append(action)
    return out


# -- handlers ---------------------------------------------------------------------------
def _supported(s: Session, cmd: c.Command) -> Reply:
    features = [f"PacketSize={PACKET_SIZE:x}", "QStartNoAckMode+", "vContSupported+"]
    if s.target.description() is not None:
        features.append("qXfer:features:read+")
    if s.target.memory_map() is not None:
        features.append("qXfer:memory-map:read+")
    if s.target.can_reverse():
        features += ["ReverseStep+", "ReverseContinue+"]
    return ";".join(features).encode()


def _no_ack(s: Session, cmd: c.Command) -> Reply:
    s.ack_mode = False
    return b"OK"


def _xfer(s: Session, cmd: c.Command) -> Reply:
    assert isinstance(cmd, c.XferRead)
    if cmd.object == "features" and cmd.annex == "target.xml":
        document = s.target.description()
    elif cmd.object == "memory-map" and cmd.annex == "":
        document = s.target.memory_map()
    else:
        return b""
    if document is None:
        return b""
    data = document.encode()
    chunk = data[cmd.offset : cmd.offset + cmd.length]
    return (b"l" if cmd.offset + cmd.length >= len(data) else b"m") + chunk


def _read_memory(s: Session, cmd: c.Command) -> Reply:
    assert isinstance(cmd, c.ReadMemory)
    if cmd.length > PACKET_SIZE // 2:
        raise TargetError(EINVAL, "read longer than the packet size")
    return s.target.read_memory(cmd.addr, cmd.length).hex().encode()


def _write_memory(s: Session, cmd: c.Command) -> Reply:
    assert isinstance(cmd, c.WriteMemory)
    s.target.write_memory(cmd.addr, cmd.data)
    return b"OK"


def _write_registers(s: Session, cmd: c.Command) -> Reply:
    assert isinstance(cmd, c.WriteRegisters)
    s.target.write_registers(cmd.data)
    return b"OK"


def _write_register(s: Session, cmd: c.Command) -> Reply:
    assert isinstance(cmd, c.WriteRegister)
    s.target.write_register(cmd.regnum, cmd.data)
    return b"OK"


def _vcont(s: Session, cmd: c.Command) -> Reply:
    assert isinstance(cmd, c.VCont)
    for action in cmd.actions:
        if action.thread in (None, -1, 0, THREAD_ID):
            if action.action == "s":
                return Run(ResumeAction.STEP)
            if action.action == "c":
                return Run(ResumeAction.CONTINUE)
            return stop_reply(Signal(SIGINT), THREAD_ID)  # 't': stop
    return _error(EINVAL)


def _reverse(action: ResumeAction) -> Handler:
    def handler(s: Session, cmd: c.Command) -> Reply:
        return Run(action) if s.target.can_reverse() else b""

    return handler


# Z2/Z3/Z4 -> the kind Target.watchpoints() takes: the only place that names the kind type.
WATCH_KINDS = {
    c.BreakpointType.WRITE_WATCH: WatchKind.WRITE,
    c.BreakpointType.READ_WATCH: WatchKind.READ,
    c.BreakpointType.ACCESS_WATCH: WatchKind.ACCESS,
}


def _breakpoint(s: Session, cmd: c.Command) -> Reply:
    assert isinstance(cmd, c.InsertBreakpoint | c.RemoveBreakpoint)
    insert = isinstance(cmd, c.InsertBreakpoint)
    if cmd.type in WATCH_KINDS:
        watchpoints = s.target.watchpoints()
        if watchpoints is None:
            return b""  # unsupported: gdb falls back to software watchpoints
        if cmd.kind <= 0:
            raise TargetError(EINVAL, "a watchpoint needs a length")
        (watchpoints.add if insert else watchpoints.remove)(WATCH_KINDS[cmd.type], cmd.addr, cmd.kind)
        return b"OK"
    breakpoints = s.target.breakpoints()
    if breakpoints is None:
        return b""
    hardware = cmd.type == c.BreakpointType.HARDWARE
    (breakpoints.add if insert else breakpoints.remove)(cmd.addr, hardware)
    return b"OK"


def _thread_info_first(s: Session, cmd: c.Command) -> Reply:
    return b"m%x" % THREAD_ID


def _monitor(s: Session, cmd: c.Command) -> Reply:
    assert isinstance(cmd, c.Monitor)
    return s.target.monitor(cmd.command).encode().hex().encode()


def _close(reply: Reply) -> Handler:
    def handler(s: Session, cmd: c.Command) -> Reply:
        s.closed = True
        return reply

    return handler


def _set_thread(s: Session, cmd: c.Command) -> Reply:
    assert isinstance(cmd, c.SetThread)
    return b"OK" if cmd.thread in (-1, 0, THREAD_ID) else _error(EINVAL)


def _thread_alive(s: Session, cmd: c.Command) -> Reply:
    assert isinstance(cmd, c.ThreadAlive)
    return b"OK" if cmd.thread == THREAD_ID else _error(EINVAL)


HANDLERS: dict[type, Handler] = {
    c.QSupported: _supported,
    c.MustReplyEmpty: lambda s, cmd: b"",
    c.StartNoAckMode: _no_ack,
    c.HaltReason: lambda s, cmd: stop_reply(s.target.last_stop(), THREAD_ID),
    c.ReadRegisters: lambda s, cmd: s.target.read_registers().hex().encode(),
    c.WriteRegisters: _write_registers,
    c.ReadRegister: lambda s, cmd: s.target.read_register(cmd.regnum).hex().encode(),  # type: ignore[attr-defined]
    c.WriteRegister: _write_register,
    c.ReadMemory: _read_memory,
    c.WriteMemory: _write_memory,
    c.Continue: lambda s, cmd: Run(ResumeAction.CONTINUE, cmd.addr),  # type: ignore[attr-defined]
    c.Step: lambda s, cmd: Run(ResumeAction.STEP, cmd.addr),  # type: ignore[attr-defined]
    c.ReverseStep: _reverse(ResumeAction.REVERSE_STEP),
    c.ReverseContinue: _reverse(ResumeAction.REVERSE_CONTINUE),
    c.VContQuery: lambda s, cmd: b"vCont;c;C;s;S;t",
    c.VCont: _vcont,
    c.InsertBreakpoint: _breakpoint,
    c.RemoveBreakpoint: _breakpoint,
    c.XferRead: _xfer,
    c.Attached: lambda s, cmd: b"1",
    c.CurrentThread: lambda s, cmd: b"QC%x" % THREAD_ID,
    c.ThreadInfoFirst: _thread_info_first,
    c.ThreadInfoNext: lambda s, cmd: b"l",
    c.SetThread: _set_thread,
    c.ThreadAlive: _thread_alive,
    c.Symbol: lambda s, cmd: b"OK",
    c.Monitor: _monitor,
    c.Kill: _close(None),
    c.VKill: _close(b"OK"),
    c.Detach: _close(b"OK"),
}
