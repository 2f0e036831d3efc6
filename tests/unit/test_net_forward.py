"""machine/net: TCP on the user network (sans-IO, with frames), host forwards and the guest's way to the host
(real loopback sockets, free ports, no sleeps), the UDP socket link, and the idle wait in ``HostInputs``.

Guest frames are built with dpkt; every frame for the guest is parsed back with its IPv4 and TCP/UDP checksums
verified independently of the code under test.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machine.inputs import HostInputs
from machine.net import HostForward, HostForwardError, HostGateway, NetBackend, UdpSocketNetwork, UserNetwork
from machine.net.socket_link import SocketAddressError, parse_endpoint
from machine.net.tcp import TcpConnection, TcpState
from machine.net.tcp_segment import ACK, FIN, PSH, RST, SYN, TcpSegment
from tests.unit.test_net_user import error_records

GUEST_MAC = bytes.fromhex("525400123456")
HOST_MAC = bytes.fromhex("52550a000202")
TIMEOUT_S = 5.0  # only so a broken relay fails a test instead of hanging it


def ip(text: str) -> bytes:
    return IPv4Address(text).packed


GUEST, HOST = ip("10.0.2.15"), ip("10.0.2.2")
PEER_PORT, GUEST_PORT = 40000, 7
GUEST_ISS = 5000


# Frames from the guest


def ether(payload: dpkt.Packet | bytes, ethertype: int, dst: bytes = HOST_MAC) -> bytes:
    return bytes(dpkt.ethernet.Ethernet(dst=dst, src=GUEST_MAC, type=ethertype, data=payload))


def announce(net: NetBackend) -> None:
    """A gratuitous ARP: the user network learns the guest's MAC."""
    arp = dpkt.arp.ARP(op=1, sha=GUEST_MAC, spa=GUEST, tha=b"\0" * 6, tpa=GUEST)
    net.send(ether(arp, 0x0806, dst=b"\xff" * 6))


def tcp_frame(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"", *, window: int = 65535,
              mss: int | None = None, dst: bytes = HOST) -> bytes:  # fmt: skip
    options = b"" if mss is None else struct.pack("!BBH", 2, 4, mss)
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=window, opts=options, data=payload)
    tcp.off = (20 + len(options)) // 4
    return ether(dpkt.ip.IP(src=GUEST, dst=dst, p=6, data=tcp), 0x0800)


def udp_frame(sport: int, dst: bytes, dport: int, payload: bytes) -> bytes:
    udp = dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(payload), data=payload)
    return ether(dpkt.ip.IP(src=GUEST, dst=dst, p=17, data=udp), 0x0800)


def drain(net: NetBackend) -> list[bytes]:
    frames = []
    while (frame := net.receive()) is not None:
        frames.append(frame)
    return frames


# Frames for the guest


@dataclass(frozen=True)
class Seg:
    """A TCP segment for the guest, checked: Ethernet from the gateway's MAC, IPv4 and TCP checksums right."""

    src: tuple[bytes, int]
    dst: tuple[bytes, int]
    flags: int
    seq: int
    ack: int
    window: int
    data: bytes
    mss: int | None
    ttl: int


def open_ip(frame: bytes) -> dpkt.ip.IP:
    eth = dpkt.ethernet.Ethernet(frame)
    assert (eth.dst, eth.src, eth.type) == (GUEST_MAC, HOST_MAC, 0x0800)
    raw = frame[14:]
    assert raw[0] == 0x45 and int.from_bytes(raw[2:4], "big") == len(raw) and dpkt.in_cksum(raw[:20]) == 0
    packet = dpkt.ip.IP(raw)
    assert dpkt.in_cksum(struct.pack("!4s4sxBH", packet.src, packet.dst, packet.p, len(raw) - 20) + raw[20:]) == 0
    return packet


def open_tcp(frame: bytes) -> Seg:
    packet = open_ip(frame)
    assert packet.p == 6 and packet.tos == 0 and not packet.df
    tcp = packet.tcp
    options = dict(dpkt.tcp.parse_opts(tcp.opts))
    mss = int.from_bytes(options[2], "big") if 2 in options else None
    return Seg((packet.src, tcp.sport), (packet.dst, tcp.dport), tcp.flags, tcp.seq, tcp.ack, tcp.win, tcp.data, mss,
               packet.ttl)  # fmt: skip


def open_udp(frame: bytes) -> tuple[tuple[bytes, int], tuple[bytes, int], bytes]:
    packet = open_ip(frame)
    assert packet.p == 17
    return (packet.src, packet.udp.sport), (packet.dst, packet.udp.dport), packet.udp.data


class Guest:
    """The guest's end of one TCP connection with the user network, driven segment by segment."""

    def __init__(self, net: NetBackend, port: int = GUEST_PORT, peer: tuple[bytes, int] = (HOST, PEER_PORT)) -> None:
        self.net = net
        self.port = port
        self.peer = peer
        self.seq = GUEST_ISS
        self.ack = 0

    def send(self, flags: int, payload: bytes = b"", *, seq: int | None = None, ack: int | None = None,
             window: int = 65535, mss: int | None = None) -> list[Seg]:  # fmt: skip
        """One segment (``seq`` defaults to where the guest's stream stands, advanced past what it carries)."""
        if seq is None:
            seq = self.seq
            self.seq = (self.seq + len(payload) + bool(flags & SYN) + bool(flags & FIN)) & 0xFFFFFFFF
        frame = tcp_frame(self.port, self.peer[1], seq, self.ack if ack is None else ack, flags, payload,
                          window=window, mss=mss, dst=self.peer[0])  # fmt: skip
        self.net.send(frame)
        return self.segments()

    def segments(self) -> list[Seg]:
        segments = [open_tcp(frame) for frame in drain(self.net)]
        for seg in segments:
            assert (seg.src, seg.dst) == (self.peer, (GUEST, self.port))
        return segments

    def accept_syn(self, mss: int = 1460, window: int = 65535) -> TcpConnection:
        """Take the user network's SYN to this port and complete the handshake."""
        (syn,) = self.segments()
        assert (syn.flags, syn.mss, syn.window, syn.ttl) == (SYN, 1460, 65535, 64)
        self.ack = syn.seq + 1
        (ack,) = self.send(SYN | ACK, mss=mss, window=window)
        assert (ack.flags, ack.seq, ack.ack) == (ACK, syn.seq + 1, GUEST_ISS + 1)
        return self.find()

    def find(self) -> TcpConnection:
        net = self.net.network if isinstance(self.net, HostGateway) else self.net
        assert isinstance(net, UserNetwork)
        (conn,) = [c for c in net.relay.connections if c.remote == (GUEST, self.port) and c.local == self.peer]
        return conn


@contextmanager
def no_errors() -> Iterator[None]:
    """Fail if machine.net logs an ERROR meanwhile (a frame that broke the network is logged, not raised)."""
    with error_records() as records:
        yield
    assert records == []


@pytest.fixture
def net() -> UserNetwork:
    net = UserNetwork()
    announce(net)
    return net


def established(net: UserNetwork, mss: int = 1460, window: int = 65535) -> tuple[Guest, TcpConnection]:
    """A host forward's connection to the guest's port 7, handshake done."""
    net.relay.open((HOST, PEER_PORT), (GUEST, GUEST_PORT))
    guest = Guest(net)
    return guest, guest.accept_syn(mss, window)


# The handshake


def test_a_host_forward_connects_from_the_gateway_with_slirps_syn(net: UserNetwork) -> None:
    net.relay.open((HOST, PEER_PORT), (GUEST, GUEST_PORT))
    guest = Guest(net)
    (syn,) = guest.segments()
    assert (syn.flags, syn.seq, syn.ack, syn.window, syn.mss, syn.data) == (SYN, 1, 0, 65535, 1460, b"")
    guest.ack = 2
    (ack,) = guest.send(SYN | ACK, mss=1000, window=30000)
    assert (ack.flags, ack.seq, ack.ack, ack.window) == (ACK, 2, GUEST_ISS + 1, 65535)
    assert guest.find().state == TcpState.ESTABLISHED


def test_a_repeated_syn_ack_is_answered_with_an_ack(net: UserNetwork) -> None:
    guest, conn = established(net)
    (ack,) = guest.send(SYN | ACK, seq=GUEST_ISS, ack=2, mss=1460)  # our ACK "was lost"
    assert (ack.flags, ack.seq, ack.ack) == (ACK, 2, GUEST_ISS + 1)
    assert conn.state == TcpState.ESTABLISHED


def test_each_connection_starts_at_slirps_next_iss(net: UserNetwork) -> None:
    for port in (40000, 40001):
        net.relay.open((HOST, port), (GUEST, GUEST_PORT))
    assert [open_tcp(frame).seq for frame in drain(net)] == [1, 64001]


def test_the_syn_waits_for_the_guests_mac() -> None:
    net = UserNetwork()
    net.relay.open((HOST, PEER_PORT), (GUEST, GUEST_PORT))
    (request,) = drain(net)
    assert dpkt.ethernet.Ethernet(request).type == 0x0806
    arp = dpkt.arp.ARP(op=2, sha=GUEST_MAC, spa=GUEST, tha=HOST_MAC, tpa=HOST)
    net.send(ether(arp, 0x0806))
    (syn,) = [open_tcp(frame) for frame in drain(net)]
    assert syn.flags == SYN


def test_a_guest_that_refuses_resets_the_connection(net: UserNetwork) -> None:
    conn = net.relay.open((HOST, PEER_PORT), (GUEST, GUEST_PORT))
    guest = Guest(net)
    (syn,) = guest.segments()
    assert guest.send(RST | ACK, seq=0, ack=syn.seq + 1) == []
    assert conn.state == TcpState.CLOSED and conn.was_reset
    assert net.relay.connections == []


def test_a_syn_ack_for_something_else_gets_a_reset(net: UserNetwork) -> None:
    conn = net.relay.open((HOST, PEER_PORT), (GUEST, GUEST_PORT))
    guest = Guest(net)
    guest.segments()
    (reset,) = guest.send(SYN | ACK, ack=12345)
    assert (reset.flags, reset.seq) == (RST, 12345)
    assert conn.state == TcpState.SYN_SENT


def test_the_host_closing_before_the_guest_answers_forgets_the_connection(net: UserNetwork) -> None:
    conn = net.relay.open((HOST, PEER_PORT), (GUEST, GUEST_PORT))
    guest = Guest(net)
    (syn,) = guest.segments()
    conn.shutdown()  # slirp's tcp_sockclosed in SYN-SENT: no segment at all
    assert guest.segments() == []
    guest.ack = syn.seq + 1
    (reset,) = guest.send(SYN | ACK)  # the guest's late answer finds no connection
    assert (reset.flags, reset.seq, reset.ttl) == (RST, syn.seq + 1, 255)


# Data


def test_host_data_is_cut_at_the_guests_mss(net: UserNetwork) -> None:
    guest, conn = established(net, mss=1000)
    assert conn.send(bytes(2500)) == 2500
    segments = guest.segments()
    assert [len(s.data) for s in segments] == [1000, 1000, 500]
    assert [s.seq for s in segments] == [2, 1002, 2002]
    assert [s.flags for s in segments] == [ACK, ACK, ACK | PSH]
    assert conn.send_space == 65535 - 2500
    assert guest.send(ACK, ack=2502) == []
    assert conn.send_space == 65535


@pytest.mark.parametrize(("size", "cuts"), [(1459, [1459]), (1460, [1460]), (1461, [1460, 1]), (2920, [1460, 1460])])
def test_segments_around_the_mss(net: UserNetwork, size: int, cuts: list[int]) -> None:
    guest, conn = established(net, mss=9000)  # more than slirp's own 1460: 1460 it is
    conn.send(bytes(range(256)) * (size // 256) + bytes(size % 256))
    assert [len(s.data) for s in guest.segments()] == cuts


def test_a_guest_without_an_mss_option_gets_536_bytes(net: UserNetwork) -> None:
    net.relay.open((HOST, PEER_PORT), (GUEST, GUEST_PORT))
    guest = Guest(net)
    (syn,) = guest.segments()
    guest.ack = syn.seq + 1
    guest.send(SYN | ACK)
    guest.find().send(bytes(600))
    assert [len(s.data) for s in guest.segments()] == [536, 64]


def test_guest_data_reaches_the_host_in_order_and_is_acknowledged(net: UserNetwork) -> None:
    guest, conn = established(net)
    (ack,) = guest.send(ACK | PSH, b"a" * 1460)
    assert (ack.flags, ack.ack, ack.window) == (ACK, GUEST_ISS + 1 + 1460, 65535 - 1460)
    (ack,) = guest.send(ACK | PSH, b"b")
    assert ack.ack == GUEST_ISS + 1 + 1461
    assert conn.received == 1461
    assert conn.read(1000) == b"a" * 1000
    assert conn.read() == b"a" * 460 + b"b"


def test_the_guests_window_limits_what_is_sent_and_a_zero_window_stops_it(net: UserNetwork) -> None:
    guest, conn = established(net, window=1500)
    conn.send(bytes(4000))
    assert [len(s.data) for s in guest.segments()] == [1460, 40]
    assert guest.send(ACK, ack=1502, window=0) == []  # everything taken, no room: nothing more goes
    conn.send(b"x")
    assert guest.segments() == []
    segments = guest.send(ACK, ack=1502, window=3000)  # the window update
    assert [(s.seq, len(s.data)) for s in segments] == [(1502, 1460), (2962, 1041)]


def test_the_user_networks_zero_window_drops_data_until_the_host_reads() -> None:
    conn = TcpConnection.listen(
        TcpSegment(GUEST, 1234, HOST, 80, GUEST_ISS, 0, SYN, 65535, mss=1460), iss=1, buffer_size=3000
    )
    conn.accept()
    conn.segment_received(TcpSegment(GUEST, 1234, HOST, 80, GUEST_ISS + 1, 2, ACK, 65535))
    conn.take_segments()
    seq = GUEST_ISS + 1
    for chunk in (b"a" * 1460, b"b" * 1460, b"c" * 80):
        conn.segment_received(TcpSegment(GUEST, 1234, HOST, 80, seq, 2, ACK, 65535, chunk))
        seq += len(chunk)
    assert conn.take_segments()[-1].window == 0
    conn.segment_received(TcpSegment(GUEST, 1234, HOST, 80, seq, 2, ACK, 65535, b"d"))  # no room: not taken
    (ack,) = conn.take_segments()
    assert (ack.ack, ack.window) == (seq, 0)
    assert conn.read(2000) == b"a" * 1460 + b"b" * 540
    (update,) = conn.take_segments()  # the window opened from zero: the guest is told
    assert (update.flags, update.ack, update.window) == (ACK, seq, 2000)
    conn.segment_received(TcpSegment(GUEST, 1234, HOST, 80, seq, 2, ACK, 65535, b"d"))
    assert conn.read() == b"b" * 920 + b"c" * 80 + b"d"


def test_a_retransmitted_segment_is_acknowledged_and_delivered_once(net: UserNetwork) -> None:
    guest, conn = established(net)
    start = guest.seq
    (first,) = guest.send(ACK, b"0123456789")
    (again,) = guest.send(ACK, b"0123456789", seq=start)
    assert first.ack == again.ack == start + 10
    (overlap,) = guest.send(ACK, b"56789abcde", seq=start + 5)
    assert overlap.ack == start + 15
    assert conn.read() == b"0123456789abcde"


def test_a_segment_beyond_a_gap_is_dropped_with_a_duplicate_ack(net: UserNetwork) -> None:
    guest, conn = established(net)
    start = guest.seq
    (dup,) = guest.send(ACK, b"later", seq=start + 5)
    assert dup.ack == start
    guest.send(ACK, b"first", seq=start)
    (ack,) = guest.send(ACK, b"later", seq=start + 5)
    assert ack.ack == start + 10
    assert conn.read() == b"firstlater"


@pytest.mark.parametrize("offset", [-70000, 70000, 1 << 31])
def test_segments_outside_the_window_get_an_ack_and_change_nothing(net: UserNetwork, offset: int) -> None:
    guest, conn = established(net)
    (ack,) = guest.send(ACK, b"stray", seq=(guest.seq + offset) & 0xFFFFFFFF)
    assert (ack.flags, ack.ack) == (ACK, guest.seq)
    assert conn.received == 0 and conn.state == TcpState.ESTABLISHED


def test_an_ack_for_data_never_sent_is_dropped_with_an_ack(net: UserNetwork) -> None:
    guest, conn = established(net)
    (ack,) = guest.send(ACK, b"data", ack=999999)
    assert (ack.seq, ack.ack) == (2, guest.seq - 4)  # the data was not taken
    assert conn.received == 0


def test_three_duplicate_acks_send_again_from_the_first_unacknowledged_byte(net: UserNetwork) -> None:
    guest, conn = established(net, mss=1000)
    conn.send(bytes(3000))
    assert len(guest.segments()) == 3
    assert guest.send(ACK, ack=1002) == []  # the first segment arrived, the second was lost
    assert guest.send(ACK, ack=1002) == []
    assert guest.send(ACK, ack=1002) == []
    resent = guest.send(ACK, ack=1002)
    assert [(s.seq, len(s.data)) for s in resent] == [(1002, 1000), (2002, 1000)]


# Closing


def test_the_guest_closes_first(net: UserNetwork) -> None:
    guest, conn = established(net)
    (ack,) = guest.send(ACK | FIN, b"bye")
    assert ack.ack == guest.seq  # data and FIN
    assert conn.state == TcpState.CLOSE_WAIT and not conn.at_eof
    assert conn.read() == b"bye" and conn.at_eof
    conn.send(b"last words")
    (data,) = guest.segments()
    assert data.data == b"last words"
    conn.shutdown()
    (fin,) = guest.segments()
    assert (fin.flags, fin.seq) == (FIN | ACK, 12)
    assert conn.state == TcpState.LAST_ACK
    assert guest.send(ACK, ack=13) == []
    assert conn.state == TcpState.CLOSED and net.relay.connections == []
    (reset,) = guest.send(ACK, ack=13)  # the connection is gone
    assert (reset.flags, reset.seq, reset.ttl) == (RST, 13, 255)


def test_the_host_closes_first(net: UserNetwork) -> None:
    guest, conn = established(net)
    conn.send(b"goodbye")
    conn.shutdown()
    data, fin = guest.segments()
    assert (data.flags, data.data, fin.flags, fin.seq) == (ACK | PSH, b"goodbye", FIN | ACK, 9)
    assert conn.state == TcpState.FIN_WAIT_1 and conn.send_space == 0
    guest.send(ACK, ack=10)
    assert conn.state == TcpState.FIN_WAIT_2
    (ack,) = guest.send(ACK | FIN, b"ok")
    assert ack.ack == guest.seq and conn.state == TcpState.TIME_WAIT
    (again,) = guest.send(ACK | FIN, b"ok", seq=guest.seq - 3)  # the guest repeats its FIN: acknowledged again
    assert again.ack == guest.seq
    assert conn.read() == b"ok" and conn.at_eof


def test_both_close_at_once(net: UserNetwork) -> None:
    guest, conn = established(net)
    conn.shutdown()
    (fin,) = guest.segments()
    assert fin.flags == FIN | ACK
    (ack,) = guest.send(ACK | FIN, ack=2)  # the guest's FIN crosses ours
    assert ack.ack == guest.seq and conn.state == TcpState.CLOSING
    guest.send(ACK, ack=3)
    assert conn.state == TcpState.TIME_WAIT


def test_a_reset_from_the_guest_ends_the_connection(net: UserNetwork) -> None:
    guest, conn = established(net)
    guest.send(ACK, b"unread")
    assert guest.send(RST, seq=guest.seq) == []
    assert conn.state == TcpState.CLOSED and conn.was_reset and conn.received == 0


def test_a_reset_not_at_the_expected_sequence_number_gets_a_challenge_ack(net: UserNetwork) -> None:
    guest, conn = established(net)
    (challenge,) = guest.send(RST, seq=guest.seq + 100)
    assert (challenge.flags, challenge.ack) == (ACK, guest.seq)
    assert guest.send(RST, seq=guest.seq + 100000) == []  # outside the window: ignored
    (challenge,) = guest.send(SYN, seq=guest.seq + 10)  # a SYN on an established connection
    assert challenge.flags == ACK
    assert conn.state == TcpState.ESTABLISHED


def test_abort_resets_the_guest(net: UserNetwork) -> None:
    guest, conn = established(net)
    conn.send(b"dropped")
    guest.segments()
    conn.abort()
    assert conn.send(b"more") == 0
    (reset,) = guest.segments()
    assert (reset.flags, reset.seq, reset.ack) == (RST | ACK, 9, guest.seq)
    assert net.relay.connections == []


# The guest connecting to the gateway (slirp: to the host's loopback)


def test_a_guests_syn_to_the_gateway_waits_for_the_host_then_gets_syn_ack(net: UserNetwork) -> None:
    guest = Guest(net, port=33000, peer=(HOST, 8080))
    assert guest.send(SYN, mss=1200) == []
    assert guest.send(SYN, seq=GUEST_ISS) == []  # repeated while the host connects: still no answer
    (conn,) = net.relay.take_connect_requests()
    assert (conn.local, conn.remote, conn.state) == ((HOST, 8080), (GUEST, 33000), TcpState.LISTEN)
    conn.accept()
    (syn_ack,) = guest.segments()
    assert (syn_ack.flags, syn_ack.ack, syn_ack.mss) == (SYN | ACK, GUEST_ISS + 1, 1460)
    (again,) = guest.send(SYN, seq=GUEST_ISS)  # the guest missed it
    assert again == syn_ack
    guest.ack = syn_ack.seq + 1
    (ack,) = guest.send(ACK, b"GET /")
    assert ack.ack == GUEST_ISS + 6
    assert conn.state == TcpState.ESTABLISHED and conn.read() == b"GET /"
    conn.send(bytes(1300))
    assert [len(s.data) for s in guest.segments()] == [1200, 100]


def test_a_refused_host_connection_resets_the_guest(net: UserNetwork) -> None:
    guest = Guest(net, port=33000, peer=(HOST, 8080))
    guest.send(SYN)
    (conn,) = net.relay.take_connect_requests()
    conn.refuse()
    (reset,) = guest.segments()
    assert (reset.flags, reset.seq, reset.ack) == (RST | ACK, 0, GUEST_ISS + 1)


def test_segments_nobody_takes(net: UserNetwork) -> None:
    guest = Guest(net, port=33000, peer=(HOST, 8080))
    (reset,) = guest.send(ACK, b"x", ack=77)
    assert (reset.flags, reset.seq, reset.ttl) == (RST, 77, 255)
    (reset,) = guest.send(FIN, b"")
    assert (reset.flags, reset.ack) == (RST | ACK, guest.seq)
    assert guest.send(RST) == []  # a reset is never answered
    other = Guest(net, port=33000, peer=(ip("192.0.2.1"), 80))
    assert other.send(SYN) == [] and net.relay.take_connect_requests() == []  # no route: dropped


# Properties


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=1, max_size=5000), cuts=st.lists(st.integers(0, 5000), max_size=12),
       repeats=st.lists(st.integers(0, 11), max_size=6))  # fmt: skip
def test_any_cutting_with_repeats_delivers_the_stream_once(data: bytes, cuts: list[int], repeats: list[int]) -> None:
    net = UserNetwork()
    announce(net)
    guest, conn = established(net)
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    pieces = [(bounds[i], data[bounds[i] : bounds[i + 1]]) for i in range(len(bounds) - 1)]
    order = []
    for index in range(len(pieces)):
        order.append(index)
        order.extend(r for r in repeats if r < index)  # old segments sent again
    start = guest.seq
    for position, index in enumerate(order):
        offset, piece = pieces[index]
        (ack,) = guest.send(ACK, piece, seq=start + offset)
        newest_offset, newest = pieces[max(order[: position + 1])]
        assert ack.ack == start + newest_offset + len(newest)  # a repeat is acknowledged where the stream stands
    assert conn.read(len(data) + 1) == data


@settings(max_examples=200, deadline=None)
@given(flags=st.integers(0, 0x3F), seq=st.integers(0, 0xFFFFFFFF), ack=st.integers(0, 0xFFFFFFFF),
       window=st.integers(0, 65535), payload=st.binary(max_size=100))  # fmt: skip
def test_random_segments_never_break_a_connection(flags: int, seq: int, ack: int, window: int, payload: bytes) -> None:
    net = UserNetwork()
    announce(net)
    guest, conn = established(net)
    conn.send(b"pending")
    guest.segments()
    with no_errors():
        guest.send(flags, payload, seq=seq, ack=ack, window=window)
        conn.send(b"more")
        conn.shutdown()
        guest.segments()  # every frame parses, with right checksums


# hostfwd= rules (QEMU's slirp_hostfwd spelling)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp::5555-:22", HostForward("tcp", "127.0.0.1", 5555, "10.0.2.15", 22)),
        ("::0-:7", HostForward("tcp", "127.0.0.1", 0, "10.0.2.15", 7)),
        ("udp:127.0.0.1:6000-10.0.2.16:9", HostForward("udp", "127.0.0.1", 6000, "10.0.2.16", 9)),
        ("tcp:0.0.0.0:80-:8080", HostForward("tcp", "0.0.0.0", 80, "10.0.2.15", 8080)),
    ],
)
def test_hostfwd_rules_parse_as_qemu_spells_them(text: str, expected: HostForward) -> None:
    assert HostForward.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    ["tcp:5555-:22", "tcp::5555:22", "sctp::1-:2", "tcp::99999-:22", "tcp::1-:0", "tcp::x-:22", "tcp:host:1-:2",
     "tcp::1-10.0.3.15:22", "tcp::1-10.0.2.2:22", "tcp::1-:"],
)  # fmt: skip
def test_bad_hostfwd_rules_are_refused(text: str) -> None:
    with pytest.raises(HostForwardError):
        HostForward.parse(text)


# The host sockets (HostGateway): real loopback sockets on free ports


@pytest.fixture
def gateway() -> Iterator[HostGateway]:
    gateway = HostGateway(UserNetwork(), [HostForward.parse("tcp::0-:7"), HostForward.parse("udp::0-:9")])
    announce(gateway)
    yield gateway
    gateway.close()


def bound(gateway: HostGateway, protocol: str) -> tuple[str, int]:
    (address,) = [where for forward, where in gateway.bound if forward.protocol == protocol]
    return address


def frames_when_ready(gateway: HostGateway) -> list[bytes]:
    """Block (selector, bounded) until a host socket is ready, then the frames it made."""
    assert gateway.wait(TIMEOUT_S), "no host socket became ready"
    return drain(gateway)


def connected(gateway: HostGateway) -> tuple[socket.socket, Guest, TcpConnection]:
    client = socket.create_connection(bound(gateway, "tcp"), timeout=TIMEOUT_S)
    guest = Guest(gateway, peer=(HOST, client.getsockname()[1]))
    (syn,) = [open_tcp(frame) for frame in frames_when_ready(gateway)]
    assert (syn.flags, syn.src, syn.dst) == (SYN, (HOST, client.getsockname()[1]), (GUEST, 7))
    guest.ack = syn.seq + 1
    guest.send(SYN | ACK, mss=1460)
    return client, guest, guest.find()


def test_hostfwd_listens_on_the_loopback_by_default(gateway: HostGateway) -> None:
    assert bound(gateway, "tcp")[0] == "127.0.0.1" and bound(gateway, "tcp")[1] != 0
    assert bound(gateway, "udp")[0] == "127.0.0.1"
    assert HostForward.parse("tcp::0-:7").describe(("127.0.0.1", 43121)) == "tcp 127.0.0.1:43121 -> 10.0.2.15:7"
    assert gateway.listening


def test_a_host_connection_relays_bytes_both_ways_and_closes_each_side(gateway: HostGateway) -> None:
    client, guest, conn = connected(gateway)
    with client:
        client.sendall(b"hello")
        (data,) = [open_tcp(frame) for frame in frames_when_ready(gateway)]
        assert data.data == b"hello"
        guest.send(ACK | PSH, b"world", ack=data.seq + 5)
        assert client.recv(100) == b"world"
        guest.send(ACK | FIN)
        assert client.recv(100) == b""  # the guest's FIN: end of stream for the host
        client.shutdown(socket.SHUT_WR)
        (fin,) = [open_tcp(frame) for frame in frames_when_ready(gateway)]
        assert fin.flags == FIN | ACK and conn.state == TcpState.LAST_ACK
        guest.send(ACK, ack=fin.seq + 1)
    assert conn.state == TcpState.CLOSED and gateway.network.relay.connections == []
    assert gateway.listening  # the listener stays


def test_the_host_reads_only_what_the_guests_window_takes(gateway: HostGateway) -> None:
    client = socket.create_connection(bound(gateway, "tcp"), timeout=TIMEOUT_S)
    with client:
        guest = Guest(gateway, peer=(HOST, client.getsockname()[1]))
        (syn,) = [open_tcp(frame) for frame in frames_when_ready(gateway)]
        guest.ack = syn.seq + 1
        guest.send(SYN | ACK, mss=1000, window=3000)
        client.sendall(bytes(20000))
        sent: list[Seg] = []
        while sum(len(s.data) for s in sent) < 3000:
            sent += [open_tcp(frame) for frame in frames_when_ready(gateway)]
        assert [len(s.data) for s in sent] == [1000, 1000, 1000]
        assert drain(gateway) == []
        assert guest.find().send_space < 65535  # read into the relay's buffer, waiting for the window


def test_a_reset_is_passed_on_both_ways(gateway: HostGateway) -> None:
    client, guest, conn = connected(gateway)
    with client:
        guest.send(RST, seq=guest.seq)
        assert client.recv(100) == b""  # as QEMU 7.2's slirp: the host's socket is closed (end of file)
    client, guest, conn = connected(gateway)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # a reset from the host
    (reset,) = [open_tcp(frame) for frame in frames_when_ready(gateway)]
    assert reset.flags & RST and conn.state == TcpState.CLOSED


def test_a_udp_forward_relays_datagrams_and_answers_the_last_sender(gateway: HostGateway) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(TIMEOUT_S)
        client.bind(("127.0.0.1", 0))
        client.sendto(b"ping", bound(gateway, "udp"))
        (frame,) = frames_when_ready(gateway)
        src, dst, payload = open_udp(frame)
        assert (src, dst, payload) == ((HOST, client.getsockname()[1]), (GUEST, 9), b"ping")
        gateway.send(udp_frame(9, HOST, src[1], b"pong"))
        assert client.recvfrom(100) == (b"pong", bound(gateway, "udp"))


def test_a_datagram_longer_than_the_mtu_reaches_the_guest_in_fragments(gateway: HostGateway) -> None:
    payload = bytes(range(256)) * 16  # 4096 bytes: three fragments of at most 1480 data bytes
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.bind(("127.0.0.1", 0))
        client.sendto(payload, bound(gateway, "udp"))
        frames = frames_when_ready(gateway)
    packets = []
    for frame in frames:
        assert dpkt.ethernet.Ethernet(frame).dst == GUEST_MAC and len(frame) <= 1514
        raw = frame[14:]
        assert dpkt.in_cksum(raw[:20]) == 0 and int.from_bytes(raw[2:4], "big") == len(raw)
        packets.append(dpkt.ip.IP(raw))
    assert [(p.mf, p.offset * 8) for p in packets] == [(1, 0), (1, 1480), (0, 2960)]  # dpkt: 8-byte units
    assert len({p.id for p in packets}) == 1
    datagram = b"".join(bytes(p.data) for p in packets)  # the UDP header and data, checksum over all of it
    assert dpkt.in_cksum(struct.pack("!4s4sxBH", HOST, GUEST, 17, len(datagram)) + datagram) == 0
    assert datagram[8:] == payload


@pytest.fixture
def plain() -> Iterator[HostGateway]:
    """``--net user`` with no forward: only the guest's way to the host."""
    gateway = HostGateway(UserNetwork())
    announce(gateway)
    yield gateway
    gateway.close()


def test_the_guests_udp_to_the_gateway_reaches_the_hosts_loopback(plain: HostGateway) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as echo:
        echo.settimeout(TIMEOUT_S)
        echo.bind(("127.0.0.1", 0))
        port = echo.getsockname()[1]
        plain.send(udp_frame(5000, HOST, port, b"echo me"))
        payload, sender = echo.recvfrom(100)
        assert payload == b"echo me" and sender[0] == "127.0.0.1"
        echo.sendto(payload, sender)
        (frame,) = frames_when_ready(plain)
        assert open_udp(frame) == ((HOST, port), (GUEST, 5000), b"echo me")
    assert plain.listening  # the guest port's host socket


def test_the_guests_tcp_to_the_gateway_reaches_the_hosts_loopback(plain: HostGateway) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(TIMEOUT_S)
        port = server.getsockname()[1]
        guest = Guest(plain, port=33000, peer=(HOST, port))
        segments = guest.send(SYN, mss=1460)  # the SYN-ACK, if the loopback connect() ended at once
        accepted, _ = server.accept()
        with accepted:
            accepted.settimeout(TIMEOUT_S)
            while not segments:
                segments = [open_tcp(frame) for frame in frames_when_ready(plain)]
            (syn_ack,) = segments
            assert syn_ack.flags == SYN | ACK
            guest.ack = syn_ack.seq + 1
            guest.send(ACK | PSH, b"request")
            assert accepted.recv(100) == b"request"
            accepted.sendall(b"response")
            (data,) = [open_tcp(frame) for frame in frames_when_ready(plain)]
            assert data.data == b"response"


def test_the_guests_tcp_to_a_closed_host_port_is_reset(plain: HostGateway) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        guest = Guest(plain, port=33000, peer=(HOST, port))
        segments = guest.send(SYN)
        while not segments:
            segments = [open_tcp(frame) for frame in frames_when_ready(plain)]
    (reset,) = segments
    assert (reset.flags, reset.ack) == (RST | ACK, GUEST_ISS + 1)


def test_wait_without_host_sockets_returns_at_once(plain: HostGateway) -> None:
    assert not plain.listening
    assert plain.wait(TIMEOUT_S) is False


def test_a_busy_port_is_an_os_error(gateway: HostGateway) -> None:
    rule = HostForward("tcp", "127.0.0.1", bound(gateway, "tcp")[1], "10.0.2.15", 7)
    with pytest.raises(OSError):
        HostGateway(UserNetwork(), [rule])


# HostInputs.idle: an idle guest wakes when the host connects


def test_an_idle_guest_wakes_when_the_host_connects(gateway: HostGateway) -> None:
    inputs = HostInputs(None, networks={7: gateway})
    assert inputs.idle(0, None).forever is False  # a listener is open: never idle forever
    with socket.create_connection(bound(gateway, "tcp"), timeout=TIMEOUT_S):
        for _ in range(int(TIMEOUT_S / 0.1)):  # each idle call waits at most 0.1 s
            if inputs.frames_due(0, 7):
                break
            assert inputs.idle(0, None).forever is False
        (syn,) = [open_tcp(frame) for frame in inputs.poll_frames(0, 7, 8)]
        assert syn.flags == SYN


def test_an_idle_guest_with_the_uart_open_wakes_for_either(gateway: HostGateway) -> None:
    read_end, write_end = os.pipe()
    try:
        inputs = HostInputs(read_end, networks={7: gateway})
        os.write(write_end, b"key")
        received = b""
        for _ in range(int(TIMEOUT_S / 0.1)):
            received += inputs.poll_input(0, 16)
            if received:
                break
            assert inputs.idle(0, None).forever is False
        assert received == b"key"
        with socket.create_connection(bound(gateway, "tcp"), timeout=TIMEOUT_S):
            for _ in range(int(TIMEOUT_S / 0.1)):
                if inputs.frames_due(0, 7):
                    break
                inputs.idle(0, None)
            assert open_tcp(inputs.poll_frames(0, 7, 1)[0]).flags == SYN
    finally:
        os.close(write_end)  # the reader thread sees the end of input and stops


def test_an_idle_guest_without_host_sockets_idles_forever() -> None:
    inputs = HostInputs(None, networks={7: HostGateway(UserNetwork())})
    assert inputs.idle(0, None).forever is True


# --net socket,udp=: the UDP link


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_udp_links_exchange_frames() -> None:
    a_port = free_udp_port()
    b = UdpSocketNetwork(("127.0.0.1", a_port), ("127.0.0.1", 0))
    a = UdpSocketNetwork(b.local, ("127.0.0.1", a_port))
    try:
        frame = bytes(range(60)) * 25  # 1500 bytes, sent as they are: no length prefix
        a.send(frame)
        assert b.wait(TIMEOUT_S) and b.receive() == frame
        b.send(b"\xff" * 42)
        assert a.wait(TIMEOUT_S) and a.receive() == b"\xff" * 42
        assert a.receive() is None and a.listening
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.sendto(b"not from the peer", b.local)
            assert b.wait(TIMEOUT_S) and b.receive() is None  # only the udp= end is heard
    finally:
        a.close()
        b.close()
    assert not a.listening and a.wait(TIMEOUT_S) is False


def test_udp_link_endpoints() -> None:
    assert parse_endpoint("127.0.0.1:5000") == ("127.0.0.1", 5000)
    assert parse_endpoint(":5000") == ("127.0.0.1", 5000)  # never every interface
    assert parse_endpoint("localhost:0", allow_port_zero=True)[1] == 0
    for bad in ("127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "a:b"):
        with pytest.raises(SocketAddressError):
            parse_endpoint(bad)
