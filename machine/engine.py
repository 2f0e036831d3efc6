"""Drive Unicorn forward with an exact icount: one job, no devices, no policy.

:meth:`Engine.run` executes until something needs the board's attention and
returns an :class:`EngineStop` at an exact instruction boundary (or, for
faults, exactly *at* the faulting instruction, which has not retired):

* ``LIMIT``  - icount reached the hard limit (landing inside a block if needed);
* ``SOFT``   - first block boundary at or after the soft limit (a checkpoint);
* ``MMIO``   - a device access that must happen at a known icount; the access
  has *not* been performed: call :meth:`Engine.step_mmio` to execute it;
* ``CSR``    - an instruction the board handles (counters, ``mip``, ``wfi``, ``mret``...);
* ``BREAKPOINT`` - pc reached a breakpoint (the instruction there has not executed);
* ``WATCHPOINT`` - the instruction at pc accesses watched memory (it has not taken effect: memory and the
  registers a load wrote are put back);
* ``EXCEPTION`` - any exception of the guest (illegal instruction, ``ecall``,
  ``ebreak``, access, misaligned and page faults).

Translation-cache rules from docs/unicorn-facts.md ("Translation cache") apply throughout: a hook added
after code was translated is invisible until that code's cache entry is
removed, and a deleted ranged hook keeps firing until the range is flushed.
"""

from __future__ import annotations

import ctypes
import enum
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from unicorn import UC_HOOK_CODE, UC_HOOK_INTR, UC_HOOK_MEM_PROT, UC_HOOK_MEM_UNMAPPED, Uc, UcError
from unicorn.unicorn_const import (
    UC_CTL_IO_WRITE,
    UC_CTL_TB_REMOVE_CACHE,
    UC_ERR_FETCH_PROT,
    UC_ERR_FETCH_UNMAPPED,
    UC_ERR_INSN_INVALID,
    UC_ERR_READ_PROT,
    UC_ERR_READ_UNMAPPED,
    UC_ERR_WRITE_PROT,
    UC_ERR_WRITE_UNMAPPED,
)
from unicorn.unicorn_py3 import unicorn as _ucmod  # private: pinned unicorn==2.1.4 (docs/unicorn-facts.md)

from .icount import NO_LIMIT, Counter, StopReason, add_landing_hook, del_landing_hook
from .watch import WatchHit, WatchpointSet

log = logging.getLogger(__name__)


class StopKind(enum.Enum):
    """Why :meth:`Engine.run` returned."""

    LIMIT = "limit"
    SOFT = "soft"
    MMIO = "mmio"
    CSR = "csr"
    EXCEPTION = "exception"
    BREAKPOINT = "breakpoint"
    WATCHPOINT = "watchpoint"


class Cause(enum.Enum):
    """Architecture-neutral exception causes."""

    ILLEGAL_INSTRUCTION = "illegal instruction"
    ECALL = "environment call"
    BREAKPOINT = "breakpoint instruction"
    FETCH_FAULT = "instruction fetch from unmapped memory"
    LOAD_FAULT = "load from unmapped memory"
    STORE_FAULT = "store to unmapped memory"
    MISALIGNED_FETCH = "misaligned instruction fetch"
    MISALIGNED_LOAD = "misaligned load"
    MISALIGNED_STORE = "misaligned store or atomic"
    FETCH_PAGE_FAULT = "instruction page fault"
    LOAD_PAGE_FAULT = "load page fault"
    STORE_PAGE_FAULT = "store page fault"
    EXCEPTION_RETURN = "exception return"  # Armv7-M: a branch to EXC_RETURN (the board pops the frame)
    INVALID_STATE = "invalid state"  # Armv7-M: execution in the Arm state (a branch to an even address)


@dataclass(frozen=True, slots=True)
class EngineStop:
    """An exact stop: ``pc`` is the next instruction to execute (or the faulting one)."""

    kind: StopKind
    icount: int
    pc: int
    cause: Cause | None = None
    addr: int = 0  # faulting data address for load/store faults
    watch: WatchHit | None = None


_ERROR_CAUSES = {
    UC_ERR_INSN_INVALID: Cause.BREAKPOINT,  # ebreak (docs/unicorn-facts.md, "RISC-V model")
    UC_ERR_READ_UNMAPPED: Cause.LOAD_FAULT,
    UC_ERR_READ_PROT: Cause.LOAD_FAULT,
    UC_ERR_WRITE_UNMAPPED: Cause.STORE_FAULT,
    UC_ERR_WRITE_PROT: Cause.STORE_FAULT,
    UC_ERR_FETCH_UNMAPPED: Cause.FETCH_FAULT,
    UC_ERR_FETCH_PROT: Cause.FETCH_FAULT,
}


# uc_ctl(UC_CTL_TB_REMOVE_CACHE, begin, end) as the binding encodes it (op << 30 | nargs << 26 | ctl): called
# directly, it costs half of ctl_remove_cache.
_REMOVE_CACHE = (UC_CTL_IO_WRITE << 30) | (2 << 26) | UC_CTL_TB_REMOVE_CACHE
# Removed breakpoints whose hooks are kept (inactive) until the next run, for gdb to insert them again.
MAX_PARKED_BREAKPOINTS = 64
ADDRESS_MAX = (1 << 64) - 1  # the last address a hook's range can name


class EngineError(RuntimeError):
    """Unicorn failed in a way the engine cannot attribute to the guest."""


class Engine:
    """Exact-icount execution on one Unicorn instance.

    ``pc_reg`` is the Unicorn id of the program counter; ``intr_causes`` maps
    Unicorn interrupt numbers to (cause, bytes the engine already advanced pc).
    """

    def __init__(
        self,
        uc: Uc,
        counter: Counter,
        pc_reg: int,
        intr_causes: dict[int, tuple[Cause, int]],
        until_addr: int,
        is_trapped_at: Callable[[int], bool],
        thumb: bool = False,
    ) -> None:
        self.uc = uc
        # Thumb-only cores (Cortex-M): Unicorn takes bit 0 of a pc written or started at as the Thumb state, and
        # an even pc would switch to the Arm state they do not have. Every pc the engine writes carries it.
        self._pc_bit = 1 if thumb else 0
        self.counter = counter
        self._pc_reg = pc_reg
        self._intr_causes = intr_causes
        self._until = until_addr
        self._is_trapped_at = is_trapped_at
        self._special_hooks: dict[int, int] = {}
        self._pending: EngineStop | None = None
        self._hook_error: Exception | None = None
        self._unmapped_addr = 0
        self._mmio_apply = False
        self._mmio_icount = 0
        self._skip_special: int | None = None
        self._mmio_pc = 0
        # A board may hook trapped specials natively (special_hook(addr) -> hook handle): such a hook calls
        # special_callback for whatever it does not handle itself, and hears of breakpoints through
        # breakpoint_listener(addr, present) (a breakpoint comes first, whichever hook Unicorn calls first).
        self.special_hook: Callable[[int], int] | None = None
        # Instructions Unicorn executes with the board's answer from a native function, which may decline (the
        # instruction then raises an illegal instruction exception): native_declines(pc) says whether the
        # instruction at pc is one, and the board's path for trapped instructions takes it instead.
        self.native_declines: Callable[[int], bool] | None = None
        self.breakpoint_listener: Callable[[int, bool], None] | None = None
        self._special_cb: object | None = None
        # Unicorn's AArch64 model writes a load's destination (and a base write-back) although an emu_stop
        # inside the access leaves pc at the instruction: the architecture saves the general registers when an
        # access is deferred (mmio_guard() returns what puts them back) and the stop restores them.
        self.mmio_guard: Callable[[], Callable[[], None]] | None = None
        self._mmio_undo: Callable[[], None] | None = None
        self._breakpoints: dict[int, int] = {}  # address -> hook handle
        self._parked: dict[int, int] = {}  # removed breakpoints whose hook is kept, oldest first (see run)
        self.max_parked_breakpoints = MAX_PARKED_BREAKPOINTS  # 0: delete a hook as its breakpoint is removed
        self.lands_single_steps = True  # False: a 1-instruction run takes the general path (tests compare both)
        self._resume_at: tuple[int, int] | None = None  # (icount, pc) where the current run began
        # A hit stops the engine through the counter's state and is collected in _mid_block_stop.
        self.watchpoints = WatchpointSet(uc, counter.state, counter.is_native)
        # pc is read ~6 times per run: one native call into a buffer of its own (the binding's reg_read builds
        # a ctypes object per read). Unicorn writes the register's width only, so the bytes above stay zero.
        self._uch = uc._uch
        self._pc_value = ctypes.c_uint64()
        self._pc_ref = ctypes.byref(self._pc_value)
        # One C function pointer for every breakpoint hook: the binding's hook_add builds one per hook (~15 us,
        # most of a Z0); this one carries the binding's own exception guard (uccallback).
        self._breakpoint_cb = _ucmod.uccallback(uc, _ucmod.HOOK_CODE_CFUNC)(self._on_breakpoint_raw)
        uc.hook_add(UC_HOOK_INTR, self._on_intr)
        # The address of a fault (every address until the board names its RAM: see exclude_ram_from_fault_hook).
        self._fault_hooks = [uc.hook_add(UC_HOOK_MEM_UNMAPPED | UC_HOOK_MEM_PROT, self._on_unmapped)]

    # -- state -------------------------------------------------------------
    @property
    def icount(self) -> int:
        """Instructions retired since reset."""
        return int(self.counter.state.icount)

    @icount.setter
    def icount(self, value: int) -> None:
        self.counter.state.icount = value

    @property
    def pc(self) -> int:
        if _ucmod.uclib.uc_reg_read(self._uch, self._pc_reg, self._pc_ref) != 0:
            return int(self.uc.reg_read(self._pc_reg))  # let the binding raise its own error
        return self._pc_value.value

    @pc.setter
    def pc(self, value: int) -> None:
        self.uc.reg_write(self._pc_reg, value | self._pc_bit)

    def retire_emulated(self, next_pc: int) -> None:
        """Account for one instruction the board emulated instead of the engine."""
        self.icount += 1
        self.pc = next_pc

    # -- callbacks from devices and hooks -----------------------------------
    @property
    def is_applying_mmio(self) -> bool:
        """True while :meth:`step_mmio` executes the deferred access for real."""
        return self._mmio_apply

    def fail_from_hook(self, exc: Exception) -> None:
        """Called from a Unicorn callback that raised: stop now and raise ``exc`` from :meth:`run`.

        An exception cannot cross Unicorn's C frames (the binding prints it and goes on), so it is carried
        over them: e.g. a replay that diverges inside a device read of the host clock.
        """
        if self._hook_error is None:
            self._hook_error = exc
        self._request_stop(StopKind.MMIO)
        self.uc.emu_stop()

    def defer_mmio(self) -> None:
        """Called from an MMIO callback: stop before the access takes effect."""
        if self.mmio_guard is not None and self.counter.state.stop_reason == StopReason.NONE:
            self._mmio_undo = self.mmio_guard()
        self._request_stop(StopKind.MMIO)

    def _request_stop(self, kind: StopKind, cause: Cause | None = None, back: int = 0) -> None:
        st = self.counter.state
        if st.stop_reason != StopReason.NONE:
            return
        st.stop_reason = StopReason.EXTERNAL
        st.fast_limit = 0
        self._pending = EngineStop(kind, 0, 0, cause, back)
        self.uc.emu_stop()

    def _on_intr(self, uc: Uc, intno: int, _data: object) -> None:
        cause, back = self._intr_causes.get(intno, (Cause.ILLEGAL_INSTRUCTION, 0))
        self._request_stop(StopKind.EXCEPTION, cause, back)

    def exclude_ram_from_fault_hook(self, spans: Iterable[tuple[int, int]]) -> None:
        """Hear of faults only outside ``spans`` of (physical address, size) mapped readable, writable and
        executable: no access there can fault (Unicorn reports a fault's physical address), and a memory hook over
        a page keeps every store to it on Unicorn's slow path."""
        for handle in self._fault_hooks:
            self.uc.hook_del(handle)
        self._fault_hooks = []
        begin = 0
        for addr, size in sorted(spans):
            if addr > begin:
                self._fault_hooks.append(self._fault_hook(begin, addr - 1))
            begin = max(begin, addr + size)
        if begin <= ADDRESS_MAX:
            self._fault_hooks.append(self._fault_hook(begin, ADDRESS_MAX))

    def _fault_hook(self, begin: int, end: int) -> int:
        return self.uc.hook_add(UC_HOOK_MEM_UNMAPPED | UC_HOOK_MEM_PROT, self._on_unmapped, begin=begin, end=end)

    def _on_unmapped(self, uc: Uc, access: int, addr: int, size: int, value: int, _data: object) -> bool:
        self._unmapped_addr = addr
        return False

    @property
    def special_callback(self) -> object:
        """The special hook as a C function pointer (``HOOK_CODE`` type), for a native hook to fall back on."""
        if self._special_cb is None:
            self._special_cb = _ucmod.uccallback(self.uc, _ucmod.HOOK_CODE_CFUNC)(self._on_special)
        return self._special_cb

    def _on_special(self, uc: Uc, addr: int, size: int, _data: object) -> None:
        if self._skip_special == addr:
            self._skip_special = None
            return
        # A breakpoint on this instruction comes first, whichever of the two hooks Unicorn calls first (it calls
        # them in the order they were added): the first stop requested wins.
        if addr in self._breakpoints:
            self._on_breakpoint(uc, addr, size, _data)
        # The hook stays when code is rewritten or remapped: check it still applies.
        if self._is_trapped_at(addr):
            self._request_stop(StopKind.CSR)

    # -- breakpoints ---------------------------------------------------------
    @property
    def breakpoints(self) -> frozenset[int]:
        return frozenset(self._breakpoints)

    def add_breakpoint(self, addr: int) -> None:
        """Stop before executing the instruction at ``addr`` (never written into guest memory).

        A ranged code hook that is not hit costs nothing; the address's cached
        translation is removed so the hook is seen (unicorn issue #2200).
        A breakpoint removed since the last run gets its hook back (see :meth:`remove_breakpoint`).
        """
        if addr in self._breakpoints:
            return
        if self.breakpoint_listener is not None:
            self.breakpoint_listener(addr, True)
        handle = self._parked.pop(addr, None)
        if handle is not None:
            # The hook was never deleted: every translation since it was added (and flushed) calls it.
            self._breakpoints[addr] = handle
            return
        handle = _ucmod.uc_hook_h()
        status = _ucmod.uclib.uc_hook_add(self._uch, ctypes.byref(handle), UC_HOOK_CODE, self._breakpoint_cb,
                                          None, ctypes.c_uint64(addr), ctypes.c_uint64(addr))  # fmt: skip
        if status != 0:
            raise UcError(status)
        try:
            self._flush(addr, addr + 1)
        except UcError:
            self._hook_del(handle.value)
            raise
        self._breakpoints[addr] = handle.value

    def _hook_del(self, handle: int) -> None:
        """Delete a breakpoint hook (made without the binding's hook_add, so not with its hook_del)."""
        status = _ucmod.uclib.uc_hook_del(self._uch, _ucmod.uc_hook_h(handle))
        if status != 0:
            raise UcError(status)

    def remove_breakpoint(self, addr: int) -> None:
        """Forget a breakpoint: it never fires again (its hook returns at once for an address not armed).

        gdb removes every breakpoint at each stop and inserts them again before it resumes: adding a hook costs
        ~17 us (the binding builds a ctypes callback), deleting one and flushing ~5. So the hook is only parked,
        to be taken back by :meth:`add_breakpoint`; hooks still parked when a run starts are deleted then
        (:meth:`_drop_parked`), so no run executes with an inactive hook, as before.
        """
        handle = self._breakpoints.pop(addr, None)
        if handle is not None:
            if self.breakpoint_listener is not None:
                self.breakpoint_listener(addr, False)
            self._parked[addr] = handle
            if len(self._parked) > self.max_parked_breakpoints:
                self._drop_parked(1)

    def _drop_parked(self, count: int | None = None) -> None:
        """Delete the oldest ``count`` (default: all) parked hooks, flushing each address so that the deleted
        hook stops firing (unicorn issue #1640)."""
        for addr in list(self._parked)[:count]:
            self._hook_del(self._parked.pop(addr))
            self._flush(addr, addr + 1)

    def _on_breakpoint_raw(self, uc: Uc, addr: int, size: int, _key: int) -> None:
        self._on_breakpoint(uc, addr, size, None)

    def _on_breakpoint(self, uc: Uc, addr: int, size: int, _data: object) -> None:
        st = self.counter.state
        if st.stop_reason != StopReason.NONE or addr not in self._breakpoints:
            return
        icount = st.block_icount + self.counter.insns_before(addr)
        # The breakpoint we resume from does not fire again (gdb steps off it; rr skips it too).
        if (icount, addr) == self._resume_at or icount >= st.limit:
            return
        self._request_stop(StopKind.BREAKPOINT)

    def step_unwatched(self) -> EngineStop:
        """Execute the instruction at pc with watchpoints suspended (stepping off a hit)."""
        self.watchpoints.suspended = True
        try:
            return self.run(self.icount + 1, self.icount + 1)
        finally:
            self.watchpoints.suspended = False

    # -- running -------------------------------------------------------------
    @property
    def resume_point(self) -> tuple[int, int]:
        """The (icount, pc) the current run resumed from, where a breakpoint does not fire ((-1, -1): none)."""
        return self._resume_at

    def mark_resume_point(self, resume: bool = True) -> tuple[int, int]:
        """The caller resumes here: a breakpoint at this very (icount, pc) does not fire (unless not ``resume``).

        Returns that point, (-1, -1) when not ``resume``."""
        self._resume_at = (self.icount, self.pc) if resume else (-1, -1)
        return self._resume_at

    def run(self, limit: int, soft_limit: int) -> EngineStop:
        """Run forward until the next event; never past ``limit``."""
        if self._parked:
            self._drop_parked()
        while True:
            stop = self._run_once(limit, soft_limit)
            if stop is not None:
                return stop

    def _start(self, begin: int) -> UcError | None:
        if self.watchpoints:
            self.watchpoints.begin_run()
        try:
            self.uc.emu_start(begin | self._pc_bit, self._until)
        except UcError as err:
            return err
        return None

    def _raise_hook_error(self) -> None:
        """After a run: raise the exception a hook carried over Unicorn's frames (see :meth:`fail_from_hook`)."""
        if self._hook_error is not None:
            failure, self._hook_error = self._hook_error, None
            self.counter.state.stop_reason = StopReason.NONE
            self.watchpoints.take_hit()  # a hit before the failure is not reported
            raise failure

    def _run_once(self, limit: int, soft_limit: int) -> EngineStop | None:
        st = self.counter.state
        icount = st.icount
        if icount >= limit:
            return EngineStop(StopKind.LIMIT, icount, self.pc)
        st.limit = limit
        if icount + 1 == limit and self.lands_single_steps:
            # One instruction (a stepi, or stepping one instruction over): the block at pc holds at least one,
            # so a first run would only stop before it (or run a block of exactly that one instruction, which
            # the landing runs just as well): land at once.
            interrupted = self._land(limit)
            return interrupted if interrupted is not None else EngineStop(StopKind.LIMIT, self.icount, self.pc)
        st.soft_limit = soft_limit
        st.fast_limit = min(limit, soft_limit)
        st.stop_reason = StopReason.NONE
        self._pending = None
        err = self._start(self.pc)
        self._raise_hook_error()
        reason = StopReason(st.stop_reason)
        st.stop_reason = StopReason.NONE
        if reason == StopReason.LIMIT:
            if st.icount < limit:
                interrupted = self._land(limit)
                if interrupted is not None:
                    return interrupted
            return EngineStop(StopKind.LIMIT, self.icount, self.pc)
        if reason == StopReason.SOFT:
            return EngineStop(StopKind.SOFT, self.icount, self.pc)
        if reason == StopReason.SPECIAL:
            self._hook_specials()
            return None
        return self._mid_block_stop(reason, err)

    def _correct_to(self, pc: int) -> None:
        """Set icount for a stop at ``pc`` inside the block the counter last entered."""
        st = self.counter.state
        if st.block_addr <= pc <= st.block_addr + st.block_size and st.block_size:
            st.icount = st.block_icount + self.counter.insns_before(pc)

    def _mid_block_stop(self, reason: StopReason, err: UcError | None) -> EngineStop:
        if reason == StopReason.UNREADABLE:
            raise EngineError(f"cannot read the code of the block at {self.counter.state.miss_addr:#x}")
        pc = self.pc
        pending = self._pending
        if pending is not None and pending.kind == StopKind.EXCEPTION:
            pc -= pending.addr  # the engine already advanced pc past the instruction
            self.pc = pc
            self._correct_to(pc)
            if pending.cause == Cause.ILLEGAL_INSTRUCTION and self.native_declines is not None and \
                    self.native_declines(pc):  # fmt: skip
                return EngineStop(StopKind.CSR, self.icount, pc)  # declined natively: the board's path
            return EngineStop(StopKind.EXCEPTION, self.icount, pc, pending.cause)
        self._correct_to(pc)
        hit = self.watchpoints.take_hit()  # (a hit and a requested stop exclude each other)
        if hit is not None:
            if hit.restore is not None:
                self.uc.mem_write(*hit.restore)  # undo the write: the instruction runs again later
            self.watchpoints.put_back(hit)  # a load's registers as before it (AArch64, Armv7-M: see machine.watch)
            return EngineStop(StopKind.WATCHPOINT, self.icount, pc, addr=hit.addr, watch=hit)
        if pending is not None:
            if pending.kind == StopKind.MMIO and self._mmio_undo is not None:
                self._mmio_undo()
            self._mmio_undo = None
            return EngineStop(pending.kind, self.icount, pc)
        if err is not None:
            cause = _ERROR_CAUSES.get(err.errno)
            if cause is None:
                raise EngineError(f"unicorn stopped with {err} at pc={pc:#x}") from err
            addr = pc if cause == Cause.FETCH_FAULT else self._unmapped_addr
            return EngineStop(StopKind.EXCEPTION, self.icount, pc, cause, addr)
        # Unicorn halted by itself: only a wfi it executed does that, and the board traps wfi.
        raise EngineError(f"unicorn stopped at pc={pc:#x} for no known reason")

    def _flush(self, begin: int, end: int) -> None:
        self.uc.ctl_remove_cache(begin, end)

    def _flush_landing(self, begin: int, end: int) -> None:
        """``ctl_remove_cache(begin, end)`` in one native call: a step lands, and flushes twice."""
        status = _ucmod.uclib.uc_ctl(self._uch, _REMOVE_CACHE, ctypes.c_uint64(begin), ctypes.c_uint64(end))
        if status != 0:
            raise UcError(status)

    def _land(self, limit: int) -> EngineStop | None:
        """Run the block at pc under a ranged code hook up to exactly ``limit``.

        Returns the stop that interrupted the landing (a fault or a deferred
        device access before the limit), or None when the limit was reached.
        """
        st = self.counter.state
        begin = self.pc
        end = begin + 0x1000  # a translation block never spans more than a page
        # Only the translation containing pc is run here, so only it is flushed to see the hook (and flushed
        # again after, to lose it): flushing the whole page made every other block of a hot page be translated
        # again after each landing (replay lands at every verification point: 3-5 % of its time).
        self._flush_landing(begin, begin + 1)
        handle = add_landing_hook(self.counter, self.uc, begin, end - 1)
        st.landing = 1
        st.soft_limit = NO_LIMIT
        st.fast_limit = 0  # every block through the slow path while landing
        st.stop_reason = StopReason.NONE
        self._pending = None
        try:
            err = self._start(begin)
        finally:
            st.landing = 0
            del_landing_hook(self.counter, self.uc, handle)
            self._flush_landing(begin, begin + 1)
        self._raise_hook_error()
        reason = StopReason(st.stop_reason)
        st.stop_reason = StopReason.NONE
        if reason == StopReason.LIMIT:
            return None
        if reason == StopReason.SPECIAL:
            self._hook_specials()
            return self._run_once(limit, NO_LIMIT)
        return self._mid_block_stop(reason, err)

    def _hook_specials(self) -> None:
        st = self.counter.state
        for addr in self.counter.take_new_specials():
            if addr not in self._special_hooks:
                if self.special_hook is not None:
                    self._special_hooks[addr] = self.special_hook(addr)
                else:
                    self._special_hooks[addr] = self.uc.hook_add(UC_HOOK_CODE, self._on_special, begin=addr, end=addr)
                self._flush(addr, addr + 4)
        self.counter.remember_block(st.miss_addr, st.miss_size, st.miss_insns)

    @property
    def access_icount(self) -> int:
        """The icount of the instruction whose device access is being applied (else the icount).

        Mid-block the counter is ahead of the instruction (it counts whole blocks); the deferred access
        knows its instruction's exact icount, which is what input events are stamped with.
        """
        return self._mmio_icount if self._mmio_apply else self.icount

    @property
    def mmio_pc(self) -> int:
        """The pc of the instruction whose device access is being applied (see :meth:`step_mmio`)."""
        return self._mmio_pc

    def step_mmio(self) -> EngineStop:
        """Execute the instruction at pc with device accesses applied; stop right after it."""
        self._mmio_icount = self.icount
        self._mmio_pc = self.pc
        self._mmio_apply = True
        try:
            return self.run(self.icount + 1, self.icount + 1)
        finally:
            self._mmio_apply = False

    def step_over_trapped(self) -> EngineStop:
        """Let Unicorn execute the trapped instruction at pc itself; stop right after it."""
        self._skip_special = self.pc
        try:
            return self.run(self.icount + 1, self.icount + 1)
        finally:
            self._skip_special = None

    def forget_code(self) -> None:
        """Code was rewritten or remapped (fence.i, satp): drop every decoded block count.

        Unicorn invalidates its own translations; special hooks check the
        instruction they sit on each time they fire.
        """
        self.counter.clear_cache()
