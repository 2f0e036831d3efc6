"""RSP framing: ``$payload#cs``, checksums, ``}`` escaping, run-length decoding, acks, 0x03.

:class:`Decoder` is fed raw bytes as they arrive and returns events;
:func:`encode` frames a reply payload. (GDB manual, "Overview" and "Binary
Data" of the Remote Protocol appendix.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ESCAPE = 0x7D  # '}'
RLE = 0x2A  # '*'
NEEDS_ESCAPE = frozenset(b"$#}*")
_NEEDS_ESCAPE_RE = re.compile(rb"[$#}*]")
_DOLLAR, _HASH = 0x24, 0x23
INTERRUPT_BYTE = 0x03
DEFAULT_MAX_PACKET = 0x4000


@dataclass(frozen=True, slots=True)
class Packet:
    """A well-formed packet; ``payload`` is unescaped and run-length decoded."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Interrupt:
    """The 0x03 byte outside a packet: the user pressed Ctrl-C."""


@dataclass(frozen=True, slots=True)
class Ack:
    """``+``: the peer received our last packet."""


@dataclass(frozen=True, slots=True)
class Nack:
    """``-``: the peer wants our last packet again."""


@dataclass(frozen=True, slots=True)
class BadPacket:
    """A framed packet that cannot be used (bad checksum, too long, bad escape)."""

    reason: str


Event = Packet | Interrupt | Ack | Nack | BadPacket


def checksum(data: bytes) -> int:
    """Modulo-256 sum of the bytes between ``$`` and ``#`` (as sent, i.e. escaped)."""
    return sum(data) & 0xFF


def escape(payload: bytes) -> bytes:
    """Escape ``$ # } *`` as ``}`` followed by the byte XOR 0x20."""
    if _NEEDS_ESCAPE_RE.search(payload) is None:  # hex replies never need it: one scan in C
        return payload
    out = bytearray()
    for b in payload:
        if b in NEEDS_ESCAPE:
            out += bytes((ESCAPE, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def unescape(raw: bytes) -> bytes:
    """Undo ``}`` escaping and expand run-length encoding (``X*n``: n - 29 more copies of X)."""
    if ESCAPE not in raw and RLE not in raw:
        return raw
    out = bytearray()
    i = 0
    while i < len(raw):
        b = raw[i]
        if b == ESCAPE:
            if i + 1 >= len(raw):
                raise ValueError("packet ends inside an escape")
            out.append(raw[i + 1] ^ 0x20)
            i += 2
        elif b == RLE:
            if not out or i + 1 >= len(raw):
                raise ValueError("run-length marker without a character to repeat")
            count = raw[i + 1] - 29
            if count < 0:
                raise ValueError("bad run-length count")
            out += bytes((out[-1],)) * count
            i += 2
        else:
            out.append(b)
            i += 1
    return bytes(out)


def encode(payload: bytes) -> bytes:
    """Frame a payload: ``$`` + escaped payload + ``#`` + two hex digits of checksum."""
    body = escape(payload)
    return b"$%b#%02x" % (body, sum(body) & 0xFF)


class Decoder:
    """Incremental RSP decoder: ``feed`` bytes, get events in order.

    Bytes outside packets other than ``+``, ``-`` and 0x03 are ignored, as gdb
    does. A packet longer than ``max_packet`` is reported as :class:`BadPacket`
    once its end arrives and its bytes are dropped meanwhile.
    """

    def __init__(self, max_packet: int = DEFAULT_MAX_PACKET) -> None:
        self.max_packet = max_packet
        self._body: bytearray | None = None  # inside $...# (None: between packets)
        self._overflow = False
        self._sum: bytearray | None = None  # checksum digits after '#'

    @property
    def is_idle(self) -> bool:
        """Between packets: what ``feed`` makes of a chunk then depends on that chunk only."""
        return self._body is None and self._sum is None

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        i, n = 0, len(data)
        while i < n:
            if data[i] == _DOLLAR and self._body is None and self._sum is None:
                end = self._whole_packet(data, i)
                if end:  # the common case, a whole packet in this chunk: sliced, not walked byte by byte
                    events.append(_complete(data[i + 1 : end - 3], data[end - 2 : end], False, self.max_packet))
                    i = end
                    continue
            event = self._byte(data[i])
            if event is not None:
                events.append(event)
            i += 1
        return events

    def _whole_packet(self, data: bytes, start: int) -> int:
        """The end of the packet at ``data[start]`` (a ``$``) when all of it is in ``data`` and the byte-wise
        path would take it as is (no ``$`` inside, not too long); else 0 (the byte-wise path decides)."""
        hash_at = data.find(b"#", start + 1)
        if hash_at == -1 or hash_at + 3 > len(data) or hash_at - start - 1 > self.max_packet:
            return 0
        if data.find(b"$", start + 1, hash_at) != -1:
            return 0
        return hash_at + 3

    def _byte(self, b: int) -> Event | None:
        if self._sum is not None:
            self._sum.append(b)
            return self._finish() if len(self._sum) == 2 else None
        if self._body is not None:
            if b == ord("#"):
                self._sum = bytearray()
            elif b == ord("$"):  # a new packet starts: the old one was truncated
                self._start()
                return BadPacket("packet interrupted by a new '$'")
            elif len(self._body) >= self.max_packet:
                self._overflow = True
            else:
                self._body.append(b)
            return None
        if b == ord("$"):
            self._start()
        elif b == ord("+"):
            return Ack()
        elif b == ord("-"):
            return Nack()
        elif b == INTERRUPT_BYTE:
            return Interrupt()
        return None

    def _start(self) -> None:
        self._body = bytearray()
        self._overflow = False
        self._sum = None

    def _finish(self) -> Event:
        body, digits, overflow = bytes(self._body or b""), bytes(self._sum or b""), self._overflow
        self._body = None
        self._sum = None
        self._overflow = False
        return _complete(body, digits, overflow, self.max_packet)


def _complete(body: bytes, digits: bytes, overflow: bool, max_packet: int) -> Event:
    """The event for a framed packet: ``body`` as sent (escaped), ``digits`` its two checksum characters."""
    if overflow:
        return BadPacket(f"packet longer than {max_packet} bytes")
    try:
        expected = int(digits, 16)
    except ValueError:
        return BadPacket(f"bad checksum digits {digits!r}")
    if checksum(body) != expected:
        return BadPacket(f"checksum mismatch (got {expected:02x}, computed {checksum(body):02x})")
    try:
        return Packet(unescape(body))
    except ValueError as exc:
        return BadPacket(str(exc))
