"""Fault localisation: from a moment of a recording, find the last write to an expression (and the ones before).

``locate`` drives gdb-multiarch through :mod:`gdbstub.client` against ``chronicorn replay FILE --port 0``: go to
the moment (the end by default), set a hardware watchpoint on the expression, ``reverse-continue``. gdb stops
on the writing instruction with the values before and after it; each further step of ``depth`` goes on
backward from there. (gdb reports a write watchpoint only when the value changes, so a write that stores the
same value is not a step of the chain.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from replay.log import MAGIC

from .client import GdbClient, GdbError, ServerError, ServerProcess, StopReason, has_gdb


class LocateError(Exception):
    """Bad input for ``locate`` (unknown expression, not a recording, no gdb): exit code 2."""


@dataclass(frozen=True, slots=True)
class Write:
    """One write to the watched expression: where and when it happened, the value before and after."""

    icount: int  # the writing instruction's icount (the state before it executes)
    pc: int
    function: str | None
    file: str | None
    line: int | None
    source: str | None
    instruction: str
    old: str | None  # the value before the write
    new: str | None  # the value after it


@dataclass(frozen=True, slots=True)
class Report:
    """The result of one ``locate``: the chain of writes, the latest first."""

    watch: str
    recording: str
    from_icount: int
    writes: list[Write] = field(default_factory=list)
    reached_start: bool = False  # the search ran back to the start of history

    @property
    def found(self) -> bool:
        return bool(self.writes)

    def to_json(self) -> str:
        data = asdict(self)
        data["found"] = self.found
        return json.dumps(data, indent=2)

    def to_text(self) -> str:
        lines = [f"last write{'s' if len(self.writes) > 1 else ''} to {self.watch} before icount {self.from_icount}:"]
        for n, write in enumerate(self.writes, 1):
            where = f"{write.file}:{write.line}" if write.file else "no source"
            lines += [
                f"  #{n} icount {write.icount}  pc {write.pc:#x}  {write.function or '??'}  {where}",
                f"     {write.line or '':>5} | {(write.source or '').strip()}",
                f"     instruction: {write.instruction}",
                f"     value: {write.old} -> {write.new}",
            ]
        if not self.writes:
            lines.append("  none: nothing wrote it (with a change of value) since the start of history")
        elif self.reached_start:
            lines.append("  (no earlier write: the chain ends at the start of history)")
        return "\n".join(lines)


def locate(gdb: GdbClient, watch: str, at: int | None = None, depth: int = 1,
           recording: str = "") -> Report:  # fmt: skip
    """Run the search on a connected debugger; ``at`` None means the end of history."""
    if at is None:
        stop = gdb.cont()  # forward to the end of the recording
        if stop.reason not in (StopReason.NO_HISTORY, StopReason.EXITED):
            raise LocateError(f"could not reach the end of history (stopped: {stop.reason.value})")
    else:
        try:
            gdb.seek(at)
        except GdbError as exc:
            raise LocateError(str(exc)) from None
    start = gdb.icount()
    try:
        gdb.watch(watch)
    except GdbError as exc:
        raise LocateError(f"cannot watch {watch!r}: {exc}") from None
    writes: list[Write] = []
    reached_start = False
    for _ in range(depth):
        stop = gdb.cont(reverse=True)
        if stop.reason == StopReason.NO_HISTORY:
            reached_start = True
            break
        if not stop.is_watchpoint:
            raise LocateError(f"the backward search stopped for another reason: {stop.reason.value}")
        where = stop.location
        # Going backward gdb calls the later value "old" and the earlier one "new".
        writes.append(Write(gdb.icount(), where.pc, where.function, where.file, where.line, gdb.source_line(where),
                            gdb.instruction(), old=stop.new_value, new=stop.old_value))  # fmt: skip
    return Report(watch, recording, start, writes, reached_start)


# -- the command ---------------------------------------------------------------------------------
def is_recording(path: Path) -> bool:
    try:
        with open(path, "rb") as stream:
            return stream.read(len(MAGIC)) == MAGIC
    except OSError as exc:
        raise LocateError(f"cannot read {path}: {exc.strerror or exc}") from None


def record_guest(guest: Path, uart_input: str | None, output: Path, echo: Callable[[str], None]) -> None:
    """``chronicorn record GUEST`` into ``output`` (the guest's UART output goes to ``echo``)."""
    command = [sys.executable, "-m", "gdbstub.cli", "record", str(guest), "-o", str(output)]
    if uart_input is not None:
        command += ["--uart-input", uart_input]
    proc = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
    for line in proc.stdout.decode(errors="replace").splitlines():
        echo(f"  | {line}")
    if proc.returncode == 2 or not output.exists():
        reason = proc.stderr.decode(errors="replace").strip().removeprefix("chronicorn: ")
        raise LocateError(reason or f"could not record {guest}")
    summary = proc.stderr.decode(errors="replace").strip().splitlines()
    if summary:
        echo(summary[-1])


def guest_of(recording: Path) -> Path:
    from replay.log import LogReader, RecordingError
    from replay.recording import Header

    try:
        with open(recording, "rb") as stream:
            return Path(Header.from_json(LogReader(stream).header).image_path)
    except RecordingError as exc:
        raise LocateError(str(exc)) from None


def run_locate(target: Path, watch: str, at: int | None, depth: int, guest: Path | None = None,
               uart_input: str | None = None, echo: Callable[[str], None] = print) -> Report:  # fmt: skip
    """``chronicorn locate``: record first when ``target`` is a guest image, then search."""
    if not has_gdb():
        raise LocateError("gdb-multiarch is not installed (apt-get install gdb-multiarch)")
    if depth < 1:
        raise LocateError("--depth must be at least 1")
    with tempfile.TemporaryDirectory(prefix="chronicorn-locate-") as tmp:
        if is_recording(target):
            recording = target
            elf = guest or guest_of(target)
        else:
            elf = target
            recording = Path(tmp) / "recording.chrec"
            echo(f"recording {target}" + (f" with UART input from {uart_input}" if uart_input else ""))
            record_guest(target, uart_input, recording, echo)
        extra = ["--guest", str(elf)] if guest is not None else []
        try:
            server = ServerProcess(recording, *extra, command="replay")
        except ServerError as exc:
            raise LocateError(str(exc)) from None
        with server, GdbClient(elf) as gdb:
            gdb.connect(server.port)
            return locate(gdb, watch, at, depth, str(target))
