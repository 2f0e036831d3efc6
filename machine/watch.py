"""Watchpoints: memory hooks armed only while a watchpoint exists (they slow every access).

A hit stops the engine *before* the accessing instruction takes effect, as gdb
expects on RISC-V (docs/gdb-protocol-facts.md, "Watchpoints"): Unicorn has already performed a
write when the hook runs, so the hook saves the old bytes and the engine puts
them back after stopping; the instruction is then executed exactly once when
execution resumes (docs/unicorn-facts.md, "Watchpoints").

The check runs in C (``machine/native/watch.c``) when the native helper is
built, else in Python with identical results. Either way the hooks are
*ranged* around the watched bytes, so accesses elsewhere never reach the
check, and a hit stops the engine as the icount counter's own stops do
(``stop_reason`` EXTERNAL, ``fast_limit`` 0, ``emu_stop``); the engine then
collects it with :meth:`WatchpointSet.take_hit`.

Registers (AArch64, Armv7-M): when a watched *load* stops Unicorn, its destination register has already been
written (and a load of several registers, e.g. LDM, POP, LDRD, an LDP of SIMD&FP registers or LD1-LD4, writes
the first ones before its later accesses even reach the hook); only the base write-back is not done. So on
those architectures the read hook saves the registers a load can write -- at the first read in its range of
each instruction that loads several, and at a hit -- and the engine puts them back at the stop
(:meth:`WatchpointSet.put_back`), as it does the general registers of a deferred device access. RISC-V loads
write their register after the access: nothing to save there. Stores write no register before the stop.
"""

from __future__ import annotations

import ctypes
import enum
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from unicorn import UC_ARCH_ARM, UC_ARCH_ARM64, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE, UC_MEM_WRITE, Uc, UcError
from unicorn import arm64_const as a64c
from unicorn import arm_const as armc
from unicorn.unicorn_py3 import unicorn as _ucmod  # private: pinned unicorn==2.1.4

from .icount import CounterState, StopReason, _add_raw_hook, open_native_library

log = logging.getLogger(__name__)

# The widest access Unicorn reports to a memory hook (TCG splits anything wider than 8 bytes): a hook's range
# starts this much minus one below the watched bytes, because Unicorn checks only an access's first address
# against the range, and an access that starts below the watched bytes may still overlap them.
ACCESS_MAX = 16
WATCH_OLD_MAX = 64  # bytes of a write the native hook can save (mirrors watch.c)
# The widest span of one load of several registers (LDM of 16 words; LD4 of four 16-byte registers): where
# registers are saved, the read hook's range starts this much minus one below, so that such a load's first
# access (the lowest: before it has written any register) is seen.
MULTI_LOAD_MAX = 64
SAVED_REG_BYTES = 16  # a buffer per saved register (the widest: a 128-bit SIMD register)
_MASK64 = (1 << 64) - 1


class SaveIsa(enum.IntEnum):
    """Which instruction set's loads may have written registers at a watch stop (mirrors watch.c)."""

    NONE = 0
    A64 = 1
    THUMB = 2


def _saved_registers(uc: Uc) -> tuple[SaveIsa, int, tuple[int, ...]]:
    """What the read hook saves on this CPU: (instruction set, pc's Unicorn id, the registers a load can write).

    AArch64: X0-X30, SP (a base write-back, never done before the stop, kept for safety) and the 128-bit
    SIMD&FP registers; Armv7-M: R0-R12, SP and LR. RISC-V: none.
    """
    arch = uc.ctl_get_arch()
    if arch == UC_ARCH_ARM64:
        xs = (*(a64c.UC_ARM64_REG_X0 + i for i in range(29)), a64c.UC_ARM64_REG_X29, a64c.UC_ARM64_REG_X30)
        qs = tuple(a64c.UC_ARM64_REG_Q0 + i for i in range(32))
        return SaveIsa.A64, a64c.UC_ARM64_REG_PC, (*xs, a64c.UC_ARM64_REG_SP, *qs)
    if arch == UC_ARCH_ARM:
        rs = tuple(armc.UC_ARM_REG_R0 + i for i in range(13))
        return SaveIsa.THUMB, armc.UC_ARM_REG_PC, (*rs, armc.UC_ARM_REG_SP, armc.UC_ARM_REG_LR)
    return SaveIsa.NONE, 0, ()


def is_multi_load(isa: SaveIsa, insn: int) -> bool:
    """A load that writes registers between its accesses in Unicorn's translation (the Python twin of
    ``chron_watch_is_multi_load``; over-approximated: a wrong yes costs only a save).

    A64: LDP/LDNP of SIMD&FP registers, LD1-LD4 (single and multiple structures); an LDP of general
    registers loads the first into a temporary. Thumb (``insn``: the first halfword in the low bits):
    LDM/LDMDB/POP, LDRD (and LDREX, TBB/TBH, which share its pattern).
    """
    if isa == SaveIsa.A64:
        return insn & 0x3E40_0000 == 0x2C40_0000 or insn & 0xBE40_0000 == 0x0C40_0000
    if isa == SaveIsa.THUMB:
        hw = insn & 0xFFFF
        return hw & 0xF800 == 0xC800 or hw & 0xFE00 == 0xBC00 or hw & 0xFE10 == 0xE810
    return False


class WatchKind(enum.IntEnum):
    """What a watchpoint watches (gdb's ``watch``, ``rwatch``, ``awatch``).

    The one watch vocabulary: the values are the ``Z``/``z`` packet types gdb uses for them (GDB manual,
    "Packets": Z2 write, Z3 read, Z4 access), so the protocol layer needs no table of its own.
    """

    WRITE = 2
    READ = 3
    ACCESS = 4


@dataclass(frozen=True, slots=True)
class Watchpoint:
    kind: WatchKind
    addr: int
    length: int

    def hit_by(self, is_write: bool, addr: int, size: int) -> int | None:
        """The first watched address the access touches, if it is the watched kind."""
        if self.kind == WatchKind.WRITE and not is_write or self.kind == WatchKind.READ and is_write:
            return None
        start, end = max(addr, self.addr), min(addr + size, self.addr + self.length)
        return start if start < end else None


@dataclass(frozen=True, slots=True)
class WatchHit:
    """Which watchpoint fired, at which address, the bytes to put back (writes) and the registers (reads on
    AArch64 and Armv7-M: :meth:`WatchpointSet.put_back`; 16 bytes per saved register, in the set's order)."""

    watchpoint: Watchpoint
    addr: int
    restore: tuple[int, bytes] | None
    registers: bytes | None = None


class WatchError(RuntimeError):
    """A watched write whose old bytes could not be saved (so it could not be undone)."""


class _Entry(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint64), ("end", ctypes.c_uint64), ("kind", ctypes.c_uint64)]


class WatchState(ctypes.Structure):
    """ctypes mirror of ``struct chron_watch`` (machine/native/watch.c)."""

    _fields_ = [
        ("stop_reason", ctypes.POINTER(ctypes.c_uint64)),
        ("fast_limit", ctypes.POINTER(ctypes.c_uint64)),
        ("emu_stop", ctypes.c_void_p),
        ("mem_read", ctypes.c_void_p),
        ("entries", ctypes.POINTER(_Entry)),
        ("n_entries", ctypes.c_uint64),
        ("suspended", ctypes.c_uint64),
        ("hit", ctypes.c_uint64),
        ("hit_index", ctypes.c_uint64),
        ("hit_addr", ctypes.c_uint64),
        ("access_addr", ctypes.c_uint64),
        ("access_size", ctypes.c_uint64),
        ("is_write", ctypes.c_uint64),
        ("old_status", ctypes.c_uint64),
        ("old", ctypes.c_uint8 * WATCH_OLD_MAX),
        ("save_isa", ctypes.c_uint64),
        ("pc_reg", ctypes.c_uint64),
        ("reg_read", ctypes.c_void_p),
        ("reg_read_batch", ctypes.c_void_p),
        ("block_icount", ctypes.POINTER(ctypes.c_uint64)),
        ("save_regs", ctypes.POINTER(ctypes.c_int)),
        ("save_values", ctypes.POINTER(ctypes.c_void_p)),
        ("n_save", ctypes.c_uint64),
        ("save_valid", ctypes.c_uint64),
        ("save_pc", ctypes.c_uint64),
        ("save_block", ctypes.c_uint64),
        ("hit_saved", ctypes.c_uint64),
        ("save_status", ctypes.c_uint64),
        ("decoded_pc", ctypes.c_uint64),
        ("decoded_multi", ctypes.c_uint64),
    ]


def hook_ranges(watchpoints: list[Watchpoint], read_reach: int = ACCESS_MAX) -> dict[int, list[tuple[int, int]]]:
    """Inclusive address ranges to hook, per hook type, that every access hitting a watchpoint starts in.

    Write watchpoints need only the write hook, read ones only the read hook; ranges that overlap or
    touch are merged (each hook costs a bound check on every access of its type). ``read_reach``: the read
    ranges start that much minus one below the watched bytes (:data:`MULTI_LOAD_MAX` where registers are saved).
    """
    spans: dict[int, list[tuple[int, int]]] = {UC_HOOK_MEM_READ: [], UC_HOOK_MEM_WRITE: []}
    for w in watchpoints:
        if w.length <= 0:
            continue  # watches nothing
        last = min(_MASK64, w.addr + w.length - 1)
        if w.kind != WatchKind.READ:
            spans[UC_HOOK_MEM_WRITE].append((max(0, w.addr - (ACCESS_MAX - 1)), last))
        if w.kind != WatchKind.WRITE:
            spans[UC_HOOK_MEM_READ].append((max(0, w.addr - (max(ACCESS_MAX, read_reach) - 1)), last))
    merged: dict[int, list[tuple[int, int]]] = {}
    for htype, found in spans.items():
        out: list[tuple[int, int]] = []
        for begin, end in sorted(found):
            if out and begin <= out[-1][1] + 1:
                out[-1] = (out[-1][0], max(out[-1][1], end))
            else:
                out.append((begin, end))
        if out:
            merged[htype] = out
    return merged


class WatchpointSet:
    """The guest's watchpoints and the ranged memory hooks that serve them.

    ``counter`` is the icount counter's state: a hit stops the engine through
    it (as ``Engine._request_stop`` does, unless a stop is already requested),
    and the engine collects the hit with :meth:`take_hit` after the stop.
    ``native``: check accesses in C when the helper is built (else in Python).
    """

    def __init__(self, uc: Uc, counter: CounterState, native: bool = True) -> None:
        self._uc = uc
        self._counter = counter
        self._watchpoints: list[Watchpoint] = []
        self._hooks: list[int] = []
        self._hit: WatchHit | None = None
        self._suspended = False
        self._lib = _load_native() if native else None
        self._state = WatchState()
        self._entries = (_Entry * 0)()
        # Registers saved at reads (see the module's docstring): one 16-byte buffer each, read and written back
        # in one batch. The Python twin keeps its save in _save (key: pc, block icount) and uses the buffers too.
        self._save_isa, self._pc_reg, regs = _saved_registers(uc)
        n = len(regs)
        self._save_ids = (ctypes.c_int * n)(*regs)
        self._save_buf = (ctypes.c_uint8 * (SAVED_REG_BYTES * n))()
        base = ctypes.addressof(self._save_buf)
        self._save_ptrs = (ctypes.c_void_p * n)(*(base + SAVED_REG_BYTES * i for i in range(n)))
        self._save: tuple[int, int, bytes] | None = None
        self._decoded: tuple[int, bool] = (-1, False)
        self._board_hit: tuple[int, Watchpoint, int, str] | None = None  # see note_board_access
        if self._lib is not None:
            st = self._state
            st.stop_reason = ctypes.pointer(ctypes.c_uint64.from_buffer(counter, CounterState.stop_reason.offset))
            st.fast_limit = ctypes.pointer(ctypes.c_uint64.from_buffer(counter, CounterState.fast_limit.offset))
            st.emu_stop = ctypes.cast(_ucmod.uclib.uc_emu_stop, ctypes.c_void_p)
            st.mem_read = ctypes.cast(_ucmod.uclib.uc_mem_read, ctypes.c_void_p)
            st.save_isa = int(self._save_isa)
            st.pc_reg = self._pc_reg
            st.reg_read = ctypes.cast(_ucmod.uclib.uc_reg_read, ctypes.c_void_p)
            st.reg_read_batch = ctypes.cast(_ucmod.uclib.uc_reg_read_batch, ctypes.c_void_p)
            st.block_icount = ctypes.pointer(ctypes.c_uint64.from_buffer(counter, CounterState.block_icount.offset))
            st.save_regs = ctypes.cast(self._save_ids, ctypes.POINTER(ctypes.c_int))
            st.save_values = ctypes.cast(self._save_ptrs, ctypes.POINTER(ctypes.c_void_p))
            st.n_save = n
            st.decoded_pc = _MASK64
            self._state_ptr = ctypes.cast(ctypes.pointer(st), ctypes.c_void_p)
            self._hook_fn = ctypes.cast(self._lib.chron_watch_hook, ctypes.c_void_p)

    @property
    def is_native(self) -> bool:
        """True when accesses are checked by the native helper."""
        return self._lib is not None

    @property
    def suspended(self) -> bool:
        """While True no watchpoint fires (stepping off a hit)."""
        return self._suspended

    @suspended.setter
    def suspended(self, value: bool) -> None:
        self._suspended = value
        self._state.suspended = int(value)

    def __bool__(self) -> bool:
        return bool(self._watchpoints)

    def add(self, watchpoint: Watchpoint) -> None:
        if watchpoint not in self._watchpoints:
            self._watchpoints.append(watchpoint)
            self._rearm()

    def remove(self, watchpoint: Watchpoint) -> None:
        if watchpoint in self._watchpoints:
            self._watchpoints.remove(watchpoint)
            self._rearm()

    def clear(self) -> None:
        self.replace([])

    def replace(self, watchpoints: list[Watchpoint]) -> None:
        """Watch exactly these (one re-arm, none when nothing changes)."""
        if set(watchpoints) != set(self._watchpoints):
            self._watchpoints = list(watchpoints)
            self._rearm()

    def __iter__(self) -> Iterator[Watchpoint]:
        return iter(list(self._watchpoints))

    def take_hit(self) -> WatchHit | None:
        """The hit that stopped the engine, if a watchpoint did (forgotten once taken)."""
        if self._lib is None:
            hit, self._hit = self._hit, None
            return hit
        st = self._state
        if not st.hit:
            return None
        st.hit = 0
        restore = None
        if st.is_write:
            if st.old_status != 0:
                raise WatchError(f"cannot save the {st.access_size} bytes written at {st.access_addr:#x}")
            restore = (int(st.access_addr), bytes(st.old[: st.access_size]))
        registers = None
        if st.hit_saved:
            if st.save_status != 0:
                raise WatchError(f"cannot save the registers at a read of {st.access_addr:#x} (error {st.save_status})")
            registers = bytes(self._save_buf)
        return WatchHit(self._watchpoints[st.hit_index], int(st.hit_addr), restore, registers)

    def begin_run(self) -> None:
        """Unicorn is about to start: registers saved before are stale (the caller may have changed them)."""
        self._save = None
        self._decoded = (-1, False)
        self._state.save_valid = 0
        self._state.decoded_pc = _MASK64  # (code at an address may differ after a restore)

    def put_back(self, hit: WatchHit) -> None:
        """Write back the registers the hit's load may already have written (nothing where none were saved)."""
        if hit.registers is None:
            return
        ctypes.memmove(self._save_buf, hit.registers, len(self._save_buf))
        status = _ucmod.uclib.uc_reg_write_batch(self._uc._uch, self._save_ids, self._save_ptrs, len(self._save_ids))
        if status != 0:
            raise RuntimeError(f"uc_reg_write_batch failed with status {status}")

    # -- accesses of the board's own (below Unicorn's hooks) -------------------------------------------
    def note_board_access(self, icount: int, is_write: bool, addr: int, length: int, by: str) -> None:
        """The board read or wrote these bytes itself at ``icount`` (Armv7-M exception entry and return): note
        the first watchpoint it hits there, for :meth:`take_board_hit` (``by``: who, for the report)."""
        if self._board_hit is not None and self._board_hit[0] == icount:
            return  # (only the first access between two instructions is reported)
        for watchpoint in self._watchpoints:
            hit_addr = watchpoint.hit_by(is_write, addr, length)
            if hit_addr is not None:
                self._board_hit = (icount, watchpoint, hit_addr, by)
                return

    def take_board_hit(self, icount: int) -> tuple[Watchpoint, int, str] | None:
        """The (watchpoint, address, who) a board access hit at ``icount``, if it is still watched (forgotten once
        taken; a hit noted at another icount is dropped)."""
        noted, self._board_hit = self._board_hit, None
        if noted is None or noted[0] != icount or noted[1] not in self._watchpoints:
            return None
        return noted[1], noted[2], noted[3]

    def forget_board_hit(self) -> None:
        """Drop a board access's hit not taken yet (the machine was restored)."""
        self._board_hit = None

    # -- hooks ---------------------------------------------------------------------------------------
    def _rearm(self) -> None:
        for handle in self._hooks:
            self._del_hook(handle)
        self._hooks = []
        self._hit = None
        self._state.hit = 0
        if self._lib is not None:
            self._entries = (_Entry * len(self._watchpoints))(
                *((w.addr, min(_MASK64, w.addr + w.length), int(w.kind)) for w in self._watchpoints)
            )
            self._state.entries = ctypes.cast(self._entries, ctypes.POINTER(_Entry))
            self._state.n_entries = len(self._watchpoints)
        for htype, spans in self._hook_ranges().items():
            self._hooks += [self._add_hook(htype, begin, end) for begin, end in spans]
        # Memory hooks are compiled into translated code: start from fresh translations.
        self._uc.ctl_flush_tb()

    def _hook_ranges(self) -> dict[int, list[tuple[int, int]]]:
        return hook_ranges(self._watchpoints, MULTI_LOAD_MAX if self._save_isa != SaveIsa.NONE else ACCESS_MAX)

    def _add_hook(self, htype: int, begin: int, end: int) -> int:
        if self._lib is None:
            return self._uc.hook_add(htype, self._on_access, begin=begin, end=end)
        return _add_raw_hook(self._uc, htype, self._hook_fn, self._state_ptr, begin, end)

    def _del_hook(self, handle: int) -> None:
        if self._lib is None:
            self._uc.hook_del(handle)
            return
        status = _ucmod.uclib.uc_hook_del(self._uc._uch, _ucmod.uc_hook_h(handle))
        if status != 0:
            raise RuntimeError(f"uc_hook_del failed with status {status}")

    def _on_access(self, uc: Uc, access: int, addr: int, size: int, value: int, _data: object) -> None:
        """The Python twin of ``chron_watch_hook``."""
        st = self._counter
        if self._suspended or st.stop_reason != StopReason.NONE:
            return
        is_write = access == UC_MEM_WRITE
        saving = self._save_isa != SaveIsa.NONE and not is_write
        pc = int(uc.reg_read(self._pc_reg)) if saving else 0  # (exact in a memory hook)
        for watchpoint in self._watchpoints:
            hit_addr = watchpoint.hit_by(is_write, addr, size)
            if hit_addr is None:
                continue
            # For a write, memory still holds the old bytes here (docs/unicorn-facts.md, "Watchpoints").
            restore = (addr, bytes(uc.mem_read(addr, size))) if is_write else None
            registers = None
            if saving:
                save = self._save
                if save is None or save[:2] != (pc, st.block_icount):
                    save = self._save_registers(pc)
                registers = save[2]
            self._hit = WatchHit(watchpoint, hit_addr, restore, registers)
            st.stop_reason = StopReason.EXTERNAL
            st.fast_limit = 0
            uc.emu_stop()
            return
        if saving:
            self._note_read(pc)

    def _save_registers(self, pc: int) -> tuple[int, int, bytes]:
        status = _ucmod.uclib.uc_reg_read_batch(self._uc._uch, self._save_ids, self._save_ptrs, len(self._save_ids))
        if status != 0:
            raise WatchError(f"cannot save the registers at pc {pc:#x} (error {status})")
        self._save = (pc, int(self._counter.block_icount), bytes(self._save_buf))
        return self._save

    def _note_read(self, pc: int) -> None:
        """The Python twin of watch.c's ``note_read``: save before the first access of a load of several."""
        save = self._save
        if save is not None and save[:2] == (pc, self._counter.block_icount):
            return
        if self._decoded[0] != pc:
            code = _read_physical(self._uc, pc, 4)  # (not through the MMU: see watch.c's note_read)
            if code is None and self._save_isa == SaveIsa.THUMB:
                code = _read_physical(self._uc, pc, 2)
            self._decoded = (pc, code is not None and is_multi_load(self._save_isa, int.from_bytes(code, "little")))
        if self._decoded[1]:
            self._save_registers(pc)


def _read_physical(uc: Uc, addr: int, size: int) -> bytes | None:
    try:
        return bytes(uc.mem_read(addr, size))
    except UcError:
        return None


def _load_native() -> ctypes.CDLL | None:
    """The native helper with its watch hook, or None (not built, ``CHRONICORN_NATIVE=0``, or too old)."""
    try:
        lib = open_native_library()
        if lib is None:
            return None
        if lib.chron_watch_size() != ctypes.sizeof(WatchState):
            raise RuntimeError("native watch helper does not match WatchState; rebuild it")
        lib.chron_watch_hook  # noqa: B018 - present
    except (OSError, AttributeError, RuntimeError) as exc:
        log.warning("native watch helper unusable (%s); checking watched accesses in Python", exc)
        return None
    return lib
