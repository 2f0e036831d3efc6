"""Arm PrimeCell PL031 RTC (QEMU 7.2's ``pl031``, ``hw/rtc/pl031.c``), the Arm ``virt`` board's ``rtc``.

The counter is the host clock in seconds plus the guest's offset: RTCDR = ``host_clock_ns() // 10**9 +
tick_offset`` (32 bits, wrapping), as QEMU's ``pl031_get_count`` with ``-rtc clock=host``. The time comes
only from ``host_clock_ns`` (the machine's one host-clock read, which a recorder logs); writing RTCLR moves
the offset so RTCDR reads the written value from then on, and RTCLR reads back the last value written (QEMU
7.2.10 onwards).

The match alarm: QEMU arms a host timer for the second RTCDR reaches RTCMR. Firing it later would be a second,
unlogged channel from the host clock (as the Goldfish RTC's alarm would, see rtc.py), so that timer is not
modelled: an alarm set in the future is stored (RTCMR reads it back) but never fires. What is modelled is
QEMU's immediate case: a write to RTCMR or RTCLR that leaves RTCMR equal to the current count sets RTCRIS at
once (``pl031_set_alarm`` with ``ticks == 0``). An RTCMR earlier than the count is, as in QEMU, a match about
2**32 seconds away (the counter wraps), so it does not fire either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from ..fields import Int, spec
from .base import IrqLine, checked

RTCDR, RTCMR, RTCLR, RTCCR, RTCIMSC, RTCRIS, RTCMIS, RTCICR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x1C
PERIPH_ID = 0xFE0  # RTCPeriphID0..3, RTCPCellID0..3: one byte per word up to 0xFFC
ID_BYTES = bytes((0x31, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1))  # QEMU's pl031_id
NS_PER_SECOND = 10**9
U32 = Int(32)
MASK32 = 0xFFFF_FFFF


@dataclass(frozen=True, slots=True)
class Pl031State:
    """QEMU's ``tick_offset`` (guest seconds minus host seconds, mod 2**32), the match and load registers,
    the interrupt mask and raw status."""

    VERSION: ClassVar[int] = 1
    tick_offset: int = spec(U32)
    mr: int = spec(U32)  # RTCMR
    lr: int = spec(U32)  # RTCLR: the last value written
    imsc: int = spec(Int(32, mask=1))  # RTCIMSC (QEMU's ``im``)
    ris: int = spec(Int(32, mask=1))  # RTCRIS (QEMU's ``is``)


class Pl031:
    """The device; ``irq`` is RTCINTR (RTCRIS & RTCIMSC)."""

    name = "rtc"
    size = 0x1000
    access_size = 4
    state_type = Pl031State

    def __init__(self, host_clock_ns: Callable[[], int], irq: IrqLine) -> None:
        self._clock = host_clock_ns
        self._irq = irq
        self.tick_offset = 0
        self.mr = 0
        self.lr = 0
        self.imsc = 0
        self.ris = 0

    def _count(self) -> int:
        """RTCDR now (QEMU's ``pl031_get_count``): samples the host clock."""
        return (self.tick_offset + self._clock() // NS_PER_SECOND) & MASK32

    def _update(self) -> None:
        self._irq(self.ris & self.imsc != 0)

    def _set_alarm(self, count: int) -> None:
        """QEMU's ``pl031_set_alarm`` at RTCDR = ``count``, less the host timer (see the module docstring)."""
        if (self.mr - count) & MASK32 == 0:
            self.ris = 1
            self._update()

    def peek(self, offset: int, size: int) -> int | None:
        if offset == RTCDR:
            return None  # samples the clock: only at an exact instruction boundary
        return self.read(offset, size)

    def read(self, offset: int, size: int) -> int:
        if size == 8:  # QEMU splits wider accesses into two 32-bit ones
            return self.read(offset, 4) | self.read(offset + 4, 4) << 32
        if offset == RTCDR:
            value = self._count()
        elif PERIPH_ID <= offset < 0x1000:
            value = ID_BYTES[(offset - PERIPH_ID) >> 2]
        else:
            value = {
                RTCMR: self.mr, RTCLR: self.lr, RTCCR: 1,  # QEMU: the RTC is permanently enabled
                RTCIMSC: self.imsc, RTCRIS: self.ris, RTCMIS: self.ris & self.imsc,
            }.get(offset, 0)  # fmt: skip
        return value & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        if size == 8:
            self.write(offset, 4, value & MASK32)
            self.write(offset + 4, 4, value >> 32)
            return
        value &= (1 << (8 * size)) - 1
        if offset == RTCLR:
            # One clock sample per access (QEMU samples again in pl031_set_alarm; a recorder logs each
            # sample, and the count right after the load is ``value`` by construction).
            self.lr = value
            self.tick_offset = (self.tick_offset + value - self._count()) & MASK32
            self._set_alarm(value)
        elif offset == RTCMR:
            self.mr = value
            self._set_alarm(self._count())
        elif offset == RTCIMSC:
            self.imsc = value & 1
            self._update()
        elif offset == RTCICR:
            self.ris &= ~value
            self._update()
        # RTCCR writes are ignored (always enabled); RTCDR, RTCRIS, RTCMIS are read-only.

    def save(self) -> Pl031State:
        return Pl031State(self.tick_offset, self.mr, self.lr, self.imsc, self.ris)

    def load(self, state: Pl031State, check: bool = True) -> None:
        state = checked(state, Pl031State) if check else state
        self.tick_offset, self.mr, self.lr, self.imsc, self.ris = (
            state.tick_offset, state.mr, state.lr, state.imsc, state.ris)  # fmt: skip
