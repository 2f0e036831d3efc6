"""The DHCP server of QEMU's ``-netdev user`` (libslirp 4.7 ``bootp.c``), on 10.0.2.2:67.

Sixteen addresses from 10.0.2.15, one per client MAC, never released. Every reply is broadcast to
255.255.255.255:68 from 10.0.2.2:67 and carries a full 312-byte options field (libslirp 4.7: "dhcp: Always
send DHCP_OPT_LEN bytes in options"). The options, in slirp's order: message type, server id, netmask,
router, DNS server, lease time (QEMU's hostname, domain, tftp-server-name, dnssearch and bootfile are off
by default, so not sent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import dpkt

from .frames import IPV4_ANY, IPV4_BROADCAST, Datagram, SlirpAddresses

logger = logging.getLogger(__name__)

BOOTP_SERVER = 67
BOOTP_CLIENT = 68
BOOTP_REQUEST = 1
BOOTP_REPLY = 2
NB_BOOTP_CLIENTS = 16
LEASE_TIME_S = 24 * 3600
DHCP_OPT_LEN = 312  # the options field of every reply, magic cookie included
RFC1533_COOKIE = bytes((99, 130, 83, 99))

DHCPDISCOVER, DHCPOFFER, DHCPREQUEST, DHCPACK, DHCPNAK = 1, 2, 3, 5, 6
OPT_PAD, OPT_NETMASK, OPT_ROUTER, OPT_DNS, OPT_END = 0, 1, 3, 6, 255
OPT_REQ_ADDR, OPT_LEASE_TIME, OPT_MSG_TYPE, OPT_SERVER_ID, OPT_MESSAGE = 50, 51, 53, 54, 56
NAK_MESSAGE = b"requested address not available"

_BOOTP_FIXED_LEN = 236  # the header before the options field


def decode_options(options: bytes) -> tuple[int, bytes]:
    """The message type (0 for plain BOOTP) and requested address in an options field (``dhcp_decode``)."""
    msg_type, requested = 0, IPV4_ANY
    if options[:4] != RFC1533_COOKIE:
        return msg_type, requested
    p = 4
    while p < len(options):
        tag = options[p]
        if tag == OPT_PAD:
            p += 1
            continue
        if tag == OPT_END or p + 1 >= len(options):
            break
        length = options[p + 1]
        value = options[p + 2 : p + 2 + length]
        if len(value) < length:
            break
        if tag == OPT_MSG_TYPE and length >= 1:
            msg_type = value[0]
        elif tag == OPT_REQ_ADDR and length >= 4:
            requested = value[:4]
        p += 2 + length
    return msg_type, requested


class DhcpServer:
    """Answers DHCPDISCOVER with DHCPOFFER and DHCPREQUEST with DHCPACK (or DHCPNAK), as ``bootp_reply``."""

    def __init__(self, addresses: SlirpAddresses, learn: Callable[[bytes, bytes], None]) -> None:
        self._addresses = addresses
        self._learn = learn  # slirp's arp_table_add: the address handed out now belongs to that MAC
        self._allocated = [False] * NB_BOOTP_CLIENTS
        self._macs = [b"\0" * 6] * NB_BOOTP_CLIENTS
        self._start = int(addresses.dhcp_start)

    def handle(self, request: Datagram) -> list[Datagram]:
        """The reply to one BOOTP/DHCP datagram sent to port 67 (none for anything else)."""
        payload = request.payload
        if len(payload) < _BOOTP_FIXED_LEN or payload[0] != BOOTP_REQUEST:
            logger.debug("dhcp: not a BOOTP request (%d bytes)", len(payload))
            return []
        xid, ciaddr, mac = payload[4:8], payload[12:16], payload[28:34]  # bp_xid, bp_ciaddr, bp_hwaddr
        msg_type, requested = decode_options(payload[_BOOTP_FIXED_LEN:])
        if msg_type == DHCPREQUEST and requested == IPV4_ANY:
            requested = ciaddr
        if msg_type == 0:
            msg_type = DHCPREQUEST  # "Force reply for old BOOTP clients"
        if msg_type not in (DHCPDISCOVER, DHCPREQUEST):
            return []
        address = self._choose(msg_type, requested, mac)
        if address is None:
            logger.info("dhcp: no address left for %s", mac.hex(":"))
            return []
        self._learn(address, mac)
        reply_type = DHCPNAK if address == IPV4_BROADCAST else DHCPOFFER if msg_type == DHCPDISCOVER else DHCPACK
        logger.debug("dhcp: type %d from %s -> type %d for %s", msg_type, mac.hex(":"), reply_type, address.hex())
        reply = self._reply(xid, mac, address, reply_type)
        return [Datagram(self._addresses.host_ip, BOOTP_SERVER, IPV4_BROADCAST, BOOTP_CLIENT, reply)]

    def _choose(self, msg_type: int, requested: bytes, mac: bytes) -> bytes | None:
        """The address to offer or acknowledge, 255.255.255.255 for a NAK, None for no reply."""
        if msg_type == DHCPREQUEST and requested != IPV4_ANY:
            slot = self._request_addr(requested, mac)
            if slot is None:
                return IPV4_BROADCAST  # "DHCPNAKs should be sent to broadcast"
            self._macs[slot] = mac
            return requested
        slot = None
        if msg_type == DHCPREQUEST:  # no address asked for: the one this MAC has, else a new one
            slot = self._find_addr(mac)
        elif requested != IPV4_ANY:
            slot = self._request_addr(requested, mac)
        if slot is None:
            slot = self._new_addr(mac)
            if slot is None:
                return None
        self._macs[slot] = mac
        return self._address(slot)

    def _address(self, slot: int) -> bytes:
        return (self._start + slot).to_bytes(4, "big")

    def _new_addr(self, mac: bytes) -> int | None:
        for slot in range(NB_BOOTP_CLIENTS):
            if not self._allocated[slot] or self._macs[slot] == mac:
                self._allocated[slot] = True
                return slot
        return None

    def _request_addr(self, requested: bytes, mac: bytes) -> int | None:
        slot = int.from_bytes(requested, "big") - self._start
        if 0 <= slot < NB_BOOTP_CLIENTS and (not self._allocated[slot] or self._macs[slot] == mac):
            self._allocated[slot] = True
            return slot
        return None

    def _find_addr(self, mac: bytes) -> int | None:
        for slot in range(NB_BOOTP_CLIENTS):
            if self._macs[slot] == mac:
                self._allocated[slot] = True
                return slot
        return None

    def _reply(self, xid: bytes, mac: bytes, address: bytes, reply_type: int) -> bytes:
        host = self._addresses.host_ip
        if reply_type == DHCPNAK:
            options = [(OPT_MSG_TYPE, bytes([DHCPNAK])), (OPT_MESSAGE, NAK_MESSAGE)]
        else:
            options = [
                (OPT_MSG_TYPE, bytes([reply_type])),
                (OPT_SERVER_ID, host),
                (OPT_NETMASK, self._addresses.network.netmask.packed),
                (OPT_ROUTER, host),
                (OPT_DNS, self._addresses.dns_ip),
                (OPT_LEASE_TIME, LEASE_TIME_S.to_bytes(4, "big")),
            ]
        used = len(RFC1533_COOKIE) + sum(2 + len(value) for _, value in options) + 1  # + OPT_END
        reply = dpkt.dhcp.DHCP(
            op=BOOTP_REPLY,
            hrd=1,
            hln=6,
            xid=int.from_bytes(xid, "big"),
            flags=0,
            yiaddr=int.from_bytes(address, "big"),
            siaddr=int.from_bytes(host, "big"),  # the next server: TFTP's
            chaddr=mac.ljust(16, b"\0"),
            opts=options,
            data=b"\0" * (DHCP_OPT_LEN - used),
        )
        return bytes(reply)
