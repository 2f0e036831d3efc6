"""QEMU 7.2's ``-netdev user`` (libslirp 4.7) without the host behind it: a sans-IO virtual network.

What the guest sees is slirp's 10.0.2.0/24: the gateway 10.0.2.2 (ARP, ping, DHCP, TFTP), the name server
10.0.2.3 (ARP, ping, DNS from a fixed table), its own address 10.0.2.15 by DHCP. Nothing leaves the
process here: no sockets, threads or clocks, so the frames the guest receives depend only on the frames it
sent (and, for TFTP, on the files). IPv6 and fragments are dropped.

TCP and the UDP datagrams no service takes go to the :class:`~machine.net.relay.Relay`, the sans-IO half of
slirp's socket table: TCP connections with the user network's end of each (host forwards, the guest's
connections to 10.0.2.2) and datagrams for the host. The host half, sockets, is
``machine.net.gateway.HostGateway``, which wraps this class.

Dispatch is by table at each layer (EtherType, IP protocol, UDP (address, port)). Frames for the guest wait in
a bounded queue, in the order slirp would have sent them.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from .arp import ARPOP_REPLY, ARPOP_REQUEST, ArpTable, arp_reply, arp_request, parse_arp
from .dhcp import BOOTP_SERVER, DhcpServer
from .dns import DNS_PORT, DnsServer
from .frames import (
    ETH_P_ARP,
    ETH_P_IP,
    IP_DF,
    IPPROTO_ICMP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPV4_ANY,
    IPV4_BROADCAST,
    MAXTTL,
    Datagram,
    Ipv4Packet,
    MalformedFrame,
    SlirpAddresses,
    ethernet_frame,
    fragment_ipv4,
    internet_checksum,
    ipv4_packet,
    parse_ethernet,
    parse_ipv4,
    parse_udp,
    udp_packet,
)
from .relay import Relay
from .tcp_segment import parse_tcp, tcp_packet
from .tftp import TFTP_PORT, TftpServer

logger = logging.getLogger(__name__)

DEFAULT_ADDRESSES = SlirpAddresses()
DEFAULT_QUEUE_LIMIT = 1024  # frames waiting for the guest
UNRESOLVED_LIMIT = 64  # IP packets waiting for the guest's ARP reply
ICMP_ECHOREPLY, ICMP_ECHO = 0, 8
ICMP_MINLEN = 8


class UdpService(Protocol):
    """A service at one (address, port) of the virtual network: datagrams in, replies out."""

    def handle(self, request: Datagram) -> list[Datagram]:
        """The datagrams to send back for one received datagram."""
        ...


class UserNetwork:
    """The NetBackend of ``-netdev user``: slirp's defaults, answered in-process and deterministically.

    ``tftp_dir``: the directory served over TFTP (QEMU's ``tftp=``); without it every read is refused.
    ``hosts``: the names the DNS server knows (name -> dotted IPv4 address); every other name is NXDOMAIN.
    ``queue_limit``: the most frames kept for the guest; past it the oldest is dropped.
    """

    def __init__(
        self,
        tftp_dir: Path | None = None,
        hosts: Mapping[str, str] | None = None,
        *,
        addresses: SlirpAddresses = DEFAULT_ADDRESSES,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
    ) -> None:
        if queue_limit < 1:
            raise ValueError(f"queue_limit must be positive, not {queue_limit}")
        self._addresses = addresses
        self._queue: deque[bytes] = deque()
        self._queue_limit = queue_limit
        self._dropped = 0
        self._closed = False
        self._arp = ArpTable(addresses.broadcast_ip)
        self._unresolved: deque[tuple[bytes, bytes]] = deque()  # (destination, IP packet)
        self._ip_id = 0  # slirp's ip_id: zero at start, one more for every IP packet sent
        self._tftp = TftpServer(tftp_dir)
        self._relay = Relay(addresses.host_ip)
        dhcp = DhcpServer(addresses, learn=self._learn)
        self._udp_services: dict[tuple[bytes, int], UdpService] = {
            (addresses.host_ip, BOOTP_SERVER): dhcp,
            (IPV4_BROADCAST, BOOTP_SERVER): dhcp,
            (addresses.host_ip, TFTP_PORT): self._tftp,
            (addresses.dns_ip, DNS_PORT): DnsServer(hosts or {}),
        }
        self._ethertypes: dict[int, Callable[[bytes, bytes], None]] = {
            ETH_P_ARP: self._arp_input,
            ETH_P_IP: self._ip_input,
        }
        self._ip_protocols: dict[int, Callable[[Ipv4Packet], None]] = {
            IPPROTO_ICMP: self._icmp_input,
            IPPROTO_TCP: self._tcp_input,
            IPPROTO_UDP: self._udp_input,
        }

    @property
    def addresses(self) -> SlirpAddresses:
        """The virtual network's addresses."""
        return self._addresses

    @property
    def relay(self) -> Relay:
        """The TCP connections and the UDP datagrams that cross to the host (its sans-IO half)."""
        return self._relay

    @property
    def dropped_frames(self) -> int:
        """How many frames for the guest were dropped because the queue was full."""
        return self._dropped

    def send(self, frame: bytes) -> None:
        """Take one frame from the guest; queue the answers. Malformed frames are logged and dropped."""
        if self._closed:
            return
        try:
            _dst, src, ethertype, payload = parse_ethernet(frame)
            handler = self._ethertypes.get(ethertype)
            if handler is None:
                logger.debug("dropped a frame of EtherType %#06x", ethertype)
                return
            handler(src, payload)
        except MalformedFrame as exc:
            logger.debug("dropped a malformed frame: %s", exc)
        except Exception:  # a bug here must not take the machine down with it: the guest is untrusted
            logger.exception("dropped a %d-byte frame that broke the user network: %s", len(frame), frame.hex())

    def receive(self) -> bytes | None:
        """The oldest frame waiting for the guest (after the TCP segments the host side caused), or None."""
        self._flush_relay()
        return self._queue.popleft() if self._queue else None

    def send_datagram(self, datagram: Datagram) -> None:
        """A UDP datagram for the guest from the host side (a UDP forward, a host answering the guest)."""
        if not self._closed:
            for fragment in fragment_ipv4(udp_packet(datagram, ident=self._next_ip_id())):
                self._output(datagram.dst, fragment)

    def close(self) -> None:
        """Drop every waiting frame, TFTP session and TCP connection; frames sent later are ignored."""
        self._closed = True
        self._queue.clear()
        self._unresolved.clear()
        self._tftp.close()
        self._relay.close()

    # ARP (slirp.c: arp_input)

    def _arp_input(self, eth_src: bytes, payload: bytes) -> None:
        arp = parse_arp(eth_src, payload)
        if arp is None:
            raise MalformedFrame("not an Ethernet/IPv4 ARP packet")
        if arp.op == ARPOP_REQUEST:
            if arp.tpa == arp.spa:  # gratuitous ARP
                self._learn(arp.spa, arp.sha)
            elif arp.tpa in (self._addresses.host_ip, self._addresses.dns_ip):
                self._arp.add(arp.spa, arp.sha)
                self._enqueue(arp_reply(arp))  # sent at once; packets waiting for this address follow
                self._send_unresolved()
        elif arp.op == ARPOP_REPLY:
            self._learn(arp.spa, arp.sha)

    def _learn(self, ip: bytes, mac: bytes) -> None:
        self._arp.add(ip, mac)
        self._send_unresolved()

    # IPv4 (ip_input.c, ip_icmp.c, udp.c)

    def _ip_input(self, eth_src: bytes, payload: bytes) -> None:
        packet = parse_ipv4(payload)
        if packet.ttl == 0 or packet.is_fragment:  # slirp: an ICMP time-exceeded error / reassembly
            logger.debug("dropped an IPv4 packet with TTL %d, fragment field %#x", packet.ttl, packet.flags_offset)
            return
        handler = self._ip_protocols.get(packet.proto)
        if handler is None:
            logger.debug("dropped an IPv4 packet of protocol %d", packet.proto)
            return
        handler(packet)

    def _icmp_input(self, packet: Ipv4Packet) -> None:
        """Echo requests to the gateway or the name server are answered (``icmp_reflect``), all else dropped."""
        icmp = packet.payload
        if len(icmp) < ICMP_MINLEN or internet_checksum(icmp) != 0:
            raise MalformedFrame("short ICMP message or bad ICMP checksum")
        if icmp[0] != ICMP_ECHO or packet.dst not in (self._addresses.host_ip, self._addresses.dns_ip):
            logger.debug("dropped ICMP type %d for %s", icmp[0], packet.dst.hex())
            return
        reply = bytes((ICMP_ECHOREPLY, icmp[1])) + b"\0\0" + icmp[4:]
        reply = reply[:2] + struct.pack("!H", internet_checksum(reply)) + reply[4:]
        df = bool(packet.flags_offset & IP_DF)
        ident = self._next_ip_id()
        self._output(
            packet.src,
            ipv4_packet(packet.dst, packet.src, IPPROTO_ICMP, reply, ident=ident, tos=packet.tos, ttl=MAXTTL, df=df),
        )

    def _udp_input(self, packet: Ipv4Packet) -> None:
        datagram = parse_udp(packet)
        service = self._udp_services.get((datagram.dst, datagram.dport))
        if service is None:
            self._relay.datagram_from_guest(datagram)  # for the host side, if there is one
            return
        for reply in service.handle(datagram):
            self._output(reply.dst, udp_packet(reply, ident=self._next_ip_id()))

    def _tcp_input(self, packet: Ipv4Packet) -> None:
        self._relay.segment_from_guest(parse_tcp(packet))
        self._flush_relay()

    def _flush_relay(self) -> None:
        """Frame the TCP segments of every connection (the host side's writes and closes make some)."""
        if self._closed:
            return
        for segment, ttl in self._relay.take_segments():
            self._output(segment.dst, tcp_packet(segment, ident=self._next_ip_id(), ttl=ttl))

    # Output (ip_output.c, slirp.c: if_encap4)

    def _next_ip_id(self) -> int:
        ident, self._ip_id = self._ip_id, (self._ip_id + 1) & 0xFFFF
        return ident

    def _output(self, dst: bytes, packet: bytes) -> None:
        """Frame an IP packet for the guest, or hold it and ask for the destination's MAC first."""
        if dst == IPV4_ANY:
            logger.debug("dropped a packet for 0.0.0.0")
            return
        mac = self._arp.lookup(dst)
        if mac is not None:
            self._enqueue(ethernet_frame(mac, self._addresses.host_mac, ETH_P_IP, packet))
            return
        if len(self._unresolved) >= UNRESOLVED_LIMIT:
            logger.info("dropped a packet still waiting for an ARP reply")
            self._unresolved.popleft()
        self._unresolved.append((dst, packet))
        self._enqueue(arp_request(self._addresses.host_ip, dst))

    def _send_unresolved(self) -> None:
        waiting, self._unresolved = self._unresolved, deque()
        for dst, packet in waiting:
            if self._arp.lookup(dst) is None:
                self._unresolved.append((dst, packet))
            else:
                self._output(dst, packet)

    def _enqueue(self, frame: bytes) -> None:
        if len(self._queue) >= self._queue_limit:
            self._queue.popleft()
            self._dropped += 1
            if self._dropped == 1 or self._dropped % self._queue_limit == 0:
                logger.warning("the guest is not taking its frames: %d dropped so far", self._dropped)
        self._queue.append(frame)
