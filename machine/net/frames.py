"""Ethernet, IPv4 and UDP as libslirp reads and writes them.

The guest is untrusted: the parsers raise ``MalformedFrame`` on anything short, inconsistent or with a
bad checksum, and the caller drops the frame. They are written by hand because libslirp's own checks
(``ip_input.c``, ``udp.c``) decide which frames get an answer, and dpkt's parsers are lenient where
slirp is strict (and the other way round). The builders use dpkt, which fills in lengths and checksums.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

import dpkt

ETH_HLEN = 14
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_BROADCAST = b"\xff" * 6

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17

IP_DF = 0x4000
IP_MF_OFFSET = 0x3FFF  # more-fragments flag and fragment offset
IPTOS_LOWDELAY = 0x10
IPDEFTTL = 64  # TTL of slirp's UDP datagrams (udp_output)
MAXTTL = 255  # TTL of slirp's ICMP replies (icmp_reflect)

IF_MTU = 1500  # slirp's if_mtu (QEMU's default)

IPV4_ANY = b"\x00" * 4
IPV4_BROADCAST = b"\xff" * 4

_IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")
_UDP_HEADER = struct.Struct("!HHHH")


class MalformedFrame(ValueError):
    """A frame from the guest that slirp would drop: too short, inconsistent lengths, bad checksum."""


@dataclass(frozen=True, slots=True)
class SlirpAddresses:
    """The virtual network of QEMU's ``-netdev user`` defaults (libslirp ``slirp_new``)."""

    network: IPv4Network = IPv4Network("10.0.2.0/24")
    host: IPv4Address = IPv4Address("10.0.2.2")  # the gateway, DHCP and TFTP server ("vhost")
    dns: IPv4Address = IPv4Address("10.0.2.3")  # the name server ("vnameserver")
    dhcp_start: IPv4Address = IPv4Address("10.0.2.15")  # the first address DHCP hands out

    @property
    def host_ip(self) -> bytes:
        """The gateway's address, packed."""
        return self.host.packed

    @property
    def dns_ip(self) -> bytes:
        """The name server's address, packed."""
        return self.dns.packed

    @property
    def broadcast_ip(self) -> bytes:
        """The network's directed broadcast address, packed."""
        return self.network.broadcast_address.packed

    @property
    def host_mac(self) -> bytes:
        """The source MAC of every IP frame slirp sends (``if_encap4``: always the gateway's)."""
        return special_mac(self.host_ip)


def special_mac(ip: bytes) -> bytes:
    """slirp's MAC for one of its virtual hosts: ``special_ethaddr`` (52:55) followed by the IPv4 address."""
    return b"\x52\x55" + ip


@dataclass(frozen=True, slots=True)
class Ipv4Packet:
    """A checked IPv4 packet from the guest, options removed and trimmed to its total length."""

    src: bytes
    dst: bytes
    proto: int
    tos: int
    ttl: int
    flags_offset: int
    payload: bytes

    @property
    def is_fragment(self) -> bool:
        """Whether this is part of a fragmented datagram (MF set or a non-zero offset)."""
        return bool(self.flags_offset & IP_MF_OFFSET)


@dataclass(frozen=True, slots=True)
class Datagram:
    """A UDP datagram between two (packed IPv4 address, port) endpoints."""

    src: bytes
    sport: int
    dst: bytes
    dport: int
    payload: bytes

    def reply(self, payload: bytes) -> Datagram:
        """A datagram back to this one's sender, from the address and port it was sent to."""
        return Datagram(self.dst, self.dport, self.src, self.sport, payload)


def parse_ethernet(frame: bytes) -> tuple[bytes, bytes, int, bytes]:
    """Destination MAC, source MAC, EtherType and payload; slirp reads bytes 12-13 as the type, no VLANs."""
    if len(frame) < ETH_HLEN:
        raise MalformedFrame(f"{len(frame)}-byte frame")
    return frame[0:6], frame[6:12], int.from_bytes(frame[12:14], "big"), frame[ETH_HLEN:]


def parse_ipv4(data: bytes) -> Ipv4Packet:
    """The checks of slirp's ``ip_input``: version, header length, header checksum, total length."""
    if len(data) < _IPV4_HEADER.size:
        raise MalformedFrame("IPv4 header truncated")
    v_hl, tos, total, _ident, flags_offset, ttl, proto, _sum, src, dst = _IPV4_HEADER.unpack_from(data)
    hlen = (v_hl & 0x0F) * 4
    if v_hl >> 4 != 4 or hlen < _IPV4_HEADER.size or hlen > len(data):
        raise MalformedFrame("bad IPv4 version or header length")
    if dpkt.in_cksum(data[:hlen]) != 0:
        raise MalformedFrame("bad IPv4 header checksum")
    if total < hlen or total > len(data):
        raise MalformedFrame(f"IPv4 total length {total} with {len(data)} bytes")
    return Ipv4Packet(src, dst, proto, tos, ttl, flags_offset, data[hlen:total])


def parse_udp(packet: Ipv4Packet) -> Datagram:
    """The checks of slirp's ``udp_input``: the UDP length fits, the checksum (when not zero) is right."""
    data = packet.payload
    if len(data) < _UDP_HEADER.size:
        raise MalformedFrame("UDP header truncated")
    sport, dport, ulen, checksum = _UDP_HEADER.unpack_from(data)
    if ulen < _UDP_HEADER.size or ulen > len(data):
        raise MalformedFrame(f"UDP length {ulen} with {len(data)} bytes")
    data = data[:ulen]
    if checksum and dpkt.in_cksum(pseudo_header(packet.src, packet.dst, IPPROTO_UDP, ulen) + data) != 0:
        raise MalformedFrame("bad UDP checksum")
    return Datagram(packet.src, sport, packet.dst, dport, data[_UDP_HEADER.size :])


def pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    """The IPv4 pseudo-header that UDP and TCP checksums cover (RFC 768, RFC 9293)."""
    return struct.pack("!4s4sxBH", src, dst, proto, length)


def internet_checksum(data: bytes) -> int:
    """RFC 1071 checksum, as put in IPv4, ICMP and UDP headers."""
    return dpkt.in_cksum(data)


def ethernet_frame(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    """An Ethernet II frame (no FCS, no padding: virtio-net's peers never pad, QEMU's ``do_not_pad``)."""
    return bytes(dpkt.ethernet.Ethernet(dst=dst, src=src, type=ethertype, data=payload))


def ipv4_packet(
    src: bytes,
    dst: bytes,
    proto: int,
    payload: bytes | dpkt.Packet,
    *,
    ident: int,
    tos: int,
    ttl: int,
    df: bool = False,
) -> bytes:
    """An IPv4 packet without options as slirp's ``ip_output`` makes it; a UDP payload gets its checksum."""
    packet = dpkt.ip.IP(src=src, dst=dst, p=proto, tos=tos, ttl=ttl, id=ident, data=payload)
    packet.df = int(df)
    return bytes(packet)


def fragment_ipv4(packet: bytes, mtu: int = IF_MTU) -> list[bytes]:
    """An IPv4 packet (no options, DF clear) cut to fit ``mtu`` as slirp's ``ip_output`` cuts it: data in
    multiples of 8 bytes, the same identification, MF on all but the last; a packet that fits comes back whole."""
    if len(packet) <= mtu:
        return [packet]
    header, data = packet[:20], packet[20:]
    size = (mtu - 20) & ~7
    fragments = []
    for offset in range(0, len(data), size):
        chunk = data[offset : offset + size]
        more = 0x2000 if offset + size < len(data) else 0
        head = bytearray(header)
        struct.pack_into("!H", head, 2, 20 + len(chunk))
        struct.pack_into("!H", head, 6, more | offset // 8)
        struct.pack_into("!H", head, 10, 0)
        struct.pack_into("!H", head, 10, dpkt.in_cksum(bytes(head)))
        fragments.append(bytes(head) + chunk)
    return fragments


def udp_packet(datagram: Datagram, *, ident: int, tos: int = IPTOS_LOWDELAY, ttl: int = IPDEFTTL) -> bytes:
    """A UDP datagram in an IPv4 packet as slirp's ``udp_output`` makes it (a zero checksum sent as 0xffff)."""
    udp = dpkt.udp.UDP(
        sport=datagram.sport, dport=datagram.dport, ulen=_UDP_HEADER.size + len(datagram.payload), data=datagram.payload
    )
    return ipv4_packet(datagram.src, datagram.dst, IPPROTO_UDP, udp, ident=ident, tos=tos, ttl=ttl)
