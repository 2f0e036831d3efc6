"""Reverse debugging of AArch64 guests from the real gdb-multiarch (``chronicorn serve`` and ``replay --port``).

The same checks as test_reverse.py makes on RISC-V: every backward move is compared with what was seen going
forward at the same icount, across interrupt entry (the GIC and the generic timer), watchpoints backward and
forward, reverse-next/step/finish, the start of history, and a saved recording served with reverse.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.e2e.gdb import Gdb, GdbError, ServerProcess, require_gdb
from tests.integration.test_aarch64 import A64, elf, stdin_of

pytestmark = pytest.mark.gdb


def icount(gdb: Gdb) -> int:
    return int(gdb.console("monitor icount"))


def line(stopped: dict) -> int:
    return int(stopped["frame"]["line"])


def is_history_begin(gdb: Gdb, stopped: dict) -> bool:
    return "reason" not in stopped and "No more reverse-execution history" in gdb.output


def test_gdb_sees_an_aarch64_target(debug) -> None:  # noqa: ANN001
    _, gdb = debug(elf("hello"))
    assert "aarch64" in gdb.console("show architecture")
    registers = gdb.registers()
    assert registers["pc"] == 0x40080000  # the ELF's entry: QEMU's -kernel boot at EL1h
    assert int(gdb.evaluate("$cpsr"), 0) & 0xF == 0x5  # EL1h
    assert gdb.evaluate("$x0") == "0"


def test_reverse_stepi_retraces_every_register_across_an_interrupt(debug) -> None:  # noqa: ANN001
    _, gdb = debug(elf("timer"))
    gdb.mi("-break-insert irq_handler")
    gdb.run("-exec-continue")  # inside the IRQ handler: the way back crosses the exception entry
    gdb.mi("-break-delete")
    seen = []
    for _ in range(12):
        seen.append((icount(gdb), gdb.registers()))
        gdb.run("-exec-step-instruction")
    for expected_icount, expected_registers in reversed(seen):
        gdb.run("-exec-step-instruction --reverse")
        assert icount(gdb) == expected_icount
        assert gdb.registers() == expected_registers


def test_reverse_continue_finds_each_earlier_interrupt(debug) -> None:  # noqa: ANN001
    _, gdb = debug(elf("timer"))
    gdb.mi("-break-insert irq_handler")
    hits = []
    for _ in range(4):
        gdb.run("-exec-continue")
        hits.append((icount(gdb), gdb.evaluate("ticks")))
    for expected in reversed(hits[:-1]):
        stopped = gdb.run("-exec-continue --reverse")
        assert stopped["reason"] == "breakpoint-hit" and stopped["frame"]["func"] == "irq_handler"
        assert (icount(gdb), gdb.evaluate("ticks")) == expected
    stopped = gdb.run("-exec-continue --reverse")
    assert is_history_begin(gdb, stopped) and icount(gdb) == 0
    gdb.run("-exec-continue")
    assert (icount(gdb), gdb.evaluate("ticks")) == hits[0]


def test_reverse_watch_finds_the_culprit_store(debug) -> None:  # noqa: ANN001
    """cmdbug's off-by-one store into `scale`: a reverse watch from the end stops at the culprit line."""
    _, gdb = debug(elf("cmdbug"), stdin=(A64 / "inputs" / "cmdbug-bug.txt").open("rb"))
    stopped = gdb.run("-exec-continue")
    assert is_history_begin(gdb, stopped) or stopped.get("reason") in ("exited-normally", "exited", None)
    gdb.mi("-break-watch scale")
    stopped = gdb.run("-exec-continue --reverse")
    assert stopped["reason"] == "watchpoint-trigger"
    assert stopped["frame"]["func"] == "cmd_set"
    assert stopped["value"] == {"old": "4", "new": "2"}
    culprit = icount(gdb)
    stopped = gdb.run("-exec-continue --reverse")  # the one before: cmd_scale's legitimate write 1 -> 2
    assert stopped["frame"]["func"] == "cmd_scale" and icount(gdb) < culprit
    stopped = gdb.run("-exec-continue")  # forward: the same write again, then the culprit's
    assert stopped["frame"]["func"] == "cmd_scale" and stopped["value"] == {"old": "1", "new": "2"}
    stopped = gdb.run("-exec-continue")
    assert stopped["frame"]["func"] == "cmd_set" and stopped["value"] == {"old": "2", "new": "4"}
    assert icount(gdb) >= culprit


def test_reverse_next_step_and_finish(debug) -> None:  # noqa: ANN001
    """reverse-next lands on each line forward ``next`` went through. (Where in the line is gdb's choice: at -O2
    hello's line 16 shares its first address with line 14, so gdb's reverse-next stops at the line's second
    instruction, one after where forward ``next`` arrived; the icount must lie within that line's stretch.)"""
    _, gdb = debug(elf("hello"))
    gdb.mi("-break-insert main")
    gdb.run("-exec-continue")
    forward = []  # (icount, line) at each stop going forward
    for _ in range(4):
        forward.append((icount(gdb), int(gdb.frame()["line"])))
        gdb.run("-exec-next")
    forward.append((icount(gdb), int(gdb.frame()["line"])))
    for i in range(len(forward) - 2, 0, -1):
        stopped = gdb.run("-exec-next --reverse")
        assert stopped["reason"] == "end-stepping-range"
        assert line(stopped) == forward[i][1]
        assert forward[i][0] <= icount(gdb) < forward[i + 1][0]
    gdb.run("-exec-next")
    stopped = gdb.run("-exec-step --reverse")
    if stopped["frame"]["func"] != "main":
        stopped = gdb.run("-exec-finish --reverse")
        assert stopped["frame"]["func"] == "main"


def test_no_more_history_at_the_start(debug) -> None:  # noqa: ANN001
    _, gdb = debug(elf("hello"))
    stopped = gdb.run("-exec-step-instruction --reverse")
    assert is_history_begin(gdb, stopped) and icount(gdb) == 0
    gdb.run("-exec-step-instruction")
    gdb.run("-exec-step-instruction")
    stopped = gdb.run("-exec-continue --reverse")
    assert is_history_begin(gdb, stopped) and icount(gdb) == 0 and int(gdb.frame()["addr"], 16) == 0x40080000


def test_replay_port_serves_an_aarch64_recording_with_reverse(tmp_path) -> None:  # noqa: ANN001
    require_gdb()
    recording = tmp_path / "echo.chrec"
    subprocess.run([sys.executable, "-m", "gdbstub.cli", "record", str(elf("echo")), "-o", str(recording)],
                   input=stdin_of("echo"), cwd=ROOT, capture_output=True, check=True, timeout=120)  # fmt: skip
    server = ServerProcess(recording, command="replay")
    gdb = Gdb(elf("echo"))
    try:
        gdb.connect(server.port)
        stopped = gdb.run("-exec-continue")
        assert "reason" not in stopped and "No more reverse-execution history" in gdb.output
        end = icount(gdb)
        gdb.mi("-break-insert irq_handler")
        stopped = gdb.run("-exec-continue --reverse")
        assert stopped["reason"] == "breakpoint-hit" and icount(gdb) < end
        with pytest.raises(GdbError):
            gdb.mi("-gdb-set var $x0 = 0")  # a saved recording is fixed
        gdb.mi("-break-delete")
        gdb.run("-exec-continue")
        assert icount(gdb) == end
    finally:
        gdb.close()
        out, _ = server.stop()
    assert out == (A64 / "expected" / "echo.out").read_bytes()
