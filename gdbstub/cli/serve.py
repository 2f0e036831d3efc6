"""``chronicorn serve GUEST`` and ``chronicorn replay FILE --port N``: one timeline served to gdb.

``serve`` records as the guest runs (its UART input from stdin or ``--uart-input FILE``); ``replay --port``
serves a saved recording. Both give gdb every reverse command over the whole history, and
``monitor record save [-f] NAME`` writes it to the save directory (``--save-dir``, default the current one).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from machine.inputs import HostInputs
from replay.recording import Header, LoadedRecording, make_header
from replay.saver import resolve_inside, save_timeline
from replay.store import SnapshotStore
from replay.timeline import Timeline

from ..monitor import Monitor
from ..server import PacketLog, Server
from ..target import TimelineTarget
from .common import (
    ExitCode,
    UsageError,
    add_expect_option,
    add_machine_options,
    add_server_options,
    audio_slot,
    audio_sources,
    check_drives,
    check_not_overwriting,
    export_overlays,
    guest_image,
    image_options,
    machine_config,
    networks,
    open_uart_input,
    prompt_gate,
    say,
    virtio_layout,
)
from .timelines import live_timeline, recording_timeline

if TYPE_CHECKING:
    from replay.query import QueryEngine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_machine_options(parser)
    add_server_options(parser)
    parser.add_argument("--uart-input", default="-", metavar="FILE|-", help="UART input (default: stdin)")
    add_expect_option(parser)


def describe(timeline: Timeline) -> Callable[[], str]:
    """``monitor info``: the machine being served."""

    def text() -> str:
        m = timeline.machine
        return (
            f"architecture: {m.arch.name}\nboard: {m.board_name}\n"
            f"RAM: {m.config.ram_size // (1 << 20)} MiB at {m.ram_base:#x}\n"
            f"icount shift: {m.config.icount_shift}\nicount: {m.icount}\npc: {m.pc:#x}\n"
            f"image: {m.image.path} (sha256 {m.image.sha256[:16]}...)\n"
            f"icount counter: {'native' if m.is_counter_native else 'pure Python'}\n"
            f"RAM tracking: {'page protection' if m.is_ram_tracked else 'compare with a copy'}\n"
        )

    return text


def saver(timeline: Timeline, header: Header, save_dir: Path) -> Callable[[str, bool], str]:
    """``monitor record save [-f] NAME``: only inside ``save_dir``, never over a file unless asked."""

    def save(name: str, overwrite: bool) -> str:
        try:
            path = resolve_inside(save_dir, name)
            save_timeline(timeline, header, path.parent, path.name, overwrite)
        except (ValueError, FileExistsError) as exc:
            return f"error: {exc}\n"
        except OSError as exc:
            return f"error: cannot write {name}: {exc.strerror or exc}\n"
        return f"saved icount {timeline.start}..{timeline.end} ({timeline.event_count} events) to {path}\n"

    return save


class LogFile:
    """The ``--log-packets`` file: a write that fails (a full disk) is said once and ends the log, not the
    connection."""

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self._stream: BinaryIO | None = stream
        self._name = name

    def write(self, data: bytes) -> int:
        if self._stream is not None:
            try:
                self._stream.write(data)
            except OSError as exc:
                self._fail(exc)
        return len(data)

    def flush(self) -> None:
        if self._stream is not None:
            try:
                self._stream.flush()
            except OSError as exc:
                self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        say(f"cannot write {self._name}: {exc.strerror or exc}; packets are no longer logged")
        with contextlib.suppress(OSError):  # (closing flushes what is buffered: it would fail again)
            self._stream.close()
        self._stream = None


def check_server_options(args: argparse.Namespace, inputs: Sequence[tuple[str, str | Path | None]]) -> None:
    """Refuse a ``--log-packets`` file that is one of the files the server reads (``inputs``)."""
    if args.log_packets:
        check_not_overwriting("--log-packets", args.log_packets, inputs)


def serve_timeline(args: argparse.Namespace, timeline: Timeline, header: Header) -> int:
    """Serve ``timeline`` to gdb until SIGINT (the options were checked with :func:`check_server_options`)."""
    save_dir = args.save_dir if args.save_dir is not None else Path.cwd()
    recording = getattr(args, "recording", None)  # replay --port: the file, beside which queries cache their index

    def engine() -> QueryEngine:
        from ..query import engine_for

        return engine_for(timeline, timeline.machine.image, Path(recording) if recording else None)

    monitor = Monitor(timeline, describe(timeline), saver(timeline, header, save_dir), engine)
    with contextlib.ExitStack() as stack:
        packet_log = None
        if args.log_packets:
            try:
                stream = stack.enter_context(open(args.log_packets, "wb"))
            except OSError as exc:
                raise UsageError(f"cannot write --log-packets {args.log_packets}: {exc.strerror or exc}") from exc
            packet_log = PacketLog(cast(BinaryIO, LogFile(stream, args.log_packets)))
        try:
            server = Server(TimelineTarget(timeline, monitor), args.host, args.port, packet_log)
        except OSError as exc:
            raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
        stack.callback(server.close)
        host, port = server.address
        print(f"listening on {host}:{port}", flush=True)
        previous = signal.signal(signal.SIGINT, lambda signum, frame: server.stop())
        stack.callback(signal.signal, signal.SIGINT, previous)
        server.serve_forever()
    return ExitCode.OK


def run(args: argparse.Namespace) -> int:
    """Serve a guest halted at reset; it is recorded as it runs, so gdb can go back at any moment."""
    image = guest_image(args)  # (first: --kernel alone becomes the guest)
    config = machine_config(args)
    check_server_options(args, [("the guest image", image.path), ("the UART input", args.uart_input)])
    check_drives(args.drive, [("the guest image", image.path), ("the UART input", args.uart_input)])
    if args.audio is not None and args.audio.out is not None:
        raise UsageError("--audio out=wav:FILE applies to run, record and replay (serve replays what it shows)")
    source = open_uart_input(args.uart_input)
    closing = contextlib.nullcontext() if source is None or source is sys.stdin.buffer else source
    with closing:
        layout = virtio_layout(image, args)
        fd = None if source is None else source.fileno()
        live = HostInputs(fd, networks=networks(args.net, len(args.drive), layout),
                          audio=audio_sources(args.audio, audio_slot(args, layout)),
                          gate=prompt_gate(args))  # fmt: skip
        timeline = live_timeline(image, live, config, SnapshotStore(args.snapshot_budget))
        options = {"source": "serve", **image_options(args, timeline.machine)}
        header = make_header(image, timeline.machine.arch.name, config.ram_size, config.icount_shift, "off",
                             options, timeline.machine)  # fmt: skip
        code = serve_timeline(args, timeline, header)
    export_overlays(timeline.machine, args.drive)  # the disk where gdb left the guest
    return code


def serve_recording(args: argparse.Namespace, loaded: LoadedRecording) -> int:
    """Serve a saved recording: reverse and forward over all of it, the end fixed."""
    timeline = recording_timeline(args, loaded, SnapshotStore(args.snapshot_budget))
    image = timeline.machine.image.path
    check_server_options(args, [("the recording", args.recording), ("the guest image", image)])
    check_drives(args.drive, [("the recording", args.recording), ("the guest image", image)])
    code = serve_timeline(args, timeline, loaded.header)
    export_overlays(timeline.machine, args.drive)
    return code
