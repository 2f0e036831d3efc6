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
"""

from __future__ import annotations

import ctypes
import enum
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from unicorn import UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE, UC_MEM_WRITE, Uc
from unicorn.unicorn_py3 import unicorn as _ucmod  # private: pinned unicorn==2.1.4

from .icount import CounterState, StopReason, _add_raw_hook, open_native_library

log = logging.getLogger(__name__)

# The widest access Unicorn reports to a memory hook (TCG splits anything wider than 8 bytes): a hook's range
# starts this much minus one below the watched bytes, because Unicorn checks only an access's first address
# against the range, and an access that starts below the watched bytes may still overlap them.
ACCESS_MAX = 16
WATCH_OLD_MAX = 64  # bytes of a write the native hook can save (mirrors watch.c)
_MASK64 = (1 << 64) - 1


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
    """Which watchpoint fired, at which address, and the bytes to put back (writes)."""

    watchpoint: Watchpoint
    addr: int
    restore: tuple[int, bytes] | None


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
    ]


def hook_ranges(watchpoints: list[Watchpoint]) -> dict[int, list[tuple[int, int]]]:
    """Inclusive address ranges to hook, per hook type, that every access hitting a watchpoint starts in.

    Write watchpoints need only the write hook, read ones only the read hook; ranges that overlap or
    touch are merged (each hook costs a bound check on every access of its type).
    """
    spans: dict[int, list[tuple[int, int]]] = {UC_HOOK_MEM_READ: [], UC_HOOK_MEM_WRITE: []}
    for w in watchpoints:
        if w.length <= 0:
            continue  # watches nothing
        span = (max(0, w.addr - (ACCESS_MAX - 1)), min(_MASK64, w.addr + w.length - 1))
        if w.kind != WatchKind.READ:
            spans[UC_HOOK_MEM_WRITE].append(span)
        if w.kind != WatchKind.WRITE:
            spans[UC_HOOK_MEM_READ].append(span)
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
        if self._lib is not None:
            st = self._state
            st.stop_reason = ctypes.pointer(ctypes.c_uint64.from_buffer(counter, CounterState.stop_reason.offset))
            st.fast_limit = ctypes.pointer(ctypes.c_uint64.from_buffer(counter, CounterState.fast_limit.offset))
            st.emu_stop = ctypes.cast(_ucmod.uclib.uc_emu_stop, ctypes.c_void_p)
            st.mem_read = ctypes.cast(_ucmod.uclib.uc_mem_read, ctypes.c_void_p)
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
        return WatchHit(self._watchpoints[st.hit_index], int(st.hit_addr), restore)

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
        return hook_ranges(self._watchpoints)

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
        for watchpoint in self._watchpoints:
            hit_addr = watchpoint.hit_by(is_write, addr, size)
            if hit_addr is None:
                continue
            # For a write, memory still holds the old bytes here (docs/unicorn-facts.md, "Watchpoints").
            restore = (addr, bytes(uc.mem_read(addr, size))) if is_write else None
            self._hit = WatchHit(watchpoint, hit_addr, restore)
            st.stop_reason = StopReason.EXTERNAL
            st.fast_limit = 0
            uc.emu_stop()
            return


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
