#!/usr/bin/env python3
"""Reverse execution speed on the compute guest built with 155 rounds (~100M instructions), medians of runs.

Server-side figures go through the real server objects (Session -> TimelineTarget -> Timeline), timing the
handling of the packet gdb sends (``bs``, ``bc``), as "measured at the server":

- forward execution while recording live with periodic snapshots (``c`` from reset to the guest's exit),
  as a ratio to a plain ``Machine.run`` of the same guest in the same round (what ``chronicorn run`` does);
- snapshot memory held after the whole run;
- ``bs`` (reverse-stepi) latency at 1M, 10M, 50M instructions and at the end of history: the first ``bs``
  after arriving there by a forward run (only periodic snapshots around) and the median of the next 9;
- ``bc`` (reverse-continue) from the end back to a breakpoint at ``main`` (hit once, near the start);
- ``bc`` from the end with a write watchpoint on a word that is never written, all the way to icount 0.

``reverse-next`` goes through the real gdb-multiarch (the project's Python API): wall time of
``-exec-next --reverse`` over the call ``uart_putdec(acc)`` after the loop, ~100M instructions from the start
(gdb's own per-stop work included).

    scripts/bench_reverse.py [--guest tests/guests/riscv/build/bench/rv64/compute100m.elf] [--rounds 3]

The Arm compute100m guests (tests/guests/aarch64|cortexm/build/bench/) are measured the same way, without the
gdb reverse-next figure (their compute.c has no such call).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from gdbstub.cli.timelines import live_timeline
from gdbstub.client import GdbClient, ServerProcess, StopReason
from gdbstub.rsp.codec import encode
from gdbstub.server import drive
from gdbstub.session import Session
from gdbstub.target import TimelineTarget
from machine.factory import make_machine
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import MachineConfig
from replay.store import DEFAULT_BUDGET, SnapshotStore

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GUEST = ROOT / "tests/guests/riscv/build/bench/rv64/compute100m.elf"  # compute with 155 rounds
DEPTHS = (1_000_000, 10_000_000, 50_000_000)  # and the end of history


def new_session(guest: Path) -> tuple[Session, TimelineTarget]:
    image = load_image(str(guest))
    timeline = live_timeline(image, ScriptedInputs(), MachineConfig(), SnapshotStore(DEFAULT_BUDGET))
    target = TimelineTarget(timeline)
    session = Session(target)
    drive(session, encode(b"QStartNoAckMode"))
    return session, target


def timed(session: Session, packet: bytes) -> float:
    start = time.perf_counter()
    drive(session, encode(packet))
    return time.perf_counter() - start


def server_round(guest: Path) -> dict[str, float]:
    image = load_image(str(guest))
    plain = make_machine(image, ScriptedInputs(), lambda b: None, MachineConfig())
    start = time.perf_counter()
    plain.run()
    plain_s = time.perf_counter() - start

    session, target = new_session(guest)
    timeline = target.timeline
    record_s = timed(session, b"c")
    end = timeline.icount
    out = {"plain_s": plain_s, "record_s": record_s, "end": end,
           "snapshot_mib": timeline.store.stats().bytes_used / (1 << 20)}  # fmt: skip
    for label, depth in (*((f"{d // 1_000_000}M", d) for d in DEPTHS), ("end", end)):
        # Arrive as a forward run does: only the periodic snapshots around, none at the target's doorstep.
        gap, timeline.min_gap = timeline.min_gap, 1 << 62
        timeline.seek(depth)
        timeline.min_gap = gap
        first = timed(session, b"bs")
        rest = [timed(session, b"bs") for _ in range(9)]
        out[f"bs_first_{label}"] = first
        out[f"bs_next_{label}"] = statistics.median(rest)
    timeline.seek(end)
    main = image.symbols["main"] & ~1  # (a Thumb symbol has bit 0 set)
    drive(session, encode(b"Z0,%x,2" % main))
    bc_s = timed(session, b"bc")
    out["bc_s"] = bc_s
    out["bc_distance"] = end - timeline.icount
    drive(session, encode(b"z0,%x,2" % main))
    # A write watchpoint on a word that is never written (code): the search goes back to the start.
    timeline.seek(end)
    drive(session, encode(b"Z2,%x,4" % main))
    out["bc_watch_s"] = timed(session, b"bc")
    assert timeline.icount == 0
    drive(session, encode(b"z2,%x,4" % main))
    return out


def reverse_next(guest: Path) -> float:
    """Wall time of gdb's ``reverse-next`` over the call ``uart_putdec(acc)`` at the end (~100M in)."""
    with ServerProcess(guest) as server, GdbClient(guest, poll_interval=0.005) as gdb:
        gdb.connect(server.port)
        gdb.break_at(f"compute.c:{_line_of(guest, 'uart_putdec(acc);')}")  # after the loop: the end of the run
        stop = gdb.cont()
        assert stop.reason == StopReason.BREAKPOINT, stop
        gdb.delete()
        gdb.next()
        where = gdb.icount()
        start = time.perf_counter()
        stop = gdb.next(reverse=True)
        elapsed = time.perf_counter() - start
        assert stop.reason == StopReason.END_STEPPING and gdb.icount() < where, stop
        print(f"reverse-next from icount {where} to {gdb.icount()}", file=sys.stderr)
        return elapsed


def _line_of(guest: Path, text: str) -> int:
    source = (_guest_dir(guest) / "compute.c").read_text().splitlines()
    return next(i + 1 for i, line in enumerate(source) if text in line)


def _guest_dir(guest: Path) -> Path:
    """tests/guests/<arch> for a guest ELF built there."""
    return next(p for p in guest.resolve().parents if p.parent.name == "guests")


def has_reverse_next_line(guest: Path) -> bool:
    """The RISC-V compute guest has the line reverse-next is timed over; the Arm ones print differently."""
    return "uart_putdec(acc);" in (_guest_dir(guest) / "compute.c").read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guest", type=Path, default=DEFAULT_GUEST)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    args.guest = args.guest.resolve()
    rounds = [server_round(args.guest) for _ in range(args.rounds)]
    rnext = [reverse_next(args.guest) for _ in range(args.rounds)] if has_reverse_next_line(args.guest) else []

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    end = int(med("end"))
    print(f"guest {args.guest.relative_to(ROOT)}: {end} instructions; medians of {args.rounds} rounds")
    print(f"forward while recording (c to exit): {med('record_s'):.3f} s vs plain run {med('plain_s'):.3f} s "
          f"-> {statistics.median(r['plain_s'] / r['record_s'] for r in rounds):.2f}x of plain speed")  # fmt: skip
    print(f"snapshot memory after the run: {med('snapshot_mib'):.1f} MiB")
    for label in (*(f"{d // 1_000_000}M" for d in DEPTHS), "end"):
        where = f"{end / 1e6:.1f}M (end)" if label == "end" else label
        print(f"reverse-stepi (bs) at {where:>12}: first {med('bs_first_' + label) * 1e3:6.1f} ms, "
              f"next ones {med('bs_next_' + label) * 1e3:5.2f} ms")  # fmt: skip
    print(f"reverse-continue (bc) over {med('bc_distance') / 1e6:.1f}M instructions: {med('bc_s'):.3f} s")
    print(f"reverse-continue with a write watchpoint never hit, back to icount 0: {med('bc_watch_s'):.3f} s")
    if rnext:
        print(f"reverse-next over a call at the end (gdb-multiarch, wall): {statistics.median(rnext) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
