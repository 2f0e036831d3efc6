"""The guest's UART output along the timeline: shown once, checked on every replay.

Output produced past the furthest point reached so far is new: it is passed to
the sink (the server's stdout) and logged with its icount. Output produced
again while replaying history is compared with the log instead of being shown
twice; a difference means the replay diverged and is logged as an error.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class OutputLog:
    """UART bytes by icount (one store instruction writes one byte, so icounts are unique)."""

    def __init__(self, sink: Callable[[int], None]) -> None:
        self._sink = sink
        self._icounts: list[int] = []
        self._bytes = bytearray()
        self.mismatches = 0

    def emit(self, icount: int, byte: int) -> None:
        """The guest wrote ``byte`` to the UART at ``icount``."""
        if not self._icounts or icount > self._icounts[-1]:
            self._icounts.append(icount)
            self._bytes.append(byte)
            self._sink(byte)
            return
        i = bisect.bisect_left(self._icounts, icount)
        if i == len(self._icounts) or self._icounts[i] != icount or self._bytes[i] != byte:
            self.mismatches += 1
            log.error("replay diverged: UART output %#04x at icount %d differs from the first run", byte, icount)
