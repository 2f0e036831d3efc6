"""An InputSource that serves logged events back at their icounts (QEMU's replay mode)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from machine.inputs import IdleOutcome

from .events import ClockWarp, End, Event, HostClock, UartInput, Verify


class ReplayDivergence(Exception):
    """The guest asked for something the recording does not have at this icount."""

    def __init__(self, icount: int, message: str) -> None:
        super().__init__(f"replay diverged at icount {icount}: {message}")
        self.icount = icount


class Replayer:
    """Serves a recording's events; raises :class:`ReplayDivergence` on any mismatch."""

    def __init__(self, events: Iterable[Event]) -> None:
        events = list(events)
        self._events: deque[Event] = deque(e for e in events if not isinstance(e, End | Verify))
        ends = [e for e in events if isinstance(e, End)]
        self.end: End | None = ends[-1] if ends else None
        self.verify_points = [(e.icount, e.digest) for e in events if isinstance(e, Verify)]

    def _take(self, cls: type, icount: int, what: str) -> Event:
        event = self._events[0] if self._events else None
        if event is None or not isinstance(event, cls) or event.icount != icount:
            found = "the end of the log" if event is None else f"{type(event).__name__} at icount {event.icount}"
            raise ReplayDivergence(icount, f"the guest {what}, the log has {found}")
        return self._events.popleft()

    def host_clock_ns(self, icount: int) -> int:
        event = self._take(HostClock, icount, "read the host clock")
        assert isinstance(event, HostClock)
        return event.ns

    def poll_input(self, icount: int, space: int) -> bytes:
        event = self._events[0] if self._events else None
        if not isinstance(event, UartInput) or event.icount > icount:
            return b""
        if event.icount < icount:
            raise ReplayDivergence(icount, f"UART input logged at icount {event.icount} was not taken")
        if len(event.data) > space:
            raise ReplayDivergence(icount, f"UART input of {len(event.data)} bytes does not fit ({space} free)")
        self._events.popleft()
        return event.data

    def next_input_icount(self, icount: int) -> int | None:
        event = self._events[0] if self._events else None
        return event.icount if isinstance(event, UartInput) else None

    def idle(self, icount: int, deadline_ns: int | None) -> IdleOutcome:
        event = self._events[0] if self._events else None
        if isinstance(event, ClockWarp) and event.icount == icount:
            self._events.popleft()
            return IdleOutcome(warp_ns=event.warp_ns)
        if isinstance(event, UartInput) and event.icount == icount:
            return IdleOutcome()  # the machine polls it next
        if deadline_ns is not None:
            return IdleOutcome(warp_ns=deadline_ns)
        if event is not None:
            raise ReplayDivergence(icount, f"the guest idles with no timer, the log has {type(event).__name__} next")
        return IdleOutcome(forever=True)
