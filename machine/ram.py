"""Page-granular images of guest RAM that share every unchanged page (the RAM part of snapshots).

A :class:`PageTable` is an immutable two-level table of 4 KiB pages: a node per
``NODE_PAGES`` pages, ``None`` for an all-zero page or node. Taking a new image
copies only the pages that changed since the last one and shares every other
page and node with it, so a thousand snapshots of a guest that touches a few
pages cost a few pages each, not a RAM size each.

:class:`RamPages` learns which pages changed from page protection: RAM is
read-only between snapshots and the native helper's SIGSEGV handler marks a
page dirty at its first write (``machine/native/pages.c``). Without the helper
it compares RAM with a shadow copy instead (about 16 ms per 128 MiB). Restoring
writes only the pages that differ.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from .icount import open_native_library

log = logging.getLogger(__name__)

PAGE = 4096
NODE_PAGES = 64
_NODE_BYTES = PAGE * NODE_PAGES
_ZERO_PAGE = bytes(PAGE)
_ZERO_NODE = bytes(_NODE_BYTES)

Node = tuple[bytes | None, ...]


@dataclass(frozen=True, slots=True)
class PageTable:
    """An immutable image of RAM: ``nodes[n][i]`` is page ``n * NODE_PAGES + i`` (None: zeros)."""

    nodes: tuple[Node | None, ...]

    @classmethod
    def empty(cls, ram_size: int) -> PageTable:
        return cls((None,) * -(-ram_size // _NODE_BYTES))

    @classmethod
    def from_chunks(cls, ram_size: int, chunks: Iterator[tuple[int, bytes]] | list[tuple[int, bytes]]) -> PageTable:
        """Build a table from ``(offset, bytes)`` pieces (page-aligned offsets, any length)."""
        nodes: list[list[bytes | None] | None] = [None] * -(-ram_size // _NODE_BYTES)
        for offset, data in chunks:
            if offset % PAGE or offset < 0 or offset + len(data) > ram_size:
                raise ValueError(f"RAM piece at {offset:#x} ({len(data)} bytes) is not page-aligned inside RAM")
            for start in range(0, len(data), PAGE):
                page = data[start : start + PAGE].ljust(PAGE, b"\0")
                if page == _ZERO_PAGE:
                    continue
                index = (offset + start) // PAGE
                node = nodes[index // NODE_PAGES]
                if node is None:
                    node = nodes[index // NODE_PAGES] = [None] * NODE_PAGES
                node[index % NODE_PAGES] = bytes(page)
        return cls(tuple(None if node is None else tuple(node) for node in nodes))

    def page(self, index: int) -> bytes | None:
        node = self.nodes[index // NODE_PAGES]
        return None if node is None else node[index % NODE_PAGES]

    def chunks(self) -> Iterator[tuple[int, bytes]]:
        """``(offset, page)`` for every non-zero page, in address order."""
        for n, node in enumerate(self.nodes):
            if node is not None:
                for i, page in enumerate(node):
                    if page is not None:
                        yield (n * NODE_PAGES + i) * PAGE, page

    @property
    def ram_bytes(self) -> int:
        """Bytes of non-zero pages in this image (shared pages counted in full)."""
        return sum(len(page) for _, page in self.chunks())


def is_shared_between(earlier: PageTable, later: PageTable, offset: int, length: int) -> bool:
    """True when every page of RAM bytes [offset, offset + length) is the same object in both images.

    Under page-protection tracking that means no byte of it was written between them: :meth:`RamPages.capture`
    gives every page written since the last capture a new object, even if its bytes did not change. An
    all-zero page has no object (None): there the whole node must be the same object instead (a node that
    is None in both, all zeros, proves nothing). Callers check that tracking is on.
    """
    if len(earlier.nodes) != len(later.nodes):
        raise ValueError("RAM images of different RAM sizes")
    if length <= 0 or offset < 0 or offset + length > len(earlier.nodes) * _NODE_BYTES:
        return False
    for index in range(offset // PAGE, (offset + length - 1) // PAGE + 1):
        node = earlier.nodes[index // NODE_PAGES]
        if node is None:
            return False
        page = node[index % NODE_PAGES]
        if page is None:
            if node is not later.nodes[index // NODE_PAGES]:
                return False
        elif page is not later.page(index):
            return False
    return True


class RamPages:
    """Captures and restores :class:`PageTable` images of one RAM mapping."""

    def __init__(self, ram: mmap.mmap, ram_ptr: int, prefer_native: bool = True) -> None:
        self._ram = ram
        self._table = PageTable.empty(len(ram))
        lib = _load_native() if prefer_native else None
        tracker = _ProtectTracker.start(lib, ram, ram_ptr) if lib is not None else None
        self._tracker: _Tracker = tracker if tracker is not None else _ShadowTracker(ram)

    @property
    def is_tracked(self) -> bool:
        """True when writes are tracked by page protection (else RAM is compared with a shadow copy)."""
        return isinstance(self._tracker, _ProtectTracker)

    def _take_changed(self) -> list[int]:
        try:
            return self._tracker.take_changed()
        except TrackingOverflow as exc:
            # From now on compare contents (is_tracked turns False, so nothing relies on page identity).
            log.warning("%s; comparing RAM with a copy from now on", exc)
            assert isinstance(self._tracker, _ProtectTracker)
            self._tracker.stop()
            self._tracker = _ShadowTracker(self._ram, self._table)
            return self._tracker.take_changed()

    def capture(self) -> PageTable:
        """An image of RAM now, sharing every page unchanged since the last capture or restore."""
        changed = self._take_changed()
        if not changed:
            return self._table
        nodes: list[Node | None] = list(self._table.nodes)
        edited: dict[int, list[bytes | None]] = {}
        for index in changed:
            n = index // NODE_PAGES
            node = edited.get(n)
            if node is None:
                old = nodes[n]
                node = edited[n] = [None] * NODE_PAGES if old is None else list(old)
            off = index * PAGE
            page = self._ram[off : off + PAGE]
            node[index % NODE_PAGES] = None if page == _ZERO_PAGE else page
        for n, node in edited.items():
            nodes[n] = tuple(node) if any(page is not None for page in node) else None
        self._table = PageTable(tuple(nodes))
        return self._table

    def restore(self, table: PageTable) -> list[int]:
        """Make RAM equal to ``table``, writing only the pages that differ; returns their indices."""
        if len(table.nodes) != len(self._table.nodes):
            raise ValueError("RAM image of another RAM size")
        dirty = set(self._take_changed())
        current = self._table.nodes
        changed_nodes = [n for n, (node, old) in enumerate(zip(table.nodes, current, strict=True)) if node is not old]
        for n in changed_nodes:
            node, old = table.nodes[n], current[n]
            for i in range(NODE_PAGES):
                if (None if node is None else node[i]) is not (None if old is None else old[i]):
                    dirty.add(n * NODE_PAGES + i)
        for index in dirty:
            off = index * PAGE
            self._ram[off : off + PAGE] = table.page(index) or _ZERO_PAGE
        self._take_changed()  # our own writes: RAM now equals the table
        self._table = table
        return sorted(dirty)


class _Tracker(Protocol):
    def take_changed(self) -> list[int]:
        """Indices of the pages that may have changed since the last call."""
        ...


class _ProtectTracker:
    """RAM kept read-only between snapshots; the native SIGSEGV handler marks written pages."""

    def __init__(self, lib: ctypes.CDLL, slot: int, marks: tuple[ctypes.Array, ctypes.Array], ram: mmap.mmap) -> None:
        self._lib = lib
        self._slot = slot
        self._out = (ctypes.c_uint32 * (len(ram) // PAGE))()
        # The finalizer holds the RAM and the dirty marks and list the handler writes to, so none is freed
        # (and the address range reused by another mapping) before the slot is released.
        self._finalizer = weakref.finalize(self, _untrack, lib, slot, ram, marks)

    @classmethod
    def start(cls, lib: ctypes.CDLL, ram: mmap.mmap, ram_ptr: int) -> _ProtectTracker | None:
        if mmap.PAGESIZE != PAGE:
            return None
        npages = len(ram) // PAGE
        dirty = (ctypes.c_uint8 * npages)()
        written = (ctypes.c_uint32 * npages)()  # the dirty pages' indices, as the handler finds them
        slot = lib.chron_track(ram_ptr, len(ram), dirty, written)
        if slot < 0:
            log.warning("page-protection tracking unavailable; comparing RAM with a copy at each snapshot")
            return None
        return cls(lib, slot, (dirty, written), ram)

    def take_changed(self) -> list[int]:
        n = self._lib.chron_take_dirty(self._slot, self._out)
        if n == -2:
            raise TrackingOverflow("too many memory mappings: page-protection tracking given up")
        if n < 0:
            raise OSError("mprotect failed on guest RAM")
        return self._out[:n]

    def stop(self) -> None:
        self._finalizer()


class TrackingOverflow(Exception):
    """Page-protection tracking had to stop (the kernel's limit on memory mappings was reached)."""


class _ShadowTracker:
    """The fallback: compare RAM with a shadow copy of it (16 ms per 128 MiB)."""

    def __init__(self, ram: mmap.mmap, table: PageTable | None = None) -> None:
        self._ram = ram
        self._size = len(ram)
        self._shadow = mmap.mmap(-1, self._size)
        for offset, page in table.chunks() if table is not None else ():  # RAM as of the last capture
            self._shadow[offset : offset + PAGE] = page

    def take_changed(self) -> list[int]:
        changed = []
        ram, shadow = self._ram, self._shadow
        for base in range(0, self._size, _NODE_BYTES):
            if ram[base : base + _NODE_BYTES] != shadow[base : base + _NODE_BYTES]:
                end = min(base + _NODE_BYTES, self._size)
                for off in range(base, end, PAGE):
                    page = ram[off : off + PAGE]
                    if page != shadow[off : off + PAGE]:
                        shadow[off : off + PAGE] = page
                        changed.append(off // PAGE)
        return changed


def _untrack(lib: ctypes.CDLL, slot: int, ram: mmap.mmap, dirty: object) -> None:
    lib.chron_untrack(slot)


def _load_native() -> ctypes.CDLL | None:
    try:
        lib = open_native_library()
        if lib is None:
            return None
        lib.chron_track.restype = ctypes.c_int
        lib.chron_track.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p]
        lib.chron_take_dirty.restype = ctypes.c_int64
        lib.chron_take_dirty.argtypes = [ctypes.c_int, ctypes.c_void_p]
        lib.chron_untrack.argtypes = [ctypes.c_int]
    except (OSError, AttributeError) as exc:
        log.warning("native page helper unusable (%s); comparing RAM in Python", exc)
        return None
    return lib
