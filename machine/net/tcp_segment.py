"""TCP segments as libslirp reads and writes them: the header, the MSS option, checksums, sequence arithmetic.

The parser raises ``MalformedFrame`` on what slirp's ``tcp_input`` drops (a short header, a bad data offset, a
bad checksum); the builder makes what its ``tcp_output`` sends (TOS 0, TTL 64, no DF, the MSS option on SYNs).
The connection logic is in ``tcp.py``.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import dpkt

from .frames import IPPROTO_TCP, Ipv4Packet, MalformedFrame, ipv4_packet, pseudo_header

SEQ_MASK = 0xFFFFFFFF
TCP_TTL = 64  # IPDEFTTL: slirp's tcp_output
TCP_RESET_TTL = 255  # MAXTTL: slirp's tcp_respond for a RST
TCPOPT_EOL, TCPOPT_NOP, TCPOPT_MAXSEG = 0, 1, 2

_TCP_HEADER = struct.Struct("!HHIIBBHHH")
_TCP_HLEN = _TCP_HEADER.size

Endpoint = tuple[bytes, int]  # a packed IPv4 address and a port


class TcpFlag(enum.IntFlag):
    """The TCP header's control bits."""

    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20


FIN, SYN, RST, PSH, ACK = TcpFlag.FIN, TcpFlag.SYN, TcpFlag.RST, TcpFlag.PSH, TcpFlag.ACK


def seq_add(seq: int, n: int) -> int:
    """``seq + n`` in sequence space."""
    return (seq + n) & SEQ_MASK


def seq_diff(a: int, b: int) -> int:
    """``a - b`` in sequence space, as a signed distance (-2**31 .. 2**31-1)."""
    d = (a - b) & SEQ_MASK
    return d - (1 << 32) if d & 0x80000000 else d


@dataclass(frozen=True, slots=True)
class TcpSegment:
    """One TCP segment between two endpoints; ``mss`` is the MSS option (SYNs only)."""

    src: bytes
    sport: int
    dst: bytes
    dport: int
    seq: int
    ack: int
    flags: TcpFlag
    window: int
    payload: bytes = b""
    mss: int | None = None

    @property
    def length(self) -> int:
        """The sequence space it occupies: its data, plus one for a SYN and one for a FIN."""
        return len(self.payload) + bool(self.flags & SYN) + bool(self.flags & FIN)

    @property
    def is_syn_only(self) -> bool:
        """A connection request: SYN without ACK or RST."""
        return self.flags & (SYN | ACK | RST) == SYN


def parse_tcp(packet: Ipv4Packet) -> TcpSegment:
    """The checks of slirp's ``tcp_input``: the header fits, the data offset is sane, the checksum is right."""
    data = packet.payload
    if len(data) < _TCP_HLEN:
        raise MalformedFrame("TCP header truncated")
    sport, dport, seq, ack, offset, flags, window, _sum, _urp = _TCP_HEADER.unpack_from(data)
    hlen = (offset >> 4) * 4
    if hlen < _TCP_HLEN or hlen > len(data):
        raise MalformedFrame(f"TCP data offset {hlen} with {len(data)} bytes")
    if dpkt.in_cksum(pseudo_header(packet.src, packet.dst, IPPROTO_TCP, len(data)) + data) != 0:
        raise MalformedFrame("bad TCP checksum")
    mss = _mss_option(data[_TCP_HLEN:hlen]) if flags & SYN else None
    return TcpSegment(packet.src, sport, packet.dst, dport, seq, ack, TcpFlag(flags & 0x3F), window, data[hlen:], mss)


def _mss_option(options: bytes) -> int | None:
    """The MSS in a SYN's options (``tcp_dooptions``); other options are skipped, a broken list ends the walk."""
    i = 0
    while i < len(options):
        kind = options[i]
        if kind == TCPOPT_EOL:
            break
        if kind == TCPOPT_NOP:
            i += 1
            continue
        if i + 1 >= len(options) or options[i + 1] < 2 or i + options[i + 1] > len(options):
            break
        if kind == TCPOPT_MAXSEG and options[i + 1] == 4:
            return int.from_bytes(options[i + 2 : i + 4], "big") or None
        i += options[i + 1]
    return None


def tcp_packet(segment: TcpSegment, *, ident: int, tos: int = 0, ttl: int = TCP_TTL) -> bytes:
    """The segment in an IPv4 packet as slirp's ``tcp_output`` makes it (TOS 0, TTL 64, no DF)."""
    options = b"" if segment.mss is None else struct.pack("!BBH", TCPOPT_MAXSEG, 4, segment.mss)
    hlen = _TCP_HLEN + len(options)
    header = _TCP_HEADER.pack(segment.sport, segment.dport, segment.seq, segment.ack, (hlen // 4) << 4,
                              int(segment.flags), segment.window, 0, 0)  # fmt: skip
    body = header + options + segment.payload
    checksum = dpkt.in_cksum(pseudo_header(segment.src, segment.dst, IPPROTO_TCP, len(body)) + body)
    body = body[:16] + struct.pack("!H", checksum) + body[18:]
    return ipv4_packet(segment.src, segment.dst, IPPROTO_TCP, body, ident=ident, tos=tos, ttl=ttl)


def reset_for(segment: TcpSegment) -> TcpSegment | None:
    """The RST that answers a segment no connection takes (RFC 9293 3.10.7.1; slirp's ``tcp_respond``), or None
    for a RST (never answered)."""
    if segment.flags & RST:
        return None
    if segment.flags & ACK:
        return TcpSegment(segment.dst, segment.dport, segment.src, segment.sport, segment.ack, 0, RST, 0)
    ack = seq_add(segment.seq, segment.length)
    return TcpSegment(segment.dst, segment.dport, segment.src, segment.sport, 0, ack, RST | ACK, 0)


def format_endpoint(endpoint: Endpoint) -> str:
    """``10.0.2.15:7``."""
    return f"{'.'.join(str(b) for b in endpoint[0])}:{endpoint[1]}"
