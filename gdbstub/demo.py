"""``chronicorn demo``: the bug hunt on the bundled example, narrated.

Records the example firmware (tests/guests/riscv/cmdint.c) with the input that breaks it, shows the
failure, then drives gdb-multiarch through :mod:`gdbstub.api` from the failure back to the instruction that
caused it, printing each gdb command and what it showed, and ends with ``locate``'s report.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from .api import Debugger, Server, StopReason, has_gdb
from .locate import LocateError, locate, record_guest

GUESTS = Path(__file__).resolve().parent.parent / "tests" / "guests" / "riscv"
WATCH = "probe.scale"


def _say(text: str = "") -> None:
    print(text, flush=True)


def _gdb(command: str, shown: str | list[str]) -> None:
    _say(f"(gdb) {command}")
    for line in [shown] if isinstance(shown, str) else shown:
        _say(f"      {line}")


def _frames(gdb: Debugger, limit: int = 4) -> list[str]:
    records = gdb.mi(f"-stack-list-frames 0 {limit - 1}")
    frames = next(r for r in records if r["type"] == "result")["payload"]["stack"]
    return [f"#{f['level']}  {f.get('func', '??')} at {f.get('file', '?')}:{f.get('line', '?')}" for f in frames]


def run_demo(arch: str = "rv32") -> int:
    """The whole demo; returns 0 when the culprit was found."""
    started = time.monotonic()
    elf = GUESTS / "build" / arch / "cmdint.elf"
    source = GUESTS / "inputs" / "cmdint-bug.txt"
    if not has_gdb():
        print("chronicorn: the demo needs gdb-multiarch (apt-get install gdb-multiarch)", file=sys.stderr)
        return 2
    _say("== chronicorn demo: a bug hunt with reverse debugging ==")
    _say(f"The firmware: {elf.relative_to(GUESTS.parent.parent.parent)} (source cmdint.c), a UART command")
    _say("interpreter: interrupt-driven receive ring, 1 ms timer tick. Its input:")
    for line in source.read_text().splitlines():
        _say(f"  > {line}")
    with tempfile.TemporaryDirectory(prefix="chronicorn-demo-") as tmp:
        recording = Path(tmp) / "cmdint.chrec"
        _say()
        _say(f"$ chronicorn record cmdint.elf -o cmdint.chrec --uart-input {source.name}")
        try:
            record_guest(elf, str(source), recording, _say)
        except LocateError as exc:
            print(f"chronicorn: {exc}", file=sys.stderr)
            return 2
        _say("The firmware failed an assertion and reported it through the test finisher (exit code 7).")
        _say("Which instruction broke probe.scale? Replay the recording under gdb and go back in time:")
        _say()
        _say("$ chronicorn replay cmdint.chrec --port N &   gdb-multiarch cmdint.elf -ex 'target remote :N'")
        with Server(recording, command="replay") as server, Debugger(elf) as gdb:
            gdb.connect(server.port)
            found = _hunt(gdb)
            _say()
            _say("== report (what `chronicorn locate cmdint.chrec --watch probe.scale` prints) ==")
            gdb.delete()
            report = locate(gdb, WATCH, recording=str(recording))
            _say(report.to_text())
    _say()
    _say(f"(demo done in {time.monotonic() - started:.1f} s)")
    return 0 if found and report.found else 1


def _hunt(gdb: Debugger) -> bool:
    stop = gdb.cont()
    _gdb("continue", ["No more reverse-execution history." if stop.reason == StopReason.NO_HISTORY
                      else f"stopped: {stop.reason.value}", f"at {stop.location}"])  # fmt: skip
    end = gdb.icount()
    _gdb("monitor icount", f"{end}    <- the end of the recording: the failure")
    frames = _frames(gdb)
    _gdb("backtrace", frames)
    report_level = next((i for i, f in enumerate(frames) if " report " in f), None)
    if report_level is not None:
        gdb.console(f"frame {report_level}")
        _gdb(f"frame {report_level}", "report(): the assertion 1 <= probe.scale <= 100 failed")
    _gdb(f"print {WATCH}", f"{gdb.evaluate(WATCH)}    <- should be 1..100")
    number = gdb.watch(WATCH)
    _gdb(f"watch {WATCH}", f"Hardware watchpoint {number}: {WATCH}")
    stop = gdb.cont(reverse=True)
    if not stop.is_watchpoint:
        _gdb("reverse-continue", f"no write found ({stop.reason.value})")
        return False
    line = gdb.source_line(stop.location) or ""
    _gdb("reverse-continue", [f"Hardware watchpoint {number}: {WATCH}",
                              f"Old value = {stop.old_value}", f"New value = {stop.new_value}",
                              f"{stop.location}", f"{stop.location.line}\t{line.strip()}"])  # fmt: skip
    written = gdb.icount()
    _gdb("monitor icount", f"{written}    <- {end - written} instructions before the failure")
    _gdb("x/i $pc", gdb.instruction())
    _gdb("print dst - probe.name", f"{gdb.evaluate('dst - probe.name')}    <- probe.name has 16 bytes")
    _gdb("backtrace", _frames(gdb))
    gdb.console("up")
    _gdb("up; print line", f"{gdb.evaluate('line')}    <- the command that overflowed the name")
    gdb.delete()
    gdb.break_at("trap_handler")
    interrupts = 0
    while gdb.cont().reason == StopReason.BREAKPOINT:
        interrupts += 1
    _gdb("break trap_handler; continue (repeated to the end)",
         f"{interrupts} interrupts were taken between the overflow and the failure")  # fmt: skip
    gdb.delete()
    _say("Culprit: set_name() copies the name with no bound; a 19-character name ran over probe.name[16]")
    _say("into probe.scale. The assertion caught it only later, in report().")
    return True
