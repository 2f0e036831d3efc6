"""A minimal gdb on a socket: raw RSP packets out, decoded replies in (for tests and benchmarks that time
or fuzz the server below gdb; the project's gdb/MI client is :mod:`gdbstub.client`)."""

from __future__ import annotations

import socket

from .rsp.codec import Ack, Decoder, Packet, encode


class ServerClosed(ConnectionError):
    """The server closed the connection."""


class WireClient:
    """One connection in ack mode: acks every packet it receives, as gdb does."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._decoder = Decoder()
        self._packets: list[bytes] = []
        self._acks = 0

    @classmethod
    def connect(cls, port: int, host: str = "127.0.0.1", timeout: float = 120) -> WireClient:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock)

    def send(self, data: bytes) -> None:
        """Raw bytes (a framed packet, a 0x03...)."""
        self.sock.sendall(data)

    def command(self, payload: bytes) -> None:
        """Send a packet and wait for its '+' (the server sends it before it runs the command)."""
        self.send(encode(payload))
        self.wait_ack()

    def wait_ack(self) -> None:
        """Until the server's next '+'."""
        while not self._acks:
            self._receive()
        self._acks -= 1

    def packet(self) -> bytes:
        """The next packet (console 'O' packets included)."""
        while not self._packets:
            self._receive()
        return self._packets.pop(0)

    def reply(self) -> bytes:
        """The next packet that is not a console 'O' packet."""
        while (payload := self.packet()).startswith(b"O") and payload != b"OK":
            pass
        return payload

    def monitor(self, text: str) -> str:
        """``monitor TEXT`` (qRcmd): its output."""
        self.command(b"qRcmd," + text.encode().hex().encode())
        return bytes.fromhex(self.reply().decode()).decode()

    def _receive(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ServerClosed("the server closed the connection")
        for event in self._decoder.feed(chunk):
            if isinstance(event, Packet):
                self._packets.append(event.payload)
                self.sock.sendall(b"+")
            elif isinstance(event, Ack):
                self._acks += 1
