"""The Cortex-M machine: Unicorn's Cortex-M3 and QEMU 7.2's ``mps2-an385`` board devices.

The architecture-neutral half is :class:`machine.core.MachineCore`'s. This module adds what Armv7-M and the board
know: exception entry and return (the 8-word frame on MSP or PSP, EXC_RETURN, IPSR, CONTROL.SPSEL; Armv7-M ARM
B1.5.6-B1.5.8), which Unicorn leaves to the board, with the NVIC, SysTick and SCB of
:mod:`machine.devices.armv7m_scs`; faults escalating to HardFault; the CMSDK UART and timers; QEMU's semihosting
exit (``bkpt 0xab``, as ``-semihosting-config enable=on``); ``wfi``.
"""

from __future__ import annotations

import dataclasses
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from unicorn import UcError
from unicorn import arm_const as ac

from .arch import armv7m as m7
from .arch.armv7m import Action, Armv7mArch, classify_at
from .arch.armv7m_cpu import MProfileRegisters
from .arch.armv7m_regs import Armv7mRegisters
from .boards import mps2 as board
from .core import MachineCore
from .devices.armv7m_nvic import Exc, LockupError
from .devices.armv7m_scs import Armv7mScs
from .devices.base import Device
from .devices.cmsdk_timer import CmsdkTimer
from .devices.cmsdk_uart import CmsdkUart
from .engine import Cause, Engine, EngineStop, StopKind
from .fields import Bool, Int, Optional, Tuple, spec
from .icount import make_counter, read_code, thumb_insn
from .inputs import InputSource
from .loader import Image, ImageError
from .machine import DEFAULT_CONFIG, MachineConfig
from .mmio import map_device
from .results import RunKind, RunResult
from .virtio_slots import VirtioSlots

log = logging.getLogger(__name__)

EXC_RETURN_HANDLER, EXC_RETURN_THREAD_MSP, EXC_RETURN_THREAD_PSP = 0xFFFF_FFF1, 0xFFFF_FFF9, 0xFFFF_FFFD
XPSR_T, XPSR_ALIGNED = 1 << 24, 1 << 9
XPSR_IT_BITS = 0x0600_FC00  # EPSR's IT/ICI fields: cleared on exception entry
CONTROL_NPRIV, CONTROL_SPSEL = 1, 2
CCR_STKALIGN = 1 << 9
# CFSR bits (Armv7-M ARM B3.2.15).
IBUSERR, PRECISERR, BFARVALID = 1 << 8, 1 << 9, 1 << 15
UNDEFINSTR, INVSTATE, INVPC, UNALIGNED = 1 << 16, 1 << 17, 1 << 18, 1 << 24
SYS_EXIT, SYS_EXIT_EXTENDED, ADP_STOPPED_APPLICATION_EXIT = 0x18, 0x20, 0x20026
SEMIHOSTING_BKPT = 0xBEAB  # bkpt 0xab


@dataclass(frozen=True, slots=True)
class Mps2BoardState:
    """The board's bookkeeping outside Unicorn and the devices."""

    VERSION: ClassVar[int] = 1
    halted: bool = spec(Bool())  # in wfi
    exit_code: int | None = spec(Optional(Int(16)))  # semihosting SYS_EXIT
    reset_requested: bool = spec(Bool())  # AIRCR.SYSRESETREQ
    last_watch_stop: tuple[int, int] | None = spec(Optional(Tuple(2, Int(64))))  # (icount, pc) reported
    bias_ns: int = spec(Int(64))  # the virtual clock's idle warps
    tx_digest: int = spec(Int(128))


class Mps2Machine(MachineCore):
    """One ``mps2-an385`` machine running one image."""

    board_state_type = Mps2BoardState
    board_name = "mps2-an385"

    def __init__(
        self,
        image: Image,
        inputs: InputSource,
        uart_tx: Callable[[int], None],
        config: MachineConfig = DEFAULT_CONFIG,
    ) -> None:
        arch = self._begin(image, inputs, config, Armv7mArch, "mps2-an385", "armv7m", board.CODE_BASE)
        if config.drives or config.network or config.audio:
            raise ImageError("the mps2-an385 board has no virtio devices (--drive, --net, --audio)")
        if config.kernel is not None:
            raise ImageError("the mps2-an385 board boots one image: no --kernel")
        self.config = dataclasses.replace(config, ram_size=board.RAM_SIZE)  # the SSRAMs: fixed sizes
        self.counter = make_counter(self.uc, arch.isa, m7.TRAPPED, config.prefer_native)
        self.engine = Engine(self.uc, self.counter, arch.pc_reg, m7.INTR_CAUSES, arch.until_addr,
                             self._is_trapped_at, thumb=True)  # fmt: skip
        self.regions = board.memory_map()
        self._special = MProfileRegisters(self.uc)
        self._attach()
        self._map_ram(board.RAM_SIZE, board.RAM_WINDOWS)
        self.scs = Armv7mScs(self._cpu_ticks, self._on_reset, ipsr=self._ipsr)
        self.uart = CmsdkUart("uart0", uart_tx, self.scs.irq_line(board.UART0_TX_IRQ),
                              self.scs.irq_line(board.UART0_RX_IRQ),
                              self.scs.irq_line(board.UART_OVERFLOW_IRQ))  # fmt: skip
        self.timers = (CmsdkTimer("timer0", self._cpu_ticks, self.scs.irq_line(board.TIMER0_IRQ)),
                       CmsdkTimer("timer1", self._cpu_ticks, self.scs.irq_line(board.TIMER1_IRQ)))  # fmt: skip
        self.devices: dict[str, Device] = {"scs": self.scs, "uart0": self.uart, "timer0": self.timers[0],
                                           "timer1": self.timers[1]}  # fmt: skip
        self.slots = VirtioSlots(board.VIRTIO_LAYOUT, self.scs.irq_line, self.ram, (), False, True, self._transmit)
        for region in self.regions:
            if region.kind == "mmio":
                map_device(self.uc, self.engine, region.base, region.size, self.devices[region.name])
        board.place_image(self.ram, image)
        self.registers = Armv7mRegisters(self.uc)
        self._reset_cpu()
        self._finish()

    # -- helpers -------------------------------------------------------------
    def _cpu_ticks(self) -> int:
        """The 25 MHz CPU clock at the instruction making the current access (SysTick, the APB timers)."""
        return self.clock.ns(self.engine.access_icount) // board.NS_PER_CPU_TICK

    def _ipsr(self) -> int:
        return self._reg(ac.UC_ARM_REG_XPSR) & 0x1FF

    def _reg(self, uc_reg: int) -> int:
        return int(self.uc.reg_read(uc_reg)) & 0xFFFF_FFFF

    def _word(self, addr: int) -> int:
        return int.from_bytes(self.uc.mem_read(addr, 4), "little")

    def _insn(self, addr: int) -> int | None:
        code = read_code(self.uc, addr, 4)
        return thumb_insn(code, 0) if len(code) >= 2 else None

    def _is_trapped_at(self, addr: int) -> bool:
        return classify_at(read_code(self.uc, addr, 18) or read_code(self.uc, addr, 2)) is not None

    def _masks(self) -> dict[str, object]:
        primask, basepri, faultmask = self._special.masks()
        return {"primask": bool(primask & 1), "basepri": basepri, "faultmask": bool(faultmask & 1)}

    def _reset_cpu(self) -> None:
        """Armv7-M reset: SP_main and the reset vector from the vector table at VTOR (0), Thread mode, Thumb."""
        try:
            sp, entry = self._word(0), self._word(4)
        except UcError:
            sp, entry = 0, 0
        self._special.set_banks(sp & ~3, 0)
        self.engine.pc = entry & ~1

    def _on_reset(self) -> None:
        self.reset_requested = True

    # -- state -------------------------------------------------------------
    def capture_board(self) -> Mps2BoardState:
        return Mps2BoardState(self.halted, self.exit_code, self.reset_requested, self._last_watch_stop,
                              self.clock.bias_ns, self.tx_digest)  # fmt: skip

    def restore_board(self, b: Mps2BoardState) -> None:
        self.halted, self.exit_code, self.reset_requested = b.halted, b.exit_code, b.reset_requested
        self._last_watch_stop = b.last_watch_stop
        self.clock.bias_ns = b.bias_ns
        self.tx_digest = b.tx_digest

    def cpu_digest_values(self) -> list[int]:
        from .arch.armv7m_cpu import read_uc

        return list(read_uc(self.uc))

    def _fetch_is_translated(self) -> bool:
        return False  # no MMU (the MPU only checks)

    # -- interrupts, timers, idling --------------------------------------------------
    def _tick_devices(self) -> None:
        """SysTick and the APB timers pend their interrupts when due (before the instruction at this tick)."""
        now = self.clock.ns(self.icount) // board.NS_PER_CPU_TICK
        self.scs.update(now)
        for timer in self.timers:
            timer.update(now)

    def _take_interrupt(self) -> bool:
        self._tick_devices()
        exc = self.scs.pending_to_take(**self._masks())  # type: ignore[arg-type]
        if exc is None:
            return False
        self.halted = False
        resume = self.pc
        if not self._enter_exception(exc, resume):  # the stack is not RAM: the exception stays pending
            log.warning("cannot stack exception %d at icount %d: SP is not in RAM", exc, self.icount)
            return False
        self._trap_icount = self.icount
        self._entered_trap(cause=int(exc), interrupt=True, resume=resume)
        return True

    def _has_wake_interrupt(self) -> bool:
        self._tick_devices()
        return self.scs.pending_to_take(primask=False, basepri=0, faultmask=False) is not None

    def _next_tick(self) -> int | None:
        due = [t for t in (self.scs.next_deadline_ticks(), *(x.next_deadline_ticks() for x in self.timers))
               if t is not None]  # fmt: skip
        return min(due) if due else None

    def _timer_due_ns(self) -> int | None:
        ticks = self._next_tick()
        return None if ticks is None else ticks * board.NS_PER_CPU_TICK

    # -- exception entry and return ----------------------------------------------------
    def _enter_exception(self, exc: int, return_addr: int) -> bool:
        """Armv7-M ExceptionEntry: stack the frame, switch to Handler mode on MSP, jump to the vector.
        False when the frame or the vector cannot be reached (the run ends with a fault)."""
        uc = self.uc
        xpsr, control = self._reg(ac.UC_ARM_REG_XPSR), self._reg(ac.UC_ARM_REG_CONTROL)
        in_handler = xpsr & 0x1FF != 0
        on_psp = not in_handler and control & CONTROL_SPSEL
        msp, psp = self._special.banks()
        sp = psp if on_psp else msp
        align = 4 if sp & 4 and self.scs.ccr & CCR_STKALIGN else 0
        frame_at = (sp - 32 - align) & 0xFFFF_FFFF
        regs = [self._reg(ac.UC_ARM_REG_R0 + i) for i in range(4)]
        stacked_psr = (xpsr & ~XPSR_ALIGNED) | (XPSR_ALIGNED if align else 0)
        frame = struct.pack("<8I", *regs, self._reg(ac.UC_ARM_REG_R12), self._reg(ac.UC_ARM_REG_LR),
                            return_addr & ~1, stacked_psr)  # fmt: skip
        try:
            uc.mem_write(frame_at, frame)
            vector = self._word(self.scs.vtor + 4 * exc)
        except UcError:
            return False
        self._special.set_banks(msp if on_psp else frame_at, frame_at if on_psp else psp)
        if not in_handler and control & CONTROL_SPSEL:
            self._special.set_control(control & ~CONTROL_SPSEL)  # Handler mode runs on MSP
        uc.reg_write(ac.UC_ARM_REG_XPSR, (xpsr & ~(0x1FF | XPSR_IT_BITS)) | XPSR_T | exc)
        uc.reg_write(ac.UC_ARM_REG_LR, EXC_RETURN_HANDLER if in_handler else
                     EXC_RETURN_THREAD_PSP if on_psp else EXC_RETURN_THREAD_MSP)  # fmt: skip
        self.scs.acknowledge(exc)
        self.engine.pc = vector & ~1
        # The frame was written here, below Unicorn's memory hooks: a write watchpoint on it must still fire.
        self._board_accessed(True, frame_at, 32, f"the exception entry to {_exception_name(exc)} stacking its "
                             f"frame at icount {self.icount}")  # fmt: skip
        return True

    def _return_from_exception(self, exc_return: int) -> bool:
        """Armv7-M ExceptionReturn for a branch to EXC_RETURN: unstack the frame, back to the mode it names."""
        uc = self.uc
        ipsr = self._ipsr()
        to_thread, on_psp = exc_return & 8 != 0, exc_return & 4 != 0
        if ipsr == 0 or exc_return not in (EXC_RETURN_HANDLER, EXC_RETURN_THREAD_MSP, EXC_RETURN_THREAD_PSP):
            return False
        if not self.scs.complete(ipsr):
            return False
        msp, psp = self._special.banks()
        sp = psp if on_psp else msp
        try:
            r0, r1, r2, r3, r12, lr, pc, psr = struct.unpack("<8I", uc.mem_read(sp, 32))
        except UcError:
            return False
        after = (sp + 32 + (4 if psr & XPSR_ALIGNED else 0)) & 0xFFFF_FFFF
        self._special.set_banks(msp if on_psp else after, after if on_psp else psp)
        if to_thread and psr & 0x1FF:
            return False  # INVPC: a frame of Handler mode returned to Thread mode
        if to_thread and on_psp:
            self._special.set_control(self._reg(ac.UC_ARM_REG_CONTROL) | CONTROL_SPSEL)
        self._board_accessed(False, sp, 32, f"the exception return from {_exception_name(ipsr)} unstacking its "
                             f"frame at icount {self.icount}")  # fmt: skip
        uc.reg_write(ac.UC_ARM_REG_XPSR, (psr & ~XPSR_ALIGNED) | XPSR_T)
        for i, value in enumerate((r0, r1, r2, r3)):
            uc.reg_write(ac.UC_ARM_REG_R0 + i, value)
        uc.reg_write(ac.UC_ARM_REG_R12, r12)
        uc.reg_write(ac.UC_ARM_REG_LR, lr)
        self.engine.pc = pc & ~1
        return True

    # -- instructions the board handles, exceptions ----------------------------------
    def _state_exception(self) -> RunResult | None:
        """A state with EPSR.T clear (a branch to an even address retired into it: the INVSTATE UsageFault is
        taken before the next instruction) raises it now. Unicorn reports that fault only at the branch; a
        state restored there (a seek, a snapshot) must raise it too, or execution would go on in Thumb."""
        if self._reg(ac.UC_ARM_REG_XPSR) & XPSR_T:
            return None
        return self._exception(EngineStop(StopKind.EXCEPTION, self.icount, self.pc, Cause.INVALID_STATE))

    def _handle(self, stop: EngineStop, limit: int) -> RunResult | None:
        """An exception return completes the branch that retired (even at the run's limit: a step over ``bx lr``
        must land in the interrupted code, not at EXC_RETURN)."""
        if stop.kind == StopKind.EXCEPTION and stop.cause == Cause.EXCEPTION_RETURN:
            return self._exception(stop)
        return super()._handle(stop, limit)

    def _trapped_instruction(self, stop: EngineStop, limit: int) -> RunResult | None:
        action = classify_at(read_code(self.uc, stop.pc, 18) or read_code(self.uc, stop.pc, 2))
        if action == Action.STEP_THEN_CHECK:
            return self._after_step(stop, self.engine.step_over_trapped(), limit)
        if action in (Action.WFI, Action.WFE):
            self.halted = action == Action.WFI
            self.engine.retire_emulated(stop.pc + 2)
            return None
        return self._exception(EngineStop(StopKind.EXCEPTION, stop.icount, stop.pc, Cause.ILLEGAL_INSTRUCTION))

    def _exception(self, stop: EngineStop) -> RunResult | None:
        """Exception return, semihosting, or a synchronous exception escalated as the NVIC says."""
        cause = stop.cause
        fault = RunResult(RunKind.FAULT, stop.icount, stop.pc, cause=cause, fault_addr=stop.addr)
        if cause == Cause.EXCEPTION_RETURN:
            if self._return_from_exception(stop.pc | 1):  # (the branch to EXC_RETURN retired and was counted)
                return None
            return fault
        if cause == Cause.BREAKPOINT and not self._reg(ac.UC_ARM_REG_XPSR) & XPSR_T:
            cause = Cause.INVALID_STATE  # Unicorn fails with "invalid instruction" in the Arm state
        if cause == Cause.BREAKPOINT and self._insn(stop.pc) == SEMIHOSTING_BKPT and self._semihosting():
            self.engine.retire_emulated(stop.pc + 2)
            return None
        fault_kind = {
            Cause.ECALL: (Exc.SVCALL, 0, None, 2),
            Cause.LOAD_FAULT: (Exc.BUSFAULT, PRECISERR, stop.addr, 0),
            Cause.STORE_FAULT: (Exc.BUSFAULT, PRECISERR, stop.addr, 0),
            Cause.FETCH_FAULT: (Exc.BUSFAULT, IBUSERR, None, 0),
            Cause.ILLEGAL_INSTRUCTION: (Exc.USAGEFAULT, UNDEFINSTR, None, 0),
            Cause.INVALID_STATE: (Exc.USAGEFAULT, INVSTATE, None, 0),
            Cause.MISALIGNED_LOAD: (Exc.USAGEFAULT, UNALIGNED, None, 0),
            Cause.BREAKPOINT: (Exc.DEBUGMONITOR, 0, None, 0),
        }.get(cause)  # type: ignore[arg-type]
        if fault_kind is None:
            return fault
        exc, bits, addr, back = fault_kind
        refaults = self._note_refault(stop)
        try:
            taken = self.scs.take_fault(exc, bits, addr, **self._masks())  # type: ignore[arg-type]
        except LockupError:
            return fault
        if refaults >= 2:
            return fault
        self._trap_icount = self.icount
        if not self._enter_exception(taken, stop.pc + back) or self.pc & ~1 == 0:
            return fault
        self._entered_trap(refaults, cause=int(taken), interrupt=False, resume=stop.pc + back)
        return None

    def _semihosting(self) -> bool:
        """QEMU's Arm semihosting for privileged code: SYS_EXIT and SYS_EXIT_EXTENDED end the run with QEMU's
        status (0 for ADP_Stopped_ApplicationExit, else 1; the extended call's code modulo 256). Other calls
        answer -1 (not implemented here). False when unprivileged (QEMU: a HardFault)."""
        if self._ipsr() == 0 and self._reg(ac.UC_ARM_REG_CONTROL) & CONTROL_NPRIV:
            return False
        op, arg = self._reg(ac.UC_ARM_REG_R0), self._reg(ac.UC_ARM_REG_R1)
        if op == SYS_EXIT:
            self.exit_code = 0 if arg == ADP_STOPPED_APPLICATION_EXIT else 1
        elif op == SYS_EXIT_EXTENDED:
            try:
                reason, code = struct.unpack("<2I", self.uc.mem_read(arg, 8))
            except UcError:
                reason, code = 0, 1
            self.exit_code = code & 0xFF if reason == ADP_STOPPED_APPLICATION_EXIT else 1
        else:
            self.uc.reg_write(ac.UC_ARM_REG_R0, 0xFFFF_FFFF)
        return True


_EXCEPTION_NAMES = {Exc.NMI: "NMI", Exc.HARDFAULT: "HardFault", Exc.MEMMANAGE: "MemManage", Exc.BUSFAULT: "BusFault",
                    Exc.USAGEFAULT: "UsageFault", Exc.SVCALL: "SVCall", Exc.DEBUGMONITOR: "DebugMonitor",
                    Exc.PENDSV: "PendSV", Exc.SYSTICK: "SysTick"}  # fmt: skip


def _exception_name(exc: int) -> str:
    """``SVCall (exception 11)``, ``IRQ 3 (exception 19)``: for the note of a watchpoint the board fired."""
    name = f"IRQ {exc - Exc.IRQ0}" if exc >= Exc.IRQ0 else _EXCEPTION_NAMES.get(exc, "exception")
    return f"{name} (exception {exc})"
