#!/usr/bin/env python3
"""``chronicorn triage`` throughput: recordings per second, local worker processes vs a Dask cluster.

Makes N recordings of the demo firmware (cmdint) with varied failing inputs (names of 16 to 31 characters
overflowing into probe.scale), then triages them (watch ``probe.scale``) with each executor, three runs each,
and prints the median time and recordings per second:

* local, 1 process (in this process: the baseline), local with --jobs processes (default: the CPU count),
  then the same with a time limit per recording (``--timeout``: the executor's own pool of workers);
* a ``dask.distributed.LocalCluster`` of 2 single-threaded worker processes (started once, outside the
  timing), the recordings read from their paths, then shipped as bytes (``--ship``).

Every run must give the same groups (checked); no thresholds.

    scripts/bench_triage.py [-n 16] [--runs 3] [--jobs N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gdbstub.triage import DaskExecutor, Executor, LocalExecutor, TriageReport, triage  # noqa: E402

CMDINT = ROOT / "gdbstub" / "demo" / "firmware" / "rv32" / "cmdint.elf"
WATCH = "probe.scale"


def make_recordings(folder: Path, count: int) -> list[Path]:
    """``count`` recordings of cmdint, each with another overflowing name (and so another input)."""
    paths = []
    for n in range(count):
        name = "".join(chr(ord("a") + (n + i) % 26) for i in range(16 + n % 16))
        uart = folder / f"run{n:03}.in"
        uart.write_text(f"scale {1 + n % 100}\nsample\nname {name}\nsample\nreport\nquit\n")
        output = folder / f"run{n:03}.chrec"
        subprocess.run([sys.executable, "-m", "gdbstub.cli", "record", str(CMDINT), "-o", str(output),
                        "--uart-input", str(uart)], cwd=ROOT, capture_output=True, check=False)  # fmt: skip
        if not output.exists():
            raise SystemExit(f"could not record {output}")
        uart.unlink()
        paths.append(output)
    return paths


def measure(executor: Executor, folder: Path, runs: int) -> tuple[list[float], TriageReport]:
    times, report = [], None
    for _ in range(runs):
        start = time.perf_counter()
        report = triage([str(folder)], WATCH, executor)
        times.append(time.perf_counter() - start)
    assert report is not None
    return times, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=16, help="recordings to triage (default 16)")
    parser.add_argument("--runs", type=int, default=3, help="runs per executor; the median is shown (default 3)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="local worker processes")
    parser.add_argument("--keep", type=Path, help="make the recordings in this (existing, empty) directory")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-triage-") as tmp:
        folder = args.keep or Path(tmp)
        start = time.perf_counter()
        make_recordings(folder, args.n)
        print(f"{args.n} recordings of {CMDINT.name} made in {time.perf_counter() - start:.1f} s "
              f"({os.cpu_count()} CPUs)")  # fmt: skip

        rows: list[tuple[str, list[float]]] = []
        reports: list[TriageReport] = []

        def run(label: str, executor: Executor) -> None:
            times, report = measure(executor, folder, args.runs)
            rows.append((label, times))
            reports.append(report)
            print(f"  {label}: " + ", ".join(f"{t:.2f} s" for t in times), file=sys.stderr)

        # Local first: this process has one thread until the cluster starts, so local workers are forked as
        # they are by the chronicorn command (with the cluster's threads running they would be spawned).
        run("local, 1 process (in-process)", LocalExecutor(1))
        run(f"local, {args.jobs} processes", LocalExecutor(args.jobs))
        run(f"local, {args.jobs} processes, --timeout 600", LocalExecutor(args.jobs, timeout=600.0))
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                          dashboard_address=":0") as cluster:  # fmt: skip
            run("dask LocalCluster, 2 workers", DaskExecutor(cluster.scheduler_address))
            run("dask LocalCluster, 2 workers, --ship", DaskExecutor(cluster.scheduler_address, ship=True))

    groups = [[(g.key.outcome, g.key.culprit, g.recordings) for g in r.groups] for r in reports]
    same = all(g == groups[0] for g in groups)
    print(f"\n{'executor':40} {'median s':>9} {'recordings/s':>13}")
    for label, times in rows:
        median = statistics.median(times)
        print(f"{label:40} {median:9.2f} {args.n / median:13.2f}")
    print(f"\n{len(reports[0].groups)} groups; every executor grouped alike: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
