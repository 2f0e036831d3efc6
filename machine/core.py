"""What every board shares: exact icount, RAM, devices, virtio slots, breakpoints, watchpoints, the run loop.

:class:`MachineCore` is the architecture-neutral half of a machine. A board (``machine.machine.Machine``: RISC-V
``virt``; ``machine.arm_virt.ArmVirtMachine``: AArch64 ``virt``) derives from it and provides what only the
architecture and the board know (docs/architecture.md, "What an architecture provides"):

* ``_take_interrupt()``: take a pending, enabled interrupt at this boundary (trap entry);
* ``_has_wake_interrupt()``: an interrupt is pending that ends ``wfi`` (even if masked);
* ``_timer_deadline()``/``_timer_wake_ns()``: when the board's timer fires next (icount; ns from now);
* ``_trapped_instruction(stop, limit)``: an instruction the counter marked (counter reads, ``wfi``, interrupt
  unmasking, remapping) reached: emulate it, step it and re-check, or idle;
* ``_exception(stop)``: deliver a guest exception (or end the run with a fault when it has no handler);
* ``_fetch_is_translated()``: instruction addresses go through the MMU now;
* ``capture_board()``/``restore_board()``/``board_state_type``: the board's bookkeeping as a frozen state;
* ``cpu_digest_values()``: the CPU registers a verification point and a state digest cover.

:meth:`MachineCore.run` only ever moves forward. It delivers interrupts and asynchronous input at exact
instruction boundaries, idles in ``wfi`` through the input source, and stops on guest exit, a fault the guest
cannot handle, an icount limit or a request from the caller.
"""

from __future__ import annotations

import ctypes
import hashlib
import mmap
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from unicorn import UC_PROT_ALL, Uc

from .clock import MAX_BIAS_NS, VirtualClock
from .debug_memory import DebugMemory
from .devices.base import Device
from .devices.virtio_blk import VirtioBlk
from .devices.virtio_net import VirtioNet
from .engine import Engine, EngineStop, StopKind
from .executed import CodeRanges
from .icount import NO_LIMIT, Counter
from .inputs import InputSource
from .loader import Image, ImageError
from .ram import PAGE, PageTable, RamPages, is_shared_between
from .results import RunKind, RunResult, TrapEntry
from .state import MachineState, capture, forget_reservation, restore, state_digest
from .trace import hook_trace
from .virtio_slots import VirtioSlots
from .watch import WatchKind, Watchpoint

if TYPE_CHECKING:
    from .audio import AudioSink
    from .boards.virt import Region

_FLUSH_PAGES_ONE_BY_ONE = 16  # past this many rewritten pages one flush of everything is cheaper


class MachineCore:
    """The architecture-neutral machine. A board's ``__init__`` builds its CPU and devices, then calls
    :meth:`_attach` and :meth:`_finish`."""

    # Set by the board before _attach.
    arch: Any
    image: Image
    config: Any
    inputs: InputSource
    clock: VirtualClock
    uc: Uc
    counter: Counter
    engine: Engine
    regions: tuple[Region, ...]
    ram_base: int
    uart: Any  # the console UART: rx_space() and receive(data)
    slots: VirtioSlots
    devices: dict[str, Device]
    registers: Any  # GDB's register file (read, write, read_all, write_all)
    board_name: str = "virt"

    def _begin(self, image: Image, inputs: InputSource, config: Any, arch_type: type, board: str, runs: str,
               ram_base: int) -> Any:  # fmt: skip
        """The start of every board's construction: the image's architecture (ImageError unless ``arch_type``),
        the configuration checked, the clock and a Unicorn CPU. Returns the architecture."""
        from .arch.registry import choose_arch
        from .machine import check_config

        arch = choose_arch(image, config.arch)
        if not isinstance(arch, arch_type):
            raise ImageError(f"{image.path} is an {arch.name} image: the {board} machine runs {runs}")
        check_config(config)
        self.arch = arch
        self.image = image
        self.config = config
        self.inputs = inputs
        self.ram_base = ram_base
        self.clock = VirtualClock(config.icount_shift)
        self.uc = arch.new_uc()
        return arch

    def _attach(self) -> None:
        """Common state; call once the engine exists, before devices are built."""
        self.exit_code: int | None = None
        self.reset_requested = False
        self.halted = False
        self.tx_digest = 0  # a running hash of every frame the network devices sent (see _transmit)
        self._trap_icount = -1  # the icount at which the last trap was entered (see is_at_first_boundary)
        self._trap_entry = (-1, -1, 0)  # (icount, pc) where the last trap entered its handler, refaults there
        self.trap_tap: Callable[[TrapEntry], None] | None = None  # told of every trap entered (queries)
        self.audio_sink: AudioSink | None = None  # where what the guest plays goes (--audio out=wav:FILE)
        # Sees every frame the network devices send (True) and receive (False), with the virtual time in ns.
        self.frame_tap: Callable[[int, bool, bytes], None] | None = None
        self._trace_hook: int | None = None
        self._resumed_at = (-1, -1)
        self._last_watch_stop: tuple[int, int] | None = None

    def _map_ram(self, size: int, windows: tuple[tuple[int, int, int], ...] | None = None) -> None:
        """RAM: one host buffer of ``size`` bytes, seen by the guest through ``windows`` of (guest address,
        offset in the buffer, size) (default: all of it at ``ram_base``). Snapshots, write tracking and
        watchpoints work on the buffer, so every window is RAM for them."""
        self.ram = mmap.mmap(-1, size)
        self._ram_ptr = ctypes.addressof(ctypes.c_char.from_buffer(self.ram))
        self.ram_windows = windows if windows is not None else ((self.ram_base, 0, size),)
        for addr, offset, length in self.ram_windows:
            self.uc.mem_map_ptr(addr, length, UC_PROT_ALL, self._ram_ptr + offset)
        self.engine.exclude_ram_from_fault_hook((addr, length) for addr, _offset, length in self.ram_windows)
        self.ram_pages = RamPages(self.ram, self._ram_ptr, self.config.prefer_native)

    def ram_offset(self, addr: int, length: int) -> int | None:
        """Where [addr, addr+length) lies in the RAM buffer (None unless wholly inside one window)."""
        for base, offset, size in self.ram_windows:
            if length > 0 and base <= addr and addr + length <= base + size:
                return offset + addr - base
        return None

    def _ram_address(self, offset: int) -> int:
        for base, start, size in self.ram_windows:
            if start <= offset < start + size:
                return base + offset - start
        raise ValueError(f"offset {offset:#x} is not in RAM")

    def _finish(self, bus: dict[str, Any] | None = None) -> None:
        """After the devices exist and the image is loaded: the debugger's view of memory (``bus``: the device of
        each MMIO region by name, when some region is not one device, e.g. a bank of virtio transports)."""
        self.memory = DebugMemory(self.uc, self.regions, bus or self.devices, self.engine.forget_code,
                                  self._fetch_is_translated)  # fmt: skip

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

    def digest(self) -> str:
        """SHA-256 of everything guest-visible: registers, system registers, RAM, devices, clock."""
        return state_digest(self)  # type: ignore[arg-type]

    # -- saving and restoring the whole machine ----------------------------------
    def save_state(self) -> MachineState:
        """The whole machine now (between instructions)."""
        return capture(self)  # type: ignore[arg-type]

    def restore_state(self, state: MachineState) -> None:
        """Go back (or forward) to a saved state; breakpoints and watchpoints stay as they are."""
        restore(self, state)  # type: ignore[arg-type]
        self.engine.watchpoints.forget_board_hit()
        self._trap_icount = state.icount  # unknown: assume a trap was entered here (the safe answer below)
        self._trap_entry = (-1, -1, 0)

    def forget_translations(self, ram_pages: list[int]) -> None:
        """These RAM pages (indices) were rewritten under Unicorn (a restore): drop the translations of code
        in them, and every decoded block count.

        With instruction fetch untranslated (no MMU in use) the pages' own translations are removed (a restore
        usually rewrites a few data pages: the code's translations stay warm); otherwise, or for many pages,
        all of them (``ctl_flush_tb``, then every block is translated again).
        """
        if len(ram_pages) <= _FLUSH_PAGES_ONE_BY_ONE and not self._fetch_is_translated():
            for index in ram_pages:
                base = self._ram_address(index * PAGE)
                self.uc.ctl_remove_cache(base, base + PAGE)
        else:
            self.uc.ctl_flush_tb()
        self.engine.forget_code()

    def _fetch_is_translated(self) -> bool:
        raise NotImplementedError

    @property
    def is_at_first_boundary(self) -> bool:
        """The CPU is as it was when execution first reached this icount: no trap or interrupt entered since.

        A run cut by an icount limit always stops there, so a replay stopped at this icount sees the same
        registers (what a verification point needs); a stop after a trap entered at the same icount does not.
        """
        return self._trap_icount != self.icount

    def forget_reservation(self) -> None:
        """Drop what a state file cannot carry (see :func:`machine.state.forget_reservation`)."""
        forget_reservation(self)  # type: ignore[arg-type]

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
        return self.ram_offset(addr, length) is not None

    def is_unwritten_between(self, earlier: PageTable, later: PageTable, addr: int, length: int) -> bool:
        """True only if [addr, addr+length) lies wholly in RAM and provably no byte of it was written
        between the two images of :meth:`ram_image` (page identity, so only with page-protection tracking).
        """
        offset = self.ram_offset(addr, length)
        if not self.is_ram_tracked or offset is None:
            return False
        return is_shared_between(earlier, later, offset, length)

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
            # (A trap entered in the last round may have stacked onto watched bytes: reported before anything else
            # but the end of the run, at the start of the next one then.)
            result = self._check_end(cap, interrupted) or self._board_watch_hit()
            if result is not None:
                return result
            hit = self._deliver_input() or self._state_exception() or self._board_watch_hit()
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
            self._prepare_run()
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
        if written and self._fetch_is_translated():
            # Unicorn finds a translation to remove through the MMU in use: a physical address may map nothing
            # there, or another page. Translations are dropped by physical address only without paging.
            self.uc.ctl_flush_tb()
        else:
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
        slots = ", ".join(str(slot) for slot in range(self.slots.count) if done >> slot & 1)
        by = f"the {self.slots.kinds(done)} device in slot {slots} completing its requests at icount {self.icount}"
        for addr, length in written:
            for watchpoint in self.engine.watchpoints:
                hit = watchpoint.hit_by(True, addr, length)
                if hit is not None:
                    self._last_watch_stop = (self.icount, self.pc)
                    return RunResult(RunKind.WATCHPOINT, self.icount, self.pc, fault_addr=hit,
                                     watch_kind=watchpoint.kind, written_by=by)  # fmt: skip
        return None

    def _board_accessed(self, is_write: bool, addr: int, length: int, by: str) -> None:
        """The board itself read or wrote these bytes of RAM, below Unicorn's memory hooks (Armv7-M exception entry
        stacks a frame, its return unstacks it): a watchpoint over them fires as for a device's write (see
        :meth:`_device_watch_hit`), reported by the run loop before the next instruction, with ``by`` saying who.

        Only the first such access between two instructions is reported. It is no watchpoint stop to step over
        when resuming: the next instruction's own access to the bytes is another access, reported too. A run that
        ends here first (its limit: an exception return completes at it) leaves the hit to the next run from here,
        so that a hit is never reported at a run's limit (a backward scan places a hit one past its icount).
        """
        self.engine.watchpoints.note_board_access(self.icount, is_write, addr, length, by)

    def _board_watch_hit(self) -> RunResult | None:
        """The watchpoint hit :meth:`_board_accessed` noted at this icount (forgotten once reported)."""
        hit = self.engine.watchpoints.take_board_hit(self.icount)
        if hit is None:
            return None
        watchpoint, addr, by = hit
        return RunResult(RunKind.WATCHPOINT, self.icount, self.pc, fault_addr=addr, watch_kind=watchpoint.kind,
                         written_by=by)  # fmt: skip

    def _next_input(self) -> int:
        """Stop where the input source has input (or a completion) due, so it arrives at that exact icount."""
        at = self.inputs.next_input_icount(self.icount)
        return NO_LIMIT if at is None or at <= self.icount else at

    def _device_deadline(self) -> int:
        """The icount at which a device paced by virtual time (a sound buffer) is due (NO_LIMIT: none)."""
        ns = self.slots.next_deadline_ns()
        return NO_LIMIT if ns is None else min(NO_LIMIT, self.clock.icount_at_ns(ns, self.icount))

    def _idle(self) -> RunResult | None:
        """The CPU waits for an interrupt (``wfi``): warp to the next timer or device deadline, or wait for
        input through the input source (live: the host; a replay: the log)."""
        if self._has_wake_interrupt():
            self.halted = False  # wfi ends on any pending enabled interrupt, even with interrupts masked
            return None
        deadline_ns = self._timer_wake_ns()
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

    def _note_refault(self, stop: EngineStop) -> int:
        """How many times in a row the guest faulted on the first instruction of its handler (a vector or pc in
        unmapped memory traps to itself for ever without retiring one): after two, report the fault."""
        icount, pc, refaults = self._trap_entry
        return refaults + 1 if (stop.icount, stop.pc) == (icount, pc) else 0

    def _entered_trap(self, refaults: int = 0, *, cause: int, interrupt: bool, resume: int) -> None:
        """Note a trap or interrupt entered at this icount (the handler's first instruction is now at pc).

        ``cause``: the architecture's number for it (RISC-V mcause/scause code, AArch64 ESR class or the GIC's
        interrupt id, Cortex-M exception number); ``resume``: where the interrupted code goes on (the saved pc).
        """
        self._trap_entry = (self.icount, self.pc, refaults)
        if self.trap_tap is not None:
            self.trap_tap(TrapEntry(self.icount, self.pc, resume, cause, interrupt))

    def enter_pending_interrupt(self) -> bool:
        """Take an interrupt due right here, as the next run would before any instruction (no icount passes):
        the state a breakpoint on the handler's first instruction reports at this same icount."""
        for _ in range(4):  # as the run loop does before an instruction: input, interrupts, idling in wfi
            if self.exit_code is not None or self.reset_requested or self._deliver_input() is not None:
                return False
            if self._take_interrupt():
                return True
            if not self.halted or self._idle() is not None:
                return False
        return False

    # -- what the board provides -------------------------------------------------------
    def _prepare_run(self) -> None:
        """Just before the engine runs (a board's native helpers may need the current clock)."""

    def _take_interrupt(self) -> bool:
        raise NotImplementedError

    def _has_wake_interrupt(self) -> bool:
        raise NotImplementedError

    def _timer_due_ns(self) -> int | None:
        """The virtual time (ns) at which the board's next timer interrupt becomes due (None: none will)."""
        raise NotImplementedError

    def _timer_deadline(self) -> int:
        """The icount at which the next timer interrupt becomes due (NO_LIMIT: none to come)."""
        due = self._timer_due_ns()
        return NO_LIMIT if due is None else min(NO_LIMIT, self.clock.icount_at_ns(due, self.icount))

    def _timer_wake_ns(self) -> int | None:
        """How long an idle CPU waits for its timer (None: for ever, or past what the clock holds)."""
        due = self._timer_due_ns()
        if due is None:
            return None
        deadline_ns = max(0, due - self.clock.ns(self.icount))
        return None if self.clock.bias_ns + deadline_ns > MAX_BIAS_NS else deadline_ns

    def _state_exception(self) -> RunResult | None:
        """An exception the CPU state itself raises before the next instruction (a board's: none by default);
        the fault that ends the run when the guest has no handler for it."""
        return None

    def _trapped_instruction(self, stop: EngineStop, limit: int) -> RunResult | None:
        raise NotImplementedError

    def _exception(self, stop: EngineStop) -> RunResult | None:
        raise NotImplementedError

    def cpu_digest_values(self) -> list[int]:
        """The CPU's registers and system registers as integers: what verification points and digests cover."""
        raise NotImplementedError

    def capture_board(self) -> Any:
        """The board's bookkeeping now, a frozen ``board_state_type``."""
        raise NotImplementedError

    def restore_board(self, board: Any) -> None:
        raise NotImplementedError
