"""``chronicorn query`` (gdbstub/cli/query.py): text, JSON and CSV say the same; bad input is one line and
exit code 2; the same query gives the same JSON in fresh processes, with the cache and without.

The recording: rv32 cmdint with the bug input (gdbstub/demo/firmware/cmdint-bug.txt: ``name`` overflows into
``probe.scale``), so ``writes probe.scale`` has an answer from ``set_scale`` and three from ``set_name``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gdbstub.cli import main
from gdbstub.query import open_engine
from machine.loader import load_image
from machine.watch import WatchKind
from tests.conftest import ROOT, guest, run_cli

CMDINT = guest("rv32", "cmdint")
BUG_INPUT = ROOT / "gdbstub" / "demo" / "firmware" / "cmdint-bug.txt"
SYMBOLS = load_image(CMDINT).symbols
QUERIES = [
    ["writes", "probe.scale"],
    ["writes", "probe"],
    ["writes", f"{SYMBOLS['ticks']:#x}", "4", "--from", "17000", "--to", "22000"],
    ["reads", "ticks"],
    ["accesses", "probe.samples"],
    ["calls", "uart_puts"],
    ["calls", f"{SYMBOLS['trap_handler']:#x}"],
    ["interrupts"],
    ["interrupts", "--from", "18000", "--to", "21000"],
    ["value", "probe", "--at", "22000"],
    ["value", "probe.scale", "--at", "0"],
    ["writes", "window", "--from", "25074"],  # an empty range: no answers
]


def query(recording: Path, *words: str) -> tuple[int, str, str]:
    """``chronicorn query RECORDING WORDS`` in a fresh process: exit code, stdout, stderr."""
    done = run_cli("query", str(recording), *words)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


@pytest.fixture
def chronicorn(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``chronicorn ARGS`` in this process (``gdbstub.cli.main``, as the console script): exit code, stdout,
    stderr. Fast; the subprocess tests below cover the real command line."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("query-cli") / "cmdint.chrec"
    done = run_cli("record", str(CMDINT), "-o", str(out), "--uart-input", str(BUG_INPUT))
    assert out.is_file(), done.stderr
    return out


@pytest.fixture(scope="module")
def outputs(recording: Path) -> dict[str, tuple[str, str, str]]:
    """Each query's text, JSON and CSV, in this process (the first run builds the cache; the others read it)."""
    found = {}
    for words in QUERIES:
        results = []
        for form in ([], ["--json"], ["--csv"]):
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(["query", str(recording), *words, *form])
            assert (code, err.getvalue()) == (0, ""), (words, form, err.getvalue())
            results.append(out.getvalue())
        found[" ".join(words)] = (results[0], results[1], results[2])
    return found


def text_rows(text: str) -> tuple[str, list[dict[str, str]]]:
    """The title line and the rows of a text table, cut at its column headers' positions."""
    lines = text.rstrip("\n").split("\n")
    if len(lines) == 1:
        return lines[0], []
    header = lines[1]
    names = header.split()
    starts = []
    at = 0
    for name in names:
        at = header.index(name, at)
        starts.append(at)
        at += len(name)
    rows = []
    for line in lines[2:]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows.append(dict(zip(names, cells, strict=True)))
    return lines[0], rows


def cell(value: Any) -> str:
    """A JSON value as the CSV and the text table show it."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


@pytest.mark.parametrize("words", [" ".join(w) for w in QUERIES])
def test_text_json_and_csv_agree(outputs: dict[str, tuple[str, str, str]], words: str) -> None:
    text, as_json, as_csv = outputs[words]
    document = json.loads(as_json)
    assert document["query"] == words.split()[0]
    rows = document["rows"]
    table = list(csv.DictReader(io.StringIO(as_csv)))
    columns = as_csv.split("\n", 1)[0].split(",")
    assert [{c: cell(row.get(c)) for c in columns} for row in rows] == table
    title, cut = text_rows(text)
    assert title.split(":")[0].split()[0] == words.split()[0]
    if not rows:
        assert title.endswith(f"none in icount {span(words)}") and table == []
        return
    assert f": {len(rows)} in icount {span(words)}" in title
    assert [{c: cell(row.get(c)) for c in cut[0]} for row in rows] == cut
    assert all("icount" in row and row["summary"] for row in rows)
    assert [row["icount"] for row in rows] == sorted(row["icount"] for row in rows)


def span(words: str) -> str:
    """The icount span a result's title names."""
    parts = words.split()
    options = dict(zip(parts, parts[1:], strict=False))
    if "--at" in options:
        return options["--at"]
    return f"{options.get('--from', 'start')}..{options.get('--to', 'end')}"


def test_json_answers_are_the_engines(recording: Path, outputs: dict[str, tuple[str, str, str]]) -> None:
    """The rows are the engine's answers (icounts, pcs, values), annotated."""
    engine = open_engine(recording, cache=False)
    rows = json.loads(outputs["writes probe.scale"][1])["rows"]
    scale = SYMBOLS["probe"] + 16  # struct probe { char name[16]; uint32_t scale; ... }
    found = engine.accesses(scale, 4, WatchKind.WRITE)
    assert [(r["icount"], r["pc"]) for r in rows] == [(a.icount, hex(a.pc)) for a in found]
    assert [r["new"] for r in rows] == [str(int.from_bytes(a.new, "little")) for a in found]
    assert [r["function"] for r in rows] == ["set_scale", "set_name", "set_name", "set_name"]
    traps = json.loads(outputs["interrupts"][1])["rows"]
    assert [(t["icount"], t["returned"]) for t in traps] == [(t.icount, t.returned) for t in engine.interrupts()]
    calls = json.loads(outputs[f"calls {SYMBOLS['trap_handler']:#x}"][1])["rows"]
    assert [c["icount"] for c in calls] == [c.icount for c in engine.calls(SYMBOLS["trap_handler"])] != []
    (value,) = json.loads(outputs["value probe.scale --at 0"][1])["rows"]
    assert value["value"] == str(int.from_bytes(engine.value_at(scale, 4, 0), "little"))


def test_same_query_gives_the_same_json_in_fresh_processes(recording: Path, tmp_path: Path) -> None:
    """Determinism: twice without the cache, then building it, then reading it: byte-identical JSON."""
    copy = Path(shutil.copy(recording, tmp_path / "copy.chrec"))
    words = ["writes", "probe", "--json"]
    runs = [query(copy, *words, "--no-cache"), query(copy, *words, "--no-cache")]
    assert not copy.with_name("copy.chrec.index").exists()
    runs += [query(copy, *words), query(copy, *words)]
    assert copy.with_name("copy.chrec.index").exists()
    assert all(run == runs[0] for run in runs) and runs[0][0] == 0 and json.loads(runs[0][1])["rows"]


@pytest.mark.parametrize("words", ["calls uart_puts", "interrupts", "reads ticks --from 20000", "value probe --at 9"])
def test_every_kind_gives_the_same_json_in_fresh_processes(recording: Path, words: str) -> None:
    runs = [query(recording, *words.split(), "--json", "--no-cache") for _ in range(2)]
    assert runs[0] == runs[1] and runs[0][0] == 0 and json.loads(runs[0][1])["rows"]


def one_line_error(done: tuple[int, str, str]) -> str:
    code, out, err = done
    assert code == 2 and out == "", done
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("chronicorn: "), err
    return lines[0]


BAD_QUERIES = {
    "to before from": (["writes", "probe", "--from", "10", "--to", "5"], "--to 5 is before --from 10"),
    "to past the end": (["writes", "probe", "--to", "99999999"], "outside history"),
    "from past the end": (["interrupts", "--from", "99999999"], "outside history"),
    "at past the end": (["value", "ticks", "--at", "99999999"], "outside history"),
    "unknown symbol": (["writes", "no_such_variable"], "no_such_variable"),
    "unknown member": (["writes", "probe.no_such_member"], "no_such_member"),
    "unknown function": (["calls", "no_such_function"], "no_such_function"),
    "not an expression": (["writes", "probe.scale+1"], "cannot parse"),
    "address not in RAM": (["writes", "0x10000000", "4"], "not RAM"),
    "address 0": (["reads", "0", "4"], "not RAM"),
    "address past 64 bits": (["writes", "0xffffffffffffffff", "8"], "not RAM"),
    "length 0": (["writes", "0x80001000", "0"], "length 0"),
    "length too big": (["writes", "0x80001000", "2000000"], "length 2000000"),
    "value without --at": (["value", "ticks"], "--at"),
    "value with --from": (["value", "ticks", "--at", "5", "--from", "1"], "--at"),
    "--at for writes": (["writes", "ticks", "--at", "5"], "--at is for value"),
    "interrupts with a target": (["interrupts", "ticks"], "interrupts takes no target"),
    "writes without a target": (["writes"], "needs an expression"),
    "calls without a function": (["calls"], "needs a function"),
    "an inlined function": (["calls", "set_scale"], "inlined"),
}


@pytest.mark.parametrize("case", list(BAD_QUERIES), ids=list(BAD_QUERIES))
def test_bad_query_is_one_line_and_exit_2(recording: Path, case: str, chronicorn: Any) -> None:
    words, says = BAD_QUERIES[case]
    assert says in one_line_error(chronicorn("query", str(recording), *words))


@pytest.mark.parametrize("case", ["to before from", "unknown symbol", "address not in RAM"])
def test_bad_query_from_the_real_command_line(recording: Path, case: str) -> None:
    words, says = BAD_QUERIES[case]
    assert says in one_line_error(query(recording, *words))


def test_unknown_query_names_it_first(recording: Path) -> None:
    """An unknown query word: exit 2, one line naming it and the queries there are."""
    code, out, err = query(recording, "bogus", "ticks")
    assert (code, out) == (2, "") and "Traceback" not in err
    assert err == "chronicorn: unknown query 'bogus' (one of: writes, reads, accesses, calls, interrupts, value)\n"


@pytest.mark.parametrize("what", ["text file", "empty file", "directory", "missing", "guest ELF", "truncated"])
def test_not_a_recording_is_one_line_and_exit_2(what: str, recording: Path, tmp_path: Path, chronicorn: Any) -> None:
    path = tmp_path / "not.chrec"
    if what == "text file":
        path.write_text("hello\n")
    elif what == "empty file":
        path.write_bytes(b"")
    elif what == "directory":
        path.mkdir()
    elif what == "guest ELF":
        shutil.copy(CMDINT, path)
    elif what == "truncated":
        path.write_bytes(recording.read_bytes()[:100])
    one_line_error(chronicorn("query", str(path), "interrupts"))
    assert not path.with_name("not.chrec.index").exists()


def test_no_cache_flag_writes_nothing(recording: Path, tmp_path: Path, chronicorn: Any) -> None:
    copy = Path(shutil.copy(recording, tmp_path / "copy.chrec"))
    code, out, _ = chronicorn("query", str(copy), "interrupts", "--no-cache")
    assert code == 0 and out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.chrec"]


def test_windows_scanned_in_worker_processes_give_the_same_answers(tmp_path: Path) -> None:
    """``--jobs 2``: the windows are replayed in two worker processes from the cached index's snapshots (each
    window on its own); the answers are those of one process, in the same order."""
    recording = tmp_path / "compute.chrec"
    done = run_cli("record", str(guest("rv32", "compute")), "-o", str(recording), "--max-insns", "9000000")
    assert recording.is_file(), done.stderr
    for words in (["reads", "composite[100]"], ["accesses", "buf[7]"], ["writes", "composite[4]"]):
        one = query(recording, *words, "--json")
        two = query(recording, *words, "--json", "--jobs", "2")
        assert one[0] == 0 and one == two
        assert json.loads(one[1])["rows"], words  # answers there are to compare
    assert query(recording, "reads", "buf[0]", "--jobs", "0")[0] == 2
