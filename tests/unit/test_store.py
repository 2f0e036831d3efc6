"""The snapshot store: lookup, shared memory counted once, eviction near and far from the focus."""

from __future__ import annotations

from machine.ram import NODE_PAGES, PAGE, PageTable
from machine.state import MachineState
from replay.snapshot import Snapshot
from replay.store import SnapshotStore

RAM = PAGE * NODE_PAGES * 4


def snapshot(icount: int, table: PageTable) -> Snapshot:
    return Snapshot(MachineState(icount, None, table, (), ()), 0)  # type: ignore[arg-type]


def table_with(*pages: tuple[int, bytes]) -> PageTable:
    return PageTable.from_chunks(RAM, [(index * PAGE, data) for index, data in pages])


def test_at_or_before() -> None:
    store = SnapshotStore()
    for icount in (0, 100, 200):
        store.add(snapshot(icount, PageTable.empty(RAM)))
    assert store.at_or_before(150).icount == 100 and store.at_or_before(200).icount == 200
    assert store.icounts() == [0, 100, 200]


def test_shared_pages_count_once_and_are_freed_with_their_last_holder() -> None:
    store = SnapshotStore()
    base = table_with((0, b"a" * PAGE))
    store.add(snapshot(0, base))
    one = store.stats().bytes_used
    store.add(snapshot(10, base))  # shares every page and node: only its fixed overhead
    shared = store.stats().bytes_used - one
    assert shared <= PAGE  # the context, device and board fields: no RAM
    store.add(snapshot(20, table_with((0, b"a" * PAGE), (1, b"b" * PAGE))))  # two new pages (new objects)
    assert store.stats().bytes_used - one >= 2 * shared + 2 * PAGE
    store.add(snapshot(20, base))  # replaced: its pages are released
    assert store.stats().bytes_used - one == 2 * shared


def test_eviction_keeps_icount_zero_pins_and_density_near_the_focus() -> None:
    budget_snapshots = 12
    store = SnapshotStore(budget=budget_snapshots * (PAGE + 5000), focus_scale=1000)
    store.focus = 100_000
    for icount in range(0, 100_001, 1000):  # each with its own page
        taken = snapshot(icount, table_with((0, icount.to_bytes(8, "little") * (PAGE // 8))))
        (store.pin if icount == 40_000 else store.add)(taken)
    held = store.icounts()
    assert store.stats().bytes_used <= store.budget and store.stats().evicted > 0
    assert 0 in held and 40_000 in held
    near = [i for i in held if i >= 90_000]
    far = [i for i in held if 10_000 < i < 40_000]
    assert len(near) > len(far)  # denser where the user works, thinned with distance


def test_named_snapshots_survive_eviction() -> None:
    store = SnapshotStore(budget=3 * (PAGE + 5000))
    keep = snapshot(5, table_with((2, b"k" * PAGE)))
    store.name("keep", keep)
    for icount in range(0, 20):
        store.add(snapshot(icount * 10, table_with((0, bytes([icount]) * PAGE))))
    assert store.named("keep") is keep and store.names() == [("keep", 5)]
