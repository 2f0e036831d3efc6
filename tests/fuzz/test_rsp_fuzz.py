"""An RSP fuzzer against a real ``chronicorn serve`` over TCP (issue 11, "What to add" 1).

Every kind of packet gdb sends, with random and extreme arguments (0, max u64, past u64, huge lengths,
negative-looking and odd-length hex, addresses in RAM, in device registers, in the boot ROM and unmapped),
random ``monitor`` text (``seek``, ``snapshot save/load``, ``record save`` with hostile names), bad
checksums, truncated, run-length encoded and 1 MB packets, binary junk, interleaved 0x03, ack and no-ack
mode, ``k``/``D``/``vKill``, reconnects and a second client. The seed is fixed and the count bounded:
:data:`DEFAULT_PACKETS`, or ``CHRONICORN_FUZZ_PACKETS`` (100000 for the long run).

A failure is a traceback (or "Exception", or a "replay diverged" of the server's own live history) in the
server's log, a connection the server dropped although the packet did not ask for it, no reply within
:data:`REPLY_TIMEOUT_S` (a socket timeout), a malformed reply, or the server process gone. Every
:data:`CHECK_EVERY` packets the server must answer ``?`` with a stop reply and ``g`` with a register block of
the right length. Failures are collected; the test asserts at the end, showing the packets that led to the
first few. Each is saved (``failure-N.jsonl``, every step since the server started, under the test's
temporary directory) and can be sent again to a fresh server::

    .venv/bin/python -m tests.fuzz.test_rsp_fuzz /tmp/pytest-.../failure-1.jsonl
"""

from __future__ import annotations

import base64
import contextlib
import enum
import json
import os
import queue
import random
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest

from gdbstub.client import stop_process
from gdbstub.rsp.codec import Ack, Decoder, Packet, checksum, encode, escape
from gdbstub.session import PACKET_SIZE
from tests.conftest import GUESTS, guest

SEED = 0x11
DEFAULT_PACKETS = 20_000
REPLY_TIMEOUT_S = 5.0
CHECK_EVERY = 250
START_TIMEOUT_S = 60.0
GENTLE_PACKETS, ROUGH_PACKETS = 4000, 1000  # steps sent to each server before the next one starts
STEP_S = 2.0  # a step that has not ended after this long is stopped with Ctrl-C (and must be waiting in wfi)
STEPS = (b"s", b"S", b"vCont;s", b"vCont;S", b"bs")
WFI = (0x10500073).to_bytes(4, "little").hex().encode()
RUN_S = 0.1  # how long a continue may run before the fuzzer sends Ctrl-C (if it does not stop by itself)
SHOWN_FAILURES = 3  # in the assertion message (all are saved)
WINDOW = 12  # steps shown before each failure

# cmdint: a 1 ms CLINT timer, UART receive interrupts through the PLIC, runs until told to quit (its input
# has no "quit"), so the live end keeps moving and every device is in play.
GUEST = guest("rv32", "cmdint")
UART_INPUT = b"".join(line + b"\n" for line in (GUESTS / "inputs/cmdint-ok.txt").read_bytes().split(b"\n")
                      if line and line != b"quit")  # fmt: skip
G_HEX_CHARS = 2 * 4 * 33  # rv32: x0-x31 and pc
LOG_FAILURE = re.compile(r"Traceback|Exception|replay diverged")

STOP_REPLY = re.compile(rb"T[0-9a-f]{2}thread:1;([a-z]+:[0-9a-z]*;)?|S[0-9a-f]{2}|W[0-9a-f]{2}")
ERROR = rb"E[0-9a-f]{2}"
HEX_TEXT = re.compile(rb"([0-9a-f]{2})+")  # a qRcmd reply, the text of an O packet


class Reply(enum.Enum):
    """What a well-formed packet must be answered with (every reply may also be ``Exx`` unless said)."""

    ANY = re.compile(rb".*", re.S)
    HALT = STOP_REPLY
    STOP = re.compile(STOP_REPLY.pattern + rb"|" + ERROR)
    REGISTERS = re.compile(rb"[0-9a-f]{%d}" % G_HEX_CHARS)
    HEX = re.compile(rb"([0-9a-f]{2})*|" + ERROR)
    OK = re.compile(rb"OK|" + ERROR)
    OK_OR_EMPTY = re.compile(rb"(OK)?|" + ERROR)
    XFER = re.compile(rb"([ml].*)?|" + ERROR, re.S)
    EMPTY = re.compile(rb"")


class Expect(enum.Enum):
    REPLY = "reply"  # one reply, checked against the step's Reply
    CLOSE = "close"  # k: no reply, the server closes
    REPLY_CLOSE = "reply-close"  # D, vKill: OK, then the server closes
    SYNC = "sync"  # junk: what comes back is not predictable (a '-' resends the last reply): synchronise
    NOTHING = "nothing"  # a lone 0x03 (it interrupts the next resume)
    UART = "uart"  # the parts go to the guest's UART (the server's stdin), not to the socket
    RECONNECT = "reconnect"  # the client closes its connection and connects again
    SECOND_CLIENT = "second-client"  # another client connects meanwhile: refused (closed at once)


@dataclass(frozen=True)
class Step:
    """What the fuzzer sends in one go; ``parts`` are sent one after the other, each after the ``+`` of the
    previous one in ack mode (``c``, then 0x03 while the run is going). With ``run_s``, a later part is sent
    only if no reply came within that time (the user presses Ctrl-C when a continue does not stop by itself)."""

    label: str
    parts: tuple[bytes, ...]
    expect: Expect = Expect.REPLY
    reply: Reply = Reply.ANY
    run_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {"label": self.label, "parts": [base64.b64encode(p).decode() for p in self.parts],
                "expect": self.expect.value, "reply": self.reply.name, "run_s": self.run_s}  # fmt: skip

    @classmethod
    def from_json(cls, row: dict) -> Step:
        return cls(row["label"], tuple(base64.b64decode(p) for p in row["parts"]), Expect(row["expect"]),
                   Reply[row["reply"]], row.get("run_s", 0.0))  # fmt: skip

    def describe(self, limit: int = 100) -> str:
        shown = b"".join(self.parts)
        text = repr(shown[:limit]) + (f"... ({len(shown)} bytes)" if len(shown) > limit else "")
        return f"{self.label}: {text}"


class Dropped(Exception):
    """The server closed (or reset) the connection."""


class BadReply(Exception):
    """A reply that does not fit the packet."""


# -- the server and one connection -----------------------------------------------------------------------
class Server:
    """``chronicorn serve GUEST --port 0`` in ``workdir``; stderr to a file, stdout (the UART) drained."""

    def __init__(self, workdir: Path, generation: int) -> None:
        self.workdir = workdir
        self.save_dir = workdir / "save"
        cwd = workdir / "cwd"  # where a 'record save' that escaped the save directory could land
        for directory in (self.save_dir, cwd, workdir / "outside"):
            directory.mkdir(exist_ok=True)
        self.stderr_path = workdir / f"server-{generation}.stderr"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in stop()
        self._log_offset = 0
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gdbstub.cli", "serve", str(GUEST), "--port", "0", "--save-dir",
             str(self.save_dir), "--uart-input", "-"],
            cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
        )  # fmt: skip
        self.type(UART_INPUT)
        first: queue.Queue[bytes] = queue.Queue()
        assert self.proc.stdout is not None
        self._drain = threading.Thread(target=_drain, args=(self.proc.stdout, first, workdir / "uart-out.txt"),
                                       daemon=True)  # fmt: skip
        self._drain.start()
        try:
            line = first.get(timeout=START_TIMEOUT_S).decode(errors="replace")
        except queue.Empty:
            line = ""
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"the server did not start: {line!r} {self.stderr_path.read_text()[-2000:]}")
        self.port = int(line.rsplit(":", 1)[1])

    def type(self, data: bytes) -> None:
        """UART input: the guest receives it whenever it runs live next (at an icount nobody chooses)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # the server is gone: the next step says so

    def is_alive(self) -> bool:
        return self.proc.poll() is None

    def new_log(self) -> str:
        """What the server wrote to stderr since the last call."""
        with open(self.stderr_path, "rb") as stream:
            stream.seek(self._log_offset)
            data = stream.read()
        self._log_offset += len(data)
        return data.decode(errors="replace")

    def stop(self) -> None:
        stop_process(self.proc)
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        self._drain.join(timeout=10)
        self._stderr.close()


def _drain(stream: BinaryIO, first: queue.Queue[bytes], out: Path) -> None:
    first.put(stream.readline())
    with open(out, "ab") as sink:
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            sink.write(chunk)


def _is_console(payload: bytes) -> bool:
    return payload.startswith(b"O") and payload != b"OK" and HEX_TEXT.fullmatch(payload[1:]) is not None


class Connection:
    """One client socket: sends bytes, decodes replies (acking them in ack mode, as gdb does)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ack_mode = True
        self._decoder = Decoder(max_packet=1 << 24)
        self._packets: deque[bytes] = deque()
        self._acks = 0

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise Dropped(f"sending: {exc}") from None

    def _receive(self) -> None:
        try:
            chunk = self.sock.recv(1 << 20)  # TimeoutError after REPLY_TIMEOUT_S
        except ConnectionResetError as exc:
            raise Dropped(f"receiving: {exc}") from None
        if not chunk:
            raise Dropped("the server closed the connection")
        for event in self._decoder.feed(chunk):
            if isinstance(event, Packet):
                self._packets.append(event.payload)
                if self.ack_mode:
                    self.send(b"+")
            elif isinstance(event, Ack):
                self._acks += 1

    def wait_ack(self) -> None:
        while not self._acks:
            self._receive()
        self._acks -= 1

    def reply(self) -> bytes:
        """The next packet that is not a console ``O`` packet."""
        while True:
            while not self._packets:
                self._receive()
            payload = self._packets.popleft()
            if not _is_console(payload):
                return payload

    def replied_within(self, seconds: float) -> bool:
        """Whether a reply (not a console packet) arrives within ``seconds`` (it stays queued for :meth:`reply`)."""
        deadline = time.monotonic() + seconds
        while True:
            if any(not _is_console(payload) for payload in self._packets):
                return True
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return False
            self._receive()

    def wait_closed(self) -> None:
        """Until the server closes the connection (packets before that are dropped)."""
        try:
            while True:
                self._receive()
        except Dropped:
            return


# -- packets ---------------------------------------------------------------------------------------------
RAM_BASE, RAM_SIZE = 0x8000_0000, 128 << 20
U64 = (1 << 64) - 1
PLACES = (
    0, 1, 0x1000, 0x1FFF, 0x100000, 0x101000, 0x2000000, 0x2004000, 0x200BFF8, 0xC000000, 0xC200004,
    0x10000000, 0x10000005, 0x10000100, 0x40000000, RAM_BASE - 1, RAM_BASE, RAM_BASE + 0x1000,
    RAM_BASE + RAM_SIZE - 4, RAM_BASE + RAM_SIZE, 0xFFFFFFFF, 1 << 32, U64 - 3, U64, 1 << 64, 1 << 100,
)  # fmt: skip
LENGTHS = (0, 1, 2, 3, 4, 8, 16, 0x100, 0x1FFF, 0x2000, 0x2001, 0x4000, 0xFFFFFFFF, U64, 1 << 64)
REGNUMS = (0, 1, 2, 10, 31, 32, 33, 64, 65 + 1, 65 + 2, 65 + 3, 65 + 0x300, 65 + 0x304, 65 + 0x305, 65 + 0x341,
           65 + 0x344, 65 + 0xC00, 65 + 0xC01, 65 + 0xC81, 65 + 0xB00, 65 + 4096, 65 + 4097, 0xFFFF, U64)  # fmt: skip
CSR_REGNUMS = (65 + 0x300, 65 + 0x304, 65 + 0x305, 65 + 0x341, 65 + 0x342, 65 + 0x344, 65 + 0xB00, 65 + 0xB02,
               65 + 4096)  # fmt: skip
# Registers cmdint (an M-mode guest without floating point) never reads: writing them leaves it running, so
# the history goes on growing past many debugger writes. fflags/frm/fcsr, f0-f31, the S-mode CSRs, mscratch.
HARMLESS_REGNUMS = (65 + 1, 65 + 2, 65 + 3, *range(33, 65), 65 + 0x140, 65 + 0x141, 65 + 0x142, 65 + 0x143,
                    65 + 0x105, 65 + 0x180, 65 + 0x340)  # fmt: skip
SCRATCH = 0x8010_0000  # RAM cmdint never uses (its image, data and stack end at 0x80005200)
PATCH_AT = SCRATCH + 0x800
# rv32 instructions for patches: t0 = the UART, t1 = 'A' or 'B', store t1 to the UART, nop, a jump to itself
PATCH = (0x100002B7, 0x04100313, 0x04200313, 0x00628023, 0x00628023, 0x00000013, 0x0000006F)
NAMES = ("a", "b", "c", "n0", "n1", "", "a b", "../x", "é", "x" * 300)
SAVE_NAMES = ("r0.chrec", "r1.chrec", "r2.chrec", "sub/r.chrec", "../up.chrec", "../../up.chrec", ".", "..", "-f",
              "/dev/null", "a\tb.chrec", "é.chrec", "x" * 300, "save/../r3.chrec")  # fmt: skip
QSUPPORTED = (b"", b":multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;exec-events+;"
              b"vContSupported+;QThreadEvents+;no-resumed+;memory-tagging+;xmlRegisters=i386",
              b":", b":;;;", b":xmlRegisters=" + b"x" * 2000)  # fmt: skip


class Generator:
    """Random steps from a fixed seed; knows only what a client would (the end of history, the registers)."""

    def __init__(self, seed: int, outside: Path) -> None:
        self.rng = random.Random(seed)
        self.end_hint = 20_000
        self.registers = bytes(G_HEX_CHARS // 2)  # as the last 'g' answered (the fuzzer tells us)
        self._then: deque[Callable[[], Step]] = deque()  # steps that need the answer of the one before
        # Rough: some debugger writes that derail the guest (it soon faults, exits or waits forever: its history
        # stops growing). Gentle: writes it never notices, so its history grows long, with many keyframes.
        self.rough = False
        self._outside = outside
        kinds: list[tuple[float, Callable[[], Step]]] = [
            (6, self.halt_reason), (8, self.read_registers), (4, self.write_registers), (5, self.read_register),
            (6, self.write_register), (10, self.read_memory), (8, self.write_memory), (4, self.write_binary),
            (10, self.resume), (6, self.reverse), (10, self.breakpoint), (8, self.monitor), (3, self.queries),
            (3, self.xfer), (3, self.threads), (2, self.unknown), (4, self.bad_checksum), (3, self.truncated),
            (3, self.junk), (2, self.run_length), (2, self.lone_interrupt), (1, self.no_ack), (1, self.leave),
            (1, self.reconnect), (0.5, self.second_client), (0.15, self.big_packet), (2, self.uart_input),
            (1, self.patch),
        ]  # fmt: skip
        self._kinds = [kind for _, kind in kinds]
        self._weights = [weight for weight, _ in kinds]

    def step(self) -> Step:
        if self._then:
            return self._then.popleft()()
        return self.rng.choices(self._kinds, self._weights)[0]()

    # -- numbers ----------------------------------------------------------------------------------------
    @property
    def scratch(self) -> float:
        """How often memory writes go to RAM the guest never uses."""
        return 0.85 if self.rough else 1.0

    def hexnum(self, value: int) -> bytes:
        """``value`` in hex as a client might (or might not) write it."""
        r = self.rng.random()
        if r < 0.75:
            return b"%x" % value
        if r < 0.82:
            return b"%X" % value
        if r < 0.88:
            return b"0" * self.rng.randrange(1, 20) + b"%x" % value  # leading zeros, odd digit counts
        return self.rng.choice([b"-1", b"-%x" % value, b"0x%x" % value, b"", b"zz", b"1_0", b" 1", b"+1", b"%x" % U64])

    def addr(self, scratch: float = 0.0) -> int:
        r = self.rng.random()
        if r < scratch:
            return SCRATCH + self.rng.randrange(0, 0x10000) * self.rng.choice((1, 4))
        r = self.rng.random()
        if r < 0.45:
            return RAM_BASE + self.rng.randrange(0, 0x10000) * self.rng.choice((1, 4))
        if r < 0.55:
            return RAM_BASE + self.rng.randrange(RAM_SIZE)
        return self.rng.choice(PLACES) + self.rng.choice((0, 0, 0, 1, -1))

    def code_addr(self) -> int:
        """Where cmdint's code is (breakpoints there are hit)."""
        return RAM_BASE + self.rng.randrange(0, 0x800) * 2

    def length(self) -> int:
        return self.rng.randrange(1, 64) if self.rng.random() < 0.6 else self.rng.choice(LENGTHS)

    def hexdata(self, size: int) -> bytes:
        data = self.rng.randbytes(size).hex().encode()
        r = self.rng.random()
        if r < 0.05:
            return data[:-1]  # an odd number of hex digits
        if r < 0.08:
            return data.upper()
        if r < 0.10:
            return data[:1] + b"g" + data[2:]
        return data

    # -- well-formed packets ----------------------------------------------------------------------------
    def packet(self, label: str, payload: bytes, reply: Reply = Reply.ANY) -> Step:
        return Step(label, (encode(payload),), Expect.REPLY, reply)

    def halt_reason(self) -> Step:
        return self.packet("?", b"?", Reply.STOP)

    def read_registers(self) -> Step:
        return self.packet("g", b"g", Reply.REGISTERS)

    def write_registers(self) -> Step:
        if self.rng.random() < 0.85 or not self.rough:  # as gdb writes them: the registers it read
            self._then.append(self._write_back)
            return self.read_registers()
        regs = bytearray(self.registers)
        for _ in range(self.rng.randrange(1, 4)):
            i = self.rng.randrange(1, 33)
            value = self.rng.choice((0, 1, 0xFFFFFFFF, self.rng.getrandbits(32), self.code_addr()))
            regs[i * 4 : i * 4 + 4] = value.to_bytes(4, "little")
        body = bytes(regs).hex().encode()
        r = self.rng.random()
        if r < 0.1:
            body = body[: self.rng.randrange(len(body))]
        elif r < 0.15:
            body += b"00"
        elif r < 0.2:
            body = self.hexdata(self.rng.randrange(0, 200))
        return self.packet("G", b"G" + body, Reply.OK)

    def _write_back(self) -> Step:
        regs = bytearray(self.registers)
        if self.rough and self.rng.random() < 0.2:  # one changed
            i = self.rng.choice((5, 6, 7, 28, 29, 30, 31))  # a temporary
            regs[i * 4 : i * 4 + 4] = self.rng.randbytes(4)
        return self.packet("G", b"G" + bytes(regs).hex().encode(), Reply.OK)

    def patch(self) -> Step:
        """Rough: to the live end as in a check (breakpoints gone), a few instructions written to RAM (printing,
        say), a continue there (gdb's ``jump``)."""
        if not self.rough:
            return self.read_registers()
        body = [self.rng.choice(PATCH[1:-1]) for _ in range(self.rng.randrange(1, 8))]
        code = b"".join(word.to_bytes(4, "little") for word in [PATCH[0], *body, PATCH[-1]])
        write = self.packet("M patch", b"M%x,%x:" % (PATCH_AT, len(code)) + code.hex().encode(), Reply.OK)
        run = Step("c patch", (encode(b"c%x" % PATCH_AT), b"\x03"), Expect.REPLY, Reply.STOP, RUN_S)
        first, *then = _check_steps(self.end_hint)[:3]
        self._then.extend([*(lambda step=step: step for step in then), lambda: write, lambda: run])
        return first

    def read_register(self) -> Step:
        regnum = self.rng.choice(REGNUMS) if self.rng.random() < 0.7 else self.rng.randrange(0, 65 + 4100)
        return self.packet("p", b"p" + self.hexnum(regnum), Reply.HEX)

    def write_register(self) -> Step:
        if self.rng.random() < 0.8 or not self.rough:
            regnum = self.rng.choice(HARMLESS_REGNUMS)
        else:
            regnum = self.rng.choice((*REGNUMS, *CSR_REGNUMS, *range(1, 33)))
        size = self.rng.choice((4, 4, 4, 8, 1, 0, 3, 16))
        if regnum == 32 and self.rng.random() < 0.7:
            value = self.code_addr().to_bytes(4, "little").hex().encode()
        elif regnum == 65 + 4096:
            value = bytes([self.rng.choice((0, 1, 2, 3, 255))]).hex().encode()
        else:
            value = self.hexdata(size)
        return self.packet("P", b"P" + self.hexnum(regnum) + b"=" + value, Reply.OK)

    def read_memory(self) -> Step:
        return self.packet("m", b"m" + self.hexnum(self.addr()) + b"," + self.hexnum(self.length()), Reply.HEX)

    def write_memory(self) -> Step:
        size = self.rng.randrange(0, 64) if self.rng.random() < 0.9 else self.rng.randrange(0, 0x1FF0)
        declared = size if self.rng.random() < 0.85 else self.length()
        payload = b"M" + self.hexnum(self.addr(self.scratch)) + b"," + self.hexnum(declared) + b":" + self.hexdata(size)
        return self.packet("M", payload, Reply.OK)

    def write_binary(self) -> Step:
        size = self.rng.randrange(0, 64)
        data = bytes(self.rng.choice(b"$#}*\x03\x00+-ab") for _ in range(size)) if self.rng.random() < 0.5 \
            else self.rng.randbytes(size)  # fmt: skip
        declared = size if self.rng.random() < 0.85 else self.length()
        head = b"X" + self.hexnum(self.addr(self.scratch)) + b"," + self.hexnum(declared)
        return self.packet("X", head + b":" + data, Reply.OK)

    def resume(self) -> Step:
        """A forward resume, with 0x03 right behind (in the same write) or sent while it runs."""
        jump = b""
        r = self.rng.random()
        if r < 0.06 and self.rough:  # jump where it stood at the last 'g', to the patch, or anywhere
            pc = int.from_bytes(self.registers[128:132], "little")
            where = pc if r < 0.03 else PATCH_AT if r < 0.04 else self.code_addr() if r < 0.055 else self.addr()
            jump = self.hexnum(where)
        payload = self.rng.choice([b"c" + jump, b"s" + jump, b"C05" + (b";" + jump if jump else b""),
                                   b"S%02x" % self.rng.randrange(256), b"vCont;c", b"vCont;s", b"vCont;c:1",
                                   b"vCont;s:-1", b"vCont;C05", b"vCont;t", b"vCont;c:2", b"vCont;x", b"vCont",
                                   b"vCont?", b"vCont;S0b:p1.1"])  # fmt: skip
        return self._with_interrupt(payload)

    def reverse(self) -> Step:
        return self._with_interrupt(self.rng.choice([b"bs", b"bc", b"bs", b"bc", b"bc1", b"bsx"]))

    def _with_interrupt(self, payload: bytes) -> Step:
        framed = encode(payload)
        label = payload.decode(errors="replace")[:12]
        reply = Reply.ANY if payload.startswith((b"vCont?", b"bc1", b"bsx")) else Reply.STOP
        r = self.rng.random()
        if r < 0.4:
            return Step(label, (framed + b"\x03",), Expect.REPLY, reply)
        if r < 0.7:  # during the run (after the '+' in ack mode)
            return Step(label, (framed, b"\x03"), Expect.REPLY, reply)
        if r < 0.8 and not payload.startswith(b"b"):  # a forward run that goes on for a while
            return Step(label, (framed, b"\x03"), Expect.REPLY, reply, RUN_S)
        if r < 0.9 and payload.startswith(STEPS):  # a step ends by itself: Ctrl-C only if it hangs
            return Step(label, (framed, b"\x03"), Expect.REPLY, reply, STEP_S)
        return Step(label, (b"\x03" + framed,), Expect.REPLY, reply)

    def breakpoint(self) -> Step:
        kind = self.rng.choice((0, 0, 0, 1, 2, 2, 3, 4, 5, 9))
        where = self.code_addr() if kind in (0, 1) and self.rng.random() < 0.7 else self.addr()
        size = self.rng.choice((1, 2, 4, 8)) if self.rng.random() < 0.8 else self.length()
        letter = self.rng.choice(b"Zz")
        payload = b"%c%s,%s,%s" % (letter, self.hexnum(kind), self.hexnum(where), self.hexnum(size))
        if self.rng.random() < 0.05:
            payload += self.rng.choice([b";X2,0a", b";cmds:0", b",extra"])
        return self.packet(f"{chr(letter)}{kind}", payload, Reply.OK_OR_EMPTY)

    def monitor_text(self) -> str:
        r = self.rng.random()
        if r < 0.3:
            target = self.rng.randrange(0, self.end_hint + 1)
            arg = str(target) if self.rng.random() < 0.8 else self.rng.choice(
                ["-1", str(1 << 64), "abc", "0x10", "1_000", "", str(self.end_hint + 1), "1 2", "١٢"])  # fmt: skip
            return f"seek {arg}"
        if r < 0.55:
            verb = self.rng.choice(["save", "save", "load", "load", "list", "delete"])
            return f"snapshot {verb} {self.rng.choice(NAMES)}".rstrip()
        if r < 0.6:
            name = self.rng.choice((*SAVE_NAMES, str(self._outside / "abs.chrec")))
            return f"record save {'-f ' if self.rng.random() < 0.5 else ''}{name}"
        if r < 0.8:
            return self.rng.choice(["history", "icount", "info", "help", "", "   ", "snapshot", "record",
                                    "record save", "seek", "snapshot save", "nonsense words here"])  # fmt: skip
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 -./\\\"'$#}*é\u2603\t"
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randrange(0, 200)))

    def monitor(self) -> Step:
        text = self.monitor_text().encode()
        if self.rng.random() < 0.03:
            return self.packet("qRcmd", b"qRcmd," + self.rng.choice([b"zz", b"f", b"ff", text]), Reply.ANY)
        return self.packet("monitor " + text.decode()[:24], b"qRcmd," + text.hex().encode(), Reply.HEX)

    def queries(self) -> Step:
        choice = self.rng.randrange(7)
        if choice == 0:
            return self.packet("qSupported", b"qSupported" + self.rng.choice(QSUPPORTED), Reply.ANY)
        fixed = [(b"vMustReplyEmpty", Reply.EMPTY), (b"qAttached", Reply.ANY), (b"qC", Reply.ANY),
                 (b"qOffsets", Reply.ANY), (b"qSymbol::", Reply.ANY), (b"qTStatus", Reply.ANY)]  # fmt: skip
        payload, reply = fixed[choice - 1]
        return self.packet(payload.decode(), payload, reply)

    def xfer(self) -> Step:
        obj, annex = self.rng.choice([(b"features", b"target.xml"), (b"memory-map", b""), (b"features", b"x.xml"),
                                      (b"libraries", b""), (b"features", b"../target.xml")])  # fmt: skip
        span = self.hexnum(self.rng.choice((0, 0, 1, 0x100, 0x1000, U64))) + b"," + self.hexnum(self.length())
        op = b"read" if self.rng.random() < 0.9 else b"write"
        payload = b"qXfer:%s:%s:%s:%s" % (obj, op, annex, span)
        if self.rng.random() < 0.05:
            payload = b"qXfer:" + obj + b":read"
        return self.packet("qXfer", payload, Reply.XFER)

    def threads(self) -> Step:
        thread = self.rng.choice([b"0", b"1", b"-1", b"2", b"p1.1", b"p1.-1", b"p1", b"", b"zz", b"ffffffffffffffffff"])
        payload = self.rng.choice([b"Hg" + thread, b"Hc" + thread, b"H", b"Hx1", b"T" + thread, b"qfThreadInfo",
                                   b"qsThreadInfo"])  # fmt: skip
        return self.packet(payload.decode(errors="replace")[:4], payload, Reply.ANY)

    def unknown(self) -> Step:
        payload = self.rng.choice([b"vFile:open:", b"qGetTLSAddr:1,0,0", b"!", b"R00", b"i", b"I", b"A", b"t",
                                   b"QPassSignals:", b"vRun;", b"vAttach;1", b"Q", b"v", b"q", b"\x7f"])  # fmt: skip
        return self.packet("unknown", payload, Reply.ANY)

    # -- not well-formed --------------------------------------------------------------------------------
    def any_payload(self) -> bytes:
        """The payload of some well-formed step (never one that resumes: it would run without a 0x03)."""
        while True:
            step = self.rng.choice([self.read_memory, self.write_memory, self.read_registers, self.breakpoint,
                                    self.write_register, self.monitor])()  # fmt: skip
            framed = step.parts[0]
            return framed[1 : framed.rindex(b"#")]

    def bad_checksum(self) -> Step:
        body = self.any_payload()
        good = checksum(body)
        digits = self.rng.choice([b"%02x" % ((good + self.rng.randrange(1, 256)) & 0xFF), b"zz", b"g0", b"-1", b"  "])
        return Step("bad checksum", (b"$" + body + b"#" + digits,), Expect.SYNC)

    def truncated(self) -> Step:
        framed = encode(self.any_payload())
        cut = framed[: self.rng.randrange(1, len(framed))]
        if self.rng.random() < 0.5 and b"#" not in cut:  # a new '$' ends it: the next packet goes through
            return Step("truncated, then g", (cut + encode(b"g"),), Expect.REPLY, Reply.REGISTERS)
        return Step("truncated", (cut + b"#zz",), Expect.SYNC)  # '#zz' ends any packet in progress

    def junk(self) -> Step:
        r = self.rng.random()
        if r < 0.5:
            data = self.rng.randbytes(self.rng.randrange(1, 300))
        elif r < 0.8:
            data = bytes(self.rng.choice(b"$#}*+-\x03\x00\xffab0") for _ in range(self.rng.randrange(1, 100)))
        else:
            data = self.rng.choice([b"+", b"-", b"++", b"--", b"$}#00", b"$*a#00", b"$a*\x10#00", b"$#00" * 3,
                                    b"$}", b"$a}#", b"\x00" * 100])  # fmt: skip
        return Step("junk", (_without_packets(data) + b"#zz",), Expect.SYNC)

    def big_packet(self) -> Step:
        size = 1 << 20
        if self.rng.random() < 0.5:
            body = b"M80000000,80000:" + b"ab" * ((size - 16) // 2)
            return Step("1 MB packet", (b"$" + body + b"#%02x" % checksum(body),), Expect.SYNC)
        return Step("1 MB junk", (_without_packets(self.rng.randbytes(size)) + b"#zz",), Expect.SYNC)

    def run_length(self) -> Step:
        """Well-formed packets whose payload is run-length encoded (``X*n``)."""
        payload = self.rng.choice([
            b"M%x,20:" % self.addr() + b"0" * 64, b"m%x,%x" % (RAM_BASE, 0x1000), b"G" + b"0" * G_HEX_CHARS,
            b"P20=" + b"0" * 8, b"qRcmd," + b"seek 0000000".hex().encode(),
        ])  # fmt: skip
        return Step("run-length", (_rle(payload),), Expect.REPLY, Reply.ANY)

    def lone_interrupt(self) -> Step:
        return Step("0x03", (b"\x03",), Expect.NOTHING)

    def no_ack(self) -> Step:
        return self.packet("QStartNoAckMode", b"QStartNoAckMode", Reply.OK)

    def leave(self) -> Step:
        kind = self.rng.choice([b"k", b"D", b"vKill;1", b"D;1"])
        expect = Expect.CLOSE if kind == b"k" else Expect.REPLY_CLOSE
        return Step(kind.decode(), (encode(kind),), expect, Reply.OK)

    def uart_input(self) -> Step:
        """A line typed at the guest (cmdint's commands); rough: also junk and a name that overflows."""
        lines = [b"sample\n", b"scale 7\n", b"wait 1\n", b"report\n", b"name probe\n", b"help\n", b"\n", b"x" * 80]
        if self.rough:
            lines += [self.rng.randbytes(self.rng.randrange(1, 40)), b"name " + b"y" * 30 + b"\n", b"quit\n"]
        return Step("uart", (self.rng.choice(lines),), Expect.UART)

    def reconnect(self) -> Step:
        return Step("reconnect", (), Expect.RECONNECT)

    def second_client(self) -> Step:
        return Step("second client", (), Expect.SECOND_CLIENT)


def _rle(payload: bytes) -> bytes:
    """Frame ``payload`` run-length encoded: a run of n > 3 copies is ``c*`` + chr(n - 1 + 29)."""
    out = bytearray()
    i = 0
    while i < len(payload):
        j = i
        while j < len(payload) and payload[j] == payload[i] and j - i < 97:
            j += 1
        run = j - i
        repeat = run - 1
        if run > 3 and chr(repeat + 29) not in "#$+-":
            out += escape(payload[i : i + 1]) + b"*" + bytes([repeat + 29])
        else:
            out += escape(payload[i:j])
        i = j
    return b"$" + bytes(out) + b"#%02x" % checksum(bytes(out))


def _without_packets(data: bytes) -> bytes:
    """``data``, or without its '$' if a well-formed packet hides in it (random junk must not resume the target)."""
    if any(isinstance(event, Packet) for event in Decoder(PACKET_SIZE).feed(data)):
        return data.replace(b"$", b"%")
    return data


# -- the fuzzer --------------------------------------------------------------------------------------------
@dataclass
class Failure:
    kind: str
    detail: str
    steps: list[Step]  # every step since the server started, the failing one last
    saved: Path | None = None

    def describe(self, window: int = WINDOW) -> str:
        shown = "\n".join(f"    {step.describe()}" for step in self.steps[-window:])
        return f"{self.kind}: {self.detail}\n  the last {min(window, len(self.steps))} steps:\n{shown}" + (
            f"\n  all steps: {self.saved}" if self.saved else ""
        )


def _monitor_step(text: str) -> Step:
    return Step(f"monitor {text}", (encode(b"qRcmd," + text.encode().hex().encode()),), Expect.REPLY, Reply.HEX)


def _check_steps(end: int) -> list[Step]:
    """A user's look at the guest: reconnect (which removes every breakpoint and watchpoint), go to the end of
    history, let the guest run a while, stop it, read why it stopped and its registers."""
    return [
        Step("reconnect", (), Expect.RECONNECT),
        _monitor_step(f"seek {end}"),
        Step("c (a while)", (encode(b"c"), b"\x03"), Expect.REPLY, Reply.STOP, RUN_S),
        Step("?", (encode(b"?"),), Expect.REPLY, Reply.HALT),
        Step("g", (encode(b"g"),), Expect.REPLY, Reply.REGISTERS),
        _monitor_step("history"),
    ]


class Fuzzer:
    """Sends steps to a server, checks what comes back, and restarts what a failure broke."""

    def __init__(self, workdir: Path, generator: Generator | None = None) -> None:
        self.workdir = workdir
        self.generator = generator
        self.failures: list[Failure] = []
        self.steps: list[Step] = []  # since the current server started
        self.packets = 0
        self.restarts = 0  # servers started afresh because the guest no longer ran
        self._checked_end = -1
        self._started_at = 0  # self.packets when the server started
        self.counts: dict[str, int] = {}
        self._generation = 0
        self._sync = 0
        self.server = self._start()
        self.conn = Connection(self.server.port)

    def _start(self) -> Server:
        self._generation += 1
        self._started_at = self.packets
        self.steps = []
        if self.generator is not None:
            self.generator.end_hint = 0
            self.generator.rough = self._generation % 2 == 0  # gentle and rough servers in turn
        return Server(self.workdir, self._generation)

    def close(self) -> None:
        self.conn.close()
        self.server.stop()
        self._scan_log()

    # -- running ----------------------------------------------------------------------------------------
    def run(self, steps: Iterable[Step], check_every: int | None = CHECK_EVERY) -> None:
        """Perform ``steps``, checking the server every ``check_every`` (None: the steps hold their checks)."""
        if check_every is not None:
            self.check()  # the guest runs a while first
        for step in steps:
            self.perform(step)
            if check_every is not None and self.packets % check_every == 0:
                self.check()
        if check_every is not None:
            self.check()

    def perform(self, step: Step, counted: bool = True) -> None:
        self.steps.append(step)
        if counted:
            self.packets += 1
            kind = step.label.split(" ")[0]
            self.counts[kind] = self.counts.get(kind, 0) + 1
        where = "" if counted else " (sanity check)"
        try:
            self._perform(step)
        except Dropped as exc:
            self._fail("connection dropped" + where, str(exc))
        except TimeoutError:
            self._fail("no reply" + where, f"nothing within {REPLY_TIMEOUT_S} s")
        except BadReply as exc:
            self._fail("bad reply" + where, str(exc))
        except OSError as exc:
            self._fail("socket error" + where, repr(exc))
        self._scan_log()

    def _perform(self, step: Step) -> None:
        conn = self.conn
        if step.expect == Expect.RECONNECT:
            self._reconnect()
            return
        if step.expect == Expect.UART:
            self.server.type(b"".join(step.parts))
            return
        if step.expect == Expect.SECOND_CLIENT:
            extra = Connection(self.server.port)
            try:
                extra.wait_closed()  # TimeoutError if the server keeps it
            finally:
                extra.close()
            return
        late = False  # a Ctrl-C had to stop the run
        for i, part in enumerate(step.parts):
            if i and conn.ack_mode:
                conn.wait_ack()
            if i and step.run_s and conn.replied_within(step.run_s):
                break  # the run stopped by itself: no Ctrl-C
            late = bool(i and step.run_s)
            conn.send(part)
        if step.expect == Expect.REPLY:
            reply = conn.reply()
            if not step.reply.value.fullmatch(reply):
                raise BadReply(f"{step.label} answered {reply[:200]!r}")
            self._learn(step, reply)
            if late and step.run_s >= STEP_S:
                self._check_waiting(step)
        elif step.expect == Expect.REPLY_CLOSE:
            reply = conn.reply()
            if reply != b"OK":
                raise BadReply(f"{step.label} answered {reply[:200]!r}")
            conn.wait_closed()
            self._reconnect()
        elif step.expect == Expect.CLOSE:
            conn.wait_closed()
            self._reconnect()
        elif step.expect == Expect.SYNC:
            self.sync()

    def _check_waiting(self, step: Step) -> None:
        """A step that needed Ctrl-C: fine only if the guest waits in ``wfi`` (for input, live), a hang otherwise."""
        self.conn.send(encode(b"g"))
        registers = self.conn.reply()
        pc = int.from_bytes(bytes.fromhex(registers[256:264].decode()), "little") if len(registers) >= 264 else 0
        self.conn.send(encode(b"m%x,4" % (pc - 4)))
        waiting = self.conn.reply() == WFI
        if waiting and not step.label.startswith("b"):  # (a reverse step never waits)
            return
        raise BadReply(f"{step.label} did not end within {STEP_S} s (Ctrl-C stopped it at pc {pc:#x})")

    def _learn(self, step: Step, reply: bytes) -> None:
        """What a client learns from replies: the registers (for G), no-ack mode, the end of history."""
        if step.reply == Reply.REGISTERS:
            if self.generator is not None:
                self.generator.registers = bytes.fromhex(reply.decode())
        elif step.label == "QStartNoAckMode" and reply == b"OK":
            self.conn.ack_mode = False
        elif step.label.startswith("monitor") and self.generator is not None and HEX_TEXT.fullmatch(reply):
            found = re.search(rb"history: icount \d+\.\.(\d+)", bytes.fromhex(reply.decode()))
            if found:
                self.generator.end_hint = int(found[1])

    def sync(self) -> None:
        """Send a marked packet and drop every reply up to its answer (after junk, whose replies vary)."""
        self._sync += 1
        marker = f"sync-{self._sync}"
        self.conn.send(encode(b"qRcmd," + marker.encode().hex().encode()))
        while True:
            reply = self.conn.reply()
            if HEX_TEXT.fullmatch(reply) and marker.encode() in bytes.fromhex(reply.decode()):
                return

    def check(self) -> None:
        """The server is alive and answers ``?`` with a stop reply and ``g`` with every register.

        First, as a user would, it reconnects (which removes every breakpoint and watchpoint) and lets the
        guest run a while: the history keeps growing. A guest that no longer runs (it exited, faulted or
        waits forever after the fuzzer's writes) is started afresh in a new server (not a failure).
        """
        if not self.server.is_alive():
            self._fail("process gone", f"exit status {self.server.proc.returncode}")
            return
        self._look()
        lifetime = ROUGH_PACKETS if self.generator is not None and self.generator.rough else GENTLE_PACKETS
        stuck = self.end == self._checked_end  # the guest no longer runs
        if (stuck or self.packets - self._started_at >= lifetime) and self.server.is_alive():
            self.restarts += stuck
            self.conn.close()
            self.server.stop()
            self._scan_log()
            self.server = self._start()
            self.conn = Connection(self.server.port)
            self._look()
        self._checked_end = self.end

    def _look(self) -> None:
        self.perform(_monitor_step("history"), counted=False)
        for step in _check_steps(max(self.end, 0)):
            self.perform(step, counted=False)

    @property
    def end(self) -> int:
        return -1 if self.generator is None else self.generator.end_hint

    def _reconnect(self) -> None:
        self.conn.close()
        self.conn = Connection(self.server.port)

    # -- failures ---------------------------------------------------------------------------------------
    def _scan_log(self) -> None:
        text = self.server.new_log()
        if LOG_FAILURE.search(text):
            lines = [line for line in text.splitlines() if LOG_FAILURE.search(line)]
            self._record("server log", "\n".join(lines[:3]) + "\n" + text[-1500:])

    def _record(self, kind: str, detail: str) -> None:
        failure = Failure(kind, detail, list(self.steps))
        failure.saved = self.workdir / f"failure-{len(self.failures) + 1}.jsonl"
        failure.saved.write_text("".join(json.dumps(step.to_json()) + "\n" for step in failure.steps))
        self.failures.append(failure)

    def _fail(self, kind: str, detail: str) -> None:
        """Record a failure, then get a working connection again (a new server if this one is gone or stuck)."""
        self._record(kind, detail)
        self.conn.close()
        if self.server.is_alive():
            try:
                self.conn = Connection(self.server.port)
                self.sync()
                return
            except (Dropped, TimeoutError, OSError):
                self.conn.close()
        elif kind != "process gone":
            self._record("process gone", f"exit status {self.server.proc.returncode}")
        self._scan_log()
        self.server.stop()
        self.server = self._start()
        self.conn = Connection(self.server.port)


def generated(generator: Generator, count: int) -> Iterator[Step]:
    for _ in range(count):
        yield generator.step()


def fuzz_count() -> int:
    return int(os.environ.get("CHRONICORN_FUZZ_PACKETS", DEFAULT_PACKETS))


def fuzz(tmp_path: Path, count: int) -> None:
    """SEED, ``count`` steps; every failure collected, the first few shown with the packets before them."""
    assert GUEST.exists(), f"{GUEST} is missing (see {GUESTS / 'README.md'})"
    generator = Generator(SEED, tmp_path / "outside")
    fuzzer = Fuzzer(tmp_path, generator)
    try:
        fuzzer.run(generated(generator, count))
    finally:
        fuzzer.close()
    escaped = [*(tmp_path / "cwd").iterdir(), *(tmp_path / "outside").iterdir(),
               *(p for p in (tmp_path / "up.chrec", tmp_path.parent / "up.chrec") if p.exists())]  # fmt: skip
    assert not escaped, f"'monitor record save' wrote outside its save directory: {escaped}"
    assert fuzzer.packets >= count
    if fuzzer.failures:
        shown = "\n\n".join(f.describe() for f in fuzzer.failures[:SHOWN_FAILURES])
        pytest.fail(f"{len(fuzzer.failures)} failures in {fuzzer.packets} steps (seed {SEED}); the first:\n{shown}")


@pytest.mark.slow
def test_rsp_fuzz(tmp_path: Path) -> None:
    """:data:`DEFAULT_PACKETS` steps (or ``CHRONICORN_FUZZ_PACKETS``): about a minute on 2 cores."""
    fuzz(tmp_path, fuzz_count())


def test_rsp_fuzz_first_steps(tmp_path: Path) -> None:
    """The first 300 steps of the same sequence (the fast subset's share: a few seconds)."""
    fuzz(tmp_path, 300)


def main(argv: list[str]) -> int:
    """Send the steps of a saved failure to a fresh server and report what fails."""
    import tempfile

    steps = [Step.from_json(json.loads(line)) for line in Path(argv[0]).read_text().splitlines()]
    workdir = Path(tempfile.mkdtemp(prefix="rsp-fuzz-"))
    fuzzer = Fuzzer(workdir)
    try:
        fuzzer.run(steps, check_every=None)  # the saved steps include the checks made then
    finally:
        fuzzer.close()
    for failure in fuzzer.failures:
        print(failure.describe(window=len(failure.steps)), end="\n\n")
    print(f"{len(steps)} steps, {len(fuzzer.failures)} failures; the server's log and files: {workdir}")
    return 1 if fuzzer.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
