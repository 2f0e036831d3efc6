"""Fault localisation: from a moment of a recording, find the last write to an expression (and the ones before).

``locate`` is a client of the query engine (:mod:`replay.query`): its chain of ``depth`` writes is the last
``depth`` answers of ``writes EXPR --to AT``, each with the instruction, function, file:line and the values
before and after it. As with gdb's ``watch`` + ``reverse-continue`` (what it drove until issue 16), only a
write that changed the value is a step of the chain.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from machine.loader import ImageError
from replay.log import MAGIC, RecordingError
from replay.query import QueryEngine, QueryError, QueryRequest

from .query import open_engine


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


def locate(engine: QueryEngine, watch: str, at: int | None = None, depth: int = 1, recording: str = "") -> Report:
    """The last ``depth`` writes that changed ``watch`` before icount ``at`` (None: the end of history), the
    latest first: the query engine's ``writes`` (:mod:`replay.query`), no debugger needed."""
    end = engine.timeline.end if at is None else at
    try:
        result = engine.run(QueryRequest("writes", watch, None, None, end))
    except QueryError as exc:
        raise LocateError(str(exc)) from None
    chain = list(reversed(result.rows[-depth:]))
    writes = [Write(row["icount"], int(row["pc"], 16), row["function"], row["file"], row["line"], row["source"],
                    row["instruction"] or "", row["old"], row["new"]) for row in chain]  # fmt: skip
    return Report(watch, recording, end, writes, reached_start=len(result.rows) < depth)


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
    if depth < 1:
        raise LocateError("--depth must be at least 1")
    with tempfile.TemporaryDirectory(prefix="chronicorn-locate-") as tmp:
        if is_recording(target):
            recording = target
        else:
            recording = Path(tmp) / "recording.chrec"
            echo(f"recording {target}" + (f" with UART input from {uart_input}" if uart_input else ""))
            record_guest(target, uart_input, recording, echo)
        try:
            engine = open_engine(recording, str(guest) if guest is not None else None)
        except (RecordingError, ImageError) as exc:
            raise LocateError(str(exc)) from None
        return locate(engine, watch, at, depth, str(target))
