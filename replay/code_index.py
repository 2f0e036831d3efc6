"""The execution index: which code ran in each stretch of history (issue 12: reverse-continue by index).

While a timeline runs forward through ground it has not run before, the machine notes every block it
enters (:mod:`machine.executed`); at each periodic point the notes since the last one become an entry
``[start, end) -> CodeRanges``. A backward continue asks :meth:`CodeIndex.may_run` whether a breakpoint
address can have run in a window and replays only the windows where it can — as the write-watchpoint
search already skips windows whose watched pages were not written. Everything unknown counts as "may
have run": ground never indexed, a window with more distinct code than the counter notes, entries merged
to stay within the memory bound. So the index can only make a backward continue skip work, never change
where it stops.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Collection

from machine.executed import CodeRanges

log = logging.getLogger(__name__)

DEFAULT_INDEX_BYTES = 32 << 20


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
