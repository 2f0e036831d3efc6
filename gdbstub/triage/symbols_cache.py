"""A worker process's guest symbols, kept from one recording to the next of the same guest image.

:class:`replay.symbols.Symbols` reads the ELF's symbol table, DWARF indexes, types and line tables lazily, on
first use: for a small recording that is most of the time ``locate`` takes. Recordings of one triage mostly
share a guest image, so a worker keeps the symbols of the last few images it used and hands them to the next
recording of the same image, as a served timeline's query engine keeps its symbols for every query.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from replay.symbols import Symbols

ImageKey = tuple[str, int, int] | tuple[str, str]


def image_key(path: str | Path) -> ImageKey | None:
    """An image file by its real path, modification time and size (None when it cannot be stat'ed): the same
    key, the same file, unless it was rewritten in place within the file system's timestamp resolution."""
    try:
        info = os.stat(path)
        return (os.path.realpath(path), info.st_mtime_ns, info.st_size)
    except (OSError, ValueError):
        return None


def shipped_key(name: str, data: bytes) -> ImageKey:
    """A shipped image (written to a new temporary file for each recording) by its name and contents."""
    return (name, hashlib.sha256(data).hexdigest())


class SymbolsCache:
    """The symbols of the last ``size`` guest images used, least recently used dropped first."""

    def __init__(self, size: int = 4) -> None:
        self._size = size
        self._entries: OrderedDict[ImageKey, Symbols] = OrderedDict()

    def share(self, key: ImageKey | None, fresh: Symbols | None) -> Symbols | None:
        """The symbols kept for ``key``, else ``fresh`` (just read from that image), kept for the next one.

        No key (an image that cannot be stat'ed) or no symbols (a raw binary): ``fresh``, nothing kept."""
        if key is None or fresh is None:
            return fresh
        kept = self._entries.get(key)
        if kept is not None:
            self._entries.move_to_end(key)
            return kept
        self._entries[key] = fresh
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return fresh

    def clear(self) -> None:
        """Forget every image (after a recording was interrupted: its symbols may be half-indexed)."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
