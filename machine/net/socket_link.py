"""QEMU's ``-netdev socket,udp=HOST:PORT,localaddr=HOST:PORT``: an Ethernet link carried over UDP.

Every Ethernet frame the guest sends is one datagram to ``udp=``, sent from the socket bound to ``localaddr=``;
every datagram that socket receives is one frame for the guest. No length prefix, no header: the datagram is the
frame, as QEMU's ``net/socket.c`` does in ``udp`` mode, so two chronicorn machines, or chronicorn and QEMU
(``-netdev socket,id=n0,udp=127.0.0.1:P2,localaddr=127.0.0.1:P1``), share a link.

Where this differs from QEMU, on purpose: only datagrams from the ``udp=`` address are taken (QEMU takes any
sender's), and an address left empty is 127.0.0.1 (QEMU: every interface); another interface is used only when
its address is given. ``localaddr`` port 0 binds a free port (:attr:`UdpSocketNetwork.local` says which).
Like QEMU, nothing is buffered: a datagram the host cannot send now is lost, as on a real link.
"""

from __future__ import annotations

import logging
import select
import socket

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DATAGRAM_MAX = 65535


class SocketAddressError(ValueError):
    """A ``HOST:PORT`` that does not parse or resolve."""


def parse_endpoint(text: str, *, allow_port_zero: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` with HOST an IPv4 address or a name (empty: 127.0.0.1), resolved to an IPv4 address."""
    host, colon, port = text.rpartition(":")
    low = 0 if allow_port_zero else 1
    if not colon or not port.isdigit() or not low <= int(port) <= 65535:
        raise SocketAddressError(f"{text!r}: expected HOST:PORT with a port {low}..65535")
    try:
        infos = socket.getaddrinfo(host or LOOPBACK, int(port), socket.AF_INET, socket.SOCK_DGRAM)
    except (OSError, UnicodeError) as exc:
        raise SocketAddressError(f"{text!r}: {getattr(exc, 'strerror', None) or exc}") from None
    address, number = infos[0][4][:2]
    return address, number


class UdpSocketNetwork:
    """A ``NetBackend`` whose link is a UDP socket bound to ``local`` and sending to ``remote`` (see the module).

    Also waits (:meth:`wait`) for the idle guest, as ``HostInputs.idle`` asks of live backends.
    """

    def __init__(self, remote: tuple[str, int], local: tuple[str, int]) -> None:
        self._remote = remote
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as QEMU's net_socket_udp_init
            self._sock.bind(local)
            self._sock.setblocking(False)
        except BaseException:
            self._sock.close()
            raise
        self.local: tuple[str, int] = self._sock.getsockname()[:2]
        self._closed = False
        self._foreign = 0

    @property
    def remote(self) -> tuple[str, int]:
        """Where frames are sent (``udp=``)."""
        return self._remote

    @property
    def listening(self) -> bool:
        """Frames may come at any time while the socket is open."""
        return not self._closed

    def send(self, frame: bytes) -> None:
        """One datagram to the remote end; lost if the host cannot send it now."""
        if self._closed:
            return
        try:
            self._sock.sendto(frame, self._remote)
        except OSError as exc:  # a full socket buffer, ICMP port-unreachable from an earlier send
            logger.debug("a %d-byte frame to %s:%d was lost: %s", len(frame), *self._remote, exc)

    def receive(self) -> bytes | None:
        """The next datagram from the remote end, or None; others are dropped."""
        while not self._closed:
            try:
                frame, sender = self._sock.recvfrom(DATAGRAM_MAX)
            except (BlockingIOError, InterruptedError):
                return None
            except ConnectionRefusedError:  # nobody at the remote end yet (reported once per send)
                continue
            except OSError as exc:
                logger.debug("the UDP link failed: %s", exc)
                return None
            if sender[:2] == self._remote and frame:
                return frame
            self._foreign += 1
            if self._foreign == 1:
                logger.info("dropped a datagram from %s:%d: frames come only from %s:%d", *sender[:2], *self._remote)
        return None

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for a datagram; True if one is there."""
        if self._closed:
            return False
        readable, _, _ = select.select([self._sock], [], [], max(timeout, 0.0))
        return bool(readable)

    def close(self) -> None:
        """Close the socket; later frames are dropped."""
        if not self._closed:
            self._closed = True
            self._sock.close()
