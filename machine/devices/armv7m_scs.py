"""The ARMv7-M System Control Space at 0xE000E000 on ``mps2-an385``: NVIC, SysTick and SCB as one device.

QEMU 7.2 models it as ``armv7m_nvic`` (hw/intc/armv7m_nvic.c: NVIC, SCB, MPU registers, STIR) with
``armv7m_systick`` (hw/timer/armv7m_systick.c) mapped over 0xE000E010..0xE000E0EF; the CPU is a
Cortex-M3 (CPUID 0x410FC231, 8 priority bits, an 8-region MPU, no FPU, no Security extension).
The exception model is :class:`~machine.devices.armv7m_nvic.NvicModel`'s.

SysTick counts the CPU clock, here ``ticks()`` (the machine's instruction-derived count), or with
CSR.CLKSOURCE clear the 1 MHz reference clock, one count every ``refclk_div`` CPU ticks (the AN385's
refclk is SYSCLK/25). Its counter is "``syst_value`` at ``syst_at``" and computed when read
(:class:`~machine.devices.cmsdk_timer.Countdown`); the machine asks :meth:`Armv7mScs.next_deadline_ticks`
and calls :meth:`Armv7mScs.update` there, which pends SysTick (15) when CSR.TICKINT is set.

Accesses are those of privileged code: unprivileged ones are a BusFault in QEMU except STIR with
CCR.USERSETMPEND (:meth:`Armv7mScs.user_access_ok`). Registers other than ISER..IPR, SHPR, CFSR and the
ID block take only word accesses (others read 0 and are ignored, as QEMU's guest-error path; for SysTick
QEMU raises a BusFault). The MPU registers are stored, not enforced here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import ClassVar

from ..fields import Bool, FieldError, Int, Tuple, spec
from .armv7m_nvic import (
    ALWAYS_ENABLED,
    CFSR_BITS,
    ENABLE_BITS,
    EXC_BITS,
    HFSR_BITS,
    IRQ_BITS,
    NUM_VECTORS,
    PRIO_BITS,
    Exc,
    NvicModel,
)
from .base import IrqLine, checked
from .cmsdk_timer import Countdown

ICTR, SYST_CSR, SYST_RVR, SYST_CVR, SYST_CALIB = 0x004, 0x010, 0x014, 0x018, 0x01C
ISER, ICER, ISPR, ICPR, IABR, IPR, IPR_END = 0x100, 0x180, 0x200, 0x280, 0x300, 0x400, 0x5EF
CPUID, ICSR, VTOR, AIRCR, SCR, CCR, SHPR1, SHCSR = 0xD00, 0xD04, 0xD08, 0xD0C, 0xD10, 0xD14, 0xD18, 0xD24
CFSR, HFSR, DFSR, MMFAR, BFAR, AFSR = 0xD28, 0xD2C, 0xD30, 0xD34, 0xD38, 0xD3C
MPU_TYPE, MPU_CTRL, MPU_RNR, MPU_RBAR, MPU_RASR = 0xD90, 0xD94, 0xD98, 0xD9C, 0xDA0
STIR, NVIC_PID0 = 0xF00, 0xFE0
SYST_END = 0x0EF  # armv7m_systick's region: 0xE000E010..0xE000E0EF
CPUID_CORTEX_M3 = 0x410FC231  # QEMU's cortex-m3 MIDR (r0p1)
ID_REGISTERS = {0xD40: 0x30, 0xD44: 0x200, 0xD48: 0x0010_0000, 0xD50: 0x30, 0xD60: 0x0114_1110, 0xD64: 0x0211_1000,
                0xD68: 0x2111_2231, 0xD6C: 0x0111_1110, 0xD70: 0x0131_0102}  # fmt: skip  # ID_PFR0 .. ID_ISAR4
NVIC_ID = (0x00, 0xB0, 0x1B, 0x00, 0x0D, 0xE0, 0x05, 0xB1)  # PID0..3, CID0..3 (PID4..7 read 0 in QEMU)
AIRCR_VECTKEY, AIRCR_VECTKEYSTAT, AIRCR_SYSRESETREQ = 0x05FA, 0xFA05_0000, 1 << 2
ICSR_NMIPENDSET, ICSR_PENDSVSET, ICSR_PENDSVCLR, ICSR_PENDSTSET = 1 << 31, 1 << 28, 1 << 27, 1 << 26
ICSR_PENDSTCLR, ICSR_ISRPENDING, ICSR_RETTOBASE = 1 << 25, 1 << 22, 1 << 11
CCR_STKALIGN, CCR_USERSETMPEND, CCR_BITS = 1 << 9, 1 << 1, 0x31B
SCR_BITS = 0xFFFF_FFF3  # QEMU stores all but SLEEPDEEP (bit 2) and SLEEPDEEPS (bit 3)
SYST_ENABLE, SYST_TICKINT, SYST_CLKSOURCE, SYST_COUNTFLAG = 1 << 0, 1 << 1, 1 << 2, 1 << 16
SYST_CALIB_1MHZ, SYST_CALIB_NOREF = 9999, 1 << 31  # 10 ms of the 1 MHz refclk, minus one; no refclk
REFCLK_DIV = 25  # SYSCLK 25 MHz / refclk 1 MHz
MPU_REGIONS, MPU_TYPE_VALUE = 8, 8 << 8
MPU_RASR_BITS = 0x173F_FF3F  # QEMU keeps DRACR & 0x173f (top half) and DRSR & 0xff3f
# SHCSR bit -> (exception, which bitmap)
SHCSR_BITS = {0: (Exc.MEMMANAGE, "active"), 1: (Exc.BUSFAULT, "active"), 3: (Exc.USAGEFAULT, "active"),
              7: (Exc.SVCALL, "active"), 8: (Exc.DEBUGMONITOR, "active"), 10: (Exc.PENDSV, "active"),
              11: (Exc.SYSTICK, "active"), 12: (Exc.USAGEFAULT, "pending"), 13: (Exc.MEMMANAGE, "pending"),
              14: (Exc.BUSFAULT, "pending"), 15: (Exc.SVCALL, "pending"), 16: (Exc.MEMMANAGE, "enabled"),
              17: (Exc.BUSFAULT, "enabled"), 18: (Exc.USAGEFAULT, "enabled")}  # fmt: skip
U32, U64 = Int(32), Int(64)
EXC_MAP = Int(64, mask=EXC_BITS)


@dataclass(frozen=True, slots=True)
class ScsState:
    """NVIC (bitmaps by exception number, raw priorities), SCB registers, MPU registers and SysTick: CSR,
    RVR, the counter (``syst_value`` at CPU tick ``syst_at``, ``syst_running`` as QEMU's ptimer), and the
    ticks from which COUNTFLAG (``syst_flag_from``) and the SysTick exception (``syst_pended_through``) still
    have fires to account for (ticks of a fire or of a register access: never of a machine stop)."""

    VERSION: ClassVar[int] = 1
    pending: int = spec(EXC_MAP)
    active: int = spec(EXC_MAP)
    enabled: int = spec(Int(64, mask=ENABLE_BITS))
    level: int = spec(Int(64, mask=IRQ_BITS))
    priority: tuple[int, ...] = spec(Tuple(NUM_VECTORS, Int(8)))
    prigroup: int = spec(Int(8, maximum=7))
    vtor: int = spec(Int(32, mask=0xFFFF_FF80))
    scr: int = spec(Int(32, mask=SCR_BITS))
    ccr: int = spec(Int(32, mask=CCR_BITS))
    cfsr: int = spec(Int(32, mask=CFSR_BITS))
    hfsr: int = spec(Int(32, mask=HFSR_BITS))
    dfsr: int = spec(Int(32, mask=0x1F))
    mmfar: int = spec(U32)
    bfar: int = spec(U32)
    mpu_ctrl: int = spec(Int(32, mask=0x7))
    mpu_rnr: int = spec(Int(8, maximum=MPU_REGIONS - 1))
    mpu_rbar: tuple[int, ...] = spec(Tuple(MPU_REGIONS, Int(32, mask=0xFFFF_FFE0)))
    mpu_rasr: tuple[int, ...] = spec(Tuple(MPU_REGIONS, Int(32, mask=MPU_RASR_BITS)))
    syst_csr: int = spec(Int(32, mask=SYST_COUNTFLAG | 0x7))
    syst_rvr: int = spec(Int(32, mask=0xFF_FFFF))
    syst_value: int = spec(Int(32, mask=0xFF_FFFF))
    syst_at: int = spec(U64)
    syst_running: bool = spec(Bool())
    syst_flag_from: int = spec(U64)
    syst_pended_through: int = spec(U64)

    def check_invariants(self) -> None:
        if self.enabled & ALWAYS_ENABLED != ALWAYS_ENABLED:
            raise FieldError("ScsState.enabled: NMI, HardFault, SVCall, PendSV and SysTick are always enabled")
        if any(p and not PRIO_BITS >> exc & 1 for exc, p in enumerate(self.priority)):
            raise FieldError("ScsState.priority: a priority for an exception without a priority register")
        if self.syst_running and not self.syst_csr & SYST_ENABLE:
            raise FieldError("ScsState.syst_running: counting while CSR.ENABLE is clear")
        if min(self.syst_flag_from, self.syst_pended_through) < self.syst_at:
            raise FieldError("ScsState.syst_flag_from/syst_pended_through: before the counter's start")


class Armv7mScs(NvicModel):
    """The device. ``ticks()``: the CPU clock at the current icount; ``reset()``: AIRCR.SYSRESETREQ;
    ``refclk_div``: CPU ticks per SysTick reference count (None: no refclk, CLKSOURCE reads 1);
    ``ipsr()``: the CPU's IPSR for ICSR.VECTACTIVE (None: :meth:`highest_active`); ``excp_out``: QEMU's
    NVIC output to the CPU (high while VECTPENDING would preempt the active exceptions, masks aside)."""

    name = "scs"
    size = 0x1000
    access_size = 4
    state_type = ScsState

    def __init__(self, ticks: Callable[[], int], reset: Callable[[], None], *, refclk_div: int | None = REFCLK_DIV,
                 ipsr: Callable[[], int] | None = None, excp_out: IrqLine | None = None) -> None:  # fmt: skip
        if refclk_div is not None and refclk_div < 1:
            raise ValueError(f"refclk_div {refclk_div}: at least 1 CPU tick per reference count")
        self._ticks = ticks
        self._reset = reset
        self._refclk_div: Callable[[], int | None] = lambda: refclk_div  # configuration, kept as wiring
        self._ipsr = ipsr if ipsr is not None else self.highest_active
        self._excp_out = excp_out if excp_out is not None else _unwired
        self.pending = 0
        self.active = 0
        self.enabled = ALWAYS_ENABLED
        self.level = 0
        self.priority = [0] * NUM_VECTORS
        self.prigroup = 0
        self.vtor = 0
        self.scr = 0
        self.ccr = CCR_STKALIGN  # QEMU resets STKALIGN to 1 (ARM's recommendation)
        self.cfsr = self.hfsr = self.dfsr = self.mmfar = self.bfar = 0
        self.mpu_ctrl = self.mpu_rnr = 0
        self.mpu_rbar = [0] * MPU_REGIONS
        self.mpu_rasr = [0] * MPU_REGIONS
        self.syst_csr = 0 if refclk_div is not None else SYST_CLKSOURCE
        self.syst_rvr = self.syst_value = self.syst_at = 0
        self.syst_running = False
        self.syst_flag_from = self.syst_pended_through = 0

    def user_access_ok(self, offset: int) -> bool:
        """Whether unprivileged code may access ``offset`` (``nvic_user_access_ok``); else a BusFault."""
        return offset == STIR and bool(self.ccr & CCR_USERSETMPEND)

    # -- SysTick (armv7m_systick.c) -----------------------------------------------
    def _syst_countdown(self) -> Countdown:
        div = 1 if self.syst_csr & SYST_CLKSOURCE else self._refclk_div() or 1
        return Countdown(self.syst_value, self.syst_at, self.syst_rvr, True, div)

    def _syst_count(self, now: int) -> int:
        return self._syst_countdown().count(now) if self.syst_running else self.syst_value

    def _syst_countflag(self, now: int) -> bool:
        if self.syst_csr & SYST_COUNTFLAG:
            return True
        fire = self._syst_countdown().fire_after(self.syst_flag_from) if self.syst_running else None
        return fire is not None and fire <= now

    def next_deadline_ticks(self) -> int | None:
        """CPU tick of the next SysTick fire that pends the exception (None: stopped or TICKINT clear)."""
        if not (self.syst_running and self.syst_csr & SYST_TICKINT):
            return None
        return self._syst_countdown().fire_after(self.syst_pended_through)

    def update(self, now_ticks: int) -> None:
        """Deliver SysTick fires up to ``now_ticks``: with TICKINT, pend SysTick (15) (``systick_timer_tick``).
        COUNTFLAG needs no call: it is computed when CSR is read."""
        if not (self.syst_running and self.syst_csr & SYST_TICKINT):
            return
        last = self._syst_countdown().last_fire_by(now_ticks)
        if last is not None and last > self.syst_pended_through:
            self.syst_pended_through = last
            self.set_pending(Exc.SYSTICK)

    def _syst_sync(self, now: int) -> tuple[int, bool]:
        """Before a register write: deliver fires, fold COUNTFLAG; the count and whether it runs."""
        self.update(now)
        if self._syst_countflag(now):
            self.syst_csr |= SYST_COUNTFLAG
        self.syst_flag_from = self.syst_pended_through = now
        countdown = self._syst_countdown()
        return self._syst_count(now), self.syst_running and countdown.is_live(now)

    def _syst_restart(self, now: int, value: int, running: bool, keep_phase: bool = False) -> None:
        """The counter holds ``value`` from ``now`` (or from the last count edge, keeping the refclk's phase)."""
        at = now
        if keep_phase and self.syst_running:
            div = self._syst_countdown().div
            at = self.syst_at + (now - self.syst_at) // div * div
        self.syst_value, self.syst_at, self.syst_running = value, at, running

    def _syst_read(self, offset: int) -> int:
        if offset == SYST_CSR:  # reading clears COUNTFLAG
            now = self._ticks()
            value = self.syst_csr | (SYST_COUNTFLAG if self._syst_countflag(now) else 0)
            self.syst_csr &= ~SYST_COUNTFLAG
            self.syst_flag_from = now
            return value
        if offset == SYST_RVR:
            return self.syst_rvr
        if offset == SYST_CVR:
            return self._syst_count(self._ticks())
        if offset == SYST_CALIB:
            return SYST_CALIB_1MHZ if self._refclk_div() is not None else SYST_CALIB_NOREF
        return 0

    def _syst_write(self, offset: int, value: int) -> None:
        if offset not in (SYST_CSR, SYST_RVR, SYST_CVR):
            return
        now = self._ticks()
        count, live = self._syst_sync(now)
        if offset == SYST_CSR:
            if self._refclk_div() is None:
                value |= SYST_CLKSOURCE  # always 1 without a reference clock
            old, self.syst_csr = self.syst_csr, (self.syst_csr & ~0x7) | (value & 0x7)
            if (old ^ value) & SYST_ENABLE:  # ptimer_run from 0 with RVR 0 stops at once ("delta zero")
                self._syst_restart(now, count, bool(value & SYST_ENABLE) and (count != 0 or self.syst_rvr != 0))
            elif (old ^ value) & SYST_CLKSOURCE:
                self._syst_restart(now, count, live)
        elif offset == SYST_RVR:  # the next reload uses it; the count goes on
            self._syst_restart(now, count, live, keep_phase=True)
            self.syst_rvr = value & 0xFF_FFFF
        else:  # CVR: any write clears the counter and COUNTFLAG; it reloads on the next count unless RVR is 0
            self._syst_restart(now, 0, live and self.syst_rvr != 0)
            self.syst_csr &= ~SYST_COUNTFLAG

    # -- registers ---------------------------------------------------------------
    def peek(self, offset: int, size: int) -> int | None:
        if offset in (SYST_CSR, SYST_CVR):
            return None  # CSR clears COUNTFLAG, CVR depends on the icount
        return self.read(offset, size)

    def read(self, offset: int, size: int) -> int:
        mask = (1 << (8 * size)) - 1
        if ISER <= offset < IPR:
            base = offset & ~0x7F  # reads of a set and of a clear register both give the state
            bitmap = {ISER: self.enabled, ICER: self.enabled, ISPR: self.pending, ICPR: self.pending, IABR: self.active}
            return _irq_word(bitmap.get(base, 0), offset - base, size)
        if IPR <= offset <= IPR_END:
            return _bytes_of(self.priority, offset - IPR + Exc.IRQ0, size, NUM_VECTORS)
        if SHPR1 <= offset < SHCSR:
            return _bytes_of(self.priority, offset - SHPR1 + Exc.MEMMANAGE, size, Exc.IRQ0)
        if CFSR <= offset < HFSR:
            return (self.cfsr >> (8 * (offset - CFSR))) & mask
        if NVIC_PID0 <= offset <= 0xFFF:
            return 0 if offset & 3 else NVIC_ID[(offset - NVIC_PID0) // 4]
        if size != 4:
            return 0
        if SYST_CSR <= offset <= SYST_END:
            return self._syst_read(offset)
        if offset in _PLAIN or offset in _W1C:
            return getattr(self, _PLAIN[offset][0] if offset in _PLAIN else _W1C[offset])  # type: ignore[no-any-return]
        reader = _WORD_READS.get(offset)
        return reader(self) if reader is not None else ID_REGISTERS.get(offset, 0)

    def write(self, offset: int, size: int, value: int) -> None:
        value &= (1 << (8 * size)) - 1
        if ISER <= offset < IABR:
            self._write_irq_bits(offset, size, value)
        elif IPR <= offset <= IPR_END or SHPR1 <= offset < SHCSR:
            first, end = (offset - IPR + Exc.IRQ0, NUM_VECTORS) if offset <= IPR_END else (offset - SHPR1 + 4, Exc.IRQ0)
            for i, exc in enumerate(range(first, min(first + size, end))):
                if PRIO_BITS >> exc & 1:  # 8 priority bits (QEMU's v7-M default); RAZ/WI without a register
                    self.priority[exc] = (value >> (8 * i)) & 0xFF
            self._update()
        elif CFSR <= offset < HFSR:
            self.cfsr &= ~(value << (8 * (offset - CFSR)))  # W1C
        elif size != 4:
            return
        elif SYST_CSR <= offset <= SYST_END:
            self._syst_write(offset, value)
        elif offset in _PLAIN:
            setattr(self, _PLAIN[offset][0], value & _PLAIN[offset][1])
        elif offset in _W1C:
            setattr(self, _W1C[offset], getattr(self, _W1C[offset]) & ~value)
        elif offset in _WORD_WRITES:
            _WORD_WRITES[offset](self, value)

    def _write_irq_bits(self, offset: int, size: int, value: int) -> None:
        """NVIC_ISER/ICER/ISPR/ICPR: one bit per interrupt; ICPR leaves pending an inactive one whose line is high."""
        base = offset & ~0x7F
        bits = value << (Exc.IRQ0 + 8 * (offset - base)) & IRQ_BITS
        if base == ISER:
            self.enabled |= bits
        elif base == ICER:
            self.enabled &= ~bits
        elif base == ISPR:
            self.pending |= bits
        else:
            self.pending &= ~(bits & ~(self.level & ~self.active))
        self._update()

    def _icsr(self) -> int:
        value = self.vectactive() | (self.vectpending() & 0x1FF) << 12
        value |= ICSR_ISRPENDING if self.isrpending() else 0
        value |= ICSR_RETTOBASE if self.rettobase() else 0
        flags = ((Exc.SYSTICK, ICSR_PENDSTSET), (Exc.PENDSV, ICSR_PENDSVSET), (Exc.NMI, ICSR_NMIPENDSET))
        return value | sum(bit for exc, bit in flags if self.pending >> exc & 1)

    def _write_icsr(self, value: int) -> None:
        if value & ICSR_NMIPENDSET:
            self.set_pending(Exc.NMI)
        for exc, set_bit, clear_bit in ((Exc.PENDSV, ICSR_PENDSVSET, ICSR_PENDSVCLR),
                                        (Exc.SYSTICK, ICSR_PENDSTSET, ICSR_PENDSTCLR)):  # fmt: skip
            if value & set_bit:
                self.set_pending(exc)
            elif value & clear_bit:
                self.clear_pending(exc)

    def _write_aircr(self, value: int) -> None:
        if value >> 16 != AIRCR_VECTKEY:
            return
        if value & AIRCR_SYSRESETREQ:
            self._reset()
        # VECTRESET and VECTCLRACTIVE are UNPREDICTABLE outside Debug state: QEMU logs and ignores them.
        self.prigroup = (value >> 8) & 0x7
        self._update()

    def _shcsr(self) -> int:
        return sum(1 << bit for bit, (exc, kind) in SHCSR_BITS.items() if getattr(self, kind) >> exc & 1)

    def _write_shcsr(self, value: int) -> None:
        for bit, (exc, kind) in SHCSR_BITS.items():
            flag = 1 << exc
            setattr(self, kind, getattr(self, kind) | flag if value >> bit & 1 else getattr(self, kind) & ~flag)
        self._update()

    def _write_mpu_rbar(self, value: int) -> None:
        if value & 0x10:  # VALID: the region number is in the value and goes to MPU_RNR
            if value & 0xF >= MPU_REGIONS:
                return
            self.mpu_rnr = value & 0xF
        self.mpu_rbar[self.mpu_rnr] = value & 0xFFFF_FFE0

    def _write_mpu_rnr(self, value: int) -> None:
        if value < MPU_REGIONS:
            self.mpu_rnr = value

    def _write_stir(self, value: int) -> None:
        exc = (value & 0x1FF) + Exc.IRQ0
        if exc < NUM_VECTORS:
            self.set_pending(exc)

    # -- state -------------------------------------------------------------------
    def save(self) -> ScsState:
        values = (getattr(self, name) for name in _STATE_NAMES)
        return ScsState(*(tuple(v) if type(v) is list else v for v in values))

    def load(self, state: ScsState, check: bool = True) -> None:
        state = checked(state, ScsState) if check else state
        for name in _STATE_NAMES:
            value = getattr(state, name)
            setattr(self, name, list(value) if type(value) is tuple else value)


_STATE_NAMES = tuple(f.name for f in fields(ScsState))
# Word registers that are one state field (read it, write it masked), and the write-one-to-clear ones.
_PLAIN = {VTOR: ("vtor", 0xFFFF_FF80), SCR: ("scr", SCR_BITS), CCR: ("ccr", CCR_BITS), MMFAR: ("mmfar", 0xFFFF_FFFF),
          BFAR: ("bfar", 0xFFFF_FFFF), MPU_CTRL: ("mpu_ctrl", 0x7)}  # fmt: skip
_W1C = {HFSR: "hfsr", DFSR: "dfsr"}
_WORD_READS: dict[int, Callable[[Armv7mScs], int]] = {
    ICTR: lambda s: 0,  # (32 interrupts / 32) - 1
    CPUID: lambda s: CPUID_CORTEX_M3,
    ICSR: Armv7mScs._icsr,
    AIRCR: lambda s: AIRCR_VECTKEYSTAT | s.prigroup << 8,
    SHCSR: Armv7mScs._shcsr,
    MPU_TYPE: lambda s: MPU_TYPE_VALUE,
    MPU_RNR: lambda s: s.mpu_rnr,
    **{MPU_RBAR + 8 * i: lambda s: s.mpu_rbar[s.mpu_rnr] | s.mpu_rnr for i in range(4)},  # RBAR and aliases A1..A3
    **{MPU_RASR + 8 * i: lambda s: s.mpu_rasr[s.mpu_rnr] for i in range(4)},
}
_WORD_WRITES: dict[int, Callable[[Armv7mScs, int], None]] = {
    ICSR: Armv7mScs._write_icsr,
    AIRCR: Armv7mScs._write_aircr,
    SHCSR: Armv7mScs._write_shcsr,
    MPU_RNR: Armv7mScs._write_mpu_rnr,
    **{MPU_RBAR + 8 * i: Armv7mScs._write_mpu_rbar for i in range(4)},
    **{MPU_RASR + 8 * i: lambda s, v: s.mpu_rasr.__setitem__(s.mpu_rnr, v & MPU_RASR_BITS) for i in range(4)},
    STIR: Armv7mScs._write_stir,
}


def _irq_word(bitmap: int, byte_offset: int, size: int) -> int:
    """The interrupt bits of an NVIC bit register: ``size`` bytes from ``byte_offset`` (8 interrupts a byte)."""
    return ((bitmap & IRQ_BITS) >> (Exc.IRQ0 + 8 * byte_offset)) & ((1 << (8 * size)) - 1)


def _bytes_of(priority: list[int], first: int, size: int, end: int) -> int:
    """``size`` priority bytes from exception ``first``; RAZ for numbers without a priority register or >= ``end``."""
    exceptions = enumerate(range(first, min(first + size, end)))
    return sum(priority[e] << (8 * i) for i, e in exceptions if PRIO_BITS >> e & 1)


def _unwired(level: bool) -> None:
    """The NVIC output when the board does not use it."""
