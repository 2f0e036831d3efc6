"""Goldfish RTC (QEMU's ``goldfish_rtc``): the guest's view of the host clock.

The time comes from the input source (the only host-clock read in the
machine), so a later recorder can log it. Alarms are stored but never fire:
they would be a second, unlogged channel from the host clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from ..fields import Int, spec
from .base import checked, merge_word

TIME_LOW, TIME_HIGH, ALARM_LOW, ALARM_HIGH = 0x00, 0x04, 0x08, 0x0C
IRQ_ENABLED, CLEAR_ALARM, ALARM_STATUS, CLEAR_INTERRUPT = 0x10, 0x14, 0x18, 0x1C


@dataclass(frozen=True, slots=True)
class RtcState:
    """How far the guest moved its clock from the host's, the latched TIME_HIGH, the (inert) alarm."""

    VERSION: ClassVar[int] = 1
    offset_ns: int = spec(Int(128, signed=True))
    time_high: int = spec(Int(32))
    alarm: int = spec(Int(64))
    irq_enabled: int = spec(Int(32, mask=1))


class GoldfishRtc:
    """Reading TIME_LOW samples the clock and latches TIME_HIGH, as on QEMU."""

    name = "rtc"
    access_size = 4
    size = 0x1000
    state_type = RtcState

    def __init__(self, host_clock_ns: Callable[[], int]) -> None:
        self._clock = host_clock_ns
        self.offset_ns = 0
        self.time_high = 0
        self.alarm = 0
        self.irq_enabled = 0

    def peek(self, offset: int, size: int) -> int | None:
        if offset == TIME_LOW:
            return None
        return self.read(offset, size)

    def read(self, offset: int, size: int) -> int:
        if offset == TIME_LOW:
            now = self._clock() + self.offset_ns
            self.time_high = (now >> 32) & 0xFFFFFFFF
            return now & 0xFFFFFFFF
        return {
            TIME_HIGH: self.time_high,
            ALARM_LOW: self.alarm & 0xFFFFFFFF,
            ALARM_HIGH: self.alarm >> 32,
            IRQ_ENABLED: self.irq_enabled,
        }.get(offset, 0)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset in (TIME_LOW, TIME_HIGH):  # as QEMU: move the offset so the clock reads ``value``
            now = self._clock() + self.offset_ns
            self.offset_ns += merge_word(now, offset - TIME_LOW, 4, value) - now
        elif offset == ALARM_LOW:
            self.alarm = merge_word(self.alarm, 0, 4, value)
        elif offset == ALARM_HIGH:
            self.alarm = merge_word(self.alarm, 4, 4, value)
        elif offset == IRQ_ENABLED:
            self.irq_enabled = value & 1

    def save(self) -> RtcState:
        return RtcState(self.offset_ns, self.time_high, self.alarm, self.irq_enabled)

    def load(self, state: RtcState, check: bool = True) -> None:
        state = checked(state, RtcState) if check else state
        self.offset_ns, self.time_high, self.alarm, self.irq_enabled = (
            state.offset_ns, state.time_high, state.alarm, state.irq_enabled)  # fmt: skip
