"""The Arm generic timer of one CPU (EL1 physical and virtual timers), counting the virtual clock.

The counter runs at QEMU's 62.5 MHz (``CNTFRQ_EL0``): one tick per 16 virtual ns, so it is a pure function of
the icount and the idle warps, never host time (Unicorn's own counter reads the host clock: the board traps
every ``CNT*_EL0`` access and answers here). ``CNTVOFF_EL2`` is 0 (no EL2): the virtual count is the physical.
Each timer's output is a level: ``ENABLE && !IMASK && count >= CVAL`` (Arm ARM D11.2.4), wired to a GIC PPI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..fields import Int, spec

FREQUENCY_HZ = 62_500_000
NS_PER_TICK = 1_000_000_000 // FREQUENCY_HZ  # 16
CTL_ENABLE, CTL_IMASK, CTL_ISTATUS = 1, 2, 4
U64 = (1 << 64) - 1

# (CRm, op2) of the CRn=14, op1=3 registers: CNTFRQ, CNTPCT, CNTVCT, CNTP_TVAL/CTL/CVAL, CNTV_TVAL/CTL/CVAL.
CNTFRQ, CNTPCT, CNTVCT = (0, 0), (0, 1), (0, 2)
TIMERS = {2: "phys", 3: "virt"}  # CRm of each timer's TVAL (op2 0), CTL (1), CVAL (2)


@dataclass(frozen=True, slots=True)
class TimerState:
    """Both timers' control and compare values."""

    VERSION: ClassVar[int] = 1
    phys_ctl: int = spec(Int(32, mask=CTL_ENABLE | CTL_IMASK))
    phys_cval: int = spec(Int(64))
    virt_ctl: int = spec(Int(32, mask=CTL_ENABLE | CTL_IMASK))
    virt_cval: int = spec(Int(64))


class UndefinedAccess(Exception):
    """A generic-timer register access that is UNDEFINED at EL1 (e.g. writing CNTFRQ_EL0 or a counter)."""


class GenericTimer:
    """``CNTP_*``/``CNTV_*`` and the counters; :meth:`access` carries out one trapped MRS/MSR."""

    def __init__(self) -> None:
        self.ctl = {"phys": 0, "virt": 0}
        self.cval = {"phys": 0, "virt": 0}

    def save(self) -> TimerState:
        return TimerState(self.ctl["phys"], self.cval["phys"], self.ctl["virt"], self.cval["virt"])

    def load(self, state: TimerState) -> None:
        self.ctl = {"phys": state.phys_ctl, "virt": state.virt_ctl}
        self.cval = {"phys": state.phys_cval, "virt": state.virt_cval}

    @staticmethod
    def count(ns: int) -> int:
        """The counter at virtual time ``ns``."""
        return (ns // NS_PER_TICK) & U64

    def fires(self, timer: str, count: int) -> bool:
        """The timer's interrupt output at this count."""
        ctl = self.ctl[timer]
        return ctl & CTL_ENABLE != 0 and ctl & CTL_IMASK == 0 and count >= self.cval[timer]

    def deadline_ticks(self, count: int) -> int | None:
        """The earliest count at which an output now low goes high (None: none will)."""
        due = [self.cval[t] for t in TIMERS.values()
               if self.ctl[t] & CTL_ENABLE and not self.ctl[t] & CTL_IMASK and count < self.cval[t]]  # fmt: skip
        return min(due) if due else None

    def access(self, crm: int, op2: int, is_read: bool, value: int, count: int) -> int:
        """Read (returns the value) or write (``value``) the register (CRm, op2) at this count."""
        if (crm, op2) == CNTFRQ:
            if is_read:
                return FREQUENCY_HZ
            raise UndefinedAccess("CNTFRQ_EL0 is writable only at the highest exception level")
        if (crm, op2) in (CNTPCT, CNTVCT):
            if is_read:
                return count
            raise UndefinedAccess("the counters are read-only")
        timer = TIMERS.get(crm)
        if timer is None or op2 > 2:
            raise UndefinedAccess(f"no generic-timer register CRm={crm} op2={op2}")
        if op2 == 0:  # TVAL: a signed 32-bit view of CVAL - count
            if is_read:
                return (self.cval[timer] - count) & 0xFFFF_FFFF
            offset = value & 0xFFFF_FFFF
            self.cval[timer] = (count + offset - (1 << 32 if offset >> 31 else 0)) & U64
        elif op2 == 1:
            if is_read:
                fired = self.ctl[timer] & CTL_ENABLE and count >= self.cval[timer]
                return self.ctl[timer] | (CTL_ISTATUS if fired else 0)
            self.ctl[timer] = value & (CTL_ENABLE | CTL_IMASK)
        else:
            if is_read:
                return self.cval[timer]
            self.cval[timer] = value & U64
        return 0
