#!/usr/bin/env python3
"""Benchmark the query engine (issue 16): each query over 10^7 and 10^8 instructions, with and without the index.

The guest is tests/guests/riscv/build/bench/rv64/periodic440m.elf recorded up to ``--sizes`` instructions: a
CPU-bound sieve + CRC loop that calls ``tick()`` every ~14.2M instructions; ``tick`` writes the 4-byte
global ``ticks`` (a page of its own with ``marks``) and, once, the word ``page.shared``, which shares its
4 KiB page with the CRC buffer every step rewrites (the worst case for page skipping).

For each size it prints, median of ``--rounds`` (each round a fresh engine, so nothing is cached in memory):

- the index build (one pass over the recording) time, and its cache file's size;
- each query's time with the cached index loaded (the query alone, the recording and its index already open);
- the same query in a fresh engine without the index (the pass included: what the first query of a
  recording costs);
- the windows each query replayed (writes, reads, calls; 0 for the others), of all windows.

Bars (issue 16): all writes to a 4-byte global over 10^8 instructions in <= 1 s, proportional to the windows
that wrote its page; ``calls`` over 10^8 in <= 2 s.

    scripts/bench_query.py [--sizes 10000000,100000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gdbstub.query import open_engine  # noqa: E402
from machine.loader import load_image  # noqa: E402
from replay.query import QueryEngine, parse_query  # noqa: E402
from replay.query_index import cache_path  # noqa: E402

GUEST = ROOT / "tests/guests/riscv/build/bench/rv64/periodic440m.elf"


def record(size: int, directory: Path) -> Path:
    out = directory / f"periodic-{size}.chrec"
    if not out.exists():
        subprocess.run([sys.executable, "-m", "gdbstub.cli", "record", str(GUEST), "-o", str(out), "--max-insns",
                        str(size)], check=True, capture_output=True, cwd=ROOT)  # fmt: skip
    return out


def queries() -> dict[str, list[str]]:
    symbols = load_image(str(GUEST)).symbols
    ticks, page, tick = symbols["ticks"], symbols["page"], symbols["tick"]
    shared = page + 2048  # page.shared: after the 2048-byte CRC buffer
    return {
        "writes ticks (4-byte global)": ["writes", hex(ticks), "4"],
        "writes page.shared (page hot)": ["writes", hex(shared), "4"],
        "reads ticks": ["reads", hex(ticks), "4"],
        "calls tick": ["calls", hex(tick)],
        "interrupts": ["interrupts"],
        "value ticks --at middle": ["value", hex(ticks), "4", "--at", "MIDDLE"],
    }


def timed(engine: QueryEngine, words: list[str]) -> tuple[float, int, int]:
    """Seconds, answers, windows replayed."""
    words = [str(engine.timeline.end // 2) if w == "MIDDLE" else w for w in words]
    engine.replayed = 0
    started = time.perf_counter()
    result = engine.run(parse_query(words))
    return time.perf_counter() - started, len(result.rows), engine.replayed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000000,100000000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep the recordings in this directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.keep or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; median of {args.rounds}")
        for size in (int(s) for s in args.sizes.split(",")):
            path = record(size, directory)
            cache_path(path).unlink(missing_ok=True)
            builds = []
            for _ in range(args.rounds):
                engine = open_engine(path, cache=False)
                started = time.perf_counter()
                engine.ensure_index()
                builds.append(time.perf_counter() - started)
            open_engine(path).ensure_index()  # writes the cache
            index = open_engine(path).index
            assert index is not None, "the cache was not written"
            print(f"\n{size:,} instructions ({len(index.windows)} windows of {index.interval:,}): index build "
                  f"{statistics.median(builds):.3f} s, cache {cache_path(path).stat().st_size / 1024:.0f} KiB "
                  f"({cache_path(path).stat().st_size / size * 1e8 / (1 << 20):.2f} MiB per 10^8)")  # fmt: skip
            print(f"  {'query':32} {'answers':>8} {'windows':>8} {'indexed':>9} {'no index':>9}")
            for name, words in queries().items():
                cached, cold, answers, replayed = [], [], 0, 0
                for _ in range(args.rounds):
                    engine = open_engine(path)
                    seconds, answers, replayed = timed(engine, words)
                    cached.append(seconds)
                    engine = open_engine(path, cache=False)
                    cold.append(timed(engine, words)[0])
                print(f"  {name:32} {answers:>8} {replayed:>8} {statistics.median(cached):>8.3f}s "
                      f"{statistics.median(cold):>8.3f}s")


if __name__ == "__main__":
    main()
