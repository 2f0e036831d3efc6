"""The RISC-V ``virt`` machine: a hart on Unicorn and QEMU's ``virt`` board devices, exact icount.

The architecture-neutral parts (the run loop, RAM, virtio slots, breakpoints, watchpoints, state) are
:class:`machine.core.MachineCore`'s; this module adds what RISC-V and the board know: the CSRs Unicorn gets
wrong, trap entry, interrupts from the CLINT and the PLIC, ``wfi``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from unicorn import UC_PROT_EXEC, UC_PROT_READ
from unicorn import riscv_const as rc
from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH

from .arch import riscv_insn as ri
from .arch.registry import Arch
from .arch.riscv import INTR_CAUSES, MEI, MSI, MTI, PRIV_M, SEI, RiscvArch
from .arch.riscv_hart import Hart
from .arch.riscv_regs import RegisterFile
from .boards import virt
from .clock import MAX_BIAS_NS
from .core import MachineCore
from .devices.base import Device
from .devices.clint import MTIME, NS_PER_TICK, Clint
from .devices.plic import Plic
from .devices.rtc import GoldfishRtc
from .devices.test_finisher import TestFinisher
from .devices.uart import Uart16550
from .dma import DriveConfig
from .engine import Cause, Engine, EngineStop, StopKind
from .icount import NO_LIMIT, NativeCounter, make_counter
from .inputs import InputSource
from .loader import Image, ImageError, load_image, load_raw
from .mmio import map_device
from .results import RunKind, RunResult
from .riscv_timer_sites import TimerSites
from .state import BoardState
from .unicorn_patches import FAST_STORES, engine_patches
from .virtio_slots import VirtioSlots

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MachineConfig:
    """Board options, as on the command line."""

    arch: Arch | None = None  # None: from the ELF header
    ram_size: int = virt.DEFAULT_RAM_SIZE
    icount_shift: int = 3
    prefer_native: bool = True
    drives: tuple[DriveConfig, ...] = ()  # virtio-blk devices, the first in the highest slot (as QEMU)
    virtio_legacy: bool = True  # virtio-mmio Version 1, QEMU 7.2's default (False: Version 2)
    network: bool = False  # a virtio-net device, in the slot after the drives' (its frames: the input source)
    audio: bool = False  # a virtio-snd device, after the network's slot (its microphone: the input source)
    board: str | None = None  # --machine: None for the architecture's own board
    kernel: str | None = None  # --kernel: a kernel the firmware loads (Arm virt: through fw_cfg, as QEMU's -kernel)
    initrd: str | None = None  # --initrd: RISC-V virt, with --kernel: its initial RAM disk (QEMU's -initrd)
    append: str | None = None  # --append: RISC-V virt, with --kernel: its command line (QEMU's -append)


DEFAULT_CONFIG = MachineConfig()
CLINT_BASE = next(region.base for region in virt.memory_map(4096) if region.name == "clint")


class Machine(MachineCore):
    """One RISC-V ``virt`` machine running one image."""

    def __init__(
        self,
        image: Image,
        inputs: InputSource,
        uart_tx: Callable[[int], None],
        config: MachineConfig = MachineConfig(),
    ) -> None:
        arch = self._begin(image, inputs, config, RiscvArch, "RISC-V virt", "riscv32/riscv64", virt.RAM_BASE)
        self.kernel: tuple[str, str] | None = None  # --kernel: (path, SHA-256), the firmware's next stage
        self.initrd: tuple[str, str] | None = None  # --initrd: (path, SHA-256)
        if (config.initrd is not None or config.append is not None) and config.kernel is None:
            raise ImageError("--initrd and --append go with --kernel (they are the kernel's)")
        self.hart = Hart(self.uc, arch)
        self.counter = make_counter(self.uc, arch.isa, ri.TRAPPED, config.prefer_native)
        self.engine = Engine(self.uc, self.counter, arch.pc_reg, INTR_CAUSES, arch.until_addr, self._is_trapped_at)
        self.regions = virt.memory_map(config.ram_size)
        self._attach()
        self._plic_out = [False, False]
        self._msip = False
        self._map_ram(config.ram_size)
        self.timer_sites: TimerSites | None = None  # timer reads answered inside emu_start (native helper only)
        if isinstance(self.counter, NativeCounter):
            self.timer_sites = TimerSites(self.uc, self.counter, arch.xlen, config.icount_shift,
                                          CLINT_BASE + MTIME, (self._ram_ptr, virt.RAM_BASE, config.ram_size),
                                          self.engine.special_callback)  # fmt: skip
            self.engine.special_hook = self.timer_sites.add_special
            self.engine.breakpoint_listener = self.timer_sites.set_breakpoint
            if self.timer_sites.serve_counter_reads():
                self.counter.set_trapped(ri.TRAPPED_NATIVE_COUNTERS)
                self.engine.native_declines = self._is_emulated_csr_at
        self.plic = Plic(self._on_plic)
        self.uart = Uart16550(uart_tx, self.plic.line(virt.UART0_IRQ))
        # The clock at the reading instruction itself (mid-block the counter is ahead: it counts whole blocks).
        self.clint = Clint(lambda: self.clock.ticks(self.engine.access_icount), self._on_msip, self._on_mtime_read)
        self.rtc = GoldfishRtc(lambda: self.inputs.host_clock_ns(self.engine.access_icount))
        self.finisher = TestFinisher(self._on_exit, self._on_reset)
        self.devices: dict[str, Device] = {
            "test": self.finisher,
            "rtc": self.rtc,
            "clint": self.clint,
            "plic": self.plic,
            "uart0": self.uart,
        }
        self.slots = VirtioSlots(virt.VIRTIO_LAYOUT, self.plic.line, self.ram, config.drives, config.network,
                                 config.virtio_legacy, self._transmit, config.audio, self._audio_played,
                                 self._audio_capture)  # fmt: skip
        for slot, transport in enumerate(self.slots.transports):
            self.devices[f"virtio{slot}"] = transport
        for region in self.regions:
            if region.kind == "mmio":
                map_device(self.uc, self.engine, region.base, region.size, self.devices[region.name])
        self._load(image)
        self.registers = RegisterFile(arch, self.hart, self._board_csr, self._write_board_csr,
                                      self._debugger_writes_satp)  # fmt: skip
        self._finish()

    # -- construction ------------------------------------------------------
    def _load(self, image: Image) -> None:
        kernel = None
        if self.config.kernel is not None:
            # QEMU's -kernel: an ELF at its addresses, a raw file after the firmware (riscv_load_kernel).
            path = self.config.kernel
            start = virt.kernel_start_addr(self.arch.xlen, virt.firmware_end(image))
            kernel = load_image(path, None if _is_elf(path) else start)
            self.kernel = (str(path), kernel.sha256)
        initrd = None
        if kernel is not None and self.config.initrd is not None:
            # QEMU 7.2's riscv_load_initrd: half of RAM (at most 128 MiB) after the kernel's entry.
            initrd = load_raw(self.config.initrd, kernel.entry + min(self.config.ram_size // 2, 128 << 20), "initrd")
            self.initrd = (str(self.config.initrd), initrd.sha256)
        placed = virt.place_image(self.ram, image, self.arch, self.config.ram_size, kernel, initrd, self.config.append)
        self.fdt_addr = placed.fdt_addr
        self.uc.mem_map(virt.MROM.base, virt.MROM.size, UC_PROT_READ | UC_PROT_EXEC)
        self.uc.mem_write(virt.MROM.base, placed.boot_rom)
        self.engine.pc = virt.MROM.base

    def _board_csr(self, csr: int) -> int:
        mtime = self.clint.mtime(self.clock.ticks(self.icount))
        return self.hart.csr_value(csr, self.icount, mtime, self.mip())

    def _write_board_csr(self, csr: int, value: int) -> bool:
        return self.hart.write_emulated_csr(csr, value, self.icount)

    def _is_trapped_at(self, addr: int) -> bool:
        insn = self.hart.read_insn(addr)
        return insn is not None and ri.classify(insn) is not None

    def _is_emulated_csr_at(self, addr: int) -> bool:
        """An access to a CSR the board emulates (an illegal instruction exception there is the native counter
        read declining, or Unicorn's own refusal: the board's path decides either way)."""
        insn = self.hart.read_insn(addr)
        return insn is not None and ri.classify(insn) == ri.Action.EMULATE_CSR

    # -- device callbacks -----------------------------------------------------
    def _on_plic(self, ctx: int, level: bool) -> None:
        self._plic_out[ctx] = level

    def _on_mtime_read(self) -> None:
        if self.timer_sites is not None and self.engine.is_applying_mmio:
            self.timer_sites.note_mtime_load(self.engine.mmio_pc)

    def _prepare_run(self) -> None:
        """The native timer sites' copy of the clock and counters (see machine.riscv_timer_sites)."""
        if self.timer_sites is not None:
            hart = self.hart
            aside = bool(self.engine.watchpoints) or self._trace_hook is not None
            self.timer_sites.prepare(self.clock.bias_ns, self.clint.mtime_offset, hart.mcycle_offset,
                                     hart.minstret_offset, hart.run_csrs(), aside)  # fmt: skip

    def _on_msip(self, level: bool) -> None:
        self._msip = level

    # -- state -------------------------------------------------------------
    def mip(self) -> int:
        """Pending interrupts as the hart sees them (the board owns mip)."""
        bits = self.hart.mip_soft
        if self.clint.timer_pending(self.clock.ticks(self.icount)):
            bits |= 1 << MTI
        if self._msip:
            bits |= 1 << MSI
        if self._plic_out[0]:
            bits |= 1 << MEI
        if self._plic_out[1]:
            bits |= 1 << SEI
        return bits

    board_state_type = BoardState

    def capture_board(self) -> BoardState:
        """The board's bookkeeping (:data:`machine.state.BOARD_ATTRIBUTES` says where each field lives)."""
        hart = self.hart
        return BoardState(
            self.halted, self.exit_code, self.reset_requested, tuple(self._plic_out), self._msip,
            self._last_watch_stop, hart.mip_soft, hart.mcycle_offset, hart.minstret_offset, self.clock.bias_ns,
            self.tx_digest,
        )  # fmt: skip

    def restore_board(self, board: BoardState) -> None:
        """Put the board's bookkeeping back (``board`` is valid)."""
        self.halted, self.exit_code, self.reset_requested = board.halted, board.exit_code, board.reset_requested
        self._plic_out, self._msip = list(board.plic_out), board.msip
        self._last_watch_stop = board.last_watch_stop
        hart = self.hart
        hart.mip_soft, hart.mcycle_offset, hart.minstret_offset = (board.mip_soft, board.mcycle_offset,
                                                                   board.minstret_offset)  # fmt: skip
        hart.forget_run_csrs()  # (the CPU's registers were restored too)
        self.clock.bias_ns = board.bias_ns
        self.tx_digest = board.tx_digest

    def cpu_digest_values(self) -> list[int]:
        return [*self.hart.registers(), *self.hart.digest_csrs()]

    def _fetch_is_translated(self) -> bool:
        """Instruction addresses go through the MMU (below M-mode with a satp other than 0)."""
        return self.hart.priv != PRIV_M and self.hart.csr(rc.UC_RISCV_REG_SATP) != 0

    # -- interrupts, timer, idling -------------------------------------------------
    def _take_interrupt(self) -> bool:
        mip = self.mip()
        if not mip:  # nothing pending: no need to read the enables (each CSR read costs ~2 us)
            return False
        code = self.hart.enabled_interrupt(mip)
        if code is None:
            return False
        self.halted = False
        self._trap_icount = self.icount
        epc = self.pc
        self.hart.enter_trap(epc, code, 0, is_interrupt=True)
        self._entered_trap(cause=code, interrupt=True, resume=epc)
        return True

    def _timer_deadline(self) -> int:
        """The icount at which the timer interrupt becomes pending (NO_LIMIT: none to come)."""
        ticks = self.clint.deadline_ticks()
        if ticks is None or self.clint.timer_pending(self.clock.ticks(self.icount)):
            return NO_LIMIT
        return min(NO_LIMIT, self.clock.icount_at_ticks(ticks, self.icount))

    def _has_wake_interrupt(self) -> bool:
        return bool(self.mip() & self.hart.csr(rc.UC_RISCV_REG_MIE))

    def _timer_wake_ns(self) -> int | None:
        if self._timer_deadline() == NO_LIMIT:  # a pending-but-masked timer wakes nothing
            return None
        ticks = self.clint.deadline_ticks() or 0
        deadline_ns = max(0, ticks * NS_PER_TICK - self.clock.ns(self.icount))
        if self.clock.bias_ns + deadline_ns > MAX_BIAS_NS:  # past what the clock holds (~584 years): never
            return None
        return deadline_ns

    # -- instructions the board handles, exceptions ----------------------------------
    def _satp_written(self, old: int) -> None:
        """After a write of satp (the guest's, or a debugger's; ``old``: the value before it)."""
        if not ri.satp_is_supported(self.hart.csr(rc.UC_RISCV_REG_SATP), self.arch.xlen):
            self.hart.set_csr(rc.UC_RISCV_REG_SATP, old)  # WARL: an unsupported MODE is not written at all
        # QEMU 7.2 flushes its TLB on every satp write; Unicorn's QEMU 5 only when the ASID changes, so a stale
        # Bare-mode entry let Linux's first fetch after enabling paging go on at its physical address (Linux
        # expects that fetch to fault, to its trap vector at the virtual address).
        self.uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)
        self.engine.forget_code()  # what code a virtual address holds may have changed

    def _debugger_writes_satp(self, value: int) -> None:
        old = self.hart.csr(rc.UC_RISCV_REG_SATP)
        self.hart.set_csr(rc.UC_RISCV_REG_SATP, value)
        self._satp_written(old)

    def _trapped_instruction(self, stop: EngineStop, limit: int) -> RunResult | None:
        insn = self.hart.read_insn(stop.pc)
        action = None if insn is None else ri.classify(insn)
        if action in (ri.Action.STEP_THEN_CHECK, ri.Action.STEP_THEN_FORGET):
            self.hart.forget_run_csrs()  # (a write to them is one of these)
            writes_satp = insn is not None and ri.writes_csr(insn, ri.CSR_SATP)
            satp = self.hart.csr(rc.UC_RISCV_REG_SATP) if writes_satp else None
            after = self.engine.step_over_trapped()
            if satp is not None:
                self._satp_written(satp)
            if action == ri.Action.STEP_THEN_FORGET:
                if satp is None:  # (_satp_written forgot it)
                    self.engine.forget_code()
                if insn is not None and ri.is_fence_i(insn) and FAST_STORES not in engine_patches():
                    # The wheel's Unicorn misses a store to code made through another virtual mapping of its page
                    # (it keeps that mapping's TLB entry writable without a check); fence.i makes every store
                    # visible to fetches, so its translations go (tests/unit/test_code_alias_stores.py).
                    self.uc.ctl_flush_tb()
            return self._after_step(stop, after, limit)
        if action == ri.Action.WFI and self.hart.may_wfi():
            self.halted = True
            self.engine.retire_emulated(stop.pc + 4)
            return None
        if action == ri.Action.EMULATE_CSR:
            assert insn is not None
            mtime = self.clint.mtime(self.clock.ticks(stop.icount))
            if self.hart.emulate_csr(insn, stop.icount, mtime, self.mip()):
                self.engine.retire_emulated(stop.pc + 4)
                return None
        return self._exception(EngineStop(StopKind.EXCEPTION, stop.icount, stop.pc, Cause.ILLEGAL_INSTRUCTION))

    def _exception(self, stop: EngineStop) -> RunResult | None:
        """Deliver an exception to the guest, or end the run when it has no handler."""
        assert stop.cause is not None
        code = self.hart.exception_code(stop.cause)
        refaults = self._note_refault(stop)
        if not self.hart.has_trap_handler(code) or refaults >= 2:
            return RunResult(RunKind.FAULT, stop.icount, stop.pc, cause=stop.cause, fault_addr=stop.addr)
        self._trap_icount = self.icount
        self.hart.enter_trap(stop.pc, code, self.hart.trap_value(stop.cause, stop.pc, stop.addr))
        self._entered_trap(refaults, cause=code, interrupt=False, resume=stop.pc)
        return None


def _is_elf(path: str) -> bool:
    """Whether a file starts as an ELF file does (unreadable: no; loading it then says why)."""
    try:
        with open(path, "rb") as stream:
            return stream.read(4) == b"\x7fELF"
    except OSError:
        return False


def check_config(config: MachineConfig) -> None:
    """ImageError unless the board options are in range."""
    if config.ram_size <= 0 or config.ram_size % 4096 or config.ram_size > 0x8000_0000:
        raise ImageError(f"bad RAM size {config.ram_size}: a multiple of 4 KiB up to 2 GiB")
    if not 0 <= config.icount_shift <= 10:
        raise ImageError(f"bad icount shift {config.icount_shift}: 0..10")
