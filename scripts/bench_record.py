#!/usr/bin/env python3
"""Recording and replay speed as ratios to a plain run of the same guest, measured in the same run.

Each round runs the compute guest (~75M instructions) three ways in this
process: plain (``Machine.run``), recording (what ``chronicorn record`` does: a
live timeline run forward to the end, verification points, the recording
written to memory) and replaying it (``chronicorn replay``: the recording's
timeline run to its end, every verification point checked). Prints per-round
times, the median ratios (plain time / mode time; the issue's bar is >= 0.9 for
both) and the log bytes per input event for the echo guest fed many inputs.

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
from replay.history import HistoryInputs
from replay.log import ChunkKind, LogReader, read_all
from replay.recording import load_recording, make_header
from replay.saver import RecordingWriter, history_inputs, open_recording
from replay.timeline import Timeline

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
    inputs = HistoryInputs([], 0, ScriptedInputs(schedule=schedule))
    recording = Machine(image, inputs, lambda b: None)
    live = Timeline(recording, inputs, periodic_snapshots=False)
    header = make_header(image, recording.arch.name, recording.config.ram_size, 3, "off", {})
    writer = RecordingWriter(stream, header, live)

    def record() -> None:
        live.run_forward(progress=lambda icount: writer.maybe_sync())
        writer.finish()

    t_record, _ = timed(record)
    loaded = load_recording(io.BytesIO(stream.getvalue()))
    replay_inputs = history_inputs(loaded)
    replaying = Machine(image, replay_inputs, lambda b: None)
    fixed = open_recording(loaded, replaying, replay_inputs, periodic_snapshots=False)
    t_replay, _ = timed(fixed.replay_to_end)
    if replaying.digest() != recording.digest():
        sys.exit("replay ended in a different state")
    return t_plain, t_record, t_replay, stream.getvalue()


def bytes_per_event() -> float:
    echo = ROOT / "tests/guests/riscv/build/rv32/echo.elf"
    schedule = [(20_000 + 500 * i, bytes([0x61 + i % 26])) for i in range(400)] + [(300_000, b"q")]
    _, _, _, log = one_round(echo, schedule)
    _, chunks, _ = read_all(log)
    events = sum(1 for _ in LogReader(io.BytesIO(log)).events())
    first_events = next(c.offset for c in chunks if c.kind == ChunkKind.EVENTS)  # after the initial snapshot
    return (len(log) - first_events) / events


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
    print(f"log bytes per event, chunk framing included (echo guest fed 401 one-byte inputs): {bytes_per_event():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
