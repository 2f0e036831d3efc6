#!/usr/bin/env python3
"""chronicorn against QEMU 7.2's record/replay on the same guest, in one run, interleaved (issue 12, item 6).

Guest: ``tests/guests/riscv/build/bench/rv64/periodic440m.elf`` (``periodic.c``: compute.c's sieve and CRC
work, 439.8M instructions; ``tick()`` is called every ~14.2M instructions, ``marker()`` once at ~28M, the
word ``page.shared`` shares a 4 KiB page with the CRC buffer every step rewrites and is written once, ~71M
instructions before the end). ``--quick`` uses the 71M build (5 ticks) and skips the 1.1e9 guest
(``periodic1g.elf``, 1,106M instructions, used only for the far reverse-continue row).

Every round runs each measure on chronicorn and then on QEMU before the next measure, so load changes hit
both; the table shows medians of ``--rounds`` rounds (the 1.1e9 row: ``--long-rounds``). The machine's load
average (``os.getloadavg``) is printed at the start and at the end.

How things are run:

- chronicorn: ``python -m gdbstub.cli ...`` with the interpreter and ``sys.path`` of ``--chronicorn-root``
  (its ``.venv/bin/python`` if it has one, else this interpreter with ``PYTHONPATH=ROOT``, cwd ROOT), so an
  older checkout (``git worktree add /work/before COMMIT``, native helper built in place) can be compared.
- QEMU: ``qemu-system-riscv64 -M virt -m 128M -bios none -nographic -net none -kernel ELF``; recording with
  ``-icount shift=3,rr=record,rrfile=F,rrsnapshot=init -drive file=F.qcow2,if=none,id=rr`` (a fresh
  ``qemu-img create -f qcow2`` image holds the snapshots), replay with ``rr=replay`` and the same drive (a copy
  per session: QEMU saves its ``start_debugging`` snapshot into it), debugged with ``-gdb tcp:127.0.0.1:PORT
  -S``. QEMU's gdb port is found by binding port 0 and closing it just before QEMU starts (QEMU cannot report
  a port it picked itself); chronicorn is given ``--port 0``.
- gdb: one ``gdb-multiarch --nx --interpreter=mi3 ELF`` per session, driven over MI (lines parsed with
  pygdbmi's parser, read by a thread that timestamps each line as it arrives, so a round trip is not rounded
  up to a polling interval). A round trip is the time from writing the MI command (``-exec-step-instruction
  [--reverse]``, ``-exec-continue [--reverse]``) to gdb's ``*stopped`` record: gdb's whole per-stop exchange
  (17 packets per ``stepi`` on RISC-V: gdb single-steps in software, ``Z0`` at the next pc, ``vCont;c``, ``g``,
  ``z0``, memory around pc and sp, thread list...). The stepi cells also give the stub's time summed over all
  the packets of the step ("all N packets").
- Server time: gdb reaches each stub through a timestamping TCP relay in this process (``PacketRelay``).
  chronicorn's ``--log-packets`` file has no timestamps, and timing chronicorn in-process (as
  ``bench_reverse.py`` does through Session/TimelineTarget) would not apply to QEMU, so the relay times both
  alike: for each packet gdb sends, the time from forwarding its last byte to the stub until the first ``$``
  of the stub's answer comes back. "server" is the sum of those times for the resume packets of the
  operation (``bs``, ``bc``, ``s``/``vCont;s``, ``c``/``vCont;c``): the stub's own work for the move,
  loopback included (~0.1 ms). The relay adds the same small delay to every packet of both stubs.

Rows:

- start-up: wall time of ``chronicorn run GUEST --max-insns 1000`` (bar <= 0.3 s); 3 per round.
- forward, whole guest, process wall time (start-up included): bare Unicorn, ``chronicorn run``,
  ``chronicorn record -o F``, ``chronicorn replay F``; QEMU without icount, with ``-icount shift=3``, record,
  replay (no gdb). Bare Unicorn is this script run as ``--bare-worker ELF`` in a subprocess: a Unicorn 2 engine
  with RAM mapped, no hooks at all, the UART and the SiFive test finisher as plain MMIO callbacks (the guest
  needs them to print and to stop: the smallest faithful baseline, as ``bench_icount.py``). Ratios are to the
  bare process's wall time; "engine" is the time inside ``emu_start`` alone.
- forward through gdb: ``continue`` from reset to a breakpoint at ``guest_exit`` (chronicorn ``serve``: live,
  recording; QEMU: replaying), and the same with an extra breakpoint that is never hit in the hot code's
  4 KiB page (``unhit``; QEMU single-steps pages holding breakpoints; ``tick``, ``marker`` and
  ``guest_exit`` are on other pages).
- stepi / reverse-stepi at several depths, for ``serve`` (live history), ``replay --port`` (a recording made
  by ``chronicorn record`` in the same round) and QEMU replay: arrive by ``continue`` to the k-th call of
  ``tick`` (a breakpoint with an ignore count), then one ``reverse-stepi`` ("first": only what a forward run
  left behind), nine more ("next": median), then ten ``stepi`` forward back to where we arrived ("stepi":
  median; in ``serve`` these replay history, as QEMU's do). "end": the end of the guest; chronicorn runs
  until the guest has exited (a finished history: the end of history), QEMU stops at a breakpoint on
  ``guest_exit`` (continuing into the exit ends QEMU's replay and the gdb session).
- reverse-continue from the end to ``marker`` (once, ~28M in: ~412M back; with the 1.1e9 guest ~1,078M back),
  ``serve`` and QEMU.
- reverse watch: from the end, ``watch page.shared`` and ``reverse-continue`` to its only write, ~71M back,
  across rounds that write its page all along; reported as the time and as instructions searched per second.
- QEMU's slow operations are given ``--timeout`` seconds; past that the session is killed and the cell says
  "> N s".

A PNG (matplotlib) plots reverse-stepi latency (first and next, wall) against depth for chronicorn serve,
chronicorn replay and QEMU; ``--markdown FILE`` writes the table and the run's facts as markdown.

    scripts/bench_vs_qemu.py [--rounds 3] [--quick] [--no-qemu] [--chronicorn-root PATH]
                             [--markdown docs/bench/before.md] [--plot docs/bench/before.png]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import mmap
import os
import platform
import queue
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pygdbmi.gdbmiparser import parse_response

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "tests/guests/riscv/build/bench/rv64"
QEMU = "qemu-system-riscv64"
QEMU_BASE = ["-M", "virt", "-m", "128M", "-bios", "none", "-nographic", "-net", "none"]
GDB = "gdb-multiarch"
RESUME_PREFIXES = (b"bs", b"bc", b"s", b"vCont;s", b"c", b"vCont;c")
STEPS_BACK = 10  # reverse-stepi per depth: the first and nine more


@dataclass(frozen=True, slots=True)
class GuestPlan:
    """A bench guest and the calls of ``tick`` at which the depth measures stand."""

    elf: Path
    ticks: tuple[int, ...]


MAIN = GuestPlan(BENCH / "periodic440m.elf", (1, 4, 10, 20, 30))
QUICK = GuestPlan(BENCH / "periodic71m.elf", (1, 2, 4))
LONG = BENCH / "periodic1g.elf"


class Timeout(Exception):
    """An operation took longer than the time it was given."""


# -- the chronicorn under test ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Chronicorn:
    """How to run ``python -m gdbstub.cli`` from a checkout (this one or ``--chronicorn-root``)."""

    root: Path

    @property
    def python(self) -> str:
        venv = self.root / ".venv/bin/python"
        return str(venv) if venv.exists() else sys.executable

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(self.root)}

    def command(self, *args: str) -> list[str]:
        return [self.python, "-m", "gdbstub.cli", *args]

    def wall(self, *args: str, timeout: float) -> float:
        """Wall time of a chronicorn command run to completion (its output discarded, failure fatal)."""
        start = time.perf_counter()
        done = subprocess.run(self.command(*args), cwd=self.root, env=self.env, capture_output=True,
                              timeout=timeout, check=False)  # fmt: skip
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"chronicorn {' '.join(args)} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
        return elapsed


# -- processes ------------------------------------------------------------------------------------------------
class Process:
    """A subprocess whose stdout/stderr are drained by threads (a talkative guest never blocks)."""

    def __init__(self, cmd: list[str], **kwargs: Any) -> None:
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, **kwargs)  # fmt: skip
        self.first_line: queue.Queue[bytes] = queue.Queue()
        self.err = bytearray()
        self._threads = [threading.Thread(target=self._drain, args=(self.proc.stdout, True), daemon=True),
                         threading.Thread(target=self._drain, args=(self.proc.stderr, False), daemon=True)]  # fmt: skip
        for thread in self._threads:
            thread.start()

    def _drain(self, stream: Any, first: bool) -> None:
        if first:
            self.first_line.put(stream.readline())
        while chunk := stream.read1(65536):
            if not first:
                self.err += chunk

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for thread in self._threads:
            thread.join(timeout=5)


def chronicorn_server(chron: Chronicorn, *args: str) -> tuple[Process, int]:
    """``chronicorn serve GUEST`` / ``replay FILE`` with ``--port 0``; the port from its first line."""
    proc = Process(chron.command(*args, "--port", "0"), cwd=chron.root, env=chron.env)
    try:
        line = proc.first_line.get(timeout=60).decode(errors="replace")
    except queue.Empty:
        line = ""
    if not line.startswith("listening on "):
        proc.stop()
        sys.exit(f"chronicorn {args[0]} did not start: {line!r} {proc.err.decode(errors='replace')[-2000:]}")
    return proc, int(line.rsplit(":", 1)[1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the timestamping relay between gdb and a stub ------------------------------------------------------------
@dataclass(slots=True)
class PacketTime:
    head: bytes  # the packet's first bytes
    sent: float  # when its last byte was forwarded to the stub
    answered: float | None = None  # when the first '$' of the stub's answer came back


class PacketRelay:
    """Listens on a free port; relays one gdb connection to the stub at ``stub_port`` and times each packet."""

    def __init__(self, stub_port: int, connect_timeout: float = 30) -> None:
        self.stub_port = stub_port
        self.connect_timeout = connect_timeout
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.packets: list[PacketTime] = []
        self._lock = threading.Lock()
        self._closing = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _connect_stub(self) -> socket.socket:
        deadline = time.monotonic() + self.connect_timeout
        while True:
            try:
                return socket.create_connection(("127.0.0.1", self.stub_port), timeout=5)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _serve(self) -> None:
        try:
            client, _ = self.listener.accept()
            stub = self._connect_stub()
        except OSError:
            return
        for sock in (client, stub):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(True)
        pending = bytearray()  # gdb's bytes of a packet not yet complete
        try:
            while not self._closing:
                ready, _, _ = select.select([client, stub], [], [], 0.2)
                if client in ready:
                    data = client.recv(65536)
                    if not data:
                        return
                    stub.sendall(data)
                    now = time.perf_counter()
                    pending += data
                    self._note_requests(pending, now)
                if stub in ready:
                    data = stub.recv(65536)
                    now = time.perf_counter()
                    if not data:
                        return
                    client.sendall(data)
                    if b"$" in data:
                        with self._lock:
                            for packet in reversed(self.packets):
                                if packet.answered is not None:
                                    break
                                packet.answered = now
        except OSError:
            return
        finally:
            client.close()
            stub.close()

    def _note_requests(self, pending: bytearray, now: float) -> None:
        while True:
            start = pending.find(b"$")
            if start < 0:
                pending.clear()
                return
            end = pending.find(b"#", start)
            if end < 0 or len(pending) < end + 3:
                del pending[:start]
                return
            with self._lock:
                self.packets.append(PacketTime(bytes(pending[start + 1 : min(end, start + 17)]), now))
            del pending[: end + 3]

    def mark(self) -> int:
        with self._lock:
            return len(self.packets)

    def resume_time(self, since: int) -> float:
        """The stub's time for the resume packets sent since ``mark()`` returned ``since``."""
        with self._lock:
            chosen = [p for p in self.packets[since:] if p.head.startswith(RESUME_PREFIXES)
                      and not p.head.startswith(b"vCont?")]  # fmt: skip
            return sum((p.answered or p.sent) - p.sent for p in chosen)

    def all_packets(self, since: int) -> tuple[int, float]:
        """How many packets gdb sent since ``mark()`` returned ``since``, and the stub's time for all of them."""
        with self._lock:
            chosen = self.packets[since:]
            return len(chosen), sum((p.answered or p.sent) - p.sent for p in chosen)

    def close(self) -> None:
        self._closing = True
        self.listener.close()


# -- gdb over MI ----------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Moved:
    """One execution command: gdb's round trip, the stub's time, the stop record and what gdb printed."""

    wall: float
    server: float
    stop: dict[str, Any]
    console: str
    packets: int = 0  # packets gdb sent for it
    server_all: float = 0.0  # the stub's time for all of them


class Gdb:
    """gdb-multiarch over MI; each output line is timestamped by a reader thread as it arrives."""

    def __init__(self, elf: Path) -> None:
        self.proc = subprocess.Popen([GDB, "--nx", "--quiet", "--interpreter=mi3", str(elf)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self._token = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.relay: PacketRelay | None = None
        for command in ("-gdb-set confirm off", "-gdb-set pagination off", "-gdb-set remotetimeout 60",
                        "-gdb-set mi-async on"):  # fmt: skip
            self.mi(command)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put((time.perf_counter(), raw.decode(errors="replace").rstrip("\n")))

    def _write(self, command: str) -> tuple[int, float]:
        assert self.proc.stdin is not None
        self._token += 1
        start = time.perf_counter()
        self.proc.stdin.write(f"{self._token}{command}\n".encode())
        self.proc.stdin.flush()
        return self._token, start

    def _next(self, deadline: float) -> tuple[float, dict[str, Any]]:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout
            try:
                when, line = self.lines.get(timeout=left)
            except queue.Empty:
                raise Timeout from None
            if line.strip() and line.strip() != "(gdb)":
                return when, parse_response(line)

    def mi(self, command: str, timeout: float = 60) -> dict[str, Any]:
        """An MI command up to its result record (``^error`` is fatal: the bench cannot go on)."""
        token, _ = self._write(command)
        deadline = time.monotonic() + timeout
        while True:
            _, record = self._next(deadline)
            if record["type"] == "result" and record.get("token") == token:
                if record["message"] == "error":
                    raise RuntimeError(f"{command}: {record['payload']}")
                return record

    def console(self, command: str) -> str:
        """A CLI command's console output."""
        token, _ = self._write(f'-interpreter-exec console "{command}"')
        deadline = time.monotonic() + 60
        text = []
        while True:
            _, record = self._next(deadline)
            if record["type"] in ("console", "target") and record["payload"]:
                text.append(record["payload"])
            if record["type"] == "result" and record.get("token") == token:
                return "".join(text)

    def move(self, command: str, timeout: float = 120) -> Moved:
        """An execution command up to its ``*stopped`` record."""
        mark = self.relay.mark() if self.relay else 0
        token, start = self._write(command)
        deadline = time.monotonic() + timeout
        text = []
        while True:
            when, record = self._next(deadline)
            if record["type"] in ("console", "target") and record["payload"]:
                text.append(record["payload"])
            if record["type"] == "result" and record.get("token") == token and record["message"] == "error":
                raise RuntimeError(f"{command}: {record['payload']}")
            if record["type"] == "notify" and record["message"] == "stopped":
                server = self.relay.resume_time(mark) if self.relay else 0.0
                packets, server_all = self.relay.all_packets(mark) if self.relay else (0, 0.0)
                return Moved(when - start, server, record["payload"] or {}, "".join(text), packets, server_all)

    def connect(self, relay: PacketRelay) -> None:
        self.relay = relay
        self.mi(f"-target-select remote 127.0.0.1:{relay.port}", timeout=60)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin:
                self.proc.stdin.write(b"-gdb-exit\n")
                self.proc.stdin.flush()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.relay:
            self.relay.close()


# -- the three kinds of debuggee ------------------------------------------------------------------------------
@dataclass(slots=True)
class Debuggee:
    """A running stub (chronicorn serve / replay, or QEMU replaying) with gdb connected through a relay."""

    kind: str  # "serve", "replay" or "qemu"
    proc: Process | subprocess.Popen[bytes]
    gdb: Gdb
    scratch: list[Path] = field(default_factory=list)

    @property
    def is_qemu(self) -> bool:
        return self.kind == "qemu"

    def icount(self) -> int | None:
        """Where the target stands (chronicorn: ``monitor icount``; QEMU: ``monitor info replay``)."""
        text = self.gdb.console("monitor info replay" if self.is_qemu else "monitor icount")
        found = re.search(r"instruction count = (\d+)" if self.is_qemu else r"^\s*(\d+)\s*$", text, re.MULTILINE)
        return int(found.group(1)) if found else None

    def close(self) -> None:
        self.gdb.close()
        if isinstance(self.proc, Process):
            self.proc.stop()
        else:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
        for path in self.scratch:
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def debuggee(kind: str, elf: Path, chron: Chronicorn, recording: Path | None) -> Iterator[Debuggee]:
    gdb = Gdb(elf)
    scratch: list[Path] = []
    if kind == "qemu":
        assert recording is not None
        drive = recording.with_suffix(f".{os.getpid()}.{time.monotonic_ns()}.qcow2")
        shutil.copyfile(recording.with_suffix(".qcow2"), drive)
        scratch.append(drive)
        port = free_port()
        proc: Process | subprocess.Popen[bytes] = subprocess.Popen(
            [QEMU, *QEMU_BASE, *qemu_rr("replay", recording, drive), "-gdb", f"tcp:127.0.0.1:{port}", "-S",
             "-kernel", str(elf)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    elif kind == "serve":
        proc, port = chronicorn_server(chron, "serve", str(elf))
    else:
        assert recording is not None
        proc, port = chronicorn_server(chron, "replay", str(recording), "--guest", str(elf))
    target = Debuggee(kind, proc, gdb, scratch)
    try:
        gdb.connect(PacketRelay(port))
        yield target
    finally:
        target.close()


def qemu_rr(mode: str, recording: Path, drive: Path) -> list[str]:
    return ["-icount", f"shift=3,rr={mode},rrfile={recording},rrsnapshot=init",
            "-drive", f"file={drive},if=none,id=rr"]  # fmt: skip


# -- forward, whole guest -------------------------------------------------------------------------------------
def bare_worker(elf: Path) -> None:
    """``--bare-worker``: the guest on a Unicorn engine with no hooks; prints the seconds inside emu_start."""
    from elftools.elf.elffile import ELFFile
    from unicorn import UC_ARCH_RISCV, UC_MODE_RISCV64, UC_PROT_ALL, Uc

    ram_base, ram_size = 0x8000_0000, 128 << 20
    uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
    ram = mmap.mmap(-1, ram_size)
    uc.mem_map_ptr(ram_base, ram_size, UC_PROT_ALL, ctypes.addressof(ctypes.c_char.from_buffer(ram)))
    out = bytearray()

    def read(uc: Uc, offset: int, size: int, data: str) -> int:
        return 0x60 if data == "uart" and offset == 5 else 0  # LSR: transmitter empty

    def write(uc: Uc, offset: int, size: int, value: int, data: str) -> None:
        if data == "uart" and offset == 0:
            out.append(value & 0xFF)
        elif data == "finisher":
            uc.emu_stop()

    uc.mmio_map(0x1000_0000, 0x1000, read, "uart", write, "uart")
    uc.mmio_map(0x0010_0000, 0x1000, read, "finisher", write, "finisher")
    with open(elf, "rb") as stream:
        image = ELFFile(stream)
        for segment in image.iter_segments("PT_LOAD"):
            offset = segment["p_paddr"] - ram_base
            data = segment.data()
            ram[offset : offset + len(data)] = data
        entry = image["e_entry"]
    start = time.perf_counter()
    uc.emu_start(entry, 0)
    print(f"{time.perf_counter() - start:.6f} {out.decode(errors='replace').strip()}")


def timed_process(cmd: list[str], timeout: float) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return elapsed, done.stdout.decode(errors="replace")


def forward_round(elf: Path, chron: Chronicorn, qemu: bool, work: Path, out: dict[str, Any]) -> Path:
    """Whole-guest forward rows and start-up; returns the chronicorn recording made (for replay --port)."""
    wall, text = timed_process([sys.executable, __file__, "--bare-worker", str(elf)], 600)
    out["bare"], out["bare_engine"] = wall, float(text.split()[0])
    out["startup"] = statistics.median(chron.wall("run", str(elf), "--max-insns", "1000", timeout=60)
                                       for _ in range(3))  # fmt: skip
    out["run"] = chron.wall("run", str(elf), timeout=600)
    if qemu:
        out["qemu_plain"], _ = timed_process([QEMU, *QEMU_BASE, "-kernel", str(elf)], 600)
        out["qemu_icount"], _ = timed_process([QEMU, *QEMU_BASE, "-icount", "shift=3", "-kernel", str(elf)], 600)
    recording = work / "chronicorn.chrec"
    recording.unlink(missing_ok=True)
    out["record"] = chron.wall("record", str(elf), "-o", str(recording), timeout=600)
    if qemu:
        qrec = work / "qemu.rr"
        subprocess.run(["qemu-img", "create", "-f", "qcow2", str(qrec.with_suffix(".qcow2")), "64M"],
                       check=True, capture_output=True)  # fmt: skip
        drive = qrec.with_suffix(".qcow2")
        out["qemu_record"], _ = timed_process([QEMU, *QEMU_BASE, *qemu_rr("record", qrec, drive), "-kernel", str(elf)],
                                              600)  # fmt: skip
    out["replay"] = chron.wall("replay", str(recording), "--guest", str(elf), timeout=600)
    if qemu:
        # The replay must not write into the recording's drive: a copy.
        copy = work / "qemu.replay.qcow2"
        shutil.copyfile(drive, copy)
        out["qemu_replay"], _ = timed_process([QEMU, *QEMU_BASE, *qemu_rr("replay", qrec, copy), "-kernel", str(elf)],
                                              600)  # fmt: skip
        copy.unlink()
    return recording


def gdb_forward(kind: str, elf: Path, chron: Chronicorn, recording: Path | None, unhit: bool,
                timeout: float) -> float | None:  # fmt: skip
    """``continue`` from reset to ``guest_exit`` (optionally with a never-hit breakpoint in the hot page)."""
    with debuggee(kind, elf, chron, recording) as target:
        target.gdb.mi("-break-insert guest_exit")
        if unhit:
            target.gdb.mi("-break-insert unhit")
        try:
            moved = target.gdb.move("-exec-continue", timeout)
        except Timeout:
            return None
        if moved.stop.get("reason") != "breakpoint-hit":
            sys.exit(f"{kind}: continue did not stop at guest_exit: {moved.stop}")
        return moved.wall


# -- stepi / reverse-stepi at depths, reverse-continue, reverse watch ----------------------------------------
def at_end(target: Debuggee, timeout: float) -> Moved:
    """Go to the end of the guest: its exit for chronicorn (history end), ``guest_exit`` for QEMU."""
    gdb = target.gdb
    gdb.mi("-break-delete")
    if target.is_qemu:
        gdb.mi("-break-insert guest_exit")
    moved = gdb.move("-exec-continue", timeout)
    gdb.mi("-break-delete")
    return moved


def steps_here(target: Debuggee, label: str, out: dict[str, Any], timeout: float) -> None:
    gdb = target.gdb
    here = target.icount()
    back = [gdb.move("-exec-step-instruction --reverse", timeout) for _ in range(STEPS_BACK)]
    forward = [gdb.move("-exec-step-instruction", timeout) for _ in range(STEPS_BACK)]
    if target.icount() != here:
        sys.exit(f"{target.kind}: {STEPS_BACK} stepi back and forth did not return to {here} ({label})")
    out[f"depth_{label}"] = here
    out[f"bs_first_{label}"] = back[0].wall
    out[f"bs_first_server_{label}"] = back[0].server
    out[f"bs_next_{label}"] = statistics.median(m.wall for m in back[1:])
    out[f"bs_next_server_{label}"] = statistics.median(m.server for m in back[1:])
    out[f"stepi_{label}"] = statistics.median(m.wall for m in forward)
    out[f"stepi_server_{label}"] = statistics.median(m.server for m in forward)
    out[f"stepi_all_{label}"] = statistics.median(m.server_all for m in forward)
    out[f"stepi_packets_{label}"] = statistics.median(m.packets for m in forward)
    out[f"bs_all_{label}"] = statistics.median(m.server_all for m in back[1:])
    out[f"bs_packets_{label}"] = statistics.median(m.packets for m in back[1:])


def depth_session(kind: str, plan: GuestPlan, chron: Chronicorn, recording: Path | None, far_ops: bool,
                  timeout: float, out: dict[str, Any]) -> None:  # fmt: skip
    """Depth rows (and, with ``far_ops``, reverse-continue to ``marker`` and the reverse watch)."""
    try:
        with debuggee(kind, plan.elf, chron, recording) as target:
            gdb = target.gdb
            done = 0
            for k in plan.ticks:
                gdb.mi("-break-delete")
                gdb.mi(f"-break-insert -i {k - done - 1} tick")
                arrived = gdb.move("-exec-continue", timeout)
                if arrived.stop.get("reason") != "breakpoint-hit":
                    sys.exit(f"{kind}: continue did not stop at tick #{k}: {arrived.stop}")
                gdb.mi("-break-delete")  # steps with no breakpoint set (QEMU single-steps pages holding one)
                done = k
                steps_here(target, f"t{k}", out, timeout)
            at_end(target, timeout)
            steps_here(target, "end", out, timeout)
            if not far_ops:
                return
            end = target.icount()
            far_reverse_continue(target, "bc", timeout, out)
            at_end(target, timeout)
            gdb.mi("-break-watch page.shared")
            start = time.perf_counter()
            try:
                moved = gdb.move("-exec-continue --reverse", timeout)
            except Timeout:
                out["watch"] = f"> {timeout:.0f} s"
                return
            now = target.icount()
            # QEMU reports a plain SIGTRAP in the writer (no old/new value); chronicorn a watchpoint-trigger.
            if (moved.stop.get("frame") or {}).get("func") != "tick":
                print(f"  {kind}: reverse watch stopped outside tick: {moved.stop} {moved.console!r}", file=sys.stderr)
            out["watch"] = time.perf_counter() - start
            out["watch_server"] = moved.server
            if end is not None and now is not None:
                out["watch_distance"] = end - now
    except Timeout:
        out.setdefault("timeouts", []).append("depth session")


def far_reverse_continue(target: Debuggee, key: str, timeout: float, out: dict[str, Any]) -> None:
    """From where we stand (the end), ``reverse-continue`` to the breakpoint at ``marker``."""
    gdb = target.gdb
    end = target.icount()
    gdb.mi("-break-insert marker")
    try:
        moved = gdb.move("-exec-continue --reverse", timeout)
    except Timeout:
        out[key] = f"> {timeout:.0f} s"
        raise
    if moved.stop.get("reason") != "breakpoint-hit":
        sys.exit(f"{target.kind}: reverse-continue did not stop at marker: {moved.stop}")
    out[key], out[key + "_server"] = moved.wall, moved.server
    now = target.icount()
    if end is not None and now is not None:
        out[key + "_distance"] = end - now
    gdb.mi("-break-delete")


def long_session(kind: str, chron: Chronicorn, recording: Path | None, timeout: float, out: dict[str, Any]) -> None:
    """The 1.1e9 guest: to the end, then reverse-continue to ``marker`` (~1,078M back)."""
    try:
        with debuggee(kind, LONG, chron, recording) as target:
            moved = at_end(target, timeout)
            out["long_forward"] = moved.wall
            far_reverse_continue(target, "bc_long", timeout, out)
    except Timeout:
        pass


def qemu_long_recording(work: Path) -> Path:
    qrec = work / "qemu-long.rr"
    drive = qrec.with_suffix(".qcow2")
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(drive), "64M"], check=True, capture_output=True)
    timed_process([QEMU, *QEMU_BASE, *qemu_rr("record", qrec, drive), "-kernel", str(LONG)], 600)
    return qrec


# -- the report -----------------------------------------------------------------------------------------------
def med(rounds: list[dict[str, Any]], key: str) -> float | str | None:
    """The median of a key over rounds; a timeout string if any round timed out; None if never measured."""
    values = [r[key] for r in rounds if key in r]
    if not values:
        return None
    timeouts = [v for v in values if isinstance(v, str)]
    if timeouts:
        return timeouts[0]
    return statistics.median(values)


def ms(value: float | str | None) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else f"{value * 1e3:.1f} ms"


def sec(value: float | str | None) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else f"{value:.3f} s"


def ratio(a: float | str | None, b: float | str | None) -> str:
    if not isinstance(a, float) or not isinstance(b, float) or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def report(results: dict[str, list[dict[str, Any]]], plan: GuestPlan, args: argparse.Namespace,
           load: tuple[tuple[float, ...], tuple[float, ...]], started: float) -> str:  # fmt: skip
    fwd, serve, replay, qemu = (results[k] for k in ("forward", "serve", "replay", "qemu"))
    fserve, fqemu, long_s, long_q = (results[k] for k in ("fwd_serve", "fwd_qemu", "long_serve", "long_qemu"))
    lines = [
        f"# chronicorn vs QEMU ({plan.elf.name})",
        "",
        f"`scripts/bench_vs_qemu.py{' --quick' if args.quick else ''} --rounds {args.rounds}"
        f"{' --no-qemu' if args.no_qemu else ''}` — chronicorn from `{args.chronicorn_root}`"
        f" ({git_describe(args.chronicorn_root)}); medians of {args.rounds} rounds"
        f" (1.1e9 guest: {args.long_rounds}); {os.cpu_count()} CPUs, {platform.python_version()};"
        f" load average at start {fmt_load(load[0])}, at end {fmt_load(load[1])};"
        f" {(time.monotonic() - started) / 60:.1f} min.",
        "",
        "Round trips are gdb-multiarch's (MI command to `*stopped`); \"server\" is the stub's time for the resume"
        " packet(s), timed by the relay. Forward times are process wall times, start-up included.",
        "",
        "| measure | chronicorn | QEMU 7.2 | bar |",
        "|---|---|---|---|",
    ]

    def row(name: str, ours: str, theirs: str, bar: str = "") -> None:
        lines.append(f"| {name} | {ours} | {theirs} | {bar} |")

    bare = med(fwd, "bare")
    row("start-up: `chronicorn run GUEST --max-insns 1000`", sec(med(fwd, "startup")), "", "<= 0.3 s")
    row("forward, whole guest: bare Unicorn (engine only)", f"{sec(bare)} ({sec(med(fwd, 'bare_engine'))})", "", "")
    row("forward: QEMU without icount / `-icount shift=3`", "",
        f"{sec(med(fwd, 'qemu_plain'))} / {sec(med(fwd, 'qemu_icount'))}")  # fmt: skip
    for mode in ("run", "record", "replay"):
        q = med(fwd, f"qemu_{mode}") if mode != "run" else None
        row(f"forward: `{mode}` (/ bare Unicorn)", f"{sec(med(fwd, mode))} ({ratio(med(fwd, mode), bare)})",
            sec(q) if mode != "run" else "", "<= 1.1x bare, < QEMU record")  # fmt: skip
    row("`continue` reset -> `guest_exit` through gdb (serve: live / QEMU replay)", sec(med(fserve, "plain")),
        sec(med(fqemu, "plain")))  # fmt: skip
    row("  the same with an unhit breakpoint in the hot code page", sec(med(fserve, "unhit")),
        sec(med(fqemu, "unhit")))  # fmt: skip
    labels = [f"t{k}" for k in plan.ticks] + ["end"]
    for label in labels:
        depth = med(serve, f"depth_{label}")
        where = f"{depth / 1e6:.1f}M" if isinstance(depth, float | int) else label
        where += " (end: guest exited / QEMU at guest_exit)" if label == "end" else f" (tick #{label[1:]})"
        for server_kind, rounds in (("serve", serve), ("replay --port", replay)):
            row(f"at {where}, {server_kind}: stepi", stepi_cell(rounds, label),
                stepi_cell(qemu, label) if server_kind == "serve" else "", "<= QEMU")  # fmt: skip
            row(f"at {where}, {server_kind}: first reverse-stepi",
                f"{ms(med(rounds, 'bs_first_' + label))} (server {ms(med(rounds, 'bs_first_server_' + label))})",
                f"{ms(med(qemu, 'bs_first_' + label))} (server {ms(med(qemu, 'bs_first_server_' + label))})"
                if server_kind == "serve" else "",
                "<= 1.2x stepi, server <= 5 ms")  # fmt: skip
            row(f"at {where}, {server_kind}: next reverse-stepi",
                f"{ms(med(rounds, 'bs_next_' + label))} (server {ms(med(rounds, 'bs_next_server_' + label))})",
                f"{ms(med(qemu, 'bs_next_' + label))} (server {ms(med(qemu, 'bs_next_server_' + label))})"
                if server_kind == "serve" else "", "same as steady" if label == "end" else "")  # fmt: skip
    dist = med(serve, "bc_distance")
    row(f"reverse-continue to `marker`, {fmt_m(dist)} back (serve)",
        f"{sec(med(serve, 'bc'))} (server {sec(med(serve, 'bc_server'))})",
        f"{sec(med(qemu, 'bc'))} (server {sec(med(qemu, 'bc_server'))})", "<= 1 s")  # fmt: skip
    row(f"reverse-continue to `marker`, {fmt_m(med(long_s, 'bc_long_distance'))} back (1.1e9 guest)",
        f"{sec(med(long_s, 'bc_long'))} (server {sec(med(long_s, 'bc_long_server'))})",
        f"{sec(med(long_q, 'bc_long'))} (server {sec(med(long_q, 'bc_long_server'))})", "<= 1 s")  # fmt: skip
    row("  (`continue` to the end of the 1.1e9 guest first)", sec(med(long_s, "long_forward")),
        sec(med(long_q, "long_forward")))  # fmt: skip
    wdist = med(serve, "watch_distance")
    row(f"reverse watch on `page.shared` (its page written all along), {fmt_m(wdist)} back",
        f"{sec(med(serve, 'watch'))} ({rate(wdist, med(serve, 'watch'))})",
        f"{sec(med(qemu, 'watch'))} ({rate(wdist, med(qemu, 'watch'))})", ">= 30M instructions/s")  # fmt: skip
    for name, rounds in (("serve", serve), ("replay", replay), ("QEMU", qemu), ("long serve", long_s),
                         ("long QEMU", long_q)):  # fmt: skip
        timeouts = sorted({t for r in rounds for t in r.get("timeouts", [])})
        if timeouts:
            lines.append(f"\n{name}: timed out in {', '.join(timeouts)}")
    return "\n".join(lines) + "\n"


def stepi_cell(rounds: list[dict[str, Any]], label: str) -> str:
    """A stepi round trip, the stub's time for the resume packet and for all the packets of the step."""
    packets = med(rounds, f"stepi_packets_{label}")
    count = f"{packets:.0f} " if isinstance(packets, float | int) else ""
    return (f"{ms(med(rounds, 'stepi_' + label))} (server {ms(med(rounds, 'stepi_server_' + label))}; "
            f"all {count}packets {ms(med(rounds, 'stepi_all_' + label))})")  # fmt: skip


def fmt_m(value: float | str | None) -> str:
    return f"{value / 1e6:.0f}M" if isinstance(value, float | int) else "?"


def rate(distance: float | str | None, seconds: float | str | None) -> str:
    if isinstance(seconds, str):
        return f"< {distance / 1e6 / float(seconds.split()[1]):.0f}M/s" if isinstance(distance, float | int) else "?"
    if not isinstance(distance, float | int) or not isinstance(seconds, float) or seconds <= 0:
        return "?"
    return f"{distance / seconds / 1e6:.0f}M instructions/s"


def fmt_load(load: tuple[float, ...]) -> str:
    return " / ".join(f"{x:.2f}" for x in load)


def git_describe(root: Path) -> str:
    done = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h"], capture_output=True, check=False)
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, check=False).stdout.strip()  # fmt: skip
    return (done.stdout.decode().strip() or "not a git checkout") + (" with uncommitted changes" if dirty else "")


def plot(results: dict[str, list[dict[str, Any]]], plan: GuestPlan, path: Path, note: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"t{k}" for k in plan.ticks] + ["end"]
    fig, ax = plt.subplots(figsize=(11, 5.5))
    styles = {"serve": ("chronicorn serve", "tab:blue"), "replay": ("chronicorn replay --port", "tab:green"),
              "qemu": ("QEMU 7.2 rr=replay", "tab:red")}  # fmt: skip
    for kind, (name, colour) in styles.items():
        rounds = results[kind]
        if not rounds:
            continue
        for which, style in (("first", "-o"), ("next", "--s")):
            points = [(med(rounds, f"depth_{x}"), med(rounds, f"bs_{which}_{x}")) for x in labels]
            points = [(d / 1e6, v * 1e3) for d, v in points if isinstance(d, float | int) and isinstance(v, float)]
            if points:
                ax.plot(*zip(*points, strict=True), style, color=colour, label=f"{name}: {which} reverse-stepi")
        stepi = [(med(rounds, f"depth_{x}"), med(rounds, f"stepi_{x}")) for x in labels]
        stepi = [(d / 1e6, v * 1e3) for d, v in stepi if isinstance(d, float | int) and isinstance(v, float)]
        if stepi:
            ax.plot(*zip(*stepi, strict=True), ":", color=colour, alpha=0.6, label=f"{name}: stepi")
    ax.set_yscale("log")
    ax.set_xlabel("depth (million instructions since reset)")
    ax.set_ylabel("gdb round trip (ms, log scale)")
    ax.set_title(f"reverse-stepi and stepi round trips through gdb against depth ({plan.elf.name}, medians)\n{note}",
                 fontsize=10)  # fmt: skip
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


# -- main -----------------------------------------------------------------------------------------------------
def run_rounds(args: argparse.Namespace, plan: GuestPlan, chron: Chronicorn, work: Path
               ) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    qemu = not args.no_qemu
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in (
        "forward", "serve", "replay", "qemu", "fwd_serve", "fwd_qemu", "long_serve", "long_qemu")}  # fmt: skip
    qrec = work / "qemu.rr"
    t = args.timeout

    def step(name: str, fn: Callable[[], None]) -> None:
        start = time.monotonic()
        fn()
        print(f"    {name}: {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)

    for i in range(args.rounds):
        print(f"round {i + 1}/{args.rounds} (load {fmt_load(os.getloadavg())})", file=sys.stderr, flush=True)
        fwd: dict[str, Any] = {}
        recording: list[Path] = []
        step("forward (bare, run, record, replay; QEMU)", lambda fwd=fwd, recording=recording: recording.append(
            forward_round(plan.elf, chron, qemu, work, fwd)))  # fmt: skip
        results["forward"].append(fwd)
        fs: dict[str, Any] = {}
        fq: dict[str, Any] = {}
        for unhit in (False, True):
            key = "unhit" if unhit else "plain"
            step(f"serve continue ({key})", lambda fs=fs, key=key, unhit=unhit: fs.__setitem__(
                key, gdb_forward("serve", plan.elf, chron, None, unhit, t)))  # fmt: skip
            if qemu:
                step(f"QEMU continue ({key})", lambda fq=fq, key=key, unhit=unhit: fq.__setitem__(
                    key, gdb_forward("qemu", plan.elf, chron, qrec, unhit, t) or f"> {t:.0f} s"))  # fmt: skip
        results["fwd_serve"].append(fs)
        results["fwd_qemu"].append(fq)
        for kind, rec, far in (("serve", None, True), ("qemu", qrec, True), ("replay", recording[0], False)):
            if kind == "qemu" and not qemu:
                continue
            out: dict[str, Any] = {}
            step(f"{kind} depths{' + reverse-continue + watch' if far else ''}", lambda kind=kind, rec=rec, far=far,
                 out=out: depth_session(kind, plan, chron, rec, far, t, out))  # fmt: skip
            results[kind].append(out)
        if not args.quick and i < args.long_rounds:
            out = {}
            step("1.1e9 serve", lambda out=out: long_session("serve", chron, None, max(t, 120), out))
            results["long_serve"].append(out)
            if qemu:
                out = {}
                step("1.1e9 QEMU", lambda out=out: long_session("qemu", chron, qemu_long_recording(work), t, out))
                results["long_qemu"].append(out)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--long-rounds", type=int, default=1, help="rounds of the 1.1e9 guest (default 1)")
    parser.add_argument("--quick", action="store_true", help="the 71M guest, no 1.1e9 guest: a smoke test")
    parser.add_argument("--no-qemu", action="store_true", help="chronicorn only")
    parser.add_argument("--chronicorn-root", type=Path, default=ROOT, help="the checkout to run chronicorn from")
    parser.add_argument("--timeout", type=float, default=60, help="seconds for any one gdb operation")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--plot", type=Path, help="PNG of reverse-stepi latency against depth")
    parser.add_argument("--bare-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_worker:
        bare_worker(args.bare_worker)
        return 0
    args.chronicorn_root = args.chronicorn_root.resolve()
    if shutil.which(GDB) is None:
        sys.exit(f"{GDB} is not installed")
    if not args.no_qemu and (shutil.which(QEMU) is None or shutil.which("qemu-img") is None):
        print(f"{QEMU} or qemu-img not installed: chronicorn only", file=sys.stderr)
        args.no_qemu = True
    plan = QUICK if args.quick else MAIN
    started = time.monotonic()
    load_start = os.getloadavg()
    print(f"load average at start: {fmt_load(load_start)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_vs_qemu.") as tmp:
        results = run_rounds(args, plan, Chronicorn(args.chronicorn_root), Path(tmp))
    load_end = os.getloadavg()
    print(f"load average at end: {fmt_load(load_end)}", flush=True)
    text = report(results, plan, args, (load_start, load_end), started)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)
    if args.plot:
        note = f"chronicorn {git_describe(args.chronicorn_root)}, {args.rounds} rounds, load {fmt_load(load_end)}"
        plot(results, plan, args.plot, note)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
