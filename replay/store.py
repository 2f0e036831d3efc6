"""The snapshot store: lookup by icount, page sharing, eviction under a memory budget.

Snapshots share RAM pages and page-table nodes (see :mod:`machine.ram`); the
store counts each shared object once, so ``bytes_used`` is the memory the
snapshots really hold. When it exceeds the budget the store evicts the snapshot
whose loss hurts least: the one whose neighbours are closest together, weighted
by its distance from the *focus* (where the user is working). So snapshots stay
dense near the focus and thin out with distance (age, for a live run).
icount 0, named snapshots and keyframes (states after debugger writes) are never evicted.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass

from machine.ram import NODE_PAGES, PAGE

from .snapshot import Snapshot

log = logging.getLogger(__name__)

DEFAULT_BUDGET = 256 << 20
_NODE_BYTES = 8 * NODE_PAGES + 64  # a tuple of NODE_PAGES references
_FIXED_BYTES = 4096  # CPU context, device and board fields, bookkeeping (measured: ~2-3 KiB)


@dataclass(frozen=True, slots=True)
class StoreStats:
    """What ``monitor history`` shows about the store."""

    count: int
    named: int
    bytes_used: int
    budget: int
    evicted: int


class SnapshotStore:
    """Snapshots by icount, at most one per icount, under a byte budget."""

    def __init__(self, budget: int = DEFAULT_BUDGET, focus_scale: int = 1 << 24) -> None:
        self.budget = budget
        self.focus = 0
        self._focus_scale = focus_scale
        self._icounts: list[int] = []
        self._by_icount: dict[int, Snapshot] = {}
        self._named: dict[str, Snapshot] = {}
        self._pinned: set[int] = {0}  # icounts never evicted
        self._refs: dict[int, list[object]] = {}  # id -> [count, object, bytes]
        self._bytes = 0
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
        return StoreStats(len(self._icounts), len(self._named), self._bytes, self.budget, self._evicted)

    # -- adding and evicting ---------------------------------------------------------------
    def add(self, snapshot: Snapshot) -> None:
        """Hold ``snapshot`` (replacing one at the same icount), then evict down to the budget."""
        old = self._by_icount.get(snapshot.icount)
        if old is not None:
            self._release(old)
        else:
            bisect.insort(self._icounts, snapshot.icount)
        self._by_icount[snapshot.icount] = snapshot
        self._retain(snapshot)
        self._evict()

    def pin(self, snapshot: Snapshot) -> None:
        """Hold ``snapshot`` and never evict it (a keyframe of history)."""
        self._pinned.add(snapshot.icount)
        if self._by_icount.get(snapshot.icount) is not snapshot:
            self.add(snapshot)

    def name(self, name: str, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` under ``name`` until replaced (never evicted)."""
        old = self._named.get(name)
        if old is not None:
            self._release(old)
        self._named[name] = snapshot
        self._retain(snapshot)

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
            self._release(self._by_icount.pop(victim))
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
    def _retain(self, snapshot: Snapshot) -> None:
        self._bytes += _FIXED_BYTES
        for node in snapshot.state.ram.nodes:
            if node is not None and self._incref(node, _NODE_BYTES):
                for page in node:
                    if page is not None:
                        self._incref(page, PAGE)

    def _release(self, snapshot: Snapshot) -> None:
        self._bytes -= _FIXED_BYTES
        for node in snapshot.state.ram.nodes:
            if node is not None and self._decref(node):
                for page in node:
                    if page is not None:
                        self._decref(page)

    def _incref(self, obj: object, size: int) -> bool:
        """Count a reference; True when ``obj`` is new to the store."""
        entry = self._refs.get(id(obj))
        if entry is not None:
            entry[0] += 1  # type: ignore[operator]
            return False
        self._refs[id(obj)] = [1, obj, size]  # holding obj keeps its id unique
        self._bytes += size
        return True

    def _decref(self, obj: object) -> bool:
        """Drop a reference; True when ``obj`` is no longer held."""
        entry = self._refs[id(obj)]
        entry[0] -= 1  # type: ignore[operator]
        if entry[0]:
            return False
        del self._refs[id(obj)]
        self._bytes -= entry[2]  # type: ignore[operator]
        return True
