"""``chronicorn serve GUEST`` and ``chronicorn replay FILE --port N``: one timeline served to gdb.

``serve`` records as the guest runs (its UART input from stdin or
``--uart-input FILE``); ``replay --port`` serves a saved recording. Both give
gdb every reverse command over the whole history.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from typing import BinaryIO

from machine.inputs import HostInputs, InputSource
from machine.loader import Image, ImageError, load_image
from machine.machine import Machine, MachineConfig
from machine.state import MachineState
from replay.driver import END_REASONS
from replay.events import End, EndReason, Verify
from replay.history import HistoryInputs
from replay.output import OutputLog
from replay.recording import LoadedRecording, make_header, write_recording
from replay.snapshot import Snapshot
from replay.store import SnapshotStore
from replay.timeline import Timeline

from .monitor import Monitor
from .server import PacketLog, Server
from .target import TimelineTarget

EXIT_BAD_INPUT = 2


def _stdout_byte(byte: int) -> None:
    sys.stdout.buffer.write(bytes((byte,)))
    sys.stdout.buffer.flush()


def build_timeline(image: Image, inputs: HistoryInputs, config: MachineConfig, budget: int,
                   initial: MachineState | None = None) -> Timeline:  # fmt: skip
    """A machine on ``inputs`` (restored to ``initial`` when given) and its timeline.

    The guest's UART output goes to stdout the first time it is produced (see :class:`OutputLog`).
    """
    output = OutputLog(_stdout_byte)
    holder: list[Machine] = []  # the UART callback needs the machine's icount; the machine needs the callback
    machine = Machine(image, inputs, lambda byte: output.emit(holder[0].icount, byte), config)
    holder.append(machine)
    if initial is not None:
        machine.restore_state(initial)
    return Timeline(machine, inputs, SnapshotStore(budget))


def _describe(timeline: Timeline) -> Callable[[], str]:
    def describe() -> str:
        m = timeline.machine
        return (
            f"architecture: {m.arch.name}\nboard: virt\nRAM: {m.config.ram_size // (1 << 20)} MiB at 0x80000000\n"
            f"icount shift: {m.config.icount_shift}\nicount: {m.icount}\npc: {m.pc:#x}\n"
            f"image: {m.image.path} (sha256 {m.image.sha256[:16]}...)\n"
            f"icount counter: {'native' if m.counter.is_native else 'pure Python'}\n"
            f"RAM tracking: {'page protection' if m.ram_pages.is_tracked else 'compare with a copy'}\n"
        )

    return describe


def _saver(timeline: Timeline, image: Image) -> Callable[[str], str]:
    def save(path: str) -> str:
        m = timeline.machine
        header = make_header(image, m.arch.name, m.config.ram_size, m.config.icount_shift, "off", {"source": "serve"})
        initial = timeline.store.at_or_before(timeline.start).state
        checks = [Verify(icount, digest) for icount, digest in timeline.verify_points.items() if icount < timeline.end]
        ordered = sorted([*timeline.inputs.events, *checks], key=lambda event: event.icount)  # stable: inputs first
        ended = timeline.end_result
        if ended is not None and ended.icount == timeline.end:
            end = End(ended.icount, END_REASONS[ended.kind], ended.exit_code or 0)
        else:
            end = End(timeline.end, EndReason.USER_STOP)
        events = [*ordered, end]
        keyframes = {icount: (k.state, k.log_position) for icount, k in timeline.keyframes.items()}
        try:
            with open(path, "wb") as stream:
                write_recording(stream, header, initial, events, keyframes)
        except OSError as exc:
            return f"error: cannot write {path}: {exc.strerror or exc}\n"
        counts = f"{len(timeline.inputs.events)} events, {len(checks)} verification points"
        return f"saved icount {timeline.start}..{timeline.end} ({counts}) to {path}\n"

    return save


def _serve(args: argparse.Namespace, timeline: Timeline, image: Image) -> int:
    monitor = Monitor(timeline, _describe(timeline), _saver(timeline, image))
    log_stream = open(args.log_packets, "wb") if args.log_packets else None  # noqa: SIM115 - lives as long as the server
    try:
        target = TimelineTarget(timeline, monitor)
        server = Server(target, args.host, args.port, PacketLog(log_stream) if log_stream else None)
    except OSError as exc:
        print(f"chronicorn: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    host, port = server.address
    print(f"listening on {host}:{port}", flush=True)
    previous = signal.signal(signal.SIGINT, lambda signum, frame: server.stop())
    try:
        server.serve_forever()
    finally:
        signal.signal(signal.SIGINT, previous)
        server.close()
        if log_stream is not None:
            log_stream.close()
    return 0


def _uart_input(path: str) -> BinaryIO | None:
    """The UART input stream: stdin for '-', else the file (kept open for the server's lifetime)."""
    if path == "-":
        return None if sys.stdin is None or sys.stdin.closed else sys.stdin.buffer
    try:
        return open(path, "rb")  # noqa: SIM115 - read by the input thread for the server's lifetime
    except OSError as exc:
        raise ImageError(f"cannot read UART input {path}: {exc.strerror or exc}") from exc


def cmd_serve(args: argparse.Namespace, config: MachineConfig) -> int:
    """Serve a guest halted at reset; it is recorded as it runs, so gdb can go back at any moment."""
    image = load_image(args.guest, args.load_addr)
    stream = _uart_input(args.uart_input)
    live: InputSource = HostInputs(None if stream is None else stream.fileno())
    timeline = build_timeline(image, HistoryInputs([], 0, live), config, args.snapshot_budget)
    try:
        return _serve(args, timeline, image)
    finally:
        if stream is not None and stream is not sys.stdin.buffer:
            stream.close()


def serve_recording(args: argparse.Namespace, loaded: LoadedRecording, image: Image, config: MachineConfig,
                    inputs: HistoryInputs) -> int:  # fmt: skip
    """Serve a saved recording: reverse and forward over all of it, the end fixed."""
    timeline = build_timeline(image, inputs, config, args.snapshot_budget, loaded.initial)
    for state, position in loaded.keyframes.values():
        timeline.add_keyframe(Snapshot(state, position))
    return _serve(args, timeline, image)
