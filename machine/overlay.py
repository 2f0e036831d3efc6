"""A disk whose image file is never written: QEMU's blkreplay overlay, with page sharing for snapshots.

Determinism in record/replay comes from starting from the same image every time (QEMU's blkreplay: "the
image is never modified, writes go to a temporary overlay"). A :class:`DiskOverlay` reads the image through
a read-only file descriptor and keeps every written 4 KiB page in memory, copy on write. Its state is an
immutable :class:`OverlayState` (a :class:`~machine.ram.PageTable` whose ``None`` means "as in the image"):
taking one copies only the pages written since the last one and shares every other page with it, as RAM
images do, so snapshots of a guest that writes a few sectors cost a few pages each.

Past ``spill_after`` bytes of written pages (64 MiB by default) the overlay spills: every page written from
then on is kept in an unnamed temporary file (``O_TMPFILE`` in ``$TMPDIR``: never linked into the file system,
gone with the process) and held as a read-only view of its mapping, so the kernel can write it out instead of
keeping it in memory. Spilled pages are immutable like the others (a new write makes a new page), so states
share them just the same; the file only grows (pages no state holds any more are not reused).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .loader import ImageError
from .ram import NODE_PAGES, PAGE, PageTable

SECTOR = 512
_HASH_CHUNK = 1 << 20
DEFAULT_SPILL_AFTER = 64 << 20
_SPILL_SEGMENT = 16 << 20  # the spill file grows and is mapped by this much at a time


class DiskImageError(ImageError):
    """The image cannot be used (missing, not a regular file, empty, not whole sectors): one line."""


class DiskImage:
    """A raw disk image opened read-only (never written: writes go to a :class:`DiskOverlay`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise DiskImageError(f"cannot open disk image {self.path}: {exc.strerror or exc}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise DiskImageError(f"disk image {self.path} is not a regular file")
            if info.st_size == 0 or info.st_size % SECTOR:
                raise DiskImageError(f"disk image {self.path} is {info.st_size} bytes: not a whole number of "
                                     f"{SECTOR}-byte sectors")  # fmt: skip
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self.size = info.st_size
        self._sha256: str | None = None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> DiskImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (inside the image: the caller checks)."""
        data = os.pread(self._fd, length, offset)
        if len(data) != length:  # the file shrank under us: what is gone reads as zeros
            data = data.ljust(length, b"\0")
        return data

    @property
    def sha256(self) -> str:
        """SHA-256 of the whole image (what a recording names it by), computed once."""
        if self._sha256 is None:
            h = hashlib.sha256()
            for offset in range(0, self.size, _HASH_CHUNK):
                h.update(self.read(offset, min(_HASH_CHUNK, self.size - offset)))
            self._sha256 = h.hexdigest()
        return self._sha256


@dataclass(frozen=True, slots=True)
class OverlayState:
    """The written pages of a disk at one moment (``None`` in the table: the image's own bytes)."""

    table: PageTable

    @property
    def written_bytes(self) -> int:
        return self.table.ram_bytes


def overlay_table(size: int, pages: list[tuple[int, bytes]]) -> PageTable:
    """The table of a disk of ``size`` bytes with these written ``(offset, 4096 bytes)`` pages (zeros kept:
    a written page of zeros hides the image's bytes)."""
    nodes: list[list[bytes | None] | None] = list(PageTable.empty(size).nodes)  # type: ignore[arg-type]
    for offset, page in pages:
        index = offset // PAGE
        node = nodes[index // NODE_PAGES]
        if node is None:
            node = nodes[index // NODE_PAGES] = [None] * NODE_PAGES
        node[index % NODE_PAGES] = page
    return PageTable(tuple(None if node is None else tuple(node) for node in nodes))


class SpillFile:
    """Pages kept in an unnamed temporary file, each a read-only view of its mapping."""

    def __init__(self, directory: str | None = None) -> None:
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - lives as long as its pages (O_TMPFILE)
        self._segments: list[mmap.mmap] = []
        self._used = _SPILL_SEGMENT  # bytes used in the last segment (full: none yet)
        self.pages = 0

    def store(self, page: bytes | bytearray) -> memoryview:
        """A read-only view of a copy of ``page`` (4096 bytes) in the file."""
        if self._used + PAGE > _SPILL_SEGMENT:
            offset = len(self._segments) * _SPILL_SEGMENT
            os.ftruncate(self._file.fileno(), offset + _SPILL_SEGMENT)
            self._segments.append(mmap.mmap(self._file.fileno(), _SPILL_SEGMENT, offset=offset))
            self._used = 0
        segment, at = self._segments[-1], self._used
        segment[at : at + PAGE] = page
        self._used += PAGE
        self.pages += 1
        return memoryview(segment)[at : at + PAGE].toreadonly()

    @property
    def file_bytes(self) -> int:
        return len(self._segments) * _SPILL_SEGMENT


class DiskOverlay:
    """Reads and writes of one disk: the image underneath, written pages on top (copy on write)."""

    def __init__(self, image: DiskImage, readonly: bool = False, spill_after: int = DEFAULT_SPILL_AFTER) -> None:
        self.image = image
        self.readonly = readonly
        self.size = image.size
        self._table = PageTable.empty(self.size)  # None: the page as in the image
        self._dirty: dict[int, bytearray] = {}  # pages written since the last save()
        self._spill_after = spill_after
        self._kept = 0  # bytes of pages frozen into tables in memory (the spill threshold counts these)
        self.spill: SpillFile | None = None

    # -- guest I/O --------------------------------------------------------------------------
    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ValueError(f"disk access of {length} bytes at {offset} outside the {self.size}-byte disk")

    def _page(self, index: int) -> bytes | bytearray:
        page = self._dirty.get(index)
        if page is not None:
            return page
        page = self._table.page(index)
        if page is not None:
            return page
        start = index * PAGE
        return self.image.read(start, min(PAGE, self.size - start)).ljust(PAGE, b"\0")

    def read(self, offset: int, length: int) -> bytes:
        """The disk's bytes at ``offset`` (ValueError outside the disk)."""
        self._check(offset, length)
        out = bytearray()
        end = offset + length
        while offset < end:
            index, within = divmod(offset, PAGE)
            take = min(PAGE - within, end - offset)
            out += self._page(index)[within : within + take]
            offset += take
        return bytes(out)

    def write(self, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` (into the overlay; the image is never touched)."""
        if self.readonly:
            raise PermissionError("the disk is read-only")
        self._check(offset, len(data))
        pos = 0
        while pos < len(data):
            index, within = divmod(offset + pos, PAGE)
            take = min(PAGE - within, len(data) - pos)
            page = self._dirty.get(index)
            if page is None:
                page = self._dirty[index] = bytearray(self._page(index))
                if self._kept + PAGE * len(self._dirty) > self._spill_after:
                    self._freeze()  # past the threshold: what is written goes to the file, not to memory
                    page = self._dirty[index] = bytearray(self._page(index))
            page[within : within + take] = data[pos : pos + take]
            pos += take

    # -- state ------------------------------------------------------------------------------
    def save(self) -> OverlayState:
        """The overlay now, sharing every page not written since the last save (or load)."""
        self._freeze()
        return OverlayState(self._table)

    def _freeze(self) -> None:
        """Move the pages written since the last save into a new table (in memory, or spilled past the limit)."""
        if not self._dirty:
            return
        if self.spill is None and self._kept + PAGE * len(self._dirty) > self._spill_after:
            self.spill = SpillFile()
        nodes = list(self._table.nodes)
        edited: dict[int, list[bytes | memoryview | None]] = {}
        for index, page in self._dirty.items():
            n = index // NODE_PAGES
            node = edited.get(n)
            if node is None:
                old = nodes[n]
                node = edited[n] = [None] * NODE_PAGES if old is None else list(old)
            if self.spill is None:
                node[index % NODE_PAGES] = bytes(page)
                self._kept += PAGE
            else:
                node[index % NODE_PAGES] = self.spill.store(page)
        for n, node in edited.items():
            nodes[n] = tuple(node)  # type: ignore[assignment]
        self._table = PageTable(tuple(nodes))  # type: ignore[arg-type]
        self._dirty.clear()

    def load(self, state: OverlayState) -> None:
        """Make the disk as it was when ``state`` was saved."""
        if len(state.table.nodes) != len(self._table.nodes):
            raise ValueError("overlay state of another disk size")
        self._table = state.table
        self._dirty.clear()

    def export(self, path: str | Path) -> None:
        """Write the whole disk as it is now (image plus overlay) to ``path``, through a temporary file and a
        rename (never half a file; never the image itself)."""
        target = Path(path)
        if target.exists() and os.path.samefile(target, self.image.path):
            raise ValueError(f"{target} is the disk image itself: it is never written")
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as stream:
                for offset in range(0, self.size, _HASH_CHUNK):
                    stream.write(self.read(offset, min(_HASH_CHUNK, self.size - offset)))
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
