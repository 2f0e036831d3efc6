#!/usr/bin/env python3
"""Ctrl-C latency through a real socket: from sending 0x03 to receiving the stop reply, median of N tries.

Starts ``chronicorn serve GUEST --port 0`` in its own process (as gdb sees it) and speaks RSP over TCP. Each
try sends ``c`` (or, with ``--reverse``, ``bc`` from the end of history towards a breakpoint at ``main``, hit
once near the start), lets it run a random 50-150 ms, sends 0x03 and times until the ``T02`` stop reply. A
try whose run ended by itself before the 0x03 (the guest's end, or the breakpoint) is not counted, and the
guest is put back (``monitor seek``) first. The server polls the socket each time the machine reaches a
checkpoint; the goal is a median of at most 100 ms.

    scripts/bench_interrupt.py [--guest tests/guests/riscv/build/rv64/compute.elf] [--tries 10] [--reverse]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gdbstub.wire import WireClient  # noqa: E402
from machine.loader import load_image  # noqa: E402

GOAL_S = 0.1
INTERRUPTED = b"T02thread:1;"


class ServedGuest:
    """``chronicorn serve GUEST --port 0`` in a child process; its port read from the first line."""

    def __init__(self, guest: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gdbstub.cli", "serve", str(guest), "--port", "0"],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening on "):
            self.close()
            raise SystemExit(f"the server did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        # The guest's UART output: drained so a talkative guest never blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def one_try(gdb: WireClient, packet: bytes, rng: random.Random) -> tuple[float, bytes]:
    """Run ``packet``, let it go 50-150 ms, Ctrl-C; returns (seconds from 0x03 to the reply, the reply)."""
    gdb.command(packet)
    time.sleep(rng.uniform(0.05, 0.15))  # a benchmark, not a test: let the guest get going
    start = time.perf_counter()
    gdb.sock.sendall(b"\x03")
    reply = gdb.reply()
    return time.perf_counter() - start, reply


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guest", type=Path, default=ROOT / "tests/guests/riscv/build/rv64/compute.elf")
    parser.add_argument("--tries", type=int, default=10)
    parser.add_argument("--reverse", action="store_true", help="interrupt bc (reverse-continue) instead of c")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    server = ServedGuest(args.guest)
    try:
        gdb = WireClient.connect(server.port)
        restart = "0"
        if args.reverse:  # record the whole run first: bc then has all of it to go back through
            gdb.command(b"c")
            gdb.reply()
            restart = gdb.monitor("icount").strip()
            # A breakpoint hit once, near the start: bc scans the whole history back to it.
            gdb.command(b"Z0,%x,2" % load_image(args.guest).symbols["main"])
            assert gdb.reply() == b"OK"
        packet = b"bc" if args.reverse else b"c"
        latencies: list[float] = []
        for _ in range(3 * args.tries):
            if len(latencies) == args.tries:
                break
            if args.reverse:  # each bc from the end of history
                gdb.monitor(f"seek {restart}")
            latency, reply = one_try(gdb, packet, rng)
            where = gdb.monitor("icount").strip()
            if reply != INTERRUPTED:  # the run ended by itself first: rewind and try again
                print(f"  (run ended by itself at icount {where}: {reply.decode()}; rewinding)")
                # Our 0x03 reached a stopped server: it waits to interrupt the next resume. Use it up.
                gdb.command(b"s")
                gdb.reply()
                gdb.monitor(f"seek {restart}")
                continue
            latencies.append(latency)
            print(f"  try {len(latencies):2}: {latency * 1e3:6.1f} ms (stopped at icount {where})")
    finally:
        server.close()
    if not latencies:
        raise SystemExit("every run ended by itself before the Ctrl-C: use a longer guest")
    median = statistics.median(latencies)
    verdict = "ok" if median <= GOAL_S else f"over the {GOAL_S * 1e3:.0f} ms goal"
    direction = "reverse-continue (bc)" if args.reverse else "continue (c)"
    spread = f"min {min(latencies) * 1e3:.1f}, max {max(latencies) * 1e3:.1f}"
    print(f"{args.guest.name}, {direction}: median Ctrl-C latency of {len(latencies)} tries "
          f"{median * 1e3:.1f} ms ({spread}): {verdict}")  # fmt: skip
    return 0 if median <= GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
