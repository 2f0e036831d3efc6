"""The query engine (issue 16) against a brute-force reference: identical answers on small recordings.

The reference replays a recording one instruction at a time (``machine.run(icount + 1)`` on a fresh timeline:
no watchpoint, no breakpoint, no index, no snapshot but the first) and notes, at each icount:

- which instructions ran there (:attr:`Reference.visits`): the one at pc, unless an interrupt was taken
  before it (it did not run), then the first of each trap handler entered there (``machine.trap_tap``, with the
  registers as the handler starts);
- the bytes of the guest's data symbols that changed (read back after each instruction) and every read and
  write Unicorn made there (``UC_HOOK_MEM_READ``/``UC_HOOK_MEM_WRITE``, Python hooks ranged over that data);
- the traps entered.

From these, answers by definition: a write is an instruction after which the watched bytes differ; a read
an instruction that read one of them; a call an instruction run at the function's entry, returning at the
first instruction run later at its return address with the stack pointer at or above its entry value; a
trap returns at the first instruction run later at its resume address. Hypothesis draws watched bytes among
the guest's data symbols (any offset, sizes 1/2/4/8, unaligned too), functions among its symbols and the
addresses that ran, icount ranges ``[from, to)``; the engine's answers must be identical (icount, pc, old and
new bytes, the first watched address touched, arguments, returns), with its default windows and with small
ones (many windows, page skipping), and the timeline must end where it was (icount and machine digest).

The reference is computed once per recording (module-scoped) and reused by every example. Fast subset: rv32
timer (interrupts), rv32 cmdint with UART input (interrupts through the PLIC), Cortex-M systick; the other
guests are slow. Known machine bugs found this way are strict xfails at the end (each with its reproduction).
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import functools
import itertools
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import pytest
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unicorn import UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE

from gdbstub.cli import timelines
from machine.results import TrapEntry
from machine.watch import WatchKind
from replay.query import Access, Call, QueryEngine, _abi
from replay.query_index import Trap
from replay.saver import open_recording
from replay.timeline import Timeline
from tests.conftest import ROOT

SHF_WRITE = SH_FLAGS.SHF_WRITE
GUESTS = ROOT / "tests" / "guests"
SMALL_INTERVAL = 1000  # windows of another interval than the default (which holds these whole histories)
EXAMPLES = 20
STACK_WATCHED = 512  # the top bytes of the stack are watched too (RISC-V, AArch64)
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))  # fmt: skip


@dataclass(frozen=True)
class Guest:
    """A committed guest to record (with UART input) and what of it the property may draw."""

    name: str
    elf: Path
    uart_input: Path | None = None
    no_watch: tuple[str, ...] = ()  # data symbols not drawn (a known machine bug)
    no_reads: bool = False  # reads not drawn (likewise)
    traps: bool = True  # it takes interrupts or exceptions (else it polls)
    drive: Path | None = None  # a disk for its virtio-blk device (whose reads reach RAM by DMA)


RV32 = GUESTS / "riscv" / "build" / "rv32"
CASES = {
    "rv32-timer": Guest("rv32-timer", RV32 / "timer.elf"),
    "rv32-cmdint": Guest("rv32-cmdint", RV32 / "cmdint.elf", GUESTS / "riscv" / "inputs" / "cmdint-bug.txt"),
    "cortexm-systick": Guest("cortexm-systick", GUESTS / "cortexm" / "build" / "systick.elf"),
    "rv64-timer": Guest("rv64-timer", GUESTS / "riscv" / "build" / "rv64" / "timer.elf"),
    "rv32-isrbug": Guest("rv32-isrbug", RV32 / "isrbug.elf"),
    "rv32-stray": Guest("rv32-stray", RV32 / "stray.elf"),
    "rv32-traps": Guest("rv32-traps", RV32 / "traps.elf"),
    "rv32-virtioblk": Guest(
        "rv32-virtioblk", RV32 / "virtioblk.elf", traps=False, drive=GUESTS / "riscv" / "inputs" / "disk.img"
    ),
    "demo-cmdint": Guest(
        "demo-cmdint",
        ROOT / "gdbstub" / "demo" / "firmware" / "rv32" / "cmdint.elf",
        ROOT / "gdbstub" / "demo" / "firmware" / "cmdint-bug.txt",
    ),
    "cortexm-pendsv": Guest("cortexm-pendsv", GUESTS / "cortexm" / "build" / "pendsv.elf"),
    "cortexm-cmdbug": Guest(
        "cortexm-cmdbug",
        GUESTS / "cortexm" / "build" / "cmdbug.elf",
        uart_input=GUESTS / "cortexm" / "inputs" / "cmdbug-bug.txt",
        traps=False,
    ),
    "aarch64-timer": Guest("aarch64-timer", GUESTS / "aarch64" / "build" / "timer.elf"),
    "aarch64-cmdbug": Guest(
        "aarch64-cmdbug",
        GUESTS / "aarch64" / "build" / "cmdbug.elf",
        GUESTS / "aarch64" / "inputs" / "cmdbug-bug.txt",
        traps=False,
    ),
}
FAST = ("rv32-timer", "rv32-cmdint", "cortexm-systick")
PARAMS = [pytest.param(name, marks=() if name in FAST else pytest.mark.slow) for name in CASES]
READ_PARAMS = [p for p in PARAMS if not CASES[p.values[0]].no_reads]


# -- recordings -------------------------------------------------------------------------------------------
def record(elf: Path, out: Path, uart_input: Path | None = None, drive: Path | None = None) -> Path:
    """``chronicorn record`` (the real command line) of a committed guest."""
    args = [sys.executable, "-m", "gdbstub.cli", "record", str(elf), "-o", str(out)]
    if uart_input is not None:
        args += ["--uart-input", str(uart_input)]
    if drive is not None:
        args += ["--drive", str(drive)]
    done = subprocess.run(args, capture_output=True, timeout=120, cwd=ROOT)
    assert out.is_file(), done.stderr.decode(errors="replace")
    return out


def recording_timeline(path: Path, interval: int | None = None) -> Timeline:
    """A fresh timeline over a recording, as every command builds it (``interval``: its windows)."""
    loaded = timelines.read_recording(path)
    args = argparse.Namespace(guest=None, ram=None, icount_shift=None, drive=[])
    if interval is None:
        return timelines.recording_timeline(args, loaded, show_output=False)
    with mock.patch.object(timelines, "open_recording", functools.partial(open_recording, interval=interval)):
        return timelines.recording_timeline(args, loaded, show_output=False)


@dataclass(frozen=True)
class Symbol:
    name: str
    addr: int
    size: int


def elf_symbols(elf: Path, kind: str) -> list[Symbol]:
    """The ELF's symbols of ``kind``, sorted by address: STT_FUNC, or STT_OBJECT in a writable section (data)."""
    with open(elf, "rb") as stream:
        parsed = ELFFile(stream)
        writable = {n for n, section in enumerate(parsed.iter_sections()) if section["sh_flags"] & SHF_WRITE}
        found = {Symbol(s.name, s["st_value"] & ~1 if kind == "STT_FUNC" else s["st_value"], s["st_size"])
                 for s in parsed.get_section_by_name(".symtab").iter_symbols()
                 if s["st_info"]["type"] == kind and s.name
                 and (kind != "STT_OBJECT" or s["st_size"] > 0 and s["st_shndx"] in writable)}  # fmt: skip
    return sorted(found, key=lambda s: (s.addr, s.name))


def stack_top(elf: Path) -> int:
    """The guests' linker scripts' ``__stack_top`` (the stack grows down from it)."""
    with open(elf, "rb") as stream:
        (symbol,) = ELFFile(stream).get_section_by_name(".symtab").get_symbol_by_name("__stack_top")
        return int(symbol["st_value"])


# -- the reference ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Visit:
    """An instruction run at ``icount`` (the registers before it)."""

    icount: int
    pc: int
    sp: int
    ra: int
    args: tuple[int, ...]


@dataclass
class Reference:
    """What single-stepping a whole recording saw (see the module's docstring)."""

    end: int
    arch: str
    xlen: int
    region: tuple[int, int]  # the data watched: [lo, hi)
    initial: bytes  # its bytes at the start
    visits: list[Visit] = field(default_factory=list)
    changes: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # icount -> [(addr, new byte)]
    memory: dict[int, list[tuple[bool, int, int]]] = field(default_factory=dict)  # icount -> [(write?, addr, n)]
    traps: list[tuple[TrapEntry, int]] = field(default_factory=list)  # (entry, index of its handler's visit)
    final_digest: str = ""
    _events: list[int] = field(default_factory=list)
    _by_pc: dict[int, list[int]] = field(default_factory=dict)

    def finish(self) -> None:
        self._events = sorted(set(self.changes) | set(self.memory))
        by_pc: dict[int, list[int]] = defaultdict(list)
        for n, visit in enumerate(self.visits):
            by_pc[visit.pc].append(n)
        self._by_pc = dict(by_pc)

    # -- answers by definition ------------------------------------------------------------------------
    def value_at(self, addr: int, size: int, icount: int) -> bytes:
        lo = self.region[0]
        data = bytearray(self.initial[addr - lo : addr - lo + size])
        for i in self._events[: bisect.bisect_left(self._events, icount)]:
            for a, byte in self.changes.get(i, ()):
                if addr <= a < addr + size:
                    data[a - addr] = byte
        return bytes(data)

    def _pc_at(self, icount: int) -> int:
        """The pc of the last instruction run at ``icount`` (a trap handler's first, if one was entered)."""
        n = bisect.bisect_right(self.visits, icount, key=lambda v: v.icount) - 1
        return self.visits[n].pc

    def accesses(self, addr: int, size: int, kind: WatchKind, lo: int, hi: int) -> list[Access]:
        value = self.value_at(addr, size, lo)
        found = []
        for i in self._events[bisect.bisect_left(self._events, lo) : bisect.bisect_left(self._events, hi)]:
            new = bytearray(value)
            for a, byte in self.changes.get(i, ()):
                if addr <= a < addr + size:
                    new[a - addr] = byte
            touched = self.memory.get(i, ())
            if kind != WatchKind.READ and bytes(new) != value:
                by = _first(touched, True, addr, size)  # None: no instruction wrote them: a device did (DMA)
                found.append(Access(i, self._pc_at(i), WatchKind.WRITE, by, value, bytes(new),
                                    None if by is not None else DEVICE))  # fmt: skip
            elif kind != WatchKind.WRITE and (hit := _first(touched, False, addr, size)) is not None:
                found.append(Access(i, self._pc_at(i), WatchKind.READ, hit, value, value))
            value = bytes(new)
        return found

    def _first_back(self, pc: int, sp: int | None, after: int, before: int) -> int | None:
        """The icount of the first visit after visit ``after`` at ``pc`` (stack at or above ``sp``), < ``before``."""
        visits = self._by_pc.get(pc, [])
        for n in visits[bisect.bisect_right(visits, after) :]:
            visit = self.visits[n]
            if visit.icount >= before:
                return None
            if sp is None or visit.sp >= sp:
                return visit.icount
        return None

    def calls(self, entry: int, lo: int, hi: int, nargs: int = 4) -> list[Call]:
        found = []
        thumb = 1 if self.arch == "armv7m" else 0
        for n in self._by_pc.get(entry, []):
            v = self.visits[n]
            if lo <= v.icount < hi:
                back = v.ra & ((1 << self.xlen) - 1) & ~thumb
                found.append(Call(v.icount, entry, back, v.sp, v.args[:nargs], self._first_back(back, v.sp, n, hi)))
        return found

    def interrupts(self, lo: int, hi: int) -> list[Trap]:
        return [Trap(e.icount, e.handler, e.resume, e.cause, e.interrupt, self._first_back(e.resume, None, n, self.end))
                for e, n in self.traps if lo <= e.icount < hi]  # fmt: skip


DEVICE = "a device"  # what the reference knows of a device's write into RAM: neither which nor where first


def as_seen(answers: list[Access]) -> list[Access]:
    """The engine's answers as the reference can see them: a device's write is "a device", at no address."""
    return [a if a.device is None else dataclasses.replace(a, addr=None, device=DEVICE) for a in answers]


def _first(touched: object, write: bool, addr: int, size: int) -> int | None:
    """The first watched address the first access of that kind touched (what a watchpoint reports)."""
    for is_write, a, n in touched:  # type: ignore[attr-defined]
        start, end = max(a, addr), min(a + n, addr + size)
        if is_write == write and start < end:
            return start
    return None


def build_reference(path: Path, region: tuple[int, int]) -> Reference:
    """Single-step the recording at ``path`` from its start to its end (see the module's docstring)."""
    timeline = recording_timeline(path)
    machine = timeline.machine
    uc = machine.uc
    ra_reg, sp_reg, arg_regs = _abi(machine.arch.name)
    lo, hi = region
    ref = Reference(timeline.end, machine.arch.name, machine.arch.xlen, region, bytes(machine.memory.read(lo, hi - lo)))

    def registers(icount: int) -> Visit:
        return Visit(
            icount, machine.pc, uc.reg_read(sp_reg), uc.reg_read(ra_reg), tuple(uc.reg_read(r) for r in arg_regs)
        )

    entered: list[tuple[TrapEntry, Visit]] = []
    touched: list[tuple[bool, int, int]] = []
    machine.trap_tap = lambda entry: entered.append((entry, registers(entry.icount)))
    # Unicorn checks only an access's first address against a hook's range: start it 15 bytes lower.
    hooks = [uc.hook_add(UC_HOOK_MEM_READ, lambda _uc, _a, addr, size, _v, _d: touched.append((False, addr, size)),
                         begin=max(0, lo - 15), end=hi - 1),
             uc.hook_add(UC_HOOK_MEM_WRITE, lambda _uc, _a, addr, size, _v, _d: touched.append((True, addr, size)),
                         begin=max(0, lo - 15), end=hi - 1)]  # fmt: skip
    before = ref.initial
    try:
        while machine.icount < ref.end:
            i = machine.icount
            at_pc = registers(i)
            entered.clear()
            touched.clear()
            machine.run(i + 1, resume=False)
            assert machine.icount == i + 1, f"a single step from icount {i} ended at {machine.icount}"
            here = [(e, v) for e, v in entered if e.icount == i]
            if not here or not here[0][0].interrupt:  # an interrupt is taken before the instruction at pc runs
                ref.visits.append(at_pc)
            for e, v in here:
                ref.traps.append((e, len(ref.visits)))
                ref.visits.append(v)
            if touched:
                ref.memory[i] = list(touched)
            after = bytes(machine.memory.read(lo, hi - lo))
            if after != before:
                ref.changes[i] = [(lo + n, b) for n, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
                before = after
    finally:
        for hook in hooks:
            uc.hook_del(hook)
        machine.trap_tap = None
    ref.final_digest = machine.digest()
    ref.finish()
    return ref


# -- the cases --------------------------------------------------------------------------------------------
@dataclass
class Case:
    guest: Guest
    recording: Path
    reference: Reference
    data: list[Symbol]  # the data symbols the property draws among (in RAM)
    functions: list[int]  # entries the property draws among: function symbols and addresses that ran
    engines: dict[str, QueryEngine]


@pytest.fixture(scope="module")
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    guest = CASES[request.param]
    path = record(guest.elf, tmp_path_factory.mktemp("query") / f"{guest.name}.chrec", guest.uart_input, guest.drive)
    default = QueryEngine(recording_timeline(path))
    small = QueryEngine(recording_timeline(path, SMALL_INTERVAL))
    machine = default.timeline.machine
    data = [s for s in elf_symbols(guest.elf, "STT_OBJECT") if machine.is_ram(s.addr, s.size)]
    if machine.arch.name != "armv7m":  # (Cortex-M's exception entry stacks unseen: see the xfail below)
        top = stack_top(guest.elf)
        data.append(Symbol("stack", top - STACK_WATCHED, STACK_WATCHED))  # pushes and pops, busy
    region = (min(s.addr for s in data), max(s.addr + s.size for s in data))
    reference = build_reference(path, region)
    ran = sorted({v.pc for v in reference.visits})
    functions = sorted({s.addr for s in elf_symbols(guest.elf, "STT_FUNC")} | set(ran[:: max(1, len(ran) // 40)]))
    for engine in (default, small):  # somewhere inside history: every query must leave it there
        engine.timeline.seek(reference.end // 3)
    yield Case(guest, path, reference, [s for s in data if s.name not in guest.no_watch], functions,
               {"default": default, "small": small})  # fmt: skip


def watched(case: Case, data: st.DataObject) -> tuple[int, int]:
    """Bytes to watch: in or around a data symbol, any alignment, kept inside the data the reference saw."""
    symbol = data.draw(st.sampled_from(case.data), label="symbol")
    size = data.draw(st.sampled_from([1, 2, 4, 8]), label="size")
    offset = data.draw(st.integers(-3, max(0, symbol.size - 1) + 3), label="offset")
    lo, hi = case.reference.region
    addr = min(max(lo, symbol.addr + offset), hi - size)
    return addr, size


def icount_range(case: Case, data: st.DataObject) -> tuple[int | None, int | None]:
    """``[from, to)``: the whole history (None, None) or two icounts inside it."""
    end = case.reference.end
    if data.draw(st.booleans(), label="whole history"):
        return None, None
    a = data.draw(st.integers(0, end), label="from")
    b = data.draw(st.integers(0, end), label="to")
    return min(a, b), max(a, b)


def span(case: Case, lo: int | None, hi: int | None) -> tuple[int, int]:
    return (0 if lo is None else lo), (case.reference.end if hi is None else hi)


def kept_place(engine: QueryEngine, region: tuple[int, int]) -> tuple[int, list[int], bytes]:
    """Where the timeline is (icount, CPU, the watched data): cheap enough for every example (the whole machine's
    digest, 0.15 s, is compared in test_queries_keep_the_machine_digest)."""
    machine = engine.timeline.machine
    return engine.timeline.icount, machine.cpu_digest_values(), machine.memory.read(region[0], region[1] - region[0])


# -- the properties ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", PARAMS, indirect=True)
def test_reference_is_faithful(case: Case) -> None:
    """Single-stepping reaches the very state a plain replay to the end does (so its notes are of that run)."""
    timeline = recording_timeline(case.recording)
    timeline.seek(timeline.end)
    assert case.reference.final_digest == timeline.machine.digest()
    assert len({v.icount for v in case.reference.visits}) == case.reference.end


@pytest.mark.parametrize("case", PARAMS, indirect=True)
@PROPERTY
@given(data=st.data())
def test_writes_match_reference(case: Case, data: st.DataObject) -> None:
    addr, size = watched(case, data)
    lo, hi = icount_range(case, data)
    expected = case.reference.accesses(addr, size, WatchKind.WRITE, *span(case, lo, hi))
    for name, engine in case.engines.items():
        place = kept_place(engine, case.reference.region)
        assert as_seen(engine.accesses(addr, size, WatchKind.WRITE, lo, hi)) == expected, name
        assert kept_place(engine, case.reference.region) == place, name


@pytest.mark.parametrize("case", READ_PARAMS, indirect=True)
@PROPERTY
@given(data=st.data())
def test_reads_and_accesses_match_reference(case: Case, data: st.DataObject) -> None:
    addr, size = watched(case, data)
    kind = data.draw(st.sampled_from([WatchKind.READ, WatchKind.ACCESS]), label="kind")
    lo, hi = icount_range(case, data)
    expected = case.reference.accesses(addr, size, kind, *span(case, lo, hi))
    for name, engine in case.engines.items():
        place = kept_place(engine, case.reference.region)
        assert as_seen(engine.accesses(addr, size, kind, lo, hi)) == expected, name
        assert kept_place(engine, case.reference.region) == place, name


@pytest.mark.parametrize("case", PARAMS, indirect=True)
@PROPERTY
@given(data=st.data())
def test_calls_match_reference(case: Case, data: st.DataObject) -> None:
    entry = data.draw(st.sampled_from(case.functions), label="entry")
    nargs = data.draw(st.integers(0, 4), label="nargs")
    lo, hi = icount_range(case, data)
    expected = case.reference.calls(entry, *span(case, lo, hi), nargs)
    for name, engine in case.engines.items():
        place = kept_place(engine, case.reference.region)
        assert engine.calls(entry, lo, hi, nargs) == expected, name
        assert kept_place(engine, case.reference.region) == place, name


@pytest.mark.parametrize("case", PARAMS, indirect=True)
@PROPERTY
@given(data=st.data())
def test_interrupts_and_values_match_reference(case: Case, data: st.DataObject) -> None:
    lo, hi = icount_range(case, data)
    symbol = data.draw(st.sampled_from(case.data), label="symbol")
    at = data.draw(st.integers(0, case.reference.end), label="at")
    expected = case.reference.interrupts(*span(case, lo, hi))
    for name, engine in case.engines.items():
        place = kept_place(engine, case.reference.region)
        assert engine.interrupts(lo, hi) == expected, name
        assert engine.value_at(symbol.addr, symbol.size, at) == case.reference.value_at(symbol.addr, symbol.size, at)
        assert kept_place(engine, case.reference.region) == place, name


@pytest.mark.slow
@pytest.mark.parametrize("case", PARAMS, indirect=True)
def test_whole_history_answers_match_reference(case: Case) -> None:
    """Every data symbol (writes, reads, accesses) and every function over the whole history, every trap."""
    ref, engine = case.reference, case.engines["small"]
    kinds = [WatchKind.WRITE] if case.guest.no_reads else [WatchKind.WRITE, WatchKind.READ, WatchKind.ACCESS]
    for symbol, size, kind in itertools.product(case.data, (8, None), kinds):
        size = symbol.size if size is None else min(size, symbol.size)  # its first bytes, all of it
        expected = ref.accesses(symbol.addr, size, kind, 0, ref.end)
        assert as_seen(engine.accesses(symbol.addr, size, kind)) == expected, (symbol.name, size, kind.name)
    for entry in case.functions:
        assert engine.calls(entry) == ref.calls(entry, 0, ref.end), hex(entry)
    assert engine.interrupts() == ref.interrupts(0, ref.end)


@pytest.mark.parametrize("case", PARAMS, indirect=True)
def test_reference_is_not_vacuous(case: Case) -> None:
    """Each recording has answers of every kind to compare: traps, changed bytes, reads, calls that return."""
    ref = case.reference
    assert bool(ref.traps) == case.guest.traps
    assert ref.changes and any(not w for touched in ref.memory.values() for w, _, _ in touched)
    assert any(call.returned is not None for entry in case.functions for call in ref.calls(entry, 0, ref.end))


# -- machine bugs the reference found (fixed: their reproductions) -----------------------------------------
@pytest.mark.parametrize("case", [pytest.param("cortexm-pendsv", marks=pytest.mark.slow)], indirect=True)
def test_exception_stacking_writes_are_found(case: Case) -> None:
    """pendsv's SVC at icount ~22260 stacks r0-r3, r12, lr, pc, xPSR on task a's stack (stack_a): bytes change
    there, by no instruction; a write query over stack_a must report that change (as the reference sees it)."""
    ref, engine = case.reference, case.engines["default"]
    stack = next(s for s in elf_symbols(case.guest.elf, "STT_OBJECT") if s.name == "stack_a")
    found = engine.accesses(stack.addr, stack.size, WatchKind.WRITE)
    expected = ref.accesses(stack.addr, stack.size, WatchKind.WRITE, 0, ref.end)
    assert [(a.icount, a.old, a.new) for a in found] == [(a.icount, a.old, a.new) for a in expected]


@pytest.mark.parametrize("case", [pytest.param("aarch64-timer", marks=pytest.mark.slow)], indirect=True)
def test_aarch64_read_watch_stop_keeps_registers(case: Case) -> None:
    """timer.elf's irq_handler reads `ticks` with `ldr w1, [x1]` (0x400800ac): the reads of ticks over the
    whole history must be the reference's, and the replay must not diverge (its last tick)."""
    ref, engine = case.reference, case.engines["default"]
    ticks = next(s for s in elf_symbols(case.guest.elf, "STT_OBJECT") if s.name == "ticks")
    assert engine.accesses(ticks.addr, 4, WatchKind.READ) == ref.accesses(ticks.addr, 4, WatchKind.READ, 0, ref.end)
