"""Ctrl-C through a real socket: the server polls it while a long guest runs, and keeps what else arrives.

The server runs in-process (a thread) over a real timeline of the rv64 ``compute`` guest
(~75M instructions); the client is a plain socket speaking RSP bytes.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from gdbstub.monitor import Monitor
from gdbstub.rsp.codec import encode
from gdbstub.server import Server
from gdbstub.target import TimelineTarget
from gdbstub.wire import WireClient
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import Machine, MachineConfig
from replay.history import HistoryInputs
from replay.store import SnapshotStore
from replay.timeline import Timeline
from tests.conftest import guest

GUARD_TIMEOUT_S = 60  # only so a broken server fails the test instead of hanging it


class Client(WireClient):
    """One gdb-like connection (acks as gdb does), plus where the machine stands."""

    def icount(self) -> int:
        return int(self.monitor("icount"))


@pytest.fixture
def server() -> Iterator[Server]:
    """A server on 127.0.0.1:0 over a live timeline of rv64 ``compute`` (as ``serve`` builds it), in a thread."""
    inputs = HistoryInputs([], 0, ScriptedInputs())
    machine = Machine(load_image(guest("rv64", "compute")), inputs, lambda byte: None, MachineConfig())
    timeline = Timeline(machine, inputs, SnapshotStore())
    monitor = Monitor(timeline, describe=lambda: "", save=lambda *args: "")  # only 'monitor icount' is used
    server = Server(TimelineTarget(timeline, monitor), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(GUARD_TIMEOUT_S)
        server.close()


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(server.address, timeout=GUARD_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def test_ctrl_c_during_a_long_continue_stops_it(server: Server) -> None:
    with connect(server) as sock:
        gdb = Client(sock)
        gdb.send(encode(b"c"))
        gdb.wait_ack()  # the '+' leaves before the run starts: the guest is running now
        gdb.send(b"\x03")
        assert gdb.reply() == b"T02thread:1;"  # SIGINT, not the end of history
        stopped_at = gdb.icount()  # may be 0: the 0x03 can arrive before the first instruction runs
        # The rest of the run: the guest's end lies well beyond where Ctrl-C stopped it.
        gdb.send(encode(b"c"))
        gdb.wait_ack()
        assert gdb.reply() == b"T05thread:1;replaylog:end;"
        assert stopped_at < gdb.icount()


def test_packets_sent_during_a_run_are_answered_after_its_stop_in_order(server: Server) -> None:
    with connect(server) as sock:
        gdb = Client(sock)
        gdb.send(encode(b"c"))
        gdb.wait_ack()
        gdb.send(encode(b"qC") + encode(b"qAttached"))  # held by the server while the target runs
        gdb.send(b"\x03")
        assert [gdb.reply(), gdb.reply(), gdb.reply()] == [b"T02thread:1;", b"QC1", b"1"]


def test_ctrl_c_right_behind_continue_in_one_segment(server: Server) -> None:
    with connect(server) as sock:
        gdb = Client(sock)
        gdb.send(encode(b"c") + b"\x03")
        assert gdb.reply() == b"T02thread:1;"


def test_a_second_client_is_refused_during_a_run_and_a_vanished_client_stops_it(server: Server) -> None:
    with connect(server) as sock:
        gdb = Client(sock)
        gdb.send(encode(b"c"))
        gdb.wait_ack()
        with connect(server) as extra:
            assert extra.recv(1) == b""  # accepted and closed while the first client's run goes on
    # The first client left mid-run: its departure interrupts the run, and the next client finds it stopped.
    with connect(server) as sock:
        gdb = Client(sock)
        gdb.send(encode(b"?"))
        gdb.wait_ack()
        assert gdb.reply() == b"T02thread:1;"
