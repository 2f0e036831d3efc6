"""``chronicorn record``, ``replay``, ``info`` and ``events``: recordings from the command line."""

from __future__ import annotations

import argparse
import collections
import contextlib
import signal
import sys
from dataclasses import fields
from pathlib import Path

from machine.arch.riscv import ARCHES
from machine.inputs import HostInputs
from machine.loader import ImageError, load_image
from machine.machine import Machine, MachineConfig
from machine.results import RunKind, RunResult
from replay.driver import record_run, replay_run
from replay.events import End
from replay.log import LogReader, LogWriter, RecordingError
from replay.recorder import Recorder
from replay.recording import (
    Header,
    LoadedRecording,
    check_replayable,
    encode_state,
    load_recording,
    make_header,
)
from replay.replayer import ReplayDivergence, Replayer

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 5


def _tx(byte: int) -> None:
    sys.stdout.buffer.write(bytes((byte,)))
    sys.stdout.buffer.flush()


def _run_interruptibly(run: object) -> RunResult:
    stop = {"stop": False}
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.update(stop=True))
    try:
        return run(lambda: stop["stop"])  # type: ignore[operator]
    finally:
        signal.signal(signal.SIGINT, previous)


def _exit_code(result: RunResult) -> int:
    if result.kind == RunKind.EXITED:
        return int(result.exit_code or 0)
    if result.kind == RunKind.FAULT:
        print(f"chronicorn: {result.describe()}", file=sys.stderr)
        return 3
    return 0


def cmd_record(args: argparse.Namespace, config: MachineConfig) -> int:
    """Run the guest live and write every non-deterministic input to ``-o FILE``."""
    image = load_image(args.guest, args.load_addr)
    if args.uart_input == "-":
        fd = None if sys.stdin is None or sys.stdin.closed else sys.stdin.fileno()
        source = None
    else:
        try:
            source = open(args.uart_input, "rb")  # noqa: SIM115 - read by the input thread until the end
        except OSError as exc:
            raise ImageError(f"cannot read UART input {args.uart_input}: {exc.strerror or exc}") from exc
        fd = source.fileno()
    try:
        out = open(args.output, "wb")  # noqa: SIM115 - the recording is written as the guest runs
    except OSError as exc:
        raise ImageError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    with out, source or contextlib.nullcontext():
        probe = Machine(image, HostInputs(None), lambda b: None, config)  # validates the image and options
        options = {"max_insns": args.max_insns, "uart_input": args.uart_input}
        header = make_header(image, probe.arch.name, config.ram_size, config.icount_shift, args.sleep, options)
        writer = LogWriter(out, header.to_json())
        recorder = Recorder(HostInputs(fd, sleep=args.sleep == "on"), writer)
        machine = Machine(image, recorder, _tx, MachineConfig(probe.arch, config.ram_size, config.icount_shift,
                                                              config.prefer_native))  # fmt: skip
        writer.write_snapshot(0, encode_state(machine.save_state()))  # QEMU's rrsnapshot: replay starts here
        result = _run_interruptibly(lambda stop: record_run(machine, recorder, args.max_insns, stop))
    print(f"chronicorn: recorded {result.icount} instructions to {args.output} ({result.describe()})", file=sys.stderr)
    return _exit_code(result)


def _open_recording(path: str) -> LogReader:
    try:
        stream = open(path, "rb")  # noqa: SIM115 - owned by the reader for the command's lifetime
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return LogReader(stream)


def _load(path: str) -> LoadedRecording:
    try:
        with open(path, "rb") as stream:
            return load_recording(stream)
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _warn_damage(loaded: LoadedRecording) -> None:
    if loaded.damage is not None:
        print(f"chronicorn: the recording is damaged at byte {loaded.damage.offset} ({loaded.damage.reason}); "
              "replaying the intact part", file=sys.stderr)  # fmt: skip


def cmd_replay(args: argparse.Namespace) -> int:
    """Re-run a recording: same UART output, same exit code, divergence detected."""
    loaded = _load(args.recording)
    header = loaded.header
    image = load_image(args.guest or header.image_path)
    check_replayable(header, image, args.ram, args.icount_shift)
    _warn_damage(loaded)
    events, snapshot = loaded.events, loaded.initial
    replayer = Replayer(events)
    config = MachineConfig(ARCHES[header.arch], header.ram_size, header.icount_shift)
    if args.port is not None:
        from .cli_serve import serve_recording

        return serve_recording(args, loaded, image, config, replayer)
    machine = Machine(image, replayer, _tx, config)
    machine.restore_state(snapshot)
    progress = _progress_bar if sys.stderr.isatty() else None
    try:
        result = _run_interruptibly(lambda stop: replay_run(machine, replayer, stop, progress, loaded.keyframes))
        if progress is not None:
            print(file=sys.stderr)
    except ReplayDivergence as exc:
        print(f"chronicorn: {exc} (pc {machine.pc:#x})", file=sys.stderr)
        return EXIT_DIVERGED
    end = replayer.end
    if end is None:
        print(f"chronicorn: the recording has no end record; replayed to icount {result.icount}", file=sys.stderr)
    elif result.icount != end.icount:
        print(f"chronicorn: replay ended at icount {result.icount}, the recording at {end.icount}", file=sys.stderr)
        return EXIT_DIVERGED
    return _exit_code(result)


def _progress_bar(icount: int, end: int) -> None:
    """A one-line progress bar on a terminal (stderr), redrawn at each verification point."""
    done = min(1.0, icount / end) if end else 1.0
    width = 40
    print(f"\rreplaying [{'#' * int(done * width):<{width}}] {done:6.1%} icount {icount}/{end}",
          end="", file=sys.stderr, flush=True)  # fmt: skip


def cmd_info(args: argparse.Namespace) -> int:
    """Header, icount range, events by kind, sizes."""
    reader = _open_recording(args.recording)
    header = Header.from_json(reader.header)
    counts: collections.Counter[str] = collections.Counter()
    first = last = None
    end: End | None = None
    for event in reader.events():
        counts[type(event).__name__] += 1
        first = event.icount if first is None else first
        last = event.icount
        if isinstance(event, End):
            end = event
    for key, value in header.to_json().items():
        print(f"{key:20} {value}")
    print(f"{'file size':20} {Path(args.recording).stat().st_size} bytes")
    print(f"{'history':20} icount 0 .. {end.icount if end else last or 0}")
    print(f"{'events from':20} icount {first or 0} .. {last or 0}")
    print(f"{'end':20} {f'{end.reason.name.lower()} (code {end.code}) at icount {end.icount}' if end else 'none'}")
    for kind, count in sorted(counts.items()):
        print(f"{'events ' + kind:20} {count}")
    if reader.damage is not None:
        print(f"{'damaged':20} at byte {reader.damage.offset}: {reader.damage.reason}")
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    """One line per event, optionally within [--from, --to]."""
    reader = _open_recording(args.recording)
    for event in reader.events():
        if args.from_icount is not None and event.icount < args.from_icount:
            continue
        if args.to_icount is not None and event.icount > args.to_icount:
            break
        text = ", ".join(f"{f.name}={getattr(event, f.name)!r}" for f in fields(event) if f.name != "icount")
        print(f"{event.icount:>14}  {type(event).__name__:10} {text}")
    if reader.damage is not None:
        print(f"chronicorn: the recording is damaged at byte {reader.damage.offset} ({reader.damage.reason})",
              file=sys.stderr)  # fmt: skip
    return 0
