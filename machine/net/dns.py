"""The name server at 10.0.2.3:53, answered from a fixed table instead of the host's resolver.

slirp relays the guest's queries to the host's resolver; a recording must replay without a network, so
here the answers come from ``hosts`` alone: A records for the names in it, NXDOMAIN for every other name.
Replies look like a recursive resolver's (RA set, RD copied, the question echoed byte for byte). Queries
are parsed by hand rather than with ``dpkt.dns``, which decodes names as UTF-8 and rejects record types it
does not know; the guest's bytes must never make the parser raise anything but a drop.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping
from ipaddress import IPv4Address

from .frames import Datagram

logger = logging.getLogger(__name__)

DNS_PORT = 53
ANSWER_TTL_S = 3600
QR, OPCODE_MASK, RD, RA = 0x8000, 0x7800, 0x0100, 0x0080
RCODE_NOERROR, RCODE_FORMERR, RCODE_NXDOMAIN, RCODE_NOTIMP = 0, 1, 3, 4
TYPE_A, TYPE_ANY, CLASS_IN, CLASS_ANY = 1, 255, 1, 255
_HEADER = struct.Struct("!HHHHHH")
_NAME_MAX = 255


class DnsServer:
    """Answers standard queries for A records of the names in ``hosts`` (name -> dotted IPv4 address)."""

    def __init__(self, hosts: Mapping[str, str]) -> None:
        self._hosts = {_normalise(name): IPv4Address(address).packed for name, address in hosts.items()}

    def handle(self, query: Datagram) -> list[Datagram]:
        """The response to one query (none for a datagram too short to be one, or for a response)."""
        message = query.payload
        if len(message) < _HEADER.size:
            return []
        ident, flags, qdcount, _an, _ns, _ar = _HEADER.unpack_from(message)
        if flags & QR:
            return []
        base = QR | RA | (flags & RD)
        if flags & OPCODE_MASK:
            return [query.reply(_HEADER.pack(ident, base | (flags & OPCODE_MASK) | RCODE_NOTIMP, 0, 0, 0, 0))]
        question = _question(message) if qdcount == 1 else None
        if question is None:
            return [query.reply(_HEADER.pack(ident, base | RCODE_FORMERR, 0, 0, 0, 0))]
        name, qtype, qclass, end = question
        address = self._hosts.get(name)
        logger.debug("dns: %r type %d -> %s", name, qtype, address and IPv4Address(address))
        if address is None:
            return [query.reply(_HEADER.pack(ident, base | RCODE_NXDOMAIN, 1, 0, 0, 0) + message[_HEADER.size : end])]
        answers = b""
        if qtype in (TYPE_A, TYPE_ANY) and qclass in (CLASS_IN, CLASS_ANY):
            # The owner name points at the question's (offset 12); class IN whatever the question asked.
            answers = struct.pack("!HHHIH4s", 0xC000 | _HEADER.size, TYPE_A, CLASS_IN, ANSWER_TTL_S, 4, address)
        header = _HEADER.pack(ident, base | RCODE_NOERROR, 1, 1 if answers else 0, 0, 0)
        return [query.reply(header + message[_HEADER.size : end] + answers)]


def _normalise(name: str) -> bytes:
    """A name as compared on the wire: ASCII (IDNA for others), lower case, no trailing dot."""
    return name.rstrip(".").lower().encode("idna")


def _question(message: bytes) -> tuple[bytes, int, int, int] | None:
    """The one question's name (lower case), type, class and end offset, or None if it is malformed."""
    labels: list[bytes] = []
    offset = _HEADER.size
    while True:
        if offset >= len(message):
            return None
        length = message[offset]
        if length == 0:
            offset += 1
            break
        if length & 0xC0:  # a compression pointer cannot occur in the first name of a message
            return None
        label = message[offset + 1 : offset + 1 + length]
        if len(label) != length:
            return None
        labels.append(label)
        offset += 1 + length
        if offset - _HEADER.size > _NAME_MAX:
            return None
    if offset + 4 > len(message):
        return None
    qtype, qclass = struct.unpack_from("!HH", message, offset)
    return b".".join(labels).lower(), qtype, qclass, offset + 4
