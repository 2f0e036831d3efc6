"""The query engine over a recording file: load it, its guest's symbols and its cached query index.

:func:`open_engine` is what ``chronicorn query``, ``chronicorn view``, ``locate`` and ``triage`` start from;
the monitor builds its engine on the timeline it serves (:mod:`gdbstub.monitor`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import multiprocessing
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from machine.loader import Image
from machine.watch import WatchKind
from replay.log import RecordingError
from replay.query import Access, QueryEngine
from replay.query_index import QueryIndex, load_cached, save_cached
from replay.timeline import Timeline

if TYPE_CHECKING:
    from replay.symbols import Symbols

log = logging.getLogger(__name__)

Scanner = Callable[[int, int, WatchKind, list[tuple[int, int]]], list[Access]]


def guest_symbols(path: str | Path) -> Symbols | None:
    """The symbols of the guest image at ``path`` (None for a raw binary or an ELF without them)."""
    from replay.symbols import SymbolError, Symbols

    try:
        return Symbols.from_elf(path)
    except SymbolError as exc:
        log.info("no symbols from %s: %s", path, exc)
        return None


def engine_for(timeline: Timeline, image: Image | str | Path | None, recording: Path | None = None) -> QueryEngine:
    """An engine on a timeline (the one a server serves), with the symbols of its guest image; ``recording``:
    the file a fixed timeline was loaded from, whose cached query index it reads and writes."""
    path = image.path if isinstance(image, Image) else image
    engine = QueryEngine(timeline, guest_symbols(path) if path is not None else None)
    if recording is not None and not timeline.is_live:
        engine.index = load_cached(recording, timeline)
        engine.on_index = lambda index: _save(recording, index, timeline)
    return engine


def open_engine(recording: str | Path, guest: str | None = None, cache: bool = True,
                progress: Callable[[int], None] | None = None) -> QueryEngine:  # fmt: skip
    """An engine over a recording file (``guest``: its image if it has moved), with its query index cached
    beside it (``cache``): read when valid, written after a build (a warning when the directory is not
    writable). RecordingError / ImageError for a file that is not a good recording."""
    from .cli.timelines import read_recording, recording_timeline

    path = Path(recording)
    loaded = read_recording(path)
    args = argparse.Namespace(guest=guest, ram=None, icount_shift=None, drive=[])
    timeline = recording_timeline(args, loaded, show_output=False)
    engine = engine_for(timeline, guest or loaded.header.image_path, path if cache else None)
    engine.progress = progress
    return engine


def process_scanner(recording: str | Path, guest: str | None, jobs: int) -> Scanner:
    """Scan stretches of history in ``jobs`` worker processes, each opening the same recording and its cached
    query index and replaying its share of the windows from their own snapshots (they are independent); the
    answers come back in icount order. The cache must exist (the workers would each rebuild the index)."""

    def scan(addr: int, size: int, kind: WatchKind, spans: list[tuple[int, int]]) -> list[Access]:
        shares = _shares(spans, jobs)
        # Forked workers start at once; a process with threads forks unsafely, so it spawns them.
        context = multiprocessing.get_context("fork" if threading.active_count() == 1 else "spawn")
        with concurrent.futures.ProcessPoolExecutor(len(shares), mp_context=context) as pool:
            parts = pool.map(_scan_share, [(str(recording), guest, addr, size, int(kind), s) for s in shares])
            return [access for part in parts for access in part]

    return scan


def _shares(spans: list[tuple[int, int]], jobs: int) -> list[list[tuple[int, int]]]:
    """Contiguous runs of ``spans`` with about the same number of instructions each, in order."""
    total = sum(end - start for start, end in spans)
    shares: list[list[tuple[int, int]]] = [[]]
    done = 0
    for span in spans:
        if shares[-1] and done >= total * len(shares) / jobs:
            shares.append([])
        shares[-1].append(span)
        done += span[1] - span[0]
    return shares


def _scan_share(job: tuple[str, str | None, int, int, int, list[tuple[int, int]]]) -> list[Access]:
    recording, guest, addr, size, kind, spans = job
    engine = open_engine(recording, guest)
    if engine.index is None:
        raise RecordingError(f"the query index of {recording} is not cached: cannot scan in another process")
    return engine.scan_windows(addr, size, WatchKind(kind), spans)


def _save(path: Path, index: QueryIndex, timeline: Timeline) -> None:
    saved = save_cached(path, index, timeline)
    if saved is not None:
        log.info("query index cached in %s", saved)


__all__ = ["RecordingError", "engine_for", "guest_symbols", "open_engine"]
