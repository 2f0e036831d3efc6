"""machine/devices/gicv2.py: the GICv2 as QEMU 7.2's arm_gic on virt (one CPU, no security extensions)."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from machine.devices.gicv2 import (
    GICC_ABPR,
    GICC_AIAR,
    GICC_APR,
    GICC_BPR,
    GICC_CTLR,
    GICC_DIR,
    GICC_EOIR,
    GICC_HPPIR,
    GICC_IAR,
    GICC_IIDR,
    GICC_NSAPR,
    GICC_PMR,
    GICC_RPR,
    GICD_CPENDSGIR,
    GICD_CTLR,
    GICD_ICACTIVER,
    GICD_ICENABLER,
    GICD_ICFGR,
    GICD_ICPENDR,
    GICD_IGROUPR,
    GICD_IIDR,
    GICD_IPRIORITYR,
    GICD_ISACTIVER,
    GICD_ISENABLER,
    GICD_ISPENDR,
    GICD_ITARGETSR,
    GICD_SGIR,
    GICD_SPENDSGIR,
    GICD_TYPER,
    GicCpuInterfaceState,
    GicV2,
    GicV2State,
)
from machine.fields import FieldError, decode_fields, encode_fields
from tests.unit.lines import Line


class Gic:
    """A GIC with short-hands for its registers; the distributor and CPU interface start enabled."""

    def __init__(self, enable: bool = True) -> None:
        self.irq, self.fiq = Line(), Line()
        self.gic = GicV2(self.irq, self.fiq)
        self.d, self.c = self.gic.distributor, self.gic.cpu_interface
        if enable:
            self.d.write(GICD_CTLR, 4, 1)
            self.c.write(GICC_CTLR, 4, 1)
            self.c.write(GICC_PMR, 4, 0xFF)

    def spi(self, intid: int, priority: int, edge: bool = False) -> None:
        """Enable ``intid`` at ``priority`` (level-triggered unless ``edge``)."""
        self.d.write(GICD_IPRIORITYR + intid, 1, priority)
        if edge:
            word = GICD_ICFGR + 4 * (intid // 16)
            self.d.write(word, 4, self.d.read(word, 4) | 2 << 2 * (intid % 16))
        self.d.write(GICD_ISENABLER + 4 * (intid // 32), 4, 1 << intid % 32)

    def bit(self, base: int, intid: int) -> bool:
        return bool(self.d.read(base + 4 * (intid // 32), 4) >> intid % 32 & 1)

    def iar(self) -> int:
        return self.c.read(GICC_IAR, 4)

    def eoi(self, value: int) -> None:
        self.c.write(GICC_EOIR, 4, value)


def test_identification_registers_as_qemu_virt() -> None:
    g = Gic(enable=False)
    assert g.d.read(GICD_TYPER, 4) == 0x8  # ITLinesNumber 8: 288 INTIDs, one CPU, no security extensions
    assert g.d.read(GICD_IIDR, 4) == 0x43B
    assert g.c.read(GICC_IIDR, 4) == 0x0002_043B
    pidr = [g.d.read(0xFD0 + 4 * i, 4) for i in range(12)]
    assert pidr == [0x04, 0, 0, 0, 0x90, 0xB4, 0x2B, 0x00, 0x0D, 0xF0, 0x05, 0xB1]
    g.d.write(GICD_ITARGETSR + 40, 1, 0xFF)
    assert g.d.read(GICD_ITARGETSR + 40, 4) == 0  # RAZ/WI on a uniprocessor GIC


def test_reset_state_sgis_always_enabled_and_edge() -> None:
    g = Gic(enable=False)
    assert g.d.read(GICD_ISENABLER, 4) == 0xFFFF
    assert g.d.read(GICD_ICFGR, 4) == 0xAAAA_AAAA
    assert g.d.read(GICD_ICFGR + 4, 4) == 0  # PPIs level-triggered
    g.d.write(GICD_ICENABLER, 4, 0xFFFF_FFFF)
    g.d.write(GICD_ICFGR, 4, 0)
    assert g.d.read(GICD_ISENABLER, 4) == 0xFFFF and g.d.read(GICD_ICFGR, 4) == 0xAAAA_AAAA
    assert g.c.read(GICC_RPR, 4) == 0xFF and g.c.read(GICC_ABPR, 4) == 1 and g.c.read(GICC_BPR, 4) == 0
    assert g.iar() == 1023


def test_level_interrupt_pends_while_its_line_is_high() -> None:
    g = Gic()
    g.spi(33, 0x80)
    line = g.gic.line(33)
    line(True)
    assert g.irq.level and g.gic.irq_pending() and g.bit(GICD_ISPENDR, 33)
    assert g.iar() == 33
    assert not g.irq.level and g.bit(GICD_ISACTIVER, 33)
    assert g.bit(GICD_ISPENDR, 33)  # still pending: the line is high (active and pending)
    g.eoi(33)
    assert g.irq.level and not g.bit(GICD_ISACTIVER, 33)  # signalled again
    line(False)
    assert not g.irq.level and not g.bit(GICD_ISPENDR, 33)


def test_edge_interrupt_latches_a_rising_edge() -> None:
    g = Gic()
    g.spi(40, 0x80, edge=True)
    line = g.gic.line(40)
    line(True)
    line(False)
    assert g.irq.level and g.bit(GICD_ISPENDR, 40)
    assert g.iar() == 40 and not g.bit(GICD_ISPENDR, 40)
    line(True)  # a new edge while active: pending again, not signalled until the end of interrupt
    assert g.bit(GICD_ISPENDR, 40) and not g.irq.level
    line(True)  # no edge: nothing more
    g.eoi(40)
    assert g.irq.level and g.iar() == 40


def test_software_pending_of_a_level_interrupt_is_cleared_by_acknowledge_or_icpendr() -> None:
    g = Gic()
    g.spi(50, 0x10)
    g.d.write(GICD_ISPENDR + 4, 4, 1 << 18)
    assert g.bit(GICD_ISPENDR, 50) and g.irq.level
    g.d.write(GICD_ICPENDR + 4, 4, 1 << 18)
    assert not g.bit(GICD_ISPENDR, 50) and not g.irq.level
    g.gic.line(50)(True)
    g.d.write(GICD_ICPENDR + 4, 4, 1 << 18)
    assert g.bit(GICD_ISPENDR, 50)  # the line keeps it pending


def test_enabling_does_not_latch_a_level_interrupt() -> None:
    """QEMU 7.2.14's fix: enabling with the line high must not leave it pending after the line drops."""
    g = Gic()
    line = g.gic.line(60)
    line(True)
    assert not g.irq.level  # not enabled
    g.spi(60, 0x80)
    assert g.irq.level
    line(False)
    assert not g.irq.level and not g.bit(GICD_ISPENDR, 60)


def test_highest_priority_first_ties_to_the_lowest_intid() -> None:
    g = Gic()
    for intid, priority in ((40, 0x80), (41, 0x40), (42, 0x40), (30, 0xA0)):
        g.spi(intid, priority)
        g.gic.line(intid)(True)
    assert g.c.read(GICC_HPPIR, 4) == 41
    assert g.iar() == 41
    g.eoi(41)
    g.gic.line(41)(False)
    assert g.iar() == 42


def test_priority_mask_needs_strictly_higher_priority() -> None:
    g = Gic()
    g.spi(35, 0x40)
    g.gic.line(35)(True)
    g.c.write(GICC_PMR, 4, 0x40)
    assert not g.irq.level and g.c.read(GICC_HPPIR, 4) == 1023 and g.iar() == 1023
    g.c.write(GICC_PMR, 4, 0x48)
    assert g.irq.level and g.iar() == 35


def test_running_priority_gates_preemption_and_eoi_restores_it() -> None:
    g = Gic()
    g.spi(36, 0x80)
    g.spi(37, 0xA0)
    g.spi(38, 0x40)
    g.gic.line(36)(True)
    assert g.iar() == 36 and g.c.read(GICC_RPR, 4) == 0x80
    assert g.c.read(GICC_APR + 8, 4) == 1  # preemption level 0x80 >> 1 = 64: GICC_APR2 bit 0
    g.gic.line(37)(True)
    assert not g.irq.level and g.c.read(GICC_HPPIR, 4) == 37 and g.iar() == 1023  # lower priority waits
    g.gic.line(38)(True)
    assert g.irq.level and g.iar() == 38  # higher priority preempts
    assert g.c.read(GICC_RPR, 4) == 0x40
    g.gic.line(38)(False)
    g.eoi(38)
    assert g.c.read(GICC_RPR, 4) == 0x80 and not g.irq.level  # back to 36's priority: 37 still waits
    g.eoi(36)
    assert g.c.read(GICC_RPR, 4) == 0xFF and g.c.read(GICC_APR + 8, 4) == 0
    assert g.irq.level and g.iar() == 36  # its line is still high; it outranks 37


def test_binary_point_groups_priorities() -> None:
    g = Gic()
    g.c.write(GICC_BPR, 4, 3)  # group priority bits [7:4]
    g.spi(36, 0x85)
    g.spi(37, 0x81)
    g.spi(38, 0x70)
    g.gic.line(36)(True)
    assert g.iar() == 36 and g.c.read(GICC_RPR, 4) == 0x80
    g.gic.line(37)(True)
    assert not g.irq.level  # 0x81 is not above the group priority 0x80
    g.gic.line(38)(True)
    assert g.iar() == 38 and g.c.read(GICC_RPR, 4) == 0x70


def test_spurious_when_nothing_is_deliverable() -> None:
    g = Gic()
    assert g.iar() == 1023
    g.spi(33, 0x80)
    g.gic.line(33)(True)
    g.d.write(GICD_CTLR, 4, 0)
    assert not g.irq.level and g.iar() == 1023
    g.d.write(GICD_CTLR, 4, 1)
    g.c.write(GICC_CTLR, 4, 0)
    assert not g.irq.level and g.iar() == 1023
    g.c.write(GICC_CTLR, 4, 1)
    g.eoi(1023)  # ignored
    assert g.iar() == 33


def test_sgir_sends_sgis_to_self_only() -> None:
    g = Gic()
    g.d.write(GICD_SGIR, 4, 2 << 24 | 5)  # filter 2: this CPU
    assert g.irq.level and g.d.read(GICD_SPENDSGIR + 4, 4) == 0x0000_0100  # SGI 5 from CPU 0
    assert g.iar() == 5
    g.eoi(5)
    g.d.write(GICD_SGIR, 4, 1 << 24 | 6)  # filter 1: all but this CPU
    g.d.write(GICD_SGIR, 4, 0x2 << 16 | 7)  # target list: CPU 1 only
    assert not g.irq.level and g.d.read(GICD_ISPENDR, 4) == 0
    g.d.write(GICD_SGIR, 4, 0x1 << 16 | 8)  # target list: CPU 0
    assert g.iar() == 8


def test_set_and_clear_pending_sgi_registers() -> None:
    g = Gic()
    g.d.write(GICD_SPENDSGIR + 3, 1, 0x0C)  # SGI 3 pending from CPUs 2 and 3
    assert g.d.read(GICD_ISPENDR, 4) == 1 << 3
    assert g.iar() == 3 | 2 << 10  # the lowest source first
    g.eoi(3)
    assert g.iar() == 3 | 3 << 10
    g.eoi(3)
    assert g.iar() == 1023
    g.d.write(GICD_SPENDSGIR + 3, 1, 0x03)
    g.d.write(GICD_CPENDSGIR + 3, 1, 0x01)
    assert g.d.read(GICD_CPENDSGIR, 4) == 0x02 << 24
    g.d.write(GICD_CPENDSGIR + 3, 1, 0x02)
    assert g.d.read(GICD_ISPENDR, 4) == 0 and not g.irq.level
    g.d.write(GICD_ISPENDR, 4, 0xFFFF)  # SGIs cannot be made pending through ISPENDR
    assert g.d.read(GICD_ISPENDR, 4) == 0


def test_eoimode_1_splits_priority_drop_and_deactivation() -> None:
    g = Gic()
    g.c.write(GICC_CTLR, 4, 0x201)
    g.spi(34, 0x80, edge=True)
    g.gic.line(34)(True)
    assert g.iar() == 34
    g.eoi(34)
    assert g.c.read(GICC_RPR, 4) == 0xFF and g.bit(GICD_ISACTIVER, 34)
    g.c.write(GICC_DIR, 4, 34)
    assert not g.bit(GICD_ISACTIVER, 34)


def test_dir_is_ignored_in_eoimode_0() -> None:
    g = Gic()
    g.spi(34, 0x80)
    g.gic.line(34)(True)
    g.iar()
    g.c.write(GICC_DIR, 4, 34)
    assert g.bit(GICD_ISACTIVER, 34)


def test_active_registers_and_active_interrupts_are_not_signalled() -> None:
    g = Gic()
    g.spi(44, 0x80)
    g.d.write(GICD_ISACTIVER + 4, 4, 1 << 12)
    g.gic.line(44)(True)
    assert g.bit(GICD_ISACTIVER, 44) and g.d.read(GICD_ICACTIVER + 4, 4) == 1 << 12
    assert not g.irq.level
    g.d.write(GICD_ICACTIVER + 4, 4, 1 << 12)
    assert g.irq.level


def test_group_1_needs_ackctl_and_group_0_can_be_fiq() -> None:
    g = Gic()
    g.d.write(GICD_CTLR, 4, 3)
    g.c.write(GICC_CTLR, 4, 3)
    g.spi(33, 0x80)
    g.d.write(GICD_IGROUPR + 4, 4, 1 << 1)
    g.gic.line(33)(True)
    assert g.irq.level and g.c.read(GICC_HPPIR, 4) == 1022 and g.iar() == 1022
    g.c.write(GICC_CTLR, 4, 3 | 0x4)  # AckCtl
    assert g.iar() == 33 and g.c.read(GICC_NSAPR + 8, 4) == 1 and g.c.read(GICC_APR + 8, 4) == 0
    g.eoi(33)
    g.d.write(GICD_IGROUPR + 4, 4, 0)  # group 0 again
    g.c.write(GICC_CTLR, 4, 3 | 0x8)  # FIQEn
    assert g.fiq.level and g.gic.fiq_pending() and not g.irq.level and not g.gic.irq_pending()


def test_priority_and_config_bytes_and_wide_accesses() -> None:
    g = Gic()
    g.d.write(GICD_IPRIORITYR + 32, 4, 0x44332211)
    assert [g.d.read(GICD_IPRIORITYR + 32 + i, 1) for i in range(4)] == [0x11, 0x22, 0x33, 0x44]
    assert g.d.read(GICD_IPRIORITYR + 33, 2) == 0x3322
    g.d.write(GICD_IPRIORITYR + 287, 1, 0xEE)
    assert g.d.read(GICD_IPRIORITYR + 287, 1) == 0xEE and g.d.read(GICD_IPRIORITYR + 288, 4) == 0
    assert g.d.read(GICD_ISENABLER, 8) == 0xFFFF  # ISENABLER0 | ISENABLER1 << 32
    g.c.write(GICC_PMR, 8, 0x3 << 32 | 0xF0)  # PMR and BPR
    assert g.c.read(GICC_PMR, 4) == 0xF0 and g.c.read(GICC_BPR, 4) == 3
    g.c.write(GICC_ABPR, 4, 0)
    assert g.c.read(GICC_ABPR, 4) == 1  # at least GIC_MIN_ABPR


def test_aliased_registers_are_raz_wi_as_qemu() -> None:
    g = Gic()
    g.spi(33, 0x80)
    g.gic.line(33)(True)
    assert g.c.read(GICC_AIAR, 4) == 0 and g.irq.level  # nothing acknowledged


def test_apr_writes_move_the_running_priority() -> None:
    g = Gic()
    g.c.write(GICC_APR, 4, 1 << 0x10)
    assert g.c.read(GICC_RPR, 4) == 0x20
    g.spi(33, 0x20)
    g.gic.line(33)(True)
    assert not g.irq.level
    g.c.write(GICC_APR, 4, 0)
    assert g.irq.level


def test_peek_never_acknowledges() -> None:
    g = Gic()
    g.spi(33, 0x80)
    g.gic.line(33)(True)
    assert g.c.peek(GICC_IAR, 4) is None and g.c.peek(GICC_BPR, 8) is None
    assert g.c.peek(GICC_HPPIR, 4) == 33 and g.c.peek(GICC_RPR, 4) == 0xFF
    assert all(g.d.peek(off, 4) == g.d.read(off, 4) for off in range(0, 0x1000, 4))
    assert g.irq.level and g.iar() == 33


def test_line_accepts_ppis_and_spis_only() -> None:
    g = Gic()
    g.spi(27, 0x80)  # the virtual timer's PPI
    g.gic.line(27)(True)
    assert g.iar() == 27
    for bad in (0, 15, 288):
        with pytest.raises(ValueError):
            g.gic.line(bad)


def test_on_irq_follows_every_update() -> None:
    g = Gic()
    g.spi(33, 0x80)
    g.irq.levels.clear()
    g.gic.line(33)(True)
    g.iar()
    g.eoi(33)
    assert g.irq.levels == [True, False, True]


def busy_gic() -> Gic:
    g = Gic()
    g.d.write(GICD_CTLR, 4, 3)
    g.c.write(GICC_CTLR, 4, 0x207)
    g.c.write(GICC_BPR, 4, 2)
    for intid, priority in ((27, 0x60), (33, 0x80), (40, 0x40), (100, 0x20)):
        g.spi(intid, priority, edge=intid == 40)
    g.d.write(GICD_IGROUPR + 12, 4, 1 << 4)  # 100 in group 1
    g.gic.line(33)(True)
    g.gic.line(40)(True)
    g.d.write(GICD_IPRIORITYR + 1, 1, 0x90)
    g.d.write(GICD_SPENDSGIR + 1, 1, 0x81)
    assert g.iar() == 40
    g.gic.line(100)(True)
    return g


def test_save_load_round_trip_gives_the_same_behaviour() -> None:
    source = busy_gic()
    state = source.d.save()
    assert decode_fields(GicV2State, encode_fields(state)) == state
    assert source.c.save() == GicCpuInterfaceState()
    target = Gic(enable=False)
    target.irq.levels.clear()
    target.d.load(state)
    target.c.load(source.c.save())
    assert target.d.save() == state and not target.irq.levels  # loading drives nothing
    assert target.gic.irq_pending() == source.gic.irq_pending()
    for frame in ("d", "c"):
        for off in range(0, 0x1000, 4):
            if (frame, off) != ("c", GICC_IAR):
                assert getattr(target, frame).read(off, 4) == getattr(source, frame).read(off, 4), (frame, off)
    script = [GICC_IAR, ("eoi", 100), GICC_IAR, ("eoi", 40), ("dir", 40), GICC_IAR, ("eoi", 1), GICC_IAR]
    for gic in (source, target):
        seen = []
        for step in script:
            if step == GICC_IAR:
                seen.append(gic.iar())
            elif step[0] == "eoi":
                gic.eoi(step[1])
            else:
                gic.c.write(GICC_DIR, 4, step[1])
        gic.seen = seen  # type: ignore[attr-defined]
    assert target.seen == source.seen  # type: ignore[attr-defined]
    assert target.d.save() == source.d.save()


def test_every_public_attribute_is_a_state_field() -> None:
    g = Gic()
    for device, state_type in ((g.d, GicV2State), (g.c, GicCpuInterfaceState)):
        assert {k for k in vars(device) if not k.startswith("_")} == {f.name for f in fields(state_type)}
        assert all(callable(v) for k, v in vars(device).items() if k.startswith("_"))
        assert type(device.save()) is state_type


@pytest.mark.parametrize(
    "change",
    [
        {"priority": (0,) * 287},  # one short
        {"priority": (0,) * 287 + (256,)},
        {"enabled": 0},  # SGIs disabled
        {"edge": 0},  # SGIs level-triggered
        {"level": 1 << 3},  # an SGI with an input line
        {"abpr": 0},
        {"cpu_ctlr": 0x400},  # EOImodeNS does not exist without the security extensions
        {"pending": 1 << 288},
        {"apr": (0, 0, 0)},
        {"sgi_sources": [0] * 16},  # a list, not a tuple
    ],
)
def test_load_refuses_malformed_states(change: dict[str, object]) -> None:
    g = busy_gic()
    good = g.d.save()
    with pytest.raises(FieldError):
        g.d.load(replace(good, **change))  # type: ignore[arg-type]
    assert g.d.save() == good
    with pytest.raises(FieldError):
        g.c.load(good)  # type: ignore[arg-type]
