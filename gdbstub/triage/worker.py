"""One recording examined: read and checked, its ending told, the last write to the expression located.

:func:`examine` is what every executor runs, in this process, a local worker process or a Dask worker.
"""

from __future__ import annotations

import io
import logging
import os
import stat
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from machine.loader import ImageError
from replay.log import RecordingError

from ..locate import LocateError, Report, locate
from ..query import open_engine
from .results import Ending, Job, Outcome, RecordingResult
from .symbols_cache import ImageKey, SymbolsCache, image_key, shipped_key

log = logging.getLogger(__name__)

# The one thing a worker process keeps from one recording to the next: the guest symbols it has indexed. It is
# module state, private to this module, because examine runs in worker processes (local or Dask) that are sent
# only pickled jobs: a cache passed in as an argument would arrive as a fresh copy with every recording.
_symbols = SymbolsCache()


def examine(job: Job, guest_data: bytes | None = None) -> RecordingResult:
    """Read one recording, tell how it ended, locate the last write to ``job.watch`` unless it passed.

    Never raises for a bad recording: the reason is the result's ``error``. With ``job.data`` (shipped) the
    recording and ``guest_data`` (its guest image) are written to a temporary directory of this worker.
    """
    started = time.perf_counter()
    try:
        result = _examine(job, guest_data)
    except Exception as exc:  # noqa: BLE001 - one recording's trouble must not end the whole triage
        _symbols.clear()  # (it may have stopped half-way through indexing them)
        log.debug("triage of %s failed", job.name, exc_info=True)
        result = RecordingResult(job.name, Outcome.ERROR, error=f"internal error: {type(exc).__name__}: {exc}")
    except BaseException:  # interrupted (Ctrl-C while it runs in this process): the same
        _symbols.clear()
        raise
    return replace(result, seconds=time.perf_counter() - started)


def _examine(job: Job, guest_data: bytes | None) -> RecordingResult:
    try:
        ending, damage = read_ending(job.recording, job.data)
    except (RecordingError, OSError) as exc:
        return RecordingResult(job.name, Outcome.ERROR, error=one_line(exc, job.recording))
    outcome = Outcome.PASSED if ending is not None and ending.passed else Outcome.FAILED
    if outcome == Outcome.PASSED and not job.locate_passing:
        return RecordingResult(job.name, outcome, ending, damage)
    try:
        if job.data is None:
            report = _locate(Path(job.recording), job)
        else:
            with tempfile.TemporaryDirectory(prefix="chronicorn-triage-") as tmp:
                recording = Path(tmp) / "recording.chrec"
                recording.write_bytes(job.data)
                guest, key = None, None
                if guest_data is not None:
                    guest = Path(tmp) / (job.guest_name or "guest.elf")
                    guest.write_bytes(guest_data)
                    key = shipped_key(guest.name, guest_data)
                report = _locate(recording, job, guest, key)
    except LocateError as exc:
        return RecordingResult(job.name, Outcome.ERROR, ending, damage, error=one_line(exc, job.recording))
    return RecordingResult(job.name, outcome, ending, damage, True, report.from_icount, tuple(report.writes),
                           report.reached_start)  # fmt: skip


def _locate(recording: Path, job: Job, guest: Path | None = None, key: ImageKey | None = None) -> Report:
    """:func:`gdbstub.locate.run_locate` on a recording, with the guest symbols this worker already has for its
    image (``key``; by default the image file's, see :func:`image_key`)."""
    if job.depth < 1:
        raise LocateError("--depth must be at least 1")
    try:
        engine = open_engine(recording, str(guest) if guest is not None else None)
    except (RecordingError, ImageError) as exc:
        raise LocateError(str(exc)) from None
    if engine.symbols is not None:
        engine.symbols = _symbols.share(key or image_key(engine.symbols.path), engine.symbols)
    return locate(engine, job.watch, None, job.depth, str(recording))


def read_ending(path: str, data: bytes | None = None) -> tuple[Ending | None, str | None]:
    """How a recording ends (None: no End event, e.g. a cut or damaged file) and where its damage starts.

    Reads and checks the whole recording (``RecordingError`` when it cannot be used at all).
    """
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


def one_line(exc: BaseException, path: str) -> str:
    """The reason, on one line, the recording's own path left out (so that the same reason groups together)."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{'cannot read the recording' if exc.filename == path else exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    while text.startswith("chronicorn: "):  # (the replay server's own message, passed on by locate)
        text = text.removeprefix("chronicorn: ")
    return " ".join(text.replace(path, "RECORDING").split())
