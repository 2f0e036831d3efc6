"""The host sockets of the user network, one small class each, serviced by ``gateway.HostGateway``: a
``hostfwd=tcp:`` listener, a relayed TCP connection, a ``hostfwd=udp:`` socket, a guest UDP port's socket.

Every socket is non-blocking; each class says which selector events it waits for (``interest``) and acts on them
without blocking (``handle``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import selectors
import socket
import struct
from typing import TYPE_CHECKING, Protocol

from .frames import Datagram
from .tcp import TcpConnection, TcpState

if TYPE_CHECKING:
    from .gateway import HostGateway

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
READ_CHUNK = 65536
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class Handler(Protocol):
    """One host socket and what to do with it."""

    sock: socket.socket

    def interest(self) -> int:
        """The selector events it waits for now (0: none)."""
        ...

    def handle(self, events: int) -> None:
        """Act on the events the selector reported, without blocking."""
        ...

    def close(self) -> None:
        """Close the socket."""
        ...


class TcpListener:
    """A ``hostfwd=tcp:`` listening socket: each accepted connection opens one to the guest (``tcp_connect``)."""

    def __init__(self, gateway: HostGateway, sock: socket.socket, guest: tuple[bytes, int]) -> None:
        self.gateway = gateway
        self.sock = sock
        self.guest = guest

    def interest(self) -> int:
        return READ

    def handle(self, events: int) -> None:
        while True:
            try:
                sock, (addr, port) = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, a connection reset while queued: try again later
                logger.warning("hostfwd: accept failed: %s", exc)
                return
            if not self.gateway.has_room:
                close_with_reset(sock)
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = self.gateway.network.relay.open((self.gateway.translate_peer(addr), port), self.guest)
            logger.debug("hostfwd: %s:%d connected: %r", addr, port, conn)
            self.gateway.add_stream(sock, conn)

    def close(self) -> None:
        self.sock.close()


class Stream:
    """One relayed TCP connection: a host socket and the user network's end of the guest's connection."""

    def __init__(self, sock: socket.socket, conn: TcpConnection, connecting: bool) -> None:
        self.sock = sock
        self.conn = conn
        self.connecting = connecting  # a guest's connection waiting for the host's connect() to finish
        self.host_eof = False
        self.host_shut = False
        self.closed = False

    def interest(self) -> int:
        if self.closed:
            return 0
        if self.connecting:
            return WRITE
        mask = READ if self.conn.send_space and not self.host_eof else 0
        return mask | (WRITE if self.conn.received else 0)

    def handle(self, events: int) -> None:
        if self.connecting:
            error = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            self.connecting = False
            if error:
                logger.debug("guest connection to the host refused: %s", errno.errorcode.get(error))
                self.conn.refuse()
                self.close()
            else:
                self.conn.accept()
            return
        if events & READ:
            self.read()
        if events & WRITE:
            self.write()

    def read(self) -> None:
        """Host bytes, as many as the connection takes now; EOF becomes a FIN, an error a RST."""
        while not self.closed and (space := self.conn.send_space) and not self.host_eof:
            try:
                data = self.sock.recv(min(space, READ_CHUNK))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.conn.abort()
                self.close()
                return
            if not data:
                self.host_eof = True
                self.conn.shutdown()
                return
            self.conn.send(data)

    def write(self) -> None:
        """The guest's bytes to the host socket, as many as it takes; the guest's FIN, once they are all there,
        shuts the socket's writing side."""
        if self.closed or self.connecting:
            return
        while self.conn.received:
            try:
                sent = self.sock.send(self.conn.peek(READ_CHUNK))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # the host closed or reset its socket: so does the guest's connection
                self.conn.abort()
                self.close()
                return
            self.conn.consume(sent)
        if self.conn.at_eof and not self.host_shut:
            self.host_shut = True
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)

    @property
    def is_done(self) -> bool:
        """Closed, or the connection finished with nothing left for the host."""
        if self.closed:
            return True
        if self.conn.state == TcpState.CLOSED and (self.conn.was_reset or not self.conn.received):
            self.close()
            return True
        if self.conn.state == TcpState.TIME_WAIT and not self.conn.received:
            self.close()
            return True
        return False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.conn.was_reset or self.conn.is_finished:
            # A guest's RST ends the host's side with a plain close (the host reads end of file), as QEMU 7.2's
            # slirp does (measured: tests/integration/test_netecho.py); a connection torn down unfinished by us
            # resets it.
            self.sock.close()
        else:
            close_with_reset(self.sock)


class UdpForward:
    """A ``hostfwd=udp:`` socket: datagrams to the guest's port, its answers back to the peer that sent last."""

    def __init__(self, gateway: HostGateway, sock: socket.socket, guest: tuple[bytes, int]) -> None:
        self.gateway = gateway
        self.sock = sock
        self.guest = guest
        self.last_peer: tuple[str, int] | None = None

    def interest(self) -> int:
        return READ

    def handle(self, events: int) -> None:
        for payload, (addr, port) in _datagrams(self.sock):
            self.last_peer = (addr, port)
            source = self.gateway.translate_peer(addr)
            self.gateway.to_guest(Datagram(source, port, *self.guest, payload))

    def reply(self, payload: bytes) -> None:
        if self.last_peer is None:
            logger.debug("hostfwd udp: the guest sent before any host peer did: dropped")
            return
        _send_datagram(self.sock, payload, self.last_peer)

    def close(self) -> None:
        self.sock.close()


class UdpSession:
    """The host socket of one guest UDP port talking to 10.0.2.2 (``udp_attach``): bound to 127.0.0.1:0."""

    def __init__(self, gateway: HostGateway, guest: tuple[bytes, int]) -> None:
        self.gateway = gateway
        self.guest = guest
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind((LOOPBACK, 0))

    def interest(self) -> int:
        return READ

    def send(self, datagram: Datagram) -> None:
        _send_datagram(self.sock, datagram.payload, (LOOPBACK, datagram.dport))

    def handle(self, events: int) -> None:
        for payload, (addr, port) in _datagrams(self.sock):
            self.gateway.to_guest(Datagram(self.gateway.translate_peer(addr), port, *self.guest, payload))

    def close(self) -> None:
        self.sock.close()


def _datagrams(sock: socket.socket) -> list[tuple[bytes, tuple[str, int]]]:
    """Every datagram waiting on a non-blocking socket (errors such as ICMP port-unreachable are skipped)."""
    received = []
    while True:
        try:
            payload, addr = sock.recvfrom(65535)
        except (BlockingIOError, InterruptedError):
            return received
        except ConnectionRefusedError:  # an earlier send's ICMP port-unreachable, reported once
            continue
        except OSError as exc:
            logger.debug("a UDP socket failed: %s", exc)
            return received
        received.append((payload, addr[:2]))


def _send_datagram(sock: socket.socket, payload: bytes, addr: tuple[str, int]) -> None:
    try:
        sock.sendto(payload, addr)
    except OSError as exc:  # a full buffer or an unreachable port: UDP may lose it
        logger.debug("a datagram to %s:%d was lost: %s", *addr, exc)


def close_with_reset(sock: socket.socket) -> None:
    """Close so that the host peer sees a reset (SO_LINGER 0), as slirp's ``tcp_drop`` makes it see one."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
