"""The snapshot store: lookup by icount, page sharing, eviction under a memory budget, pins within it.

Snapshots share RAM pages and page-table nodes (see :mod:`machine.ram`); the
store counts each shared object once, so ``bytes_used`` is the memory the
snapshots really hold. When it exceeds the budget the store evicts the snapshot
whose loss hurts least: the one whose neighbours are closest together, weighted
by its distance from the *focus* (where the user is working). So snapshots stay
dense near the focus and thin out with distance (age, for a live run).

*Pinned* snapshots are never evicted: icount 0, named snapshots (``monitor
snapshot save``) and keyframes (states after debugger writes). A pin that would
take the pinned part past the budget is refused (:class:`SnapshotBudgetError`,
checked by :meth:`SnapshotStore.check_pin` before a debugger write, raised by
:meth:`SnapshotStore.name`); evictable snapshots are evicted to make room for
one that fits. Only the start and keyframes pinned without a check (a
recording's own, part of its history) can take it past the budget (a warning
is logged).

What a snapshot costs, measured on the rv32 virt board (128 MiB of RAM) with
``scripts/bench_snapshots.py`` (process VmRSS growth per snapshot, Python
3.11, glibc): a snapshot that changes no RAM page costs ~7 KiB, one that
changes a page ~17-19 KiB. The parts, each counted once however many snapshots
share it:

- the snapshot itself (:meth:`SnapshotStore.fixed_bytes`): Unicorn's CPU context (a native
  allocation of ``uc_context_size`` bytes, 968 for rv32, plus its header and
  Python wrapper: ``_CONTEXT_BYTES``), and the Python objects of the
  MachineState, the devices' states (the PLIC's alone is ~5 KiB) and the board,
  sized with ``sys.getsizeof`` once per device set (~6 KiB) and then reused;
- a RAM image (``PageTable``): its top-level tuple of one reference per 256 KiB
  of RAM (4 KiB for 128 MiB), new whenever any page changed: ``_table_bytes``;
- a node of 64 page references: ``_NODE_BYTES`` (568 bytes, malloc'd);
- a page: 4096 bytes plus the ``bytes`` header (33) and malloc's (~16):
  ``_PAGE_BYTES``;
- the store's own record of each object it holds (~126 bytes: ``_REF_BYTES``).

Before these were counted (a flat 4 KiB per snapshot, 4 KiB per page) the
store reported 4.0 KiB for a named snapshot that costs 7.1 KiB of RSS, 10.6 KiB
for a periodic one that costs 17.6 and 9.7 KiB for a keyframe that costs 18.9;
now it reports 7.3, 16.6 and 17.7 KiB against 7.3, 17.9 and 18.6 KiB of RSS
(within 10%). Process memory grows by at most the budget plus
:data:`MEMORY_SLACK`: what the allocator keeps of freed snapshots
(fragmentation), the snapshot being added before the store evicts for it, and
what RSS shows besides (a test holds the store to it: 8 MiB budget, 3,000
saves and writes, RSS +10.5 MiB; +72 MiB before pins were bounded).
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from machine.ram import NODE_PAGES, PAGE, PageTable

from .snapshot import Snapshot

log = logging.getLogger(__name__)

DEFAULT_BUDGET = 256 << 20
MEMORY_SLACK = 32 << 20
"""Process memory (RSS) held for snapshots stays within the budget plus this (allocator fragmentation)."""

_MALLOC = 16  # glibc's header and rounding per allocation
_REF_BYTES = 128  # the store's record of one held object: a _Ref, its dict slot and key (measured: 126)
_PAGE_BYTES = PAGE + 33 + _MALLOC + _REF_BYTES  # a 4 KiB bytes object
_NODE_BYTES = 8 * NODE_PAGES + 56 + _MALLOC + _REF_BYTES  # a tuple of NODE_PAGES references (with its GC header)
_CONTEXT_BYTES = 64 + _MALLOC + 288  # a Unicorn context besides its uc_context_size bytes: header, Python wrapper


def _table_bytes(table: PageTable) -> int:
    """A RAM image: the PageTable object and its top-level tuple of node references."""
    return 48 + 8 * len(table.nodes) + 56 + 2 * _MALLOC + _REF_BYTES


class SnapshotBudgetError(Exception):
    """A pin (named snapshot, keyframe) that would take the pinned snapshots past the budget."""

    def __init__(self, what: str, needed: int, pinned: int, budget: int) -> None:
        super().__init__(
            f"{what} needs {_mib(needed)} more of the snapshot budget: pinned snapshots (named ones, keyframes "
            f"of debugger writes, the start) hold {_mib(pinned)} of {_mib(budget)}"
        )
        self.needed, self.pinned, self.budget = needed, pinned, budget


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


@dataclass(frozen=True, slots=True)
class StoreStats:
    """What ``monitor history`` shows about the store."""

    count: int
    named: int
    bytes_used: int
    budget: int
    evicted: int
    pinned_bytes: int = 0  # the part that is never evicted (icount 0, named snapshots, keyframes)


class _Ref:
    """The store's record of one object it holds: holders, pinned holders, the object, its cost."""

    __slots__ = ("count", "pins", "obj", "size")

    def __init__(self, obj: object, size: int) -> None:
        self.count = 0
        self.pins = 0
        self.obj = obj  # holding obj keeps its id unique
        self.size = size


class SnapshotStore:
    """Snapshots by icount, at most one per icount, under a byte budget; named snapshots besides."""

    def __init__(self, budget: int = DEFAULT_BUDGET, focus_scale: int = 1 << 24) -> None:
        self.budget = budget
        self.focus = 0
        self._focus_scale = focus_scale
        self._icounts: list[int] = []
        self._by_icount: dict[int, Snapshot] = {}
        self._named: dict[str, Snapshot] = {}
        self._pinned: set[int] = {0}  # icounts never evicted
        self._refs: dict[int, _Ref] = {}  # id -> what the store holds of the object
        self._fixed: dict[tuple[object, ...], int] = {}  # device set -> a snapshot's fixed bytes
        self._bytes = 0
        self._pinned_bytes = 0
        self._evicted = 0
        self._warned = False

    # -- lookup ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._icounts)

    def at_or_before(self, icount: int) -> Snapshot:
        """The latest snapshot at or before ``icount`` (icount 0 is always held)."""
        i = bisect.bisect_right(self._icounts, icount) - 1
        if i < 0:
            raise LookupError(f"no snapshot at or before icount {icount}")
        return self._by_icount[self._icounts[i]]

    def has(self, icount: int) -> bool:
        return icount in self._by_icount

    def icounts(self) -> list[int]:
        return list(self._icounts)

    def stats(self) -> StoreStats:
        return StoreStats(len(self._icounts), len(self._named), self._bytes, self.budget, self._evicted,
                          self._pinned_bytes)  # fmt: skip

    # -- adding and evicting ---------------------------------------------------------------
    def add(self, snapshot: Snapshot) -> None:
        """Hold ``snapshot`` (replacing one at the same icount), then evict down to the budget.

        A pinned snapshot at that icount stays (the state there is the same; a keyframe is replaced only by
        :meth:`pin`), so no pinned snapshot is ever held outside the store's count.
        """
        icount = snapshot.icount
        old = self._by_icount.get(icount)
        if old is not None:
            if icount in self._pinned:
                return
            self._release(old, pinned=False)
        else:
            bisect.insort(self._icounts, icount)
        self._by_icount[icount] = snapshot
        self._retain(snapshot, pinned=icount in self._pinned)
        self._evict()

    def pin(self, snapshot: Snapshot) -> None:
        """Hold ``snapshot`` and never evict it (a keyframe of history), even past the budget: call
        :meth:`check_pin` first where the pin can still be refused."""
        icount = snapshot.icount
        old = self._by_icount.get(icount)
        was_pinned = icount in self._pinned
        self._pinned.add(icount)
        if old is snapshot:
            if not was_pinned:
                self._pin(snapshot)
            self._evict()
            return
        if old is not None:
            self._release(old, pinned=was_pinned)
        else:
            bisect.insort(self._icounts, icount)
        self._by_icount[icount] = snapshot
        self._retain(snapshot, pinned=True)
        self._evict()

    def check_pin(self, snapshot: Snapshot, name: str | None = None, new_pages: int = 0, what: str = "") -> None:
        """Raise :class:`SnapshotBudgetError` unless pinning ``snapshot`` (under ``name``, replacing the
        snapshot of that name; else as the keyframe at its icount, replacing the one there) keeps the pinned
        part within the budget; ``new_pages``: that many RAM pages will differ from ``snapshot``'s (a
        debugger write still to be made), each a new page and node in a new RAM image."""
        extra = new_pages * (_PAGE_BYTES + _NODE_BYTES) + (_table_bytes(snapshot.state.ram) if new_pages else 0)
        replaced = self._named.get(name) if name is not None else None
        if name is None and snapshot.icount in self._pinned:
            replaced = self._by_icount.get(snapshot.icount)
        if replaced is not None:
            self._unpin(replaced)  # counted as gone while we look (restored below)
        try:
            needed = self._pin_cost(snapshot) + extra
            pinned = self._pinned_bytes
        finally:
            if replaced is not None:
                self._pin(replaced)
        if pinned + needed > self.budget:
            what = what or (f"snapshot {name!r}" if name is not None else f"a keyframe at icount {snapshot.icount}")
            raise SnapshotBudgetError(what, needed, pinned, self.budget)

    def name(self, name: str, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` under ``name`` (replacing the one of that name) until deleted, never evicted.

        Raises :class:`SnapshotBudgetError` (holding nothing new) when that would take the pinned snapshots past
        the budget; evictable ones are evicted to make room.
        """
        self.check_pin(snapshot, name)
        old = self._named.get(name)
        self._named[name] = snapshot
        self._retain(snapshot, pinned=True)
        if old is not None:
            self._release(old, pinned=True)
        self._evict()

    def delete(self, name: str) -> Snapshot:
        """Forget the snapshot named ``name`` (KeyError if none); its memory is freed unless still shared."""
        snapshot = self._named.pop(name)
        self._release(snapshot, pinned=True)
        return snapshot

    def named(self, name: str) -> Snapshot | None:
        return self._named.get(name)

    def names(self) -> list[tuple[str, int]]:
        """``(name, icount)`` of the named snapshots, by icount."""
        return sorted(((n, s.icount) for n, s in self._named.items()), key=lambda item: (item[1], item[0]))

    def _evict(self) -> None:
        while self._bytes > self.budget:
            victim = self._cheapest_loss()
            if victim is None:
                if not self._warned:
                    log.warning("snapshot budget %d bytes exceeded by snapshots that cannot be evicted", self.budget)
                    self._warned = True
                return
            self._icounts.remove(victim)
            self._release(self._by_icount.pop(victim), pinned=False)
            self._evicted += 1

    def _cheapest_loss(self) -> int | None:
        """The icount of the snapshot whose removal leaves the smallest focus-weighted gap."""
        icounts = self._icounts
        best, best_cost = None, 0.0
        for i in range(1, len(icounts)):
            icount = icounts[i]
            if icount in self._pinned:
                continue
            gap = (icounts[i + 1] if i + 1 < len(icounts) else icount) - icounts[i - 1]
            cost = gap / (1.0 + abs(icount - self.focus) / self._focus_scale)
            if best is None or cost < best_cost:
                best, best_cost = icount, cost
        return best

    # -- counting shared memory once ----------------------------------------------------------
    # A snapshot holds its RAM image, the image its nodes, a node its pages: each object is counted once,
    # when its first holder comes (``count``), and once more in the pinned part when its first pinned holder
    # comes (``pins``); children are visited only on those transitions, so holding a snapshot that shares its
    # image with one already held costs O(1).
    def _retain(self, snapshot: Snapshot, pinned: bool) -> None:
        stack: list[object] = [snapshot]
        while stack:
            obj = stack.pop()
            ref = self._refs.get(id(obj))
            if ref is None:
                ref = self._refs[id(obj)] = _Ref(obj, self._cost(obj))
                self._bytes += ref.size
                stack.extend(_children(obj))
            ref.count += 1
        if pinned:
            self._pin(snapshot)

    def _release(self, snapshot: Snapshot, pinned: bool) -> None:
        if pinned:
            self._unpin(snapshot)
        stack: list[object] = [snapshot]
        while stack:
            obj = stack.pop()
            ref = self._refs[id(obj)]
            ref.count -= 1
            if not ref.count:
                del self._refs[id(obj)]
                self._bytes -= ref.size
                stack.extend(_children(obj))

    def _pin(self, snapshot: Snapshot) -> None:
        """Count a pinned holder of ``snapshot`` (already held)."""
        stack: list[object] = [snapshot]
        while stack:
            ref = self._refs[id(stack.pop())]
            ref.pins += 1
            if ref.pins == 1:
                self._pinned_bytes += ref.size
                stack.extend(_children(ref.obj))

    def _unpin(self, snapshot: Snapshot) -> None:
        stack: list[object] = [snapshot]
        while stack:
            ref = self._refs[id(stack.pop())]
            ref.pins -= 1
            if not ref.pins:
                self._pinned_bytes -= ref.size
                stack.extend(_children(ref.obj))

    def _pin_cost(self, snapshot: Snapshot) -> int:
        """Bytes the pinned part would grow by if ``snapshot`` were pinned now (nothing changes)."""
        seen: set[int] = set()
        total = 0
        stack: list[object] = [snapshot]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            ref = self._refs.get(id(obj))
            if ref is not None and ref.pins:
                continue
            total += ref.size if ref is not None else self._cost(obj)
            stack.extend(_children(obj))
        return total

    def _cost(self, obj: object) -> int:
        if isinstance(obj, Snapshot):
            return self.fixed_bytes(obj)
        if isinstance(obj, PageTable):
            return _table_bytes(obj)
        if isinstance(obj, tuple):
            return _NODE_BYTES
        return _PAGE_BYTES

    def fixed_bytes(self, snapshot: Snapshot) -> int:
        """What ``snapshot`` costs besides its RAM image: the CPU context and the Python objects of the state.

        The Python part is sized once per device set (walking a state costs more than taking it) and reused.
        """
        state = snapshot.state
        key = tuple((name, type(device)) for name, device in state.devices)
        python = self._fixed.get(key)
        if python is None:
            python = self._fixed[key] = _deep_size(snapshot, {id(state.context)})
            log.debug("a snapshot's fixed part: %d bytes of Python objects", python)
        context = state.context
        size = getattr(context, "size", None)
        native = size + _CONTEXT_BYTES if isinstance(size, int) else 0
        return python + native + _REF_BYTES


def _children(obj: object) -> Iterator[object]:
    """What a held object holds in turn: a snapshot its RAM image and its disks' overlays (page tables too), an
    image its nodes, a node its pages."""
    if isinstance(obj, Snapshot):
        yield obj.state.ram
        yield from (disk.overlay.table for disk in obj.state.disks)
    elif isinstance(obj, PageTable):
        yield from (node for node in obj.nodes if node is not None)
    elif isinstance(obj, tuple):
        yield from (page for page in obj if page is not None)


_SHARED = (bool, str, type(None))


def _deep_size(obj: object, seen: set[int]) -> int:
    """``sys.getsizeof`` of ``obj`` and what it holds (tuples, dataclass fields), each object once, but not a
    RAM image (counted apart) nor what is shared anyway: singletons, strings (names, interned), small ints."""
    if isinstance(obj, (*_SHARED, PageTable)) or id(obj) in seen or (type(obj) is int and -5 <= obj <= 256):
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if type(obj) is tuple:
        size += sum(_deep_size(item, seen) for item in obj)
    elif dataclasses.is_dataclass(obj):
        size += sum(_deep_size(getattr(obj, field.name), seen) for field in dataclasses.fields(obj))
    return size
