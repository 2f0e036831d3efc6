"""An InputSource that asks the live world and logs every answer as an event (QEMU's record mode)."""

from __future__ import annotations

import time
from collections.abc import Callable

from machine.inputs import IdleOutcome, InputSource

from .events import ClockWarp, End, EndReason, Event, HostClock, UartInput, Verify
from .log import LogWriter

FLUSH_INTERVAL_S = 1.0


class Recorder:
    """Wraps a live :class:`InputSource`; the log is flushed at least every second.

    With ``--sleep off`` (the only idle mode so far) an idle guest jumps to its
    next timer deadline, which the replayer recomputes: only warps that differ
    from the deadline are logged.
    """

    def __init__(self, live: InputSource, writer: LogWriter, now: Callable[[], float] = time.monotonic) -> None:
        self._live = live
        self._writer = writer
        self._now = now
        self._buffer: list[Event] = []
        self._last_flush = now()

    def _log(self, event: Event) -> None:
        self._buffer.append(event)
        self.maybe_flush()

    def maybe_flush(self) -> None:
        """Write buffered events if a second has passed (called at every machine checkpoint)."""
        if self._buffer and self._now() - self._last_flush >= FLUSH_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        self._writer.write_events(self._buffer)
        self._buffer = []
        self._last_flush = self._now()

    # -- InputSource -------------------------------------------------------------------------
    def host_clock_ns(self, icount: int) -> int:
        ns = self._live.host_clock_ns(icount)
        self._log(HostClock(icount, ns))
        return ns

    def poll_input(self, icount: int, space: int) -> bytes:
        data = self._live.poll_input(icount, space)
        if data:
            self._log(UartInput(icount, data))
        else:
            self.maybe_flush()
        return data

    def next_input_icount(self, icount: int) -> int | None:
        return self._live.next_input_icount(icount)

    def idle(self, icount: int, deadline_ns: int | None) -> IdleOutcome:
        outcome = self._live.idle(icount, deadline_ns)
        if outcome.warp_ns and outcome.warp_ns != deadline_ns:
            self._log(ClockWarp(icount, outcome.warp_ns))
        if outcome.data:
            self._log(UartInput(icount, outcome.data))
        return outcome

    def verify(self, icount: int, digest: bytes) -> None:
        """Log a verification point (a register digest replay must reproduce)."""
        self._log(Verify(icount, digest))

    def finish(self, icount: int, reason: EndReason, code: int = 0) -> None:
        """Log the end of the recording and write everything out."""
        self._buffer.append(End(icount, reason, code))
        self.flush()
