"""Queries from gdb (issue 16 item 2): ``monitor writes``, ``calls``, ``interrupts``, ``value``, ``goto``, ``when``,
on the real gdb-multiarch against ``replay --port`` and a live ``serve``.

The answers are checked against ``chronicorn query`` on the same recording (another process, another way in),
and gdb's own view after ``monitor goto N`` (the watched value there, gdb's frame) against the answer's row.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import guest, run_cli
from tests.e2e.gdb import Gdb, ServerProcess, require_gdb

pytestmark = pytest.mark.gdb

DEMO = "gdbstub/demo/firmware/rv32/cmdint.elf"
BUG_INPUT = "gdbstub/demo/firmware/cmdint-bug.txt"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    path = tmp_path_factory.mktemp("query") / "cmdint.chrec"
    done = run_cli("record", DEMO, "-o", str(path), "--uart-input", BUG_INPUT)
    assert done.returncode == 7, done.stderr  # the demo's assertion fails
    return path


def cli_rows(recording, *words: str) -> list[dict]:  # noqa: ANN001
    done = run_cli("query", str(recording), *words, "--json", "--no-cache")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["rows"]


def icount(gdb: Gdb) -> int:
    return int(gdb.console("monitor icount"))


def test_monitor_queries_answer_as_the_command_line_and_gdb_does_not_move(recording) -> None:  # noqa: ANN001
    require_gdb()
    writes = cli_rows(recording, "writes", "probe.scale")
    calls = cli_rows(recording, "calls", "uart_puts")
    traps = cli_rows(recording, "interrupts")
    assert writes and calls and traps
    with ServerProcess(recording, command="replay") as server, Gdb(DEMO) as gdb:
        gdb.connect(server.port)
        gdb.cont()  # to the end of the recording (the failure)
        end = icount(gdb)
        pc = gdb.registers()["pc"]
        text = gdb.console("monitor writes probe.scale")
        # One line per write, in the CLI's order, with its icount and values.
        lines = [line for line in text.splitlines() if re.match(r"^\d+ ", line)]
        assert [int(line.split()[0]) for line in lines] == [w["icount"] for w in writes]
        for line, write in zip(lines, writes, strict=True):
            assert f" {write['old']} " in line and f" {write['new']} " in line and write["function"] in line
        assert [int(line.split()[0]) for line in gdb.console("monitor calls uart_puts").splitlines()
                if re.match(r"^\d+ ", line)] == [c["icount"] for c in calls]  # fmt: skip
        assert len([line for line in gdb.console("monitor interrupts").splitlines()
                    if re.match(r"^\d+ ", line)]) == len(traps)  # fmt: skip
        # gdb did not move.
        assert icount(gdb) == end and gdb.registers()["pc"] == pc
        # value --at: what gdb itself reads there.
        middle = writes[1]["icount"] + 1
        value = gdb.console(f"monitor value probe.scale --at {middle}")
        assert value.splitlines()[-1].split()[-1] == writes[1]["new"]
        assert icount(gdb) == end
        # goto the last write: gdb sees the value before it, steps over the store and sees the new one.
        last = writes[-1]
        assert gdb.console(f"monitor goto {last['icount']}").startswith(f"icount {last['icount']}")
        gdb.mi("maint flush register-cache")
        assert gdb.evaluate("probe.scale") == last["old"]
        assert gdb.frame()["func"] == last["function"]
        gdb.stepi()
        assert gdb.evaluate("probe.scale") == last["new"]
        when = gdb.console("monitor when")
        assert when.startswith(f"now: icount {last['icount'] + 1} ")
        assert re.search(r"^traps: \d+ in history, \d+ up to here$", when, re.MULTILINE)
        assert "error" in gdb.console("monitor writes no_such_variable")
        assert "error" in gdb.console(f"monitor writes probe.scale --from {end + 5}")


def test_queries_on_a_live_history_grow_with_it(debug, tmp_path) -> None:  # noqa: ANN001
    """``serve``: a query answers over the history recorded so far; after running on, over the longer one, and
    the answers equal those of ``chronicorn query`` on the saved recording."""
    elf = guest("rv32", "timer")
    _, gdb = debug(elf, "--save-dir", str(tmp_path))
    gdb.break_at("trap_handler", ignore=2)
    gdb.cont()
    first = [line for line in gdb.console("monitor interrupts").splitlines() if re.match(r"^\d+ ", line)]
    # Stopped in the third handler: it has not returned yet (no return icount, no duration).
    assert len(first) == 3 and int(first[-1].split()[0]) <= icount(gdb) and len(first[-1].split()) == 7
    gdb.delete()
    gdb.cont()  # to the guest's exit
    lines = [line for line in gdb.console("monitor interrupts").splitlines() if re.match(r"^\d+ ", line)]
    assert lines[:3] == first[:2] + lines[2:3] and len(lines) > 3
    assert "saved" in gdb.console("monitor record save timer.chrec")
    rows = cli_rows(tmp_path / "timer.chrec", "interrupts")
    assert [int(line.split()[0]) for line in lines] == [r["icount"] for r in rows]
