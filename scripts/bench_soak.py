#!/usr/bin/env python3
"""Soak: thousands of mixed debugger operations through the real gdb-multiarch against ``chronicorn serve``.

One live server (``ServerProcess``: ``chronicorn serve GUEST --snapshot-budget BUDGET``) and one gdb
(``GdbClient``), driven by a seeded random mix of what a user does:

- ``stepi`` / ``reverse-stepi``, ``next`` / ``reverse-next``;
- ``continue`` / ``reverse-continue`` to breakpoints (on lines of the compute loop and on functions);
- ``monitor seek N`` to a random icount inside history (then ``maint flush register-cache`` and the frame,
  as a user sees it), and ``monitor seek END`` before most writes;
- ``monitor snapshot save NAME`` / ``snapshot load NAME`` over a small set of reused names;
- debugger writes: ``set var`` on a guest array element, and a register flipped and flipped back
  (``set var $t0 = (long)$t0 ^ 1`` twice). Writes are only allowed at the live end of history: a write inside
  history is refused by the server (``Exx``), and is counted as *refused*, not as an error.

It prints, per operation kind: count, latency median / p99 / max in ms (wall time seen by the script,
gdb's own per-stop work and pygdbmi's polling included), and how many ended at an end of history, were
refused inside history, were refused for want of budget (*full*: a ``snapshot save`` answered "...budget...",
a write at the live end answered ``E0c`` (ENOMEM), or a memory write at the live end refused while the store
stands at its budget: gdb only says "Cannot access memory" for any ``Exx``), failed (gdb ``^error`` or a
monitor ``error:``), or were cut (interrupted after ``--step-timeout`` for next/reverse-next, ``--op-timeout``
for the rest; cut operations are left out of the latencies). Every ``--sample-every`` operations it samples
the server process's memory (VmRSS from /proc/PID/status) and the store's own figure from ``monitor history``
(with the refusals so far); at the end, peak RSS (VmHWM too), peak minus the RSS right after start, the
budget, and what the server logged (tracebacks, divergences). Errors are counted, not fatal; a dropped
connection or the server's death is (exit 1). It is a benchmark, not a test: nothing is asserted about timings.

    .venv/bin/python scripts/bench_soak.py [--guest tests/guests/riscv/build/rv64/compute.elf]
        [--snapshot-budget 64M] [--ops 2000] [--seed 1] [--sample-every 100] [--step-timeout 1]

On a 2-core machine a default run takes under a minute (2000 operations reach ~24M instructions of the
guest's 75M); ``--ops 8000`` (~3 minutes) runs it to its end and keeps a small budget full for a long time.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gdbstub.client import GdbClient, GdbError, ServerProcess, Stop, StopReason, mi_quote, stop_from_record

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GUEST = ROOT / "tests/guests/riscv/build/rv64/compute.elf"
COMPUTE_SOURCE = ROOT / "tests/guests/riscv/compute.c"
# Lines of compute's round loop (hit once per round, ~650K instructions apart) and functions (at the end).
COMPUTE_LINES = ("uint32_t s = sieve(", "acc = (acc << 7)")
COMPUTE_FUNCTIONS = ("uart_puts", "guest_exit")
WRITE_VARS = ("buf:2048", "composite:32768")  # compute's arrays: NAME:LENGTH, written one element at a time
REGISTERS = tuple(f"t{i}" for i in range(7)) + tuple(f"a{i}" for i in range(8)) + tuple(f"s{i}" for i in range(12))

# Operation kinds and their weights in the mix (percent).
WEIGHTS = {
    "stepi": 14, "reverse-stepi": 14, "next": 4, "reverse-next": 4, "continue": 12, "reverse-continue": 12,
    "seek": 14, "snapshot save": 5, "snapshot load": 5, "write memory": 8, "write register": 8,
}  # fmt: skip
# Also timed, as they happen: "seek END" (before a write), "monitor history" (every sample, before writes).
FATAL_TEXT = ("Remote connection closed", "Remote communication error", "The program is not being run",
              "Connection reset", "Broken pipe", "Remote doesn't know", "Couldn't get registers")  # fmt: skip
HISTORY_RE = re.compile(
    r"history: icount (\d+)\.\.(\d+).*?now: icount (\d+).*?snapshots: (\d+) periodic/automatic, (\d+) named"
    r".*?memory: ([\d.]+) MiB of ([\d.]+) MiB budget \((\d+) evicted\)",
    re.DOTALL,
)


class Fatal(Exception):
    """The connection dropped or the server died: the soak cannot go on."""


@dataclass
class Tally:
    """One operation kind: latencies of the completed ones and how the others ended."""

    latencies: list[float] = field(default_factory=list)
    no_history: int = 0
    refused: int = 0  # inside history
    full: int = 0  # no room in the snapshot budget for the pin (named snapshot, write keyframe)
    errors: int = 0
    cut: int = 0

    @property
    def count(self) -> int:
        return len(self.latencies) + self.cut + self.errors + self.refused + self.full


@dataclass(frozen=True)
class History:
    """What ``monitor history`` says."""

    start: int
    end: int
    now: int
    snapshots: int
    named: int
    store_mib: float
    budget_mib: float
    evicted: int


def parse_size(text: str) -> int:
    """``64M`` -> bytes (as the server's ``--snapshot-budget`` reads it: K, M, G suffixes, powers of 2)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB (Fatal if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError as exc:
        raise Fatal(f"the server process {pid} is gone ({exc})") from None
    found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, re.MULTILINE))
    return {key: int(value) for key, value in found.items()}


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class Soak:
    """The driver: one gdb, one server, a seeded RNG and the tallies."""

    def __init__(self, gdb: GdbClient, server: ServerProcess, args: argparse.Namespace) -> None:
        self.gdb, self.server, self.args = gdb, server, args
        self.rng = random.Random(args.seed)
        self.tallies: dict[str, Tally] = {}
        self.messages: Counter[tuple[str, str]] = Counter()
        self.saved: set[str] = set()
        self.names = [f"soak{i}" for i in range(args.names)]
        self.write_vars = [(name, int(length)) for name, length in (v.split(":") for v in args.write_var)]

    # -- running one operation ---------------------------------------------------------------------
    def tally(self, kind: str) -> Tally:
        return self.tallies.setdefault(kind, Tally())

    def check_alive(self) -> None:
        code = self.server.proc.poll()
        if code is not None:
            raise Fatal(f"the server exited with status {code}")

    def failed(self, kind: str, exc: Exception, refused: bool = False, full: bool = False) -> None:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if any(fatal in text for fatal in FATAL_TEXT):
            raise Fatal(f"{kind}: {text}")
        self.check_alive()
        full = full or "budget" in text or "'E0c'" in text  # a pin the budget has no room for (ENOMEM)
        tally = self.tally(kind)
        if full:
            tally.full += 1
        elif refused:
            tally.refused += 1
        else:
            tally.errors += 1
        general = text  # one line per kind of message: without addresses, registers, names, sizes
        for pattern, replacement in (
            (r"0x[0-9a-fA-F]+", "0x..."), (r'"\$?\w+"', '"R"'), (r"'soak\d+'", "'NAME'"), (r"\d+\.\d+", "N"),
        ):  # fmt: skip
            general = re.sub(pattern, replacement, general)
        self.messages[(kind, ("full: " if full else "refused: " if refused else "") + general[:200])] += 1

    def timed(self, kind: str, action: Callable[[], object]) -> object | None:
        """Run ``action``, adding its latency to ``kind``; a GdbError or monitor error is counted, not raised."""
        start = time.perf_counter()
        try:
            result = action()
        except GdbError as exc:
            self.failed(kind, exc)
            return None
        elapsed = time.perf_counter() - start
        self.check_alive()
        if isinstance(result, str) and result.startswith("error"):
            self.failed(kind, GdbError(result))
            return None
        self.tally(kind).latencies.append(elapsed)
        return result

    def execute(self, kind: str, command: str, timeout: float) -> Stop | None:
        """An execution command up to its stop; interrupted (and counted as cut) after ``timeout`` seconds."""
        gdb = self.gdb
        start = time.perf_counter()
        try:
            gdb.output = ""
            gdb.mi(command)
            try:
                payload = gdb.wait_stopped(timeout)
            except TimeoutError:
                try:
                    gdb.interrupt()
                except TimeoutError:
                    raise Fatal(f"{kind}: no stop {timeout} s after {command!r}, nor after an interrupt") from None
                self.check_alive()
                self.tally(kind).cut += 1
                return None
        except GdbError as exc:
            self.failed(kind, exc)
            return None
        elapsed = time.perf_counter() - start
        self.check_alive()
        stop = stop_from_record(payload, gdb.output)
        if stop.reason == StopReason.EXITED:
            raise Fatal(f"{kind}: gdb says the program exited: {stop.console.strip()!r}")
        tally = self.tally(kind)
        tally.latencies.append(elapsed)
        if stop.reason == StopReason.NO_HISTORY:
            tally.no_history += 1
        return stop

    def monitor_then_frame(self, command: str) -> str:
        """``monitor COMMAND`` that moves in time, then what gdb does for the user: flush registers, read the frame."""
        reply = self.gdb.monitor(command)
        if reply.startswith("error"):
            return reply
        self.gdb.mi(f"-interpreter-exec console {mi_quote('maint flush register-cache')}")
        self.gdb.frame()
        return reply

    def history(self) -> History:
        reply = self.timed("monitor history", lambda: self.gdb.monitor("history"))
        found = HISTORY_RE.search(reply) if isinstance(reply, str) else None
        if found is None:
            raise Fatal(f"unexpected reply to monitor history: {reply!r}")
        g = found.groups()
        return History(int(g[0]), int(g[1]), int(g[2]), int(g[3]), int(g[4]), float(g[5]), float(g[6]), int(g[7]))

    def store_full(self) -> bool:
        """Whether the store stands at its budget (within 1%), as ``monitor history`` says."""
        h = self.history()
        return h.store_mib >= 0.99 * h.budget_mib

    def refusals(self) -> tuple[int, int]:
        """(refused inside history, refused for want of budget) so far, all kinds."""
        return sum(t.refused for t in self.tallies.values()), sum(t.full for t in self.tallies.values())

    # -- the operations ----------------------------------------------------------------------------
    def operation(self, kind: str) -> None:
        gdb, rng, args = self.gdb, self.rng, self.args
        if kind in ("stepi", "reverse-stepi"):
            self.execute(
                kind, "-exec-step-instruction" + (" --reverse" if kind.startswith("reverse") else ""), args.op_timeout
            )
        elif kind in ("next", "reverse-next"):
            self.execute(kind, "-exec-next" + (" --reverse" if kind.startswith("reverse") else ""), args.step_timeout)
        elif kind in ("continue", "reverse-continue"):
            command = "-exec-continue" + (" --reverse" if kind.startswith("reverse") else "")
            self.execute(kind, command, args.op_timeout)
        elif kind == "seek":
            h = self.history()
            self.timed(kind, lambda: self.monitor_then_frame(f"seek {rng.randint(h.start, h.end)}"))
        elif kind == "snapshot save":
            name = rng.choice(self.names)
            if self.timed(kind, lambda: gdb.monitor(f"snapshot save {name}")) is not None:
                self.saved.add(name)
        elif kind == "snapshot load":
            if not self.saved:
                return self.operation("snapshot save")
            name = rng.choice(sorted(self.saved))
            self.timed(kind, lambda: self.monitor_then_frame(f"snapshot load {name}"))
        elif kind in ("write memory", "write register"):
            self.write(kind)
        else:
            raise ValueError(kind)

    def write(self, kind: str) -> None:
        """A debugger write; most of the time at the live end (``monitor seek END`` first), else where we are."""
        h = self.history()
        at_end = h.now == h.end
        if not at_end and self.rng.random() < self.args.go_to_end:
            at_end = self.timed("seek END", lambda: self.monitor_then_frame(f"seek {h.end}")) is not None
        if kind == "write memory":
            name, length = self.rng.choice(self.write_vars)
            commands = [f"set var {name}[{self.rng.randrange(length)}] = {self.rng.randrange(256)}"]
        else:
            register = self.rng.choice(REGISTERS)
            commands = [f"set var ${register} = (long)${register} ^ 1"] * 2  # flipped and flipped back
        start = time.perf_counter()
        try:
            for command in commands:
                self.gdb.console(command)
        except GdbError as exc:
            full = at_end and "Cannot access memory" in str(exc) and self.store_full()
            self.failed(kind, exc, refused=not at_end, full=full)
            return
        self.check_alive()
        self.tally(kind).latencies.append(time.perf_counter() - start)

    def setup(self) -> list[str]:
        """Breakpoints: the given specs, or compute's round loop and functions; returns the specs set."""
        specs = list(self.args.break_at)
        if not specs:
            source = COMPUTE_SOURCE.read_text().splitlines()
            for text in COMPUTE_LINES:
                line = next((i + 1 for i, s in enumerate(source) if text in s), None)
                if line is not None:
                    specs.append(f"compute.c:{line}")
            specs += COMPUTE_FUNCTIONS
        placed = []
        for spec in specs:
            try:
                self.gdb.break_at(spec)
                placed.append(spec)
            except GdbError as exc:
                print(f"breakpoint {spec}: {exc}", file=sys.stderr)
        return placed


def rss_mib(pid: int) -> float:
    return proc_status(pid)["VmRSS"] / 1024


def run(args: argparse.Namespace) -> int:
    budget = parse_size(args.snapshot_budget)
    elf = args.guest.resolve()
    wall = time.perf_counter()
    with (
        ServerProcess(elf, "--snapshot-budget", args.snapshot_budget) as server,
        GdbClient(elf, poll_interval=0.005) as gdb,
    ):
        pid = server.proc.pid
        gdb.connect(server.port)
        soak = Soak(gdb, server, args)
        placed = soak.setup()
        base_rss = rss_mib(pid)
        guest = elf.relative_to(ROOT) if elf.is_relative_to(ROOT) else elf
        print(f"guest {guest}, server pid {pid}, budget {args.snapshot_budget} ({budget / (1 << 20):.0f} MiB), "
              f"{args.ops} operations, seed {args.seed}")  # fmt: skip
        print(f"breakpoints: {', '.join(placed) or 'none'}")
        print(f"RSS right after start (connected, breakpoints set): {base_rss:.1f} MiB\n")
        header = f"{'ops':>6} {'time s':>7} {'icount':>11} {'end':>11} {'RSS MiB':>8} {'store MiB':>9} "
        header += f"{'snaps':>6} {'named':>5} {'evicted':>7} {'refused':>7} {'full':>5}"
        print(header)
        samples: list[tuple[int, float, float]] = []
        hwm = base_rss
        kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
        failure = None
        try:
            for done in range(args.ops + 1):
                if done % args.sample_every == 0 or done == args.ops:
                    h = soak.history()
                    status = proc_status(pid)
                    rss, hwm = status["VmRSS"] / 1024, status["VmHWM"] / 1024
                    samples.append((done, rss, h.store_mib))
                    refused, full = soak.refusals()
                    print(f"{done:>6} {time.perf_counter() - wall:>7.1f} {h.now:>11} {h.end:>11} {rss:>8.1f} "
                          f"{h.store_mib:>9.1f} {h.snapshots:>6} {h.named:>5} {h.evicted:>7} {refused:>7} {full:>5}",
                          flush=True)  # fmt: skip
                if done == args.ops:
                    break
                soak.operation(soak.rng.choices(kinds, weights)[0])
        except Fatal as exc:
            failure = str(exc)
        except Exception as exc:  # pygdbmi raising on a dead gdb, a TimeoutError outside a run, ...
            failure = f"{type(exc).__name__}: {exc}"
        if server.proc.poll() is None:
            hwm = proc_status(pid)["VmHWM"] / 1024  # else: as of the last sample
        elapsed = time.perf_counter() - wall
        _, server_log = server.stop()

    print(f"\n{'operation':<17} {'count':>6} {'median ms':>9} {'p99 ms':>8} {'max ms':>8} "
          f"{'no-hist':>7} {'refused':>7} {'full':>5} {'errors':>6} {'cut':>4}")  # fmt: skip
    for kind in (*WEIGHTS, "seek END", "monitor history"):
        t = soak.tallies.get(kind)
        if t is None:
            continue
        lat = [x * 1e3 for x in t.latencies]
        figures = f"{statistics.median(lat):>9.1f} {percentile(lat, 0.99):>8.1f} {max(lat):>8.1f}" if lat else (
            f"{'-':>9} {'-':>8} {'-':>8}")  # fmt: skip
        print(
            f"{kind:<17} {t.count:>6} {figures} {t.no_history:>7} {t.refused:>7} {t.full:>5} {t.errors:>6} {t.cut:>4}"
        )
    if soak.messages:
        print("\nrefusals and errors (kind: gdb's message, count):")
        for (kind, text), count in soak.messages.most_common(12):
            print(f"  {kind}: {text} x{count}")
    peak = max((rss for _, rss, _ in samples), default=base_rss)
    store_peak = max((store for _, _, store in samples), default=0.0)
    print(f"\npeak RSS (samples) {peak:.1f} MiB, VmHWM {hwm:.1f} MiB; after start {base_rss:.1f} MiB; "
          f"growth {peak - base_rss:+.1f} MiB (VmHWM {hwm - base_rss:+.1f}); store's own peak {store_peak:.1f} MiB; "
          f"budget {budget / (1 << 20):.0f} MiB")  # fmt: skip
    log_text = server_log.decode(errors="replace")
    notable = {w: log_text.count(w) for w in ("Traceback", "diverged", "budget", "WARNING", "ERROR")}
    print(f"server log: {len(log_text.splitlines())} lines; " + ", ".join(f"{w!r} x{n}" for w, n in notable.items()))
    print(f"wall time {elapsed:.0f} s")
    if failure is not None:
        print(f"FATAL: {failure}", file=sys.stderr)
        tail = log_text.strip().splitlines()[-15:]
        if tail:
            print("server log tail:\n  " + "\n  ".join(tail), file=sys.stderr)
        return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guest", type=Path, default=DEFAULT_GUEST)
    parser.add_argument("--snapshot-budget", default="64M", help="passed to serve (default 64M)")
    parser.add_argument("--ops", type=int, default=2000, help="operations in all (default 2000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample-every", type=int, default=100, help="memory sample period, in operations")
    parser.add_argument("--names", type=int, default=4, help="snapshot names reused (default 4)")
    parser.add_argument("--go-to-end", type=float, default=0.7,
                        help="chance that a write first seeks to the live end (default 0.7)")  # fmt: skip
    parser.add_argument("--step-timeout", type=float, default=1.0,
                        help="seconds before a next/reverse-next is interrupted (default 1)")  # fmt: skip
    parser.add_argument("--op-timeout", type=float, default=60.0,
                        help="seconds before any other run is interrupted (default 60)")  # fmt: skip
    parser.add_argument("--break", dest="break_at", action="append", default=[], metavar="SPEC",
                        help="breakpoint (repeatable; default: compute's loop, uart_puts, guest_exit)")  # fmt: skip
    parser.add_argument("--write-var", action="append", metavar="NAME:LENGTH",
                        help=f"an array for 'write memory' (repeatable; default {' '.join(WRITE_VARS)})")  # fmt: skip
    args = parser.parse_args()
    args.write_var = args.write_var or list(WRITE_VARS)
    if args.ops < 0 or args.sample_every < 1 or args.names < 1:
        parser.error("--ops must be >= 0, --sample-every and --names >= 1")
    sys.exit(run(args))


if __name__ == "__main__":
    main()
