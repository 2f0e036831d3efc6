"""The query engine's parts (replay/query.py): the query words, results and their three renderings, the
call and trap bookkeeping, the engine's errors, and the debugger's place kept across every kind of query.

The answers themselves are checked against a brute-force single-step reference in
tests/integration/test_query_property.py.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import replay.query as query_module
from gdbstub.query import open_engine
from machine.loader import load_image
from machine.ram import NODE_PAGES, PAGE, PageTable
from machine.watch import WatchKind
from replay.query import (
    Access,
    Call,
    QueryEngine,
    QueryError,
    QueryRequest,
    _close_calls,
    parse_query,
    trap_name,
)
from replay.query_index import Trap, Window, _close_traps, written_pages
from tests.conftest import ROOT, guest

CMDINT = guest("rv32", "cmdint")
SYMBOLS = load_image(CMDINT).symbols


# -- the words of a query ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("words", "request_"),
    [
        ("writes probe.scale", QueryRequest("writes", "probe.scale")),
        ("reads 0x80001000 4", QueryRequest("reads", "0x80001000", 4)),
        ("accesses 0x8000_1000 0x10 --from 5 --to 9", QueryRequest("accesses", "0x8000_1000", 16, 5, 9)),
        ("writes probe.name[3] --to 1_000", QueryRequest("writes", "probe.name[3]", None, None, 1000)),
        ("calls set_scale --from 0x10", QueryRequest("calls", "set_scale", None, 16)),
        ("calls 0x800006ca", QueryRequest("calls", "0x800006ca")),
        ("interrupts", QueryRequest("interrupts")),
        ("interrupts --from 3 --to 3", QueryRequest("interrupts", None, None, 3, 3)),
        ("value probe --at 0", QueryRequest("value", "probe", None, None, None, 0)),
        ("value 0x80001000 8 --at 7", QueryRequest("value", "0x80001000", 8, None, None, 7)),
        ("writes * ptr", QueryRequest("writes", "* ptr")),  # (an expression of several words, joined)
    ],
)
def test_parse_query(words: str, request_: QueryRequest) -> None:
    assert parse_query(words.split()) == request_


@pytest.mark.parametrize(
    ("words", "says"),
    [
        ("", "which query?"),
        ("bogus", "unknown query 'bogus'"),
        ("Writes x", "unknown query 'Writes'"),
        ("writes", "writes needs an expression or ADDR LEN"),
        ("calls", "calls needs a function"),
        ("interrupts ticks", "interrupts takes no target"),
        ("writes x --from", "--from needs an icount"),
        ("writes x --from 1 --from 2", "--from given twice"),
        ("writes x --from -1", "is negative"),
        ("writes x --from ten", "'ten' is not a number"),
        ("writes x --to 4 --from 5", "--to 4 is before --from 5"),
        ("writes x --at 4", "--at is for value"),
        ("writes x --since 4", "unknown option '--since'"),
        ("value x", "value takes --at N"),
        ("value x --at 1 --to 2", "value takes --at N"),
        ("writes 0x80001000 0", "length 0"),
        (f"writes 0x80001000 {(1 << 20) + 1}", "1 to 1048576 bytes"),
    ],
)
def test_parse_query_errors(words: str, says: str) -> None:
    with pytest.raises(QueryError) as error:
        parse_query(words.split())
    assert says in str(error.value)
    assert "Traceback" not in str(error.value)


# -- the bookkeeping of calls and traps ---------------------------------------------------------------
def test_close_calls_returns_every_call_back_at_its_address_with_its_stack() -> None:
    open_calls = [[10, 0x100, 0x8000, (1,)], [20, 0x200, 0x7F00, (2,)], [30, 0x100, 0x7E00, (3,)]]
    done: list[Call] = []
    _close_calls(open_calls, done, 0x50, 0x100, 0x7E00, 40)  # the innermost's stack: not the outer's
    assert done == [Call(30, 0x50, 0x100, 0x7E00, (3,), 40)]
    assert [c[0] for c in open_calls] == [10, 20]
    _close_calls(open_calls, done, 0x50, 0x100, 0x8000, 50)  # the outer call returns; the other stays open
    assert done[-1] == Call(10, 0x50, 0x100, 0x8000, (1,), 50)
    assert [c[0] for c in open_calls] == [20]  # (another task's call, on another stack: not abandoned)
    _close_calls(open_calls, done, 0x50, 0x300, 0x9000, 60)  # nobody returns there
    assert len(done) == 2 and [c[0] for c in open_calls] == [20]


def test_close_calls_closes_all_calls_back_at_once() -> None:
    """Calls from one place with one stack (a function entered by traps, not calls): all back at once."""
    open_calls = [[10, 0x100, 0x8000, ()], [20, 0x100, 0x8000, ()]]
    done: list[Call] = []
    _close_calls(open_calls, done, 0x50, 0x100, 0x8000, 30)
    assert [(c.icount, c.returned) for c in done] == [(10, 30), (20, 30)] and open_calls == []


def test_close_traps_returns_every_trap_resuming_there() -> None:
    """Cortex-M tail-chaining: SVC and the PendSV it chains to resume at one pc; both return there."""
    open_traps = [[5, 0x300, 0x2FA, 11, 0], [10, 0x328, 0x126, 11, 0], [12, 0x370, 0x126, 14, 1]]
    done: list[Trap] = []
    _close_traps(open_traps, done, 0x126, 40)
    assert done == [Trap(10, 0x328, 0x126, 11, False, 40), Trap(12, 0x370, 0x126, 14, True, 40)]
    assert open_traps == [[5, 0x300, 0x2FA, 11, 0]]
    _close_traps(open_traps, done, 0x999, 50)
    assert len(done) == 2


def test_window_may_write() -> None:
    assert Window(0, 10, None).may_write(0, 0)  # unknown: any page
    window = Window(0, 10, ((3, 2), (10, 1)))
    assert [p for p in range(12) if window.may_write(p, p)] == [3, 4, 10]
    assert window.may_write(0, 3) and window.may_write(5, 12) and not window.may_write(5, 9)
    assert not Window(0, 10, ()).may_write(0, 1 << 20)


def test_written_pages_by_identity() -> None:
    a, b, c = (bytes([n]) * PAGE for n in (1, 2, 3))
    earlier = PageTable(((a, b, *(None,) * (NODE_PAGES - 2)), None))
    same_node = PageTable((earlier.nodes[0], None))
    assert written_pages(earlier, same_node) == ((NODE_PAGES, NODE_PAGES),)  # a None node proves nothing
    later = PageTable(((a, c, *(None,) * (NODE_PAGES - 2)), None))
    assert written_pages(earlier, later) == ((1, 2 * NODE_PAGES - 1),)  # page 1 rewritten; zero pages: unknown
    assert written_pages(earlier, PageTable((None,))) is None  # another RAM size


@pytest.mark.parametrize(
    ("arch", "cause", "interrupt", "name"),
    [
        ("riscv32", 7, True, "machine timer"),
        ("riscv64", 11, True, "machine external"),
        ("riscv32", 11, False, "ecall from M"),
        ("riscv32", 99, False, "exception 99"),
        ("riscv32", 99, True, "interrupt 99"),
        ("aarch64", 27, True, "IRQ 27 (virtual timer)"),
        ("aarch64", 0x15, False, "svc"),
        ("aarch64", 0x3F, False, "exception class 0x3f"),
        ("armv7m", 15, False, "SysTick"),
        ("armv7m", 14, True, "PendSV"),
        ("armv7m", 16 + 3, True, "IRQ 3"),
        ("armv7m", 7, False, "exception 7"),
    ],
)
def test_trap_names(arch: str, cause: int, interrupt: bool, name: str) -> None:
    assert trap_name(arch, cause, interrupt) == name


# -- an engine over a real recording ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("query") / "cmdint.chrec"
    inputs = ROOT / "gdbstub" / "demo" / "firmware" / "cmdint-bug.txt"
    done = subprocess.run([sys.executable, "-m", "gdbstub.cli", "record", str(CMDINT), "-o", str(out),
                           "--uart-input", str(inputs)], capture_output=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert out.is_file(), done.stderr
    return out


@pytest.fixture(scope="module")
def engine(recording: Path) -> QueryEngine:
    engine = open_engine(recording, cache=False)
    engine.timeline.seek(20_000)  # where a debugger would stand
    return engine


KIND_QUERIES = [
    "writes probe.scale",
    "reads ticks --from 17000",
    "accesses ring_head --from 18000 --to 22000",
    f"writes {SYMBOLS['probe']:#x} 28",
    "calls uart_puts",
    f"calls {SYMBOLS['trap_handler']:#x} --to 21000",
    "interrupts",
    "value probe --at 21500",
    "value probe.name --at 0",
]


@pytest.mark.parametrize("words", KIND_QUERIES)
def test_query_keeps_the_debuggers_place(engine: QueryEngine, words: str) -> None:
    """gdb does not move: after any query the timeline is where it was, the whole machine the same."""
    timeline = engine.timeline
    before = (timeline.icount, timeline.machine.digest())
    result = engine.run(parse_query(words.split()))
    assert (timeline.icount, timeline.machine.digest()) == before
    assert result.rows or words.startswith("value")


@pytest.mark.parametrize("words", KIND_QUERIES)
def test_renderings_agree(engine: QueryEngine, words: str) -> None:
    result = engine.run(parse_query(words.split()))
    document = json.loads(result.to_json())
    assert document["query"] == result.kind and document["rows"] == [dict(r) for r in result.rows]
    table = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert [row["icount"] for row in table] == [str(r["icount"]) for r in result.rows]
    assert list(table[0]) == list(result.columns)
    text = result.to_text().splitlines()
    assert len(text) == 2 + len(result.rows)
    assert [line.split()[0] for line in text[2:]] == [str(r["icount"]) for r in result.rows]


def test_empty_result_says_none(engine: QueryEngine) -> None:
    result = engine.run(parse_query("writes probe.scale --from 0 --to 100".split()))
    assert result.rows == () and result.to_text() == "writes probe.scale: none in icount 0..100\n"
    assert result.to_csv().splitlines() == [",".join(result.columns)]
    assert json.loads(result.to_json())["rows"] == []


def test_rows_are_annotated(engine: QueryEngine) -> None:
    (first, *rest) = engine.run(parse_query(["writes", "probe.scale"])).rows
    assert (first["function"], first["old"], first["new"], first["access"]) == ("set_scale", "1", "3", "write")
    assert first["where"].startswith("cmdint.c:") and first["instruction"] and first["source"]
    assert first["summary"].startswith("probe.scale: 1 -> 3 by set_scale cmdint.c:")
    assert {r["function"] for r in rest} == {"set_name"}  # the bug: the name overflows into scale
    (call, *_) = engine.run(parse_query(["calls", "uart_puts"])).rows
    assert call["function"] == "uart_puts" and call["caller"] == "main" and call["duration"] > 0
    assert list(call["args"]) == ["s"]  # (DWARF's parameter names)
    (trap, *_) = engine.run(parse_query(["interrupts"])).rows
    assert trap["type"] == "interrupt" and trap["name"] == "machine external" and trap["handler"] == "trap_entry"


def test_value_series_is_a_step_function_of_the_writes(engine: QueryEngine) -> None:
    addr = SYMBOLS["probe"] + 16
    points = engine.value_series("probe.scale")
    writes = engine.accesses(addr, 4, WatchKind.WRITE)
    assert [p.icount for p in points] == [0] + [w.icount + 1 for w in writes]
    for point in points:
        assert point.number == int.from_bytes(engine.value_at(addr, 4, point.icount), "little")
        assert point.text == str(int(point.number))


def test_access_answers_are_values(engine: QueryEngine) -> None:
    (first, *_) = engine.accesses(SYMBOLS["probe"] + 16, 4, WatchKind.WRITE)
    assert isinstance(first, Access) and first.kind == WatchKind.WRITE and first.device is None
    assert first.old == (1).to_bytes(4, "little") and first.new == (3).to_bytes(4, "little")
    with pytest.raises(AttributeError):
        first.icount = 0  # type: ignore[misc]
    (call, *_) = engine.calls(SYMBOLS["uart_puts"])
    assert call.entry == SYMBOLS["uart_puts"] and call.returned is not None and call.returned > call.icount


@pytest.mark.parametrize(
    ("ask", "says"),
    [
        (lambda e: e.accesses(0x1000_0000, 4, WatchKind.WRITE), "not RAM"),
        (lambda e: e.accesses(SYMBOLS["probe"], 0, WatchKind.WRITE), "size 0"),
        (lambda e: e.accesses(SYMBOLS["probe"], 4, WatchKind.READ, 10, 10**9), "outside history"),
        (lambda e: e.calls(SYMBOLS["main"], 10**9), "outside history"),
        (lambda e: e.interrupts(None, 10**9), "outside history"),
        (lambda e: e.value_at(SYMBOLS["probe"], 4, 10**9), "outside history"),
        (lambda e: e.value_at(0x1000_0000 - 2, 4, 5), "cannot read"),
        (lambda e: e.target("no_such_thing"), "no_such_thing"),
        (lambda e: e.run(QueryRequest("frobnicate", "x")), "unknown query"),
    ],
)
def test_engine_errors_are_query_errors(engine: QueryEngine, ask: object, says: str) -> None:
    timeline = engine.timeline
    here = timeline.icount
    with pytest.raises(QueryError, match=says):
        ask(engine)  # type: ignore[operator]
    assert timeline.icount == here


def test_answers_are_capped(engine: QueryEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    everything = engine.accesses(SYMBOLS["ring_head"], 4, WatchKind.READ)
    assert len(everything) > 5
    monkeypatch.setattr(query_module, "MAX_ANSWERS", 5)
    assert engine.accesses(SYMBOLS["ring_head"], 4, WatchKind.READ) == everything[:5]
    result = engine.run(parse_query(["reads", "ring_head"]))
    assert len(result.rows) == 5 and result.note == "(stopped after 5 answers)"
    assert "(stopped after 5 answers)" in result.to_text().splitlines()[0]


def test_engine_without_symbols_takes_addresses(recording: Path, tmp_path: Path) -> None:
    """The guest moved away and not given: ADDR LEN and function addresses still work; names say why not."""
    copy = Path(shutil.copy(recording, tmp_path / "c.chrec"))
    engine = open_engine(copy, cache=False)
    engine.symbols = None
    rows = engine.run(parse_query(["writes", f"{SYMBOLS['probe'] + 16:#x}", "4"])).rows
    assert [r["new"] for r in rows][:1] == ["3"] and rows[0]["function"] is None
    with pytest.raises(QueryError, match="no symbols"):
        engine.run(parse_query(["writes", "probe.scale"]))
    with pytest.raises(QueryError, match="no symbols"):
        engine.run(parse_query(["calls", "uart_puts"]))
    assert engine.run(parse_query(["calls", f"{SYMBOLS['uart_puts']:#x}"])).rows
