"""Watchpoints: stop before the accessing instruction takes effect; nothing half-done or done twice."""

from __future__ import annotations

from elftools.elf.elffile import ELFFile

from machine.results import RunKind
from machine.watch import WatchKind
from tests.conftest import guest, make_machine, run_machine


def symbol(path, name: str) -> tuple[int, int]:  # noqa: ANN001
    """Address and size of a data symbol (static variables included)."""
    with open(path, "rb") as f:
        for sym in ELFFile(f).get_section_by_name(".symtab").iter_symbols():
            if sym.name == name:
                return sym["st_value"], sym["st_size"]
    raise KeyError(name)


def test_write_watchpoint_stops_before_each_write_and_changes_nothing(xlen: str) -> None:
    path = guest(xlen, "timer")
    addr, size = symbol(path, "ticks")
    straight = run_machine(path)
    machine = make_machine(path)
    machine.add_watchpoint(WatchKind.WRITE, addr, size)
    values = []
    while (result := machine.run()).kind == RunKind.WATCHPOINT:
        assert addr <= result.fault_addr < addr + size and result.watch_kind == WatchKind.WRITE
        # Before the store: memory still holds the old value; stepping performs it once.
        old = int.from_bytes(machine.memory.read(addr, size), "little")
        step = machine.run(result.icount + 1)
        assert step.kind == RunKind.LIMIT
        new = int.from_bytes(machine.memory.read(addr, size), "little")
        values.append((old, new))
    assert result == straight.result  # same exit, same icount: no write lost or repeated
    assert machine.digest() == straight.machine.digest()
    clearing = [v for v in values if v == (0, 0)]  # start.S clearing .bss (word by word on rv64)
    increments = values[len(clearing) :]
    assert clearing and len(increments) > 3
    assert all(new == old + 1 for old, new in increments)  # the handler's ticks++


def test_read_watchpoint_reports_rwatch_and_access_reports_both(xlen: str) -> None:
    path = guest(xlen, "timer")
    addr, size = symbol(path, "ticks")
    reads = make_machine(path)
    reads.add_watchpoint(WatchKind.READ, addr, size)
    hit = reads.run()
    assert hit.kind == RunKind.WATCHPOINT and hit.watch_kind == WatchKind.READ
    accesses = make_machine(path)
    accesses.add_watchpoint(WatchKind.ACCESS, addr, size)
    kinds = set()
    for _ in range(6):
        result = accesses.run()
        if result.kind != RunKind.WATCHPOINT:
            break
        kinds.add(result.watch_kind)
    assert kinds == {WatchKind.ACCESS}


def test_resuming_on_a_hit_does_not_report_it_again(xlen: str) -> None:
    path = guest(xlen, "timer")
    addr, size = symbol(path, "ticks")
    machine = make_machine(path)
    machine.add_watchpoint(WatchKind.WRITE, addr, size)
    first = machine.run()
    second = machine.run()  # gdb may resume with the watchpoint still inserted
    assert second.kind == RunKind.WATCHPOINT and second.icount > first.icount


def test_removed_watchpoint_and_no_hooks_left(xlen: str) -> None:
    path = guest(xlen, "timer")
    addr, size = symbol(path, "ticks")
    machine = make_machine(path)
    machine.add_watchpoint(WatchKind.WRITE, addr, size)
    assert machine.run().kind == RunKind.WATCHPOINT
    machine.remove_watchpoint(WatchKind.WRITE, addr, size)
    assert not machine.engine.watchpoints
    assert machine.run().kind == RunKind.EXITED


def test_a_write_by_the_first_instruction_after_a_breakpoint_is_reported(xlen: str) -> None:
    """Only a watchpoint stop we resume from is stepped over, not any first instruction."""
    path = guest(xlen, "timer")
    addr, size = symbol(path, "ticks")
    finder = make_machine(path)
    finder.add_watchpoint(WatchKind.WRITE, addr, size)
    while (hit := finder.run()).kind == RunKind.WATCHPOINT and int.from_bytes(
        finder.memory.read(addr, size), "little"
    ) == 0:
        finder.run(hit.icount + 1)  # skip the .bss clearing writes
    store_pc, store_icount = hit.pc, hit.icount  # the handler's ticks++ store
    machine = make_machine(path)
    machine.add_breakpoint(store_pc)
    while (stop := machine.run()).icount < store_icount:
        assert stop.kind == RunKind.BREAKPOINT
    assert (stop.kind, stop.icount) == (RunKind.BREAKPOINT, store_icount)
    machine.add_watchpoint(WatchKind.WRITE, addr, size)
    watched = machine.run()
    assert (watched.kind, watched.icount, watched.pc) == (RunKind.WATCHPOINT, store_icount, store_pc)
