#!/usr/bin/env python3
"""Find the first icount at which an invariant breaks, by bisection over a recording's timeline.

Uses chronicorn's Python API directly (gdbstub/client.py): serves the recording with ``chronicorn replay
--port 0``, then jumps around history with ``monitor seek`` and asks gdb to evaluate the invariant at each
point. The invariant must hold at the start and, once broken, stay broken (what bisection needs); the
answer is checked by looking one instruction either side.

    .venv/bin/python scripts/find_invariant_break.py RECORDING.chrec 'probe.scale >= 1 && probe.scale <= 100'
    .venv/bin/python scripts/find_invariant_break.py --guest tests/guests/riscv/build/rv32/cmdint.elf \\
        --uart-input tests/guests/riscv/inputs/cmdint-bug.txt 'probe.scale >= 1 && probe.scale <= 100'
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from gdbstub.client import GdbClient, ServerProcess
from gdbstub.locate import guest_of, record_guest


def holds(gdb: GdbClient, invariant: str, icount: int) -> bool:
    gdb.seek(icount)
    return gdb.evaluate(invariant) not in ("0", "false")


def first_break(gdb: GdbClient, invariant: str, end: int) -> int | None:
    """The first icount where the invariant is false (None if it holds at the end)."""
    if holds(gdb, invariant, end):
        return None
    good, bad = 0, end  # holds at good, broken at bad
    if not holds(gdb, invariant, good):
        return 0
    steps = 0
    while bad - good > 1:
        middle = (good + bad) // 2
        if holds(gdb, invariant, middle):
            good = middle
        else:
            bad = middle
        steps += 1
    print(f"bisection: {steps} seeks over {end} instructions", file=sys.stderr)
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recording", nargs="?", type=Path, help="a recording (or give --guest to record one)")
    parser.add_argument("invariant", help="a C expression gdb can evaluate, true while all is well")
    parser.add_argument("--guest", type=Path, help="record this guest first (with --uart-input)")
    parser.add_argument("--uart-input", help="UART input for --guest")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chronicorn-bisect-") as tmp:
        recording = args.recording
        if args.guest is not None:
            recording = Path(tmp) / "run.chrec"
            record_guest(args.guest, args.uart_input, recording, lambda text: print(text, file=sys.stderr))
        if recording is None:
            parser.error("give a recording or --guest")
        elf = args.guest or guest_of(recording)
        with ServerProcess(recording, command="replay") as server, GdbClient(elf) as gdb:
            gdb.connect(server.port)
            gdb.cont()  # to the end of history
            end = gdb.icount()
            icount = first_break(gdb, args.invariant, end)
            if icount is None:
                print(f"the invariant holds over the whole history (0..{end})")
                return 1
            assert not holds(gdb, args.invariant, icount) and (icount == 0 or holds(gdb, args.invariant, icount - 1))
            where = gdb.seek(icount - 1) if icount else gdb.location()
            print(f"first broken at icount {icount}: the instruction at icount {icount - 1} broke it")
            print(f"  {where}")
            print(f"  {gdb.instruction()}")
            print(f"  {(gdb.source_line(where) or '').strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
