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


ENTRY = st.tuples(st.integers(1, 50), st.one_of(st.none(), st.lists(st.integers(0, 20), max_size=4)))


@given(st.lists(ENTRY, max_size=12), st.integers(0, 700), st.integers(0, 700), st.lists(st.integers(0, 20)),
       st.booleans(), st.integers(1, 2000))  # fmt: skip
def test_code_index_last_start_is_the_last_stretch_that_may_run(
    entries: list[tuple[int, list[int] | None]], a: int, b: int, addrs: list[int], tail_runs: bool, max_bytes: int
) -> None:
    """Against brute force: every icount's code known (or unknown) one by one; merging only coarsens."""
    from replay.code_index import CodeIndex

    index = CodeIndex(10, max_bytes=max_bytes)
    per_icount: dict[int, set[int] | None] = {}
    at = 10
    for length, code in entries:
        ranges = None if code is None else CodeRanges(merge_ranges(sorted((c, c + 1) for c in set(code)), 0))
        index.add(at + length, ranges)
        for i in range(at, at + length):
            per_icount[i] = None if code is None else set(code)
        at += length
    start, end = min(a, b), max(a, b)
    tail = CodeRanges([addrs[0], addrs[0] + 1] if tail_runs and addrs else [])

    def may(i: int) -> bool:
        if i < 10:
            return True  # before the index began: unknown
        if i >= index.until:
            return tail.covers_any(addrs)
        code = per_icount[i]
        return code is None or bool(code & set(addrs))

    hits = [i for i in range(start, end) if may(i)] if addrs else []
    got = index.last_start(addrs, start, end, lambda: tail)
    merged = len(index) < len([e for e in entries if e[0] > 0])
    assert start <= got <= end
    if hits:  # something may run: a scan from got, then from start to got, finds every hit
        assert got < end and index.may_run(addrs, start, end, lambda: tail)
        if not merged:
            assert got <= hits[-1]  # exact: never past the last stretch that may run
    elif not merged:  # exact: nothing may run there
        assert got == end
    if not merged and hits:  # exactly the start of that stretch (or where unknown ground begins)
        assert got == start or not may(got - 1) or got == index.until or got in index._starts
