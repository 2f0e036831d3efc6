"""The server survives anything a client sends; --log-packets writes a trace."""

from __future__ import annotations

import socket

from gdbstub.rsp.codec import Decoder, Packet, encode
from tests.conftest import guest
from tests.e2e.gdb import ServerProcess


def exchange(port: int, data: bytes, expect_packet: bool = True) -> list[bytes]:
    """Send raw bytes; return the packets answered (reads until one arrives, with a guard timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        decoder = Decoder()
        packets: list[bytes] = []
        while expect_packet and not packets:
            chunk = sock.recv(65536)
            if not chunk:
                break
            packets += [e.payload for e in decoder.feed(chunk) if isinstance(e, Packet)]
        return packets


def test_junk_malformed_and_oversized_input_never_kill_the_server(tmp_path) -> None:  # noqa: ANN001
    log = tmp_path / "packets.log"
    server = ServerProcess(guest("rv32", "hello"), "--log-packets", str(log))
    try:
        assert exchange(server.port, b"\x00\xff garbage $g#00", expect_packet=False) == []
        assert exchange(server.port, b"$" + b"m" * 100_000 + b"#00" + encode(b"?")) == [b"T05thread:1;"]
        assert exchange(server.port, encode(b"mzzzz,4")) == [b"E16"]
        assert exchange(server.port, encode(b"m50000000,4")) == [b"E0e"]  # unmapped
        assert exchange(server.port, encode(b"M80000000,4:zz")) == [b"E16"]
        assert exchange(server.port, encode(b"Z9,0,0")) == [b"E16"]
        assert exchange(server.port, encode(b"p9999")) == [b"E16"]
        reply = exchange(server.port, encode(b"qRcmd," + b"nonsense".hex().encode()))[0]
        assert bytes.fromhex(reply.decode()).startswith(b"error: unknown monitor command")
        # Still alive and unchanged: a fresh client sees the machine at its start.
        assert exchange(server.port, encode(b"qRcmd," + b"icount".hex().encode())) == [b"0\n".hex().encode()]
    finally:
        server.stop()
    trace = log.read_bytes()
    assert b"<- $m50000000,4" in trace and b"-> " in trace


def test_a_vanished_client_leaves_no_breakpoints_behind() -> None:
    from machine.loader import load_image

    handler = load_image(guest("rv32", "timer")).symbols["trap_handler"]
    server = ServerProcess(guest("rv32", "timer"))
    try:
        assert exchange(server.port, encode(b"Z0,%x,2" % handler)) == [b"OK"]  # then the client vanishes
        assert exchange(server.port, encode(b"Z2,80001000,4")) == [b"OK"]
        # No stale breakpoint or watchpoint stops: the run ends at the guest's exit (the end of history).
        assert exchange(server.port, encode(b"c"))[-1] == b"T05thread:1;replaylog:end;"
    finally:
        server.stop()


def test_out_of_range_addresses_are_refused_and_the_session_goes_on() -> None:
    server = ServerProcess(guest("rv32", "hello"))
    try:
        assert exchange(server.port, encode(b"Z0,ffffffffffff,2") + encode(b"?"))[0] == b"E16"
        assert exchange(server.port, encode(b"Z0,-1,2")) == [b"E16"]
        assert exchange(server.port, encode(b"m80000000,-4")) == [b"E16"]
        assert exchange(server.port, encode(b"?")) == [b"T05thread:1;"]
    finally:
        server.stop()


def test_ctrl_c_right_behind_continue_stops_a_long_run_and_the_session_goes_on() -> None:
    server = ServerProcess(guest("rv32", "compute"))
    try:
        assert exchange(server.port, encode(b"c") + b"\x03") == [b"T02thread:1;"]  # SIGINT, not the end
        # Stopped where the Ctrl-C found it (icount 0 if before the first checkpoint), short of the guest's end.
        (icount,) = exchange(server.port, encode(b"qRcmd," + b"icount".hex().encode()))
        assert exchange(server.port, encode(b"c"))[-1] == b"T05thread:1;replaylog:end;"
        (end,) = exchange(server.port, encode(b"qRcmd," + b"icount".hex().encode()))
        assert int(bytes.fromhex(icount.decode())) < int(bytes.fromhex(end.decode()))
    finally:
        server.stop()
