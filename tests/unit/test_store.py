"""The snapshot store: lookup, shared memory counted once, eviction near and far from the focus."""

from __future__ import annotations

import pytest

from machine.ram import NODE_PAGES, PAGE, PageTable
from machine.state import MachineState
from replay.snapshot import Snapshot
from replay.store import SnapshotBudgetError, SnapshotStore

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


def test_a_snapshot_held_by_icount_and_by_name_counts_once() -> None:
    store = SnapshotStore()
    taken = snapshot(10, table_with((0, b"a" * PAGE)))
    store.add(taken)
    used = store.stats().bytes_used
    store.name("here", taken)  # the same objects: nothing more
    assert store.stats().bytes_used == used and store.stats().pinned_bytes > 0
    store.name("here", taken)  # saved again under the same name: replaced, not counted twice
    assert store.stats().bytes_used == used and store.stats().named == 1


def test_costs_count_pages_nodes_images_and_the_fixed_part() -> None:
    """What a page, a node and a RAM image cost besides their bytes (issue 11: the store undercounted ~2x)."""
    store = SnapshotStore()
    store.add(snapshot(0, PageTable.empty(RAM)))
    base = store.stats().bytes_used
    store.add(snapshot(10, table_with((0, b"a" * PAGE), (1, b"b" * PAGE))))
    grown = store.stats().bytes_used - base
    fixed = store.fixed_bytes(snapshot(10, PageTable.empty(RAM)))
    assert fixed >= 200  # the Snapshot and MachineState objects, the store's record
    assert grown >= fixed + 2 * (PAGE + 33) + (8 * NODE_PAGES + 40) + 8 * 4


def test_a_name_past_the_budget_is_refused_and_evictable_snapshots_make_room() -> None:
    each = SnapshotStore().fixed_bytes(snapshot(0, PageTable.empty(RAM))) + 2 * PAGE  # about one snapshot
    store = SnapshotStore(budget=8 * each)
    for icount in range(0, 60, 10):  # evictable ones, filling the budget
        store.add(snapshot(icount, table_with((0, bytes([icount]) * PAGE))))
    saved = []
    with pytest.raises(SnapshotBudgetError, match="pinned snapshots .* hold") as refused:
        for n in range(20):
            store.name(f"n{n}", snapshot(100 + n, table_with((1, bytes([n]) * PAGE))))
            saved.append(n)
            assert store.stats().bytes_used <= store.budget  # room made by evicting
    assert 2 <= len(saved) < 20 and refused.value.budget == store.budget
    assert store.named(f"n{len(saved)}") is None  # the refused one holds nothing
    stats = store.stats()
    assert stats.bytes_used <= stats.budget and stats.pinned_bytes <= stats.budget and stats.evicted > 0
    # Replacing a name with a snapshot of the same size fits; deleting one frees room for another.
    store.name("n0", snapshot(200, table_with((1, b"r" * PAGE))))
    assert store.named("n0").icount == 200  # type: ignore[union-attr]
    assert store.delete("n1").icount == 101 and store.named("n1") is None
    store.name("another", snapshot(300, table_with((1, b"x" * PAGE))))
    with pytest.raises(KeyError):
        store.delete("n1")


def test_a_keyframe_is_checked_against_the_pinned_part_replacing_the_one_at_its_icount() -> None:
    each = SnapshotStore().fixed_bytes(snapshot(0, PageTable.empty(RAM))) + 2 * PAGE
    store = SnapshotStore(budget=4 * each)
    store.pin(snapshot(10, table_with((0, b"k" * PAGE))))
    store.pin(snapshot(20, table_with((0, b"l" * PAGE))))
    store.check_pin(snapshot(20, table_with((0, b"m" * PAGE))))  # replaces the keyframe at 20: fits
    with pytest.raises(SnapshotBudgetError, match="debugger write"):
        store.check_pin(snapshot(30, table_with((0, b"n" * PAGE))), new_pages=8, what="a debugger write")
    before = store.stats()
    store.add(snapshot(20, PageTable.empty(RAM)))  # a pinned snapshot stays where it is
    assert store.stats() == before and store.at_or_before(20).state.ram.page(0) == b"l" * PAGE
