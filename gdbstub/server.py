"""The only socket code: listen, serve one gdb client at a time, poll for Ctrl-C while running.

The machine outlives connections: gdb can detach or quit and reconnect to the
same, unchanged machine. A second simultaneous client is accepted and closed
at once. Nothing a client sends kills the server: an unexpected exception
closes that client's connection and is logged with its traceback.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
from collections.abc import Callable
from typing import BinaryIO

from .session import Session
from .target import Target

log = logging.getLogger(__name__)

RECV_SIZE = 65536


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
            ready, _, _ = select.select([self._listener], [], [], 0.2)
            if on_idle is not None:
                on_idle()
            if not ready:
                continue
            conn, peer = self._listener.accept()
            log.info("gdb connected from %s:%d", *peer[:2])
            try:
                self._serve_client(conn)
            except Exception:  # noqa: BLE001 - a client must never take the server down
                log.exception("connection from %s:%d failed; closing it", *peer[:2])
            finally:
                conn.close()
                # Breakpoints and watchpoints are the client's, not the guest's: a client
                # that vanished without removing them must not leave them to the next one.
                self.target.release_debug_state()
                log.info("gdb disconnected")

    def _refuse_extra_clients(self) -> None:
        while True:
            ready, _, _ = select.select([self._listener], [], [], 0)
            if not ready:
                return
            extra, peer = self._listener.accept()
            log.warning("refused a second gdb connection from %s:%d (one client at a time)", *peer[:2])
            extra.close()

    def _serve_client(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = bytearray()  # bytes that arrived while the target ran (other than 0x03)
        interrupt_seen = False

        def interrupted() -> bool:
            nonlocal interrupt_seen
            if interrupt_seen or self._stopping:
                return True
            ready, _, _ = select.select([conn], [], [], 0)
            if ready:
                try:
                    data = conn.recv(RECV_SIZE)
                except OSError:  # reset by the peer
                    data = b""
                if not data:
                    interrupt_seen = True  # the client went away: stop running for it
                    return True
                self._log("<-", data)
                if b"\x03" in data:
                    interrupt_seen = True
                    data = data.replace(b"\x03", b"")
                pending.extend(data)
            self._refuse_extra_clients()
            return interrupt_seen

        def send_now(data: bytes) -> None:
            self._log("->", data)
            with contextlib.suppress(OSError):  # the client went away; the read loop notices
                conn.sendall(data)

        session = Session(self.target, interrupted, send_now)
        while not session.closed and not self._stopping:
            ready, _, _ = select.select([conn, self._listener], [], [], 0.2)
            if conn in ready or pending:
                data = bytes(pending)
                pending.clear()
                if conn in ready:
                    try:
                        received = conn.recv(RECV_SIZE)
                    except OSError:
                        return
                    if not received:
                        return
                    self._log("<-", received)
                    data += received
                interrupt_seen = False
                reply = session.feed(data)
                if reply:
                    self._log("->", reply)
                    try:
                        conn.sendall(reply)
                    except OSError:  # the client went away mid-reply
                        return
            if self._listener in ready:
                # Data already read: a client that has left frees its slot for the newcomer.
                if _is_closed(conn):
                    return
                self._refuse_extra_clients()

    def _log(self, direction: str, data: bytes) -> None:
        if self._packet_log is not None:
            self._packet_log.record(direction, data)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %r", direction, data[:200])


def _is_closed(conn: socket.socket) -> bool:
    """True when the peer has closed the connection (and sent nothing we have not read)."""
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
