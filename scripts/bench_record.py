#!/usr/bin/env python3
"""Recording and replay speed as ratios to a plain run of the same guest, measured in the same run.

Each round runs the compute guest (~75M instructions) three ways in this
process: plain (``Machine.run``), recording (Recorder + verification points,
log written to memory) and replaying that log. Prints per-round times, the
median ratios (plain time / mode time; the issue's bar is >= 0.9 for both) and
the log bytes per input event for the echo guest fed many inputs.

    scripts/bench_record.py [--guest ELF] [--rounds 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import Machine
from replay.driver import record_run, replay_run
from replay.log import LogReader, LogWriter
from replay.recorder import Recorder
from replay.replayer import Replayer

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GUEST = ROOT / "tests/guests/riscv/build/rv32/compute.elf"


def timed(fn) -> tuple[float, object]:  # noqa: ANN001
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def one_round(guest: Path, schedule: list[tuple[int, bytes]]) -> tuple[float, float, float, bytes]:
    image = load_image(guest)
    plain = Machine(image, ScriptedInputs(schedule=schedule), lambda b: None)
    t_plain, _ = timed(plain.run)
    stream = io.BytesIO()
    recorder = Recorder(ScriptedInputs(schedule=schedule), LogWriter(stream, {}))
    recording = Machine(image, recorder, lambda b: None)
    t_record, _ = timed(lambda: record_run(recording, recorder, None))
    replayer = Replayer(LogReader(io.BytesIO(stream.getvalue())).events())
    replaying = Machine(image, replayer, lambda b: None)
    t_replay, _ = timed(lambda: replay_run(replaying, replayer))
    if replaying.digest() != recording.digest():
        sys.exit("replay ended in a different state")
    return t_plain, t_record, t_replay, stream.getvalue()


def bytes_per_event() -> float:
    echo = ROOT / "tests/guests/riscv/build/rv32/echo.elf"
    schedule = [(20_000 + 500 * i, bytes([0x61 + i % 26])) for i in range(400)] + [(300_000, b"q")]
    _, _, _, log = one_round(echo, schedule)
    events = sum(1 for _ in LogReader(io.BytesIO(log)).events())
    header_end = log.index(b"CK")
    return (len(log) - header_end) / events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guest", type=Path, default=DEFAULT_GUEST)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    record_ratios, replay_ratios = [], []
    for i in range(args.rounds):
        t_plain, t_record, t_replay, _ = one_round(args.guest, [])
        record_ratios.append(t_plain / t_record)
        replay_ratios.append(t_plain / t_replay)
        print(f"round {i + 1}: plain {t_plain:.3f} s   record {t_record:.3f} s   replay {t_replay:.3f} s")
    med_record, med_replay = statistics.median(record_ratios), statistics.median(replay_ratios)
    print(f"median ratios over {args.rounds} rounds ({args.guest.name}): record {med_record:.3f}, "
          f"replay {med_replay:.3f} (bar: >= 0.9)")  # fmt: skip
    print(f"log bytes per input event (echo guest, 401 one-byte inputs): {bytes_per_event():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
