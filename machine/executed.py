"""Which code ran: the execution index's unit (rr's and Pernosco's idea, kept per window of history).

The icount counter notes every block it enters, once per *window* (a stretch of history between two
calls of :meth:`machine.machine.Machine.take_executed_code`); a window's notes become a
:class:`CodeRanges`: sorted, disjoint address ranges that cover every instruction executed in it (and
perhaps a few bytes more: blocks closer than a few dozen bytes are merged). A breakpoint address outside
them was provably not reached in that window, so a reverse-continue need not replay it.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable


class CodeRanges:
    """Sorted, disjoint ``[start, end)`` code address ranges (immutable once built)."""

    __slots__ = ("_starts", "_ends")

    def __init__(self, pairs: Iterable[int]) -> None:
        """``pairs``: flat ``start, end, start, end, ...`` sorted and disjoint (as the counter gives them)."""
        flat = array("Q", pairs)
        self._starts = flat[0::2]
        self._ends = flat[1::2]

    def covers(self, addr: int) -> bool:
        """True when ``addr`` lies in one of the ranges (the code there may have run)."""
        i = bisect.bisect_right(self._starts, addr) - 1
        return i >= 0 and addr < self._ends[i]

    def covers_any(self, addrs: Iterable[int]) -> bool:
        return any(self.covers(addr) for addr in addrs)

    def union(self, other: CodeRanges) -> CodeRanges:
        """Both sets of ranges as one (overlapping and touching ranges merged)."""
        pairs = sorted([*zip(self._starts, self._ends, strict=True), *zip(other._starts, other._ends, strict=True)])
        out: list[int] = []
        for start, end in pairs:
            if out and start <= out[-1]:
                out[-1] = max(out[-1], end)
            else:
                out += [start, end]
        return CodeRanges(out)

    @property
    def nbytes(self) -> int:
        """Memory held (for the store's accounting)."""
        return 2 * self._starts.itemsize * len(self._starts) + 200

    def __len__(self) -> int:
        return len(self._starts)

    def pairs(self) -> list[int]:
        """The flat ``start, end, ...`` list (what a recording stores)."""
        return [v for pair in zip(self._starts, self._ends, strict=True) for v in pair]
