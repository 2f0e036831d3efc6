"""The Dask executor: the workers of a running ``dask.distributed`` scheduler (``dask://HOST:PORT``)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .executor import result_of
from .results import Job, Outcome, RecordingResult, TriageError
from .worker import examine, one_line

INSTALL_DASK = "pip install 'chronicorn[cluster]'"


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
                    yield RecordingResult(job.name, Outcome.ERROR, error=one_line(exc, job.recording))
                    continue
                if guest is not None and guest not in guests:
                    guests[guest] = client.scatter(Path(guest).read_bytes(), hash=False)
                [scattered] = client.scatter([shipped], hash=False)
                futures[client.submit(examine, scattered, guests.get(guest), pure=False)] = job
            for future in as_completed(futures, loop=client.loop):
                yield result_of(future, futures[future])


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
