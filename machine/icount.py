"""Exact instruction counting (icount) and exact stops, near native speed.

A Unicorn block hook adds each block's instruction count to ``icount`` and
stops the engine *before* a block that would cross the hard ``limit``. The
remainder is then run under a code hook ranged to that single block, which
stops at exactly ``limit`` (``land``). After any other mid-block stop (fault,
MMIO access, breakpoint) the count is corrected from the pc with
:meth:`Counter.correct`.

Two interchangeable implementations share one ctypes structure
(:class:`CounterState`, the mirror of ``struct chron_counter`` in
``native/icount.c``): :class:`NativeCounter`, whose hooks are C functions
registered through the binding's ctypes layer (docs/unicorn-facts.md, "Speed:
what counting instructions costs": the block hook in C costs 1-10 % of bare speed), and :class:`PythonCounter`, the
automatic fallback when the helper is not built, which runs the same algorithm
with Python hooks (about 30x slower, identical results).
"""

from __future__ import annotations

import ctypes
import enum
import importlib.util
import logging
import os
from array import array
from dataclasses import dataclass
from typing import Protocol

from unicorn import UC_HOOK_BLOCK, UC_HOOK_CODE, Uc
from unicorn.unicorn_py3 import unicorn as _ucmod  # private: pinned unicorn==2.1.4

log = logging.getLogger(__name__)

NO_LIMIT = (1 << 64) - 1
CACHE_SLOTS = 8192
MAX_TRAPPED_CSRS = 32
MAX_TRAPPED_WORDS = 8
UC_PROT_EXEC = 4
MAX_NEW_SPECIALS = 64
MAX_EXEC = 16384  # distinct blocks noted per execution-index window (mirrors icount.c)


class Isa(enum.IntEnum):
    """How instruction lengths are decoded (mirrors ISA_* in icount.c)."""

    FIXED4 = 0
    RISCV_C = 1
    A64 = 2  # fixed 4-byte words, with trapped instructions noted
    THUMB = 3  # Thumb-2: 16-bit halfwords, 32-bit when the first one's top five bits are 0b11101..0b11111


class StopReason(enum.IntEnum):
    """Why the counter stopped the engine (mirrors STOP_* in icount.c)."""

    NONE = 0
    LIMIT = 1
    SOFT = 2
    SPECIAL = 3
    EXTERNAL = 4
    UNREADABLE = 5


class _CacheSlot(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint64), ("size", ctypes.c_uint16), ("insns", ctypes.c_uint16),
                ("epoch", ctypes.c_uint32)]  # fmt: skip


class _ExecBlock(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint64), ("end", ctypes.c_uint64)]


_U64_FIELDS = [
    "fast_limit",
    "icount",
    "limit",
    "soft_limit",
    "block_icount",
    "block_addr",
    "block_size",
    "block_insns",
    "in_block",
    "stop_reason",
    "landing",
    "isa",
    "cache_misses",
    "n_trapped_csrs",
]


class CounterState(ctypes.Structure):
    """ctypes mirror of ``struct chron_counter``; both counters use it."""

    _fields_ = [(name, ctypes.c_uint64) for name in _U64_FIELDS] + [
        ("trapped_csrs", ctypes.c_uint64 * MAX_TRAPPED_CSRS),
        ("n_trapped_words", ctypes.c_uint64),
        ("trapped_masks", ctypes.c_uint64 * MAX_TRAPPED_WORDS),
        ("trapped_words", ctypes.c_uint64 * MAX_TRAPPED_WORDS),
        ("miss_addr", ctypes.c_uint64),
        ("miss_size", ctypes.c_uint64),
        ("miss_insns", ctypes.c_uint64),
        ("n_new_specials", ctypes.c_uint64),
        ("new_specials", ctypes.c_uint64 * MAX_NEW_SPECIALS),
        ("emu_stop", ctypes.c_void_p),
        ("vmem_read", ctypes.c_void_p),
        ("cache", _CacheSlot * CACHE_SLOTS),
        ("exec_epoch", ctypes.c_uint64),
        ("n_exec", ctypes.c_uint64),
        ("exec_overflow", ctypes.c_uint64),
        ("exec", _ExecBlock * MAX_EXEC),
        ("it_end", ctypes.c_uint64),
    ]


def _decode_lengths(isa: Isa, code: bytes) -> list[int]:
    """Offsets of the instructions that start in ``code`` (RISC-V: low bits 11 = 32-bit)."""
    if isa in (Isa.FIXED4, Isa.A64):
        return list(range(0, len(code) - len(code) % 4, 4))
    offsets = []
    off = 0
    while off < len(code):
        offsets.append(off)
        if isa == Isa.THUMB:
            wide = off + 1 < len(code) and code[off + 1] & 0xF8 >= 0xE8
            off += 4 if wide else 2
            if not wide:  # an IT block retires as one instruction (as Unicorn executes it)
                off += it_block_bytes(code, off - 2)
        else:
            off += 4 if code[off] & 3 == 3 else 2
    return offsets


def it_block_bytes(code: bytes, at: int) -> int:
    """Bytes of the instructions made conditional by the Thumb IT instruction at ``at`` (0: not an IT)."""
    if at + 2 > len(code):
        return 0
    hw = int.from_bytes(code[at : at + 2], "little")
    if hw & 0xFF00 != 0xBF00 or not hw & 0xF:
        return 0
    count = 4 if hw & 1 else 3 if hw & 2 else 2 if hw & 4 else 1
    off = at + 2
    for _ in range(count):
        if off + 2 > len(code):
            break
        off += 4 if code[off + 1] & 0xF8 >= 0xE8 else 2
    return off - at - 2


def thumb_insn(code: bytes, off: int) -> int:
    """The Thumb instruction at ``off`` as the trapped patterns see it: a halfword, or (first << 16) | second."""
    first = int.from_bytes(code[off : off + 2], "little")
    if first & 0xF800 >= 0xE800 and off + 4 <= len(code):
        return first << 16 | int.from_bytes(code[off + 2 : off + 4], "little")
    return first


def trapped_csr_of(insn: int, csrs: set[int] | frozenset[int]) -> bool:
    """True when a 32-bit RISC-V instruction is a CSR access to one of ``csrs``."""
    funct3 = (insn >> 12) & 7
    return insn & 0x7F == 0x73 and funct3 not in (0, 4) and (insn >> 20) in csrs


@dataclass(frozen=True, slots=True)
class TrappedInstructions:
    """Instructions the board handles: CSR accesses to ``csrs`` and ``patterns`` of (mask, value)."""

    csrs: frozenset[int]
    patterns: frozenset[tuple[int, int]]

    def matches(self, insn: int) -> bool:
        return any(insn & mask == value for mask, value in self.patterns) or trapped_csr_of(insn, self.csrs)


class Counter(Protocol):
    """What the machine needs from an icount implementation."""

    state: CounterState
    is_native: bool
    checkpoint_interval: int  # instructions between checkpoints (input polling, Ctrl-C)

    def insns_before(self, pc: int) -> int:
        """Instructions of the current block that lie before ``pc``."""

    def code_hook_for_landing(self) -> tuple[int, object]:
        """Return (hook type id, callback) for the ranged landing code hook."""

    def clear_cache(self) -> None:
        """Forget cached block instruction counts (after code is rewritten)."""

    def remember_block(self, addr: int, size: int, insns: int) -> None:
        """Cache a block's count (after the specials found in it have been hooked)."""

    def take_new_specials(self) -> list[int]:
        """Addresses of trapped CSR instructions seen in new blocks since the last call."""

    def take_executed(self, next_window: bool) -> list[int] | None:
        """The code executed since the current execution-index window began: a flat list of sorted,
        disjoint ``start, end`` address pairs (blocks less than :data:`EXEC_GAP` bytes apart merged), or
        None if more distinct blocks ran than are noted. ``next_window``: a new window begins now (the
        first call starts the index)."""


EXEC_GAP = 64  # bytes between executed blocks that the index merges into one range


class _CounterBase:
    """Shared set-up and the landing/correction algorithm."""

    is_native = False

    def __init__(self, uc: Uc, isa: Isa, trapped: TrappedInstructions) -> None:
        self.uc = uc
        self.state = CounterState()
        st = self.state
        st.isa = int(isa)
        st.limit = NO_LIMIT
        st.soft_limit = NO_LIMIT
        st.emu_stop = ctypes.cast(_ucmod.uclib.uc_emu_stop, ctypes.c_void_p)
        st.vmem_read = ctypes.cast(_ucmod.uclib.uc_vmem_read, ctypes.c_void_p)
        self._isa = isa
        self.set_trapped(trapped)

    def set_trapped(self, trapped: TrappedInstructions) -> None:
        """The instructions new blocks are scanned for (before the first run: blocks already seen keep theirs)."""
        if len(trapped.csrs) > MAX_TRAPPED_CSRS or len(trapped.patterns) > MAX_TRAPPED_WORDS:
            raise ValueError("too many trapped instructions")
        st = self.state
        for i, csr in enumerate(sorted(trapped.csrs)):
            st.trapped_csrs[i] = csr
        st.n_trapped_csrs = len(trapped.csrs)
        for i, (mask, value) in enumerate(sorted(trapped.patterns)):
            st.trapped_masks[i] = mask
            st.trapped_words[i] = value
        st.n_trapped_words = len(trapped.patterns)
        self._trapped = trapped

    def clear_cache(self) -> None:
        ctypes.memset(ctypes.addressof(self.state.cache), 0, ctypes.sizeof(self.state.cache))

    def _read(self, addr: int, size: int) -> bytes:
        """Code bytes at a virtual address, through the guest MMU (b"" if unreadable)."""
        return read_code(self.uc, addr, size)

    def take_new_specials(self) -> list[int]:
        """Addresses of trapped CSR instructions seen in new blocks since the last call."""
        st = self.state
        found = [st.new_specials[i] for i in range(st.n_new_specials)]
        st.n_new_specials = 0
        return found


class NativeCounter(_CounterBase):
    """Counter whose hooks are the C functions of ``machine/native/icount.c``."""

    is_native = True
    checkpoint_interval = 1 << 22  # ~30 ms of guest time at native speed

    def __init__(self, uc: Uc, isa: Isa, trapped: TrappedInstructions, lib: ctypes.CDLL) -> None:
        super().__init__(uc, isa, trapped)
        if lib.chron_counter_size() != ctypes.sizeof(CounterState):
            raise RuntimeError("native icount helper does not match CounterState; rebuild it")
        self._lib = lib
        lib.chron_insns_before.restype = ctypes.c_uint64
        lib.chron_insns_before.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64]
        lib.chron_cache_put.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_uint32]
        lib.chron_take_exec.restype = ctypes.c_int64
        lib.chron_take_exec.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int]
        self._state_ptr = ctypes.cast(ctypes.pointer(self.state), ctypes.c_void_p)
        self._hooks = [_add_raw_hook(uc, UC_HOOK_BLOCK, lib.chron_block_hook, self._state_ptr, 1, 0)]

    def insns_before(self, pc: int) -> int:
        return int(self._lib.chron_insns_before(self._state_ptr, self.uc._uch, pc))

    def code_hook_for_landing(self) -> tuple[int, object]:
        return UC_HOOK_CODE, ctypes.cast(self._lib.chron_code_hook, ctypes.c_void_p)

    def remember_block(self, addr: int, size: int, insns: int) -> None:
        self._lib.chron_cache_put(self._state_ptr, addr, size, insns)

    def take_executed(self, next_window: bool) -> list[int] | None:
        n = self._lib.chron_take_exec(self._state_ptr, EXEC_GAP, int(next_window))
        if n < 0:
            return None
        pairs = array("Q")
        pairs.frombytes(ctypes.string_at(ctypes.addressof(self.state.exec), n * ctypes.sizeof(_ExecBlock)))
        return pairs.tolist()


class PythonCounter(_CounterBase):
    """Pure-Python twin of the native helper (same state, same algorithm)."""

    checkpoint_interval = 1 << 18  # ~0.1 s of guest time at fallback speed

    def __init__(self, uc: Uc, isa: Isa, trapped: TrappedInstructions) -> None:
        super().__init__(uc, isa, trapped)
        self._cache: dict[tuple[int, int], int] = {}
        self._executed: set[tuple[int, int]] = set()
        uc.hook_add(UC_HOOK_BLOCK, self._block_hook)

    def take_executed(self, next_window: bool) -> list[int] | None:
        st = self.state
        pairs = None if st.exec_overflow else merge_ranges(sorted(self._executed), EXEC_GAP)
        if next_window:
            self._executed = set()
            st.exec_overflow = 0
            st.exec_epoch = st.exec_epoch + 1
        return pairs

    def clear_cache(self) -> None:
        super().clear_cache()
        self._cache.clear()

    def _decode(self, addr: int, end: int, note_specials: bool) -> int:
        code = self._read(addr, end - addr)
        offsets = _decode_lengths(self._isa, code)
        if note_specials and self._isa != Isa.FIXED4:
            st = self.state
            for off in offsets:
                if self._isa == Isa.THUMB:
                    if self._thumb_trapped(code, off) and st.n_new_specials < MAX_NEW_SPECIALS:
                        st.new_specials[st.n_new_specials] = addr + off
                        st.n_new_specials += 1
                elif off + 4 <= len(code) and (self._isa == Isa.A64 or code[off] & 3 == 3):
                    insn = int.from_bytes(code[off : off + 4], "little")
                    if self._trapped.matches(insn) and st.n_new_specials < MAX_NEW_SPECIALS:
                        st.new_specials[st.n_new_specials] = addr + off
                        st.n_new_specials += 1
        return len(offsets)

    def _thumb_trapped(self, code: bytes, off: int) -> bool:
        """The Thumb instruction at ``off`` is trapped, or it is an IT instruction with a trapped member (the
        block retires as one instruction, so the IT instruction stands for it: see icount.c)."""
        if self._trapped.matches(thumb_insn(code, off)):
            return True
        member, end = off + 2, off + 2 + it_block_bytes(code, off)
        while member < end:
            if self._trapped.matches(thumb_insn(code, member)):
                return True
            member += 4 if code[member + 1] & 0xF8 >= 0xE8 else 2
        return False

    def _block_insns(self, addr: int, size: int) -> int:
        n = self._cache.get((addr, size))
        if n:
            return n
        st = self.state
        st.cache_misses += 1
        before = st.n_new_specials
        n = self._decode(addr, addr + size, True)
        if st.n_new_specials == before:
            self._cache[(addr, size)] = n
        else:
            st.miss_addr, st.miss_size, st.miss_insns = addr, size, n
        return n

    def remember_block(self, addr: int, size: int, insns: int) -> None:
        self._cache[(addr, size)] = insns

    def _stop(self, uc: Uc, reason: StopReason) -> None:
        self.state.stop_reason = int(reason)
        uc.emu_stop()

    def _block_hook(self, uc: Uc, addr: int, size: int, _data: object) -> None:
        st = self.state
        if st.stop_reason != StopReason.NONE:
            return
        n = self._block_insns(addr, size)
        if n == 0 and size != 0:
            st.miss_addr = addr
            self._stop(uc, StopReason.UNREADABLE)
        elif st.n_new_specials:
            self._stop(uc, StopReason.SPECIAL)
        elif st.icount >= st.limit or (not st.landing and st.icount + n > st.limit):
            self._stop(uc, StopReason.LIMIT)
        elif st.icount >= st.soft_limit:
            self._stop(uc, StopReason.SOFT)
        else:
            if st.exec_epoch:
                if len(self._executed) < MAX_EXEC:
                    self._executed.add((addr, addr + (size or 1)))
                else:
                    st.exec_overflow = 1
            st.block_icount = st.icount
            st.block_addr = addr
            st.block_size = size
            st.block_insns = n
            st.in_block = 0
            st.it_end = 0
            st.icount += n

    def _code_hook(self, uc: Uc, addr: int, size: int, _data: object) -> None:
        st = self.state
        if st.stop_reason != StopReason.NONE:
            return
        if self._isa == Isa.THUMB:
            if st.block_addr <= addr < st.it_end:
                return  # inside an IT block: counted with its IT instruction (see icount.c)
            it = it_block_bytes(read_code(uc, addr, 20), 0)
            st.it_end = addr + 2 + it if it else 0
        if st.block_icount + st.in_block >= st.limit:
            st.icount = st.block_icount + st.in_block
            self._stop(uc, StopReason.LIMIT)
            return
        st.in_block += 1

    def insns_before(self, pc: int) -> int:
        st = self.state
        if pc <= st.block_addr:
            return 0
        return self._decode(st.block_addr, pc, False)

    def code_hook_for_landing(self) -> tuple[int, object]:
        return UC_HOOK_CODE, self._code_hook


def merge_ranges(ranges: list[tuple[int, int]], gap: int) -> list[int]:
    """Sorted ``(start, end)`` ranges merged where they overlap or lie less than ``gap`` apart, flattened."""
    out: list[int] = []
    for start, end in ranges:
        if out and start <= out[-1] + gap:
            out[-1] = max(out[-1], end)
        else:
            out += [start, end]
    return out


def read_code(uc: Uc, addr: int, size: int) -> bytes:
    """Read ``size`` bytes of code at virtual ``addr`` as the CPU fetches them (b"" if unreadable).

    ``uc_mem_read`` reads physical memory; with paging on, code must be read
    through the MMU (``uc_vmem_read``, which the binding does not wrap).
    """
    buf = ctypes.create_string_buffer(size)
    status = _ucmod.uclib.uc_vmem_read(uc._uch, ctypes.c_uint64(addr), UC_PROT_EXEC, buf, ctypes.c_size_t(size))
    return buf.raw if status == 0 else b""


def _add_raw_hook(uc: Uc, htype: int, cfunc: object, user_data: ctypes.c_void_p, begin: int, end: int) -> int:
    """Register a C callback as a Unicorn hook (binding-private API, pinned version)."""
    handle = _ucmod.uc_hook_h()
    status = _ucmod.uclib.uc_hook_add(
        uc._uch,
        ctypes.byref(handle),
        htype,
        ctypes.cast(cfunc, ctypes.c_void_p),
        user_data,
        ctypes.c_uint64(begin),
        ctypes.c_uint64(end),
    )
    if status != 0:
        raise RuntimeError(f"uc_hook_add failed with status {status}")
    return int(handle.value)


def add_landing_hook(counter: Counter, uc: Uc, begin: int, end: int) -> int:
    """Arm the counter's landing code hook on [begin, end] and return its handle."""
    htype, cb = counter.code_hook_for_landing()
    if isinstance(counter, NativeCounter):
        return _add_raw_hook(uc, htype, cb, counter._state_ptr, begin, end)
    return uc.hook_add(htype, cb, begin=begin, end=end)


def del_landing_hook(counter: Counter, uc: Uc, handle: int) -> None:
    """Remove a hook made by :func:`add_landing_hook` (flush its range afterwards)."""
    if isinstance(counter, NativeCounter):
        status = _ucmod.uclib.uc_hook_del(uc._uch, _ucmod.uc_hook_h(handle))
        if status != 0:
            raise RuntimeError(f"uc_hook_del failed with status {status}")
    else:
        uc.hook_del(handle)


def native_library_path() -> str | None:
    """Path of the built native helper, or None when it was not built."""
    spec = importlib.util.find_spec("machine._icount_native")
    if spec is None or not spec.origin or not os.path.exists(spec.origin):
        return None
    return spec.origin


def open_native_library() -> ctypes.CDLL | None:
    """The built native helper (icount, page tracking, watch checks), or None when it is not built or
    ``CHRONICORN_NATIVE=0`` asks for the pure-Python fallbacks (OSError: it is there but cannot be loaded)."""
    path = native_library_path()
    if path is None or os.environ.get("CHRONICORN_NATIVE", "1") == "0":
        return None
    return ctypes.CDLL(path)


def make_counter(uc: Uc, isa: Isa, trapped: TrappedInstructions, prefer_native: bool = True) -> Counter:
    """Build the native counter when the helper is built (and wanted), else the fallback.

    The environment variable ``CHRONICORN_NATIVE=0`` forces the fallback.
    """
    if prefer_native:
        try:
            lib = open_native_library()
            if lib is not None:
                return NativeCounter(uc, isa, trapped, lib)
            if os.environ.get("CHRONICORN_NATIVE", "1") != "0":
                log.info("native icount helper not built; using the Python fallback")
        except (OSError, RuntimeError) as exc:
            log.warning("native icount helper unusable (%s); using the Python fallback", exc)
    return PythonCounter(uc, isa, trapped)


class A64TimerMirror(ctypes.Structure):
    """ctypes mirror of ``struct a64_timer`` (native/icount.c): what the native MRS hook needs to answer the
    generic timer's reads inside ``emu_start``."""

    _fields_ = [
        ("counter", ctypes.c_void_p),
        ("reg_read", ctypes.c_void_p),
        ("reg_write", ctypes.c_void_p),
        ("pc_reg", ctypes.c_uint64),
        ("shift", ctypes.c_uint64),
        ("bias_ns", ctypes.c_uint64),
        ("ctl", ctypes.c_uint64 * 2),
        ("cval", ctypes.c_uint64 * 2),
        ("reads", ctypes.c_uint64),
    ]


UC_HOOK_INSN = 1 << 1


def add_a64_timer_hook(counter: Counter, uc: Uc, mirror: A64TimerMirror, mrs_insn: int) -> int | None:
    """Answer AArch64 generic-timer MRS reads natively (None: no native helper; the board then traps them)."""
    if not isinstance(counter, NativeCounter):
        return None
    lib = counter._lib
    mirror.counter = ctypes.cast(counter._state_ptr, ctypes.c_void_p)
    mirror.reg_read = ctypes.cast(_ucmod.uclib.uc_reg_read, ctypes.c_void_p)
    mirror.reg_write = ctypes.cast(_ucmod.uclib.uc_reg_write, ctypes.c_void_p)
    handle = _ucmod.uc_hook_h()
    status = _ucmod.uclib.uc_hook_add(uc._uch, ctypes.byref(handle), UC_HOOK_INSN,
                                      ctypes.cast(lib.chron_a64_mrs_hook, ctypes.c_void_p),
                                      ctypes.cast(ctypes.pointer(mirror), ctypes.c_void_p),
                                      ctypes.c_uint64(1), ctypes.c_uint64(0), ctypes.c_int(mrs_insn))  # fmt: skip
    if status != 0:
        raise RuntimeError(f"uc_hook_add (MRS) failed with status {status}")
    return int(handle.value)
