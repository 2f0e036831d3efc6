#!/usr/bin/env python3
"""Guest disk I/O speed: chronicorn run / record / replay against QEMU 7.2, in the same invocation.

The blkscript guest (tests/guests/riscv/blkscript.c) reads a generated N MiB image from start to end, then
writes it from start to end, in 64 KiB requests (``R 0 128 T 0`` then ``W 0 128 T 1 0``, T = N * 16: FLAGS 0,
no line per request and no CRC over the data unless --crc, so the guest's own work is ~2 instructions a byte
and its UART output a few lines), then ``q``. Each mode runs
the whole command (a new process: Python or QEMU start-up, loading, the guest's set-up, the I/O, exit):

- chronicorn run      ``chronicorn run ELF --drive IMG < script``
- chronicorn record   ``chronicorn record ELF -o REC --drive IMG --uart-input script``
- chronicorn replay   ``chronicorn replay REC`` (the recording made in the same round)
- qemu                ``qemu-system-riscvNN -M virt -bios none ... -drive ...,snapshot=on < script``
- qemu -icount 3      the same with ``-icount shift=3`` (chronicorn's virtual clock)

MiB/s = guest-visible bytes (read + written, 2N MiB) / wall time, medians over --runs rounds (the modes take
turns within a round). "excl. start-up" subtracts the median wall time of the same command on a script that
is only ``q`` (the start-up, set-up and exit, no I/O): 2N MiB / (t(N) - t(0)). Every run's UART output is
checked (QEMU's must equal chronicorn's) before any time counts. Also: the recording's size per request
(file size / the IoCompletion events ``chronicorn events`` lists) and the same without the fixed part (the
difference from the recording of the ``q``-only script, per request).

    .venv/bin/python scripts/bench_blk.py [--mib 16] [--runs 3] [--xlen rv64] [--virtio legacy] [--crc] [--irq]
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "tests" / "guests" / "riscv" / "build"
REQUEST_SECTORS = 128  # 64 KiB, the guest's largest request
MIB = 1 << 20
MODES = ("chronicorn run", "chronicorn record", "chronicorn replay", "qemu", "qemu -icount 3")


def chronicorn(*args: str) -> list[str]:
    return [sys.executable, "-m", "gdbstub.cli", *args]


@dataclass
class Case:
    """One script size: its files and what the guest must print at the end."""

    mib: int
    work: Path
    crc: bool
    irq: bool
    image: Path
    script: Path = field(init=False)
    recording: Path = field(init=False)
    summary: bytes = field(init=False)

    def __post_init__(self) -> None:
        times = self.mib * MIB // (REQUEST_SECTORS * 512)
        flags = " 1" if self.crc else " 0"  # no line per request (the UART would cost more than the disk)
        lines = [f"R 0 {REQUEST_SECTORS} {times}{flags}", f"W 0 {REQUEST_SECTORS} {times} 1{flags}"] if times else []
        self.script = self.work / f"script-{self.mib}.txt"
        mode = ["i 1"] if self.irq else []
        self.script.write_text("".join(f"{line}\n" for line in [*mode, *lines, "q"]))
        self.recording = self.work / f"rec-{self.mib}.chrec"
        n = times * REQUEST_SECTORS * 512
        irqs = 2 * times if self.irq else 0
        self.summary = f"summary requests {2 * times} errors 0 read {n} written {n} irqs {irqs}\n".encode()

    @property
    def requests(self) -> int:
        return 2 * self.mib * MIB // (REQUEST_SECTORS * 512)


@dataclass
class Bench:
    xlen: str
    interface: str
    case: Case
    qemu: str
    outputs: dict[str, bytes] = field(default_factory=dict)
    instructions: int | None = None

    def command(self, mode: str) -> tuple[list[str], Path | None]:
        """The command line and the file for its stdin."""
        elf = str(GUESTS / self.xlen / "blkscript.elf")
        case = self.case
        virtio = ["--virtio", self.interface]
        if mode == "chronicorn run":
            return chronicorn("run", elf, "--drive", str(case.image), *virtio), case.script
        if mode == "chronicorn record":
            return chronicorn("record", elf, "-o", str(case.recording), "--drive", str(case.image), *virtio,
                              "--uart-input", str(case.script)), None  # fmt: skip
        if mode == "chronicorn replay":
            return chronicorn("replay", str(case.recording)), None
        cmd = [self.qemu, "-M", "virt", "-m", "128M", "-bios", "none", "-nographic", "-kernel", elf,
               "-drive", f"if=none,file={case.image},format=raw,id=d0,snapshot=on",
               "-device", "virtio-blk-device,drive=d0"]  # fmt: skip
        if self.interface == "modern":
            cmd += ["-global", "virtio-mmio.force-legacy=false"]
        if mode == "qemu -icount 3":
            cmd += ["-icount", "shift=3"]
        return cmd, case.script

    def run(self, mode: str) -> float:
        cmd, stdin = self.command(mode)
        with open(stdin, "rb") if stdin else open("/dev/null", "rb") as source:
            start = time.perf_counter()
            proc = subprocess.run(cmd, stdin=source, capture_output=True, cwd=ROOT, timeout=3600)
            elapsed = time.perf_counter() - start
        if proc.returncode != 0 or not proc.stdout.endswith(self.case.summary):
            sys.exit(f"{mode} ({self.case.mib} MiB) failed, exit {proc.returncode}:\n"
                     f"{proc.stdout[-500:].decode(errors='replace')}\n"
                     f"{proc.stderr.decode(errors='replace')}")  # fmt: skip
        first = self.outputs.setdefault("any", proc.stdout)
        if proc.stdout != first:
            sys.exit(f"{mode} ({self.case.mib} MiB): the UART output differs from the first run's")
        if mode == "chronicorn record":
            found = re.search(rb"recorded (\d+) instructions", proc.stderr)
            self.instructions = int(found[1]) if found else None
        return elapsed


def io_completions(recording: Path) -> int:
    proc = subprocess.run(chronicorn("events", str(recording)), capture_output=True, cwd=ROOT, check=True)
    return sum(" IoCompletion " in line for line in proc.stdout.decode().splitlines())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=16, help="MiB read, then MiB written (default 16)")
    parser.add_argument("--runs", type=int, default=3, help="rounds; medians are reported (default 3)")
    parser.add_argument("--xlen", choices=["rv32", "rv64"], default="rv64")
    parser.add_argument("--virtio", choices=["legacy", "modern"], default="legacy")
    parser.add_argument("--crc", action="store_true", help="the guest computes a CRC-32 over all the data")
    parser.add_argument("--irq", action="store_true",
                        help="the guest waits for each completion in wfi (its interrupt), not polling")  # fmt: skip
    args = parser.parse_args()
    if args.mib < 1 or args.runs < 1:
        parser.error("--mib and --runs must be at least 1")
    qemu = shutil.which(f"qemu-system-riscv{args.xlen[2:]}")
    modes = [m for m in MODES if qemu or not m.startswith("qemu")]
    if not qemu:
        print(f"qemu-system-riscv{args.xlen[2:]} not found: chronicorn only", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="bench-blk-") as tmp:
        work = Path(tmp)
        image = work / "disk.img"
        image.write_bytes(random.Random(0).randbytes(args.mib * MIB))
        benches = {size: Bench(args.xlen, args.virtio, Case(size, work, args.crc, args.irq, image), qemu or "")
                   for size in (0, args.mib)}  # fmt: skip
        times: dict[tuple[int, str], list[float]] = {}
        for round_ in range(args.runs):
            for size, bench in benches.items():
                for mode in modes:  # record before replay: the replay is of this round's recording
                    times.setdefault((size, mode), []).append(bench.run(mode))
            print(f"round {round_ + 1}/{args.runs} done", file=sys.stderr)
        full, empty = benches[args.mib].case, benches[0].case
        completions = io_completions(full.recording)
        rec_size, rec_empty = full.recording.stat().st_size, empty.recording.stat().st_size

    moved = 2 * args.mib  # MiB read + written
    print(f"blkscript {args.xlen} {args.virtio}: {args.mib} MiB read + {args.mib} MiB written in 64 KiB requests "
          f"({full.requests} requests{', CRC-32 over the data' if args.crc else ''}"
          f"{', completions by interrupt' if args.irq else ', completions polled'}); "
          f"guest instructions {benches[args.mib].instructions} (start-up and 'q' only: "
          f"{benches[0].instructions}); median of {args.runs} runs")  # fmt: skip
    header = f"{'mode':<20} {'whole run':>10} {'MiB/s':>8} {'start-up':>9} {'MiB/s excl. start-up':>21}"
    print(header)
    print("-" * len(header))
    for mode in modes:
        whole = statistics.median(times[(args.mib, mode)])
        start = statistics.median(times[(0, mode)])
        marginal = f"{moved / (whole - start):.1f}" if whole > start else "n/a"
        print(f"{mode:<20} {whole:>9.3f}s {moved / whole:>8.1f} {start:>8.3f}s {marginal:>21}")
    print(f"recording: {rec_size} bytes, {completions} IoCompletion events: {rec_size / completions:.1f} bytes "
          f"per request; without the fixed part (the 'q'-only recording, {rec_empty} bytes): "
          f"{(rec_size - rec_empty) / completions:.1f} bytes per request")  # fmt: skip
    if completions != full.requests:
        print(f"warning: {full.requests} requests but {completions} IoCompletion events", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
