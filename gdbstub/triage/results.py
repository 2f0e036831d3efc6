"""The values of a triage: a job (one recording to examine), how its run ended, its culprit, its result."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from machine.results import RunKind

from ..locate import Write


class TriageError(Exception):
    """Bad input for the whole triage (no recordings, a bad executor, no Dask, no scheduler): exit code 2."""


class Outcome(enum.Enum):
    """What a recording is in the triage: a failed run (located), a passed run (set apart), or unreadable."""

    FAILED = "failed"
    PASSED = "passed"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Ending:
    """How the recorded run ended: its End event (``RunKind`` label, exit code, icount)."""

    kind: str
    code: int
    icount: int

    @property
    def passed(self) -> bool:
        return self.kind == RunKind.EXITED.label and self.code == 0

    def describe(self) -> str:
        return f"{self.kind} (code {self.code}) at icount {self.icount}"


@dataclass(frozen=True, slots=True)
class Culprit:
    """Where the last write happened; ``source`` and ``instruction`` are shown, never compared (the pc says it)."""

    function: str | None
    file: str | None
    line: int | None
    pc: int | None  # None when grouping ignores the pc
    source: str | None = field(default=None, compare=False)
    instruction: str | None = field(default=None, compare=False)

    @classmethod
    def of(cls, write: Write) -> Culprit:
        return cls(write.function, write.file, write.line, write.pc, write.source, write.instruction)

    def grouped_by(self, group_by: str) -> Culprit:
        """The part of the culprit that ``group_by`` (pc, line or function) compares."""
        if group_by == "line":
            return replace(self, pc=None, instruction=None)
        if group_by == "function":
            return replace(self, line=None, pc=None, source=None, instruction=None)
        return self

    def describe(self) -> str:
        where = f"{self.file}:{self.line}" if self.file and self.line is not None else (self.file or "no source")
        pc = f"  pc {self.pc:#x}" if self.pc is not None else ""
        return f"{self.function or '??'}  {where}{pc}"


@dataclass(frozen=True, slots=True)
class Job:
    """One recording to examine: plain values, so that it pickles to a worker process or a Dask worker.

    ``recording`` is an absolute path the worker reads, or, when ``data`` is given (``--ship``), only a name:
    the recording's bytes travel with the job and its guest image travels as ``examine``'s ``guest_data``.
    """

    recording: str
    name: str  # as the user named it (shown in the report)
    watch: str
    depth: int = 1
    locate_passing: bool = False
    data: bytes | None = field(default=None, repr=False)
    guest_name: str | None = None  # the shipped guest image's file name


@dataclass(frozen=True, slots=True)
class RecordingResult:
    """What :func:`gdbstub.triage.examine` found in one recording."""

    recording: str
    outcome: Outcome
    ending: Ending | None = None
    damage: str | None = None  # where the intact part of a damaged recording ends
    located: bool = False
    from_icount: int | None = None
    writes: tuple[Write, ...] = ()
    reached_start: bool = False
    error: str | None = None
    seconds: float = field(default=0.0, compare=False)

    @property
    def culprit(self) -> Culprit | None:
        return Culprit.of(self.writes[0]) if self.writes else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        data["writes"] = [asdict(write) for write in self.writes]
        return data
