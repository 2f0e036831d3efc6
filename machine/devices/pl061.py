"""PL061 GPIO (QEMU's ``pl061``, as the Arm ``virt`` board has it at 0x09030000 for its power button).

Nothing drives its inputs here (the board's gpio-keys power button is never pressed: a user's shutdown request is
Ctrl-C to chronicorn, not a guest input): input lines read 0, so only level-sensitive lines can interrupt (QEMU's
``pl061_update``: a line at the level GPIOIEV names latches in GPIORIS). Data writes reach output lines only
(GPIODIR), and reads return the data register masked by the address bits only, as QEMU 7.2's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..fields import Int, spec
from .base import IrqLine, checked

DATA_END, DIR, IS, IBE, IEV, IE = 0x3FC, 0x400, 0x404, 0x408, 0x40C, 0x410
RIS, MIS, IC, AFSEL = 0x414, 0x418, 0x41C, 0x420
PL061_ID = (0x61, 0x10, 0x04, 0x00, 0x0D, 0xF0, 0x05, 0xB1)  # PeriphID0-3, CellID0-3 at 0xFE0..0xFFC
_REGISTERS = {DIR: "direction", IS: "isense", IBE: "ibe", IEV: "iev", IE: "im", AFSEL: "afsel"}


@dataclass(frozen=True, slots=True)
class Pl061State:
    """The output data and the configuration registers."""

    VERSION: ClassVar[int] = 1
    data: int = spec(Int(8))
    direction: int = spec(Int(8))
    isense: int = spec(Int(8))
    ibe: int = spec(Int(8))
    iev: int = spec(Int(8))
    im: int = spec(Int(8))
    afsel: int = spec(Int(8))
    istate: int = spec(Int(8))  # GPIORIS: the latched interrupts


class Pl061:
    """Eight GPIO lines with nothing attached."""

    name = "gpio"
    size = 0x1000
    access_size = 4
    state_type = Pl061State

    def __init__(self, irq: IrqLine) -> None:
        self._irq = irq
        self.data = self.direction = self.isense = self.ibe = self.iev = self.im = self.afsel = self.istate = 0

    def peek(self, offset: int, size: int) -> int | None:
        return self.read(offset, size)  # (no read has a side effect)

    def read(self, offset: int, size: int) -> int:
        if offset <= DATA_END:
            return self.data & (offset >> 2)  # the address bits mask the lines
        if offset in _REGISTERS:
            return int(getattr(self, _REGISTERS[offset]))
        if 0xFE0 <= offset <= 0xFFC and offset % 4 == 0:
            return PL061_ID[(offset - 0xFE0) // 4]
        if offset == RIS:
            return self.istate
        if offset == MIS:
            return self.istate & self.im
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        if offset <= DATA_END:
            mask = (offset >> 2) & self.direction  # output lines only
            self.data = (self.data & ~mask | value & mask) & 0xFF
        elif offset == IC:
            self.istate &= ~value & 0xFF
        elif offset in _REGISTERS:
            setattr(self, _REGISTERS[offset], value & 0xFF)
        self._update()

    def _update(self) -> None:
        """``pl061_update``: level-sensitive lines at the level GPIOIEV names latch; the line is RIS & IE."""
        self.istate |= ~(self.data ^ self.iev) & self.isense & 0xFF
        self._irq(bool(self.istate & self.im))

    def save(self) -> Pl061State:
        return Pl061State(self.data, self.direction, self.isense, self.ibe, self.iev, self.im, self.afsel, self.istate)

    def load(self, state: Pl061State, check: bool = True) -> None:
        s = checked(state, Pl061State) if check else state
        self.data, self.direction, self.isense, self.ibe, self.iev, self.im, self.afsel, self.istate = (
            s.data, s.direction, s.isense, s.ibe, s.iev, s.im, s.afsel, s.istate)
