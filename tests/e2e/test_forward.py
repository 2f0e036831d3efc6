"""Forward debugging from the real gdb-multiarch against ``chronicorn serve`` (rv32 and rv64)."""

from __future__ import annotations

import pytest

from machine.loader import load_image
from tests.conftest import guest, make_machine

pytestmark = pytest.mark.gdb


def test_connect_stops_at_the_reset_vector(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "hello"))
    assert int(gdb.frame()["addr"], 16) == 0x1000
    assert gdb.console("monitor icount").strip() == "0"


def test_registers_match_the_machine_at_the_same_icount(xlen: str, debug) -> None:  # noqa: ANN001
    elf = guest(xlen, "timer")
    _, gdb = debug(elf)
    gdb.mi("-break-insert trap_handler")
    stopped = gdb.run("-exec-continue")
    assert stopped["reason"] == "breakpoint-hit"
    icount = int(gdb.console("monitor icount"))
    reference = make_machine(elf)
    reference.run(icount)
    expected = reference.hart.registers()[:33]  # x0-x31, pc
    got = gdb.registers()
    assert list(got.values()) == expected
    assert got["pc"] == load_image(elf).symbols["trap_handler"]


def test_break_at_function_and_source_line_then_continue(xlen: str, debug) -> None:  # noqa: ANN001
    server, gdb = debug(guest(xlen, "hello"))
    gdb.mi("-break-insert main")
    stopped = gdb.run("-exec-continue")
    assert stopped["reason"] == "breakpoint-hit" and stopped["frame"]["func"] == "main"
    line = int(stopped["frame"]["line"])
    gdb.mi(f"-break-insert hello.c:{line + 1}")
    stopped = gdb.run("-exec-continue")
    assert stopped["reason"] == "breakpoint-hit" and int(stopped["frame"]["line"]) == line + 1
    stopped = gdb.run("-exec-continue")
    # The guest's exit ends the history: no 'W' (gdb could not go back), a note and the boundary stop.
    assert "reason" not in stopped and "guest exited with code 0" in gdb.output, gdb.output
    assert "No more reverse-execution history" in gdb.output
    out, _ = server.stop()
    assert b"Hello from chronicorn!" in out


@pytest.mark.slow
def test_stepi_retires_exactly_one_instruction(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "hello"))
    for expected_icount in range(1, 9):
        before = gdb.registers()["pc"]
        stopped = gdb.run("-exec-step-instruction")
        assert stopped["reason"] == "end-stepping-range"
        assert int(gdb.console("monitor icount")) == expected_icount
        assert gdb.registers()["pc"] != before


def test_step_next_finish_until(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "timer"))
    gdb.mi("-break-insert main")
    gdb.run("-exec-continue")
    start = gdb.registers()["pc"]
    stopped = gdb.run("-exec-next")  # -O2 code: the next line may have a smaller number
    assert stopped["reason"] == "end-stepping-range" and stopped["frame"]["func"] == "main"
    assert gdb.registers()["pc"] != start
    gdb.mi("-break-insert uart_puts")
    stopped = gdb.run("-exec-continue")
    assert stopped["frame"]["func"] == "uart_puts"
    stopped = gdb.run("-exec-finish")
    assert stopped["reason"] == "function-finished" and stopped["frame"]["func"] == "main"
    here = int(stopped["frame"]["line"])
    stopped = gdb.run(f"-exec-until timer.c:{here + 1}")
    assert stopped["frame"]["func"] == "main"


def test_conditional_breakpoint_print_x_and_set_var(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "timer"))
    gdb.mi('-break-insert -c "ticks == 3" trap_handler')
    stopped = gdb.run("-exec-continue")
    assert stopped["reason"] == "breakpoint-hit"
    assert gdb.evaluate("ticks") == "3"
    memory = gdb.console("x/4xb &ticks")
    assert "0x03" in memory
    gdb.mi("-gdb-set var ticks = 40")
    assert gdb.evaluate("ticks") == "40"


def test_backtrace_inside_an_interrupt_handler(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "timer"))
    gdb.mi("-break-insert trap_handler")
    gdb.run("-exec-continue")
    frames = gdb.mi("-stack-list-frames")[-1]["payload"]["stack"]
    functions = [f.get("func") for f in frames]
    assert functions[0] == "trap_handler"
    assert "trap_entry" in functions


@pytest.mark.slow
def test_interrupt_a_long_run(xlen: str, debug) -> None:  # noqa: ANN001
    """-exec-interrupt stops a running continue (compute on the pure-Python counter: ~35 s of work).

    How fast (the issue's 0.5 s) is measured by scripts/bench_forward.py, not asserted here.
    """
    _, gdb = debug(guest(xlen, "compute"), "--no-native")
    gdb.controller.write("-exec-continue", read_response=False)
    gdb.mi("-exec-interrupt")
    stopped = gdb.wait_stopped(timeout=10)
    assert stopped["reason"] == "signal-received" and stopped["signal-name"] == "SIGINT"
    assert int(gdb.console("monitor icount")) < 74_000_000  # (0 if the interrupt beat the first instruction)


def test_interrupt_a_guest_waiting_for_input(xlen: str, debug) -> None:  # noqa: ANN001
    import subprocess

    _, gdb = debug(guest(xlen, "echo"), stdin=subprocess.PIPE)
    gdb.controller.write("-exec-continue", read_response=False)
    gdb.mi("-exec-interrupt")
    stopped = gdb.wait_stopped(timeout=10)
    assert stopped["signal-name"] == "SIGINT"


def test_guest_fault_is_a_signal_at_the_faulting_load(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "fault"))
    stopped = gdb.run("-exec-continue")
    assert stopped["reason"] == "signal-received" and stopped["signal-name"] == "SIGSEGV"
    insn = gdb.console("x/i $pc")
    assert "lw" in insn
    stopped = gdb.run("-exec-continue")  # the session goes on: the load faults again
    assert stopped["signal-name"] == "SIGSEGV"


def test_detach_and_reconnect_to_the_same_machine(xlen: str, debug) -> None:  # noqa: ANN001
    from tests.e2e.gdb import Gdb

    server, gdb = debug(guest(xlen, "hello"))
    gdb.mi("-break-insert uart_puts")
    gdb.run("-exec-continue")
    icount = gdb.console("monitor icount").strip()
    pc = gdb.registers()["pc"]
    gdb.mi("-target-detach")
    again = Gdb(guest(xlen, "hello"))
    try:
        again.connect(server.port)
        assert again.console("monitor icount").strip() == icount
        assert again.registers()["pc"] == pc
    finally:
        again.close()


def test_second_client_is_refused_while_one_is_connected(xlen: str, debug) -> None:  # noqa: ANN001
    from tests.e2e.gdb import Gdb, GdbError

    server, gdb = debug(guest(xlen, "hello"))
    other = Gdb(guest(xlen, "hello"))
    try:
        with pytest.raises((GdbError, TimeoutError)):
            other.connect(server.port)
    finally:
        other.close()
    assert gdb.console("monitor icount").strip() == "0"  # the first client still works


def test_kill_then_reconnect(xlen: str, debug) -> None:  # noqa: ANN001
    from tests.e2e.gdb import Gdb

    server, gdb = debug(guest(xlen, "hello"))
    gdb.mi("-interpreter-exec console kill")
    again = Gdb(guest(xlen, "hello"))
    try:
        again.connect(server.port)
        assert again.console("monitor icount").strip() == "0"
    finally:
        again.close()


def test_watch_rwatch_awatch_show_the_right_line_and_values(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "timer"))
    gdb.mi("-break-insert main")
    gdb.run("-exec-continue")  # past the .bss clearing
    gdb.mi("-break-watch ticks")
    stopped = gdb.run("-exec-continue")
    assert stopped["reason"] == "watchpoint-trigger"
    assert stopped["value"] == {"old": "0", "new": "1"}
    assert stopped["frame"]["func"] == "trap_handler"  # the line that wrote it
    stopped = gdb.run("-exec-continue")
    assert stopped["value"] == {"old": "1", "new": "2"}
    gdb.mi("-break-delete")
    gdb.mi("-break-watch -r ticks")
    stopped = gdb.run("-exec-continue")
    assert stopped["reason"] == "read-watchpoint-trigger"
    gdb.mi("-break-delete")
    gdb.mi("-break-watch -a ticks")
    stopped = gdb.run("-exec-continue")
    assert stopped["reason"] == "access-watchpoint-trigger"


def test_step_into_a_function_and_hbreak(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "timer"))
    gdb.mi("-break-insert -h main")  # a hardware breakpoint (Z1): gdb reports it as its own breakpoint
    stopped = gdb.run("-exec-continue")
    assert stopped["reason"] == "breakpoint-hit" and stopped["frame"]["func"] == "main"
    functions = set()
    for _ in range(12):
        stopped = gdb.run("-exec-step")
        assert stopped["reason"] == "end-stepping-range"
        functions.add(stopped["frame"].get("func"))
    assert len(functions) > 1  # stepped into a callee (an inlined or called helper)
