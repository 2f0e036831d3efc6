"""ARM CMSDK APB timer (QEMU's ``cmsdk-apb-timer``, hw/timer/cmsdk-apb-timer.c), as on ``mps2-an385``.

The counter runs on the board's APB clock (SYSCLK_FRQ, 25 MHz), which here is virtual: ``ticks()``
is the count of 25 MHz cycles at the current icount. The counter is stored as "``value`` at tick
``at``" and computed when read (QEMU's ptimer, see :class:`Countdown`). The machine asks
:meth:`CmsdkTimer.next_deadline_ticks` when the next interrupt is due and calls
:meth:`CmsdkTimer.update` there. Not modelled, as in QEMU: the EXTIN enable and clock inputs
(CTRL bits 1 and 2 are stored only); QEMU's 10 us minimum period applies only without icount.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from ..fields import FieldError, Int, spec
from .base import IrqLine, checked

CTRL, VALUE, RELOAD, INTSTATUS = 0x00, 0x04, 0x08, 0x0C
PID4, CID3 = 0xFD0, 0xFFC
CTRL_EN, CTRL_IRQEN = 0x1, 0x8
TIMER_ID = (0x04, 0x00, 0x00, 0x00, 0x22, 0xB8, 0x1B, 0x00, 0x0D, 0xF0, 0x05, 0xB1)  # PID4..7, PID0..3, CID0..3
APB_HZ = 25_000_000  # mps2.c's SYSCLK_FRQ
STOPPED, PERIODIC, ONE_SHOT = 0, 1, 2  # QEMU ptimer's ``enabled``
U32 = Int(32)
U64 = Int(64)


@dataclass(frozen=True, slots=True)
class Countdown:
    """A down-counter as QEMU's ptimer with WRAP_AFTER_ONE_PERIOD, TRIGGER_ONLY_ON_DECREMENT and
    NO_IMMEDIATE_RELOAD (the CMSDK timer's and SysTick's policies), started at tick ``at`` with ``value``.

    It decrements once every ``div`` ticks after ``at``; the 1 -> 0 step is a *fire* (the interrupt);
    it holds 0 for one count, then reloads ``reload`` if ``periodic`` and ``reload`` > 0, else stops
    at 0. Starting from 0 reloads after one count without firing. So the first fire comes ``value``
    counts after ``at`` (or ``reload`` + 1 from 0), then one every ``reload`` + 1 counts.
    Values are those of an ideal counter: QEMU reads one more when a read falls exactly on a count edge
    (its NO_COUNTER_ROUND_DOWN rounding); fire times are QEMU's.
    """

    value: int
    at: int
    reload: int
    periodic: bool
    div: int = 1

    def _period(self) -> int | None:
        return self.reload + 1 if self.periodic and self.reload > 0 else None

    def _first(self) -> int | None:
        """Counts from ``at`` to the first fire."""
        return self.value if self.value > 0 else self._period()

    def _counts(self, now: int) -> int:
        return (now - self.at) // self.div

    def count(self, now: int) -> int:
        """The counter's value at tick ``now`` (>= ``at``)."""
        elapsed = self._counts(now)
        if elapsed <= self.value:
            return self.value - elapsed
        period = self._period()
        return 0 if period is None else self.reload - (elapsed - self.value - 1) % period

    def is_live(self, now: int) -> bool:
        """Whether the counter still runs at ``now`` (a one-shot, or a reload of 0, stops at its fire)."""
        if self._period() is not None:
            return True
        first = self._first()
        return first is not None and self._counts(now) < first

    def fire_after(self, tick: int) -> int | None:
        """The first fire strictly after ``tick`` (>= ``at``), in ticks; None if there is none."""
        first, period = self._first(), self._period()
        counts = self._counts(tick)
        if first is None:
            return None
        if first > counts:
            return self.at + first * self.div
        if period is None:
            return None
        return self.at + (first + ((counts - first) // period + 1) * period) * self.div

    def last_fire_by(self, tick: int) -> int | None:
        """The last fire at or before ``tick`` (>= ``at``), in ticks; None if there is none."""
        first, period = self._first(), self._period()
        counts = self._counts(tick)
        if first is None or first > counts:
            return None
        n = first if period is None else first + (counts - first) // period * period
        return self.at + n * self.div


@dataclass(frozen=True, slots=True)
class CmsdkTimerState:
    """CTRL, RELOAD, INTSTATUS; the counter: ``value`` at tick ``at`` and QEMU's ptimer ``mode``; and
    ``raised_through``: fires at or before this tick have set INTSTATUS (a tick of a fire or of a write,
    so the state does not depend on when the machine called :meth:`CmsdkTimer.update`)."""

    VERSION: ClassVar[int] = 1
    ctrl: int = spec(Int(32, mask=0xF))
    reload: int = spec(U32)
    intstatus: int = spec(Int(32, mask=1))
    value: int = spec(U32)
    at: int = spec(U64)
    mode: int = spec(Int(8, maximum=ONE_SHOT))
    raised_through: int = spec(U64)

    def check_invariants(self) -> None:
        if self.mode == PERIODIC and self.reload == 0:
            raise FieldError("CmsdkTimerState.mode: periodic with a reload of 0")
        if self.mode != STOPPED and not self.ctrl & CTRL_EN:
            raise FieldError("CmsdkTimerState.mode: counting while CTRL.EN is clear")
        if self.raised_through < self.at:
            raise FieldError("CmsdkTimerState.raised_through: before the counter's start")


class CmsdkTimer:
    """The device; ``ticks()`` is the 25 MHz APB clock at the current icount, ``irq`` is TIMERINT."""

    size = 0x1000
    access_size = 4
    state_type = CmsdkTimerState

    def __init__(self, name: str, ticks: Callable[[], int], irq: IrqLine) -> None:
        self._name: Callable[[], str] = lambda: name  # configuration, kept as wiring (not state)
        self._ticks = ticks
        self._irq = irq
        self.ctrl = 0
        self.reload = 0
        self.intstatus = 0
        self.value = 0
        self.at = 0
        self.mode = STOPPED
        self.raised_through = 0

    @property
    def name(self) -> str:
        """The device's name on the board (``timer0``, ``timer1``)."""
        return self._name()

    # -- time ----------------------------------------------------------------
    def _countdown(self) -> Countdown:
        return Countdown(self.value, self.at, self.reload, self.mode == PERIODIC)

    def _count(self, now: int) -> int:
        return self._countdown().count(now) if self.mode != STOPPED else self.value

    def _live_mode(self, now: int) -> int:
        return self.mode if self.mode != STOPPED and self._countdown().is_live(now) else STOPPED

    def next_deadline_ticks(self) -> int | None:
        """The tick of the next fire that will set INTSTATUS (None: none while the timer is stopped or IRQEN clear)."""
        if self.mode == STOPPED or not self.ctrl & CTRL_IRQEN:
            return None
        return self._countdown().fire_after(self.raised_through)

    def update(self, now_ticks: int) -> None:
        """Deliver the fires up to ``now_ticks``: INTSTATUS and the line rise (``cmsdk_apb_timer_tick``)."""
        if self.mode == STOPPED or not self.ctrl & CTRL_IRQEN:
            return
        last = self._countdown().last_fire_by(now_ticks)
        if last is not None and last > self.raised_through:
            self.raised_through = last
            self.intstatus = 1
            self._irq(True)

    def _restart(self, now: int, value: int, mode: int) -> None:
        """The counter holds ``value`` from ``now`` (after :meth:`update`: earlier fires are delivered)."""
        self.value, self.at, self.mode, self.raised_through = value, now, mode, now

    # -- registers ---------------------------------------------------------
    def peek(self, offset: int, size: int) -> int | None:
        if offset == VALUE:
            return None  # depends on the icount
        return self.read(offset, size)

    def read(self, offset: int, size: int) -> int:
        if offset == CTRL:
            value = self.ctrl
        elif offset == VALUE:
            value = self._count(self._ticks())
        elif offset == RELOAD:
            value = self.reload
        elif offset == INTSTATUS:
            value = self.intstatus
        elif PID4 <= offset <= CID3:
            value = TIMER_ID[(offset - PID4) // 4] if offset % 4 == 0 else 0
        else:
            value = 0  # QEMU: guest error, reads as zero
        return value & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        value &= (1 << (8 * size)) - 1
        if offset not in (CTRL, VALUE, RELOAD, INTSTATUS):
            return  # ID registers are read-only; other offsets: QEMU logs a guest error
        now = self._ticks()
        self.update(now)
        count, live = self._count(now), self._live_mode(now)
        one_shot_or_periodic = ONE_SHOT if self.reload == 0 else PERIODIC
        if offset == CTRL:
            self.ctrl = value & 0xF
            if not self.ctrl & CTRL_EN:
                self._restart(now, count, STOPPED)
            elif live:
                self._restart(now, count, live)
            else:  # ptimer_run: from 0 with no reload it stops at once ("delta zero")
                self._restart(now, count, STOPPED if count == 0 and self.reload == 0 else one_shot_or_periodic)
        elif offset == RELOAD:  # writing RELOAD also sets the counter; 0 stops it
            self.reload = value
            self._restart(now, value, PERIODIC if value and self.ctrl & CTRL_EN else STOPPED)
        elif offset == VALUE:
            if value == 0 and self.reload == 0:
                mode = STOPPED
            elif value and self.ctrl & CTRL_EN:
                mode = one_shot_or_periodic
            else:
                mode = live
            self._restart(now, value, mode)
        else:  # INTSTATUS: one W1C bit
            self.intstatus &= ~value & 1
            self._irq(bool(self.intstatus))

    # -- state ---------------------------------------------------------------
    def save(self) -> CmsdkTimerState:
        return CmsdkTimerState(self.ctrl, self.reload, self.intstatus, self.value, self.at, self.mode,
                               self.raised_through)  # fmt: skip

    def load(self, state: CmsdkTimerState, check: bool = True) -> None:
        state = checked(state, CmsdkTimerState) if check else state
        self.ctrl, self.reload, self.intstatus = state.ctrl, state.reload, state.intstatus
        self.value, self.at, self.mode, self.raised_through = state.value, state.at, state.mode, state.raised_through
