"""The timeline's input source: replays logged events inside history, records live ones past its end.

One event list serves both directions of time. Inside history (before the
*frontier*, the furthest icount the run has reached) every input comes from the
list, at the position a snapshot restored. At the frontier of a live history the
live source is asked and its answers are appended, so going forward past the end
simply continues live recording (QEMU's record mode, rr's "replay then go live").
A saved recording has no live source: its frontier is fixed. ``on_record`` is told after every live answer
(the ``record`` command's writer flushes from there).
"""

from __future__ import annotations

from collections.abc import Callable

from machine.inputs import IdleOutcome, InputSource

from .errors import ReplayDivergence
from .events import AudioInput, AudioOutput, ClockWarp, HostClock, IoCompletion, NetFrame, UartInput

InputEvent = UartInput | HostClock | ClockWarp | IoCompletion | NetFrame | AudioInput | AudioOutput


class HistoryInputs:
    """An :class:`InputSource` over one growing event list; ``position`` is the next event to replay."""

    def __init__(self, events: list[InputEvent], frontier: int, live: InputSource | None = None,
                 on_record: Callable[[], None] | None = None) -> None:  # fmt: skip
        self.events = events
        self.position = 0
        self.frontier = frontier
        self.live = live
        self._on_record = on_record or (lambda: None)

    def _is_live(self, icount: int) -> bool:
        return self.live is not None and self.position == len(self.events) and icount >= self.frontier

    def _append(self, event: InputEvent) -> None:
        self.events.append(event)
        self.position += 1
        self._on_record()

    def _next(self) -> InputEvent | None:
        return self.events[self.position] if self.position < len(self.events) else None

    def _take(self, cls: type, icount: int, what: str) -> InputEvent:
        event = self._next()
        if event is None or not isinstance(event, cls) or event.icount != icount:
            found = "no more events" if event is None else f"{type(event).__name__} at icount {event.icount}"
            raise ReplayDivergence(icount, f"the guest {what}, the history has {found}")
        self.position += 1
        return event

    # -- InputSource -----------------------------------------------------------------------
    def host_clock_ns(self, icount: int) -> int:
        if self.live is not None and self._is_live(icount):
            ns = self.live.host_clock_ns(icount)
            self._append(HostClock(icount, ns))
            return ns
        event = self._take(HostClock, icount, "read the host clock")
        assert isinstance(event, HostClock)
        return event.ns

    def poll_input(self, icount: int, space: int) -> bytes:
        if self.live is not None and self._is_live(icount):
            data = self.live.poll_input(icount, space)
            if data:
                self._append(UartInput(icount, data))
            else:
                self._on_record()  # (a recording's writer flushes what it holds at least every second)
            return data
        event = self._next()
        if not isinstance(event, UartInput) or event.icount > icount:
            return b""
        if event.icount < icount:
            raise ReplayDivergence(icount, f"UART input logged at icount {event.icount} was not taken")
        if len(event.data) > space:
            raise ReplayDivergence(icount, f"UART input of {len(event.data)} bytes does not fit ({space} free)")
        self.position += 1
        return event.data

    def next_input_icount(self, icount: int) -> int | None:
        if self.live is not None and self._is_live(icount):
            return self.live.next_input_icount(icount)
        event = self._next()
        return event.icount if isinstance(event, UartInput | IoCompletion | NetFrame) else None

    def frames_due(self, icount: int, slot: int) -> bool:
        if self.live is not None and self._is_live(icount):
            return self.live.frames_due(icount, slot)
        event = self._next()
        return isinstance(event, NetFrame) and event.icount == icount and event.slot == slot

    def poll_frames(self, icount: int, slot: int, space: int) -> list[bytes]:
        if self.live is not None and self._is_live(icount):
            frames = self.live.poll_frames(icount, slot, space)
            for frame in frames:
                self._append(NetFrame(icount, slot, frame))
            return frames
        frames = []
        while isinstance(event := self._next(), NetFrame) and event.icount <= icount and event.slot == slot:
            if event.icount < icount:
                raise ReplayDivergence(icount, f"a network frame logged at icount {event.icount} was not taken")
            if len(frames) == space:
                raise ReplayDivergence(icount, f"more network frames logged than the guest has buffers ({space})")
            frames.append(event.data)
            self.position += 1
        return frames

    def send_frame(self, icount: int, slot: int, frame: bytes) -> None:
        if self.live is not None and self._is_live(icount):
            self.live.send_frame(icount, slot, frame)

    def capture_audio(self, icount: int, slot: int, nbytes: int, rate: int, channels: int) -> bytes:
        if self.live is not None and self._is_live(icount):
            data = self.live.capture_audio(icount, slot, nbytes, rate, channels)
            self._append(AudioInput(icount, slot, rate, channels, data))
            return data
        event = self._take(AudioInput, icount, "captured audio")
        assert isinstance(event, AudioInput)
        if (event.slot, event.rate, event.channels, len(event.data)) != (slot, rate, channels, nbytes):
            raise ReplayDivergence(icount, f"the guest captured {nbytes} bytes at {rate} Hz x{channels}, the history "
                                           f"has {len(event.data)} at {event.rate} Hz x{event.channels}")  # fmt: skip
        return event.data

    def audio_played(self, icount: int, slot: int, nbytes: int, rate: int, channels: int) -> None:
        if self.live is not None and self._is_live(icount):
            self._append(AudioOutput(icount, slot, rate, channels, nbytes))
            return
        event = self._take(AudioOutput, icount, "played audio")
        assert isinstance(event, AudioOutput)
        if (event.slot, event.rate, event.channels, event.nbytes) != (slot, rate, channels, nbytes):
            raise ReplayDivergence(icount, f"the guest played {nbytes} bytes at {rate} Hz x{channels}, the history "
                                           f"has {event.nbytes} at {event.rate} Hz x{event.channels}")  # fmt: skip

    def complete_io(self, icount: int, pending: int) -> int:
        if self.live is not None and self._is_live(icount):
            done = self.live.complete_io(icount, pending)
            if done:
                self._append(IoCompletion(icount, done))
            return done
        event = self._next()
        if not isinstance(event, IoCompletion) or event.icount > icount:
            return 0
        if event.icount < icount or event.slots & ~pending:
            raise ReplayDivergence(icount, f"device completion logged at icount {event.icount} for slots "
                                           f"{event.slots:#x}, pending here: {pending:#x}")  # fmt: skip
        self.position += 1
        return event.slots

    def idle(self, icount: int, deadline_ns: int | None) -> IdleOutcome:
        if self.live is not None and self._is_live(icount):
            outcome = self.live.idle(icount, deadline_ns)
            if outcome.warp_ns and outcome.warp_ns != deadline_ns:
                self._append(ClockWarp(icount, outcome.warp_ns))
            if outcome.data:
                self._append(UartInput(icount, outcome.data))
            return outcome
        event = self._next()
        if isinstance(event, ClockWarp) and event.icount == icount:
            self.position += 1
            return IdleOutcome(warp_ns=event.warp_ns)
        if isinstance(event, UartInput | IoCompletion | NetFrame) and event.icount == icount:
            return IdleOutcome()  # the machine polls it next
        if deadline_ns is not None:
            return IdleOutcome(warp_ns=deadline_ns)
        if event is not None:
            found = type(event).__name__
            raise ReplayDivergence(icount, f"the guest idles with no timer, the history has {found} next")
        return IdleOutcome(forever=True)
