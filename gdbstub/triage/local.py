"""The local executor: worker processes on this machine (``concurrent.futures``)."""

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
from .worker import examine


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
