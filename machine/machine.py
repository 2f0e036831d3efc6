"""The machine: a RISC-V hart on Unicorn, the ``virt`` board's devices, exact icount.

:meth:`Machine.run` only ever moves forward. It delivers interrupts and
asynchronous input at exact instruction boundaries, emulates the CSRs
Unicorn gets wrong, performs trap entry, idles in ``wfi`` through the input
source, and stops on guest exit, a fault the guest cannot handle, an icount
limit or a request from the caller.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import mmap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from unicorn import UC_PROT_ALL, UC_PROT_EXEC, UC_PROT_READ, Uc
from unicorn import riscv_const as rc

from .arch import riscv_insn as ri
from .arch.riscv import INTR_CAUSES, MEI, MSI, MTI, PRIV_M, SEI, RiscvArch, choose_arch
from .arch.riscv_hart import Hart
from .arch.riscv_regs import RegisterFile
from .boards import virt
from .clock import MAX_BIAS_NS, VirtualClock
from .debug_memory import DebugMemory
from .devices.base import Device
from .devices.clint import NS_PER_TICK, Clint
from .devices.plic import Plic
from .devices.rtc import GoldfishRtc
from .devices.test_finisher import TestFinisher
from .devices.uart import Uart16550
from .devices.virtio_blk import VirtioBlk
from .devices.virtio_net import VirtioNet
from .dma import DriveConfig
from .engine import Cause, Engine, EngineStop, StopKind
from .executed import CodeRanges
from .icount import NO_LIMIT, make_counter
from .inputs import InputSource
from .loader import Image, ImageError
from .mmio import map_device
from .ram import PAGE, PageTable, RamPages, is_shared_between
from .results import RunKind, RunResult
from .state import MachineState, capture, forget_reservation, restore, state_digest
from .trace import hook_trace
from .virtio_slots import VirtioSlots

if TYPE_CHECKING:
    from .audio import AudioSink
from .watch import WatchKind, Watchpoint

log = logging.getLogger(__name__)

_FLUSH_PAGES_ONE_BY_ONE = 16  # past this many rewritten pages one flush of everything is cheaper


@dataclass(frozen=True, slots=True)
class MachineConfig:
    """Board options, as on the command line."""

    arch: RiscvArch | None = None  # None: from the ELF header
    ram_size: int = virt.DEFAULT_RAM_SIZE
    icount_shift: int = 3
    prefer_native: bool = True
    drives: tuple[DriveConfig, ...] = ()  # virtio-blk devices, the first in the highest slot (as QEMU)
    virtio_legacy: bool = True  # virtio-mmio Version 1, QEMU 7.2's default (False: Version 2)
    network: bool = False  # a virtio-net device, in the slot after the drives' (its frames: the input source)
    audio: bool = False  # a virtio-snd device, after the network's slot (its microphone: the input source)


class Machine:
    """One ``virt`` machine running one image."""

    def __init__(
        self,
        image: Image,
        inputs: InputSource,
        uart_tx: Callable[[int], None],
        config: MachineConfig = MachineConfig(),
    ) -> None:
        arch = choose_arch(image, config.arch)
        if config.ram_size <= 0 or config.ram_size % 4096 or config.ram_size > 0x8000_0000:
            raise ImageError(f"bad RAM size {config.ram_size}: a multiple of 4 KiB up to 2 GiB")
        if not 0 <= config.icount_shift <= 10:
            raise ImageError(f"bad icount shift {config.icount_shift}: 0..10")
        self.arch = arch
        self.image = image
        self.config = config
        self.inputs = inputs
        self.clock = VirtualClock(config.icount_shift)
        self.uc: Uc = arch.new_uc()
        self.hart = Hart(self.uc, arch)
        self.counter = make_counter(self.uc, arch.isa, ri.TRAPPED, config.prefer_native)
        self.engine = Engine(self.uc, self.counter, arch.pc_reg, INTR_CAUSES, arch.until_addr, self._is_trapped_at)
        self.regions = virt.memory_map(config.ram_size)
        self.exit_code: int | None = None
        self.reset_requested = False
        self.halted = False
        self.tx_digest = 0  # a running hash of every frame the network devices sent (see _transmit)
        self._trap_icount = -1  # the icount at which the last trap was entered (see is_at_first_boundary)
        self._trap_entry = (-1, -1, 0)  # (icount, pc) where the last trap entered its handler, refaults there
        self._plic_out = [False, False]
        self._msip = False
        self._map_ram(config.ram_size)
        self.plic = Plic(self._on_plic)
        self.uart = Uart16550(uart_tx, self.plic.line(virt.UART0_IRQ))
        self.clint = Clint(lambda: self.clock.ticks(self.engine.icount), self._on_msip)
        self.rtc = GoldfishRtc(lambda: self.inputs.host_clock_ns(self.engine.access_icount))
        self.finisher = TestFinisher(self._on_exit, self._on_reset)
        self.devices: dict[str, Device] = {
            "test": self.finisher,
            "rtc": self.rtc,
            "clint": self.clint,
            "plic": self.plic,
            "uart0": self.uart,
        }
        self.slots = VirtioSlots(self.plic, self.ram, config.drives, config.network, config.virtio_legacy,
                                 self._transmit, config.audio, self._audio_played, self._audio_capture)  # fmt: skip
        self.audio_sink: AudioSink | None = None  # where what the guest plays goes (--audio out=wav:FILE)
        for slot, transport in enumerate(self.slots.transports):
            self.devices[f"virtio{slot}"] = transport
        # Sees every frame the network devices send (True) and receive (False), with the virtual time in ns.
        self.frame_tap: Callable[[int, bool, bytes], None] | None = None
        for region in self.regions:
            if region.kind == "mmio":
                map_device(self.uc, self.engine, region.base, region.size, self.devices[region.name])
        self._load(image)
        self.registers = RegisterFile(arch, self.hart, self._board_csr, self._write_board_csr)
        self.memory = DebugMemory(self.uc, self.regions, self.devices, self.engine.forget_code)
        self._trace_hook: int | None = None
        self._resumed_at = (-1, -1)
        self._last_watch_stop: tuple[int, int] | None = None

    # -- construction ------------------------------------------------------
    def close(self) -> None:
        """Release the disk images' file descriptors."""
        self.slots.close()

    @property
    def disks(self) -> dict[int, VirtioBlk]:
        """The drives' devices, by virtio slot."""
        return self.slots.disks

    @property
    def nets(self) -> dict[int, VirtioNet]:
        """The network devices, by virtio slot."""
        return self.slots.nets

    def _map_ram(self, size: int) -> None:
        self.ram = mmap.mmap(-1, size)
        self._ram_ptr = ctypes.addressof(ctypes.c_char.from_buffer(self.ram))
        self.uc.mem_map_ptr(virt.RAM_BASE, size, UC_PROT_ALL, self._ram_ptr)
        self.ram_pages = RamPages(self.ram, self._ram_ptr, self.config.prefer_native)

    def _load(self, image: Image) -> None:
        placed = virt.place_image(self.ram, image, self.arch, self.config.ram_size)
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

    # -- device callbacks -----------------------------------------------------
    def _on_plic(self, ctx: int, level: bool) -> None:
        self._plic_out[ctx] = level

    def _on_msip(self, level: bool) -> None:
        self._msip = level

    def _on_exit(self, code: int) -> None:
        self.exit_code = code

    def _on_reset(self) -> None:
        self.reset_requested = True

    # -- state -------------------------------------------------------------
    @property
    def icount(self) -> int:
        """Instructions retired since reset."""
        return self.engine.icount

    @property
    def access_icount(self) -> int:
        """In a device callback, the icount of the instruction making the access (:attr:`icount` is then ahead:
        the counter counts whole blocks); else :attr:`icount`. What a UART byte or a clock read is stamped with."""
        return self.engine.access_icount

    @property
    def pc(self) -> int:
        return self.engine.pc

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

    def digest(self) -> str:
        """SHA-256 of everything guest-visible: registers, CSRs, RAM, devices, clock."""
        return state_digest(self)

    # -- saving and restoring the whole machine ----------------------------------
    def save_state(self) -> MachineState:
        """The whole machine now (between instructions)."""
        return capture(self)

    def restore_state(self, state: MachineState) -> None:
        """Go back (or forward) to a saved state; breakpoints and watchpoints stay as they are."""
        restore(self, state)
        self._trap_icount = state.icount  # unknown: assume a trap was entered here (the safe answer below)
        self._trap_entry = (-1, -1, 0)

    def forget_translations(self, ram_pages: list[int]) -> None:
        """These RAM pages (indices) were rewritten under Unicorn (a restore): drop the translations of code
        in them, and every decoded block count.

        With instruction fetch untranslated (M-mode, or satp bare) the pages' own translations are removed
        (a restore usually rewrites a few data pages: the code's translations stay warm); otherwise, or for
        many pages, all of them (``ctl_flush_tb``, then every block is translated again).
        """
        if len(ram_pages) <= _FLUSH_PAGES_ONE_BY_ONE and not self._fetch_is_translated():
            for index in ram_pages:
                base = virt.RAM_BASE + index * PAGE
                self.uc.ctl_remove_cache(base, base + PAGE)
        else:
            self.uc.ctl_flush_tb()
        self.engine.forget_code()

    def _fetch_is_translated(self) -> bool:
        """Instruction addresses go through the MMU (below M-mode with a satp other than 0)."""
        return self.hart.priv != PRIV_M and self.hart.csr(rc.UC_RISCV_REG_SATP) != 0

    @property
    def is_at_first_boundary(self) -> bool:
        """The hart is as it was when execution first reached this icount: no trap or interrupt entered since.

        A run cut by an icount limit always stops there, so a replay stopped at this icount sees the same
        registers (what a verification point needs); a stop after a trap entered at the same icount does not.
        """
        return self._trap_icount != self.icount

    def forget_reservation(self) -> None:
        """Drop the LR/SC reservation, which state files do not carry (see :func:`machine.state.forget_reservation`)."""
        forget_reservation(self)

    @property
    def checkpoint_interval(self) -> int:
        """Instructions between the icount counter's checkpoints (a natural unit for snapshot spacing)."""
        return self.counter.checkpoint_interval

    @property
    def is_counter_native(self) -> bool:
        """True when instructions are counted by the native helper (else in pure Python, slower)."""
        return self.counter.is_native

    @property
    def is_ram_tracked(self) -> bool:
        """True when RAM writes are tracked by page protection (else RAM is compared with a copy)."""
        return self.ram_pages.is_tracked

    def ram_image(self) -> PageTable:
        """An image of RAM now, sharing every page unchanged since the last image or restore."""
        return self.ram_pages.capture()

    def is_ram(self, addr: int, length: int) -> bool:
        """[addr, addr+length) lies wholly in RAM (where watchpoints can be set: see the Watchpoints section
        of the README)."""
        offset = addr - virt.RAM_BASE
        return length > 0 and offset >= 0 and offset + length <= self.config.ram_size

    def is_unwritten_between(self, earlier: PageTable, later: PageTable, addr: int, length: int) -> bool:
        """True only if [addr, addr+length) lies wholly in RAM and provably no byte of it was written
        between the two images of :meth:`ram_image` (page identity, so only with page-protection tracking).
        """
        if not self.is_ram_tracked or not self.is_ram(addr, length):
            return False
        return is_shared_between(earlier, later, addr - virt.RAM_BASE, length)

    def set_pc(self, addr: int) -> None:
        """Make ``addr`` the next instruction to execute (gdb's ``jump``, ``c ADDR``)."""
        if not 0 <= addr <= self.arch.mask:
            raise ValueError(f"pc {addr:#x} is not a {self.arch.xlen}-bit address")
        self.engine.pc = addr

    # -- breakpoints ----------------------------------------------------------
    def arm(self, breakpoints: Iterable[int], watchpoints: Iterable[Watchpoint]) -> None:
        """Make the next runs report exactly these breakpoints and watchpoints.

        Only what changed is re-armed (nothing, when nothing did): breakpoints cost a flush of their
        address's translation, watchpoints a flush of every translation.
        """
        want = frozenset(breakpoints)
        have = self.engine.breakpoints
        for addr in have - want:
            self.engine.remove_breakpoint(addr)
        for addr in sorted(want - have):
            self.engine.add_breakpoint(addr)
        # A fixed order: it decides which watchpoint is reported when one access hits several.
        self.engine.watchpoints.replace(sorted(set(watchpoints), key=repr))

    def add_breakpoint(self, addr: int) -> None:
        """Stop :meth:`run` before the instruction at ``addr`` executes (guest memory untouched)."""
        self.engine.add_breakpoint(addr)

    def remove_breakpoint(self, addr: int) -> None:
        self.engine.remove_breakpoint(addr)

    def add_watchpoint(self, kind: WatchKind, addr: int, length: int) -> None:
        """Stop :meth:`run` before an instruction that reads/writes [addr, addr+length) takes effect."""
        self.engine.watchpoints.add(Watchpoint(kind, addr, length))

    def remove_watchpoint(self, kind: WatchKind, addr: int, length: int) -> None:
        self.engine.watchpoints.remove(Watchpoint(kind, addr, length))

    # -- execution index ---------------------------------------------------------
    def take_executed_code(self, next_window: bool = True) -> CodeRanges | None:
        """The code executed since the current index window began (the first call begins the index), or
        None when too much distinct code ran to note it (the window may have run anything). With
        ``next_window`` a new window begins now."""
        pairs = self.counter.take_executed(next_window)
        return None if pairs is None else CodeRanges(pairs)

    # -- tracing -------------------------------------------------------------
    def enable_trace(self, emit: Callable[[int, int, bytes], None]) -> None:
        """Call ``emit(icount, pc, instruction bytes)`` once before each instruction executes."""
        self._trace_hook = hook_trace(self.uc, self.counter, emit)

    # -- running -------------------------------------------------------------
    def run(self, max_icount: int | None = None, interrupted: Callable[[], bool] | None = None,
            resume: bool = True) -> RunResult:  # fmt: skip
        """Run forward until the guest exits or faults, ``max_icount`` or ``interrupted()``.

        ``resume``: the caller resumes from a stop it reported, so a breakpoint or
        watchpoint hit right here is stepped over. False when continuing a run
        that was only cut for the caller's bookkeeping (a hit here must fire).
        """
        cap = NO_LIMIT if max_icount is None else max_icount
        here = self.engine.mark_resume_point(resume)
        # Only the watchpoint stop we reported and now resume from is stepped over silently.
        self._resumed_at = here if resume and self._last_watch_stop == here else (-1, -1)
        self._last_watch_stop = None
        while True:
            result = self._check_end(cap, interrupted)
            if result is not None:
                return result
            hit = self._deliver_input()
            if hit is not None:
                return hit
            if self._take_interrupt():
                continue
            if self.halted:
                outcome = self._idle()
                if outcome is not None:
                    # Ctrl-C during the idle wait wins over input that ended meanwhile.
                    if interrupted is not None and interrupted():
                        return self._result(RunKind.INTERRUPTED)
                    return outcome
                continue
            limit = min(cap, self._timer_deadline(), self._next_input(), self._device_deadline())
            interval = self.counter.checkpoint_interval
            if self.engine.watchpoints:  # memory hooks make each instruction ~30x slower
                interval >>= 5
            stop = self.engine.run(limit, self.icount + interval)
            result = self._handle(stop, limit)
            if result is not None:
                return result

    def _result(self, kind: RunKind, **kw: object) -> RunResult:
        return RunResult(kind, self.icount, self.pc, **kw)  # type: ignore[arg-type]

    def _check_end(self, cap: int, interrupted: Callable[[], bool] | None) -> RunResult | None:
        if self.exit_code is not None:
            return self._result(RunKind.EXITED, exit_code=self.exit_code)
        if self.reset_requested:
            return self._result(RunKind.RESET)
        if self.icount >= cap:
            return self._result(RunKind.LIMIT)
        if interrupted is not None and interrupted():
            return self._result(RunKind.INTERRUPTED)
        return None

    def _deliver_input(self) -> RunResult | None:
        """UART input and device completions due now; a watchpoint hit if a device wrote watched memory."""
        space = self.uart.rx_space()
        if space:
            data = self.inputs.poll_input(self.icount, space)
            if data:
                self.uart.receive(data)
        if self.slots.in_use:
            now_ns = self.clock.ns(self.icount)
            pending = self.slots.pending
            deadline = self.slots.next_deadline_ns()
            sound = deadline is not None and deadline <= now_ns
            if pending or sound or self.slots.frames_due(self.inputs, self.icount):
                if self.pc in self.engine.breakpoints and self.engine.resume_point != (self.icount, self.pc):
                    # A breakpoint here stops before the completion, as a seek to this icount does: at an icount
                    # the device's data is not there yet; the next instruction is the first to see it.
                    return self._result(RunKind.BREAKPOINT)
                # The sound devices learn the time only where something reaches them (completions, deadlines):
                # those icounts are the same in a replay, so their state is too.
                self.slots.set_time(now_ns)
                done = self.inputs.complete_io(self.icount, pending) & pending if pending else 0
                self.slots.complete(done)
                if sound:
                    done |= self.slots.service_sound()
                done |= self.slots.receive_frames(self.inputs, self.icount, self._tap_received)
                return self._after_device_writes(done) if done else None
        return None

    def _transmit(self, slot: int, frame: bytes) -> None:
        """A frame a network device sent: into the running digest (checked at verification points: a replay
        sending other frames diverges), to the capture, to the network (live only)."""
        previous = self.tx_digest.to_bytes(16, "little")
        self.tx_digest = int.from_bytes(hashlib.blake2b(previous + frame, digest_size=16).digest(), "little")
        if self.frame_tap is not None:
            self.frame_tap(self.clock.ns(self.icount), True, frame)
        self.inputs.send_frame(self.icount, slot, frame)

    def _audio_capture(self, slot: int, stream: int, nbytes: int) -> bytes:
        """The microphone's samples for a capture buffer of the sound device in ``slot`` (through the input
        source: logged live, from the log in a replay)."""
        rate, channels = self.slots.stream_format(slot, stream)
        return self.inputs.capture_audio(self.icount, slot, nbytes, rate, channels)

    def _audio_played(self, slot: int, stream: int, data: bytes) -> None:
        """A playback buffer of the sound device in ``slot`` finished: logged (a replay checks it), then heard."""
        rate, channels = self.slots.stream_format(slot, stream)
        self.inputs.audio_played(self.icount, slot, len(data), rate, channels)
        if self.audio_sink is not None:
            self.audio_sink.play(data, rate, channels)

    def _tap_received(self, frame: bytes) -> None:
        if self.frame_tap is not None:
            self.frame_tap(self.clock.ns(self.icount), False, frame)

    def _after_device_writes(self, done: int) -> RunResult | None:
        """Devices of these slots wrote RAM: drop stale translations; a watchpoint hit if they wrote watched bytes."""
        written = self.slots.dma.take_written()
        for addr, length in written:
            start = addr & ~(PAGE - 1)
            self.uc.ctl_remove_cache(start, addr + length)
        if written:
            self.engine.forget_code()
        return self._device_watch_hit(written, done)

    def _device_watch_hit(self, written: list[tuple[int, int]], done: int) -> RunResult | None:
        """A write or access watchpoint over bytes a device just wrote: reported where the data became visible,
        as if the next instruction had written it (README, "Disk I/O and gdb")."""
        if not self.engine.watchpoints:
            return None
        slots = ", ".join(str(slot) for slot in range(virt.VIRTIO_COUNT) if done >> slot & 1)
        by = f"the {self.slots.kinds(done)} device in slot {slots} completing its requests at icount {self.icount}"
        for addr, length in written:
            for watchpoint in self.engine.watchpoints:
                hit = watchpoint.hit_by(True, addr, length)
                if hit is not None:
                    self._last_watch_stop = (self.icount, self.pc)
                    return RunResult(RunKind.WATCHPOINT, self.icount, self.pc, fault_addr=hit,
                                     watch_kind=watchpoint.kind, written_by=by)  # fmt: skip
        return None

    def _next_input(self) -> int:
        """Stop where the input source has input (or a completion) due, so it arrives at that exact icount."""
        at = self.inputs.next_input_icount(self.icount)
        return NO_LIMIT if at is None or at <= self.icount else at

    def _take_interrupt(self) -> bool:
        mip = self.mip()
        if not mip:  # nothing pending: no need to read the enables (each CSR read costs ~2 us)
            return False
        code = self.hart.enabled_interrupt(mip)
        if code is None:
            return False
        self.halted = False
        self._trap_icount = self.icount
        self.hart.enter_trap(self.pc, code, 0, is_interrupt=True)
        self._trap_entry = (self.icount, self.pc, 0)
        return True

    def _timer_deadline(self) -> int:
        """The icount at which the timer interrupt becomes pending (NO_LIMIT: none to come)."""
        ticks = self.clint.deadline_ticks()
        if ticks is None or self.clint.timer_pending(self.clock.ticks(self.icount)):
            return NO_LIMIT
        return min(NO_LIMIT, self.clock.icount_at_ticks(ticks, self.icount))

    def _device_deadline(self) -> int:
        """The icount at which a device paced by virtual time (a sound buffer) is due (NO_LIMIT: none)."""
        ns = self.slots.next_deadline_ns()
        return NO_LIMIT if ns is None else min(NO_LIMIT, self.clock.icount_at_ns(ns, self.icount))

    def _idle(self) -> RunResult | None:
        if self.mip() & self.hart.csr(rc.UC_RISCV_REG_MIE):
            self.halted = False  # wfi ends on any pending enabled interrupt, even with MIE clear
            return None
        deadline_ns = None
        if self._timer_deadline() != NO_LIMIT:  # a pending-but-masked timer wakes nothing
            ticks = self.clint.deadline_ticks() or 0
            deadline_ns = max(0, ticks * NS_PER_TICK - self.clock.ns(self.icount))
            if self.clock.bias_ns + deadline_ns > MAX_BIAS_NS:  # past what the clock holds (~584 years): never
                deadline_ns = None
        device_ns = self.slots.next_deadline_ns()
        if device_ns is not None:  # a sound buffer finishing wakes the machine (to complete it) like a timer
            until = max(0, device_ns - self.clock.ns(self.icount))
            deadline_ns = until if deadline_ns is None else min(deadline_ns, until)
        outcome = self.inputs.idle(self.icount, deadline_ns)
        if outcome.forever:
            return self._result(RunKind.IDLE_FOREVER)
        self.clock.bias_ns += outcome.warp_ns
        if outcome.data:
            self.uart.receive(outcome.data)
        return None

    def _handle(self, stop: EngineStop, limit: int) -> RunResult | None:
        """Act on a stop; None means: back to the run loop (interrupts are checked there)."""
        if stop.kind in (StopKind.LIMIT, StopKind.SOFT):
            return None
        if stop.icount >= limit or self.exit_code is not None or self.reset_requested:
            # The instruction at pc has not executed. At the limit it must wait
            # (an interrupt may be due first, or the caller wants this state);
            # after the guest's exit nothing more happens. (Unicorn calls no
            # code hook on an invalid instruction, so a landing can end here.)
            return None
        if stop.kind == StopKind.BREAKPOINT:
            return self._result(RunKind.BREAKPOINT)
        if stop.kind == StopKind.WATCHPOINT:
            return self._watch_stop(stop, limit)
        if stop.kind == StopKind.MMIO:
            return self._after_step(stop, self.engine.step_mmio(), limit)
        if stop.kind == StopKind.CSR:
            return self._trapped_instruction(stop, limit)
        return self._exception(stop)

    def _watch_stop(self, stop: EngineStop, limit: int) -> RunResult | None:
        """Report a watchpoint hit, except the one we resume from: step over that one."""
        if (stop.icount, stop.pc) == self._resumed_at:
            return self._after_step(stop, self.engine.step_unwatched(), limit)
        assert stop.watch is not None
        self._last_watch_stop = (stop.icount, stop.pc)
        return RunResult(RunKind.WATCHPOINT, stop.icount, stop.pc, fault_addr=stop.addr,
                         watch_kind=stop.watch.watchpoint.kind)  # fmt: skip

    def _after_step(self, before: EngineStop, stop: EngineStop, limit: int) -> RunResult | None:
        """A stepped instruction either retired (back to the loop) or faulted in place."""
        if stop.icount > before.icount:
            return None
        return self._handle(stop, limit)

    def _trapped_instruction(self, stop: EngineStop, limit: int) -> RunResult | None:
        insn = self.hart.read_insn(stop.pc)
        action = None if insn is None else ri.classify(insn)
        if action in (ri.Action.STEP_THEN_CHECK, ri.Action.STEP_THEN_FORGET):
            after = self.engine.step_over_trapped()
            if action == ri.Action.STEP_THEN_FORGET:
                self.engine.forget_code()
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
        # A handler that faults on its own first instruction traps to itself for ever without retiring one
        # (a vector or pc in unmapped memory): after two such refaults in a row (the state no longer changes)
        # the fault is reported, as with no handler, instead of spinning (a step would never end).
        icount, pc, refaults = self._trap_entry
        refaults = refaults + 1 if (stop.icount, stop.pc) == (icount, pc) else 0
        if not self.hart.has_trap_handler(code) or refaults >= 2:
            return RunResult(RunKind.FAULT, stop.icount, stop.pc, cause=stop.cause, fault_addr=stop.addr)
        self._trap_icount = self.icount
        self.hart.enter_trap(stop.pc, code, self.hart.trap_value(stop.cause, stop.pc, stop.addr))
        self._trap_entry = (self.icount, self.pc, refaults)
        return None
