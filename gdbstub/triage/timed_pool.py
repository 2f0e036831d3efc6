"""Worker processes that take one recording at a time, each within a time limit (``--timeout``).

A recording not done in time is that recording's error; its worker process is killed, wherever it is stuck
(native code included: one Unicorn run, a read that never returns), and replaced. Killing is the only safe way
to stop it: an exception raised by a signal in the middle of a recording may land in a Unicorn callback, whose
binding swallows it and goes on with a wrong value, or in an import, leaving a module half made for the next
recording. A killed worker takes its kept guest symbols with it; the others keep theirs.
"""

from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess

from .executor import worker_failed
from .results import Job, Outcome, RecordingResult
from .worker import examine

Work = Callable[[Job], RecordingResult]


@dataclass(slots=True)
class _Worker:
    process: BaseProcess
    conn: Connection  # this process's end of the pipe
    job: Job | None = None  # the recording it works on (None: idle)
    started: float = 0.0  # time.monotonic() when it was given the job


def run_within(seconds: float, jobs: Sequence[Job], processes: int, context: BaseContext,
               work: Work = examine) -> Iterator[RecordingResult]:  # fmt: skip
    """``work`` (:func:`examine`) on every job in at most ``processes`` worker processes, the results as they
    come; a job not done within ``seconds`` is an error saying so. Workers that remain are stopped at the end
    (killed when the caller stops early, e.g. on Ctrl-C)."""
    pending = deque(jobs)
    workers: list[_Worker] = []
    try:
        while pending or any(w.job is not None for w in workers):
            for worker in _idle(workers, processes, context, work):
                if not pending:
                    break
                worker.job, worker.started = pending.popleft(), time.monotonic()
                worker.conn.send(worker.job)
            busy = [w for w in workers if w.job is not None]
            deadline = min(w.started for w in busy) + seconds
            ready = set(wait([w.conn for w in busy], timeout=max(0.0, deadline - time.monotonic())))
            for worker in busy:
                result = _collect(worker, worker.conn in ready, seconds)
                if result is None:
                    continue
                yield result
                if worker.job is not None:  # it died, or ran out of time
                    _stop(worker)
                    workers.remove(worker)
    finally:
        for worker in workers:
            _stop(worker)


def _idle(workers: list[_Worker], processes: int, context: BaseContext, work: Work) -> Iterator[_Worker]:
    """The idle workers, then new ones while there are fewer than ``processes``."""
    yield from [w for w in workers if w.job is None]
    while len(workers) < processes:
        mine, theirs = context.Pipe()
        process = context.Process(target=_serve, args=(theirs, work), daemon=True)
        process.start()
        theirs.close()
        workers.append(_Worker(process, mine))
        yield workers[-1]


def _collect(worker: _Worker, readable: bool, seconds: float) -> RecordingResult | None:
    """The busy ``worker``'s result when it has one, its failure when it died, or the time limit's error when
    it is out of time (its ``job`` is then still set: it is to be stopped); None while it works on."""
    job = worker.job
    assert job is not None
    if readable:
        try:
            answer = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join()
            code = worker.process.exitcode or 0
            return worker_failed(job, f"its process ended with {'signal ' if code < 0 else 'exit code '}{abs(code)}")
        worker.job = None
        if isinstance(answer, RecordingResult):
            return answer
        return worker_failed(job, f"{type(answer).__name__}: {answer}")
    spent = time.monotonic() - worker.started
    if spent < seconds:
        return None
    return RecordingResult(job.name, Outcome.ERROR, error=f"took longer than {seconds:g} s (the time limit)",
                           seconds=spent)  # fmt: skip


def _stop(worker: _Worker) -> None:
    """Ask an idle worker to end; kill a busy one."""
    if worker.job is None and worker.process.is_alive():
        try:
            worker.conn.send(None)
        except OSError:
            worker.process.kill()
    else:
        worker.process.kill()
    worker.process.join()
    worker.conn.close()


def _serve(conn: Connection, work: Work) -> None:
    """A worker process: a job in, its result (or what ``work`` raised) out, until told to end (None)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the workers
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            answer: RecordingResult | Exception = work(job)
        except Exception as exc:  # noqa: BLE001 - sent back: that recording's error, as from a pool
            answer = exc
        conn.send(answer)
