"""The local executor: worker processes on this machine, each recording within an optional time limit."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from .executor import result_of
from .results import Job, RecordingResult
from .timed_pool import run_within
from .worker import examine


@dataclass(frozen=True, slots=True)
class LocalExecutor:
    """Worker processes on this machine (``concurrent.futures``); ``jobs`` 1 runs in this process.

    ``timeout``: the seconds a recording may take (None: no limit); one that takes longer is that recording's
    error, and the run goes on (:mod:`.timed_pool`: its worker process is killed, so with a timeout every
    recording runs in a worker process, also with ``jobs`` 1).
    """

    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    timeout: float | None = None

    def describe(self) -> str:
        limit = f", at most {self.timeout:g} s a recording" if self.timeout is not None else ""
        return f"local ({self.jobs} process{'es' if self.jobs != 1 else ''}{limit})"

    def run(self, jobs: Sequence[Job]) -> Iterator[RecordingResult]:
        processes = min(self.jobs, len(jobs))
        context = multiprocessing.get_context(_start_method())
        if self.timeout is not None:
            yield from run_within(self.timeout, jobs, processes, context)
            return
        if processes <= 1:
            yield from map(examine, jobs)
            return
        pool = concurrent.futures.ProcessPoolExecutor(processes, context, _ignore_sigint)
        try:
            futures = {pool.submit(examine, job): job for job in jobs}
            for future in concurrent.futures.as_completed(futures):
                yield result_of(future, futures[future])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it cancels, the workers finish


def _start_method() -> str:
    """fork when this process runs one thread (workers start at once, with the modules already imported; the
    ``chronicorn`` command is such a process), else spawn (a fork of a threaded process may deadlock)."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"
