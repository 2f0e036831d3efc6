#!/usr/bin/env python3
"""Reverse-continue speed with a watchpoint whose page is written all along (issue 12, "Native watch scan").

The compute guest's sieve clears and marks ``composite[0..n)`` every round with ``n = 32768 - round``, so
the last word ``composite[32764..32767]`` is written in rounds 0-3 only, while the rest of its page is
written in every round. Window skipping (page identity) cannot help there: every window from the end back
to round 3 must be scanned under the watchpoint's memory hooks.

Each round records the guest live up to ``--insns`` instructions, then times one ``continue_backward``
from there with a watchpoint on that word (write by default): it runs back to the last write, in round 3.
Printed: wall time, instructions scanned (from the hit to the end) and instructions scanned per second,
median of ``--rounds``; for scale, a plain forward run of the same guest without watchpoints (no
recording). ``CHRONICORN_NATIVE=0`` measures the pure-Python fallback.

Another guest and word: ``--guest tests/guests/riscv/build/bench/rv64/periodic71m.elf --watch page+2048
--insns 0`` (``page.shared``, written once ~71M instructions before the end, its page all along).

    scripts/bench_watch.py [--guest tests/guests/riscv/build/rv64/compute.elf] [--watch composite+32764]
                           [--insns 15000000 (0: to the guest's end)] [--kind write|read|access] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from gdbstub.cli.timelines import live_timeline
from machine.factory import make_machine
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import MachineConfig
from machine.results import RunKind
from machine.watch import WatchKind, Watchpoint
from replay.store import DEFAULT_BUDGET, SnapshotStore

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GUEST = ROOT / "tests/guests/riscv/build/rv64/compute.elf"
DEFAULT_WATCH = "composite+32764"  # composite[32764..32767]: written in rounds 0-3 only, its page in every round


def one_round(guest: Path, insns: int, watch: str, kind: WatchKind) -> tuple[float, int]:
    """Seconds of one backward continue from ``insns`` (0: the end) and the instructions it scanned."""
    image = load_image(str(guest))
    timeline = live_timeline(image, ScriptedInputs(), MachineConfig(), SnapshotStore(DEFAULT_BUDGET))
    timeline.run_forward(until=insns or None)
    end = timeline.icount
    symbol, _, offset = watch.partition("+")
    timeline.add_watchpoint(Watchpoint(kind, image.symbols[symbol] + int(offset or "0", 0), 4))
    start = time.perf_counter()
    result = timeline.continue_backward()
    seconds = time.perf_counter() - start
    if result.kind != RunKind.WATCHPOINT:
        raise SystemExit(f"expected a watchpoint hit, got {result.describe()}")
    return seconds, end - result.icount


def plain_speed(guest: Path, insns: int) -> float:
    """Instructions per second of a plain forward run from reset (no recording, no watchpoint)."""
    image = load_image(str(guest))
    machine = make_machine(image, ScriptedInputs(), lambda b: None, MachineConfig())
    start = time.perf_counter()
    machine.run(insns or None)
    return machine.icount / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guest", type=Path, default=DEFAULT_GUEST)
    parser.add_argument("--watch", default=DEFAULT_WATCH, help="SYMBOL[+OFFSET] of the watched 4-byte word")
    parser.add_argument("--insns", type=int, default=15_000_000, help="history before going back (0: to the end)")
    parser.add_argument("--kind", choices=[k.name.lower() for k in WatchKind], default="write")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    kind = WatchKind[args.kind.upper()]
    times, scanned = [], 0
    for i in range(args.rounds):
        seconds, scanned = one_round(args.guest, args.insns, args.watch, kind)
        times.append(seconds)
        print(f"round {i + 1}: {seconds:.3f} s, {scanned:,} instructions, {scanned / seconds / 1e6:.1f} M/s")
    median = statistics.median(times)
    plain = statistics.median(plain_speed(args.guest, args.insns) for _ in range(args.rounds))
    print(f"plain forward run, median of {args.rounds}: {plain / 1e6:.1f} M instructions/s")
    print(f"{kind.name.lower()} watch, median of {args.rounds}: {median:.3f} s for {scanned:,} instructions"
          f" = {scanned / median / 1e6:.1f} M instructions/s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
