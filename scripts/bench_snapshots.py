#!/usr/bin/env python3
"""What a snapshot really costs: process memory (VmRSS) versus the store's own accounting, per kind.

Each kind runs in a fresh process on the rv32 compute guest (128 MiB of RAM), holding every snapshot it takes
(a budget no kind reaches, so nothing is evicted), and prints the RSS growth and the growth of
``SnapshotStore.stats().bytes_used`` per snapshot:

- ``periodic``: one snapshot every 4096 instructions of a forward run (the guest writes a few pages);
- ``named-same``: ``monitor snapshot save nI`` N times at one icount (no RAM changes: only the fixed part);
- ``named-step``: a named snapshot after each ``stepi`` (the stack page changes now and then);
- ``keyframe``: a debugger memory write (``set var``: a new copy of the page each time, one of 16 pages) then
  ``stepi``, N times.

    scripts/bench_snapshots.py [--count 2000] [--kind KIND]
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from machine.inputs import ScriptedInputs  # noqa: E402
from machine.loader import load_image  # noqa: E402
from machine.machine import Machine, MachineConfig  # noqa: E402
from replay.history import HistoryInputs  # noqa: E402
from replay.store import SnapshotStore  # noqa: E402
from replay.timeline import Timeline  # noqa: E402

GUEST = ROOT / "tests/guests/riscv/build/rv32/compute.elf"
KINDS = ("periodic", "named-same", "named-step", "keyframe")
SCRATCH = 0x8400_0000  # 64 MiB into RAM: far above the guest's image, stack and data


def rss_bytes() -> int:
    """The process's resident set (VmRSS of /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(kind: str, count: int) -> tuple[float, float]:
    """(RSS growth, store growth) per snapshot of ``kind``, in bytes."""
    inputs = HistoryInputs([], 0, ScriptedInputs())
    machine = Machine(load_image(str(GUEST)), inputs, lambda b: None, MachineConfig())
    timeline = Timeline(machine, inputs, SnapshotStore(1 << 40), periodic_snapshots=False)
    timeline.run_forward(until=200_000)  # past the start-up: the guest's working set is in place
    gc.collect()
    rss0, store0 = rss_bytes(), timeline.store.stats().bytes_used
    for i in range(count):
        if kind == "periodic":
            timeline.run_forward(until=timeline.icount + 4096)
            timeline.snapshot()
        elif kind == "named-same":
            timeline.store.name(f"n{i}", timeline.snapshot())
        elif kind == "named-step":
            timeline.run_forward(step=True)
            timeline.store.name(f"n{i}", timeline.snapshot())
        else:
            machine.memory.write(SCRATCH + i % 16 * 4096, i.to_bytes(4, "little"))
            timeline.note_write()
            timeline.run_forward(step=True)
    gc.collect()
    return (rss_bytes() - rss0) / count, (timeline.store.stats().bytes_used - store0) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--kind", choices=KINDS)
    args = parser.parse_args()
    if args.kind:
        rss, store = measure(args.kind, args.count)
        print(f"{args.kind:12} {rss / 1024:9.1f} KiB {store / 1024:9.1f} KiB {rss / store if store else 0:6.2f}")
        return
    print(f"{'kind':12} {'RSS/snap':>13} {'store/snap':>13} {'ratio':>6}   ({args.count} snapshots each)")
    for kind in KINDS:
        subprocess.run([sys.executable, __file__, "--kind", kind, "--count", str(args.count)], check=True)


if __name__ == "__main__":
    main()
