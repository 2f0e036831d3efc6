"""PL061 GPIO (QEMU's ``pl061``, as the Arm ``virt`` board has it at 0x09030000 for its power button).

Nothing drives its inputs here (the board's gpio-keys power button is never pressed: a user's shutdown request is
Ctrl-C to chronicorn, not a guest input), so its pins read as QEMU's do at reset and interrupts never fire; the
registers keep what the guest writes, as QEMU's.
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


class Pl061:
    """Eight GPIO lines with nothing attached."""

    name = "gpio"
    size = 0x1000
    access_size = 4
    state_type = Pl061State

    def __init__(self, irq: IrqLine) -> None:
        self._irq = irq
        self.data = self.direction = self.isense = self.ibe = self.iev = self.im = self.afsel = 0

    def peek(self, offset: int, size: int) -> int | None:
        return self.read(offset, size)

    def read(self, offset: int, size: int) -> int:
        if offset <= DATA_END:
            return self.data & self.direction & (offset >> 2)  # inputs read 0; address bits mask the lines
        if offset in _REGISTERS:
            return int(getattr(self, _REGISTERS[offset]))
        if 0xFE0 <= offset <= 0xFFC and offset % 4 == 0:
            return PL061_ID[(offset - 0xFE0) // 4]
        return 0  # RIS/MIS: nothing ever pends

    def write(self, offset: int, size: int, value: int) -> None:
        if offset <= DATA_END:
            mask = (offset >> 2) & 0xFF
            self.data = (self.data & ~mask | value & mask) & 0xFF
        elif offset in _REGISTERS:
            setattr(self, _REGISTERS[offset], value & 0xFF)

    def save(self) -> Pl061State:
        return Pl061State(self.data, self.direction, self.isense, self.ibe, self.iev, self.im, self.afsel)

    def load(self, state: Pl061State, check: bool = True) -> None:
        s = checked(state, Pl061State) if check else state
        self.data, self.direction, self.isense, self.ibe, self.iev, self.im, self.afsel = (
            s.data, s.direction, s.isense, s.ibe, s.iev, s.im, s.afsel)
