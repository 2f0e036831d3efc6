"""Breakpoints: exact stops before the instruction, never written into guest memory, cheap when not hit."""

from __future__ import annotations

import pytest

from machine.loader import load_image
from machine.results import RunKind
from tests.conftest import expected_output, guest, make_machine, run_machine


def test_breakpoint_stops_before_the_instruction_at_the_right_icount(xlen: str) -> None:
    path = guest(xlen, "hello")
    uart_puts = load_image(path).symbols["uart_puts"]
    machine = make_machine(path)
    machine.add_breakpoint(uart_puts)
    hit = machine.run()
    assert hit.kind == RunKind.BREAKPOINT and hit.pc == uart_puts
    # The same moment reached by icount alone is the same state: the breakpoint changed nothing.
    probe = make_machine(path)
    assert probe.run(hit.icount).pc == uart_puts
    assert probe.digest() == machine.digest()


@pytest.mark.parametrize("symbol", ["uart_puts", "uart_putc", "main"])
def test_breakpoint_hits_are_exactly_the_executions_of_its_address(xlen: str, symbol: str) -> None:
    """Resuming from a hit goes on to the next one; the hits are what an instruction trace shows."""
    path = guest(xlen, "hello")
    addr = load_image(path).symbols[symbol]
    traced = make_machine(path)
    executions: list[int] = []
    traced.enable_trace(lambda icount, pc, code: executions.append(icount) if pc == addr else None)
    traced.run()
    out = bytearray()
    machine = make_machine(path, out=out)
    machine.add_breakpoint(addr)
    hits = []
    while (result := machine.run()).kind == RunKind.BREAKPOINT:
        assert result.pc == addr
        hits.append(result.icount)
    assert result.kind == RunKind.EXITED
    assert hits == executions and hits
    assert bytes(out) == expected_output(xlen, "hello")


def test_breakpoint_is_not_written_into_memory(xlen: str) -> None:
    path = guest(xlen, "hello")
    main = load_image(path).symbols["main"]
    machine = make_machine(path)
    before = bytes(machine.uc.mem_read(main, 4))
    machine.add_breakpoint(main)
    assert bytes(machine.uc.mem_read(main, 4)) == before
    assert machine.run().pc == main
    assert bytes(machine.uc.mem_read(main, 4)) == before


def test_removed_breakpoint_no_longer_fires(xlen: str) -> None:
    """A deleted ranged hook keeps firing until its range is flushed (unicorn #1640): we flush."""
    path = guest(xlen, "hello")
    uart_putc = load_image(path).symbols["uart_putc"]
    machine = make_machine(path)
    machine.add_breakpoint(uart_putc)
    assert machine.run().kind == RunKind.BREAKPOINT  # translated with the hook
    machine.remove_breakpoint(uart_putc)
    assert machine.run().kind == RunKind.EXITED


def test_breakpoint_added_after_translation_fires(xlen: str) -> None:
    """Code translated before the hook existed would never see it (unicorn #2200): we flush."""
    path = guest(xlen, "compute")
    traced = make_machine(path)
    seen: dict[int, list[int]] = {}
    traced.enable_trace(lambda icount, pc, code: seen.setdefault(pc, []).append(icount))
    traced.run(20_000)
    pc, icounts = next((pc, ics) for pc, ics in seen.items() if len(ics) >= 3 and pc >= 0x8000_0000)
    machine = make_machine(path)
    machine.run(icounts[1] + 1)  # the code at pc has run (and been translated) twice without a breakpoint
    machine.add_breakpoint(pc)
    again = machine.run()
    assert again.kind == RunKind.BREAKPOINT and (again.pc, again.icount) == (pc, icounts[2])


@pytest.mark.parametrize("name", ["timer", "echo"])
def test_breakpoint_in_an_interrupt_handler(xlen: str, name: str) -> None:
    path = guest(xlen, name)
    handler = load_image(path).symbols["trap_handler"]
    schedule = [(20_000, b"x"), (40_000, b"q")] if name == "echo" else None
    straight = run_machine(path, schedule=schedule)
    machine = make_machine(path, schedule=schedule)
    machine.add_breakpoint(handler)
    hits = 0
    while (result := machine.run()).kind == RunKind.BREAKPOINT:
        hits += 1
    assert hits >= 2
    assert result == straight.result
    assert machine.digest() == straight.machine.digest()


def test_breakpoint_at_the_limit_does_not_fire_early(xlen: str) -> None:
    path = guest(xlen, "hello")
    main = load_image(path).symbols["main"]
    first = make_machine(path)
    first.add_breakpoint(main)
    hit = first.run()
    machine = make_machine(path)
    machine.add_breakpoint(main)
    stop = machine.run(hit.icount)  # the limit is exactly the breakpoint's moment
    assert stop.kind == RunKind.LIMIT and stop.pc == main
    again = machine.run()  # resuming there: we stand on it, it does not fire again
    assert again.kind != RunKind.BREAKPOINT or again.icount > hit.icount
