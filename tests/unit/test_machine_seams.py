"""The Machine methods replay/ and gdbstub/ use instead of its internals: arm, set_pc, RAM images."""

from __future__ import annotations

import pytest

from machine.boards.virt import RAM_BASE
from machine.icount import native_library_path
from machine.machine import Machine
from machine.ram import NODE_PAGES, PAGE, PageTable, is_shared_between
from machine.results import RunKind
from machine.watch import WatchKind, Watchpoint
from tests.conftest import guest, make_machine, require_tool


def timer(native: bool = True) -> Machine:
    return make_machine(guest("rv32", "timer"), native=native)


def count_flushes(machine: Machine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    uc = machine.uc
    flush_tb, remove_cache = uc.ctl_flush_tb, uc.ctl_remove_cache
    monkeypatch.setattr(uc, "ctl_flush_tb", lambda: (calls.append("tb"), flush_tb())[1])
    monkeypatch.setattr(uc, "ctl_remove_cache", lambda a, b: (calls.append("range"), remove_cache(a, b))[1])
    return calls


def test_arm_reports_exactly_the_armed_breakpoints_and_watchpoints() -> None:
    machine = timer()
    entry = machine.image.symbols["main"]
    ticks = machine.image.symbols["ticks"]
    machine.arm([entry], [])
    hit = machine.run()
    assert (hit.kind, hit.pc) == (RunKind.BREAKPOINT, entry)
    machine.arm([], [Watchpoint(WatchKind.WRITE, ticks, 4)])
    hit = machine.run()
    assert hit.kind == RunKind.WATCHPOINT and ticks <= hit.fault_addr < ticks + 4
    machine.arm((), ())
    assert machine.run().kind == RunKind.EXITED


def test_arm_changes_nothing_when_nothing_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    machine = timer()
    watch = [Watchpoint(WatchKind.WRITE, machine.image.symbols["ticks"], 4)]
    machine.arm([machine.image.symbols["main"]], watch)
    calls = count_flushes(machine, monkeypatch)
    machine.arm({machine.image.symbols["main"]}, list(reversed(watch)))
    assert calls == []
    machine.arm([machine.image.symbols["main"]], [])  # watchpoints off: one full flush
    assert calls == ["tb"]


def test_set_pc_moves_execution_and_refuses_impossible_addresses() -> None:
    machine = timer()
    machine.run(100)
    main = machine.image.symbols["main"]
    machine.set_pc(main)
    assert machine.pc == main
    with pytest.raises(ValueError, match="32-bit"):
        machine.set_pc(1 << 32)
    with pytest.raises(ValueError):
        machine.set_pc(-4)


def test_properties_say_how_the_machine_works() -> None:
    machine = timer()
    assert machine.checkpoint_interval == machine.counter.checkpoint_interval > 0
    assert machine.is_counter_native == machine.counter.is_native
    assert machine.is_ram_tracked == machine.ram_pages.is_tracked


def test_unwritten_ranges_are_told_by_page_identity() -> None:
    machine = make_machine(guest("rv32", "traps"))
    require_tool(machine.is_ram_tracked, "page-protection tracking unavailable (no native helper)")
    machine.run(16_000)  # start.S has cleared .bss and the stack (zero pages written, in node 0)
    earlier = machine.ram_image()
    machine.run(18_000)
    later = machine.ram_image()
    pages = range(len(earlier.nodes) * NODE_PAGES)
    written = [i for i in pages if later.page(i) is not None and earlier.page(i) is not later.page(i)]
    kept = [i for i in pages if earlier.page(i) is not None and earlier.page(i) is later.page(i)]
    assert written and kept

    def unwritten(index: int, offset: int = 0, length: int = 4) -> bool:
        return machine.is_unwritten_between(earlier, later, RAM_BASE + index * PAGE + offset, length)

    assert not unwritten(written[0], 8)
    assert unwritten(kept[0]) and unwritten(kept[0], 0, PAGE)
    assert not unwritten(kept[0], PAGE - 2) or kept[0] + 1 in kept  # a range spanning two pages
    # All-zero pages have no object: the node's identity decides (and an all-zero node proves nothing).
    fdt_node = kept[-1] // NODE_PAGES  # the device tree, at the end of RAM: never written
    assert earlier.nodes[fdt_node] is later.nodes[fdt_node]
    zero_in_kept_node = next(i for i in range(fdt_node * NODE_PAGES, (fdt_node + 1) * NODE_PAGES) if
                             earlier.page(i) is None)  # fmt: skip
    assert unwritten(zero_in_kept_node)
    assert earlier.nodes[0] is not later.nodes[0]
    assert not unwritten(next(i for i in range(NODE_PAGES) if earlier.page(i) is None))
    assert earlier.nodes[100] is None and not unwritten(100 * NODE_PAGES)
    # Not wholly in RAM, or empty: never vouched for.
    end = RAM_BASE + machine.config.ram_size
    for addr, length in ((RAM_BASE - 4, 8), (end - 2, 4), (end, 4), (RAM_BASE + kept[0] * PAGE, 0)):
        assert not machine.is_unwritten_between(earlier, later, addr, length)
    assert unwritten(written[0]) is False and machine.is_unwritten_between(later, later, RAM_BASE, 4)


def test_without_tracking_nothing_is_vouched_for() -> None:
    machine = timer(native=False)
    assert not machine.is_ram_tracked
    image = machine.ram_image()
    addr = RAM_BASE + next(iter(image.chunks()))[0]
    assert not machine.is_unwritten_between(image, image, addr, 4)


def test_images_of_different_ram_sizes_are_not_compared() -> None:
    with pytest.raises(ValueError, match="different RAM sizes"):
        is_shared_between(PageTable.empty(1 << 20), PageTable.empty(2 << 20), 0, 4)


@pytest.mark.parametrize("native", [True, False])
def test_restoring_a_state_drops_translations_of_code_it_rewrites(native: bool) -> None:
    """A restore invalidates only the rewritten pages' translations (M-mode, no paging): code patched and run
    after a state was taken must not survive as a stale translation once that state is restored."""
    if native:
        require_tool(native_library_path(), "the native helper (pip install -e .)")
    machine = make_machine(guest("rv32", "compute"), native=native)
    machine.run(200_000)
    state = machine.save_state()
    reference = make_machine(guest("rv32", "compute"), native=native)
    reference.run(250_000)
    for _ in range(2):
        machine.memory.write(machine.pc, (0x00728293).to_bytes(4, "little"))  # addi t0, t0, 7: other results
        machine.run(machine.icount + 1_000)  # the patched code is translated and run
        machine.restore_state(state)
        machine.run(250_000)
        assert machine.digest() == reference.digest()
        machine.restore_state(state)
