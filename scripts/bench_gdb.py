#!/usr/bin/env python3
"""gdb round trips through the real gdb-multiarch (pygdbmi) against ``chronicorn serve``.

Measures, in one run: ``stepi`` round trips per second (each is gdb's whole
per-stop exchange: registers, memory reads, thread queries), and the time of a
``continue`` to a breakpoint near the end of the compute guest compared with
``chronicorn run`` on the same guest (both include the same ~75M instructions).
Also times the machine alone with and without a breakpoint that is never hit.
Prints medians of ``--rounds`` runs.

    scripts/bench_gdb.py [--guest tests/guests/riscv/build/rv32/compute.elf] [--rounds 3] [--steps 200]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from pygdbmi.gdbcontroller import GdbController

from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import Machine

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GUEST = ROOT / "tests/guests/riscv/build/rv32/compute.elf"


def start_server(guest: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    """``chronicorn serve GUEST --port 0 EXTRA...``: the process and the port it listens on."""
    proc = subprocess.Popen([sys.executable, "-m", "gdbstub.cli", "serve", str(guest), "--port", "0", *extra],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, cwd=ROOT)  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("listening on "):
        sys.exit(f"server did not start: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


def until_stopped(gdb: GdbController, command: str) -> dict:
    records = gdb.write(command, timeout_sec=120, raise_error_on_timeout=False)
    while True:
        stopped = [r for r in records if r["type"] == "notify" and r["message"] == "stopped"]
        if stopped:
            return stopped[-1]["payload"]
        records = gdb.get_gdb_response(timeout_sec=120, raise_error_on_timeout=False)


def gdb_round(guest: Path, steps: int, stop_symbol: str) -> tuple[float, float, float]:
    """(stepi round trips per second, seconds for continue to the breakpoint, Ctrl-C latency)."""
    server, port = start_server(guest)
    gdb = GdbController(
        command=["gdb-multiarch", "--nx", "--quiet", "--interpreter=mi3", str(guest)],
        time_to_check_for_additional_output_sec=0.005,  # pygdbmi otherwise lingers 0.2 s per read
    )
    try:
        gdb.write("-gdb-set confirm off", timeout_sec=10)
        gdb.write("-gdb-set mi-async on", timeout_sec=10)
        gdb.write(f"-target-select remote 127.0.0.1:{port}", timeout_sec=30)
        start = time.perf_counter()
        for _ in range(steps):
            until_stopped(gdb, "-exec-step-instruction")
        rate = steps / (time.perf_counter() - start)
        gdb.write(f"-break-insert {stop_symbol}", timeout_sec=10)
        start = time.perf_counter()
        stopped = until_stopped(gdb, "-exec-continue")
        elapsed = time.perf_counter() - start
        if stopped.get("reason") != "breakpoint-hit":
            sys.exit(f"continue did not stop at {stop_symbol}: {stopped}")
        # Ctrl-C latency: restart the guest's work by continuing, interrupt at once.
        gdb.write("-break-delete", timeout_sec=10)
        gdb.write("-exec-continue", read_response=False)
        start = time.perf_counter()
        stopped = until_stopped(gdb, "-exec-interrupt")
        latency = time.perf_counter() - start
        return rate, elapsed, latency
    finally:
        gdb.exit()
        server.terminate()
        server.wait()


def run_time(guest: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gdbstub.cli", "run", str(guest)], check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def machine_time(guest: Path, breakpoint_addr: int | None) -> float:
    machine = Machine(load_image(guest), ScriptedInputs(), lambda b: None)
    if breakpoint_addr is not None:
        machine.add_breakpoint(breakpoint_addr)
    start = time.perf_counter()
    machine.run()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guest", type=Path, default=DEFAULT_GUEST)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--stop-at", default="uart_puts", help="symbol for the continue-to-breakpoint timing")
    args = parser.parse_args()
    never_hit = load_image(args.guest).symbols.get("trap_handler")
    rates, continues, latencies, runs, plain, with_bp = [], [], [], [], [], []
    for i in range(args.rounds):
        rate, cont, latency = gdb_round(args.guest, args.steps, args.stop_at)
        latencies.append(latency)
        rates.append(rate)
        continues.append(cont)
        runs.append(run_time(args.guest))
        plain.append(machine_time(args.guest, None))
        with_bp.append(machine_time(args.guest, never_hit))
        print(f"round {i + 1}: stepi {rate:6.1f}/s   continue to {args.stop_at} {cont:.3f} s   "
              f"chronicorn run {runs[-1]:.3f} s   machine {plain[-1]:.3f} s, with an unhit breakpoint "
              f"{with_bp[-1]:.3f} s")  # fmt: skip
    med = statistics.median
    print(f"medians over {args.rounds} rounds ({args.guest.name}):")
    print(f"  stepi round trips per second: {med(rates):.1f}")
    print(f"  continue to breakpoint: {med(continues):.3f} s; chronicorn run (whole guest, with process start): "
          f"{med(runs):.3f} s")  # fmt: skip
    print(f"  unhit breakpoint cost: {(med(with_bp) / med(plain) - 1) * 100:+.1f} % of run time")
    print(f"  Ctrl-C (-exec-interrupt) to stop reply: {med(latencies) * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
