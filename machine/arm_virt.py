"""The AArch64 ``virt`` machine: Unicorn's Cortex-A72 at EL1 and QEMU 7.2's Arm ``virt`` board devices.

The architecture-neutral half is :class:`machine.core.MachineCore`'s. This module adds what AArch64 and the
board know: exception entry (ESR/ELR/SPSR/FAR, the vector), IRQs from the GICv2, the generic timer counting
the virtual clock (its register accesses are trapped: Unicorn would read host time), PSCI through ``hvc``
(QEMU's conduit for this board: SYSTEM_OFF ends the run, SYSTEM_RESET resets), ``wfi``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from unicorn import arm64_const as ac

from .arch import aarch64 as a64
from .arch.aarch64 import Aarch64Arch, Action, classify
from .arch.aarch64_regs import Aarch64Registers
from .arch.aarch64_timer import NS_PER_TICK, GenericTimer, UndefinedAccess
from .arch.common import BatchReader
from .boards import arm_virt as board
from .core import MachineCore
from .devices.bank import DeviceBank
from .devices.base import Device
from .devices.fw_cfg import FwCfgMmio
from .devices.gicv2 import GicV2
from .devices.gpex import GpexEcam, PciMmioHighWindow, PciMmioWindow, PciPioWindow
from .devices.pflash_cfi01 import PflashCfi01
from .devices.pl011 import Pl011
from .devices.pl031 import Pl031
from .devices.pl061 import Pl061
from .engine import Cause, Engine, EngineStop, StopKind
from .fields import Bool, Int, Optional, Tuple, spec
from .flash_window import FlashWindow
from .icount import A64TimerMirror, add_a64_timer_hook, make_counter, open_native_library, read_code
from .inputs import InputSource
from .loader import Image, ImageError
from .machine import DEFAULT_CONFIG, MachineConfig
from .mmio import map_device
from .results import RunKind, RunResult
from .virtio_slots import VirtioSlots

log = logging.getLogger(__name__)

PSCI_VERSION, PSCI_CPU_SUSPEND, PSCI_CPU_OFF, PSCI_CPU_ON = 0x84000000, 0x84000001, 0x84000002, 0x84000003
PSCI_AFFINITY_INFO, PSCI_MIGRATE_INFO_TYPE = 0x84000004, 0x84000006
PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_FEATURES = 0x84000008, 0x84000009, 0x8400000A
PSCI_64 = 0x40000000  # the SMC64 calling convention's bit: 0xC4000003 is CPU_ON for 64-bit callers
PSCI_RET_NOT_SUPPORTED, PSCI_RET_INVALID_PARAMS = -1, -2
QEMU_PSCI_VERSION = 0x10001  # 1.1, as QEMU 7.2 reports
_PSCI_IDS = {PSCI_VERSION, PSCI_CPU_SUSPEND, PSCI_CPU_OFF, PSCI_CPU_ON, PSCI_AFFINITY_INFO, 0x84000005,
             PSCI_MIGRATE_INFO_TYPE, 0x84000007, PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_FEATURES}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ArmBoardState:
    """The board's bookkeeping outside Unicorn and the devices: machine, generic timer and clock fields."""

    VERSION: ClassVar[int] = 1
    halted: bool = spec(Bool())  # in wfi
    exit_code: int | None = spec(Optional(Int(16)))  # PSCI SYSTEM_OFF
    reset_requested: bool = spec(Bool())  # PSCI SYSTEM_RESET
    last_watch_stop: tuple[int, int] | None = spec(Optional(Tuple(2, Int(64))))  # (icount, pc) reported
    bias_ns: int = spec(Int(64))  # the virtual clock's idle warps
    tx_digest: int = spec(Int(128))
    phys_ctl: int = spec(Int(32, mask=3))  # the generic timer (machine.arch.aarch64_timer.TimerState)
    phys_cval: int = spec(Int(64))
    virt_ctl: int = spec(Int(32, mask=3))
    virt_cval: int = spec(Int(64))


class ArmVirtMachine(MachineCore):
    """One AArch64 ``virt`` machine running one image."""

    board_state_type = ArmBoardState

    def __init__(
        self,
        image: Image,
        inputs: InputSource,
        uart_tx: Callable[[int], None],
        config: MachineConfig = DEFAULT_CONFIG,
    ) -> None:
        arch = self._begin(image, inputs, config, Aarch64Arch, "Arm virt", "aarch64", board.RAM_BASE)
        native = config.prefer_native and open_native_library() is not None
        self.counter = make_counter(self.uc, arch.isa, a64.TRAPPED_NATIVE_TIMER if native else a64.TRAPPED, native)
        self._timer_mirror = A64TimerMirror()
        self._timer_mirror.pc_reg = ac.UC_ARM64_REG_PC
        self._timer_mirror.shift = config.icount_shift
        if add_a64_timer_hook(self.counter, self.uc, self._timer_mirror, ac.UC_ARM64_INS_MRS) is None and native:
            raise RuntimeError("the native icount helper did not take the generic timer's reads")
        self.engine = Engine(self.uc, self.counter, arch.pc_reg, a64.INTR_CAUSES, arch.until_addr, self._is_trapped_at)
        self._gprs = BatchReader(self.uc)
        self.engine.mmio_guard = self._save_gprs
        firmware = board.is_firmware(image)
        self.regions = board.memory_map(config.ram_size, firmware)
        self._attach()
        self._map_ram(config.ram_size)
        self.timer = GenericTimer()
        self.gic = GicV2(_ignore)
        self.uart = Pl011(uart_tx, self.gic.line(board.SPI_BASE + board.UART0_SPI))
        self.rtc = Pl031(lambda: self.inputs.host_clock_ns(self.engine.access_icount),
                         self.gic.line(board.SPI_BASE + board.RTC_SPI))  # fmt: skip
        self._timer_lines = {"virt": self.gic.line(board.PPI_VIRT_TIMER), "phys": self.gic.line(board.PPI_PHYS_TIMER)}
        self.gpio = Pl061(self.gic.line(board.SPI_BASE + board.GPIO_SPI))
        contents = board.flash_contents(image) if firmware else b""
        self.flash = (PflashCfi01("flash0", contents), PflashCfi01("flash1"))
        self.devices: dict[str, Device] = {
            "gicd": self.gic.distributor,
            "gicc": self.gic.cpu_interface,
            "uart0": self.uart,
            "rtc": self.rtc,
            "flash0": self.flash[0],
            "flash1": self.flash[1],
        }
        self.slots = VirtioSlots(board.VIRTIO_LAYOUT, self.gic.line, self.ram, config.drives, config.network,
                                 config.virtio_legacy, self._transmit, config.audio, self._audio_played,
                                 self._audio_capture)  # fmt: skip
        for slot, transport in enumerate(self.slots.transports):
            self.devices[f"virtio{slot}"] = transport
        self.pcie = GpexEcam()
        self.kernel: tuple[str, str] | None = None  # --kernel: (path, SHA-256), loaded by the firmware via fw_cfg
        extra: dict[int, bytes] = {}
        if config.initrd is not None or config.append is not None:
            raise ImageError("--initrd and --append are not on the Arm virt board yet (RISC-V virt has them)")
        if config.kernel is not None:
            if not firmware:
                raise ImageError("--kernel goes with --bios on the Arm virt board (a kernel alone is the GUEST, as "
                                 "QEMU's -kernel)")  # fmt: skip
            extra, sha256 = board.kernel_items(config.kernel)
            self.kernel = (config.kernel, sha256)
        self.fw_cfg = FwCfgMmio(self.slots.dma, ram_size=config.ram_size, extra_items=extra)
        self.devices.update({"pcie-ecam": self.pcie, "fw-cfg": self.fw_cfg})
        if not firmware:  # (booted from flash, QEMU's board has an ACPI GED instead)
            self.devices["gpio"] = self.gpio
        windows = {
            name: cls()
            for name, cls in zip(
                ("pcie-pio", "pcie-mmio", "pcie-mmio-high"),
                (PciPioWindow, PciMmioWindow, PciMmioHighWindow),
                strict=True,
            )
        }
        bus = {**self.devices, **windows, "virtio": DeviceBank("virtio", board.VIRTIO_STRIDE, self.slots.transports)}
        for region in self.regions:
            if region.kind == "mmio":
                map_device(self.uc, self.engine, region.base, region.size, bus[region.name])
        self._flash_windows = (FlashWindow(self.uc, self.engine, board.FLASH_BASES[0], self.flash[0], contents),
                               FlashWindow(self.uc, self.engine, board.FLASH_BASES[1], self.flash[1]))  # fmt: skip
        if firmware:  # QEMU's -bios: the CPU starts in flash, the device tree at RAM's base
            board.place_fdt(self.ram, config.ram_size, firmware=True)
            self.engine.pc = image.entry
        elif board.is_linux_image(image):  # QEMU's -kernel Image: Linux's boot protocol (x0 = the device tree)
            self.engine.pc = board.place_linux_image(self.ram, image, config.ram_size)
        else:
            self.engine.pc = board.place_image(self.ram, image, config.ram_size)
        self.registers = Aarch64Registers(self.uc)
        self._finish(bus)

    # -- helpers -------------------------------------------------------------
    def _save_gprs(self) -> Callable[[], None]:
        """The general registers and SP now (inside a deferred access: the instruction has not written them),
        and how to put them back (see Engine.mmio_guard)."""
        values = self._gprs.read(_GPR_IDS)

        def undo() -> None:
            for uc_reg, value in zip(_GPR_IDS, values, strict=True):
                self.uc.reg_write(uc_reg, value)

        return undo

    def _insn(self, addr: int) -> int | None:
        code = read_code(self.uc, addr, 4)
        return int.from_bytes(code, "little") if len(code) == 4 else None

    def _is_trapped_at(self, addr: int) -> bool:
        insn = self._insn(addr)
        return insn is not None and classify(insn) is not None

    def _reg(self, uc_reg: int) -> int:
        return int(self.uc.reg_read(uc_reg))

    def _count(self, icount: int) -> int:
        return self.timer.count(self.clock.ns(icount))

    def _update_timer_lines(self) -> None:
        """Drive the timers' PPIs to their level now (the GIC latches a level interrupt while it is high)."""
        count = self._count(self.icount)
        for name, line in self._timer_lines.items():
            line(self.timer.fires(name, count))

    # -- state -------------------------------------------------------------
    def capture_board(self) -> ArmBoardState:
        timer = self.timer.save()
        return ArmBoardState(self.halted, self.exit_code, self.reset_requested, self._last_watch_stop,
                             self.clock.bias_ns, self.tx_digest, timer.phys_ctl, timer.phys_cval, timer.virt_ctl,
                             timer.virt_cval)  # fmt: skip

    def restore_board(self, board_state: ArmBoardState) -> None:
        from .arch.aarch64_timer import TimerState

        b = board_state
        self.halted, self.exit_code, self.reset_requested = b.halted, b.exit_code, b.reset_requested
        self._last_watch_stop = b.last_watch_stop
        self.clock.bias_ns = b.bias_ns
        self.tx_digest = b.tx_digest
        self.timer.load(TimerState(b.phys_ctl, b.phys_cval, b.virt_ctl, b.virt_cval))
        for window in self._flash_windows:  # the flash devices' states are back
            window.after_restore()

    def cpu_digest_values(self) -> list[int]:
        from .arch.aarch64_cpu import read_uc

        return list(read_uc(self.uc))

    def _fetch_is_translated(self) -> bool:
        """Instruction addresses go through the MMU (SCTLR_EL1.M)."""
        return bool(self.uc.reg_read(ac.UC_ARM64_REG_CP_REG, (1, 0, 3, 0, 0)) & 1)

    def _prepare_run(self) -> None:
        """The native timer-read hook's copy of the clock's idle warps and the timers' registers."""
        mirror, timer = self._timer_mirror, self.timer
        mirror.bias_ns = self.clock.bias_ns
        mirror.ctl[0], mirror.cval[0] = timer.ctl["phys"], timer.cval["phys"]
        mirror.ctl[1], mirror.cval[1] = timer.ctl["virt"], timer.cval["virt"]

    # -- interrupts, timer, idling -------------------------------------------------
    def _take_interrupt(self) -> bool:
        self._update_timer_lines()
        if not self.gic.irq_pending() or self._reg(ac.UC_ARM64_REG_PSTATE) & a64.PSTATE_I:
            return False
        self.halted = False
        self._trap_icount = self.icount
        resume, intid = self.pc, self.gic.highest_pending()
        self._enter_exception(a64.VECTOR_IRQ, resume)
        self._entered_trap(cause=intid, interrupt=True, resume=resume)
        return True

    def _has_wake_interrupt(self) -> bool:
        self._update_timer_lines()
        return self.gic.irq_pending()  # wfi wakes even with PSTATE.I set

    def _timer_due_ns(self) -> int | None:
        ticks = self.timer.deadline_ticks(self._count(self.icount))
        return None if ticks is None else ticks * NS_PER_TICK

    # -- exceptions ------------------------------------------------------------
    def _enter_exception(self, vector: int, return_addr: int, esr: int | None = None, far: int | None = None) -> None:
        """Arm ARM D1.10: take an exception to EL1 (AArch64) with this preferred return address."""
        uc = self.uc
        pstate = self._reg(ac.UC_ARM64_REG_PSTATE)
        mode = pstate & 0xF
        if mode == a64.EL1H:
            base = a64.VECTOR_CURRENT_SPX
        else:
            base = a64.VECTOR_CURRENT_SP0 if mode == 0b0100 else a64.VECTOR_LOWER_A64
            # Into EL1h: the stack pointer in use becomes SP_EL1 (Unicorn's PSTATE write does not switch banks).
            uc.reg_write(ac.UC_ARM64_REG_SP_EL0, self._reg(ac.UC_ARM64_REG_SP))
            uc.reg_write(ac.UC_ARM64_REG_SP, self._reg(ac.UC_ARM64_REG_SP_EL1))
        uc.reg_write(ac.UC_ARM64_REG_CP_REG, (*a64.SPSR_EL1, pstate))
        uc.reg_write(ac.UC_ARM64_REG_ELR_EL1, return_addr)
        if esr is not None:
            uc.reg_write(ac.UC_ARM64_REG_ESR_EL1, esr)
        if far is not None:
            uc.reg_write(ac.UC_ARM64_REG_FAR_EL1, far)
        uc.reg_write(ac.UC_ARM64_REG_PSTATE, (pstate & ~0x3FF) | a64.PSTATE_DAIF | a64.EL1H)
        self.engine.pc = self._reg(ac.UC_ARM64_REG_VBAR_EL1) + base + vector

    def _trapped_instruction(self, stop: EngineStop, limit: int) -> RunResult | None:
        insn = self._insn(stop.pc)
        action = None if insn is None else classify(insn)
        if action in (Action.STEP_THEN_CHECK, Action.STEP_THEN_FORGET):
            after = self.engine.step_over_trapped()
            if action == Action.STEP_THEN_FORGET:
                self.engine.forget_code()
            return self._after_step(stop, after, limit)
        if action == Action.WFI:
            self.halted = True
            self.engine.retire_emulated(stop.pc + 4)
            return None
        if action == Action.WFE:
            self.engine.retire_emulated(stop.pc + 4)
            return None
        if action == Action.TIMER:
            assert insn is not None
            if self._timer_access(insn, stop.icount):
                self.engine.retire_emulated(stop.pc + 4)
                return None
        return self._exception(EngineStop(StopKind.EXCEPTION, stop.icount, stop.pc, Cause.ILLEGAL_INSTRUCTION))

    def _timer_access(self, insn: int, icount: int) -> bool:
        """Carry out a trapped MRS/MSR of a generic-timer register; False if it is UNDEFINED."""
        access = a64.decode_sysreg(insn)
        rt = _xreg(access.rt)
        value = 0 if access.is_read or rt is None else self._reg(rt)
        try:
            result = self.timer.access(access.crm, access.op2, access.is_read, value, self._count(icount))
        except UndefinedAccess:
            return False
        if access.is_read and rt is not None:
            self.uc.reg_write(rt, result)
        return True

    def _exception(self, stop: EngineStop) -> RunResult | None:
        """Deliver a synchronous exception to EL1, answer a PSCI call, or end the run when there is no handler."""
        assert stop.cause is not None
        if stop.cause in (Cause.STORE_FAULT, Cause.FETCH_FAULT):
            addr = stop.addr if stop.cause == Cause.STORE_FAULT else stop.pc
            window = next((w for w in self._flash_windows if w.contains(addr)), None)
            if window is not None and stop.cause == Cause.STORE_FAULT and window.device.is_array_mode:
                window.to_device()  # a flash command: the store runs again, as a device access
                return None
            if window is not None and stop.cause == Cause.FETCH_FAULT and window.to_array():
                return None  # code in flash after a command sequence: the fetch runs again from the array
        insn = self._insn(stop.pc) if stop.cause not in (Cause.FETCH_FAULT,) else None
        psci = stop.cause == Cause.ILLEGAL_INSTRUCTION and (a64.is_hvc(insn) or a64.is_smc(insn))
        if psci and self._psci_call():
            self.engine.retire_emulated(stop.pc + 4)
            return None
        if stop.cause in (Cause.LOAD_FAULT, Cause.STORE_FAULT):
            wnr = a64.WNR if stop.cause == Cause.STORE_FAULT else 0
            esr, far, back = (a64.EC_DATA_ABORT_SAME_EL << 26) | a64.ESR_IL | wnr | a64.FSC_SYNC_EXTERNAL, stop.addr, 0
        elif stop.cause == Cause.FETCH_FAULT:
            esr, far, back = (a64.EC_INSN_ABORT_SAME_EL << 26) | a64.ESR_IL | a64.FSC_SYNC_EXTERNAL, stop.pc, 0
        else:
            (esr, back), far = a64.exception_syndrome(insn), None
        if self._reg(ac.UC_ARM64_REG_PSTATE) & 0xF == 0 and esr >> 26 in (
            a64.EC_DATA_ABORT_SAME_EL,
            a64.EC_INSN_ABORT_SAME_EL,
        ):
            esr -= 1 << 26  # from EL0: the "lower EL" classes (0x24, 0x20)
        refaults = self._note_refault(stop)
        if self._reg(ac.UC_ARM64_REG_VBAR_EL1) == 0 or refaults >= 2:
            return RunResult(RunKind.FAULT, stop.icount, stop.pc, cause=stop.cause, fault_addr=stop.addr)
        self._trap_icount = self.icount
        self._enter_exception(a64.VECTOR_SYNC, stop.pc + back, esr, far)
        self._entered_trap(refaults, cause=esr >> 26, interrupt=False, resume=stop.pc + back)
        return None

    def _psci_call(self) -> bool:
        """QEMU's ``arm_handle_psci_call`` for one CPU; False when x0 is no PSCI function (then hvc/smc is
        UNDEFINED at EL1, as on QEMU without EL2/EL3)."""
        function = self._reg(ac.UC_ARM64_REG_X0) & 0xFFFF_FFFF
        base = function & ~PSCI_64
        if base not in _PSCI_IDS:
            return False
        result = 0
        if base == PSCI_VERSION:
            result = QEMU_PSCI_VERSION
        elif base == PSCI_SYSTEM_OFF:
            self.exit_code = 0
        elif base == PSCI_SYSTEM_RESET:
            self.reset_requested = True
        elif base == PSCI_MIGRATE_INFO_TYPE:
            result = 2  # no trusted OS to migrate
        elif base == PSCI_AFFINITY_INFO:
            result = 0 if self._reg(ac.UC_ARM64_REG_X1) & 0xFF_00FF_FFFF == 0 else PSCI_RET_INVALID_PARAMS
        elif base == PSCI_CPU_SUSPEND:
            self.halted = True  # as QEMU: a wfi
        elif base == PSCI_FEATURES:
            asked = self._reg(ac.UC_ARM64_REG_X1) & 0xFFFF_FFFF
            result = 0 if asked & ~PSCI_64 in _PSCI_IDS else PSCI_RET_NOT_SUPPORTED
        else:  # CPU_ON/CPU_OFF and the rest: one CPU only
            result = PSCI_RET_INVALID_PARAMS if base == PSCI_CPU_ON else PSCI_RET_NOT_SUPPORTED
        self.uc.reg_write(ac.UC_ARM64_REG_X0, result & ((1 << 64) - 1))
        return True


_GPR_IDS = (*(ac.UC_ARM64_REG_X0 + i for i in range(29)), ac.UC_ARM64_REG_X29, ac.UC_ARM64_REG_X30,
            ac.UC_ARM64_REG_SP)  # fmt: skip


def _xreg(n: int) -> int | None:
    """Unicorn's id of general register ``n`` (None for 31: xzr in MRS/MSR)."""
    if n < 29:
        return ac.UC_ARM64_REG_X0 + n
    return (ac.UC_ARM64_REG_X29, ac.UC_ARM64_REG_X30, None)[n - 29]


def _ignore(level: bool) -> None:
    """The GIC's IRQ output: polled (``irq_pending``) at every boundary instead."""
