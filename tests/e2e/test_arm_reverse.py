"""Reverse debugging of Arm guests (AArch64 ``virt`` and Cortex-M3 ``mps2-an385``) from the real gdb-multiarch,
through ``chronicorn serve`` and ``replay --port``.

The same checks as test_reverse.py makes on RISC-V: every backward move is compared with what was seen going
forward at the same icount, across interrupt entry (AArch64: the GIC and the generic timer; Cortex-M: SysTick and
the NVIC, with its 8-word frame), watchpoints backward and forward, reverse-next/step/finish, the start of
history, and a saved recording served with reverse.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest

from tests.conftest import ROOT
from tests.e2e.gdb import Gdb, GdbError, ServerProcess, require_gdb
from tests.integration.test_arm import AARCH64, CORTEXM, Board

pytestmark = pytest.mark.gdb


@dataclass(frozen=True)
class Names:
    board: Board
    timer_guest: str
    timer_handler: str
    echo_handler: str
    reset_pc: int  # where execution starts (icount 0)
    culprit_writes: tuple[tuple[str, str, str], ...]  # (function, old, new) of each write to `scale`, last first


ARM = {
    "aarch64": Names(AARCH64, "timer", "irq_handler", "irq_handler", 0x40080000,
                     (("cmd_set", "2", "4"), ("cmd_scale", "1", "2"))),
    "cortexm": Names(CORTEXM, "systick", "SysTick_Handler", "UART0RX_IRQHandler", 0x100, (("cmd_set", "10", "7"),)),
}  # fmt: skip


@pytest.fixture(params=[pytest.param("aarch64", marks=pytest.mark.slow), "cortexm"])
def arm(request: pytest.FixtureRequest) -> Names:
    """Each test on both boards; the fast subset runs Cortex-M (its exception model is the board's own code)."""
    return ARM[request.param]


def icount(gdb: Gdb) -> int:
    return int(gdb.console("monitor icount"))


def line(stopped: dict) -> int:
    return int(stopped["frame"]["line"])


def is_history_begin(gdb: Gdb, stopped: dict) -> bool:
    return "reason" not in stopped and "No more reverse-execution history" in gdb.output


def test_gdb_sees_the_cpu_as_qemu_starts_it(arm: Names, debug) -> None:  # noqa: ANN001
    _, gdb = debug(arm.board.elf("hello"))
    registers = gdb.registers(range(16) if arm is ARM["cortexm"] else range(33))
    assert registers["pc"] == arm.reset_pc
    if arm is ARM["aarch64"]:
        assert "aarch64" in gdb.console("show architecture")
        assert int(gdb.evaluate("$cpsr")) & 0xF == 0x5  # EL1h
    else:
        assert int(gdb.evaluate("$xpsr")) >> 24 & 1 == 1  # Thumb
        assert int(gdb.evaluate("$msp"), 0) == registers["sp"]  # the vector table's initial SP, on MSP
        assert gdb.evaluate("$control") == "0"


def test_backtrace_through_an_exception_frame(debug) -> None:  # noqa: ANN001
    """Cortex-M: gdb unwinds from SysTick_Handler through the stacked frame (msp/psp in m-system) into main."""
    _, gdb = debug(CORTEXM.elf("systick"))
    gdb.mi("-break-insert SysTick_Handler")
    gdb.run("-exec-continue")
    trace = gdb.console("bt")
    assert "SysTick_Handler" in trace and "<signal handler called>" in trace and "main" in trace


def test_reverse_stepi_retraces_every_register_across_an_interrupt(arm: Names, debug) -> None:  # noqa: ANN001
    _, gdb = debug(arm.board.elf(arm.timer_guest))
    gdb.mi(f"-break-insert {arm.timer_handler}")
    gdb.run("-exec-continue")  # inside the handler: the way back crosses the exception entry
    gdb.mi("-break-delete")
    for _ in range(3):
        gdb.run("-exec-step-instruction --reverse")  # back over the entry, into the interrupted code
    seen = []
    for _ in range(12):
        seen.append((icount(gdb), gdb.registers(range(16) if arm is ARM["cortexm"] else range(33))))
        gdb.run("-exec-step-instruction")
    for expected_icount, expected_registers in reversed(seen):
        gdb.run("-exec-step-instruction --reverse")
        assert icount(gdb) == expected_icount
        assert gdb.registers(range(16) if arm is ARM["cortexm"] else range(33)) == expected_registers


def test_reverse_continue_finds_each_earlier_interrupt(arm: Names, debug) -> None:  # noqa: ANN001
    _, gdb = debug(arm.board.elf(arm.timer_guest))
    gdb.mi(f"-break-insert {arm.timer_handler}")
    hits = []
    for _ in range(4):
        gdb.run("-exec-continue")
        hits.append((icount(gdb), gdb.evaluate("ticks")))
    for expected in reversed(hits[:-1]):
        stopped = gdb.run("-exec-continue --reverse")
        assert stopped["reason"] == "breakpoint-hit" and stopped["frame"]["func"] == arm.timer_handler
        assert (icount(gdb), gdb.evaluate("ticks")) == expected
    stopped = gdb.run("-exec-continue --reverse")
    assert is_history_begin(gdb, stopped) and icount(gdb) == 0
    gdb.run("-exec-continue")
    assert (icount(gdb), gdb.evaluate("ticks")) == hits[0]


def test_reverse_watch_finds_the_culprit_store(arm: Names, debug) -> None:  # noqa: ANN001
    """cmdbug's unchecked store into `scale`: a reverse watch from the end stops at each write, the culprit
    first; forward again shows the same writes."""
    inputs = (arm.board.directory / "inputs" / "cmdbug-bug.txt").open("rb")
    _, gdb = debug(arm.board.elf("cmdbug"), stdin=inputs)
    gdb.run("-exec-continue")
    gdb.mi("-break-watch scale")
    stops = []
    for function, old, new in arm.culprit_writes:
        stopped = gdb.run("-exec-continue --reverse")
        assert stopped["reason"] == "watchpoint-trigger" and stopped["frame"]["func"] == function
        assert stopped["value"] == {"old": new, "new": old}  # going back, gdb shows the undone write
        stops.append(icount(gdb))
    assert stops == sorted(stops, reverse=True)
    for function, old, new in reversed(arm.culprit_writes):
        stopped = gdb.run("-exec-continue")
        assert stopped["frame"]["func"] == function and stopped["value"] == {"old": old, "new": new}


def test_reverse_watch_finds_the_exception_entry_stacking(debug) -> None:  # noqa: ANN001
    """pendsv: each `svc` stacks r0-r3, r12, lr, pc and xPSR on the running task's stack, written by the board's
    exception entry, not by an instruction. A watch on the word of task a's stacked pc, from the end backward,
    stops at the last such `svc` (the stacked value: the address after it), and forward again shows the same
    write, with chronicorn's note naming the exception entry."""
    _, gdb = debug(CORTEXM.elf("pendsv"))
    gdb.run("-exec-continue")  # to the guest's exit: the end of history
    gdb.mi("-break-watch stack_a[510]")  # the last frame's pc word (frame r0..xPSR: stack_a[504..511])
    stopped = gdb.run("-exec-continue --reverse")
    assert stopped["reason"] == "watchpoint-trigger"
    svc_at = int(stopped["frame"]["addr"], 16)
    assert int(stopped["value"]["old"]) == svc_at + 2 != int(stopped["value"]["new"])  # going back: the undone write
    assert int(gdb.console("x/1hx $pc").split()[-1], 16) >> 8 == 0xDF  # an `svc` (here task a's exit: `svc 2`)
    back_at = icount(gdb)
    stopped = gdb.run("-exec-continue")
    assert stopped["reason"] == "watchpoint-trigger" and int(stopped["value"]["new"]) == svc_at + 2
    assert "written by the exception entry to SVCall (exception 11) stacking its frame" in gdb.output
    assert icount(gdb) == back_at + 1  # (gdb stepped the handler's first instruction to see the new value)


def test_reverse_next_step_and_finish(arm: Names, debug) -> None:  # noqa: ANN001
    """reverse-next lands on each line forward ``next`` went through (where in the line is gdb's choice from the
    line table: at -O2 lines share addresses, so the icount must lie within the line's forward stretch)."""
    _, gdb = debug(arm.board.elf("hello"))
    gdb.mi("-break-insert main")
    gdb.run("-exec-continue")
    forward = []
    for _ in range(3):
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


def test_no_more_history_at_the_start(arm: Names, debug) -> None:  # noqa: ANN001
    _, gdb = debug(arm.board.elf("hello"))
    stopped = gdb.run("-exec-step-instruction --reverse")
    assert is_history_begin(gdb, stopped) and icount(gdb) == 0
    gdb.run("-exec-step-instruction")
    gdb.run("-exec-step-instruction")
    stopped = gdb.run("-exec-continue --reverse")
    assert is_history_begin(gdb, stopped) and icount(gdb) == 0 and int(gdb.frame()["addr"], 16) == arm.reset_pc


def test_replay_port_serves_a_recording_with_reverse(arm: Names, tmp_path) -> None:  # noqa: ANN001
    require_gdb()
    recording = tmp_path / "echo.chrec"
    subprocess.run([sys.executable, "-m", "gdbstub.cli", "record", str(arm.board.elf("echo")), "-o", str(recording)],
                   input=arm.board.stdin("echo"), cwd=ROOT, capture_output=True, check=True, timeout=120)  # fmt: skip
    server = ServerProcess(recording, command="replay")
    gdb = Gdb(arm.board.elf("echo"))
    try:
        gdb.connect(server.port)
        stopped = gdb.run("-exec-continue")
        assert "reason" not in stopped and "No more reverse-execution history" in gdb.output
        end = icount(gdb)
        gdb.mi(f"-break-insert {arm.echo_handler}")
        stopped = gdb.run("-exec-continue --reverse")
        assert stopped["reason"] == "breakpoint-hit" and icount(gdb) < end
        with pytest.raises(GdbError):
            gdb.mi("-gdb-set var $r0 = 0" if arm is ARM["cortexm"] else "-gdb-set var $x0 = 0")  # fixed history
        gdb.mi("-break-delete")
        gdb.run("-exec-continue")
        assert icount(gdb) == end
    finally:
        gdb.close()
        out, _ = server.stop()
    assert out == arm.board.expected("echo")
