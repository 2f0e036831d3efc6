"""The only socket code: listen, serve one gdb client at a time, poll for Ctrl-C while running.

The machine outlives connections: gdb can detach or quit and reconnect to the
same, unchanged machine. A second simultaneous client is accepted and closed
at once. Nothing a client sends kills the server: an unexpected exception
closes that client's connection and is logged with its traceback.

The protocol itself lives in the sans-IO :class:`~gdbstub.session.Session`;
this module reads the socket, carries out the session's actions (send, run
the target, close) and, while the target runs, polls the socket for Ctrl-C.
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

from .session import Action, Close, Run, Send, Session
from .target import Target, TargetError

if TYPE_CHECKING:
    from .rsp.stops import Stop

log = logging.getLogger(__name__)

RECV_SIZE = 65536
IDLE_POLL_S = 0.2  # how often an idle server looks at its stop flag
# gdb's next packet usually follows our reply within a fraction of a millisecond. Sleeping in poll() for it
# costs a wake-up each time (deep CPU idle states, cold caches): measured through gdb-multiarch on an idle
# 2-core machine, a stepi (17 packets) took 2.09 ms sleeping, 1.04 ms waiting on the CPU first (QEMU 7.2's
# stub: 1.47 ms; scripts/bench_stepi.py). So the server polls without sleeping for this long, then sleeps.
SPIN_SECONDS = 0.0003
IDLE_POLL_MS = int(IDLE_POLL_S * 1000)
INTERRUPT_BYTE = b"\x03"


class PacketLog:
    """``--log-packets``: every byte exchanged, one line per direction change."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def record(self, direction: str, data: bytes) -> None:
        if data:
            self._stream.write(f"{direction} ".encode() + data + b"\n")
            self._stream.flush()


class Server:
    """Serves ``target`` to gdb clients on a listening socket until ``stop()``."""

    def __init__(self, target: Target, host: str = "127.0.0.1", port: int = 1234,
                 packet_log: PacketLog | None = None) -> None:  # fmt: skip
        self.target = target
        self._listener = socket.create_server((host, port), reuse_port=False)
        self._listener.setblocking(True)
        self._packet_log = packet_log
        self._stopping = False

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return host, port

    def stop(self) -> None:
        """Make :meth:`serve_forever` return after the current client (callable from a signal handler)."""
        self._stopping = True

    def close(self) -> None:
        self._listener.close()

    def serve_forever(self, on_idle: Callable[[], None] | None = None) -> None:
        """Accept clients one at a time."""
        while not self._stopping:
            ready, _, _ = select.select([self._listener], [], [], IDLE_POLL_S)
            if on_idle is not None:
                on_idle()
            if not ready:
                continue
            conn, peer = self._listener.accept()
            log.info("gdb connected from %s:%d", *peer[:2])
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                _Client(self, conn).serve()
            except Exception:  # noqa: BLE001 - a client must never take the server down
                log.exception("connection from %s:%d failed; closing it", *peer[:2])
            finally:
                conn.close()
                # Breakpoints and watchpoints are the client's, not the guest's: a client
                # that vanished without removing them must not leave them to the next one.
                self.target.release_debug_state()
                log.info("gdb disconnected")

    def _refuse_extra_clients(self, current: socket.socket) -> None:
        """Close the clients waiting to connect while ``current`` is served.

        One that connects just after ``current`` has left is the next client: it waits for its turn.
        """
        while True:
            ready, _, _ = select.select([self._listener], [], [], 0)
            if not ready or _is_closed(current):
                return
            extra, peer = self._listener.accept()
            log.warning("refused a second gdb connection from %s:%d (one client at a time)", *peer[:2])
            extra.close()

    def _log(self, direction: str, data: bytes) -> None:
        if self._packet_log is not None:
            self._packet_log.record(direction, data)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %r", direction, data[:200])


class _Client:
    """One connection: the read loop, the session's actions, Ctrl-C polling while the target runs."""

    def __init__(self, server: Server, conn: socket.socket) -> None:
        self._server = server
        self._conn = conn
        self._session = Session(server.target)
        self._held = bytearray()  # bytes that arrived during a run (0x03 removed): fed after it
        self._interrupt = False  # a Ctrl-C for the run in progress
        self._gone = False  # the peer closed or reset the connection
        # One poll object for the whole connection: a select() per packet rebuilt its fd sets every time.
        self._poller = select.poll()
        self._poller.register(conn, select.POLLIN)
        self._poller.register(server._listener, select.POLLIN)
        self._listener_fd = server._listener.fileno()

    def serve(self) -> None:
        """Feed what gdb sends to the session and carry out its actions until either side ends."""
        while not self._gone and not self._server._stopping:
            data = self._next_input()
            if data and not self._perform(self._session.feed(data)):
                return

    def _next_input(self) -> bytes:
        """Bytes held during the last run first (in arrival order), else what the socket brings."""
        if self._held:
            data = bytes(self._held)
            self._held.clear()
            return data
        has_data, has_newcomer = self._poll(0)
        deadline = time.perf_counter() + SPIN_SECONDS  # a short wait on the CPU first (see SPIN_SECONDS)
        while not (has_data or has_newcomer) and time.perf_counter() < deadline:
            has_data, has_newcomer = self._poll(0)
        if not (has_data or has_newcomer):
            has_data, has_newcomer = self._poll(IDLE_POLL_MS)
        data = self._receive() if has_data else b""
        if has_newcomer and not self._gone:
            if _is_closed(self._conn):  # a client that has left frees its slot for the newcomer
                self._gone = True
            else:
                self._server._refuse_extra_clients(self._conn)
        return data

    def _poll(self, timeout_ms: int) -> tuple[bool, bool]:
        """(the connection has something for recv() to tell: data, end of file, an error; a client waits)."""
        has_data = has_newcomer = False
        for fd, _ in self._poller.poll(timeout_ms):
            if fd == self._listener_fd:
                has_newcomer = True
            else:
                has_data = True
        return has_data, has_newcomer

    def _receive(self) -> bytes:
        try:
            data = self._conn.recv(RECV_SIZE)
        except OSError:  # reset by the peer
            data = b""
        if not data:
            self._gone = True
        else:
            self._server._log("<-", data)
        return data

    def _perform(self, actions: list[Action]) -> bool:
        return carry_out(self._session, actions, self._send, self._run)

    def _send(self, data: bytes) -> bool:
        self._server._log("->", data)
        try:
            self._conn.sendall(data)
        except OSError:  # the client went away mid-reply
            self._gone = True
            return False
        return True

    def _run(self, run: Run) -> Stop | TargetError:
        self._interrupt = run.interrupt_pending
        return resume(self._server.target, run, self._interrupted)

    def _interrupted(self) -> bool:
        """Polled by the target at every checkpoint: has gdb sent Ctrl-C (0x03) or gone away?"""
        if self._interrupt or self._gone or self._server._stopping:
            return True
        has_data, has_newcomer = self._poll(0)
        if has_data:
            data = self._receive()  # EOF: the client went away, stop running for it
            if INTERRUPT_BYTE in data:
                self._interrupt = True
                data = data.replace(INTERRUPT_BYTE, b"")
            self._held += data
        if self._gone:  # the client left: a newcomer waiting to connect is the next client, not an extra one
            return True
        if has_newcomer:
            self._server._refuse_extra_clients(self._conn)
        return self._interrupt


def carry_out(session: Session, actions: list[Action], send: Callable[[bytes], bool],
              run: Callable[[Run], Stop | TargetError]) -> bool:  # fmt: skip
    """Carry out a session's ``actions`` in order, and those each run's stop brings.

    ``send`` transmits (False: the client is gone); ``run`` executes a :class:`Run` and returns its outcome.
    Returns False when the connection is to end (a :class:`Close`, or a failed send).
    """
    if len(actions) == 1 and type(actions[0]) is Send:  # the usual reply: no queue to build
        return send(actions[0].data)
    queue = deque(actions)
    while queue:
        action = queue.popleft()
        if isinstance(action, Send):
            if not send(action.data):
                return False
        elif isinstance(action, Run):
            queue.extend(session.stopped(run(action)))
        elif isinstance(action, Close):
            return False
    return True


def resume(target: Target, run: Run, interrupted: Callable[[], bool]) -> Stop | TargetError:
    """``target.resume`` for ``run``; a refusal (e.g. ``c ADDR`` inside a fixed history) is returned, for ``Exx``."""
    try:
        return target.resume(run.action, interrupted, run.addr)
    except TargetError as exc:
        return exc


def drive(session: Session, data: bytes, interrupted: Callable[[], bool] = lambda: False) -> bytes:
    """Feed ``data`` and carry out the actions in-process, without a socket; returns every byte sent.

    For scripts and benchmarks that time packets at the server (a run sees ``interrupted``, and a 0x03
    that came with its packet). The bytes are returned once all is done: no use for a live client.
    """
    out = bytearray()

    def send(chunk: bytes) -> bool:
        out.extend(chunk)
        return True

    def run(action: Run) -> Stop | TargetError:
        pending = iter([action.interrupt_pending])
        return resume(session.target, action, lambda: next(pending, False) or interrupted())

    carry_out(session, session.feed(data), send, run)
    return bytes(out)


def _is_closed(conn: socket.socket) -> bool:
    """True when the peer has closed the connection (and sent nothing we have not read)."""
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
