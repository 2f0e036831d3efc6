"""machine/devices/armv7m_scs.py and armv7m_nvic.py: the Cortex-M3 System Control Space (NVIC, SysTick, SCB)
as QEMU 7.2's armv7m_nvic.c and armv7m_systick.c (reset values checked against qemu-system-arm -M mps2-an385)."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from machine.devices.armv7m_nvic import HFSR_FORCED, NOEXC_PRIO, Exc, LockupError
from machine.devices.armv7m_scs import (
    AIRCR,
    BFAR,
    CCR,
    CFSR,
    CPUID,
    HFSR,
    IABR,
    ICER,
    ICPR,
    ICSR,
    ICTR,
    IPR,
    ISER,
    ISPR,
    MMFAR,
    MPU_RASR,
    MPU_RBAR,
    MPU_RNR,
    MPU_TYPE,
    SCR,
    SHCSR,
    SHPR1,
    STIR,
    SYST_CALIB,
    SYST_CSR,
    SYST_CVR,
    SYST_RVR,
    VTOR,
    Armv7mScs,
    ScsState,
)
from machine.fields import FieldError, decode_fields, encode_fields

KEY = 0x05FA << 16
ENABLE, TICKINT, CLKSOURCE, COUNTFLAG = 1, 2, 4, 1 << 16
PENDSVSET, PENDSVCLR, PENDSTSET, PENDSTCLR, NMIPENDSET = 1 << 28, 1 << 27, 1 << 26, 1 << 25, 1 << 31
RETTOBASE, ISRPENDING = 1 << 11, 1 << 22
UNMASKED = {"primask": False, "basepri": 0, "faultmask": False}


class Scs:
    """An SCS on a clock the test sets, with its reset requests and NVIC output."""

    def __init__(self, **kwargs: object) -> None:
        self.now = 0
        self.resets = 0
        self.out: list[bool] = []
        self.dev = Armv7mScs(lambda: self.now, self._reset, excp_out=self.out.append, **kwargs)  # type: ignore[arg-type]

    def _reset(self) -> None:
        self.resets += 1

    def at(self, now: int) -> Armv7mScs:
        self.now = now
        return self.dev


def irqs(scs: Armv7mScs, priorities: dict[int, int], pend: bool = True) -> None:
    """Enable (and pend) external interrupts with these priorities."""
    for n, prio in priorities.items():
        scs.write(IPR + n, 1, prio)
        scs.write(ISER, 4, 1 << n)
        if pend:
            scs.write(ISPR, 4, 1 << n)


def take(scs: Armv7mScs, primask: bool = False, basepri: int = 0, faultmask: bool = False) -> int | None:
    return scs.pending_to_take(primask, basepri, faultmask)


# -- reset values (measured on QEMU 7.2) ------------------------------------------------------------------


def test_reset_values_as_qemu() -> None:
    scs = Scs().dev
    words = {CPUID: 0x410FC231, ICSR: RETTOBASE, VTOR: 0, AIRCR: 0xFA05_0000, SCR: 0, CCR: 0x200, SHCSR: 0,
             ICTR: 0, SYST_CSR: 0, SYST_RVR: 0, SYST_CALIB: 0x270F, MPU_TYPE: 0x800, HFSR: 0, CFSR: 0,
             0xD40: 0x30, 0xD60: 0x0114_1110, 0xD70: 0x0131_0102, 0xFD0: 0, 0xFE4: 0xB0, 0xFF0: 0x0D, 0xFFC: 0xB1,
             0xD88: 0, 0xF00: 0}  # fmt: skip
    assert {off: scs.read(off, 4) for off in words} == words


def test_no_refclk_forces_clksource_and_calib_noref() -> None:
    scs = Scs(refclk_div=None).dev
    assert scs.read(SYST_CALIB, 4) == 1 << 31
    scs.write(SYST_CSR, 4, 0)
    assert scs.read(SYST_CSR, 4) == CLKSOURCE


def test_refclk_div_must_be_positive() -> None:
    with pytest.raises(ValueError, match="refclk_div"):
        Scs(refclk_div=0)


def test_register_masks_as_qemu() -> None:
    """All-ones writes read back as on QEMU 7.2."""
    scs = Scs().dev
    for off in (IPR, SHPR1, SHPR1 + 4, SHPR1 + 8, CCR, SCR, VTOR, SYST_CSR, SYST_RVR):
        scs.write(off, 4, 0xFFFF_FFFF)
    got = [scs.read(off, 4) for off in (IPR, SHPR1, SHPR1 + 4, SHPR1 + 8, CCR, SCR, VTOR, SYST_RVR)]
    assert got == [0xFFFF_FFFF, 0x00FF_FFFF, 0xFF00_0000, 0xFFFF_00FF, 0x31B, 0xFFFF_FFF3, 0xFFFF_FF80, 0xFF_FFFF]
    assert scs.read(SYST_CSR, 4) & 0x7 == 0x7
    assert scs.read(IPR + 1, 4) == 0xFF_FFFF  # byte-granular: IRQs 1..4
    assert scs.read(IPR + 32, 4) == 0  # beyond the 32 interrupts


# -- priorities and masking --------------------------------------------------------------------------------


def test_vectpending_is_lowest_priority_value_ties_to_lowest_number() -> None:
    scs = Scs().dev
    irqs(scs, {0: 0x40, 1: 0x80, 2: 0x40})
    assert scs.read(ICSR, 4) == (16 << 12) | ISRPENDING | RETTOBASE  # as measured on QEMU
    assert take(scs) == 16
    scs.write(ICPR, 4, 1)
    assert take(scs) == 18
    scs.write(IPR + 1, 1, 0x00)
    assert take(scs) == 17


def test_disabled_interrupts_pend_but_are_not_offered() -> None:
    scs = Scs().dev
    scs.write(ISPR, 4, 0xFFFF_FFFF)
    assert scs.read(ISPR, 4) == 0xFFFF_FFFF and scs.read(ICSR, 4) == ISRPENDING | RETTOBASE
    assert take(scs) is None
    scs.write(ISER, 4, 1 << 5)
    assert scs.read(ICER, 4) == 1 << 5 and take(scs) == 21
    scs.write(ICER, 4, 1 << 5)
    assert take(scs) is None


def test_system_exceptions_outrank_interrupts_by_priority() -> None:
    scs = Scs().dev
    irqs(scs, {0: 0x20})
    scs.write(SHPR1 + 8, 4, 0x10 << 24)  # SysTick priority 0x10
    scs.write(ICSR, 4, PENDSTSET)
    assert take(scs) == Exc.SYSTICK
    scs.write(ICSR, 4, NMIPENDSET)
    assert take(scs) == Exc.NMI


def test_prigroup_splits_group_and_subpriority() -> None:
    scs = Scs().dev
    irqs(scs, {0: 0x42})
    scs.acknowledge(16)  # running at 0x42
    irqs(scs, {1: 0x40})
    assert take(scs) == 17  # PRIGROUP 0: groups 0x42 and 0x40 differ
    scs.write(AIRCR, 4, KEY | 2 << 8)  # PRIGROUP 2: bits [2:0] are subpriority, both are group 0x40
    assert scs.read(AIRCR, 4) == 0xFA05_0200
    assert scs.vectpending() == 17 and take(scs) is None
    assert scs.execution_priority(False, 0, False) == 0x40


def test_basepri_primask_faultmask() -> None:
    scs = Scs().dev
    irqs(scs, {0: 0x40})
    assert take(scs, basepri=0x40) is None  # preemption needs a strictly lower group priority
    assert take(scs, basepri=0x50) == 16
    assert take(scs, basepri=0) == 16  # BASEPRI 0 masks nothing
    assert take(scs, primask=True) is None
    assert scs.execution_priority(False, 0, False) == NOEXC_PRIO
    assert scs.execution_priority(True, 0x20, False) == 0
    assert scs.execution_priority(True, 0, True) == -1
    scs.write(AIRCR, 4, KEY | 7 << 8)  # PRIGROUP 7: no group bits, BASEPRI's group priority is 0
    assert take(scs, basepri=0x50) is None
    scs.set_pending(Exc.NMI)
    assert take(scs, primask=True, faultmask=True) == Exc.NMI


def test_hardfault_passes_primask_not_faultmask() -> None:
    scs = Scs().dev
    scs.set_pending(Exc.HARDFAULT)
    assert take(scs, primask=True) == Exc.HARDFAULT
    assert take(scs, faultmask=True) is None


# -- entry, return, level-sensitive lines -------------------------------------------------------------------


def test_pending_active_complete_and_icsr() -> None:
    scs = Scs().dev
    irqs(scs, {3: 0x80, 4: 0x20})
    scs.acknowledge(20)
    assert scs.read(IABR, 4) == 1 << 4 and scs.read(ISPR, 4) == 1 << 3
    assert scs.read(ICSR, 4) == 20 | (19 << 12) | ISRPENDING | RETTOBASE
    assert take(scs) is None and scs.is_handler_mode()
    scs.write(IPR + 3, 1, 0x10)
    assert take(scs) == 19
    scs.acknowledge(19)  # nested
    assert scs.read(ICSR, 4) == 19 and not scs.rettobase()
    assert scs.complete(19)
    assert scs.rettobase() and scs.complete(20)
    assert not scs.is_handler_mode() and scs.read(ICSR, 4) == RETTOBASE
    assert not scs.complete(20)  # returning from an inactive exception is illegal
    with pytest.raises(ValueError, match="not pending"):
        scs.acknowledge(20)


def test_vectactive_comes_from_the_cpu_ipsr_when_wired() -> None:
    ipsr = [0]
    scs = Scs(ipsr=lambda: ipsr[0]).dev
    irqs(scs, {0: 0})
    scs.acknowledge(16)
    assert scs.read(ICSR, 4) & 0x1FF == 0
    ipsr[0] = 16
    assert scs.read(ICSR, 4) & 0x1FF == 16


def test_level_line_repends_after_the_handler_while_high() -> None:
    scs = Scs().dev
    irqs(scs, {7: 0x10}, pend=False)
    line = scs.irq_line(7)
    line(True)
    assert take(scs) == 23
    scs.acknowledge(23)
    line(True)  # no edge: no new pend
    assert not scs.pending & (1 << 23)
    assert scs.complete(23)
    assert take(scs) == 23  # still high when the handler returned
    scs.write(ICPR, 4, 1 << 7)
    assert take(scs) == 23  # ICPR cannot clear it while the line is high and it is inactive
    scs.acknowledge(23)
    line(False)
    scs.complete(23)
    assert take(scs) is None
    with pytest.raises(ValueError):
        scs.irq_line(32)


def test_pulse_pends_once() -> None:
    scs = Scs().dev
    irqs(scs, {0: 0}, pend=False)
    line = scs.irq_line(0)
    line(True)
    line(False)
    scs.acknowledge(16)
    scs.complete(16)
    assert take(scs) is None


def test_excp_out_follows_the_offered_exception() -> None:
    scs = Scs()
    irqs(scs.dev, {0: 0x40})
    assert scs.out[-1]
    scs.dev.acknowledge(16)
    assert not scs.out[-1]
    scs.dev.complete(16)
    assert not scs.out[-1]


def test_icsr_pendsv_and_systick_set_and_clear() -> None:
    scs = Scs().dev
    scs.write(ICSR, 4, PENDSVSET)
    assert scs.read(ICSR, 4) & PENDSVSET and take(scs) == Exc.PENDSV
    scs.write(ICSR, 4, PENDSVCLR)
    assert not scs.read(ICSR, 4) & PENDSVSET and take(scs) is None
    scs.write(ICSR, 4, PENDSTSET | PENDSVSET | PENDSVCLR)  # SET wins over CLR
    assert scs.read(ICSR, 4) & (PENDSTSET | PENDSVSET) == PENDSTSET | PENDSVSET
    scs.write(ICSR, 4, PENDSTCLR | PENDSVCLR)
    assert scs.read(ICSR, 4) == RETTOBASE
    scs.write(ICSR, 4, NMIPENDSET)
    assert scs.read(ICSR, 4) == NMIPENDSET | (2 << 12) | RETTOBASE


def test_stir_pends_an_interrupt_and_user_access() -> None:
    scs = Scs().dev
    scs.write(STIR, 4, 9)
    scs.write(STIR, 4, 0x1FF)  # beyond the 32 interrupts: ignored
    assert scs.read(ISPR, 4) == 1 << 9
    assert not scs.user_access_ok(STIR) and not scs.user_access_ok(ICSR)
    scs.write(CCR, 4, 0x202)  # USERSETMPEND
    assert scs.user_access_ok(STIR)


def test_shcsr_enables_and_reports_system_handlers() -> None:
    scs = Scs().dev
    scs.write(SHCSR, 4, 0x7_0000)
    assert scs.read(SHCSR, 4) == 0x7_0000
    scs.write(SHCSR, 4, 1 << 14)  # BUSFAULTPENDED, as measured: pending, but disabled so not offered
    assert scs.read(SHCSR, 4) == 1 << 14 and scs.read(ICSR, 4) == RETTOBASE
    scs.write(SHCSR, 4, 1 << 11)  # SYSTICKACT
    assert scs.active == 1 << Exc.SYSTICK and scs.rettobase()


def test_aircr_needs_the_key_and_requests_reset() -> None:
    scs = Scs()
    scs.dev.write(AIRCR, 4, 0x0000_0504)
    assert scs.resets == 0 and scs.dev.prigroup == 0
    scs.dev.write(AIRCR, 4, KEY | 0x4)
    assert scs.resets == 1


# -- faults --------------------------------------------------------------------------------------------------


def test_disabled_fault_escalates_to_hardfault_with_forced() -> None:
    scs = Scs().dev
    assert scs.take_fault(Exc.MEMMANAGE, 1 << 1, 0x2000_0000, **UNMASKED) == Exc.HARDFAULT
    assert scs.read(HFSR, 4) == HFSR_FORCED
    assert scs.read(CFSR, 4) == (1 << 1) | (1 << 7) and scs.read(MMFAR, 4) == 0x2000_0000  # DACCVIOL, MMARVALID
    assert take(scs) == Exc.HARDFAULT
    scs.write(HFSR, 4, HFSR_FORCED)
    scs.write(CFSR, 1, 0xFF)  # byte write: MMFSR is W1C
    assert scs.read(HFSR, 4) == 0 and scs.read(CFSR, 4) == 0


def test_enabled_fault_is_taken_when_its_priority_preempts() -> None:
    scs = Scs().dev
    scs.write(SHCSR, 4, 1 << 17)  # BUSFAULTENA
    assert scs.take_fault(Exc.BUSFAULT, 1 << 9, 0x4000_0100, **UNMASKED) == Exc.BUSFAULT  # PRECISERR
    assert scs.read(BFAR, 4) == 0x4000_0100 and scs.read(CFSR, 4) == (1 << 9) | (1 << 15)
    assert scs.read(CFSR + 1, 1) == 0x82 and scs.read(HFSR, 4) == 0
    assert take(scs) == Exc.BUSFAULT


def test_enabled_fault_escalates_when_masked_or_not_above_the_running_handler() -> None:
    scs = Scs().dev
    scs.write(SHCSR, 4, 1 << 18)  # USGFAULTENA
    assert scs.take_fault(Exc.USAGEFAULT, 1 << 25, primask=True, basepri=0, faultmask=False) == Exc.HARDFAULT
    scs.hfsr = 0
    scs.pending = 0
    scs.write(SHPR1, 4, 0x40 << 16)  # UsageFault priority 0x40
    irqs(scs, {0: 0x40})
    scs.acknowledge(16)
    assert scs.take_fault(Exc.USAGEFAULT, 1 << 16, **UNMASKED) == Exc.HARDFAULT  # equal group: no preemption
    assert scs.hfsr == HFSR_FORCED
    scs.write(IPR, 1, 0x80)
    assert scs.take_fault(Exc.USAGEFAULT, 1 << 16, **UNMASKED) == Exc.USAGEFAULT


def test_svcall_escalates_with_primask_and_lockup_under_faultmask() -> None:
    scs = Scs().dev
    assert scs.take_fault(Exc.SVCALL, **UNMASKED) == Exc.SVCALL
    scs.pending = 0
    assert scs.take_fault(Exc.SVCALL, primask=True, basepri=0, faultmask=False) == Exc.HARDFAULT
    with pytest.raises(LockupError):
        scs.take_fault(Exc.MEMMANAGE, primask=False, basepri=0, faultmask=True)
    scs.write(SHCSR, 4, 1 << 3)  # UsageFault active at priority 0: a HardFault still preempts it
    assert scs.take_fault(Exc.MEMMANAGE, **UNMASKED) == Exc.HARDFAULT
    with pytest.raises(ValueError):
        scs.take_fault(Exc.PENDSV, **UNMASKED)
    with pytest.raises(ValueError):
        scs.take_fault(Exc.USAGEFAULT, 1 << 31, **UNMASKED)


def test_debugmonitor_is_disabled_so_bkpt_escalates() -> None:
    scs = Scs().dev
    assert scs.take_fault(Exc.DEBUGMONITOR, **UNMASKED) == Exc.HARDFAULT


# -- SysTick ---------------------------------------------------------------------------------------------------


def systick(scs: Scs, reload: int, csr: int, now: int = 0) -> None:
    scs.at(now).write(SYST_RVR, 4, reload)
    scs.dev.write(SYST_CVR, 4, 0)
    scs.dev.write(SYST_CSR, 4, csr)


def test_systick_counts_cpu_ticks_and_pends_at_wrap_with_tickint() -> None:
    scs = Scs()
    systick(scs, 99, ENABLE | TICKINT | CLKSOURCE, now=1000)
    assert scs.at(1000).read(SYST_CVR, 4) == 0 and scs.at(1001).read(SYST_CVR, 4) == 99
    assert scs.at(1050).read(SYST_CVR, 4) == 50
    assert scs.dev.next_deadline_ticks() == 1100
    scs.dev.update(1099)
    assert not scs.dev.pending & (1 << Exc.SYSTICK)
    scs.dev.update(1100)
    assert scs.dev.read(ICSR, 4) & PENDSTSET and take(scs.dev) == Exc.SYSTICK
    assert scs.dev.next_deadline_ticks() == 1200  # every RVR + 1 ticks
    scs.dev.acknowledge(Exc.SYSTICK)
    scs.dev.update(1150)
    assert not scs.dev.pending & (1 << Exc.SYSTICK)  # a fire is pended once


def test_systick_countflag_is_set_by_a_wrap_and_cleared_by_reading() -> None:
    scs = Scs()
    systick(scs, 9, ENABLE | CLKSOURCE)
    assert scs.dev.next_deadline_ticks() is None  # no TICKINT: nothing for the machine to do
    assert scs.at(5).read(SYST_CSR, 4) == ENABLE | CLKSOURCE
    assert scs.at(10).read(SYST_CSR, 4) == ENABLE | CLKSOURCE | COUNTFLAG
    assert scs.at(11).read(SYST_CSR, 4) == ENABLE | CLKSOURCE  # cleared by the read
    assert scs.at(25).read(SYST_CSR, 4) & COUNTFLAG
    assert scs.dev.peek(SYST_CSR, 4) is None and scs.dev.peek(SYST_CVR, 4) is None
    assert scs.dev.peek(SYST_RVR, 4) == 9 and scs.dev.peek(SYST_CALIB, 4) == 0x270F
    assert not scs.dev.pending


def test_systick_cvr_write_clears_count_and_countflag() -> None:
    scs = Scs()
    systick(scs, 9, ENABLE | CLKSOURCE)
    scs.at(13).write(SYST_CVR, 4, 1234)
    assert scs.dev.read(SYST_CVR, 4) == 0 and not scs.dev.read(SYST_CSR, 4) & COUNTFLAG
    assert scs.at(14).read(SYST_CVR, 4) == 9


def test_systick_refclk_counts_every_div_ticks() -> None:
    scs = Scs(refclk_div=25)
    systick(scs, 3, ENABLE | TICKINT, now=10)
    assert scs.at(34).read(SYST_CVR, 4) == 0 and scs.at(35).read(SYST_CVR, 4) == 3
    assert scs.dev.next_deadline_ticks() == 10 + 4 * 25
    scs.at(60).write(SYST_RVR, 4, 7)  # the next reload uses it; the refclk phase stays
    assert scs.dev.next_deadline_ticks() == 110 and scs.at(135).read(SYST_CVR, 4) == 7


def test_systick_stops_after_a_wrap_with_rvr_zero() -> None:
    scs = Scs()
    systick(scs, 5, ENABLE | TICKINT | CLKSOURCE)
    scs.at(2).write(SYST_RVR, 4, 0)  # the running count still reaches 0 (at 6), then the timer stops
    assert scs.dev.next_deadline_ticks() == 6
    scs.dev.update(6)
    assert scs.dev.pending & (1 << Exc.SYSTICK)
    assert scs.dev.next_deadline_ticks() is None and scs.at(100).read(SYST_CVR, 4) == 0
    assert scs.dev.read(SYST_CSR, 4) & ENABLE  # ENABLE stays set (QEMU)


def test_systick_disable_freezes_and_enable_from_zero_without_reload_does_nothing() -> None:
    scs = Scs()
    systick(scs, 50, ENABLE | CLKSOURCE)
    scs.at(11).write(SYST_CSR, 4, CLKSOURCE)
    assert scs.at(500).read(SYST_CVR, 4) == 40
    fresh = Scs()
    fresh.dev.write(SYST_CSR, 4, ENABLE | TICKINT | CLKSOURCE)
    assert fresh.dev.next_deadline_ticks() is None and not fresh.dev.syst_running


def test_systick_state_does_not_depend_on_update_calls() -> None:
    a, b = Scs(), Scs()
    for scs in (a, b):
        systick(scs, 9, ENABLE | TICKINT | CLKSOURCE)
    for now in (3, 7, 10, 12):
        a.dev.update(now)
    b.dev.update(10)
    b.dev.update(12)
    assert a.dev.save() == b.dev.save()


# -- MPU registers (stored as QEMU's, not enforced) -------------------------------------------------------------


def test_mpu_region_registers() -> None:
    scs = Scs().dev
    scs.write(MPU_RNR, 4, 3)
    scs.write(MPU_RBAR, 4, 0x2000_0000)
    scs.write(MPU_RASR, 4, 0xFFFF_FFFF)
    assert scs.read(MPU_RBAR, 4) == 0x2000_0003 and scs.read(MPU_RASR, 4) == 0x173F_FF3F
    scs.write(MPU_RBAR + 8, 4, 0x1000_0015)  # alias A1, VALID: region 5
    assert scs.read(MPU_RNR, 4) == 5 and scs.read(MPU_RBAR, 4) == 0x1000_0005
    scs.write(MPU_RNR, 4, 8)  # out of range: ignored
    assert scs.read(MPU_RNR, 4) == 5


# -- state ------------------------------------------------------------------------------------------------------


def busy_scs() -> Scs:
    scs = Scs()
    irqs(scs.dev, {0: 0x40, 3: 0x10, 31: 0xE0})
    scs.dev.irq_line(5)(True)
    scs.dev.acknowledge(19)
    scs.dev.write(AIRCR, 4, KEY | 3 << 8)
    scs.dev.write(VTOR, 4, 0x2000_0400)
    scs.dev.write(SHCSR, 4, 0x7_0000)
    scs.dev.take_fault(Exc.BUSFAULT, 1 << 9, 0x1234, **UNMASKED)
    scs.dev.write(MPU_RASR, 4, 0x0300_0021)
    systick(scs, 999, ENABLE | TICKINT | CLKSOURCE, now=77)
    return scs


def test_public_attributes_are_the_state_fields() -> None:
    scs = busy_scs().dev
    assert {k for k in vars(scs) if not k.startswith("_")} == {f.name for f in fields(ScsState)}
    assert all(callable(v) for k, v in vars(scs).items() if k.startswith("_"))


def test_save_load_round_trip_continues_identically() -> None:
    source = busy_scs()
    state = source.dev.save()
    assert decode_fields(ScsState, encode_fields(state)) == state
    target = Scs()
    target.dev.load(state)
    assert target.dev.save() == state and target.out == []  # loading drives nothing
    assert {k for k in vars(target.dev) if not k.startswith("_")} == {f.name for f in fields(ScsState)}
    for off in (ICSR, SHCSR, AIRCR, ISPR, IABR, IPR, CFSR, BFAR, VTOR, SYST_RVR, MPU_RASR):
        assert target.dev.read(off, 4) == source.dev.read(off, 4), hex(off)
    assert target.at(500).read(SYST_CVR, 4) == source.at(500).read(SYST_CVR, 4)
    assert target.dev.next_deadline_ticks() == source.dev.next_deadline_ticks() == 1077
    assert take(target.dev) == take(source.dev)


@pytest.mark.parametrize(
    "bad",
    [
        {"pending": 1 << 1},  # Reset never pends
        {"active": 1 << 48},
        {"enabled": 0},  # NMI, HardFault, SVCall, PendSV, SysTick are always enabled
        {"level": 1 << 3},  # levels exist for interrupts only
        {"priority": (1,) + (0,) * 47},  # exception 0 has no priority register
        {"priority": (0,) * 47},
        {"prigroup": 8},
        {"vtor": 0x40},
        {"ccr": 0x400},
        {"cfsr": 1 << 31},
        {"hfsr": 1},
        {"mpu_rnr": 8},
        {"mpu_rbar": (0x10,) + (0,) * 7},
        {"syst_rvr": 1 << 24},
        {"syst_running": True, "syst_csr": 0},  # counting while disabled
        {"syst_flag_from": 0},  # before the counter's start
        {"syst_running": 1},
    ],
)
def test_load_refuses_malformed_state(bad: dict[str, object]) -> None:
    scs = busy_scs().dev
    good = scs.save()
    with pytest.raises(FieldError):
        scs.load(replace(good, **bad))
    assert scs.save() == good
