"""Watchpoints: memory hooks armed only while a watchpoint exists (they slow every access).

A hit stops the engine *before* the accessing instruction takes effect, as gdb
expects on RISC-V (docs/gdb-protocol-facts.md, "Watchpoints"): Unicorn has already performed a
write when the hook runs, so the hook saves the old bytes and the engine puts
them back after stopping; the instruction is then executed exactly once when
execution resumes (docs/unicorn-facts.md, "Watchpoints").
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from unicorn import UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE, UC_MEM_WRITE, Uc


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


class WatchpointSet:
    """The guest's watchpoints and the two memory hooks that serve them.

    ``on_hit(hit)`` is called from the hook; it returns True when it stops the
    engine for this hit (then the write is undone after the stop).
    """

    def __init__(self, uc: Uc, on_hit: Callable[[WatchHit], bool]) -> None:
        self._uc = uc
        self._on_hit = on_hit
        self._watchpoints: list[Watchpoint] = []
        self._hooks: list[int] = []
        self.suspended = False

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

    def _rearm(self) -> None:
        for handle in self._hooks:
            self._uc.hook_del(handle)
        self._hooks = []
        if self._watchpoints:
            self._hooks = [self._uc.hook_add(UC_HOOK_MEM_WRITE | UC_HOOK_MEM_READ, self._on_access)]
        # Memory hooks are compiled into translated code: start from fresh translations.
        self._uc.ctl_flush_tb()

    def _on_access(self, uc: Uc, access: int, addr: int, size: int, value: int, _data: object) -> None:
        if self.suspended:
            return
        is_write = access == UC_MEM_WRITE
        for watchpoint in self._watchpoints:
            hit_addr = watchpoint.hit_by(is_write, addr, size)
            if hit_addr is None:
                continue
            # For a write, memory still holds the old bytes here (docs/unicorn-facts.md, "Watchpoints").
            restore = (addr, bytes(uc.mem_read(addr, size))) if is_write else None
            self._on_hit(WatchHit(watchpoint, hit_addr, restore))
            return
