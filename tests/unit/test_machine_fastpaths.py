"""The machine's fast paths give exactly what its general paths give.

- ``g``: :meth:`RegisterFile.read_all` (one batch read) against :meth:`RegisterFile.read` of each register;
- ``m``: :meth:`DebugMemory.read` (one native read when the region read last covers it) against the region walk;
- ``Z0``/``z0``: parked breakpoint hooks (taken back when gdb inserts the breakpoint again) against deleting
  each hook as its breakpoint is removed (``max_parked_breakpoints = 0``);
- 1-instruction runs landing at once against the general path (``lands_single_steps = False``).
"""

from __future__ import annotations

import functools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unicorn import riscv_const as rc

from machine.arch.riscv import GPR_IDS
from machine.arch.riscv_regs import g_packet_registers
from machine.boards.virt import RAM_BASE
from machine.debug_memory import DebugMemory
from machine.engine import MAX_PARKED_BREAKPOINTS
from machine.machine import Machine
from machine.results import RunKind, RunResult
from machine.watch import WatchKind, Watchpoint
from tests.conftest import XLENS, guest, make_machine

# -- g -------------------------------------------------------------------------------------------------------


@functools.cache
def _hello(xlen: str) -> Machine:
    machine = make_machine(guest(xlen, "hello"))
    machine.run(500)
    return machine


@settings(max_examples=80, deadline=None)
@given(
    xlen=st.sampled_from(XLENS),
    values=st.lists(
        st.integers(0, 2**64 - 1) | st.sampled_from([0, 1, 2**31, 2**32 - 1, 2**63, 2**64 - 1]),
        min_size=32,
        max_size=32,
    ),  # fmt: skip
    priv=st.sampled_from([0, 1, 3]),
)
def test_g_packet_is_every_register_read_alone(xlen: str, values: list[int], priv: int) -> None:
    machine = _hello(xlen)
    uc, mask = machine.uc, machine.arch.mask
    state = machine.save_state()
    try:
        for uc_reg, value in zip(GPR_IDS[1:], values, strict=False):
            uc.reg_write(uc_reg, value & mask)
        uc.reg_write(rc.UC_RISCV_REG_PC, values[31] & mask & ~1)
        uc.reg_write(rc.UC_RISCV_REG_PRIV, priv)
        regs = machine.registers
        one_by_one = b"".join(regs.read(r.regnum) for r in g_packet_registers(machine.arch))
        size = machine.arch.xlen // 8
        assert regs.read_all() == one_by_one
        assert len(one_by_one) == 33 * size and one_by_one[:size] == bytes(size)  # x0
        expected = [(v & mask).to_bytes(size, "little") for v in values[:31]]
        assert one_by_one[size:32 * size] == b"".join(expected)  # fmt: skip
        # G then g: what was written (x0 stays zero).
        data = bytes(size) + b"".join(reversed(expected)) + one_by_one[32 * size :]
        regs.write_all(data)
        assert regs.read_all() == data
    finally:
        machine.restore_state(state)


# -- m -------------------------------------------------------------------------------------------------------


def _outcome(read: object, addr: int, length: int) -> object:
    try:
        return read(addr, length)  # type: ignore[operator]
    except Exception as exc:  # noqa: BLE001 - the error must be the same too
        return (type(exc), str(exc))


def _edges(machine: Machine) -> list[int]:
    points = [0, 2**64 - 8, RAM_BASE + 0x1234]
    for region in machine.regions:
        points += [region.base, region.end]
    return points


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    xlen=st.sampled_from(XLENS),
    reads=st.lists(
        st.tuples(st.integers(0, 16), st.integers(-16, 16), st.sampled_from([0, 1, 2, 4, 8, 16, 33, 0x1000])),
        min_size=1,
        max_size=30,
    ),  # fmt: skip
)
def test_debug_memory_reads_match_the_region_walk(xlen: str, reads: list[tuple[int, int, int]]) -> None:
    """Reads at region edges, across them, in MMIO and unmapped memory, in any order (the fast path depends on
    the region read last): same bytes, same errors."""
    machine = _hello(xlen)
    fast = machine.memory
    walk = DebugMemory(machine.uc, machine.regions, machine.devices, lambda: None)
    points = _edges(machine)
    for point, delta, length in reads:
        addr = max(0, points[point % len(points)] + delta)
        got = _outcome(fast.read, addr, length)
        assert got == _outcome(walk._read_regions, addr, length)
        ram_offset = addr - RAM_BASE
        if isinstance(got, bytes) and ram_offset >= 0 and ram_offset + length <= machine.config.ram_size:
            assert got == machine.ram[ram_offset : ram_offset + length]
            assert type(got) is bytes


def test_debug_memory_read_after_a_write_sees_it() -> None:
    machine = make_machine(guest("rv64", "hello"))
    addr = RAM_BASE + 0x10_0000
    assert machine.memory.read(addr, 4) == bytes(4)
    machine.memory.write(addr, b"\x01\x02\x03\x04")
    assert machine.memory.read(addr, 4) == b"\x01\x02\x03\x04"
    machine.ram[0x10_0000] = 9  # the host's view of RAM is the engine's
    assert machine.memory.read(addr, 2) == b"\x09\x02"


# -- breakpoints ---------------------------------------------------------------------------------------------


def _pcs(xlen: str, name: str, start: int, steps: int) -> list[int]:
    """Distinct pcs of ``steps`` instructions from ``start`` (code a breakpoint there would hit)."""
    machine = make_machine(guest(xlen, name))
    machine.run(start)
    seen: list[int] = []
    for _ in range(steps):
        if machine.pc not in seen:
            seen.append(machine.pc)
        machine.run(machine.icount + 1)
    return seen


@functools.cache
def _timer_code(xlen: str) -> tuple[int, ...]:
    """Ten addresses of the timer guest: its idle loop, seven along the interrupt handler (each runs at every
    tick), main, and one never executed."""
    trap = _next_trap(xlen, "timer", None, 400_000)
    assert trap is not None
    handler = _pcs(xlen, "timer", trap - 5, 80)
    idle = _pcs(xlen, "timer", trap + 20_000, 1)
    main = make_machine(guest(xlen, "timer")).image.symbols["main"]
    return (*idle, *handler[::8][:7], main, RAM_BASE + 0x7_0000)


def _pair(xlen: str, name: str = "timer") -> tuple[Machine, Machine]:
    """The machine under test and a reference deleting each hook as its breakpoint is removed."""
    parked, reference = make_machine(guest(xlen, name)), make_machine(guest(xlen, name))
    reference.engine.max_parked_breakpoints = 0
    return parked, reference


_OPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["add", "remove"]), st.integers(0, 9)),
        st.tuples(st.just("run"), st.sampled_from([1, 1, 2, 5, 40, 300, 3_000])),
        st.tuples(st.just("cycle"), st.integers(0, 1023)),  # gdb: remove them all, insert them again
    ),
    min_size=1,
    max_size=25,
)


@pytest.mark.slow  # ~6 s; CI runs it
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(xlen=st.sampled_from(XLENS), ops=_OPS)
def test_parked_breakpoints_stop_exactly_where_deleted_hooks_do(xlen: str, ops: list[tuple[str, int]]) -> None:
    code = _timer_code(xlen)
    parked, reference = _pair(xlen)
    armed: set[int] = set()
    for op, arg in ops:
        if op == "add":
            armed.add(code[arg])
            for m in (parked, reference):
                m.add_breakpoint(code[arg])
        elif op == "remove":
            armed.discard(code[arg])
            for m in (parked, reference):
                m.remove_breakpoint(code[arg])
        elif op == "cycle":
            for m in (parked, reference):
                for addr in sorted(armed):
                    m.remove_breakpoint(addr)
            armed = {addr for i, addr in enumerate(code) if arg >> i & 1}
            for m in (parked, reference):
                for addr in sorted(armed):
                    m.add_breakpoint(addr)
        else:
            got = parked.run(parked.icount + arg)
            assert got == reference.run(reference.icount + arg)
            assert got.kind != RunKind.BREAKPOINT or got.pc in armed  # a removed one never fires
            # Every removed hook is deleted before anything executes (an exited guest runs nothing).
            assert not parked.engine._parked or parked.exit_code is not None
        assert parked.engine.breakpoints == reference.engine.breakpoints == armed
    assert parked.digest() == reference.digest()


def test_a_breakpoint_removed_and_not_inserted_again_never_fires() -> None:
    handler = _timer_code("rv64")[1]  # runs at every tick
    parked, _ = _pair("rv64")
    parked.add_breakpoint(handler)
    hit = parked.run()
    assert (hit.kind, hit.pc) == (RunKind.BREAKPOINT, handler)
    parked.remove_breakpoint(handler)
    assert handler in parked.engine._parked
    assert parked.run().kind == RunKind.EXITED  # through every other tick
    assert not parked.engine._parked
    # Removed and inserted again before the run: the kept hook fires.
    again, _ = _pair("rv64")
    again.add_breakpoint(handler)
    again.remove_breakpoint(handler)
    again.add_breakpoint(handler)
    assert not again.engine._parked
    assert again.run() == hit


def test_parked_hooks_are_bounded() -> None:
    machine = make_machine(guest("rv32", "hello"))
    addrs = [RAM_BASE + 0x40_0000 + 4 * i for i in range(MAX_PARKED_BREAKPOINTS + 10)]
    for addr in addrs:
        machine.add_breakpoint(addr)
    for addr in addrs:
        machine.remove_breakpoint(addr)
    assert list(machine.engine._parked) == addrs[-MAX_PARKED_BREAKPOINTS:]
    machine.add_breakpoint(addrs[0])  # deleted for good: a new hook
    assert machine.engine.breakpoints == {addrs[0]}


_CSR_LOOP = (0xC0002573, 0x00158593, 0xFF9FF06F)  # L: csrr a0, cycle; addi a1, a1, 1; j L


@pytest.mark.parametrize("order", ["breakpoint first", "emulated instruction first", "removed and re-added"])
@pytest.mark.parametrize("max_parked", [0, MAX_PARKED_BREAKPOINTS])
def test_breakpoint_on_an_emulated_instruction_fires_whatever_the_hook_order(order: str, max_parked: int) -> None:
    """Unicorn calls code hooks in the order they were added; the board's hook on an instruction it emulates
    (here ``csrr a0, cycle``) must not hide a breakpoint there, however the two were added."""
    machine = make_machine(guest("rv64", "hello"))
    machine.engine.max_parked_breakpoints = max_parked
    machine.run(1000)
    loop = RAM_BASE + 0x20_0000
    machine.memory.write(loop, b"".join(insn.to_bytes(4, "little") for insn in _CSR_LOOP))
    machine.set_pc(loop)
    if order == "breakpoint first":
        machine.add_breakpoint(loop)
    machine.run(machine.icount + 30)  # the board hooks the csrr
    if order != "breakpoint first":
        machine.add_breakpoint(loop)
    if order == "removed and re-added":
        machine.remove_breakpoint(loop)
        machine.add_breakpoint(loop)
    for _ in range(3):
        hit = machine.run(machine.icount + 100)
        assert (hit.kind, hit.pc) == (RunKind.BREAKPOINT, loop)
        assert machine.hart.gpr(10) == machine.icount + machine.hart.mcycle_offset - 3 or hit.icount > 1000
    step = machine.run(machine.icount + 1)  # stepping off it executes the csrr (emulated) once
    assert (step.kind, step.pc) == (RunKind.LIMIT, loop + 4)
    assert machine.hart.gpr(10) == machine.icount - 1 + machine.hart.mcycle_offset


# -- 1-instruction runs --------------------------------------------------------------------------------------


def _next_trap(xlen: str, name: str, schedule: list[tuple[int, bytes]] | None, budget: int,
               after: int = -1) -> int | None:  # fmt: skip
    """The first icount after ``after`` at which the guest enters a trap or interrupt handler (None: not within
    ``budget`` instructions)."""
    machine = make_machine(guest(xlen, name), schedule=schedule)
    machine.run(after + 1)
    while machine.icount < budget:
        result = machine.run(machine.icount + 1000)
        if machine._trap_icount > after:
            return machine._trap_icount
        if result.kind != RunKind.LIMIT:
            return None
    return None


def _step_both(landing: Machine, general: Machine, start: int, count: int, seed: int) -> list[RunResult]:
    """Bring both to ``start``, then runs of 1-3 instructions (mostly 1) through ``count`` instructions."""
    rng = random.Random(seed)
    for m in (landing, general):
        if m.icount < start:
            m.run(start, resume=False)
    results = []
    end = landing.icount + count
    while landing.icount < end:
        k = rng.choice([1, 1, 1, 1, 2, 3])
        got = landing.run(landing.icount + k)
        assert got == general.run(general.icount + k)
        assert (landing.icount, landing.pc) == (general.icount, general.pc)
        results.append(got)
        if got.kind in (RunKind.EXITED, RunKind.FAULT, RunKind.IDLE_FOREVER, RunKind.RESET):
            break
    assert landing.digest() == general.digest()
    return results


_GUESTS = {
    # name: (input schedule, icount budget to find the first trap)
    "hello": (None, 0),  # UART output: deferred device accesses stepped one by one
    "traps": (None, 400_000),  # ecall, illegal instructions, faults
    "timer": (None, 400_000),  # the timer interrupt
    "echo": ([(20_000, b"ab\rq")], 400_000),  # UART input at an exact icount and its interrupt
    "fault": (None, 400_000),
}


@pytest.mark.parametrize("name", sorted(_GUESTS))
def test_single_instruction_runs_match_the_general_path(xlen: str, name: str) -> None:
    schedule, budget = _GUESTS[name]
    landing = make_machine(guest(xlen, name), schedule=schedule)
    general = make_machine(guest(xlen, name), schedule=schedule)
    general.engine.lands_single_steps = False
    results = _step_both(landing, general, 0, 400, seed=1)
    trap = _next_trap(xlen, name, schedule, budget) if budget else None
    if trap is not None:
        results += _step_both(landing, general, max(landing.icount, trap - 150), 300, seed=2)
    if name == "timer":  # the next tick, with a watchpoint on the tick counter and breakpoints in the handler
        trap = _next_trap(xlen, name, schedule, budget, after=landing.icount)
        assert trap is not None
        ticks = landing.image.symbols["ticks"]
        code = _timer_code(xlen)
        for m in (landing, general):
            m.arm(code[1:5], [Watchpoint(WatchKind.WRITE, ticks, 4)])
        results += _step_both(landing, general, trap - 150, 400, seed=3)
        assert {RunKind.WATCHPOINT, RunKind.BREAKPOINT} <= {r.kind for r in results}
    assert results


def test_single_instruction_runs_match_the_general_path_with_the_python_counter() -> None:
    landing = make_machine(guest("rv32", "traps"), native=False)
    general = make_machine(guest("rv32", "traps"), native=False)
    general.engine.lands_single_steps = False
    trap = _next_trap("rv32", "traps", None, 400_000)
    assert trap is not None
    _step_both(landing, general, trap - 100, 250, seed=4)


def test_private_binding_names_still_there() -> None:
    """The fast paths call Unicorn through private names of the pinned binding (unicorn==2.1.4)."""
    from unicorn.unicorn_py3 import unicorn as ucmod

    for name in ("uclib", "uc_hook_h", "uccallback", "HOOK_CODE_CFUNC"):
        assert hasattr(ucmod, name), name
    for fn in ("uc_reg_read", "uc_mem_read", "uc_ctl", "uc_hook_add", "uc_hook_del", "uc_reg_read_batch"):
        assert hasattr(ucmod.uclib, fn), fn
