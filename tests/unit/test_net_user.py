"""machine/net: the user-mode network (QEMU 7.2's ``-netdev user``, libslirp 4.7) and ``--net none``.

Guest frames are built with dpkt; every frame for the guest is parsed back and its IPv4, UDP and ICMP
checksums are verified independently of the code under test.
"""

from __future__ import annotations

import logging
import random
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address
from pathlib import Path

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machine.net import NetBackend, NoNetwork, UserNetwork

GUEST_MAC = bytes.fromhex("525400123456")
OTHER_MAC = bytes.fromhex("525400abcdef")
HOST_MAC = bytes.fromhex("52550a000202")  # slirp's special_ethaddr 52:55 + 10.0.2.2
DNS_MAC = bytes.fromhex("52550a000203")
BROADCAST_MAC = b"\xff" * 6


def ip(text: str) -> bytes:
    return IPv4Address(text).packed


GUEST, HOST, DNS, ANY, BROADCAST = ip("10.0.2.15"), ip("10.0.2.2"), ip("10.0.2.3"), ip("0.0.0.0"), ip("255.255.255.255")
CLIENT_PORT = 49152


# Building the guest's frames


def ether(payload: bytes | dpkt.Packet, ethertype: int, dst: bytes = HOST_MAC, src: bytes = GUEST_MAC) -> bytes:
    return bytes(dpkt.ethernet.Ethernet(dst=dst, src=src, type=ethertype, data=payload))


def ip_frame(src: bytes, dst: bytes, proto: int, payload: dpkt.Packet | bytes, **fields: int) -> bytes:
    eth_dst = BROADCAST_MAC if dst == BROADCAST else HOST_MAC
    return ether(dpkt.ip.IP(src=src, dst=dst, p=proto, data=payload, **fields), 0x0800, dst=eth_dst)


def udp_frame(src: bytes, sport: int, dst: bytes, dport: int, payload: bytes) -> bytes:
    return ip_frame(src, dst, 17, dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(payload), data=payload))


def echo_frame(dst: bytes, ident: int, seq: int, data: bytes, src: bytes = GUEST, **fields: int) -> bytes:
    echo = dpkt.icmp.ICMP(type=8, code=0, data=dpkt.icmp.ICMP.Echo(id=ident, seq=seq, data=data))
    return ip_frame(src, dst, 1, echo, **fields)


def arp_frame(op: int, spa: bytes, tpa: bytes, sha: bytes = GUEST_MAC, tha: bytes = b"\0" * 6) -> bytes:
    arp = dpkt.arp.ARP(op=op, sha=sha, spa=spa, tha=tha, tpa=tpa)
    return ether(arp, 0x0806, dst=BROADCAST_MAC if op == 1 else HOST_MAC, src=sha)


def announce(net: UserNetwork, spa: bytes = GUEST, sha: bytes = GUEST_MAC) -> None:
    """A gratuitous ARP: slirp learns the guest's MAC and answers nothing."""
    assert exchange(net, arp_frame(1, spa, spa, sha=sha)) == []


def exchange(net: NetBackend, frame: bytes) -> list[bytes]:
    net.send(frame)
    frames = []
    while (reply := net.receive()) is not None:
        frames.append(reply)
    return frames


# Reading the frames for the guest


def open_ip(frame: bytes, eth_dst: bytes = GUEST_MAC) -> dpkt.ip.IP:
    """Ethernet II from slirp's gateway MAC, carrying IPv4 whose header, UDP and ICMP checksums are right."""
    eth = dpkt.ethernet.Ethernet(frame)
    assert (eth.dst, eth.src, eth.type) == (eth_dst, HOST_MAC, 0x0800)
    raw = frame[14:]
    assert raw[0] == 0x45  # version 4, no options
    assert int.from_bytes(raw[2:4], "big") == len(raw)  # no trailing bytes
    assert dpkt.in_cksum(raw[:20]) == 0
    packet = dpkt.ip.IP(raw)
    body = raw[20:]
    if packet.p == 17:
        assert int.from_bytes(body[4:6], "big") == len(body)
        assert body[6:8] != b"\0\0"  # slirp always sends a UDP checksum
        assert dpkt.in_cksum(struct.pack("!4s4sxBH", packet.src, packet.dst, 17, len(body)) + body) == 0
    elif packet.p == 1:
        assert dpkt.in_cksum(body) == 0
    return packet


def open_udp(frame: bytes, src: tuple[bytes, int], dst: tuple[bytes, int], eth_dst: bytes = GUEST_MAC) -> bytes:
    """The payload of a UDP datagram from slirp (TOS low delay, TTL 64, as udp_output), checking its ends."""
    packet = open_ip(frame, eth_dst)
    assert (packet.p, packet.tos, packet.ttl, packet.df, packet.mf, packet.offset) == (17, 0x10, 64, 0, 0, 0)
    assert ((packet.src, packet.udp.sport), (packet.dst, packet.udp.dport)) == (src, dst)
    return packet.udp.data


@contextmanager
def error_records() -> Iterator[list[logging.LogRecord]]:
    """The ERROR records machine.net logs meanwhile (a frame that broke the network is logged at ERROR)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("machine.net")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def net() -> UserNetwork:
    return UserNetwork(hosts={"files.example": "192.0.2.7"})


# --net none


def test_no_network_is_an_empty_link() -> None:
    link: NetBackend = NoNetwork()
    link.send(arp_frame(1, GUEST, HOST))
    assert link.receive() is None
    link.close()
    assert link.receive() is None


# ARP (slirp.c: arp_input)


@pytest.mark.parametrize(("target", "mac"), [(HOST, HOST_MAC), (DNS, DNS_MAC)])
def test_arp_requests_for_slirps_addresses_are_answered_from_their_special_macs(
    net: UserNetwork, target: bytes, mac: bytes
) -> None:
    (reply,) = exchange(net, arp_frame(1, GUEST, target))
    assert len(reply) == 64  # slirp's arp_reply buffer, zero-padded
    assert reply[42:] == b"\0" * 22
    eth = dpkt.ethernet.Ethernet(reply)
    assert (eth.dst, eth.src, eth.type) == (GUEST_MAC, mac, 0x0806)
    arp = dpkt.arp.ARP(reply[14:42])
    assert (arp.hrd, arp.pro, arp.hln, arp.pln, arp.op) == (1, 0x0800, 6, 4, 2)
    assert (arp.sha, arp.spa, arp.tha, arp.tpa) == (mac, target, GUEST_MAC, GUEST)


def test_arp_requests_for_other_addresses_get_no_answer(net: UserNetwork) -> None:
    assert exchange(net, arp_frame(1, GUEST, ip("10.0.2.4"))) == []
    assert exchange(net, arp_frame(1, ANY, GUEST)) == []  # the guest probing its own address
    assert exchange(net, arp_frame(1, GUEST, ip("192.168.1.1"))) == []
    not_ipv4 = dpkt.arp.ARP(op=1, pro=0x1234, sha=GUEST_MAC, spa=GUEST, tpa=HOST)
    assert exchange(net, ether(not_ipv4, 0x0806, dst=BROADCAST_MAC)) == []


def test_arp_request_padded_to_the_ethernet_minimum_is_answered(net: UserNetwork) -> None:
    assert len(exchange(net, arp_frame(1, GUEST, HOST).ljust(60, b"\0"))) == 1


def test_a_reply_to_an_unknown_guest_waits_for_its_arp_reply(net: UserNetwork) -> None:
    (request,) = exchange(net, echo_frame(HOST, 7, 1, b"ping"))  # the guest's MAC is not known yet
    assert len(request) == 42
    eth = dpkt.ethernet.Ethernet(request)
    assert (eth.dst, eth.src, eth.type) == (BROADCAST_MAC, HOST_MAC, 0x0806)
    arp = dpkt.arp.ARP(request[14:])
    assert (arp.op, arp.sha, arp.spa, arp.tha, arp.tpa) == (1, HOST_MAC, HOST, b"\0" * 6, GUEST)
    (echo_reply,) = exchange(net, arp_frame(2, GUEST, HOST, tha=HOST_MAC))
    assert open_ip(echo_reply).icmp.echo.id == 7


def test_the_guests_mac_is_learned_from_a_request_slirp_answers(net: UserNetwork) -> None:
    exchange(net, arp_frame(1, GUEST, HOST))
    (reply,) = exchange(net, echo_frame(HOST, 1, 1, b""))
    assert dpkt.ethernet.Ethernet(reply).dst == GUEST_MAC


def test_a_gratuitous_arp_updates_the_guests_mac(net: UserNetwork) -> None:
    announce(net)
    announce(net, sha=OTHER_MAC)
    (reply,) = exchange(net, echo_frame(HOST, 1, 1, b""))
    open_ip(reply, eth_dst=OTHER_MAC)


# ICMP (ip_icmp.c: icmp_input, icmp_reflect)


@pytest.mark.parametrize("target", [HOST, DNS])
def test_ping_to_slirps_addresses_is_echoed(net: UserNetwork, target: bytes) -> None:
    announce(net)
    data = bytes(range(56))
    (reply,) = exchange(net, echo_frame(target, 0x1234, 9, data, tos=0x28, df=1))
    packet = open_ip(reply)  # from the gateway's MAC even for 10.0.2.3: slirp's "XXX: not correct"
    assert (packet.src, packet.dst, packet.p) == (target, GUEST, 1)
    assert (packet.ttl, packet.tos, packet.df) == (255, 0x28, 1)
    icmp = packet.icmp
    assert (icmp.type, icmp.code) == (0, 0)
    assert (icmp.echo.id, icmp.echo.seq, icmp.echo.data) == (0x1234, 9, data)


def test_ip_ids_count_up_from_zero_across_protocols(net: UserNetwork) -> None:
    announce(net)
    ids = [open_ip(exchange(net, echo_frame(HOST, 1, seq, b""))[0]).id for seq in range(3)]
    query = dns_query(5, "files.example")
    ids.append(open_ip(exchange(net, udp_frame(GUEST, 5353, DNS, 53, query))[0]).id)
    assert ids == [0, 1, 2, 3]


def test_pings_slirp_cannot_answer_are_dropped(net: UserNetwork) -> None:
    announce(net)
    assert exchange(net, echo_frame(ip("8.8.8.8"), 1, 1, b"x")) == []  # slirp would ping from the host
    assert exchange(net, echo_frame(ip("10.0.2.4"), 1, 1, b"x")) == []
    timestamp = dpkt.icmp.ICMP(type=13, code=0, data=b"\0" * 16)
    assert exchange(net, ip_frame(GUEST, HOST, 1, timestamp)) == []
    frame = bytearray(echo_frame(HOST, 1, 1, b"x"))
    frame[-1] ^= 0xFF  # the ICMP checksum no longer matches
    assert exchange(net, bytes(frame)) == []


# DHCP (bootp.c)


def dhcp_request(
    msg_type: int | None, xid: int, mac: bytes = GUEST_MAC, *options: tuple[int, bytes], ciaddr: bytes = ANY
) -> bytes:
    opts = ([] if msg_type is None else [(53, bytes([msg_type]))]) + list(options)
    request = dpkt.dhcp.DHCP(op=1, xid=xid, chaddr=mac.ljust(16, b"\0"), opts=opts)
    request.ciaddr = int.from_bytes(ciaddr, "big")
    return bytes(request)


def dhcp_exchange(net: UserNetwork, request: bytes, src: bytes = ANY) -> list[dpkt.dhcp.DHCP]:
    """The replies to a request sent as U-Boot sends it (0.0.0.0:68 -> 255.255.255.255:67), all broadcast."""
    frames = exchange(net, udp_frame(src, 68, BROADCAST, 67, request))
    payloads = [open_udp(frame, (HOST, 67), (BROADCAST, 68), eth_dst=BROADCAST_MAC) for frame in frames]
    assert all(len(payload) == 548 for payload in payloads)  # 236-byte header + DHCP_OPT_LEN (312)
    return [dpkt.dhcp.DHCP(payload) for payload in payloads]


SLIRP_OPTIONS = [  # bootp_reply's order, after the message type
    (54, HOST),
    (1, ip("255.255.255.0")),
    (3, HOST),
    (6, DNS),
    (51, (86400).to_bytes(4, "big")),
]


def test_a_u_boot_dhcp_exchange_binds_10_0_2_15(net: UserNetwork) -> None:
    uboot_params = (55, bytes([1, 3, 6, 12, 15, 17, 28, 42]))
    max_size = (57, (576).to_bytes(2, "big"))
    (offer,) = dhcp_exchange(net, dhcp_request(1, 0x01020304, GUEST_MAC, max_size, uboot_params))
    assert (offer.op, offer.hrd, offer.hln, offer.hops, offer.xid) == (2, 1, 6, 0, 0x01020304)
    assert (offer.secs, offer.flags, offer.ciaddr, offer.giaddr) == (0, 0, 0, 0)
    assert (offer.yiaddr, offer.siaddr) == (int(IPv4Address("10.0.2.15")), int(IPv4Address("10.0.2.2")))
    assert offer.chaddr == GUEST_MAC and offer.file == b"\0" * 128 and offer.sname == b"\0" * 64
    assert offer.opts == [(53, b"\x02"), *SLIRP_OPTIONS]
    assert offer.data == b"\0" * (312 - 4 - 3 - 6 * 5 - 1)  # zeros after END fill the options field

    server_id = dict(offer.opts)[54]  # U-Boot asks for the offered address from the server that offered it
    request = dhcp_request(3, 0x01020304, GUEST_MAC, max_size, (50, GUEST), (54, server_id), uboot_params)
    (ack,) = dhcp_exchange(net, request)
    assert (ack.op, ack.xid, ack.yiaddr) == (2, 0x01020304, int(IPv4Address("10.0.2.15")))
    assert ack.opts == [(53, b"\x05"), *SLIRP_OPTIONS]
    assert f"DHCP client bound to address {IPv4Address(ack.yiaddr)}" == "DHCP client bound to address 10.0.2.15"

    (reply,) = exchange(net, echo_frame(HOST, 1, 1, b""))  # the lease taught slirp the guest's MAC
    open_ip(reply)


def test_each_client_mac_gets_its_own_address_and_keeps_it(net: UserNetwork) -> None:
    macs = [GUEST_MAC, OTHER_MAC, GUEST_MAC]
    offers = [dhcp_exchange(net, dhcp_request(1, xid, mac))[0] for xid, mac in enumerate(macs)]
    assert [str(IPv4Address(offer.yiaddr)) for offer in offers] == ["10.0.2.15", "10.0.2.16", "10.0.2.15"]


def test_a_request_for_someone_elses_address_is_refused_by_broadcast_nak(net: UserNetwork) -> None:
    dhcp_exchange(net, dhcp_request(3, 1, GUEST_MAC, (50, GUEST)))
    for wanted in (GUEST, ip("10.0.2.200")):  # taken; outside the sixteen addresses
        (nak,) = dhcp_exchange(net, dhcp_request(3, 2, OTHER_MAC, (50, wanted)))
        assert nak.opts == [(53, b"\x06"), (56, b"requested address not available")]
        assert nak.yiaddr == 0xFFFFFFFF  # slirp puts the broadcast destination there


def test_a_request_without_an_address_gets_the_macs_lease_or_a_new_one(net: UserNetwork) -> None:
    (ack,) = dhcp_exchange(net, dhcp_request(3, 1, OTHER_MAC))  # a client that remembers its address
    assert (ack.opts[0], IPv4Address(ack.yiaddr)) == ((53, b"\x05"), IPv4Address("10.0.2.15"))
    (renew,) = dhcp_exchange(net, dhcp_request(3, 2, OTHER_MAC, ciaddr=GUEST), src=GUEST)  # ciaddr: renewing
    assert IPv4Address(renew.yiaddr) == IPv4Address("10.0.2.15")
    (nak,) = dhcp_exchange(net, dhcp_request(3, 3, GUEST_MAC, ciaddr=GUEST), src=GUEST)  # not this MAC's
    assert nak.opts[0] == (53, b"\x06")


def test_plain_bootp_gets_an_ack_and_other_dhcp_messages_none(net: UserNetwork) -> None:
    (reply,) = dhcp_exchange(net, dhcp_request(None, 1))
    assert reply.opts[0] == (53, b"\x05")  # "Force reply for old BOOTP clients"
    for msg_type in (4, 7, 8):  # DECLINE, RELEASE, INFORM
        assert dhcp_exchange(net, dhcp_request(msg_type, 1)) == []


def test_the_sixteen_addresses_run_out(net: UserNetwork) -> None:
    offers = [dhcp_exchange(net, dhcp_request(1, n, bytes([2, 0, 0, 0, 0, n])))[0] for n in range(16)]
    assert [offer.yiaddr & 0xFF for offer in offers] == list(range(15, 31))
    assert dhcp_exchange(net, dhcp_request(1, 99, bytes([2, 0, 0, 0, 1, 0]))) == []  # "no address left"


# DNS (a fixed table in place of slirp's relay to the host's resolver)


def dns_query(ident: int, name: str, qtype: int = 1) -> bytes:
    return bytes(dpkt.dns.DNS(id=ident, op=dpkt.dns.DNS_RD, qd=[dpkt.dns.DNS.Q(name=name, type=qtype)]))


def dns_exchange(net: UserNetwork, query: bytes) -> dpkt.dns.DNS:
    announce(net)
    (frame,) = exchange(net, udp_frame(GUEST, 5353, DNS, 53, query))
    reply = dpkt.dns.DNS(open_udp(frame, (DNS, 53), (GUEST, 5353)))
    assert (reply.qr, reply.opcode, reply.aa, reply.tc, reply.rd, reply.ra) == (1, 0, 0, 0, 1, 1)
    return reply


@pytest.mark.parametrize("name", ["files.example", "FILES.Example"])
def test_dns_answers_names_in_hosts(net: UserNetwork, name: str) -> None:
    query = dns_query(0xBEEF, name)
    reply = dns_exchange(net, query)
    assert (reply.id, reply.rcode) == (0xBEEF, dpkt.dns.DNS_RCODE_NOERR)
    assert bytes(reply)[12 : len(query)] == query[12:]  # the question, byte for byte
    (answer,) = reply.an
    assert (answer.name, answer.type, answer.cls, answer.ttl) == (name, 1, 1, 3600)
    assert answer.ip == ip("192.0.2.7")


def test_dns_says_nxdomain_for_other_names(net: UserNetwork) -> None:
    reply = dns_exchange(net, dns_query(7, "www.example.com"))
    assert (reply.id, reply.rcode, reply.an, [q.name for q in reply.qd]) == (7, 3, [], ["www.example.com"])


def test_dns_has_no_other_records_for_known_names(net: UserNetwork) -> None:
    reply = dns_exchange(net, dns_query(8, "files.example", qtype=dpkt.dns.DNS_AAAA))
    assert (reply.rcode, reply.an, reply.qd[0].type) == (0, [], dpkt.dns.DNS_AAAA)


def test_dns_refuses_what_it_cannot_parse(net: UserNetwork) -> None:
    two_questions = dpkt.dns.DNS(id=9, qd=[dpkt.dns.DNS.Q(name="a"), dpkt.dns.DNS.Q(name="b")])
    assert dns_exchange(net, bytes(two_questions)).rcode == dpkt.dns.DNS_RCODE_FORMERR
    status = dpkt.dns.DNS(id=10, qd=[])
    status.opcode = 2
    announce(net)
    (frame,) = exchange(net, udp_frame(GUEST, 5353, DNS, 53, bytes(status)))
    assert dpkt.dns.DNS(open_udp(frame, (DNS, 53), (GUEST, 5353))).rcode == dpkt.dns.DNS_RCODE_NOTIMP


def test_hosts_must_map_names_to_ipv4_addresses() -> None:
    with pytest.raises(ValueError):
        UserNetwork(hosts={"x": "not-an-address"})


# TFTP (tftp.c)


@pytest.fixture(scope="module")
def tftp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tftp")
    (root / "image.bin").write_bytes(random.Random(1).randbytes(3 * 1428 + 100))
    (root / "even.bin").write_bytes(random.Random(2).randbytes(2 * 512))
    (root / "sub").mkdir()
    (root / "sub" / "inner.txt").write_bytes(b"inner\n")
    outside = root.parent / "secret.txt"
    outside.write_bytes(b"secret\n")
    (root / "escape").symlink_to(outside)
    (root / "alias").symlink_to(root / "sub" / "inner.txt")
    return root


@pytest.fixture
def tftp_net(tftp_root: Path) -> UserNetwork:
    network = UserNetwork(tftp_dir=tftp_root)
    announce(network)
    return network


def rrq(name: bytes, mode: bytes = b"octet", *options: bytes, opcode: int = 1) -> bytes:
    return struct.pack("!H", opcode) + b"".join(part + b"\0" for part in (name, mode, *options))


def tftp_send(net: UserNetwork, payload: bytes, port: int = CLIENT_PORT) -> list[bytes]:
    """The TFTP packets for the guest: from 10.0.2.2:69, the port the client sent to (no new TID)."""
    frames = exchange(net, udp_frame(GUEST, port, HOST, 69, payload))
    return [open_udp(frame, (HOST, 69), (GUEST, port)) for frame in frames]


def tftp_error(net: UserNetwork, payload: bytes) -> tuple[int, bytes]:
    (reply,) = tftp_send(net, payload)
    opcode, code = struct.unpack_from("!HH", reply)
    assert opcode == 5 and reply.endswith(b"\0")
    return code, reply[4:-1]


def download(net: UserNetwork, first: bytes, block_size: int) -> bytes:
    """Acknowledge every DATA packet after ``first`` until a short one; the concatenated data."""
    data, packet, block = b"", first, 1
    while True:
        assert struct.unpack_from("!HH", packet) == (3, block)
        data += packet[4:]
        if len(packet) - 4 < block_size:
            assert tftp_send(net, struct.pack("!HH", 4, block)) == []  # the session ended
            return data
        assert len(packet) - 4 == block_size
        (packet,) = tftp_send(net, struct.pack("!HH", 4, block))
        block += 1


@pytest.mark.parametrize("name", ["image.bin", "even.bin", "sub/inner.txt", "alias", "/image.bin"])
def test_tftp_sends_a_file_in_512_byte_blocks(tftp_net: UserNetwork, tftp_root: Path, name: str) -> None:
    (first,) = tftp_send(tftp_net, rrq(name.encode()))  # a leading '/' is under the directory, as slirp
    assert download(tftp_net, first, 512) == (tftp_root / name.lstrip("/")).read_bytes()


def test_tftp_answers_u_boots_options_with_an_oack(tftp_net: UserNetwork, tftp_root: Path) -> None:
    options = (b"timeout", b"5", b"tsize", b"0", b"blksize", b"1468", b"windowsize", b"1")  # tftp_send's order
    (oack,) = tftp_send(tftp_net, rrq(b"image.bin", b"octet", *options))
    size = (tftp_root / "image.bin").stat().st_size
    assert oack == struct.pack("!H", 6) + b"tsize\0%d\0blksize\x001428\0" % size  # capped; two options at most
    (first,) = tftp_send(tftp_net, struct.pack("!HH", 4, 0))
    assert download(tftp_net, first, 1428) == (tftp_root / "image.bin").read_bytes()


def test_tftp_blksize_alone_and_tsize_echoed(tftp_net: UserNetwork, tftp_root: Path) -> None:
    (oack,) = tftp_send(tftp_net, rrq(b"image.bin", b"OCTET", b"BLKSIZE", b"1024"))
    assert oack == b"\0\x06blksize\x001024\0"
    (first,) = tftp_send(tftp_net, struct.pack("!HH", 4, 0))
    assert download(tftp_net, first, 1024) == (tftp_root / "image.bin").read_bytes()
    (oack,) = tftp_send(tftp_net, rrq(b"even.bin", b"octet", b"tsize", b"77", b"blksize", b"0"))
    assert oack == b"\0\x06tsize\x0077\0"  # a requested tsize is echoed, blksize 0 ignored


def test_tftp_reads_two_known_options_at_most(tftp_net: UserNetwork) -> None:
    options = (b"blksize", b"1024", b"tsize", b"0", b"blksize", b"600")
    (oack,) = tftp_send(tftp_net, rrq(b"even.bin", b"octet", *options))
    assert oack == b"\0\x06blksize\x001024\0tsize\x001024\0"
    (first,) = tftp_send(tftp_net, struct.pack("!HH", 4, 0))
    assert len(first) == 4 + 1024  # the third option was never read


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        (b"missing.bin", 1, b"File not found"),
        (b"sub", 1, b"File not found"),  # a directory
        (b"../secret.txt", 2, b"Access violation"),
        (b"sub/../../secret.txt", 2, b"Access violation"),
        (b"sub/../image.bin", 2, b"Access violation"),  # slirp refuses any "../", even one that stays inside
        (b"sub/", 2, b"Access violation"),
        (b"", 2, b"Access violation"),
        (b"escape", 2, b"Access violation"),  # a symlink out of the directory
    ],
)
def test_tftp_refuses_files_it_must_not_serve(tftp_net: UserNetwork, name: bytes, code: int, message: bytes) -> None:
    assert tftp_error(tftp_net, rrq(name)) == (code, message)


def test_tftp_reads_an_absolute_path_under_its_directory(tftp_net: UserNetwork, tftp_root: Path) -> None:
    outside = str(tftp_root.parent / "secret.txt").encode()
    assert tftp_error(tftp_net, rrq(outside)) == (1, b"File not found")  # looked for as DIR/<absolute path>


def test_tftp_refuses_writes_and_other_modes(tftp_net: UserNetwork) -> None:
    assert tftp_error(tftp_net, rrq(b"new.bin", opcode=2)) == (2, b"Access violation")
    assert tftp_error(tftp_net, rrq(b"image.bin", b"netascii")) == (4, b"Unsupported transfer mode")
    assert tftp_error(tftp_net, b"\0\x01image.bin\0oct") == (2, b"Access violation")  # mode cut short
    assert tftp_error(tftp_net, rrq(b"image.bin") + b"blksize") == (2, b"Access violation")  # unterminated


def test_tftp_without_a_directory_refuses_everything() -> None:
    net = UserNetwork()
    announce(net)
    assert tftp_error(net, rrq(b"image.bin")) == (2, b"Access violation")


def test_tftp_directory_must_exist(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        UserNetwork(tftp_dir=tmp_path / "missing")


def test_tftp_error_from_the_client_ends_its_session(tftp_net: UserNetwork) -> None:
    tftp_send(tftp_net, rrq(b"image.bin"))
    assert tftp_send(tftp_net, struct.pack("!HH", 5, 0) + b"cancelled\0") == []
    assert tftp_send(tftp_net, struct.pack("!HH", 4, 1)) == []


def test_tftp_sessions_are_per_client_port(tftp_net: UserNetwork, tftp_root: Path) -> None:
    (first_a,) = tftp_send(tftp_net, rrq(b"image.bin"), port=1000)
    (first_b,) = tftp_send(tftp_net, rrq(b"even.bin"), port=2000)
    (second_a,) = tftp_send(tftp_net, struct.pack("!HH", 4, 1), port=1000)
    (second_b,) = tftp_send(tftp_net, struct.pack("!HH", 4, 1), port=2000)
    assert first_a[4:] + second_a[4:] == (tftp_root / "image.bin").read_bytes()[:1024]
    assert first_b[4:] + second_b[4:] == (tftp_root / "even.bin").read_bytes()


# Robustness: the guest is untrusted


def test_other_traffic_is_dropped(net: UserNetwork) -> None:
    announce(net)
    tcp = dpkt.tcp.TCP(sport=40000, dport=80, flags=dpkt.tcp.TH_SYN)
    assert exchange(net, ip_frame(GUEST, HOST, 6, tcp)) == []
    assert exchange(net, udp_frame(GUEST, 1000, HOST, 53, dns_query(1, "files.example"))) == []  # DNS is at .3
    assert exchange(net, udp_frame(GUEST, 1000, DNS, 69, rrq(b"x"))) == []  # TFTP is at .2
    assert exchange(net, ether(b"\x60" + b"\0" * 39, 0x86DD)) == []  # IPv6


def set_bytes(offset: int, value: bytes) -> Callable[[bytearray], None]:
    def damage(frame: bytearray) -> None:
        frame[offset : offset + len(value)] = value

    return damage


def flip(offset: int) -> Callable[[bytearray], None]:
    def damage(frame: bytearray) -> None:
        frame[offset] ^= 0x01

    return damage


def cut(length: int) -> Callable[[bytearray], None]:
    def damage(frame: bytearray) -> None:
        del frame[length:]

    return damage


@pytest.mark.parametrize(
    ("damage", "fix_ip_checksum"),
    [  # the frame: Ethernet 0-13, IPv4 header 14-33 (TTL 22, checksum 24-25), UDP header 34-41
        (cut(30), False),  # IPv4 header truncated
        (set_bytes(14, b"\x4f"), False),  # a 60-byte header in a shorter packet
        (set_bytes(14, b"\x65"), True),  # version 6
        (flip(25), False),  # IPv4 header checksum
        (cut(-1), False),  # shorter than the IPv4 total length
        (set_bytes(38, b"\xff\xff"), False),  # UDP length past the packet
        (set_bytes(38, b"\x00\x04"), False),  # UDP length shorter than its header
        (flip(41), False),  # UDP checksum
        (set_bytes(22, b"\x00"), True),  # TTL 0: slirp sends time-exceeded, this drops
        (set_bytes(20, b"\x20\x00"), True),  # more fragments follow: slirp reassembles, this drops
    ],
)
def test_damaged_frames_are_dropped(
    net: UserNetwork, damage: Callable[[bytearray], None], fix_ip_checksum: bool
) -> None:
    announce(net)
    good = udp_frame(GUEST, 5353, DNS, 53, dns_query(1, "files.example"))
    assert len(exchange(net, good)) == 1
    frame = bytearray(good)
    damage(frame)
    if fix_ip_checksum:  # so that only the intended fault remains
        frame[24:26] = b"\0\0"
        frame[24:26] = dpkt.in_cksum(bytes(frame[14:34])).to_bytes(2, "big")
    with error_records() as errors:
        assert exchange(net, bytes(frame)) == []
    assert errors == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1600))
def test_random_bytes_never_raise(frame: bytes) -> None:
    net = UserNetwork()
    with error_records() as errors:
        net.send(frame)
        net.send(frame[:12] + b"\x08\x00" + frame[12:])  # as IPv4
        net.send(frame[:12] + b"\x08\x06" + frame[12:])  # as ARP
    assert errors == []


@settings(max_examples=300, deadline=None)
@given(port=st.sampled_from([(BROADCAST, 67), (HOST, 67), (HOST, 69), (DNS, 53)]), payload=st.binary(max_size=1500))
def test_random_payloads_to_each_service_never_raise(tftp_root: Path, port: tuple[bytes, int], payload: bytes) -> None:
    net = UserNetwork(tftp_dir=tftp_root, hosts={"files.example": "192.0.2.7"})
    announce(net)
    with error_records() as errors:
        for frame in exchange(net, udp_frame(GUEST, CLIENT_PORT, *port, payload)):
            open_ip(frame, eth_dst=BROADCAST_MAC if port[1] == 67 else GUEST_MAC)
    assert errors == []


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=2, max_size=200))
def test_random_tftp_requests_never_raise(tftp_root: Path, tail: bytes) -> None:
    net = UserNetwork(tftp_dir=tftp_root)
    announce(net)
    with error_records() as errors:
        for opcode in (1, 2, 4, 5):
            for frame in exchange(net, udp_frame(GUEST, CLIENT_PORT, HOST, 69, struct.pack("!H", opcode) + tail)):
                open_ip(frame)
    assert errors == []


# The queue


def test_the_queue_keeps_the_newest_frames_and_counts_the_dropped(caplog: pytest.LogCaptureFixture) -> None:
    net = UserNetwork(queue_limit=4)
    announce(net)
    for seq in range(6):
        net.send(echo_frame(HOST, 1, seq, b""))
    assert "not taking its frames" in caplog.text
    frames = []
    while (frame := net.receive()) is not None:
        frames.append(frame)
    assert [open_ip(frame).icmp.echo.seq for frame in frames] == [2, 3, 4, 5]
    assert net.dropped_frames == 2


def test_close_drops_the_queue_and_later_frames(net: UserNetwork) -> None:
    announce(net)
    net.send(echo_frame(HOST, 1, 1, b""))
    net.close()
    assert net.receive() is None
    assert exchange(net, arp_frame(1, GUEST, HOST)) == []


def test_queue_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        UserNetwork(queue_limit=0)
