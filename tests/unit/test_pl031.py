"""machine/devices/pl031.py: the PL031 RTC as QEMU 7.2's pl031 (counter, load, match, interrupts, state)."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from machine.devices.pl031 import (
    RTCCR,
    RTCDR,
    RTCICR,
    RTCIMSC,
    RTCLR,
    RTCMIS,
    RTCMR,
    RTCRIS,
    Pl031,
    Pl031State,
)
from machine.fields import FieldError, decode_fields, encode_fields
from tests.unit.lines import Line

SECOND = 10**9


class Clock:
    """A host clock the test moves by hand; counts how often the device reads it."""

    def __init__(self, ns: int) -> None:
        self.ns = ns
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        return self.ns



def make_rtc(ns: int = 1_700_000_000 * SECOND + SECOND // 4) -> tuple[Pl031, Clock, Line]:
    clock, irq = Clock(ns), Line()
    return Pl031(clock, irq), clock, irq


def test_counter_is_the_host_clock_in_seconds() -> None:
    rtc, clock, _ = make_rtc()
    assert rtc.read(RTCDR, 4) == 1_700_000_000
    clock.ns += SECOND * 3 // 4
    assert rtc.read(RTCDR, 4) == 1_700_000_001
    assert rtc.read(RTCDR, 1) == 1_700_000_001 & 0xFF


def test_only_rtcdr_samples_the_clock() -> None:
    rtc, clock, _ = make_rtc()
    assert rtc.peek(RTCDR, 4) is None
    for offset in range(4, 0x1000, 4):
        assert rtc.peek(offset, 4) == rtc.read(offset, 4)
    assert clock.reads == 0


def test_load_register_sets_the_counter_and_reads_back() -> None:
    rtc, clock, _ = make_rtc()
    rtc.write(RTCLR, 4, 1000)
    assert rtc.read(RTCLR, 4) == 1000  # QEMU 7.2.10+: the last value written
    assert rtc.read(RTCDR, 4) == 1000
    clock.ns += 5 * SECOND
    assert rtc.read(RTCDR, 4) == 1005
    rtc.write(RTCLR, 4, 0xFFFF_FFFF)
    clock.ns += 2 * SECOND
    assert rtc.read(RTCDR, 4) == 1  # 32 bits, wrapping


def test_a_load_samples_the_clock_once() -> None:
    rtc, clock, _ = make_rtc()
    rtc.write(RTCLR, 4, 5)
    assert clock.reads == 1


def test_control_and_id_registers() -> None:
    rtc, _, _ = make_rtc()
    assert rtc.read(RTCCR, 4) == 1  # permanently enabled
    rtc.write(RTCCR, 4, 0)
    assert rtc.read(RTCCR, 4) == 1
    assert [rtc.read(0xFE0 + 4 * i, 4) for i in range(8)] == [0x31, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1]
    assert rtc.read(RTCICR, 4) == 0  # write-only


def test_future_match_is_stored_but_does_not_fire() -> None:
    rtc, clock, irq = make_rtc()
    rtc.write(RTCIMSC, 4, 1)
    rtc.write(RTCMR, 4, 1_700_000_010)
    assert rtc.read(RTCMR, 4) == 1_700_000_010
    clock.ns += 20 * SECOND
    assert rtc.read(RTCRIS, 4) == 0 and not irq.level  # no host timer (see the module docstring)


def test_past_match_does_not_fire_either() -> None:
    rtc, _, irq = make_rtc()
    rtc.write(RTCIMSC, 4, 1)
    rtc.write(RTCMR, 4, 1_699_999_999)  # ~2**32 s away for QEMU (the counter wraps)
    assert rtc.read(RTCRIS, 4) == 0 and not irq.level


def test_match_equal_to_the_count_fires_at_once() -> None:
    rtc, _, irq = make_rtc()
    rtc.write(RTCMR, 4, 1_700_000_000)
    assert rtc.read(RTCRIS, 4) == 1
    assert rtc.read(RTCMIS, 4) == 0 and not irq.level  # masked
    rtc.write(RTCIMSC, 4, 0xFF)
    assert rtc.read(RTCIMSC, 4) == 1 and rtc.read(RTCMIS, 4) == 1 and irq.level
    rtc.write(RTCICR, 4, 1)
    assert rtc.read(RTCRIS, 4) == 0 and not irq.level


def test_load_onto_the_match_value_fires() -> None:
    rtc, _, irq = make_rtc()
    rtc.write(RTCIMSC, 4, 1)
    rtc.write(RTCMR, 4, 42)
    assert not irq.level
    rtc.write(RTCLR, 4, 42)
    assert irq.level


def test_read_only_registers_ignore_writes() -> None:
    rtc, _, _ = make_rtc()
    rtc.write(RTCMR, 4, 1_700_000_000)
    before = rtc.save()
    for reg in (RTCDR, RTCRIS, RTCMIS):
        rtc.write(reg, 4, 0)
    assert rtc.save() == before


def test_save_load_round_trip_gives_the_same_behaviour() -> None:
    source, clock, _ = make_rtc()
    source.write(RTCLR, 4, 123_456)
    source.write(RTCMR, 4, 123_456)
    source.write(RTCIMSC, 4, 1)
    state = source.save()
    assert decode_fields(Pl031State, encode_fields(state)) == state
    irq = Line()
    target = Pl031(clock, irq)
    target.load(state)
    assert target.save() == state and not irq.levels
    clock.ns += 7 * SECOND
    assert target.read(RTCDR, 4) == source.read(RTCDR, 4) == 123_463
    assert [target.read(r, 4) for r in range(0, 0x20, 4)] == [source.read(r, 4) for r in range(0, 0x20, 4)]


def test_every_public_attribute_is_a_state_field() -> None:
    rtc, _, _ = make_rtc()
    assert {k for k in vars(rtc) if not k.startswith("_")} == {f.name for f in fields(Pl031State)}
    assert all(callable(v) for k, v in vars(rtc).items() if k.startswith("_"))


@pytest.mark.parametrize("change", [{"ris": 2}, {"imsc": -1}, {"tick_offset": 1 << 32}, {"mr": 1.5}])
def test_load_refuses_malformed_states(change: dict[str, object]) -> None:
    rtc, _, _ = make_rtc()
    good = rtc.save()
    with pytest.raises(FieldError):
        rtc.load(replace(good, **change))  # type: ignore[arg-type]
    assert rtc.save() == good
