"""Drive gdb-multiarch against chronicorn from Python (pygdbmi): the API of the demo, ``locate`` and the tests.

:class:`ServerProcess` starts ``chronicorn serve GUEST`` or ``chronicorn replay FILE`` on a free loopback port.
:class:`GdbClient` is one gdb-multiarch over MI, connected to it. Execution commands in both directions
return a :class:`Stop` value; the ends of history are values too (``StopReason.NO_HISTORY``), never
exceptions: over MI gdb 13 reports them as a ``*stopped`` record without a reason, with "No more
reverse-execution history." on the console (docs/gdb-protocol-facts.md, "History ends").

    with ServerProcess(elf) as server, GdbClient(elf) as gdb:
        gdb.connect(server.port)
        gdb.break_at("main")
        stop = gdb.cont()
        gdb.watch("probe.scale")
        stop = gdb.cont(reverse=True)      # the last write before here
        print(stop.location, stop.old_value, stop.new_value)
"""

from __future__ import annotations

import enum
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pygdbmi.gdbcontroller import GdbController

from machine.results import RunKind

GDB = "gdb-multiarch"
Record = dict[str, Any]
NO_HISTORY_TEXT = "No more reverse-execution history"


class GdbError(Exception):
    """gdb answered ``^error`` (the message is gdb's)."""


class ServerError(Exception):
    """The chronicorn server did not start (its first line or stderr says why)."""


def _late_error(records: list[Record], token: int) -> str | None:
    """What gdb printed when a resume it had started failed (``^error`` after ``^running``), if it did."""
    error = next((r for r in records if r["type"] == "result" and r.get("token") == token
                  and r["message"] == "error"), None)  # fmt: skip
    if error is None:
        return None
    logs = "".join(r["payload"] for r in records if r["type"] == "log" and r["payload"])
    message = (error["payload"] or {}).get("msg", "")
    return logs.rstrip("\n") if message and message in logs else logs + message  # (gdb logs it too, often)


def mi_quote(text: str) -> str:
    """``text`` as an MI c-string argument (in double quotes, backslashes and quotes escaped)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def has_gdb(gdb: str = GDB) -> bool:
    """Whether the gdb executable is on PATH."""
    return shutil.which(gdb) is not None


class ServerProcess:
    """``chronicorn serve GUEST --port 0`` (or ``replay FILE``); the port is read from its first line.

    Its stdout (the guest's UART output) and stderr are drained by threads as they come, so a talkative
    guest never blocks on a full pipe; :meth:`stop` returns them.
    """

    def __init__(self, target: Path | str, *extra: str, command: str = "serve",
                 stdin: int | None = subprocess.DEVNULL, start_timeout: float = 60) -> None:  # fmt: skip
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gdbstub.cli", command, str(target), "--port", "0", *extra],
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self._out, self._err = bytearray(), bytearray()
        self._first_line: queue.Queue[bytes] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, self._out, True), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr, self._err, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        try:
            line = self._first_line.get(timeout=start_timeout).decode(errors="replace")
        except queue.Empty:
            line = ""
        if not line.startswith("listening on "):
            self.stop()
            raise ServerError(self._err.decode(errors="replace").strip() or f"the server did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def _drain(self, stream: Any, into: bytearray, first_line: bool) -> None:
        if first_line:
            line = stream.readline()
            self._first_line.put(line)
        while chunk := stream.read1(65536):
            into += chunk

    def stop(self) -> tuple[bytes, bytes]:
        """End the server; returns its stdout after the first line (the guest's UART output) and stderr."""
        stop_process(self.proc)
        for reader in self._readers:
            reader.join(timeout=10)
        return bytes(self._out), bytes(self._err)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class StopReason(enum.Enum):
    """Why execution stopped; the values are MI's ``reason`` strings."""

    BREAKPOINT = "breakpoint-hit"
    WATCHPOINT = "watchpoint-trigger"
    READ_WATCHPOINT = "read-watchpoint-trigger"
    ACCESS_WATCHPOINT = "access-watchpoint-trigger"
    END_STEPPING = "end-stepping-range"
    FUNCTION_FINISHED = "function-finished"
    LOCATION_REACHED = "location-reached"
    SIGNAL = "signal-received"
    EXITED = "exited"
    NO_HISTORY = "no-history"  # an end of history: the start going back, the end of a recording going forward
    OTHER = "other"

    def run_kind(self, reverse: bool = False) -> RunKind:
        """The server's stop vocabulary (:class:`machine.results.RunKind`) this MI reason stands for."""
        if self == StopReason.NO_HISTORY:
            return RunKind.HISTORY_BEGIN if reverse else RunKind.HISTORY_END
        return _RUN_KINDS.get(self, RunKind.LIMIT)


_RUN_KINDS = {
    StopReason.BREAKPOINT: RunKind.BREAKPOINT,
    StopReason.WATCHPOINT: RunKind.WATCHPOINT,
    StopReason.READ_WATCHPOINT: RunKind.WATCHPOINT,
    StopReason.ACCESS_WATCHPOINT: RunKind.WATCHPOINT,
    StopReason.SIGNAL: RunKind.INTERRUPTED,  # SIGINT; a fault's SIGSEGV/SIGILL is Stop.signal
    StopReason.EXITED: RunKind.EXITED,
}
"""MI reasons to run kinds: the steps that end where they should (end-stepping-range, function-finished,
location-reached) are the machine's LIMIT; anything else gdb reports as a completed stop too."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where the target is: pc, and the function and source line when gdb knows them."""

    pc: int
    function: str | None = None
    file: str | None = None
    fullname: str | None = None
    line: int | None = None

    @classmethod
    def from_frame(cls, frame: Record) -> Location:
        line = frame.get("line")
        return cls(int(frame.get("addr", "0"), 16), frame.get("func"), frame.get("file"), frame.get("fullname"),
                   int(line) if line else None)  # fmt: skip

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file and self.line else "no source"
        return f"{self.pc:#x} in {self.function or '??'} ({where})"


@dataclass(frozen=True, slots=True)
class Stop:
    """One stop, as a value: reason, location, and for watchpoints the old and new values gdb printed."""

    reason: StopReason
    location: Location
    old_value: str | None = None
    new_value: str | None = None
    signal: str | None = None
    console: str = ""  # what gdb and the target printed meanwhile
    raw: Record = field(default_factory=dict, compare=False)

    @property
    def is_watchpoint(self) -> bool:
        return self.reason.run_kind() == RunKind.WATCHPOINT


@dataclass(frozen=True, slots=True)
class CliOutput:
    """What gdb printed for one command typed at its ``(gdb)`` prompt, and the stop when it resumed the target."""

    text: str  # gdb's console and target streams, exactly as a terminal would show them
    stop: Stop | None = None

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def stop_from_record(payload: Record, console: str) -> Stop:
    """A ``*stopped`` payload (and the console text around it) as a :class:`Stop`."""
    frame = payload.get("frame") or {}
    reason_text = payload.get("reason")
    if reason_text is None:
        reason = StopReason.NO_HISTORY if NO_HISTORY_TEXT in console else StopReason.OTHER
    elif reason_text.startswith("exited"):
        reason = StopReason.EXITED
    else:
        reason = next((r for r in StopReason if r.value == reason_text), StopReason.OTHER)
    value = payload.get("value") or {}
    return Stop(reason, Location.from_frame(frame), value.get("old"), value.get("new"), payload.get("signal-name"),
                console, payload)  # fmt: skip


@dataclass
class GdbClient:
    """One gdb-multiarch over MI, loaded with the guest's ELF (symbols and sources)."""

    elf: Path
    source_dirs: tuple[Path, ...] = ()
    gdb: str = GDB
    poll_interval: float = 0.01  # how long pygdbmi waits for more output after each read (its default: 0.2 s)
    controller: GdbController = field(init=False)
    output: str = ""  # console and target output seen by the last run()
    _token: int = field(default=0, init=False, repr=False)
    _pending: list[Record] = field(default_factory=list, init=False, repr=False)
    _failed: str | None = field(default=None, init=False, repr=False)  # a resume gdb started and gave up

    def __post_init__(self) -> None:
        self.controller = GdbController(
            command=[self.gdb, "--nx", "--quiet", "--interpreter=mi3", str(self.elf)],
            time_to_check_for_additional_output_sec=self.poll_interval,
        )
        self.mi("-gdb-set confirm off")
        self.mi("-gdb-set mi-async on")  # so -exec-interrupt works while the target runs
        self.mi("-gdb-set pagination off")
        # Guests are built with file names relative to their source tree (build/ARCH/x.elf below it).
        guesses = Path(self.elf).resolve().parents[1:4]
        for directory in (*self.source_dirs, *guesses):
            self.mi(f'-environment-directory "{directory}"')

    def __enter__(self) -> GdbClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- MI primitives ----------------------------------------------------------------------
    def mi(self, command: str, timeout: float = 20) -> list[Record]:
        """Send an MI command; return the records up to its result (``^error`` raises GdbError).

        Each command carries a token and its result is matched on it, so a late record of an earlier
        command is never taken for this one's answer.
        """
        self._token += 1
        token = self._token
        records = self.controller.write(f"{token}{command}", timeout_sec=timeout, raise_error_on_timeout=False)
        deadline = time.monotonic() + timeout

        def answer() -> Record | None:
            return next((r for r in records if r["type"] == "result" and r.get("token") == token), None)

        while answer() is None and time.monotonic() < deadline:
            records += self.controller.get_gdb_response(timeout_sec=0.5, raise_error_on_timeout=False)
        result = answer()
        if result is None:
            raise TimeoutError(f"no result for {command!r}: {records}")
        # Stops announced while this command ran (a run() waits for them next); older ones are stale.
        self._pending = [r for r in records if r["type"] == "notify" and r["message"] == "stopped"]
        self._failed = _late_error(records, token) if result["message"] == "running" else None
        self._collect(records)
        if result["message"] == "error":
            raise GdbError(result["payload"].get("msg", str(result)))
        return records

    def _collect(self, records: list[Record]) -> None:
        self.output += "".join(r["payload"] for r in records if r["type"] in ("console", "target") and r["payload"])

    def console(self, command: str) -> str:
        """A CLI command's console output (and target output: monitor replies)."""
        records = self.mi(f"-interpreter-exec console {mi_quote(command)}")
        return "".join(r["payload"] for r in records if r["type"] in ("console", "target"))

    def cli(self, command: str, timeout: float = 120) -> CliOutput:
        """Run a command as if typed at the ``(gdb)`` prompt; return exactly what gdb printed for it.

        It goes through ``-interpreter-exec console``, so gdb prints what its command line would. A command
        that resumes the target (gdb answers ``^running``: ``continue``, ``reverse-step``, ...) is followed up
        to its ``*stopped`` record: gdb prints the stop (the frame, a watchpoint's old and new values) on the
        console before that record, so the text is complete and :attr:`CliOutput.stop` holds the stop.
        """
        self.output = ""
        records = self.mi(f"-interpreter-exec console {mi_quote(command)}")
        token = self._token
        resumed = any(r["type"] == "result" and r.get("token") == token and r["message"] == "running" for r in records)
        if not resumed:
            return CliOutput(self.output)
        try:
            payload = self.wait_stopped(timeout)
        except GdbError as exc:  # as a terminal shows it: gdb's warnings, then the error
            return CliOutput(self.output + str(exc) + "\n")
        return CliOutput(self.output, stop_from_record(payload, self.output))

    def wait_stopped(self, timeout: float = 120) -> Record:
        """The next ``*stopped`` record's payload (GdbError when gdb gave up resuming, e.g. a watchpoint the
        target refused to insert: ``^running`` then ``^error``, and no stop)."""
        stopped = self._pending
        deadline = time.monotonic() + timeout
        while not stopped and not self._failed and time.monotonic() < deadline:
            records = self.controller.get_gdb_response(timeout_sec=0.5, raise_error_on_timeout=False)
            self._collect(records)
            self._failed = _late_error(records, self._token)
            stopped = [r for r in records if r["type"] == "notify" and r["message"] == "stopped"]
        self._pending = []
        if self._failed and not stopped:
            failed, self._failed = self._failed, None
            raise GdbError(failed)
        if not stopped:
            raise TimeoutError("the target did not stop")
        return stopped[-1]["payload"]

    def run(self, command: str, timeout: float = 120) -> Record:
        """An MI execution command up to its ``*stopped`` payload; ``output`` holds the text seen meanwhile."""
        self.output = ""
        self.mi(command)
        return self.wait_stopped(timeout)

    def _execute(self, command: str, reverse: bool) -> Stop:
        payload = self.run(command + (" --reverse" if reverse else ""))
        return stop_from_record(payload, self.output)

    # -- connecting -------------------------------------------------------------------------
    def connect(self, port: int, host: str = "127.0.0.1") -> Location:
        """``target remote HOST:PORT``; returns where the target stands."""
        self.mi(f"-target-select remote {host}:{port}", timeout=60)
        return self.location()

    def close(self) -> None:
        self.controller.exit()

    # -- breakpoints and watchpoints -----------------------------------------------------------
    def break_at(self, spec: str, condition: str | None = None, hardware: bool = False, ignore: int = 0) -> int:
        """A breakpoint at a function, FILE:LINE or ``*ADDR`` (the first ``ignore`` hits pass); returns its number."""
        options = (" -h" if hardware else "") + (f' -c "{condition}"' if condition else "") + (
            f" -i {ignore}" if ignore else "")  # fmt: skip
        records = self.mi(f"-break-insert{options} {spec}")
        return int(self._result(records)["bkpt"]["number"])

    def watch(self, expression: str, kind: str = "write") -> int:
        """A hardware watchpoint (``write``, ``read`` or ``access``) on an expression; returns its number."""
        flag = {"write": "", "read": " -r", "access": " -a"}[kind]
        records = self.mi(f"-break-watch{flag} {mi_quote(expression)}")
        result = self._result(records)
        entry = result.get("wpt") or result.get("hw-rwpt") or result.get("hw-awpt") or {}
        return int(entry.get("number", 0))

    def delete(self, number: int | None = None) -> None:
        """Delete one breakpoint/watchpoint, or all."""
        self.mi("-break-delete" + ("" if number is None else f" {number}"))

    # -- execution: both directions -------------------------------------------------------------
    def cont(self, reverse: bool = False) -> Stop:
        return self._execute("-exec-continue", reverse)

    def step(self, reverse: bool = False) -> Stop:
        return self._execute("-exec-step", reverse)

    def next(self, reverse: bool = False) -> Stop:
        return self._execute("-exec-next", reverse)

    def stepi(self, reverse: bool = False) -> Stop:
        return self._execute("-exec-step-instruction", reverse)

    def nexti(self, reverse: bool = False) -> Stop:
        return self._execute("-exec-next-instruction", reverse)

    def finish(self, reverse: bool = False) -> Stop:
        return self._execute("-exec-finish", reverse)

    def interrupt(self) -> Stop:
        """Stop a running ``cont`` (sent with ``-exec-interrupt``)."""
        self.mi("-exec-interrupt")
        return stop_from_record(self.wait_stopped(), self.output)

    # -- the timeline (monitor commands) ---------------------------------------------------------
    def monitor(self, command: str) -> str:
        return self.console(f"monitor {command}")

    def icount(self) -> int:
        """Where the target is in its history (instructions retired since reset)."""
        reply = self.monitor("icount")
        found = re.search(r"^\s*(\d+)\s*$", reply, re.MULTILINE)
        if found is None:
            raise GdbError(f"unexpected reply to monitor icount: {reply!r}")
        return int(found.group(1))

    def seek(self, icount: int) -> Location:
        """Jump to an icount anywhere in history; gdb's caches are flushed."""
        reply = self.monitor(f"seek {icount}")
        if reply.startswith("error"):
            raise GdbError(reply.strip())
        self.mi('-interpreter-exec console "maint flush register-cache"')
        return self.location()

    # -- reading state ---------------------------------------------------------------------------
    def location(self) -> Location:
        return Location.from_frame(self.frame())

    def frame(self) -> Record:
        return self._result(self.mi("-stack-info-frame"))["frame"]

    def evaluate(self, expression: str) -> str:
        """gdb's value of an expression (as gdb prints it)."""
        return self._result(self.mi(f"-data-evaluate-expression {mi_quote(expression)}"))["value"]

    def registers(self, numbers: range = range(33)) -> dict[str, int]:
        """Register values by name (default: x0-x31 and pc, gdb's numbers 0-32)."""
        names = self._result(self.mi("-data-list-register-names"))["register-names"]
        listed = " ".join(str(n) for n in numbers)
        values = self._result(self.mi(f"-data-list-register-values x {listed}"))["register-values"]
        return {names[int(v["number"])]: int(v["value"], 16) for v in values}

    def read_memory(self, addr: int, length: int) -> bytes:
        blocks = self._result(self.mi(f"-data-read-memory-bytes {addr:#x} {length}"))["memory"]
        return bytes.fromhex("".join(block["contents"] for block in blocks))

    def instruction(self, pc: int | None = None) -> str:
        """The disassembled instruction at ``pc`` (default: the current one), as gdb shows it."""
        where = "$pc" if pc is None else f"{pc:#x}"
        records = self.mi(f"-data-disassemble -s {where} -e {where}+1 -- 0")
        lines = self._result(records).get("asm_insns") or []
        return lines[0]["inst"] if lines else "(unknown)"

    def source_line(self, location: Location) -> str | None:
        """The text of the location's source line, from the file gdb found."""
        if location.fullname is None or location.line is None:
            return None
        try:
            lines = Path(location.fullname).read_text(errors="replace").splitlines()
        except OSError:
            return None
        return lines[location.line - 1] if 0 < location.line <= len(lines) else None

    @staticmethod
    def _result(records: list[Record]) -> Record:
        return next(r for r in records if r["type"] == "result")["payload"] or {}


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """End a child process: SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
