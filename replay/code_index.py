"""The execution index: which code ran in each stretch of history (issue 12: reverse-continue by index).

While a timeline runs forward through ground it has not run before, the machine notes every block it
enters (:mod:`machine.executed`); at each periodic point the notes since the last one become an entry
``[start, end) -> CodeRanges``. A backward continue asks :meth:`CodeIndex.may_run` whether a breakpoint
address can have run in a window and replays only the windows where it can — as the write-watchpoint
search already skips windows whose watched pages were not written. Everything unknown counts as "may
have run": ground never indexed, a window with more distinct code than the counter notes, entries merged
to stay within the memory bound. So the index can only make a backward continue skip work, never change
where it stops.

A recording carries the index (format version 4, :mod:`replay.log`'s chunk kind 3) so that a replay served
to gdb skips windows at once: :func:`encode_entries` and :func:`decode_entries` are its encoding, and
:meth:`CodeIndex.load` takes the decoded entries in. The payload, after the chunk's varint prefix (the first
entry's start icount), is entries back to back, each::

    varint length (>= 1 icounts) | varint n (0: unknown code; k + 1: k ranges) | k x (varint gap, varint size)

a range's gap counted from the previous range's end (the first's from address 0) and its size at least 1. So
entries are contiguous and ranges sorted and disjoint by construction: a file cannot express anything else.
"""

from __future__ import annotations

import bisect
import logging
from array import array
from collections.abc import Callable, Collection, Sequence

from machine.executed import CodeRanges

from .log import MAX_ICOUNT, RecordingError, get_varint, put_varint

log = logging.getLogger(__name__)

DEFAULT_INDEX_BYTES = 32 << 20
Entry = tuple[int, int, "CodeRanges | None"]  # [start, end) -> the code that ran there (None: unknown)


class CodeIndex:
    """Entries ``[start, end) -> CodeRanges | None`` in icount order, covering history up to :attr:`until`."""

    def __init__(self, start: int, max_bytes: int = DEFAULT_INDEX_BYTES) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._ranges: list[CodeRanges | None] = []
        self.until = start  # the next entry starts here
        self._max_bytes = max_bytes
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._starts)

    @property
    def nbytes(self) -> int:
        """Memory the entries hold (about)."""
        return self._bytes

    def add(self, end: int, ranges: CodeRanges | None) -> None:
        """The code that ran in ``[until, end)`` (None: unknown); ``until`` moves to ``end``."""
        if end <= self.until:
            return
        self._starts.append(self.until)
        self._ends.append(end)
        self._ranges.append(ranges)
        self._bytes += _size(ranges)
        self.until = end
        while self._bytes > self._max_bytes and len(self._starts) > 1:
            self._merge_oldest()

    def entries(self) -> list[Entry]:
        """Every entry ``(start, end, ranges)`` in icount order (what a saved recording carries)."""
        return list(zip(self._starts, self._ends, self._ranges, strict=True))

    def load(self, entries: Sequence[Entry]) -> None:
        """Take in a saved index's entries (contiguous, in order, from :attr:`until` on or later: ground
        before the first counts as unknown), then go on from where they end. Memory stays within the bound
        as with :meth:`add`: the oldest entries are merged if they need more."""
        if self._starts:
            raise ValueError("entries are loaded only into an empty index")
        if not entries:
            return
        if entries[0][0] < self.until:
            raise ValueError(f"loaded entries start at icount {entries[0][0]}, before the index ({self.until})")
        at = entries[0][0]
        for start, end, _ in entries:
            if start != at or end <= start:
                raise ValueError(f"loaded entries are not contiguous at icount {start}")
            at = end
        starts, ends, ranges = [e[0] for e in entries], [e[1] for e in entries], [e[2] for e in entries]
        if starts[0] > self.until:  # a stretch not indexed before them
            starts, ends, ranges = [self.until, *starts], [starts[0], *ends], [None, *ranges]
        sizes = [_size(r) for r in ranges]
        total, folded = sum(sizes), 0  # as repeated _merge_oldest, in one pass
        merged, merged_size = ranges[0], sizes[0]
        while total > self._max_bytes and folded + 1 < len(ranges):
            folded += 1
            other = ranges[folded]
            merged = None if merged is None or other is None else merged.union(other)
            total += _size(merged) - merged_size - sizes[folded]
            merged_size = _size(merged)
        self._starts = [starts[0], *starts[folded + 1 :]]
        self._ends = ends[folded:]
        self._ranges = [merged, *ranges[folded + 1 :]]
        self._bytes = total
        self.until = ends[-1]

    def _merge_oldest(self) -> None:
        """Bound memory: the two oldest entries become one (their union: coarser, still exact about absence)."""
        a, b = self._ranges[0], self._ranges[1]
        merged = None if a is None or b is None else a.union(b)
        self._bytes += _size(merged) - _size(a) - _size(b)
        self._ends[0] = self._ends[1]
        self._ranges[0] = merged
        del self._starts[1], self._ends[1], self._ranges[1]

    def may_run(self, addrs: Collection[int], start: int, end: int,
                pending: Callable[[], CodeRanges | None]) -> bool:  # fmt: skip
        """False only if provably none of ``addrs`` was executed in ``[start, end)``.

        ``pending()`` gives the code run since the last entry ended (ground past :attr:`until`).
        """
        return self.last_start(addrs, start, end, pending) < end

    def last_start(self, addrs: Collection[int], start: int, end: int,
                   pending: Callable[[], CodeRanges | None]) -> int:  # fmt: skip
        """Where the last stretch of ``[start, end)`` in which one of ``addrs`` may have run begins (clamped to
        ``start``), or ``end`` if none may have: a backward search need only replay from there."""
        if not addrs or end <= start:
            return end
        if end > self.until:
            tail = pending()
            if tail is None or tail.covers_any(addrs):
                return max(start, self.until)
        i = bisect.bisect_left(self._starts, min(end, self.until)) - 1  # the last entry starting before
        cursor = min(end, self.until)  # everything from here to end is known not to run them
        while cursor > start:
            if i < 0 or self._ends[i] < cursor:
                return start  # a stretch never indexed: unknown
            ranges = self._ranges[i]
            if ranges is None or ranges.covers_any(addrs):
                return max(start, self._starts[i])
            cursor = self._starts[i]
            i -= 1
        return end


def _size(ranges: CodeRanges | None) -> int:
    return 64 if ranges is None else ranges.nbytes + 64


# -- the index in a recording -------------------------------------------------------------------------
def encode_entries(entries: Sequence[Entry]) -> bytes:
    """The payload of an index chunk after its prefix (the first entry's start): see the module's docstring."""
    out = bytearray()
    at = entries[0][0] if entries else 0
    for start, end, ranges in entries:
        if start != at or end <= start:
            raise ValueError(f"index entries are not contiguous at icount {start}")
        put_varint(out, end - start)
        at = end
        if ranges is None:
            put_varint(out, 0)
            continue
        pairs = ranges.pairs()
        put_varint(out, len(pairs) // 2 + 1)
        previous = 0
        for i in range(0, len(pairs), 2):
            put_varint(out, pairs[i] - previous)
            put_varint(out, pairs[i + 1] - pairs[i])
            previous = pairs[i + 1]
    return bytes(out)


def decode_entries(data: bytes | memoryview, start: int, until: int, max_bytes: int) -> list[Entry]:
    """The entries of an index chunk's payload, every one checked (hostile input): they begin at ``start``,
    end at or before ``until``, ranges lie in the 64-bit address space; their memory (as :class:`CodeIndex`
    counts it) stays within ``max_bytes``, and no count is used before it is checked against the bytes left.
    RecordingError names the first problem."""
    buf = memoryview(data)
    pos, at, total, entries = 0, start, 0, []
    if until >= MAX_ICOUNT:
        raise RecordingError(f"execution index ends at icount {until}, beyond any icount")
    if not 0 <= start <= until:
        raise RecordingError(f"execution index starts at icount {start}, past its end {until}")
    while pos < len(buf):
        length, pos = get_varint(buf, pos, "execution index")
        count, pos = get_varint(buf, pos, "execution index")
        if length == 0:
            raise RecordingError(f"execution index entry at icount {at} is empty")
        if length > until - at:
            raise RecordingError(f"execution index entry at icount {at} of {length} instructions runs past {until}")
        n = count - 1
        if n > (len(buf) - pos) // 2:  # every range takes at least two bytes
            raise RecordingError(f"execution index entry at icount {at} claims {n} ranges in {len(buf) - pos} bytes")
        total += 64 if count == 0 else 16 * n + 264  # as _size() counts it
        if total > max_bytes:
            raise RecordingError(f"execution index needs more than {max_bytes} bytes of memory")
        ranges = None
        if count:
            flat, address = array("Q"), 0
            for _ in range(n):
                gap, pos = get_varint(buf, pos, "execution index")
                size, pos = get_varint(buf, pos, "execution index")
                first = address + gap
                address = first + size
                if size < 1 or address >= 1 << 64:  # (the counter never notes the address space's last byte)
                    raise RecordingError(f"execution index entry at icount {at} has a bad address range")
                flat.append(first)
                flat.append(address)
            ranges = CodeRanges(flat)
        entries.append((at, at + length, ranges))
        at += length
    return entries
