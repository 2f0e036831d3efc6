"""Reverse debugging from the real gdb-multiarch against ``chronicorn serve`` and ``replay --port`` (rv32, rv64).

Every backward move is checked against what was seen going forward at the same icount.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, expected_output, guest, guest_input, make_machine
from tests.e2e.gdb import Gdb, GdbError, ServerProcess, require_gdb

pytestmark = pytest.mark.gdb


def icount(gdb: Gdb) -> int:
    return int(gdb.console("monitor icount"))


def line(stopped: dict) -> int:
    return int(stopped["frame"]["line"])


def is_history_begin(gdb: Gdb, stopped: dict) -> bool:
    """gdb 13 over MI: a ``*stopped`` without reason plus the console line.

    (docs/gdb-protocol-facts.md, "History ends")
    """
    return "reason" not in stopped and "No more reverse-execution history" in gdb.output


@pytest.mark.slow
def test_reverse_stepi_retraces_every_register(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "timer"))
    gdb.mi("-break-insert trap_handler")
    gdb.run("-exec-continue")  # inside an interrupt handler: the way back crosses the trap entry
    gdb.mi("-break-delete")
    seen = []
    for _ in range(12):
        seen.append((icount(gdb), gdb.registers()))
        gdb.run("-exec-step-instruction")
    for expected_icount, expected_registers in reversed(seen):
        gdb.run("-exec-step-instruction --reverse")
        assert icount(gdb) == expected_icount
        assert gdb.registers() == expected_registers


def test_reverse_continue_skips_its_start_and_finds_the_last_hit(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "timer"))
    gdb.mi("-break-insert trap_handler")
    hits = []
    for _ in range(4):
        gdb.run("-exec-continue")
        hits.append((icount(gdb), gdb.evaluate("ticks")))
    for expected in reversed(hits[:-1]):
        stopped = gdb.run("-exec-continue --reverse")
        assert stopped["reason"] == "breakpoint-hit" and stopped["frame"]["func"] == "trap_handler"
        assert (icount(gdb), gdb.evaluate("ticks")) == expected
    stopped = gdb.run("-exec-continue --reverse")
    assert is_history_begin(gdb, stopped) and icount(gdb) == 0
    stopped = gdb.run("-exec-continue")  # and forward again to the same first hit
    assert (icount(gdb), gdb.evaluate("ticks")) == hits[0]


def test_conditional_breakpoint_in_reverse(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "timer"))
    gdb.mi('-break-insert -c "ticks == 4" trap_handler')
    gdb.run("-exec-continue")
    gdb.mi("-break-delete")
    gdb.mi('-break-insert -c "ticks == 1" trap_handler')
    stopped = gdb.run("-exec-continue --reverse")
    assert stopped["reason"] == "breakpoint-hit" and gdb.evaluate("ticks") == "1"


def test_reverse_next_step_and_finish_land_where_forward_was(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "hello"))
    gdb.mi("-break-insert main")
    gdb.run("-exec-continue")
    forward = []
    for _ in range(4):
        forward.append((icount(gdb), line(gdb.run("-exec-next"))))
    here = (icount(gdb), int(gdb.frame()["line"]))
    for expected_icount, _ in reversed(forward[1:]):
        stopped = gdb.run("-exec-next --reverse")
        assert stopped["reason"] == "end-stepping-range"
        assert icount(gdb) == expected_icount
    # reverse-step into the callee of the previous line, then reverse-finish back out to its call
    gdb.run("-exec-next")
    stopped = gdb.run("-exec-step --reverse")
    callee = stopped["frame"]["func"]
    if callee != "main":  # the previous line called a function: we are at its last line
        stopped = gdb.run("-exec-finish --reverse")
        assert stopped["frame"]["func"] == "main"
    assert (icount(gdb), line(stopped)) != here


def test_reverse_watch_rwatch_awatch_show_the_writing_line_and_values(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "timer"))
    gdb.mi('-break-insert -c "ticks == 3" trap_handler')
    gdb.run("-exec-continue")
    gdb.mi("-break-delete")
    gdb.mi("-break-watch ticks")
    stopped = gdb.run("-exec-continue --reverse")
    assert stopped["reason"] == "watchpoint-trigger"
    # Going backward gdb shows the value before the write as "new": the write 2 -> 3 (the last one) undone.
    assert stopped["value"] == {"old": "3", "new": "2"}
    assert stopped["frame"]["func"] == "trap_handler"  # stopped at the writing line
    writing_line = line(stopped)
    stopped = gdb.run("-exec-continue")  # forward again over the same write
    assert stopped["value"] == {"old": "2", "new": "3"} and line(stopped) >= writing_line
    gdb.mi("-break-delete")
    gdb.mi("-break-watch -r ticks")
    stopped = gdb.run("-exec-continue --reverse")
    assert stopped["reason"] == "read-watchpoint-trigger" and stopped["frame"]["func"] in ("trap_handler", "main")
    gdb.mi("-break-delete")
    gdb.mi("-break-watch -a ticks")
    stopped = gdb.run("-exec-continue --reverse")
    assert stopped["reason"] == "access-watchpoint-trigger"


def test_no_more_history_at_the_start(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "hello"))
    stopped = gdb.run("-exec-step-instruction --reverse")
    assert is_history_begin(gdb, stopped) and icount(gdb) == 0
    gdb.run("-exec-step-instruction")
    gdb.run("-exec-step-instruction")
    stopped = gdb.run("-exec-continue --reverse")
    assert is_history_begin(gdb, stopped) and icount(gdb) == 0 and int(gdb.frame()["addr"], 16) == 0x1000


def test_writes_inside_history_are_refused_and_allowed_at_the_live_end(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "timer"))
    gdb.mi('-break-insert -c "ticks == 2" trap_handler')
    gdb.run("-exec-continue")
    gdb.run("-exec-step-instruction --reverse")
    with pytest.raises(GdbError, match="(?i)cannot access memory|error"):
        gdb.mi("-gdb-set var ticks = 40")
    assert gdb.evaluate("ticks") != "40"
    gdb.run("-exec-step-instruction")  # back at the end of history: live, writable
    gdb.mi("-gdb-set var ticks = 40")
    end = icount(gdb)
    gdb.run("-exec-step-instruction --reverse")
    gdb.run("-exec-step-instruction")  # replayed through the write
    assert icount(gdb) == end and gdb.evaluate("ticks") == "40"


def test_echo_forward_again_replays_the_same_output_then_continues_live(xlen: str, debug, tmp_path) -> None:  # noqa: ANN001
    elf = guest(xlen, "echo")
    source = tmp_path / "input.txt"
    source.write_bytes(guest_input("echo"))
    server, gdb = debug(elf, "--uart-input", str(source))
    gdb.mi("-break-insert trap_handler")
    gdb.run("-exec-continue")  # the first input interrupt: the end of history so far
    middle = icount(gdb)
    gdb.mi("-break-delete")
    gdb.mi("-break-insert main")
    stopped = gdb.run("-exec-continue --reverse")
    assert stopped["reason"] == "breakpoint-hit" and icount(gdb) < middle
    gdb.mi("-break-delete")
    stopped = gdb.run("-exec-continue")  # replays to the end of history, then runs live to the exit
    assert "guest exited with code 0" in gdb.output
    assert icount(gdb) > middle
    history = gdb.console("monitor history")
    assert "live" in history
    out, err = server.stop()
    assert out == expected_output(xlen, "echo")  # each byte shown once, in order
    assert b"diverged" not in err, err


def test_monitor_seek_snapshots_history_and_record_save(xlen: str, debug, tmp_path) -> None:  # noqa: ANN001
    elf = guest(xlen, "timer")
    _, gdb = debug(elf, "--save-dir", str(tmp_path))
    gdb.mi("-break-insert trap_handler")
    gdb.run("-exec-continue")
    first = (icount(gdb), gdb.registers())
    assert "saved at icount" in gdb.console("monitor snapshot save first")
    gdb.run("-exec-continue")
    gdb.run("-exec-continue")
    assert "first" in gdb.console("monitor snapshot list")
    gdb.console("monitor snapshot load first")
    gdb.mi("-stack-info-frame")  # gdb re-reads the frame
    gdb.mi("maint flush register-cache")
    assert (icount(gdb), gdb.registers()) == first
    assert gdb.console("monitor seek 1000").startswith("icount 1000")
    gdb.mi("maint flush register-cache")
    assert icount(gdb) == 1000
    assert "error" in gdb.console("monitor seek 999999999999")
    assert "error" in gdb.console("monitor snapshot load nosuch")
    assert "snapshots:" in gdb.console("monitor history")
    gdb.mi("-break-delete")
    stopped = gdb.run("-exec-continue")
    assert "guest exited with code 0" in gdb.output and "reason" not in stopped
    path = tmp_path / "session.chrec"
    assert "saved icount 0.." in gdb.console("monitor record save session.chrec")
    # Writes stay inside --save-dir and never replace a file unless asked (-f), never leave half a file.
    outside = tmp_path.parent / f"{tmp_path.name}-outside.chrec"
    (tmp_path / "link.chrec").symlink_to(outside)
    for name in (str(outside), f"../{outside.name}", "link.chrec"):
        assert "outside the save directory" in gdb.console(f"monitor record save {name}"), name
    assert not outside.exists()
    saved = path.read_bytes()
    assert "exists (use -f" in gdb.console("monitor record save session.chrec") and path.read_bytes() == saved
    assert "saved icount 0.." in gdb.console("monitor record save -f session.chrec")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.chrec", "session.chrec"]
    replay = subprocess.run([sys.executable, "-m", "gdbstub.cli", "replay", str(path)], cwd=ROOT,
                            capture_output=True, timeout=120)  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout == expected_output(xlen, "timer")
    info = subprocess.run([sys.executable, "-m", "gdbstub.cli", "info", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "exited (code 0)" in info.stdout  # the live run ended by itself: the recording says so


def test_replay_port_serves_a_recording_with_reverse(xlen: str, tmp_path) -> None:  # noqa: ANN001
    require_gdb()
    elf = guest(xlen, "echo")
    recording = tmp_path / "echo.chrec"
    subprocess.run([sys.executable, "-m", "gdbstub.cli", "record", str(elf), "-o", str(recording)],
                   input=guest_input("echo"), cwd=ROOT, capture_output=True, check=True, timeout=120)  # fmt: skip
    server = ServerProcess(recording, command="replay")
    gdb = Gdb(elf)
    try:
        gdb.connect(server.port)
        stopped = gdb.run("-exec-continue")
        assert "reason" not in stopped and "No more reverse-execution history" in gdb.output
        end = icount(gdb)
        gdb.mi("-break-insert trap_handler")
        stopped = gdb.run("-exec-continue --reverse")
        assert stopped["reason"] == "breakpoint-hit" and icount(gdb) < end
        with pytest.raises(GdbError):
            gdb.mi("-gdb-set var ring_head = 0")  # a saved recording is fixed
        gdb.mi("-break-delete")
        stopped = gdb.run("-exec-continue")
        assert icount(gdb) == end  # the fixed end again, never an exit
    finally:
        gdb.close()
        out, _ = server.stop()
    assert out == expected_output(xlen, "echo")


def test_reverse_nexti_steps_back_over_a_call(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "hello"))  # main calls uart_puts() (another file: never inlined)
    gdb.mi("-break-insert main")
    gdb.run("-exec-continue")
    seen = [(icount(gdb), int(gdb.frame()["addr"], 16))]
    while len(seen) < 100 and all(a[0] + 1 == b[0] for a, b in zip(seen, seen[1:], strict=False)):
        gdb.run("-exec-next-instruction")  # forward until one nexti steps over a whole call
        seen.append((icount(gdb), int(gdb.frame()["addr"], 16)))
    assert seen[-1][0] - seen[-2][0] > 10  # that was a call
    gdb.run("-exec-next-instruction")
    seen.append((icount(gdb), int(gdb.frame()["addr"], 16)))
    for expected in reversed(seen[:-1]):
        gdb.run("-exec-next-instruction --reverse")
        assert (icount(gdb), int(gdb.frame()["addr"], 16)) == expected


def test_ctrl_c_stops_a_long_reverse_continue(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "compute"))
    stopped = gdb.run("-exec-continue")
    assert "reason" not in stopped  # the guest's exit: the end of history
    end = icount(gdb)
    gdb.mi("-break-watch -a *(int*)0x80400000")  # never accessed: the scan would cover all of history
    gdb.mi("-exec-continue --reverse")
    gdb.mi("-exec-interrupt")
    stopped = gdb.wait_stopped()
    assert stopped["reason"] == "signal-received" and stopped["signal-name"] == "SIGINT"
    assert 0 < icount(gdb) < end


def test_a_debugger_write_is_part_of_the_saved_recording(xlen: str, debug, tmp_path) -> None:  # noqa: ANN001
    elf = guest(xlen, "timer")
    server, gdb = debug(elf, "--save-dir", str(tmp_path))
    gdb.mi('-break-insert -c "ticks == 2" trap_handler')
    gdb.run("-exec-continue")
    gdb.mi("-gdb-set var ticks = 4")  # at the live end: becomes a keyframe of history
    gdb.mi("-break-delete")
    gdb.run("-exec-continue")
    path = tmp_path / "written.chrec"
    gdb.console("monitor record save written.chrec")
    end = icount(gdb)
    live_output, _ = server.stop()
    assert end != make_machine(elf).run().icount  # the write changed the run (it printed its ticks sooner)
    replay = subprocess.run([sys.executable, "-m", "gdbstub.cli", "replay", str(path)], cwd=ROOT,
                            capture_output=True, timeout=120)  # fmt: skip
    assert replay.returncode == 0, replay.stderr  # without the keyframe: "replay ended at icount ..." (exit 5)
    assert replay.stdout == live_output == expected_output(xlen, "timer")


def test_reverse_stepi_over_a_watched_write_triggers_the_watchpoint(xlen: str, debug) -> None:  # noqa: ANN001
    _, gdb = debug(guest(xlen, "timer"))
    gdb.mi('-break-insert -c "ticks == 2" trap_handler')
    gdb.run("-exec-continue")
    gdb.mi("-break-delete")
    gdb.mi("-break-watch ticks")
    stopped = gdb.run("-exec-continue")  # forward onto the write 2 -> 3: gdb lands just after it
    assert stopped["reason"] == "watchpoint-trigger" and stopped["value"] == {"old": "2", "new": "3"}
    after = icount(gdb)
    stopped = gdb.run("-exec-step-instruction --reverse")
    assert stopped["reason"] == "watchpoint-trigger" and stopped["value"] == {"old": "3", "new": "2"}
    assert icount(gdb) < after and gdb.evaluate("ticks") == "2"


def test_a_diverging_recording_ends_history_and_keeps_the_session(tmp_path) -> None:  # noqa: ANN001
    from replay.events import HostClock
    from replay.recording import load_recording
    from tests.recordings import rewrite

    require_gdb()
    elf = guest("rv32", "rtc")
    good = tmp_path / "rtc.chrec"
    subprocess.run([sys.executable, "-m", "gdbstub.cli", "record", str(elf), "-o", str(good)], cwd=ROOT,
                   capture_output=True, check=True, timeout=120)  # fmt: skip
    with open(good, "rb") as stream:
        loaded = load_recording(stream)
    assert any(isinstance(e, HostClock) for e in loaded.inputs)
    bad = tmp_path / "tampered.chrec"  # the host clock reads are gone: replay must notice
    rewrite(bad, loaded, inputs=[e for e in loaded.inputs if not isinstance(e, HostClock)])
    server = ServerProcess(bad, command="replay")
    gdb = Gdb(elf)
    try:
        gdb.connect(server.port)
        gdb.mi("-break-insert main")
        gdb.run("-exec-continue")
        gdb.mi("-break-delete")  # so that gdb resumes right here (no step off a breakpoint first)
        start = icount(gdb)
        stopped = gdb.run("-exec-continue")
        assert "reason" not in stopped and "diverged" in gdb.output
        assert icount(gdb) == start  # back where the failing command started; the session goes on
        stopped = gdb.run("-exec-step-instruction --reverse")
        assert icount(gdb) == start - 1
        stopped = gdb.run("-exec-continue")
        assert "reason" not in stopped and icount(gdb) == start  # the end of what is known good
    finally:
        gdb.close()
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hello", "timer"])
def test_reverse_step_next_finish_stop_in_states_seen_going_forward(xlen: str, name: str, debug) -> None:  # noqa: ANN001
    """Where gdb's line stepping stops depends on the line tables (-O2, inlined code); the states must not.

    Each reverse step, next and finish must go back, and stop with exactly the registers a plain forward run
    of the machine has at that icount.
    """
    elf = guest(xlen, name)
    _, gdb = debug(elf)
    gdb.mi("-break-insert main")
    gdb.run("-exec-continue")
    start = icount(gdb)
    gdb.mi("-break-delete")
    for _ in range(8):
        gdb.run("-exec-next")
    previous = icount(gdb)

    def check(command: str) -> int:
        here = icount(gdb)
        reference = make_machine(elf)
        reference.run(here)
        assert list(gdb.registers().values()) == reference.hart.registers()[:33], (command, here)
        return here

    finishes = 0
    for command in ["-exec-step --reverse"] * 6 + ["-exec-next --reverse"] * 3 + ["-exec-step --reverse"] * 3:
        stopped = gdb.run(command)
        here = check(command)
        assert here < previous, (command, here)
        if here <= start:
            break
        frames = next(r for r in gdb.mi("-stack-list-frames 0 1") if r["type"] == "result")["payload"]["stack"]
        if command.startswith("-exec-step") and len(frames) == 2 and frames[1].get("func") == "main":
            stopped = gdb.run("-exec-finish --reverse")  # out of a callee of main, back to its call
            assert stopped["frame"]["func"] == "main"
            here = check("-exec-finish --reverse")
            finishes += 1
        previous = here
    assert finishes >= 1 or name != "hello"  # hello's main calls uart_puts(): a reverse-finish was exercised


def test_reverse_in_a_recording_with_uart_interrupts_matches_its_replay(xlen: str, tmp_path) -> None:  # noqa: ANN001
    """echo with UART input, served by replay --port: states after reverse moves equal a plain replay's."""
    from machine.arch.registry import ARCHES
    from machine.loader import load_image
    from machine.machine import Machine, MachineConfig
    from replay.recording import load_recording
    from replay.saver import history_inputs, open_recording

    require_gdb()
    elf = guest(xlen, "echo")
    recording = tmp_path / "echo.chrec"
    subprocess.run([sys.executable, "-m", "gdbstub.cli", "record", str(elf), "-o", str(recording)],
                   input=guest_input("echo"), cwd=ROOT, capture_output=True, check=True, timeout=120)  # fmt: skip
    with open(recording, "rb") as stream:
        loaded = load_recording(stream)

    def replayed_registers(at: int) -> list[int]:
        header = loaded.header
        inputs = history_inputs(loaded)
        machine = Machine(load_image(elf), inputs, lambda b: None,
                          MachineConfig(ARCHES[header.arch], header.ram_size, header.icount_shift))  # fmt: skip
        open_recording(loaded, machine, inputs, periodic_snapshots=False)
        machine.run(at)
        assert machine.icount == at
        return machine.hart.registers()[:33]

    server = ServerProcess(recording, command="replay")
    gdb = Gdb(elf)
    try:
        gdb.connect(server.port)
        gdb.mi("-break-insert trap_handler")
        assert gdb.run("-exec-continue")["reason"] == "breakpoint-hit"  # the first UART interrupt
        gdb.run("-exec-continue")  # the next one (or the end of the recording)
        gdb.mi("-break-delete")
        for command in ["-exec-step-instruction --reverse"] * 4 + ["-exec-next --reverse", "-exec-step --reverse",
                                                                   "-exec-finish --reverse"]:  # fmt: skip
            gdb.run(command)
            assert list(gdb.registers().values()) == replayed_registers(icount(gdb)), command
        gdb.mi("-break-insert trap_handler")
        assert gdb.run("-exec-continue --reverse")["reason"] == "breakpoint-hit"  # an earlier UART interrupt
        assert list(gdb.registers().values()) == replayed_registers(icount(gdb))
    finally:
        gdb.close()
        server.stop()
