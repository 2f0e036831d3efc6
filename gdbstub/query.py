"""The query engine over a recording file: load it, its guest's symbols and its cached query index.

:func:`open_engine` is what ``chronicorn query``, ``chronicorn view``, ``locate`` and ``triage`` start from;
the monitor builds its engine on the timeline it serves (:mod:`gdbstub.monitor`).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from machine.loader import Image
from replay.log import RecordingError
from replay.query import QueryEngine
from replay.query_index import QueryIndex, load_cached, save_cached
from replay.timeline import Timeline

if TYPE_CHECKING:
    from replay.symbols import Symbols

log = logging.getLogger(__name__)


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
    engine = QueryEngine(timeline, guest_symbols(guest or loaded.header.image_path), progress=progress)
    if cache:
        engine.index = load_cached(path, timeline)
        engine.on_index = lambda index: _save(path, index, timeline)
    return engine


def _save(path: Path, index: QueryIndex, timeline: Timeline) -> None:
    saved = save_cached(path, index, timeline)
    if saved is not None:
        log.info("query index cached in %s", saved)


__all__ = ["RecordingError", "engine_for", "guest_symbols", "open_engine"]
