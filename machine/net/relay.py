"""What crosses between the guest and the host through the user network: slirp's socket table, without sockets.

libslirp keeps one ``struct socket`` per TCP connection and UDP flow; here the sans-IO half of that table:

- TCP connections by (guest address, guest port, peer address, peer port), each a :class:`TcpConnection`;
  a host forward opens one (:meth:`Relay.open`), a guest's SYN to the gateway (10.0.2.2) asks for one: it waits
  in LISTEN among :meth:`Relay.take_connect_requests` until the host side connects (slirp's ``tcp_fconnect`` to
  the host's loopback) and accepts or refuses it;
- UDP datagrams the in-process services do not take (anything to 10.0.2.2 but DHCP and TFTP, anything from a
  forwarded guest port), kept for the host side in :meth:`Relay.take_datagrams`;
- a RST for a segment no connection takes, sent to the gateway's address (slirp's ``tcp_respond``).

A SYN for any other address is dropped (there is no Internet behind this network). The host side is
``machine.net.gateway.HostGateway``; without one, connection requests stay in LISTEN (the guest's SYN is never
answered) and datagrams are dropped once the queue is full.
"""

from __future__ import annotations

import logging
from collections import deque

from .frames import Datagram
from .tcp import TcpConnection, TcpState
from .tcp_segment import TCP_RESET_TTL, TCP_TTL, Endpoint, TcpSegment, reset_for

logger = logging.getLogger(__name__)

TCP_ISS_START = 1  # slirp's tcp_init: "tcp_iss = 1; /* wrong */"
TCP_ISS_INCREMENT = 64000  # TCP_ISSINCR / 2 per connection (tcp_connect); slirp's clock-driven part is left out
PENDING_LIMIT = 64  # guest connection requests waiting for the host
TIME_WAIT_LIMIT = 64  # finished connections kept to answer a repeated FIN (no clock to expire them)
DATAGRAM_LIMIT = 256  # datagrams waiting for the host side

FlowKey = tuple[bytes, int, bytes, int]  # guest address and port, peer address and port


class Relay:
    """The user network's TCP connections and the UDP datagrams for the host, by flow; ``host_ip``: the gateway."""

    def __init__(self, host_ip: bytes) -> None:
        self._host_ip = host_ip
        self._connections: dict[FlowKey, TcpConnection] = {}  # oldest first
        self._iss = TCP_ISS_START
        self._replies: list[TcpSegment] = []
        self._connect_requests: list[TcpConnection] = []
        self._datagrams: deque[Datagram] = deque()

    @property
    def connections(self) -> list[TcpConnection]:
        """Every connection still in the table, oldest first."""
        return list(self._connections.values())

    def open(self, peer: Endpoint, guest: Endpoint) -> TcpConnection:
        """A host peer connected to a forwarded port: a connection to ``guest`` from ``peer`` (SYN queued)."""
        key = (*guest, *peer)
        old = self._connections.pop(key, None)
        if old is not None:
            old.abort()
            self._replies.extend(old.take_segments())
        conn = TcpConnection.connect(peer, guest, iss=self._next_iss())
        self._connections[key] = conn
        return conn

    def segment_from_guest(self, segment: TcpSegment) -> None:
        """Route one segment the guest sent: to its connection, to a new connection request, or a RST."""
        key = (segment.src, segment.sport, segment.dst, segment.dport)
        conn = self._connections.get(key)
        if conn is not None and conn.is_finished and segment.is_syn_only:
            del self._connections[key]  # a new connection over a finished one's ports
            conn = None
        if conn is not None:
            conn.segment_received(segment)
            return
        if segment.dst != self._host_ip:
            logger.debug("dropped a TCP segment for %s:%d (no route)", segment.dst.hex(), segment.dport)
            return
        if segment.is_syn_only and len(self._connect_requests) < PENDING_LIMIT:
            conn = TcpConnection.listen(segment, iss=self._next_iss())
            self._connections[key] = conn
            self._connect_requests.append(conn)
            return
        reset = reset_for(segment)
        if reset is not None:
            self._replies.append(reset)

    def take_connect_requests(self) -> list[TcpConnection]:
        """The guest's new connections to the gateway (in LISTEN): the host side accepts or refuses each."""
        requests, self._connect_requests = self._connect_requests, []
        return [conn for conn in requests if conn.state == TcpState.LISTEN]

    def take_segments(self) -> list[tuple[TcpSegment, int]]:
        """Every segment for the guest since the last call with its IP TTL, connection by connection; closed
        connections leave the table, and the oldest finished ones past :data:`TIME_WAIT_LIMIT`."""
        out = [(segment, TCP_RESET_TTL) for segment in self._replies]
        self._replies = []
        finished: list[FlowKey] = []
        for key, conn in list(self._connections.items()):
            out.extend((segment, TCP_TTL) for segment in conn.take_segments())
            if conn.state == TcpState.CLOSED:
                del self._connections[key]
            elif conn.is_finished:
                finished.append(key)
        for key in finished[: max(0, len(finished) - TIME_WAIT_LIMIT)]:
            del self._connections[key]
        return out

    def datagram_from_guest(self, datagram: Datagram) -> None:
        """Keep a UDP datagram no service took, for the host side (the oldest goes when the queue is full)."""
        if len(self._datagrams) >= DATAGRAM_LIMIT:
            self._datagrams.popleft()
        self._datagrams.append(datagram)

    def take_datagrams(self) -> list[Datagram]:
        """The datagrams for the host side since the last call."""
        datagrams = list(self._datagrams)
        self._datagrams.clear()
        return datagrams

    def close(self) -> None:
        """Forget every connection and datagram (nothing is sent)."""
        self._connections.clear()
        self._connect_requests.clear()
        self._replies.clear()
        self._datagrams.clear()

    def _next_iss(self) -> int:
        iss = self._iss
        self._iss = (self._iss + TCP_ISS_INCREMENT) & 0xFFFFFFFF
        return iss
