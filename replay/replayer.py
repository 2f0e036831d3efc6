"""An InputSource that serves a recording's events back at their icounts (QEMU's replay mode)."""

from __future__ import annotations

from collections.abc import Iterable

from .errors import ReplayDivergence
from .events import End, Event, Verify
from .history import HistoryInputs

__all__ = ["ReplayDivergence", "Replayer"]


class Replayer(HistoryInputs):
    """A fixed history read from a recording, with its end and verification points."""

    def __init__(self, events: Iterable[Event]) -> None:
        events = list(events)
        ends = [e for e in events if isinstance(e, End)]
        self.end: End | None = ends[-1] if ends else None
        self.verify_points = [(e.icount, e.digest) for e in events if isinstance(e, Verify)]
        frontier = self.end.icount if self.end is not None else max((e.icount for e in events), default=0)
        fixed = HistoryInputs.from_log(events, frontier)
        super().__init__(fixed.events, frontier)
