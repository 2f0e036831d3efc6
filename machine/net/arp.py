"""ARP as libslirp does it: the table of guest addresses and the two packets slirp sends.

slirp learns a guest's MAC only from ARP (requests it answers, gratuitous ARP, replies) and from the
addresses its DHCP server hands out, never from the source of IP frames (``slirp.c``: ``arp_input``,
``bootp.c``: ``arp_table_add``). An IP packet for an address it does not know waits for an ARP reply
(``if_encap4``).
"""

from __future__ import annotations

from dataclasses import dataclass

import dpkt

from .frames import ETH_BROADCAST, ETH_P_ARP, ETH_P_IP, IPV4_ANY, IPV4_BROADCAST, ethernet_frame, special_mac

ARP_TABLE_SIZE = 16  # slirp.h
ARPOP_REQUEST = 1
ARPOP_REPLY = 2
ARP_HRD_ETHER = 1
ARP_REPLY_FRAME_LEN = 64  # slirp's arp_reply buffer: MAX(ETH_HLEN + sizeof(struct slirp_arphdr), 64), zero-padded
_ARP_LEN = 28


@dataclass(frozen=True, slots=True)
class ArpPacket:
    """An Ethernet/IPv4 ARP packet with the Ethernet source it came from."""

    eth_src: bytes
    op: int
    sha: bytes
    spa: bytes
    tha: bytes
    tpa: bytes


def parse_arp(eth_src: bytes, payload: bytes) -> ArpPacket | None:
    """The ARP packet in a frame's payload, or None when it is not Ethernet/IPv4 ARP."""
    if len(payload) < _ARP_LEN:
        return None
    arp = dpkt.arp.ARP(payload[:_ARP_LEN])
    if arp.pro != ETH_P_IP or arp.hln != 6 or arp.pln != 4:
        return None
    return ArpPacket(eth_src, arp.op, arp.sha, arp.spa, arp.tha, arp.tpa)


class ArpTable:
    """slirp's ``ArpTable``: 16 entries replaced round-robin; broadcasts resolve to the Ethernet broadcast."""

    def __init__(self, broadcast_ip: bytes) -> None:
        self._broadcast_ip = broadcast_ip
        self._entries: list[tuple[bytes, bytes] | None] = [None] * ARP_TABLE_SIZE
        self._next_victim = 0

    def add(self, ip: bytes, mac: bytes) -> None:
        """Remember (or update) ``ip``'s MAC; broadcast and zero addresses are never stored (``arp_table_add``)."""
        if ip in (IPV4_ANY, IPV4_BROADCAST, self._broadcast_ip):
            return
        for index, entry in enumerate(self._entries):
            if entry is not None and entry[0] == ip:
                self._entries[index] = (ip, mac)
                return
        self._entries[self._next_victim] = (ip, mac)
        self._next_victim = (self._next_victim + 1) % ARP_TABLE_SIZE

    def lookup(self, ip: bytes) -> bytes | None:
        """``ip``'s MAC, the Ethernet broadcast for a broadcast address, or None (``arp_table_search``)."""
        if ip in (IPV4_BROADCAST, self._broadcast_ip):
            return ETH_BROADCAST
        for entry in self._entries:
            if entry is not None and entry[0] == ip:
                return entry[1]
        return None


def _arp(op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> bytes:
    """An Ethernet/IPv4 ARP packet."""
    arp = dpkt.arp.ARP(hrd=ARP_HRD_ETHER, pro=ETH_P_IP, hln=6, pln=4, op=op, sha=sha, spa=spa, tha=tha, tpa=tpa)
    return bytes(arp)


def arp_reply(request: ArpPacket) -> bytes:
    """slirp's answer to a request for one of its addresses: from 52:55:<that address>, padded to 64 bytes."""
    mac = special_mac(request.tpa)
    arp = _arp(ARPOP_REPLY, mac, request.tpa, request.sha, request.spa)
    return ethernet_frame(request.eth_src, mac, ETH_P_ARP, arp).ljust(ARP_REPLY_FRAME_LEN, b"\0")


def arp_request(host_ip: bytes, target_ip: bytes) -> bytes:
    """slirp's broadcast question for an address it must send to (``if_encap4``), 42 bytes, unpadded."""
    mac = special_mac(host_ip)
    return ethernet_frame(ETH_BROADCAST, mac, ETH_P_ARP, _arp(ARPOP_REQUEST, mac, host_ip, b"\0" * 6, target_ip))
