"""Triage at scale: ``locate`` on many recordings, grouped by the culprit (the last write to an expression).

Each recording is examined on its own by :func:`examine`, a pure function of a :class:`Job` (plain values in,
a :class:`RecordingResult` out), so it runs the same in this process, in local worker processes
(:class:`LocalExecutor`, ``concurrent.futures``) or on a Dask cluster (:class:`DaskExecutor`, ``dask://HOST:PORT``):

* the recording is read and checked (:func:`replay.recording.load_recording`); one that cannot be is an *error*
  with its reason, and the run goes on;
* its End event says how the guest ended: exited with code 0 is *passed*, and a passed recording is not located
  unless asked (``locate_passing``): a user triaging failures wants the passing runs set apart, not searched;
* anything else (a non-zero exit, a fault, a reset, idling forever, a cut or damaged recording without an End)
  is *failed*, and :func:`gdbstub.locate.run_locate` finds the last write to the expression before the end.

:func:`group_results` then groups the results by (outcome, culprit): the culprit is the function, file:line and
pc of the last write (``group_by`` may drop the pc, or the line too); failed recordings where nothing wrote the
expression form one group, errors one group per reason, passed recordings one group (per culprit, if located).
"""

from __future__ import annotations

import concurrent.futures
import enum
import glob
import io
import json
import logging
import multiprocessing
import os
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from machine.results import RunKind

from .locate import LocateError, Write, run_locate

log = logging.getLogger(__name__)

RECORDING_SUFFIX = ".chrec"  # what a directory given to triage is searched for (recursively)
INSTALL_DASK = "pip install 'chronicorn[cluster]'"
GROUPINGS = ("pc", "line", "function")


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
    """What :func:`examine` found in one recording."""

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


@dataclass(frozen=True, slots=True)
class GroupKey:
    """What the recordings of a group share: the outcome, and the culprit (None: no write) or the error."""

    outcome: Outcome
    culprit: Culprit | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """Recordings with the same :class:`GroupKey`, in the order they were given."""

    key: GroupKey
    recordings: tuple[str, ...]

    def describe(self, watch: str, located: bool) -> str:
        key = self.key
        if key.outcome == Outcome.ERROR:
            return f"cannot triage: {key.error}"
        if key.culprit is not None:
            return key.culprit.describe()
        if key.outcome == Outcome.PASSED and not located:
            return "exit code 0 (not located)"
        return f"nothing wrote {watch} (with a change of value) since the start of history"


def group_results(results: Iterable[RecordingResult], group_by: str = "pc") -> tuple[Group, ...]:
    """Group by outcome and culprit: failed groups first (largest first), then errors, then passed ones."""
    if group_by not in GROUPINGS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPINGS)}, not {group_by!r}")
    members: dict[GroupKey, list[str]] = {}
    for result in results:
        members.setdefault(key_of(result, group_by), []).append(result.recording)
    rank = {Outcome.FAILED: 0, Outcome.ERROR: 1, Outcome.PASSED: 2}
    order = sorted(members.items(), key=lambda item: (rank[item[0].outcome], item[0].culprit is None, -len(item[1])))
    return tuple(Group(key, tuple(names)) for key, names in order)  # (sorted is stable: first seen first)


def key_of(result: RecordingResult, group_by: str = "pc") -> GroupKey:
    """The group a result belongs to."""
    if result.outcome == Outcome.ERROR:
        return GroupKey(Outcome.ERROR, error=result.error)
    culprit = result.culprit
    return GroupKey(result.outcome, culprit.grouped_by(group_by) if culprit is not None else None)


@dataclass(frozen=True, slots=True)
class TriageReport:
    """Every recording's result (in the order given) and the groups; ``to_text`` the table, ``to_json`` all."""

    watch: str
    depth: int
    group_by: str
    executor: str
    locate_passing: bool
    results: tuple[RecordingResult, ...]
    groups: tuple[Group, ...]
    seconds: float = field(default=0.0, compare=False)

    def count(self, outcome: Outcome) -> int:
        return sum(result.outcome == outcome for result in self.results)

    @property
    def triaged(self) -> bool:
        """Whether any recording could be examined (all errors: a bad --watch, or no usable recording)."""
        return self.count(Outcome.ERROR) < len(self.results)

    def group_of(self, recording: str) -> int:
        """The 1-based number of the group holding ``recording``."""
        return next(n for n, group in enumerate(self.groups, 1) if recording in group.recordings)

    def summary(self) -> str:
        failed, errors = self.count(Outcome.FAILED), self.count(Outcome.ERROR)
        unwritten = sum(r.outcome == Outcome.FAILED and not r.writes for r in self.results)
        return (f"{len(self.results)} recordings: {failed} failed ({failed - unwritten} with a write to "
                f"{self.watch}), {self.count(Outcome.PASSED)} passed, {errors} could not be triaged; "
                f"{len(self.groups)} group{'s' if len(self.groups) != 1 else ''}")  # fmt: skip

    def to_text(self, width: int = 100) -> str:
        """The summary table, then each group's recordings."""
        lines = [f"triage of {self.watch} (last write before the end), depth {self.depth}, grouped by "
                 f"{self.group_by}, executor {self.executor}, {self.seconds:.1f} s",  # fmt: skip
                 self.summary(), "", f"{'group':>5}  {'count':>5}  {'outcome':7}  culprit"]  # fmt: skip
        for n, group in enumerate(self.groups, 1):
            lines.append(f"{n:>5}  {len(group.recordings):>5}  {group.key.outcome.value:7}  "
                         f"{group.describe(self.watch, self.locate_passing)}")  # fmt: skip
            culprit = group.key.culprit
            if culprit is not None and culprit.source:
                instruction = " ".join((culprit.instruction or "").split())
                lines.append(f"{'':22}{culprit.line or '':>5} | {culprit.source.strip()}"
                             + (f"   ({instruction})" if instruction else ""))  # fmt: skip
        lines.append("")
        for n, group in enumerate(self.groups, 1):
            lines.append(_wrapped(f"group {n}:", group.recordings, width))
        for result in self.results:
            if result.damage is not None and result.located:
                lines.append(f"note: {result.recording} is damaged ({result.damage}): its intact part was searched")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        groups = []
        for n, group in enumerate(self.groups, 1):
            culprit = group.key.culprit
            groups.append({"group": n, "outcome": group.key.outcome.value, "error": group.key.error,
                           "culprit": asdict(culprit) if culprit is not None else None,
                           "label": group.describe(self.watch, self.locate_passing),
                           "count": len(group.recordings), "recordings": list(group.recordings)})  # fmt: skip
        recordings = [{**result.to_dict(), "group": self.group_of(result.recording)} for result in self.results]
        return {"watch": self.watch, "depth": self.depth, "group_by": self.group_by, "executor": self.executor,
                "locate_passing": self.locate_passing, "seconds": round(self.seconds, 3),
                "summary": {"recordings": len(self.results), "failed": self.count(Outcome.FAILED),
                            "passed": self.count(Outcome.PASSED), "errors": self.count(Outcome.ERROR),
                            "groups": len(self.groups)},
                "groups": groups, "recordings": recordings}  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _wrapped(head: str, names: Sequence[str], width: int) -> str:
    lines, line = [], head
    for name in names:
        if len(line) + 1 + len(name) > width and line.strip():
            lines.append(line)
            line = " " * 4
        line += f" {name}"
    return "\n".join([*lines, line])


# -- one recording --------------------------------------------------------------------------------------------
def examine(job: Job, guest_data: bytes | None = None) -> RecordingResult:
    """Read one recording, tell how it ended, locate the last write to ``job.watch`` unless it passed.

    Never raises for a bad recording: the reason is the result's ``error``. With ``job.data`` (shipped) the
    recording and ``guest_data`` (its guest image) are written to a temporary directory of this worker.
    """
    started = time.perf_counter()
    try:
        result = _examine(job, guest_data)
    except Exception as exc:  # noqa: BLE001 - one recording's trouble must not end the whole triage
        log.debug("triage of %s failed", job.name, exc_info=True)
        result = RecordingResult(job.name, Outcome.ERROR, error=f"internal error: {type(exc).__name__}: {exc}")
    return replace(result, seconds=time.perf_counter() - started)


def _examine(job: Job, guest_data: bytes | None) -> RecordingResult:
    from replay.log import RecordingError

    try:
        ending, damage = read_ending(job.recording, job.data)
    except (RecordingError, OSError) as exc:
        return RecordingResult(job.name, Outcome.ERROR, error=_one_line(exc, job.recording))
    outcome = Outcome.PASSED if ending is not None and ending.passed else Outcome.FAILED
    if outcome == Outcome.PASSED and not job.locate_passing:
        return RecordingResult(job.name, outcome, ending, damage)
    try:
        if job.data is None:
            report = run_locate(Path(job.recording), job.watch, None, job.depth, echo=_quiet)
        else:
            with tempfile.TemporaryDirectory(prefix="chronicorn-triage-") as tmp:
                recording = Path(tmp) / "recording.chrec"
                recording.write_bytes(job.data)
                guest = None
                if guest_data is not None:
                    guest = Path(tmp) / (job.guest_name or "guest.elf")
                    guest.write_bytes(guest_data)
                report = run_locate(recording, job.watch, None, job.depth, guest, echo=_quiet)
    except LocateError as exc:
        return RecordingResult(job.name, Outcome.ERROR, ending, damage, error=_one_line(exc, job.recording))
    return RecordingResult(job.name, outcome, ending, damage, True, report.from_icount, tuple(report.writes),
                           report.reached_start)  # fmt: skip


def read_ending(path: str, data: bytes | None = None) -> tuple[Ending | None, str | None]:
    """How a recording ends (None: no End event, e.g. a cut or damaged file) and where its damage starts.

    Reads and checks the whole recording (``RecordingError`` when it cannot be used at all).
    """
    from replay.log import RecordingError
    from replay.recording import load_recording

    try:
        if data is not None:
            loaded = load_recording(io.BytesIO(data))
        else:
            if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the read forever
                raise RecordingError(f"{path} is not a regular file")
            with open(path, "rb") as stream:
                loaded = load_recording(stream)
    except MemoryError:
        raise RecordingError("the recording asks for more memory than this machine has") from None
    end = loaded.end
    ending = Ending(end.kind.label, end.code, end.icount) if end is not None else None
    damage = f"at byte {loaded.damage.offset}: {loaded.damage.reason}" if loaded.damage is not None else None
    return ending, damage


def _one_line(exc: BaseException, path: str) -> str:
    """The reason, on one line, the recording's own path left out (so that the same reason groups together)."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{'cannot read the recording' if exc.filename == path else exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    while text.startswith("chronicorn: "):  # (the replay server's own message, passed on by locate)
        text = text.removeprefix("chronicorn: ")
    return " ".join(text.replace(path, "RECORDING").split())


def _quiet(text: str) -> None:
    log.debug("%s", text)


# -- executors ------------------------------------------------------------------------------------------------
OnResult = Callable[[RecordingResult], None]


class Executor(Protocol):
    """Where :func:`examine` runs: results come back as they are ready, in any order."""

    def describe(self) -> str: ...

    def run(self, jobs: Sequence[Job]) -> Iterator[RecordingResult]: ...


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it cancels, the workers finish


@dataclass(frozen=True, slots=True)
class LocalExecutor:
    """Worker processes on this machine (``concurrent.futures``); ``jobs`` 1 runs in this process."""

    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)

    def describe(self) -> str:
        return f"local ({self.jobs} process{'es' if self.jobs != 1 else ''})"

    def run(self, jobs: Sequence[Job]) -> Iterator[RecordingResult]:
        if self.jobs == 1 or len(jobs) <= 1:
            yield from map(examine, jobs)
            return
        context = multiprocessing.get_context(_start_method())
        pool = concurrent.futures.ProcessPoolExecutor(min(self.jobs, len(jobs)), context, _ignore_sigint)
        try:
            futures = {pool.submit(examine, job): job for job in jobs}
            for future in concurrent.futures.as_completed(futures):
                yield _result_of(future, futures[future])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _start_method() -> str:
    """fork when this process runs one thread (workers start at once, with the modules already imported; the
    ``chronicorn`` command is such a process), else spawn (a fork of a threaded process may deadlock)."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"


def _result_of(future: Any, job: Job) -> RecordingResult:
    """A finished future's result; a worker that died (or a task Dask gave up on) is that recording's error."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001
        return RecordingResult(job.name, Outcome.ERROR, error=f"the worker failed: {type(exc).__name__}: {exc}")


def dask_address(spec: str) -> str:
    """``dask://HOST:PORT`` -> ``tcp://HOST:PORT`` (``dask://tls://HOST:PORT`` keeps its protocol)."""
    rest = spec.removeprefix("dask://")
    if "://" in rest:
        return rest
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TriageError(f"--executor {spec}: expected dask://HOST:PORT (the scheduler's address)")
    return f"tcp://{rest}"


@dataclass(frozen=True, slots=True)
class DaskExecutor:
    """The workers of a running Dask scheduler (``dask.distributed.Client``).

    By default a worker reads each recording (and its guest image, named in the recording) from the path
    given, which must be the same on the workers (a shared file system). ``ship`` sends the recordings' bytes,
    and each guest image once, to the workers instead.
    """

    address: str
    ship: bool = False
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        require_dask()

    def describe(self) -> str:
        return f"dask {self.address}" + (" (recordings shipped)" if self.ship else "")

    def run(self, jobs: Sequence[Job]) -> Iterator[RecordingResult]:
        from distributed import Client, as_completed

        try:
            client = Client(self.address, timeout=self.connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise TriageError(f"cannot reach the Dask scheduler at {self.address}: {exc}") from None
        with client:
            futures: dict[Any, Job] = {}
            guests: dict[str, Any] = {}  # guest image path -> its scattered bytes
            for job in jobs:
                if not self.ship:
                    futures[client.submit(examine, job, pure=False)] = job
                    continue
                try:
                    shipped, guest = _shipped(job)
                except OSError as exc:
                    yield RecordingResult(job.name, Outcome.ERROR, error=_one_line(exc, job.recording))
                    continue
                if guest is not None and guest not in guests:
                    guests[guest] = client.scatter(Path(guest).read_bytes(), hash=False)
                [scattered] = client.scatter([shipped], hash=False)
                futures[client.submit(examine, scattered, guests.get(guest), pure=False)] = job
            for future in as_completed(futures, loop=client.loop):
                yield _result_of(future, futures[future])


def _shipped(job: Job) -> tuple[Job, str | None]:
    """The job with the recording's bytes, and the guest image its header names (read here, shipped once)."""
    from replay.log import LogReader, RecordingError
    from replay.recording import Header

    data = Path(job.recording).read_bytes()
    try:
        guest = Header.from_json(LogReader(io.BytesIO(data)).header).image_path
    except RecordingError:
        return replace(job, data=data), None  # the worker reports what is wrong with it
    if not os.path.isfile(guest):
        raise OSError(f"cannot ship its guest image {guest}: no such file")
    return replace(job, data=data, guest_name=Path(guest).name), guest


def require_dask() -> None:
    """TriageError saying how to install Dask when ``distributed`` cannot be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise TriageError(f"the Dask executor needs dask.distributed ({exc}): {INSTALL_DASK}") from None


def make_executor(spec: str, jobs: int | None = None, ship: bool = False) -> Executor:
    """``local`` or ``dask://HOST:PORT`` (TriageError for anything else, or Dask missing)."""
    if spec == "local":
        if ship:
            raise TriageError("--ship is for a Dask executor (local workers read the recordings where they are)")
        return LocalExecutor(jobs or os.cpu_count() or 1)
    if spec.startswith("dask://"):
        return DaskExecutor(dask_address(spec), ship)
    raise TriageError(f"--executor {spec}: expected local or dask://HOST:PORT")


# -- the whole triage -----------------------------------------------------------------------------------------
def find_recordings(patterns: Iterable[str]) -> list[tuple[str, Path]]:
    """The recordings named by ``patterns``: (name as given, absolute path), each once, in a stable order.

    A directory gives its ``*.chrec`` files (recursively), a glob (``**`` recursive) or a file itself.
    TriageError when a pattern names nothing.
    """
    found: dict[Path, str] = {}
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        names: list[str] = []
        for match in matches:
            path = Path(match)
            if path.is_dir():
                names += sorted(str(p) for p in path.rglob(f"*{RECORDING_SUFFIX}") if p.is_file())
            elif path.exists() or path.is_symlink():
                names.append(match)
        if not names:
            what = "no such file or directory" if not glob.has_magic(pattern) and not Path(pattern).exists() else (
                "no recordings match")  # fmt: skip
            raise TriageError(f"{pattern}: {what}")
        for name in names:
            found.setdefault(Path(os.path.abspath(name)), name)
    return [(name, path) for path, name in found.items()]


def triage(paths: Iterable[str], watch: str, executor: Executor, depth: int = 1, locate_passing: bool = False,
           group_by: str = "pc", on_result: OnResult | None = None) -> TriageReport:  # fmt: skip
    """Examine every recording ``paths`` name (see :func:`find_recordings`) on ``executor`` and group them.

    ``on_result`` is called with each result as it comes (progress); the report lists them in input order.
    """
    if depth < 1:
        raise TriageError("--depth must be at least 1")
    if group_by not in GROUPINGS:
        raise TriageError(f"group by {group_by!r}: expected one of {', '.join(GROUPINGS)}")
    if not watch.strip():
        raise TriageError("--watch needs an expression")
    started = time.perf_counter()
    jobs = [Job(str(path), name, watch, depth, locate_passing) for name, path in find_recordings(paths)]
    by_name: dict[str, RecordingResult] = {}
    for result in executor.run(jobs):
        by_name[result.recording] = result
        if on_result is not None:
            on_result(result)
    results = tuple(by_name[job.name] for job in jobs)
    return TriageReport(watch, depth, group_by, executor.describe(), locate_passing, results,
                        group_results(results, group_by), time.perf_counter() - started)  # fmt: skip
