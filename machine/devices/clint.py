"""SiFive CLINT (QEMU's ``riscv.aclint``): msip, mtimecmp and mtime for hart 0.

mtime is never read from the host: it is the virtual clock (icount-derived)
divided into 10 MHz ticks. Guest writes to mtime move an offset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from ..fields import Int, spec
from .base import IrqLine, checked, merge_word, sub_word

MSIP, MTIMECMP, MTIME = 0x0000, 0x4000, 0xBFF8
TIMEBASE_HZ = 10_000_000
NS_PER_TICK = 1_000_000_000 // TIMEBASE_HZ
U64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class ClintState:
    """msip, mtimecmp, and how far guest writes moved mtime from the virtual clock (signed ticks)."""

    VERSION: ClassVar[int] = 1
    msip: int = spec(Int(32, mask=1))
    mtimecmp: int = spec(Int(64))
    mtime_offset: int = spec(Int(128, signed=True))


class Clint:
    """``now_ticks`` returns the virtual clock in 10 MHz ticks at the current icount."""

    name = "clint"
    access_size = 4
    size = 0x10000
    state_type = ClintState

    def __init__(self, now_ticks: Callable[[], int], msip_irq: IrqLine,
                 mtime_read: Callable[[], None] | None = None) -> None:  # fmt: skip
        """``now_ticks``: the virtual clock at the accessing instruction; ``mtime_read``: told of each mtime read
        (the board answers the reading instruction natively from then on)."""
        self._now = now_ticks
        self._mtime_read = mtime_read
        self._msip_irq = msip_irq
        self.msip = 0
        self.mtimecmp = U64
        self.mtime_offset = 0

    def mtime(self, ticks: int) -> int:
        """Guest-visible mtime for a virtual clock reading (``mtime_offset`` is signed)."""
        return (ticks + self.mtime_offset) & U64

    def timer_pending(self, ticks: int) -> bool:
        return self.mtime(ticks) >= self.mtimecmp

    def deadline_ticks(self) -> int | None:
        """Virtual clock reading at which the timer interrupt becomes pending."""
        if self.mtimecmp == U64:
            return None
        return self.mtimecmp - self.mtime_offset

    def peek(self, offset: int, size: int) -> int | None:
        if MTIME <= offset < MTIME + 8:
            return None
        return self.read(offset, size)

    def read(self, offset: int, size: int) -> int:
        if offset < 4:
            return sub_word(self.msip, offset, size)
        if MTIMECMP <= offset < MTIMECMP + 8:
            return sub_word(self.mtimecmp, offset - MTIMECMP, size)
        if MTIME <= offset < MTIME + 8:
            if self._mtime_read is not None:
                self._mtime_read()
            return sub_word(self.mtime(self._now()), offset - MTIME, size)
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        if offset < 4:
            self.msip = value & 1 if offset == 0 else self.msip
            self._msip_irq(bool(self.msip))
        elif MTIMECMP <= offset < MTIMECMP + 8:
            self.mtimecmp = merge_word(self.mtimecmp, offset - MTIMECMP, size, value)
        elif MTIME <= offset < MTIME + 8:
            ticks = self._now()
            new = merge_word(self.mtime(ticks), offset - MTIME, size, value)
            self.mtime_offset = new - ticks

    def save(self) -> ClintState:
        return ClintState(self.msip, self.mtimecmp, self.mtime_offset)

    def load(self, state: ClintState, check: bool = True) -> None:
        state = checked(state, ClintState) if check else state
        self.msip, self.mtimecmp, self.mtime_offset = state.msip, state.mtimecmp, state.mtime_offset
