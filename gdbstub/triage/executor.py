"""The executor seam: where :func:`gdbstub.triage.examine` runs (:mod:`.local`, :mod:`.dask`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from .results import Job, Outcome, RecordingResult

OnResult = Callable[[RecordingResult], None]


class Executor(Protocol):
    """Where :func:`gdbstub.triage.examine` runs: results come back as they are ready, in any order."""

    def describe(self) -> str: ...

    def run(self, jobs: Sequence[Job]) -> Iterator[RecordingResult]: ...


def result_of(future: Any, job: Job) -> RecordingResult:
    """A finished future's result; a worker that died (or a task Dask gave up on) is that recording's error."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001
        return worker_failed(job, f"{type(exc).__name__}: {exc}")


def worker_failed(job: Job, reason: str) -> RecordingResult:
    """The error of a recording whose worker failed (rather than the recording)."""
    return RecordingResult(job.name, Outcome.ERROR, error=f"the worker failed: {reason}")
