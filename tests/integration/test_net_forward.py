"""Host forwards and the UDP socket link with a real guest: netping (which has no TCP stack) on the virt board.

- ``--net user,hostfwd=tcp::0-:7``: the CLI says where it listens and netping prints what QEMU prints; a host
  connection made before the guest runs becomes a SYN from 10.0.2.2 delivered to the guest (netping ignores it:
  its output does not change), recorded as one more inbound frame and replayed with no network at all.
- ``--net socket,udp=...,localaddr=...``: the link's other end is a Python peer on a free port that answers with a
  sans-IO ``UserNetwork``, so netping's DHCP DISCOVER (342 bytes from 52:54:00:12:34:56) crosses real UDP
  sockets and netping prints what it prints on ``--net user``.
"""

from __future__ import annotations

import re
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dpkt
import pytest

from machine.boards.virt import virtio_slot
from machine.inputs import HostInputs
from machine.loader import load_image
from machine.machine import Machine, MachineConfig
from machine.net import HostForward, HostGateway, UserNetwork
from machine.results import RunKind
from replay.events import NetFrame
from replay.history import HistoryInputs
from tests.conftest import EXPECTED, ROOT, guest

TIMEOUT_S = 60  # only so a broken run fails the test instead of hanging it
GUEST_MAC = "52:54:00:12:34:56"
HOSTFWD_LINE = re.compile(rb"chronicorn: hostfwd tcp 127\.0\.0\.1:(\d+) -> 10\.0\.2\.15:7\n")
SOCKET_LINE = re.compile(rb"chronicorn: socket udp 127\.0\.0\.1:(\d+) -> 127\.0\.0\.1:(\d+)\n")


def netping_output() -> bytes:
    """expected/netping.out: what netping prints on QEMU's user network, without line 2 (the interface's)."""
    return (EXPECTED / "netping.out").read_bytes()


def without_line_2(out: bytes) -> bytes:
    lines = out.splitlines(keepends=True)
    assert lines[1].startswith(b"virtio-mmio slot ")
    return b"".join(lines[:1] + lines[2:])


def mac(data: bytes) -> str:
    return ":".join(f"{b:02x}" for b in data)


def test_a_host_connection_before_the_run_reaches_netping_as_a_syn_recorded_and_replayed() -> None:
    gateway = HostGateway(UserNetwork(), [HostForward.parse("tcp::0-:7")])
    (_, address), = gateway.bound  # fmt: skip
    events: list = []
    inbound: list[bytes] = []
    uart = bytearray()
    image = load_image(guest("rv64", "netping"))
    with socket.create_connection(address, timeout=TIMEOUT_S) as client:  # accepted by the kernel already
        inputs = HistoryInputs(events, 0, HostInputs(None, networks={virtio_slot(0): gateway}))
        machine = Machine(image, inputs, uart.append, MachineConfig(network=True))
        machine.frame_tap = lambda ns, outbound, frame: None if outbound else inbound.append(frame)
        result = machine.run()
        assert (result.kind, result.exit_code) == (RunKind.EXITED, 0)
        assert without_line_2(bytes(uart)) == netping_output()
        syns = [frame for frame in inbound if dpkt.ethernet.Ethernet(frame).type == 0x0800
                and dpkt.ethernet.Ethernet(frame).data.p == 6]  # fmt: skip
        assert len(syns) == 1
        packet = dpkt.ethernet.Ethernet(syns[0]).data
        tcp = packet.data
        assert (packet.src, packet.dst) == (bytes([10, 0, 2, 2]), bytes([10, 0, 2, 15]))
        assert (tcp.sport, tcp.dport, tcp.flags) == (client.getsockname()[1], 7, dpkt.tcp.TH_SYN)
        assert mac(dpkt.ethernet.Ethernet(syns[0]).dst) == GUEST_MAC  # after DHCP taught slirp the MAC
        gateway.close()  # the user network goes away: the host peer's connection is reset, not left hanging
        with pytest.raises(ConnectionResetError):
            client.recv(10)
    frames = [event.data for event in events if isinstance(event, NetFrame)]
    # netping's nine answers, the SYN, and before them slirp's ARP request for the guest (the SYN waits for the
    # guest's MAC, which DHCP then teaches: netping does not answer ARP before it has an address).
    assert frames == inbound and len(frames) == 11
    arp = dpkt.ethernet.Ethernet(frames[0])
    assert (arp.type, arp.data.op, arp.data.tpa) == (0x0806, 1, bytes([10, 0, 2, 15]))
    replayed = bytearray()
    replay = HistoryInputs(list(events), 0, None)  # no network at all
    machine = Machine(image, replay, replayed.append, MachineConfig(network=True))
    assert machine.run().kind == RunKind.EXITED
    assert replayed == uart


def cli(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gdbstub.cli", *args], cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def read_line(stream: object) -> bytes:
    """One line from a child's pipe, waiting at most TIMEOUT_S (select, not a sleep)."""
    assert hasattr(stream, "fileno") and hasattr(stream, "readline")
    ready, _, _ = select.select([stream], [], [], TIMEOUT_S)
    assert ready, "the CLI said nothing"
    return stream.readline()


def test_cli_run_with_a_hostfwd_prints_where_it_listens_and_runs_to_the_end() -> None:
    """A host connection during the run may or may not reach netping before it ends (timing): either way the
    run is not disturbed."""
    proc = cli("run", str(guest("rv64", "netping")), "--net", "user,hostfwd=tcp::0-:7")
    try:
        match = HOSTFWD_LINE.fullmatch(read_line(proc.stderr))
        assert match, "no hostfwd line"
        port = int(match.group(1))
        try:
            client = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        except ConnectionRefusedError:  # the guest had ended already
            client = None
        out, err = proc.communicate(timeout=TIMEOUT_S)
        if client is not None:
            client.close()
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert without_line_2(out) == netping_output()
    assert err == b""


@contextmanager
def user_network_peer() -> Iterator[tuple[socket.socket, list[bytes]]]:
    """A UDP socket on a free loopback port whose datagrams are frames for a UserNetwork, answered to the sender:
    the far end of a ``--net socket,udp=`` link. Yields the socket and the frames received, in order."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        net = UserNetwork()
        while not stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.1)  # bounded, so that stop is seen
            if not ready:
                continue
            frame, sender = sock.recvfrom(65535)
            received.append(frame)
            net.send(frame)
            while (reply := net.receive()) is not None:
                sock.sendto(reply, sender)

    thread = threading.Thread(target=serve, name="udp-peer", daemon=True)
    thread.start()
    try:
        yield sock, received
    finally:
        stop.set()
        thread.join(TIMEOUT_S)
        sock.close()


def test_cli_run_on_a_udp_link_to_a_user_network_peer() -> None:
    with user_network_peer() as (peer, received):
        peer_port = peer.getsockname()[1]
        proc = cli("run", str(guest("rv64", "netping")), "--net",
                   f"socket,udp=127.0.0.1:{peer_port},localaddr=127.0.0.1:0")  # fmt: skip
        try:
            match = SOCKET_LINE.fullmatch(read_line(proc.stderr))
            assert match and int(match.group(2)) == peer_port
            out, err = proc.communicate(timeout=TIMEOUT_S)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert without_line_2(out) == netping_output()
    discover = dpkt.ethernet.Ethernet(received[0])
    assert len(received[0]) == 342 and mac(discover.src) == GUEST_MAC and discover.data.data.dport == 67
