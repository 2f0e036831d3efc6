"""Questions over a whole history (issue 16): every write or read of some bytes, every call of a function,
every trap, a value at any icount — exact, answered without moving the debugger.

The engine works on a :class:`~replay.timeline.Timeline` (a recording, or the history ``serve`` is recording)
and replays only the windows of history where an answer can be (:mod:`replay.query_index`):

- ``writes``: windows where a page of the bytes may have been written (page identity), scanned with a
  native write watchpoint on exactly those bytes; each hit is stepped once to read the value after it, and
  only writes that changed the bytes are answers (as gdb's ``watch`` reports them);
- ``reads``/``accesses``: every window, with a read (access) watchpoint: reads leave no trace to skip by;
- ``calls``: windows where the function's entry (or the return address of a call still open) may have run
  (the execution index, :mod:`replay.code_index`), with breakpoints there; a call returns when execution is
  back at its return address with the stack pointer at or above its entry value (recursion, longjmp);
- ``interrupts``: the traps the index pass saw (``Machine.trap_tap``), with their returns;
- ``value``: a seek there and back.

Answers are plain values (:class:`Access`, :class:`Call`, :class:`~replay.query_index.Trap`);
:meth:`QueryEngine.run` turns a :class:`~replay.query_request.QueryRequest` (from
:func:`~replay.query_request.parse_query`, the words the CLI and the monitor share) into a
:class:`~replay.query_result.QueryResult`: rows annotated with the guest's symbols (function, file:line,
instruction, values formatted as gdb prints them), rendered as a text table, JSON or CSV.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from machine.debug_memory import DebugMemoryError
from machine.ram import PAGE
from machine.results import RunKind
from machine.watch import WatchKind, Watchpoint

from .errors import ReplayDivergence
from .query_index import QueryIndex, Trap, build_index
from .query_request import KINDS, USAGE, QueryError, QueryRequest, _is_int, _number, parse_query
from .query_result import QueryResult, ValuePoint, _cell, trap_name
from .timeline import Timeline

if TYPE_CHECKING:
    from .symbols import CType, Symbols

log = logging.getLogger(__name__)

MAX_ANSWERS = 1_000_000  # a query stops collecting beyond this (a watch on a hot loop counter)

__all__ = ["KINDS", "USAGE", "Access", "Call", "QueryEngine", "QueryError", "QueryRequest", "QueryResult", "Trap",
           "ValuePoint", "parse_query", "trap_name"]  # fmt: skip


# -- answers -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Access:
    """One access to the watched bytes: by the instruction at ``pc`` with icount ``icount`` (the state before it)."""

    icount: int
    pc: int
    kind: WatchKind  # WRITE or READ
    addr: int  # the first watched byte it touched
    old: bytes  # the watched bytes before it
    new: bytes  # and after it (== old for a read)
    device: str | None = None  # a device's write into RAM (DMA), not an instruction: which one


@dataclass(frozen=True, slots=True)
class Call:
    """One call of a function: entered at ``icount``, back at ``return_to`` at ``returned`` (None: not in range)."""

    icount: int
    entry: int
    return_to: int
    sp: int
    args: tuple[int, ...]
    returned: int | None


# Per architecture: (return-address register, stack pointer, argument registers) as Unicorn ids.
def _abi(arch: str) -> tuple[int, int, tuple[int, ...]]:
    if arch.startswith("riscv"):
        from unicorn import riscv_const as r

        return r.UC_RISCV_REG_RA, r.UC_RISCV_REG_SP, tuple(r.UC_RISCV_REG_A0 + i for i in range(8))
    if arch == "aarch64":
        from unicorn import arm64_const as a

        return a.UC_ARM64_REG_X30, a.UC_ARM64_REG_SP, tuple(a.UC_ARM64_REG_X0 + i for i in range(8))
    from unicorn import arm_const as m

    return m.UC_ARM_REG_LR, m.UC_ARM_REG_SP, tuple(m.UC_ARM_REG_R0 + i for i in range(4))


@dataclass(frozen=True, slots=True)
class _Target:
    """What a query watches: bytes ``[addr, addr + size)`` and how to show them."""

    expr: str
    addr: int
    size: int
    ctype: CType | None = None


# -- the engine ----------------------------------------------------------------------------------------
@dataclass
class QueryEngine:
    """Answers questions over ``timeline``'s history; ``symbols`` (the guest's ELF) for expressions and rows."""

    timeline: Timeline
    symbols: Symbols | None = None
    index: QueryIndex | None = None
    on_index: Callable[[QueryIndex], None] | None = None  # told of an index built (the CLI caches it)
    progress: Callable[[int], None] | None = None
    replayed: int = 0  # windows the last query replayed (of the index's windows): what skipping saved
    # Scans stretches of history elsewhere (other processes: gdbstub.query.process_scanner), or None: here.
    scanner: Callable[[int, int, WatchKind, list[tuple[int, int]]], list[Access]] | None = None
    _abi_regs: tuple[int, int, tuple[int, ...]] = field(init=False)

    def __post_init__(self) -> None:
        self._abi_regs = _abi(self.timeline.machine.arch.name)

    @property
    def arch(self) -> str:
        return self.timeline.machine.arch.name

    # -- the index ---------------------------------------------------------------------------------
    def ensure_index(self) -> QueryIndex:
        """The index of the whole history as it is now (built by one pass when missing or out of date)."""
        t = self.timeline
        index = self.index
        if index is None or (index.start, index.end, index.interval) != (t.start, t.end, t.interval):
            index = self.index = build_index(t, self.progress, base=index)
            if self.on_index is not None:
                self.on_index(index)
        return index

    def _range(self, start: int | None, end: int | None) -> tuple[int, int]:
        t = self.timeline
        lo = t.start if start is None else start
        hi = t.end if end is None else end
        if not t.start <= lo <= t.end or not t.start <= hi <= t.end:
            raise QueryError(f"icount range {lo}..{hi} is outside history ({t.start}..{t.end})")
        return lo, hi

    def _keeping_place(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` and put the timeline back where it was (gdb does not move)."""
        t = self.timeline
        here = t.icount
        try:
            return work()
        finally:
            t.machine.arm((), ())
            t.seek(here)

    # -- reads of machine state -------------------------------------------------------------------
    def _read(self, addr: int, size: int) -> bytes:
        try:
            return self.timeline.machine.memory.read(addr, size)
        except DebugMemoryError as exc:
            raise QueryError(f"cannot read {size} bytes at {addr:#x}: {exc}") from None

    def _reg(self, uc_reg: int) -> int:
        return int(self.timeline.machine.uc.reg_read(uc_reg))

    # -- accesses ---------------------------------------------------------------------------------
    def accesses(self, addr: int, size: int, kind: WatchKind, start: int | None = None,
                 end: int | None = None) -> list[Access]:  # fmt: skip
        """Every access of ``kind`` to ``[addr, addr + size)`` in ``[start, end)``; writes only if they changed it."""
        lo, hi = self._range(start, end)
        if size <= 0:
            raise QueryError("nothing to watch (size 0)")
        machine = self.timeline.machine
        if not machine.is_ram(addr, size):
            raise QueryError(f"{size} bytes at {addr:#x} are not RAM (only RAM can be watched)")
        index = self.ensure_index()
        offset = machine.ram_offset(addr, size)
        assert offset is not None
        first_page, last_page = offset // PAGE, (offset + size - 1) // PAGE
        # An access watch is a read and a write watchpoint on the same bytes: a hit then says which it was
        # (a watchpoint of kind ACCESS reports ACCESS, for reads and writes alike).
        spans = [(max(lo, w.start), min(hi, w.end)) for w in index.windows_between(lo, hi)
                 if kind != WatchKind.WRITE or w.may_write(first_page, last_page)]  # fmt: skip
        self.replayed = len(spans)
        if self.scanner is not None and len(spans) > 1:
            return self.scanner(addr, size, kind, spans)[:MAX_ANSWERS]
        return self.scan_windows(addr, size, kind, spans)

    def scan_windows(self, addr: int, size: int, kind: WatchKind, spans: list[tuple[int, int]]) -> list[Access]:
        """The accesses of :meth:`accesses` in these stretches of history, each replayed from its own snapshot
        (so any subset can be scanned anywhere the same recording and index are: another process)."""
        # An access watch is a read and a write watchpoint on the same bytes: a hit then says which it was
        # (a watchpoint of kind ACCESS reports ACCESS, for reads and writes alike).
        kinds = (WatchKind.READ, WatchKind.WRITE) if kind == WatchKind.ACCESS else (kind,)
        watches = [Watchpoint(k, addr, size) for k in kinds]

        def work() -> list[Access]:
            found: list[Access] = []
            for start, end in spans:
                found += self._scan_window(watches, start, end)
                if len(found) >= MAX_ANSWERS:
                    break
            return found[:MAX_ANSWERS]  # (the last window scanned may hold more)

        return self._keeping_place(work)

    def _scan_window(self, watches: list[Watchpoint], start: int, end: int) -> list[Access]:
        t = self.timeline
        machine = t.machine
        t.restore_at(start)
        watch = watches[0]
        writes = any(w.kind != WatchKind.READ for w in watches)
        value = self._read(watch.addr, watch.length)
        machine.arm((), watches)
        found: list[Access] = []
        result = t.run_to(end, resume=False)
        while True:
            if result.kind == RunKind.WATCHPOINT and result.written_by is not None:  # a device wrote RAM (DMA)
                new = self._read(watch.addr, watch.length)
                if new != value:
                    found.append(Access(result.icount, result.pc, WatchKind.WRITE, result.fault_addr, value, new,
                                        result.written_by))  # fmt: skip
                value = new
                result = t.run_to(end, resume=True)
                continue
            if result.kind == RunKind.WATCHPOINT:
                icount, pc = result.icount, result.pc
                value = self._read(watch.addr, watch.length)  # (a read watch alone sees no write in between)
                stepped = t.run_to(icount + 1, resume=True)  # the accessing instruction, once
                new = self._read(watch.addr, watch.length)
                if writes and new != value:  # (also a read hit that wrote: an atomic read-modify-write)
                    found.append(Access(icount, pc, WatchKind.WRITE, result.fault_addr, value, new))
                elif result.watch_kind == WatchKind.READ:
                    found.append(Access(icount, pc, WatchKind.READ, result.fault_addr, value, value))
                value = new
                if stepped.kind == RunKind.WATCHPOINT:
                    result = stepped
                    continue
                if machine.icount != icount + 1:
                    raise ReplayDivergence(stepped.icount, f"the guest stopped ({stepped.describe()}) inside history")
                if machine.icount >= end:
                    break
                result = t.run_to(end, resume=False)
                continue
            if result.kind != RunKind.LIMIT and machine.icount < end:
                raise ReplayDivergence(result.icount, f"the guest stopped ({result.describe()}) inside history")
            break
        machine.arm((), ())
        return found

    # -- calls ------------------------------------------------------------------------------------
    def calls(self, entry: int, start: int | None = None, end: int | None = None, nargs: int = 4) -> list[Call]:
        """Every entry to the code at ``entry`` in ``[start, end)``, with the icount of its return."""
        lo, hi = self._range(start, end)
        index = self.ensure_index()
        t = self.timeline
        machine = t.machine
        ra_reg, sp_reg, arg_regs = self._abi_regs
        arg_regs = arg_regs[: max(0, min(nargs, len(arg_regs)))]
        mask = (1 << machine.arch.xlen) - 1
        code_index = t.code_index

        def work() -> list[Call]:
            open_calls: list[list[Any]] = []  # [icount, return_to, sp, args]
            done: list[Call] = []
            self.replayed = 0
            for window in index.windows_between(lo, hi):
                w_start, w_end = max(lo, window.start), min(hi, window.end)
                wanted = {entry} | {c[1] for c in open_calls}
                if not code_index.may_run(wanted, w_start, w_end, lambda: None):
                    continue
                self.replayed += 1
                t.restore_at(w_start)
                machine.arm(wanted, ())
                resume = False
                while machine.icount < w_end:
                    result = t.run_to(w_end, resume=resume)
                    resume = True
                    if result.kind == RunKind.BREAKPOINT:
                        pc, sp = machine.pc, self._reg(sp_reg)
                        _close_calls(open_calls, done, entry, pc, sp, machine.icount)
                        if pc == entry and len(done) + len(open_calls) < MAX_ANSWERS:
                            back = self._reg(ra_reg) & mask & ~(1 if self.arch == "armv7m" else 0)
                            open_calls.append([machine.icount, back, sp, tuple(self._reg(r) for r in arg_regs)])
                        machine.arm({entry} | {c[1] for c in open_calls}, ())
                        continue
                    if result.kind != RunKind.LIMIT and machine.icount < w_end:
                        raise ReplayDivergence(result.icount,
                                               f"the guest stopped ({result.describe()}) inside history")  # fmt: skip
                    break
            done += [Call(c[0], entry, c[1], c[2], c[3], None) for c in open_calls]
            return sorted(done, key=lambda c: c.icount)

        return self._keeping_place(work)

    # -- traps ------------------------------------------------------------------------------------
    def interrupts(self, start: int | None = None, end: int | None = None) -> list[Trap]:
        """Every trap or interrupt taken in ``[start, end)`` (from the index pass)."""
        lo, hi = self._range(start, end)
        return [trap for trap in self.ensure_index().traps if lo <= trap.icount < hi]

    # -- values -----------------------------------------------------------------------------------
    def value_at(self, addr: int, size: int, icount: int) -> bytes:
        """The bytes at ``icount`` (the state before that instruction), the timeline staying where it is."""
        self._range(icount, icount)

        def work() -> bytes:
            self.timeline.restore_at(icount)
            return self._read(addr, size)

        return self._keeping_place(work)

    # -- the request interface ---------------------------------------------------------------------
    def target(self, expr: str, length: int | None = None) -> _Target:
        """The bytes an expression (or ``ADDR`` with ``length``) names."""
        if length is not None:
            return _Target(expr, _number(expr, "address"), length)
        if self.symbols is None:
            raise QueryError(f"no symbols for {expr!r} (the guest is not an ELF with them): give ADDR LEN")
        from .symbols import SymbolError

        try:
            where = self.symbols.locate(expr, self._read)
        except SymbolError as exc:
            raise QueryError(str(exc)) from None
        return _Target(expr, where.addr, where.size, where.type)

    def run(self, request: QueryRequest) -> QueryResult:
        """Answer a request as annotated rows (see :class:`QueryResult`)."""
        if request.kind in ("writes", "reads", "accesses"):
            return self._access_result(request)
        if request.kind == "calls":
            return self._calls_result(request)
        if request.kind == "interrupts":
            return self._interrupts_result(request)
        if request.kind == "value":
            return self._value_result(request)
        raise QueryError(f"unknown query {request.kind!r}")

    def _access_result(self, request: QueryRequest) -> QueryResult:
        assert request.target is not None
        target = self.target(request.target, request.length)
        kind = {"writes": WatchKind.WRITE, "reads": WatchKind.READ, "accesses": WatchKind.ACCESS}[request.kind]
        found = self.accesses(target.addr, target.size, kind, request.start, request.end)
        rows = []
        for a in found:
            row = self.place(a.pc if a.device is None else None)
            old, new = self.show(target, a.old), self.show(target, a.new)
            verb = "write" if a.kind == WatchKind.WRITE else "read"
            row.update(icount=a.icount, access=verb, old=old, new=new, device=a.device)
            what = f"{old} -> {new}" if verb == "write" else f"reads {old}"
            by = a.device or f"{row['function'] or hex(a.pc)}{' ' + row['where'] if row['where'] else ''}"
            row["summary"] = f"{target.expr}: {what} by {by}"
            rows.append(row)
        columns = ("icount", "access", "old", "new", "function", "where", "pc", "instruction")
        return QueryResult(request.kind, request, columns, tuple(rows), _capped(len(rows)))

    def _calls_result(self, request: QueryRequest) -> QueryResult:
        assert request.target is not None
        name = request.target
        if _is_int(name):
            entry, params = _number(name, "address"), []
        elif self.symbols is None:
            raise QueryError(f"no symbols for {name!r}: give the function's address")
        else:
            from .symbols import SymbolError

            try:
                entry, params = self.symbols.function_entry(name), self.symbols.parameters(name)
            except SymbolError as exc:
                raise QueryError(str(exc)) from None
        nargs = len(params) if params else 4
        found = self.calls(entry, request.start, request.end, nargs)
        rows = []
        for c in found:
            caller = self.place(c.return_to - 1)
            args = {(params[i] if i < len(params) else f"arg{i}"): hex(v) for i, v in enumerate(c.args)}
            duration = None if c.returned is None else c.returned - c.icount
            rows.append({"icount": c.icount, "function": name, "caller": caller["function"],
                         "call_site": caller["where"], "return_to": hex(c.return_to), "args": args,
                         "returned": c.returned, "duration": duration,
                         "summary": f"{name}({_cell(args)}) from {caller['function'] or hex(c.return_to)}"
                                    f"{'' if c.returned is None else f', returns at {c.returned}'}"})  # fmt: skip
        columns = ("icount", "function", "caller", "call_site", "args", "returned", "duration")
        return QueryResult("calls", request, columns, tuple(rows), _capped(len(rows)))

    def _interrupts_result(self, request: QueryRequest) -> QueryResult:
        rows = []
        for trap in self.interrupts(request.start, request.end):
            name = trap_name(self.arch, trap.cause, trap.interrupt)
            handler = self.place(trap.handler)["function"] or hex(trap.handler)
            duration = None if trap.returned is None else trap.returned - trap.icount
            rows.append({"icount": trap.icount, "cause": trap.cause, "name": name,
                         "type": "interrupt" if trap.interrupt else "exception", "handler": handler,
                         "resume": hex(trap.resume), "returned": trap.returned, "duration": duration,
                         "summary": f"{name} -> {handler}"
                                    f"{'' if duration is None else f' ({duration} instructions)'}"})  # fmt: skip
        columns = ("icount", "type", "cause", "name", "handler", "resume", "returned", "duration")
        return QueryResult("interrupts", request, columns, tuple(rows))

    def _value_result(self, request: QueryRequest) -> QueryResult:
        assert request.target is not None and request.at is not None
        self._range(request.at, request.at)
        target = self._keeping_place(lambda: self._target_at(request))
        data = self.value_at(target.addr, target.size, request.at)
        text = self.show(target, data)
        row = {"icount": request.at, "expr": target.expr, "address": hex(target.addr), "value": text,
               "summary": f"{target.expr} = {text} at icount {request.at}"}  # fmt: skip
        return QueryResult("value", request, ("icount", "expr", "address", "value"), (row,))

    def _target_at(self, request: QueryRequest) -> _Target:
        """An expression is evaluated where its value is asked (a pointer it follows is read there)."""
        assert request.target is not None and request.at is not None
        self.timeline.restore_at(request.at)
        return self.target(request.target, request.length)

    def value_series(self, expr: str, start: int | None = None, end: int | None = None,
                     length: int | None = None) -> list[ValuePoint]:  # fmt: skip
        """The value of ``expr`` over ``[start, end)`` as a step function: its value at ``start``, then after
        each write that changed it."""
        lo, hi = self._range(start, end)
        target = self.target(expr, length)
        points = [self._point(target, lo, self.value_at(target.addr, target.size, lo))]
        for a in self.accesses(target.addr, target.size, WatchKind.WRITE, lo, hi):
            points.append(self._point(target, a.icount + 1, a.new))
        return points

    def _point(self, target: _Target, icount: int, data: bytes) -> ValuePoint:
        return ValuePoint(icount, self.show(target, data), _numeric(target, data))

    # -- annotation -------------------------------------------------------------------------------
    def show(self, target: _Target, data: bytes) -> str:
        """Bytes of ``target`` as gdb prints them (by DWARF type when known)."""
        if self.symbols is not None and target.ctype is not None:
            return self.symbols.format(target.ctype, data)
        if len(data) in (1, 2, 4, 8):
            return str(int.from_bytes(data, "little"))
        return data.hex()

    def place(self, pc: int | None) -> dict[str, Any]:
        """Where ``pc`` is: function, file:line, source text, instruction (what symbols know)."""
        row: dict[str, Any] = {"pc": None if pc is None else hex(pc), "function": None, "file": None, "line": None,
                               "where": "", "source": None, "instruction": None}  # fmt: skip
        if pc is None:
            return row
        s = self.symbols
        if s is not None:
            row["function"] = s.frame_function(pc)
            line = s.line_at(pc)
            if line is not None:
                row.update(file=line.file, line=line.line, where=f"{line.file.rsplit('/', 1)[-1]}:{line.line}",
                           source=s.source_text(line))  # fmt: skip
            with contextlib.suppress(DebugMemoryError):
                row["instruction"] = s.instruction(self.arch, self.timeline.machine.memory.read(pc, 4), pc)
        return row


def _close_calls(open_calls: list[list[Any]], done: list[Call], entry: int, pc: int, sp: int, icount: int) -> None:
    """Execution is at ``pc`` with stack pointer ``sp``: every open call returning here (its return address, its
    stack at or below ``sp``) returned. A call returns at the first such point after its entry, whatever ran
    in between: a call on another stack (another task of an RTOS) is not ended by this one returning."""
    still = []
    for c in open_calls:
        if c[1] == pc and sp >= c[2]:
            done.append(Call(c[0], entry, c[1], c[2], c[3], icount))
        else:
            still.append(c)
    open_calls[:] = still


def _capped(count: int) -> str:
    return f"(stopped after {MAX_ANSWERS} answers)" if count >= MAX_ANSWERS else ""


def _numeric(target: _Target, data: bytes) -> float | None:
    ctype = target.ctype
    kind = None if ctype is None else ctype.kind
    if kind in ("float",) and len(data) in (4, 8):
        import struct

        return struct.unpack("<f" if len(data) == 4 else "<d", data)[0]
    if kind in (None, "int", "uint", "bool", "char", "uchar", "enum", "pointer") and len(data) in (1, 2, 4, 8):
        return float(int.from_bytes(data, "little", signed=kind in ("int", "char")))
    return None
