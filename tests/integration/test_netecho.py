"""netecho (a TCP and UDP echo server on port 7) behind host forwards: QEMU 7.2 and chronicorn, one host program.

A host program (:func:`talk`) opens a TCP connection through ``hostfwd=tcp`` and sends three lines (one of 4000
bytes: more than an MSS, so three segments each way), reading each uppercased echo; after the first it tries a
second connection, which the guest refuses (one connection at a time: a RST). It closes its half and waits for
the guest's FIN; then it sends a UDP datagram through ``hostfwd=udp``, reads its echo, and ends the session with
the datagram "quit". The guest prints one line per event (tests/guests/riscv/README.md, "netecho"), so its UART
transcript depends only on the frames it received: QEMU's and chronicorn's are the same, byte for byte, once the
host program sends from the same source ports to both (it binds them). expected/netecho.out is QEMU's transcript
(legacy virtio-mmio), with TCP_PORT, BUSY_PORT and UDP_PORT standing for those ports.

- :func:`test_qemu_and_chronicorn_record_print_the_same_transcript`: QEMU vs ``chronicorn record`` (rv32 and rv64
  on the legacy interface, rv64 on the modern one);
- :func:`test_the_refused_connection_ends_for_the_host_as_on_qemu`: what the host program sees of the refusal;
- :func:`test_the_recording_replays_without_a_network`: ``chronicorn replay`` of it, no host program, no sockets;
- :func:`test_a_served_session_driven_by_gdb_saves_a_recording_that_replays`: ``chronicorn serve`` under gdb
  (``continue`` until the guest exits while the host program talks to it), ``monitor record save``, its replay;
- :func:`test_reverse_to_the_tcp_receive_function_in_the_saved_recording`: ``replay --port`` of that file,
  ``reverse-continue`` to a breakpoint in ``tcp_input`` and ``reverse-stepi`` out of it.

No sleeps: every wait blocks on a socket (with a timeout) or on the processes' output (threads read it as it
comes, :class:`Process`). No fixed ports: chronicorn's forwards use HPORT 0 and say on stderr where they listen;
QEMU's forwards and the host program's source ports are free ones picked here.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gdbstub.client import GdbClient, ServerProcess, StopReason
from replay.events import NetFrame
from replay.recording import load_recording
from tests.conftest import EXPECTED, ROOT, guest, require_tool
from tests.e2e.gdb import require_gdb
from tests.integration.test_netping_qemu import INTERFACES, SLOT

TIMEOUT = 30  # seconds for any one wait: a socket read, a line of output, a process's exit
# The host program's TCP lines: the second is longer than an MSS (1460), so it crosses the link in three segments.
BIG_LINE = bytes(b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36] for i in range(3999)) + b"\n"
LINES = (b"hello, chronicorn\n", BIG_LINE, b"Mixed Case, digits 0123 and the end\n")
DATAGRAMS = (b"hello over udp\n", b"quit\n")
HOSTFWD = re.compile(rb"^chronicorn: hostfwd (tcp|udp) 127\.0\.0\.1:(\d+) -> 10\.0\.2\.15:7$", re.MULTILINE)
READY = re.compile(rb"^netecho ready: .*\n", re.MULTILINE)


# -- the processes: their output read as it comes ----------------------------------------------------------------
class Process:
    """A child process whose stdout and stderr threads collect as they come; :meth:`wait_for` blocks on them."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.proc = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)  # fmt: skip
        self.out, self.err = bytearray(), bytearray()
        self._ended: set[int] = set()
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._drain, args=(stream, into), daemon=True)
                         for stream, into in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]  # fmt: skip
        for reader in self._readers:
            reader.start()

    def _drain(self, stream, into: bytearray) -> None:  # noqa: ANN001
        while chunk := stream.read1(65536):
            with self._changed:
                into += chunk
                self._changed.notify_all()
        with self._changed:
            self._ended.add(id(into))
            self._changed.notify_all()

    def wait_for(self, pattern: re.Pattern[bytes], stderr: bool = False, count: int = 1) -> list[re.Match[bytes]]:
        """Block until ``pattern`` matches ``count`` times in stdout (or stderr); fail if the stream ends first."""
        __tracebackhide__ = True
        text = self.err if stderr else self.out
        with self._changed:
            self._changed.wait_for(lambda: len(list(pattern.finditer(text))) >= count or id(text) in self._ended,
                                   TIMEOUT)  # fmt: skip
            found = list(pattern.finditer(text))
        if len(found) < count:
            self.kill()
            pytest.fail(f"{pattern.pattern!r} x{count} not seen from {self.args[:4]}: stdout {bytes(self.out)!r}, "
                        f"stderr {bytes(self.err)!r}")  # fmt: skip
        return found

    def finish(self) -> tuple[int, bytes, bytes]:
        """Wait for the exit (at most TIMEOUT s); its status, stdout and stderr."""
        try:
            code = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=TIMEOUT)
        return code, bytes(self.out), bytes(self.err)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def chronicorn(*args: str) -> list[str]:
    return [sys.executable, "-m", "gdbstub.cli", *args]


def free_port(kind: socket.SocketKind, avoid: tuple[int, ...] = ()) -> int:
    """A port nothing on 127.0.0.1 uses now, none of ``avoid`` (for QEMU's forwards and the host program's source
    ports)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("127.0.0.1", 0))
            if (port := probe.getsockname()[1]) not in avoid:
                return port


def forwards(process: Process) -> tuple[int, int]:
    """The TCP and UDP ports chronicorn's forwards listen on (HPORT 0: it says which on stderr)."""
    found = {m.group(1): int(m.group(2)) for m in process.wait_for(HOSTFWD, stderr=True, count=2)}
    return found[b"tcp"], found[b"udp"]


# -- the host program -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourcePorts:
    """Where the host program sends from: the guest prints them, so the transcripts compare only with the same."""

    tcp: int
    udp: int
    busy: int  # the second TCP connection, while the first is open

    @classmethod
    def pick(cls) -> SourcePorts:
        tcp = free_port(socket.SOCK_STREAM)
        return cls(tcp, free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM, avoid=(tcp,)))


@dataclass(frozen=True)
class Echoes:
    tcp: tuple[bytes, ...]  # one per line of LINES
    second: str  # how the second connection ended: "end of file" or "reset" (the guest refused it), or "data"
    closed: bool  # the guest's FIN came (an end of file) after the host program's
    udp: tuple[bytes, ...]  # one per datagram of DATAGRAMS

    @property
    def complete(self) -> bool:
        """Every echo, uppercased; the second connection refused, the first closed by the guest."""
        return (self.tcp == tuple(line.upper() for line in LINES) and self.second in ("end of file", "reset")
                and self.closed and self.udp == tuple(d.upper() for d in DATAGRAMS))  # fmt: skip


def bound(kind: socket.SocketKind, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the port again while its last connection waits
    sock.settimeout(TIMEOUT)
    sock.bind(("127.0.0.1", port))
    return sock


def second_connection(tcp_port: int, source: SourcePorts) -> str:
    """How a connection made while another is open ends: the guest answers its SYN with a RST, and the user
    network closes the host socket it had accepted ("end of file") or resets it ("reset")."""
    with bound(socket.SOCK_STREAM, source.busy) as conn:
        conn.connect(("127.0.0.1", tcp_port))  # the user network's listener accepts it, then the guest is asked
        try:
            return "end of file" if conn.recv(1) == b"" else "data"
        except ConnectionResetError:
            return "reset"


def talk(tcp_port: int, udp_port: int, source: SourcePorts) -> Echoes:
    """The host program: TCP lines to tcp_port, each echo read in full (a second connection tried after the
    first line), close; then the datagrams to udp_port."""
    echoes = []
    with bound(socket.SOCK_STREAM, source.tcp) as conn:
        conn.connect(("127.0.0.1", tcp_port))
        for n, line in enumerate(LINES):
            if n == 1:
                second = second_connection(tcp_port, source)
            conn.sendall(line)
            echo = b""
            while len(echo) < len(line) and (chunk := conn.recv(65536)):
                echo += chunk
            echoes.append(echo)
        conn.shutdown(socket.SHUT_WR)
        closed = conn.recv(1) == b""  # the guest's FIN: the connection is over on both sides
    replies = []
    with bound(socket.SOCK_DGRAM, source.udp) as datagrams:
        for datagram in DATAGRAMS:
            datagrams.sendto(datagram, ("127.0.0.1", udp_port))
            replies.append(datagrams.recv(65536))
    return Echoes(tuple(echoes), second, closed, tuple(replies))


def expected_transcript(source: SourcePorts, interface: str = "legacy") -> bytes:
    """expected/netecho.out (QEMU's, legacy) with the source ports, and the interface's version line."""
    text = (EXPECTED / "netecho.out").read_bytes()
    for name, port in (("TCP_PORT", source.tcp), ("UDP_PORT", source.udp), ("BUSY_PORT", source.busy)):
        text = text.replace(name.encode(), str(port).encode())
    lines = text.splitlines(keepends=True)
    lines[1] = f"virtio-mmio slot {SLOT} {INTERFACES[interface][0]}\n".encode()  # the one that differs
    return b"".join(lines)


# -- the runs ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    code: int
    transcript: bytes  # the guest's UART output
    stderr: bytes
    echoes: Echoes


def on_qemu(xlen: str, interface: str, source: SourcePorts) -> Run:
    binary = f"qemu-system-riscv{xlen[2:]}"
    require_tool(shutil.which(binary), f"{binary} not installed")
    tcp_port = free_port(socket.SOCK_STREAM, avoid=(source.tcp, source.busy))
    udp_port = free_port(socket.SOCK_DGRAM, avoid=(source.udp,))
    qemu = Process([
        binary, "-M", "virt", "-m", "128M", "-bios", "none", "-nographic", "-kernel", str(guest(xlen, "netecho")),
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{tcp_port}-:7,hostfwd=udp:127.0.0.1:{udp_port}-:7",
        "-device", "virtio-net-device,netdev=n0", *INTERFACES[interface][1],
    ])  # fmt: skip
    try:
        qemu.wait_for(READY)
        echoes = talk(tcp_port, udp_port, source)
        code, out, err = qemu.finish()
    finally:
        qemu.kill()
    return Run(code, out, err, echoes)


def on_chronicorn_record(xlen: str, interface: str, source: SourcePorts, recording: Path) -> Run:
    record = Process(chronicorn("record", str(guest(xlen, "netecho")), "--net",
                                "user,hostfwd=tcp::0-:7,hostfwd=udp::0-:7", "--virtio", interface,
                                "-o", str(recording)))  # fmt: skip
    try:
        tcp_port, udp_port = forwards(record)
        record.wait_for(READY)
        echoes = talk(tcp_port, udp_port, source)
        code, out, err = record.finish()
    finally:
        record.kill()
    return Run(code, out, err, echoes)


@dataclass(frozen=True)
class Recorded:
    xlen: str
    interface: str
    source: SourcePorts
    run: Run
    recording: Path


@pytest.fixture(scope="module", params=[("rv32", "legacy"), pytest.param(("rv64", "legacy"), marks=pytest.mark.slow),
                                        pytest.param(("rv64", "modern"), marks=pytest.mark.slow)],
                ids=lambda p: "-".join(p))  # fmt: skip
def recorded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """``chronicorn record`` of the exchange, on both XLENs with QEMU's default (legacy) virtio-mmio, and on the
    modern interface (a 12-byte virtio-net header)."""
    xlen, interface = request.param
    source = SourcePorts.pick()
    recording = tmp_path_factory.mktemp("netecho") / "netecho.chrec"
    run = on_chronicorn_record(xlen, interface, source, recording)
    return Recorded(xlen, interface, source, run, recording)


@pytest.fixture(scope="module")
def on_qemu_too(recorded: Recorded) -> Run:
    """The same host program, from the same source ports, with QEMU."""
    return on_qemu(recorded.xlen, recorded.interface, recorded.source)


# -- (a) QEMU and chronicorn ------------------------------------------------------------------------------------
@pytest.mark.qemu
def test_qemu_and_chronicorn_record_print_the_same_transcript(recorded: Recorded, on_qemu_too: Run) -> None:
    run, qemu = recorded.run, on_qemu_too
    assert run.code == 0, run.stderr
    assert run.echoes.complete, run.echoes  # the host program got every echo, uppercased, and the guest's FIN
    assert qemu.code == 0, qemu.stderr
    assert qemu.echoes.complete, qemu.echoes
    assert run.transcript == qemu.transcript
    assert qemu.transcript == expected_transcript(recorded.source, recorded.interface)


@pytest.mark.qemu
@pytest.mark.parametrize("recorded", [("rv64", "legacy")], indirect=True, ids=["rv64-legacy"])  # one is enough
def test_the_refused_connection_ends_for_the_host_as_on_qemu(recorded: Recorded, on_qemu_too: Run) -> None:
    """The guest answers the second connection's SYN with a RST (the transcript's "reset (busy)"). With QEMU 7.2
    (libslirp 4.7.0 here) the host program then reads an end of file: slirp closes the host socket it had
    accepted. (chronicorn resets it: SO_LINGER 0, ``close_with_reset`` in machine/net/host_sockets.py.)"""
    assert on_qemu_too.echoes.second == "end of file"
    assert recorded.run.echoes.second == on_qemu_too.echoes.second


# -- (b) the recording alone ------------------------------------------------------------------------------------
def test_the_recording_replays_without_a_network(recorded: Recorded) -> None:
    """No --net and no host program: every frame the guest received comes from the log (one NetFrame each)."""
    assert recorded.run.code == 0, recorded.run.stderr
    with recorded.recording.open("rb") as stream:
        loaded = load_recording(stream)
    inbound = b"".join(e.data for e in loaded.inputs if isinstance(e, NetFrame))
    assert all(line in inbound for line in (LINES[0], LINES[2], *DATAGRAMS))  # the host program's bytes, as sent
    assert inbound.count(BIG_LINE[:1460]) == 1 and BIG_LINE[-1080:] in inbound  # the big line in MSS segments
    replayed = subprocess.run(chronicorn("replay", str(recorded.recording)), cwd=ROOT, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=120)  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    assert b"hostfwd" not in replayed.stderr  # nothing listens
    assert replayed.stdout == recorded.run.transcript == expected_transcript(recorded.source, recorded.interface)


# -- (c) serve, driven by gdb -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Served:
    elf: Path
    source: SourcePorts
    transcript: bytes
    saved: Path
    stop_console: str
    save_reply: str
    echoes: Echoes


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``chronicorn serve`` with the forwards, under gdb: ``continue`` runs (gdb waits for the stop in the
    background) while the host program talks to the guest, until the guest exits; then ``monitor record save``."""
    require_gdb()
    elf = guest("rv64", "netecho")
    save_dir = tmp_path_factory.mktemp("saved")
    server = Process(chronicorn("serve", str(elf), "--port", "0", "--save-dir", str(save_dir), "--net",
                                "user,hostfwd=tcp::0-:7,hostfwd=udp::0-:7"))  # fmt: skip
    gdb = None
    try:
        gdb_port = int(server.wait_for(re.compile(rb"^listening on 127\.0\.0\.1:(\d+)\n"))[0].group(1))
        tcp_port, udp_port = forwards(server)
        gdb = GdbClient(elf)
        gdb.connect(gdb_port)
        gdb.output = ""
        gdb.mi("-exec-continue")  # ^running: the guest runs until it exits
        server.wait_for(READY)
        source = SourcePorts.pick()
        echoes = talk(tcp_port, udp_port, source)
        gdb.wait_stopped(timeout=TIMEOUT)
        stop_console = gdb.output
        save_reply = gdb.console("monitor record save netecho.chrec")
        gdb.close()
        gdb = None
        server.proc.terminate()
        _, out, _ = server.finish()
        transcript = out.split(b"\n", 1)[1]  # after "listening on ..."
        yield Served(elf, source, transcript, save_dir / "netecho.chrec", stop_console, save_reply, echoes)
    finally:
        if gdb is not None:
            gdb.close()
        server.kill()


@pytest.mark.gdb
@pytest.mark.slow
def test_a_served_session_driven_by_gdb_saves_a_recording_that_replays(served: Served) -> None:
    assert served.echoes.complete, served.echoes
    assert "guest exited with code 0" in served.stop_console  # the continue ran to the guest's exit
    assert "saved icount 0.." in served.save_reply
    assert served.transcript == expected_transcript(served.source)
    replayed = subprocess.run(chronicorn("replay", str(served.saved)), cwd=ROOT, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=120)  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == served.transcript


@pytest.mark.gdb
@pytest.mark.slow
def test_reverse_to_the_tcp_receive_function_in_the_saved_recording(served: Served) -> None:
    """Back from the end of the session to the last TCP segment the guest received (the ACK of its FIN), one
    instruction further back (the call in frame_input), and to the one before (the host program's FIN)."""
    server = ServerProcess(served.saved, command="replay")
    gdb = GdbClient(served.elf)
    try:
        gdb.connect(server.port)
        assert gdb.cont().reason == StopReason.NO_HISTORY  # the end of the recording: the guest's exit
        end = gdb.icount()
        gdb.break_at("tcp_input")
        stop = gdb.cont(reverse=True)
        assert stop.reason == StopReason.BREAKPOINT and stop.location.function == "tcp_input"
        last = gdb.icount()
        assert last < end
        assert gdb.evaluate("tcb.state") == "TCP_LAST_ACK"
        assert gdb.evaluate("(int)ip->payload[13]") == "16"  # ACK: the guest's FIN acknowledged
        stop = gdb.stepi(reverse=True)
        assert gdb.icount() == last - 1 and stop.location.function == "frame_input"
        stop = gdb.cont(reverse=True)
        assert stop.reason == StopReason.BREAKPOINT and stop.location.function == "tcp_input"
        before = gdb.icount()
        assert before < last - 1
        assert gdb.evaluate("tcb.state") == "TCP_ESTABLISHED"
        assert gdb.evaluate("(int)ip->payload[13]") == "17"  # FIN and ACK: the host program closed
        stop = gdb.cont()  # forward again: the same segment at the same instruction
        assert stop.reason == StopReason.BREAKPOINT and gdb.icount() == last
    finally:
        gdb.close()
        out, _ = server.stop()
    assert out == served.transcript
