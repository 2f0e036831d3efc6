"""The ARMv7-M exception model of QEMU's NVIC (hw/intc/armv7m_nvic.c) without the Security extension.

:class:`NvicModel` holds the rules; :class:`~machine.devices.armv7m_scs.Armv7mScs` (the System Control
Space device) inherits them and holds the state as bitmaps indexed by exception number, as the
architecture numbers them: 1 Reset, 2 NMI, 3 HardFault, 4 MemManage, 5 BusFault, 6 UsageFault,
11 SVCall, 12 DebugMonitor, 14 PendSV, 15 SysTick, 16 + n external interrupt n.

Priorities follow nvic_recompute_state / nvic_exec_prio: the pending exception offered is the enabled
one with the lowest raw priority (ties: the lowest number); it preempts when its group priority (the
bits above AIRCR.PRIGROUP) is below the execution priority, which is the group priority of the
highest-priority active exception, lowered by BASEPRI, to 0 by PRIMASK and to -1 by FAULTMASK.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

from .base import IrqLine


class Exc(IntEnum):
    """ARMv7-M exception numbers (IPSR values)."""

    RESET = 1
    NMI = 2
    HARDFAULT = 3
    MEMMANAGE = 4
    BUSFAULT = 5
    USAGEFAULT = 6
    SVCALL = 11
    DEBUGMONITOR = 12
    PENDSV = 14
    SYSTICK = 15
    IRQ0 = 16


NUM_IRQ = 32  # mps2.c: num-irq 32 on the AN385
NUM_VECTORS = Exc.IRQ0 + NUM_IRQ
NOEXC_PRIO = 0x100  # execution priority with nothing active and no mask (above any priority value)
FIXED_PRIO = {Exc.RESET: -3, Exc.NMI: -2, Exc.HARDFAULT: -1}
IRQ_BITS = ((1 << NUM_IRQ) - 1) << Exc.IRQ0
SYSTEM_BITS = sum(1 << e for e in (Exc.NMI, Exc.HARDFAULT, Exc.MEMMANAGE, Exc.BUSFAULT, Exc.USAGEFAULT,
                                   Exc.SVCALL, Exc.DEBUGMONITOR, Exc.PENDSV, Exc.SYSTICK))  # fmt: skip
EXC_BITS = SYSTEM_BITS | IRQ_BITS  # exceptions that can be pending or active
PRIO_BITS = EXC_BITS & ~sum(1 << e for e in FIXED_PRIO)  # exceptions with a priority register
# Enabled at reset and for ever (QEMU's armv7m_nvic_reset): DebugMonitor needs DEMCR.MON_EN (not modelled),
# MemManage/BusFault/UsageFault are enabled by SHCSR, interrupts by NVIC_ISER.
ALWAYS_ENABLED = sum(1 << e for e in (Exc.NMI, Exc.HARDFAULT, Exc.SVCALL, Exc.PENDSV, Exc.SYSTICK))
ENABLE_BITS = ALWAYS_ENABLED | sum(1 << e for e in (Exc.MEMMANAGE, Exc.BUSFAULT, Exc.USAGEFAULT)) | IRQ_BITS
SYNC_FAULTS = (Exc.HARDFAULT, Exc.MEMMANAGE, Exc.BUSFAULT, Exc.USAGEFAULT, Exc.SVCALL, Exc.DEBUGMONITOR)
# CFSR (MMFSR | BFSR | UFSR) and HFSR bits
MMARVALID, BFARVALID = 1 << 7, 1 << 15
CFSR_BITS = 0x030F_BFBF
HFSR_VECTTBL, HFSR_FORCED, HFSR_DEBUGEVT = 1 << 1, 1 << 30, 1 << 31
HFSR_BITS = HFSR_VECTTBL | HFSR_FORCED | HFSR_DEBUGEVT


class LockupError(RuntimeError):
    """A fault that cannot be taken, not even as HardFault: the CPU would lock up (QEMU aborts: "Lockup")."""


class NvicModel:
    """Pending/active/enabled state, priorities and the exception-entry and -return rules (mixin).

    The class using it provides the state attributes ``pending``, ``active``, ``enabled``, ``level``
    (bitmaps by exception number), ``priority`` (a list of NUM_VECTORS raw priorities), ``prigroup``,
    ``cfsr``, ``hfsr``, ``mmfar``, ``bfar``, and the wiring ``_excp_out`` (QEMU's NVIC output to the CPU)
    and ``_ipsr`` (the CPU's current exception number, for ICSR.VECTACTIVE).
    """

    pending: int
    active: int
    enabled: int
    level: int
    priority: list[int]
    prigroup: int
    cfsr: int
    hfsr: int
    mmfar: int
    bfar: int
    _excp_out: IrqLine
    _ipsr: Callable[[], int]

    # -- priorities ------------------------------------------------------------
    def raw_priority(self, exc: int) -> int:
        """The exception's priority: -3, -2, -1 for Reset, NMI, HardFault, else its priority register."""
        return FIXED_PRIO.get(exc, self.priority[exc])  # type: ignore[call-overload]

    def group_priority(self, prio: int) -> int:
        """``prio`` without its subpriority bits (those at and below AIRCR.PRIGROUP); negatives unchanged."""
        return prio if prio < 0 else prio & (~0 << (self.prigroup + 1))

    def _active_priority(self) -> int:
        """QEMU's ``exception_prio``: the group priority of the highest-priority active exception."""
        prios = [self.raw_priority(e) for e in _bits(self.active)]
        return self.group_priority(min(prios)) if prios else NOEXC_PRIO

    def vectpending(self) -> int:
        """ICSR.VECTPENDING: the enabled pending exception of lowest raw priority (ties: lowest number), or 0."""
        best, best_prio = 0, NOEXC_PRIO
        for exc in _bits(self.pending & self.enabled):
            prio = self.raw_priority(exc)
            if prio < best_prio:
                best, best_prio = exc, prio
        return best

    def execution_priority(self, primask: bool, basepri: int, faultmask: bool) -> int:
        """``nvic_exec_prio``: -1 with FAULTMASK, else 0 with PRIMASK, else BASEPRI's group priority if it is
        non-zero, lowered to that of the highest-priority active exception; NOEXC_PRIO (0x100) when none applies."""
        running = NOEXC_PRIO
        if basepri & 0xFF:
            running = self.group_priority(basepri & 0xFF)
        if primask:
            running = 0
        if faultmask:
            running = -1
        return min(running, self._active_priority())

    def pending_to_take(self, primask: bool, basepri: int, faultmask: bool) -> int | None:
        """The exception to take now: VECTPENDING if its group priority is below the execution priority."""
        exc = self.vectpending()
        if exc and self.group_priority(self.raw_priority(exc)) < self.execution_priority(primask, basepri, faultmask):
            return exc
        return None

    # -- pending / active --------------------------------------------------------
    def set_pending(self, exc: int) -> None:
        """Pend an asynchronous exception (NMI, PendSV, SysTick, an interrupt); synchronous faults, SVCall and
        DebugMonitor go through :meth:`take_fault`, which escalates them."""
        _check_exc(exc)
        self.pending |= 1 << exc
        self._update()

    def clear_pending(self, exc: int) -> None:
        _check_exc(exc)
        self.pending &= ~(1 << exc)
        self._update()

    def irq_line(self, n: int) -> IrqLine:
        """External interrupt line ``n`` (exception 16 + n), level-sensitive as QEMU's ``set_irq_level``: a rising
        edge pends it, and a line still high when its handler returns pends it again (:meth:`complete`)."""
        if not 0 <= n < NUM_IRQ:
            raise ValueError(f"IRQ {n}: the AN385's NVIC has {NUM_IRQ}")
        bit = 1 << (Exc.IRQ0 + n)

        def set_level(level: bool) -> None:
            if level != bool(self.level & bit):
                self.level ^= bit
                if level:
                    self.pending |= bit
                    self._update()

        return set_level

    def acknowledge(self, exc: int) -> None:
        """Exception entry (``armv7m_nvic_acknowledge_irq``): ``exc`` goes from pending to active."""
        _check_exc(exc)
        if not self.pending & (1 << exc):
            raise ValueError(f"exception {exc} is not pending")
        self.pending &= ~(1 << exc)
        self.active |= 1 << exc
        self._update()

    def complete(self, exc: int) -> bool:
        """Exception return (``armv7m_nvic_complete_irq``): ``exc`` becomes inactive, and pending again if it is
        an interrupt whose line is still high. False if it was not active (an illegal return: the CPU raises
        UsageFault INVPC). Read :meth:`rettobase` first if the return needs it."""
        _check_exc(exc)
        bit = 1 << exc
        legal = bool(self.active & bit)
        self.active &= ~bit
        if self.level & bit:
            self.pending |= bit
        self._update()
        return legal

    def rettobase(self) -> bool:
        """ICSR.RETTOBASE (``nvic_rettobase``): at most one exception active."""
        return self.active & (self.active - 1) == 0

    def is_handler_mode(self) -> bool:
        """Whether an exception is active (the CPU is in Handler mode when it runs correctly nested code)."""
        return self.active != 0

    def vectactive(self) -> int:
        """ICSR.VECTACTIVE: the CPU's IPSR exception number."""
        return self._ipsr() & 0x1FF

    def highest_active(self) -> int:
        """The active exception of lowest raw priority (ties: lowest number), or 0: what IPSR holds while
        handlers nest correctly (VECTACTIVE's source when the board wires no IPSR)."""
        active = _bits(self.active)
        return min(active, key=self.raw_priority) if active else 0

    def isrpending(self) -> bool:
        """ICSR.ISRPENDING: an external interrupt is pending (enabled or not)."""
        return bool(self.pending & IRQ_BITS)

    # -- faults ------------------------------------------------------------------
    def take_fault(self, exc: int, cfsr_bits: int = 0, addr: int | None = None, *, primask: bool, basepri: int,
                   faultmask: bool) -> int:  # fmt: skip
        """Record and pend a synchronous exception; returns the exception pended (``exc`` or HardFault).

        ``cfsr_bits`` are ORed into CFSR; ``addr`` sets MMFAR (MemManage) or BFAR (BusFault) with MMARVALID or
        BFARVALID. As ``do_armv7m_nvic_set_pending``: a MemManage, BusFault, UsageFault, SVCall or DebugMonitor
        that is disabled, or whose group priority does not preempt the execution priority, escalates to
        HardFault with HFSR.FORCED; LockupError if HardFault cannot preempt either (FAULTMASK, in NMI/HardFault).
        """
        if exc not in SYNC_FAULTS:
            raise ValueError(f"exception {exc} is not a synchronous fault")
        if cfsr_bits & ~CFSR_BITS:
            raise ValueError(f"CFSR bits {cfsr_bits:#x} outside {CFSR_BITS:#x}")
        self.cfsr |= cfsr_bits
        if addr is not None and exc == Exc.MEMMANAGE:
            self.mmfar, self.cfsr = addr & 0xFFFF_FFFF, self.cfsr | MMARVALID
        elif addr is not None and exc == Exc.BUSFAULT:
            self.bfar, self.cfsr = addr & 0xFFFF_FFFF, self.cfsr | BFARVALID
        running = self.execution_priority(primask, basepri, faultmask)
        prio = self.group_priority(self.raw_priority(exc))
        if prio >= running or not self.enabled & (1 << exc):
            if running <= FIXED_PRIO[Exc.HARDFAULT]:
                raise LockupError(f"can't escalate {exc} to HardFault (current priority {running})")
            if exc != Exc.HARDFAULT:
                self.hfsr |= HFSR_FORCED
            exc = Exc.HARDFAULT
        self.set_pending(exc)
        return int(exc)

    def _update(self) -> None:
        """``nvic_irq_update``: the output to the CPU is high when VECTPENDING would preempt the active
        exceptions (the CPU's masks are not considered, as in QEMU)."""
        exc = self.vectpending()
        self._excp_out(bool(exc) and self.group_priority(self.raw_priority(exc)) < self._active_priority())


def _bits(bitmap: int) -> list[int]:
    """The exception numbers set in ``bitmap``, lowest first."""
    out = []
    while bitmap:
        low = bitmap & -bitmap
        out.append(low.bit_length() - 1)
        bitmap ^= low
    return out


def _check_exc(exc: int) -> None:
    if not (0 <= exc < NUM_VECTORS and EXC_BITS >> exc & 1):
        raise ValueError(f"no exception {exc} on this NVIC")
