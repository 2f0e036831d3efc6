"""One gdb connection: bytes in, bytes out; each command handled by one small function from a table.

The session is sans-IO: :meth:`Session.feed` takes bytes from the client and
returns bytes to send. Execution commands call the target synchronously,
polling ``interrupted`` (the server watches the socket for 0x03).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from machine.watch import WatchKind

from .rsp import commands as c
from .rsp.codec import Ack, BadPacket, Decoder, Interrupt, Nack, Packet, encode
from .rsp.parse import ParseError, parse
from .rsp.stops import SIGINT, HistoryEnd, Signal, stop_reply
from .target import EINVAL, ResumeAction, Target, TargetError

log = logging.getLogger(__name__)

PACKET_SIZE = 0x4000
THREAD_ID = 1
Reply = bytes | None  # None: send nothing (a kill)
Handler = Callable[["Session", c.Command], Reply]


class Session:
    """The RSP state of one client: ack mode, queued interrupts, the target.

    ``send`` (optional) transmits the ``+`` for a packet as soon as it is
    framed, before the command runs: gdb retransmits an un-acked packet after
    its timeout, which would resume the target again. Without ``send`` the
    acks are returned by :meth:`feed` together with the replies.
    """

    def __init__(
        self,
        target: Target,
        interrupted: Callable[[], bool] = lambda: False,
        send: Callable[[bytes], None] | None = None,
    ) -> None:
        self.target = target
        self.interrupted = interrupted
        self.ack_mode = True
        self.closed = False
        self._send = send
        self._decoder = Decoder(PACKET_SIZE)
        self._last_sent = b""
        self._may_resend = False
        self._queued_interrupt = False
        self._console = b""  # O packets to send before the next reply
        self._console_sent = b""  # O packets sent, not yet acked

    def _interrupted(self) -> bool:
        if self._queued_interrupt:
            self._queued_interrupt = False
            return True
        return self.interrupted()

    def feed(self, data: bytes) -> bytes:
        """Process received bytes; return what to send back."""
        out = bytearray()
        events = self._decoder.feed(data)
        # A 0x03 is never answered by itself: it interrupts the next (or the current) resume,
        # as the manual's "Interrupts" section says; gdb often sends it right behind 'c'.
        if any(isinstance(e, Interrupt) for e in events):
            self._queued_interrupt = True
        for event in events:
            if self.closed:
                break
            out += self._event(event)
        return bytes(out)

    def _event(self, event: object) -> bytes:
        if isinstance(event, Packet):
            ack = b""
            if self.ack_mode:
                if self._send is not None:
                    self._send(b"+")
                else:
                    ack = b"+"
            reply = self._packet(event.payload)
            if reply is None:
                return ack
            framed = encode(reply)
            console, self._console = self._console, b""
            self._last_sent = framed
            self._may_resend = self.ack_mode
            # In ack mode gdb acks the O packet first: that ack (or nack) is not the reply's.
            self._console_sent = console if self.ack_mode else b""
            return ack + console + framed
        if isinstance(event, BadPacket):
            log.warning("bad packet from gdb: %s", event.reason)
            return b"-" if self.ack_mode else b""
        if isinstance(event, Ack | Nack) and self._console_sent:
            resend, self._console_sent = self._console_sent, b""
            return resend if isinstance(event, Nack) else b""
        if isinstance(event, Nack) and self._may_resend:  # once per reply; ignored in no-ack mode
            self._may_resend = False
            return self._last_sent
        if isinstance(event, Ack):
            self._may_resend = False
        return b""

    def _packet(self, payload: bytes) -> Reply:
        try:
            command = parse(payload)
        except ParseError as exc:
            log.info("malformed packet %r: %s", payload[:64], exc)
            return b"E%02x" % EINVAL
        handler = HANDLERS.get(type(command))
        if handler is None:
            return b""
        try:
            return handler(self, command)
        except TargetError as exc:
            log.info("%s refused: %s", type(command).__name__, exc)
            return b"E%02x" % (exc.errno & 0xFF)

    # -- shared by handlers --------------------------------------------------------
    def resume(self, action: ResumeAction, addr: int | None = None) -> bytes:
        stop = self.target.resume(action, self._interrupted, addr)
        if isinstance(stop, HistoryEnd) and stop.note:
            self._console += encode(b"O" + stop.note.encode().hex().encode())
        return stop_reply(stop, THREAD_ID)


def _supported(s: Session, cmd: c.Command) -> Reply:
    features = [f"PacketSize={PACKET_SIZE:x}", "QStartNoAckMode+", "vContSupported+"]
    if s.target.breakpoints() is not None:
        features += ["swbreak+", "hwbreak+"]
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
                return s.resume(ResumeAction.STEP)
            if action.action == "c":
                return s.resume(ResumeAction.CONTINUE)
            return stop_reply(Signal(SIGINT), THREAD_ID)  # 't': stop
    return b"E%02x" % EINVAL


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
    return b"OK" if cmd.thread in (-1, 0, THREAD_ID) else b"E%02x" % EINVAL


def _thread_alive(s: Session, cmd: c.Command) -> Reply:
    assert isinstance(cmd, c.ThreadAlive)
    return b"OK" if cmd.thread == THREAD_ID else b"E%02x" % EINVAL


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
    c.Continue: lambda s, cmd: s.resume(ResumeAction.CONTINUE, cmd.addr),  # type: ignore[attr-defined]
    c.Step: lambda s, cmd: s.resume(ResumeAction.STEP, cmd.addr),  # type: ignore[attr-defined]
    c.ReverseStep: lambda s, cmd: s.resume(ResumeAction.REVERSE_STEP) if s.target.can_reverse() else b"",
    c.ReverseContinue: lambda s, cmd: s.resume(ResumeAction.REVERSE_CONTINUE) if s.target.can_reverse() else b"",
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
