"""The execution index's parts: the counter's notes of executed code (native == fallback == a trace),
CodeRanges, and the hart's batch register reads (what verification points and digests use)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from machine.arch.riscv import FPR_IDS, GPR_IDS, PC
from machine.arch.riscv_hart import _DIGEST_CSRS
from machine.executed import CodeRanges
from machine.icount import merge_ranges, native_library_path
from tests.conftest import guest, make_machine, require_tool

PAIRS = st.lists(st.tuples(st.integers(0, 4000), st.integers(1, 300)), max_size=30).map(
    lambda xs: merge_ranges(sorted((a, a + n) for a, n in xs), 0)
)


@given(PAIRS, PAIRS, st.integers(0, 4400))
def test_code_ranges_cover_exactly_their_ranges_and_union(a: list[int], b: list[int], addr: int) -> None:
    def brute(pairs: list[int]) -> bool:
        return any(pairs[i] <= addr < pairs[i + 1] for i in range(0, len(pairs), 2))

    ra, rb = CodeRanges(a), CodeRanges(b)
    assert ra.covers(addr) == brute(a)
    assert ra.union(rb).covers(addr) == (brute(a) or brute(b))
    assert CodeRanges(ra.pairs()).pairs() == a


@pytest.mark.parametrize("native", [True, False])
def test_executed_code_covers_every_traced_instruction_and_little_else(native: bool) -> None:
    if native:
        require_tool(native_library_path(), "the native helper (pip install -e .)")
    machine = make_machine(guest("rv32", "timer"), native=native)
    assert machine.is_counter_native == native
    machine.take_executed_code()  # the index begins
    first = machine.take_executed_code(next_window=False)
    assert first is not None and len(first) == 0  # nothing ran yet
    pcs: set[int] = set()
    machine.enable_trace(lambda icount, pc, code: pcs.add(pc))
    machine.run(20_000)
    window = machine.take_executed_code()
    assert window is not None and all(window.covers(pc) for pc in pcs)
    # Blocks only: nothing far from an executed instruction (merged gaps are under 64 bytes).
    image = machine.image
    uncalled = [image.symbols[name] for name in ("unexpected_trap",) if name in image.symbols]
    assert not any(window.covers(addr) for addr in uncalled if all(abs(addr - pc) > 64 for pc in pcs))
    pcs.clear()
    machine.run(machine.icount + 5_000)
    second = machine.take_executed_code()
    assert second is not None and all(second.covers(pc) for pc in pcs)


def test_native_and_fallback_counters_note_the_same_code() -> None:
    require_tool(native_library_path(), "the native helper (pip install -e .)")
    windows = []
    for native in (True, False):
        machine = make_machine(guest("rv32", "timer"), native=native)
        machine.take_executed_code()
        notes = []
        for stop in (3_000, 9_000, 30_000):
            machine.run(stop)
            window = machine.take_executed_code()
            assert window is not None
            notes.append(window.pairs())
        windows.append(notes)
    assert windows[0] == windows[1]


@pytest.mark.parametrize("xlen", ["rv32", "rv64"])
def test_batch_register_reads_equal_single_reads(xlen: str) -> None:
    machine = make_machine(guest(xlen, "traps"))
    machine.run(3_000)
    hart, uc = machine.hart, machine.uc
    for i, reg in enumerate(FPR_IDS[:4]):
        uc.reg_write(reg, 0xFFF0_1234_8765_4321 >> i)  # 64-bit FPRs on rv32 too
    uc.reg_write(GPR_IDS[5], (1 << (32 if xlen == "rv32" else 64)) - 3)
    single = [hart.reg(r) for r in (*GPR_IDS, PC)] + [hart.priv]
    single += [hart.reg(r) for r in FPR_IDS] + [hart.csr(r) for r in _DIGEST_CSRS]
    single += [hart.mip_soft, hart.mcycle_offset, hart.minstret_offset]
    assert hart.registers() + hart.digest_csrs() == single
