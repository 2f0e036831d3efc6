"""The whole triage: an executor chosen from its spec, every recording found examined on it, then grouped."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from .dask import DaskExecutor, dask_address
from .executor import Executor, OnResult
from .find import find_recordings
from .grouping import GROUPINGS, group_results
from .local import LocalExecutor
from .report import TriageReport
from .results import Job, RecordingResult, TriageError


def make_executor(spec: str, jobs: int | None = None, ship: bool = False, timeout: float | None = None) -> Executor:
    """``local`` or ``dask://HOST:PORT`` (TriageError for anything else, or Dask missing); ``timeout``: the
    seconds a recording may take on the local executor."""
    if spec == "local":
        if ship:
            raise TriageError("--ship is for a Dask executor (local workers read the recordings where they are)")
        if timeout is not None and not 0 < timeout < float("inf"):
            raise TriageError(f"--timeout {timeout}: expected a number of seconds, more than 0")
        return LocalExecutor(jobs or os.cpu_count() or 1, timeout)
    if not spec.startswith("dask://"):
        raise TriageError(f"--executor {spec}: expected local or dask://HOST:PORT")
    if timeout is not None:
        raise TriageError("--timeout is for the local executor (a Dask cluster's workers are not stopped)")
    return DaskExecutor(dask_address(spec), ship)


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
