"""The user network's sockets on the host: QEMU's ``hostfwd=`` and the guest's way to the host's loopback.

libslirp relays between the guest and host sockets (``socket.c``, ``tcp_subr.c``, ``udp.c``, polled from
QEMU's main loop). :class:`HostGateway` is that host half around the sans-IO :class:`UserNetwork`:

- ``hostfwd=tcp:ADDR:HPORT-GADDR:GPORT``: a listening socket; each host connection becomes a TCP connection to
  the guest from 10.0.2.2 (the peer's own address when it is not on the loopback: slirp's
  ``sotranslate_accept``), the byte streams relayed both ways, each side closed when the other closes, a reset
  passed on as a reset;
- ``hostfwd=udp:...``: a bound UDP socket; each datagram goes to the guest from the sender's translated address
  and port (in IPv4 fragments past the 1500-byte MTU, as slirp's ``ip_output``), and what the guest sends from
  GPORT goes back to the host peer that sent last;
- the guest's TCP connections and UDP datagrams to 10.0.2.2:PORT go to 127.0.0.1:PORT on the host (slirp's
  ``sotranslate_out``), one host UDP socket per guest port (the least recently used closed past a limit).

The sockets are non-blocking and serviced whenever the machine calls :meth:`HostGateway.send` or
:meth:`HostGateway.receive`; :meth:`HostGateway.wait` blocks until one is ready, for a guest idling in ``wfi``
(``machine.inputs.HostInputs.idle``). Host bytes are read only as far as the guest's connection takes them,
and the guest's bytes only as far as the host socket takes them, so neither side can flood the other.

Where this differs from QEMU, on purpose: a forward without a host address listens on 127.0.0.1, not on every
interface; no Internet: only the gateway address reaches the host.
"""

from __future__ import annotations

import errno
import logging
import selectors
import socket
from collections import OrderedDict
from collections.abc import Sequence
from ipaddress import IPv4Address

from .frames import Datagram
from .host_sockets import Handler, Stream, TcpListener, UdpForward, UdpSession
from .hostfwd import LOOPBACK, HostForward, HostForwardError
from .tcp import TcpConnection
from .user import UserNetwork

logger = logging.getLogger(__name__)

UDP_PAYLOAD_MAX = 65535 - 20 - 8  # the largest datagram IPv4 carries (fragmented for the guest)
UDP_SESSION_LIMIT = 64
TCP_STREAM_LIMIT = 256

__all__ = ["HostForward", "HostForwardError", "HostGateway"]


class HostGateway:
    """A :class:`UserNetwork` with its host sockets: a ``NetBackend`` that also waits (see the module).

    ``forwards`` are bound at once (an ``OSError`` if a port is taken); :attr:`bound` says where.
    """

    def __init__(self, network: UserNetwork, forwards: Sequence[HostForward] = ()) -> None:
        self._net = network
        self._host_ip = network.addresses.host_ip
        self._selector = selectors.DefaultSelector()
        self._registered: dict[socket.socket, int] = {}
        self._handlers: list[Handler] = []
        self._streams: list[Stream] = []
        self._udp_forwards: dict[tuple[bytes, int], UdpForward] = {}
        self._udp_sessions: OrderedDict[tuple[bytes, int], UdpSession] = OrderedDict()
        self._closed = False
        self.bound: list[tuple[HostForward, tuple[str, int]]] = []
        try:
            for forward in forwards:
                self._open_forward(forward)
        except BaseException:
            self.close()
            raise

    @property
    def network(self) -> UserNetwork:
        """The sans-IO network inside."""
        return self._net

    @property
    def listening(self) -> bool:
        """Whether a host socket is open, so that frames may still come without the guest sending any."""
        return not self._closed and bool(self._handlers)

    def send(self, frame: bytes) -> None:
        """A frame from the guest: to the network, then what it produced to the host sockets."""
        if self._closed:
            return
        self._net.send(frame)
        self._service()

    def receive(self) -> bytes | None:
        """Service the host sockets without blocking, then the next frame for the guest."""
        self._service()
        return self._net.receive()

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until a host socket is ready; True if one is (the next
        :meth:`receive` takes it). False at once with no socket to wait for."""
        if not self._update_interest():
            return False
        return bool(self._selector.select(max(timeout, 0.0)))

    def close(self) -> None:
        """Close every host socket (connections with a reset) and the network."""
        if self._closed:
            return
        self._closed = True
        for handler in self._handlers:
            handler.close()
        self._handlers.clear()
        self._streams.clear()
        self._registered.clear()
        self._selector.close()
        self._net.close()

    # Forwards

    def _open_forward(self, forward: HostForward) -> None:
        kind = socket.SOCK_STREAM if forward.protocol == "tcp" else socket.SOCK_DGRAM
        sock = socket.socket(socket.AF_INET, kind)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # slirp_socket_set_fast_reuse
            sock.bind((forward.host_addr, forward.host_port))
            if kind == socket.SOCK_STREAM:
                sock.listen(socket.SOMAXCONN)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        guest = (IPv4Address(forward.guest_addr).packed, forward.guest_port)
        if kind == socket.SOCK_STREAM:
            self._handlers.append(TcpListener(self, sock, guest))
        else:
            udp = UdpForward(self, sock, guest)
            self._handlers.append(udp)
            self._udp_forwards[guest] = udp
        self.bound.append((forward, sock.getsockname()[:2]))

    def translate_peer(self, addr: str) -> bytes:
        """How a host peer appears to the guest: 10.0.2.2 for the loopback (and 0.0.0.0), else its own address."""
        ip = IPv4Address(addr)
        return self._host_ip if ip.is_loopback or ip.is_unspecified else ip.packed

    def add_stream(self, sock: socket.socket, conn: TcpConnection, connecting: bool = False) -> None:
        stream = Stream(sock, conn, connecting)
        self._streams.append(stream)
        self._handlers.append(stream)

    @property
    def has_room(self) -> bool:
        """Whether another TCP connection may be relayed."""
        return len(self._streams) < TCP_STREAM_LIMIT

    # Servicing

    def _service(self) -> None:
        if self._closed:
            return
        self._from_guest()
        if self._update_interest():
            for key, events in self._selector.select(0):
                key.data.handle(events)
        self._reap()

    def _from_guest(self) -> None:
        """What the guest asked of the host: new connections, datagrams, bytes for the host sockets."""
        relay = self._net.relay
        for conn in relay.take_connect_requests():
            self._connect(conn)
        for datagram in relay.take_datagrams():
            self._datagram_to_host(datagram)
        for stream in self._streams:
            stream.write()

    def _connect(self, conn: TcpConnection) -> None:
        """The guest connects to 10.0.2.2:PORT: a non-blocking connect to 127.0.0.1:PORT (``tcp_fconnect``)."""
        if not self.has_room:
            conn.refuse()
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        result = sock.connect_ex((LOOPBACK, conn.local[1]))
        if result not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            logger.debug("guest connection to %s:%d refused: %s", LOOPBACK, conn.local[1], errno.errorcode.get(result))
            sock.close()
            conn.refuse()
            return
        self.add_stream(sock, conn, connecting=result != 0)
        if result == 0:
            conn.accept()

    def _datagram_to_host(self, datagram: Datagram) -> None:
        forward = self._udp_forwards.get((datagram.src, datagram.sport))
        if forward is not None:
            forward.reply(datagram.payload)
            return
        if datagram.dst != self._host_ip:
            logger.debug("dropped a UDP datagram for %s:%d (no route)", datagram.dst.hex(), datagram.dport)
            return
        key = (datagram.src, datagram.sport)
        session = self._udp_sessions.get(key)
        if session is None:
            session = UdpSession(self, key)
            self._udp_sessions[key] = session
            self._handlers.append(session)
            if len(self._udp_sessions) > UDP_SESSION_LIMIT:
                _, oldest = self._udp_sessions.popitem(last=False)
                self._drop_handler(oldest)
        else:
            self._udp_sessions.move_to_end(key)
        session.send(datagram)

    def to_guest(self, datagram: Datagram) -> None:
        if len(datagram.payload) > UDP_PAYLOAD_MAX:
            logger.info("dropped a %d-byte UDP datagram for the guest: too long for IPv4", len(datagram.payload))
            return
        self._net.send_datagram(datagram)

    def _update_interest(self) -> bool:
        """Register each socket for what its handler waits for; False when none waits for anything."""
        for handler in self._handlers:
            sock = handler.sock
            mask = handler.interest()
            current = self._registered.get(sock, 0)
            if mask == current:
                continue
            if not mask:
                self._selector.unregister(sock)
                del self._registered[sock]
            elif current:
                self._selector.modify(sock, mask, handler)
            else:
                self._selector.register(sock, mask, handler)
            if mask:
                self._registered[sock] = mask
        return bool(self._registered)

    def _reap(self) -> None:
        for stream in [s for s in self._streams if s.is_done]:
            self._streams.remove(stream)
            self._drop_handler(stream)

    def _drop_handler(self, handler: Handler) -> None:
        if self._registered.pop(handler.sock, 0):
            self._selector.unregister(handler.sock)
        self._handlers.remove(handler)
        handler.close()
