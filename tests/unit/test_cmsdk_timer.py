"""machine/devices/cmsdk_timer.py: the CMSDK APB timer as QEMU 7.2's cmsdk-apb-timer.c on virtual 25 MHz
ticks, and the ptimer countdown it shares with SysTick."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from machine.devices.cmsdk_timer import (
    CID3,
    CTRL,
    CTRL_EN,
    CTRL_IRQEN,
    INTSTATUS,
    ONE_SHOT,
    PERIODIC,
    PID4,
    RELOAD,
    STOPPED,
    VALUE,
    CmsdkTimer,
    CmsdkTimerState,
    Countdown,
)
from machine.fields import FieldError, decode_fields, encode_fields
from tests.unit.lines import Line


class Timer:
    """A timer on a clock the test sets."""

    def __init__(self, now: int = 0) -> None:
        self.now = now
        self.irq = Line()
        self.dev = CmsdkTimer("timer0", lambda: self.now, self.irq)

    def at(self, now: int) -> CmsdkTimer:
        self.now = now
        return self.dev

    def value(self, now: int) -> int:
        return self.at(now).read(VALUE, 4)


def periodic(reload: int, start: int, irqen: bool = True) -> Timer:
    timer = Timer(start)
    timer.dev.write(CTRL, 4, CTRL_EN | (CTRL_IRQEN if irqen else 0))
    timer.dev.write(RELOAD, 4, reload)
    return timer


# -- the countdown (QEMU's ptimer with the CMSDK/SysTick policies) -----------------------------------


def stepped(value: int, reload: int, is_periodic: bool, counts: int) -> tuple[list[int], list[int]]:
    """An ideal counter stepped one count at a time: its value after each count and the counts that fired."""
    values, fires, running = [], [], True
    for n in range(1, counts + 1):
        if running and value > 0:
            value -= 1
            if value == 0:
                fires.append(n)
        elif running:  # held at 0 for one count: reload, or stop
            if is_periodic and reload > 0:
                value = reload
            else:
                running = False
        values.append(value)
    return values, fires


@given(st.integers(0, 9), st.integers(0, 6), st.booleans(), st.integers(1, 3), st.integers(0, 50))
def test_countdown_matches_a_counter_stepped_count_by_count(
    value: int, reload: int, is_periodic: bool, div: int, at: int
) -> None:
    counts = 40
    countdown = Countdown(value, at, reload, is_periodic, div)
    values, fires = stepped(value, reload, is_periodic, counts)
    fire_ticks = [at + n * div for n in fires]
    for tick in range(at, at + counts * div):
        n = (tick - at) // div
        assert countdown.count(tick) == ([value, *values][n]), tick
        later = [f for f in fire_ticks if f > tick]
        if later and later[0] < at + counts * div:
            assert countdown.fire_after(tick) == later[0]
        elif not (is_periodic and reload):
            assert countdown.fire_after(tick) is None
        done = [f for f in fire_ticks if f <= tick]
        assert countdown.last_fire_by(tick) == (done[-1] if done else None)
        assert countdown.is_live(tick) == (is_periodic and reload > 0 or bool(later))


def test_countdown_from_zero_reloads_without_firing() -> None:
    countdown = Countdown(0, 100, 4, True)
    assert [countdown.count(t) for t in range(100, 112)] == [0, 4, 3, 2, 1, 0, 4, 3, 2, 1, 0, 4]
    assert countdown.fire_after(100) == 105 and countdown.fire_after(105) == 110
    assert countdown.last_fire_by(104) is None and countdown.last_fire_by(109) == 105


# -- registers -----------------------------------------------------------------------------------------


def test_reset_registers_and_ids() -> None:
    timer = Timer().dev
    assert timer.name == "timer0"
    assert [timer.read(off, 4) for off in (CTRL, VALUE, RELOAD, INTSTATUS)] == [0, 0, 0, 0]
    assert [timer.read(off, 4) for off in range(PID4, CID3 + 4, 4)] == [
        0x04, 0, 0, 0, 0x22, 0xB8, 0x1B, 0, 0x0D, 0xF0, 0x05, 0xB1,
    ]  # fmt: skip
    assert timer.next_deadline_ticks() is None


def test_value_counts_down_from_reload_in_ticks_and_interrupts_at_the_deadline() -> None:
    timer = periodic(100, start=1000)
    assert timer.value(1000) == 100 and timer.value(1010) == 90 and timer.value(1099) == 1
    assert timer.dev.next_deadline_ticks() == 1100
    timer.dev.update(1099)
    assert timer.dev.read(INTSTATUS, 4) == 0 and not timer.irq.level
    timer.dev.update(1100)
    assert timer.dev.read(INTSTATUS, 4) == 1 and timer.irq.level
    assert timer.value(1100) == 0 and timer.value(1101) == 100  # holds 0 for one tick, then reloads
    assert timer.dev.next_deadline_ticks() == 1201  # a period of RELOAD + 1 ticks
    timer.at(1150).write(INTSTATUS, 4, 1)
    assert not timer.irq.level and timer.dev.intstatus == 0
    timer.dev.update(1201)
    assert timer.irq.level


def test_update_delivers_a_fire_once_and_late_updates_catch_up() -> None:
    timer = periodic(9, start=0)  # fires at 9, 19, 29, ...
    timer.dev.update(9)
    timer.at(12).write(INTSTATUS, 4, 1)
    timer.dev.update(12)
    assert timer.dev.intstatus == 0  # the fire at 9 is not delivered again
    timer.dev.update(55)  # the machine was late: fires at 19, 29, 39, 49 are one interrupt
    assert timer.dev.intstatus == 1 and timer.dev.raised_through == 49
    assert timer.dev.next_deadline_ticks() == 59


def test_updates_between_fires_do_not_change_the_state() -> None:
    """The saved state does not depend on when the machine called update (digests, seeks)."""
    a, b = periodic(9, start=3), periodic(9, start=3)
    for now in (4, 7, 11, 12, 15):
        a.dev.update(now)
    b.dev.update(15)
    assert a.dev.save() == b.dev.save()


def test_no_irqen_no_deadline_and_no_late_interrupt() -> None:
    timer = periodic(10, start=0, irqen=False)
    assert timer.dev.next_deadline_ticks() is None
    timer.dev.update(500)
    assert timer.dev.intstatus == 0
    # Fires at 10, 21, ..., 505: the one at the write's own tick came first (QEMU runs due timers before
    # the instruction), with IRQEN still clear.
    timer.at(505).write(CTRL, 4, CTRL_EN | CTRL_IRQEN)
    assert timer.dev.intstatus == 0 and timer.value(505) == 0
    assert timer.dev.next_deadline_ticks() == 516  # the phase goes on
    timer.dev.update(516)
    assert timer.dev.intstatus == 1


def test_disable_freezes_the_value_and_enable_continues() -> None:
    timer = periodic(100, start=0)
    timer.at(30).write(CTRL, 4, CTRL_IRQEN)
    assert timer.value(30) == 70 and timer.value(1000) == 70
    assert timer.dev.mode == STOPPED and timer.dev.next_deadline_ticks() is None
    timer.at(1000).write(CTRL, 4, CTRL_EN | CTRL_IRQEN)
    assert timer.value(1020) == 50 and timer.dev.next_deadline_ticks() == 1070


def test_reload_zero_runs_one_shot_from_value_and_stops() -> None:
    timer = Timer(0)
    timer.dev.write(VALUE, 4, 5)  # not enabled: stored
    assert timer.value(50) == 5
    timer.at(50).write(CTRL, 4, CTRL_EN | CTRL_IRQEN)
    assert timer.dev.mode == ONE_SHOT and timer.dev.next_deadline_ticks() == 55
    timer.dev.update(55)
    assert timer.irq.level
    assert timer.value(56) == 0 and timer.value(1000) == 0
    assert timer.dev.next_deadline_ticks() is None


def test_enable_from_zero_without_reload_does_nothing() -> None:
    timer = Timer(0)
    timer.dev.write(CTRL, 4, CTRL_EN | CTRL_IRQEN)
    assert timer.dev.mode == STOPPED and timer.dev.next_deadline_ticks() is None


def test_enable_from_zero_with_reload_fires_after_reload_plus_one() -> None:
    timer = Timer(0)
    timer.dev.write(RELOAD, 4, 10)  # not enabled: sets the value too
    timer.dev.write(VALUE, 4, 0)
    timer.at(100).write(CTRL, 4, CTRL_EN | CTRL_IRQEN)
    assert timer.value(100) == 0 and timer.value(101) == 10
    assert timer.dev.next_deadline_ticks() == 111


def test_writing_reload_restarts_the_count_and_zero_stops_it() -> None:
    timer = periodic(100, start=0)
    timer.at(40).write(RELOAD, 4, 20)
    assert timer.value(40) == 20 and timer.dev.next_deadline_ticks() == 60
    timer.at(45).write(RELOAD, 4, 0)
    assert timer.dev.mode == STOPPED and timer.value(45) == 0 and timer.value(90) == 0
    assert timer.dev.read(CTRL, 4) == CTRL_EN | CTRL_IRQEN  # CTRL.EN stays set (QEMU)


def test_writing_value_restarts_from_it_keeping_the_period() -> None:
    timer = periodic(100, start=0)
    timer.at(10).write(VALUE, 4, 5)
    assert timer.dev.next_deadline_ticks() == 15
    timer.dev.update(15)
    assert timer.value(16) == 100 and timer.dev.next_deadline_ticks() == 116


def test_value_write_zero_with_no_reload_stops() -> None:
    timer = Timer(0)
    timer.dev.write(VALUE, 4, 7)
    timer.dev.write(CTRL, 4, CTRL_EN)
    assert timer.dev.mode == ONE_SHOT
    timer.at(3).write(VALUE, 4, 0)
    assert timer.dev.mode == STOPPED and timer.value(3) == 0


def test_expired_one_shot_restarts_periodic_on_a_reload_write() -> None:
    timer = Timer(0)
    timer.dev.write(VALUE, 4, 2)
    timer.dev.write(CTRL, 4, CTRL_EN)
    timer.at(9).write(RELOAD, 4, 4)
    assert timer.dev.mode == PERIODIC and timer.value(9) == 4 and timer.value(14) == 4


def test_interrupt_clear_is_w1c_on_bit_zero_only() -> None:
    timer = periodic(3, start=0)
    timer.dev.update(3)
    timer.at(4).write(INTSTATUS, 4, 0xFFFF_FFFE)
    assert timer.dev.intstatus == 1
    timer.dev.write(INTSTATUS, 4, 1)
    assert timer.dev.intstatus == 0 and not timer.irq.level


def test_ctrl_keeps_four_bits_and_ids_are_read_only() -> None:
    timer = Timer(0).dev
    timer.write(CTRL, 4, 0xFFFF_FFF6)  # EXTIN bits are stored, not modelled (QEMU logs LOG_UNIMP)
    assert timer.read(CTRL, 4) == 0x6
    timer.write(PID4, 4, 0x55)
    assert timer.read(PID4, 4) == 0x04


def test_peek_refuses_value_only() -> None:
    timer = periodic(10, start=0)
    assert timer.dev.peek(VALUE, 4) is None
    assert timer.dev.peek(RELOAD, 4) == 10 and timer.dev.peek(CTRL, 4) == CTRL_EN | CTRL_IRQEN
    assert timer.dev.peek(INTSTATUS, 4) == 0


# -- state -------------------------------------------------------------------------------------------


def test_public_attributes_are_the_state_fields() -> None:
    timer = Timer().dev
    assert {k for k in vars(timer) if not k.startswith("_")} == {f.name for f in fields(CmsdkTimerState)}
    assert all(callable(v) for k, v in vars(timer).items() if k.startswith("_"))


def test_save_load_round_trip_continues_identically() -> None:
    source = periodic(50, start=7)
    source.dev.update(57)
    state = source.dev.save()
    assert decode_fields(CmsdkTimerState, encode_fields(state)) == state
    target = Timer(60)
    target.dev.load(state)
    assert target.dev.save() == state and target.irq.levels == []
    assert {k for k in vars(target.dev) if not k.startswith("_")} == {f.name for f in fields(CmsdkTimerState)}
    for now in (60, 100, 108, 109, 200):
        assert target.value(now) == source.value(now)
    assert target.dev.next_deadline_ticks() == source.dev.next_deadline_ticks() == 108


@pytest.mark.parametrize(
    "bad",
    [
        {"ctrl": 0x10},
        {"intstatus": 2},
        {"mode": 3},
        {"mode": PERIODIC, "reload": 0},  # QEMU never runs periodic without a reload
        {"ctrl": 0},  # counting with CTRL.EN clear
        {"raised_through": 0},  # before the counter's start
        {"at": -1},
    ],
)
def test_load_refuses_malformed_state(bad: dict[str, int]) -> None:
    timer = periodic(10, start=5)
    good = timer.dev.save()
    with pytest.raises(FieldError):
        timer.dev.load(replace(good, **bad))
    assert timer.dev.save() == good
