#!/usr/bin/env python3
"""Forward ``stepi`` cost: through gdb-multiarch against ``chronicorn serve`` and QEMU 7.2's stub, and per packet.

1. Round trip: gdb-multiarch runs ``stepi`` ``--steps`` times against each stub, timed inside gdb's own Python
   (``time.perf_counter`` around ``gdb.execute("stepi")``), so no MI client's polling is counted. QEMU:
   ``qemu-system-riscv64 -M virt -bios none -kernel GUEST -icount shift=3 -gdb tcp:127.0.0.1:PORT -S``.
   Medians per round, then the median of the rounds.
2. Per packet: gdb's real packet sequence for those steps (captured with ``--log-packets``) is replayed into
   an in-process Session/TimelineTarget; every reply is checked byte for byte against the capture and each
   packet is timed at the server (no socket), by kind, with the 1-instruction ``Machine.run`` inside ``vCont``.

    scripts/bench_stepi.py [--guest tests/guests/riscv/build/rv64/compute.elf] [--rounds 3] [--steps 300]
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_gdb import start_server  # scripts/, beside this one

from gdbstub.cli.timelines import live_timeline
from gdbstub.server import drive
from gdbstub.session import Session
from gdbstub.target import TimelineTarget
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import Machine, MachineConfig
from replay.store import DEFAULT_BUDGET, SnapshotStore

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GUEST = ROOT / "tests/guests/riscv/build/rv64/compute.elf"
WARM_UP = 20
GDB_SCRIPT = """
import gdb, statistics, time
gdb.execute("set confirm off")
gdb.execute("target remote 127.0.0.1:{port}", to_string=True)
for _ in range({warm}):
    gdb.execute("stepi", to_string=True)
times = []
for _ in range({steps}):
    start = time.perf_counter()
    gdb.execute("stepi", to_string=True)
    times.append(time.perf_counter() - start)
print("STEPI_MEDIAN_S", statistics.median(times))
gdb.execute("detach", to_string=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_chronicorn(guest: Path, log: Path | None) -> tuple[subprocess.Popen[bytes], int]:
    return start_server(guest, *(["--log-packets", str(log)] if log else []))


def start_qemu(guest: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()  # (QEMU cannot report a port it chose)
    proc = subprocess.Popen(["qemu-system-riscv64", "-M", "virt", "-bios", "none", "-kernel", str(guest),
                             "-nographic", "-icount", "shift=3", "-gdb", f"tcp:127.0.0.1:{port}", "-S",
                             "-monitor", "none", "-serial", "null"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port)).close()  # QEMU keeps listening after this one
            return proc, port
        except OSError:
            time.sleep(0.05)
    sys.exit("QEMU's gdb stub did not start")


def stepi_round(guest: Path, steps: int, qemu: bool, log: Path | None = None) -> float:
    """Median seconds per stepi through gdb-multiarch."""
    proc, port = start_qemu(guest) if qemu else start_chronicorn(guest, log)
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".py") as script:
            script.write(GDB_SCRIPT.format(port=port, steps=steps, warm=WARM_UP))
            script.flush()
            out = subprocess.run(["gdb-multiarch", "--nx", "--batch", "-x", script.name, str(guest)],
                                 capture_output=True, text=True, timeout=600).stdout  # fmt: skip
        return float(next(line for line in out.splitlines() if line.startswith("STEPI_MEDIAN_S")).split()[1])
    finally:
        proc.terminate()
        proc.wait()


def read_capture(path: Path) -> list[tuple[bytes, bytes]]:
    """(bytes received, bytes sent in answer) pairs of a --log-packets file."""
    parts = re.split(rb"(?:^|\n)(<-|->) ", path.read_bytes())
    pairs: list[list[bytes]] = []
    for direction, data in zip(parts[1::2], parts[2::2], strict=True):
        if direction == b"<-":
            pairs.append([data, b""])
        elif pairs:
            pairs[-1][1] += data
    return [(received, sent) for received, sent in pairs]


def kind_of(received: bytes) -> str:
    body = received[received.find(b"$") + 1 : received.rfind(b"#")]
    for name in (b"vCont;", b"qfThreadInfo", b"qsThreadInfo", b"qXfer", b"qRcmd", b"qSupported"):
        if body.startswith(name):
            return name.decode()
    return body[:2].decode() if body[:1] in (b"Z", b"z") else body[:1].decode(errors="replace")


def per_packet(guest: Path, capture: list[tuple[bytes, bytes]]) -> tuple[dict[str, list[float]], list[float], int]:
    """Server time of each packet after the warm-up, by kind; the 1-instruction machine runs; mismatches."""
    timeline = live_timeline(load_image(str(guest)), ScriptedInputs(), MachineConfig(), SnapshotStore(DEFAULT_BUDGET))
    session = Session(TimelineTarget(timeline))
    runs: list[float] = []
    machine_run = Machine.run

    def timed_run(self: Machine, *args: object, **kwargs: object) -> object:
        start = time.perf_counter()
        try:
            return machine_run(self, *args, **kwargs)  # type: ignore[arg-type]
        finally:
            runs.append(time.perf_counter() - start)

    times: dict[str, list[float]] = collections.defaultdict(list)
    steps = mismatches = 0
    Machine.run = timed_run  # type: ignore[method-assign]
    try:
        for received, sent in capture:
            start = time.perf_counter()
            reply = drive(session, received)
            elapsed = time.perf_counter() - start
            mismatches += reply != sent.rstrip(b"\n") and reply != sent
            kind = kind_of(received)
            steps += kind == "vCont;"
            if steps > WARM_UP:
                times[kind].append(elapsed)
    finally:
        Machine.run = machine_run  # type: ignore[method-assign]
    return times, runs[WARM_UP:], mismatches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guest", type=Path, default=DEFAULT_GUEST)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    has_qemu = shutil.which("qemu-system-riscv64") is not None
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        capture_path = Path(tmp) / "packets.log"
        for i in range(args.rounds):
            ours.append(stepi_round(args.guest, args.steps, qemu=False, log=capture_path if i == 0 else None))
            theirs += [stepi_round(args.guest, args.steps, qemu=True)] if has_qemu else []
            print(f"round {i + 1}: chronicorn {ours[-1] * 1e3:.2f} ms per stepi"
                  + (f", QEMU {theirs[-1] * 1e3:.2f} ms" if has_qemu else ""), flush=True)  # fmt: skip
        capture = read_capture(capture_path)
    med = statistics.median
    qemu_text = f", QEMU {med(theirs) * 1e3:.2f} ms" if has_qemu else ""
    print(f"stepi round trip through gdb-multiarch, median of {args.rounds} rounds of {args.steps}: "
          f"chronicorn {med(ours) * 1e3:.2f} ms{qemu_text}")  # fmt: skip
    rounds = [per_packet(args.guest, capture) for _ in range(args.rounds)]
    steps = len(rounds[0][0]["vCont;"])
    print(f"per packet at the server (in-process, median of {args.rounds} replays of the capture, "
          f"{sum(r[2] for r in rounds)} replies differing from it):")  # fmt: skip
    print(f"  {'packet':14s} {'per stepi':>9s} {'median us':>10s} {'us/stepi':>9s}")
    total = 0.0
    for kind in sorted(rounds[0][0], key=lambda k: -sum(rounds[0][0][k])):
        per_step = med(sum(r[0][kind]) / steps for r in rounds) * 1e6
        total += per_step
        print(f"  {kind:14s} {len(rounds[0][0][kind]) / steps:9.2f} "
              f"{med(med(r[0][kind]) for r in rounds) * 1e6:10.1f} {per_step:9.1f}")  # fmt: skip
    run_us = med(med(r[1]) for r in rounds) * 1e6
    print(f"  total {total:.0f} us per stepi; of it Machine.run (1 instruction, inside vCont): {run_us:.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
