"""``chronicorn record``: run the guest live and write every non-deterministic input to a recording.

The recording is the guest's timeline run forward live to its end: the same objects ``serve`` uses, with a
:class:`~replay.saver.RecordingWriter` flushing the history to the file at least every second.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import stat
import sys
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, cast

from machine.inputs import HostInputs
from machine.results import RunKind
from replay.log import RecordingError
from replay.recording import make_header
from replay.saver import RecordingWriter

from .common import (
    Interrupt,
    UsageError,
    add_expect_option,
    add_machine_options,
    audio_slot,
    audio_sources,
    check_drives,
    check_not_overwriting,
    close_audio_sink,
    describe_end,
    exit_code,
    export_overlays,
    guest_image,
    image_options,
    instruction_count,
    machine_config,
    networks,
    open_audio_sink,
    open_uart_input,
    prompt_gate,
    say,
    virtio_layout,
)
from .pcap import add_pcap_option, open_pcap
from .timelines import live_timeline, read_recording


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_machine_options(parser)
    add_pcap_option(parser)
    parser.add_argument("-o", "--output", required=True, metavar="FILE.chrec", help="the recording to write")
    parser.add_argument("--uart-input", default="-", metavar="FILE|-", help="UART input (default: stdin)")
    add_expect_option(parser)
    parser.add_argument("--sleep", choices=["on", "off"], default="off",
                        help="off: idle wfi jumps to the next timer deadline; on: virtual time follows real time "
                             "while idle (the warps are logged)")  # fmt: skip
    parser.add_argument("--max-insns", type=instruction_count, metavar="N",
                        help="stop recording after N instructions (N at least 1)")  # fmt: skip


class RecordingFile:
    """The recording's file, written chunk by chunk (the writer flushes after each one).

    A write that fails (a full disk, EIO, the file size limit) cuts the file back to the end of the last
    complete chunk before the error goes on, so what the file holds still loads and replays.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        self._written = 0
        self.committed = 0  # bytes up to the end of the last complete chunk
        self.error: OSError | None = None  # the write that failed

    def write(self, data: bytes) -> int:
        """Write all of ``data`` (a short write is continued; an error cuts the file back, then propagates)."""
        view = memoryview(data)
        try:
            while view:
                done = os.write(self._fd, view)
                self._written += done
                view = view[done:]
        except OSError as exc:
            self.error = exc
            with contextlib.suppress(OSError):  # not a regular file (/dev/full): nothing to cut
                os.ftruncate(self._fd, self.committed)
            raise
        return len(data)

    def flush(self) -> None:
        """The end of a chunk: everything written so far is complete."""
        self.committed = self._written

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> RecordingFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _what_was_kept(path: Path) -> str:
    """After a failed write: what the recording cut at its last complete chunk still holds."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return "nothing was recorded"
        kept = read_recording(path)
    except (OSError, RecordingError):
        return "nothing replayable was written"
    return f"the file keeps the recording up to icount {kept.last_icount}, which replays"


def run(args: argparse.Namespace) -> int:
    image = guest_image(args)  # (first: --kernel alone becomes the guest)
    config = machine_config(args)
    # Opening the output truncates it: never over a file this recording reads (by inode: links count too).
    check_not_overwriting(
        "-o",
        args.output,
        [
            ("the guest image", image.path),
            ("the UART input", args.uart_input),
            *(("a --drive image", d.path) for d in args.drive),
        ],
    )
    check_drives(args.drive, [("the guest image", image.path), ("the UART input", args.uart_input),
                              ("the recording (-o)", args.output)])  # fmt: skip
    output = Path(args.output)
    source = open_uart_input(args.uart_input)
    closing = contextlib.nullcontext() if source is None or source is sys.stdin.buffer else source
    with closing:
        writers: list[RecordingWriter] = []
        live = HostInputs(None if source is None else source.fileno(), sleep=args.sleep == "on",
                          networks=networks(args.net, len(args.drive), virtio_layout(image, args)),
                          audio=audio_sources(args.audio, audio_slot(args, virtio_layout(image, args))),
                          gate=prompt_gate(args))  # fmt: skip
        # The machine first: a bad image or option is refused before the output file is touched.
        timeline = live_timeline(image, live, config, periodic_snapshots=False,
                                 on_record=lambda: writers[0].maybe_sync() if writers else None)  # fmt: skip
        capture = open_pcap(args, [("the guest image", image.path), ("the UART input", args.uart_input),
                                   ("the recording (-o)", args.output),
                                   *(("a --drive image", d.path) for d in args.drive)])  # fmt: skip
        if capture is not None:
            timeline.machine.frame_tap = capture.tap
        open_audio_sink(timeline.machine, args.audio, [("the guest image", image.path),
                                                       ("the recording (-o)", args.output)])  # fmt: skip
        try:
            out = RecordingFile(output)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
        options: dict[str, str | int | None] = {"max_insns": args.max_insns, "uart_input": args.uart_input,
                                                **({"expect": json.dumps(args.expect)} if args.expect else {}),
                                                **image_options(args, timeline.machine)}  # fmt: skip
        header = make_header(image, timeline.machine.arch.name, config.ram_size, config.icount_shift, args.sleep,
                             options, timeline.machine)  # fmt: skip
        try:
            with out:
                writer = RecordingWriter(cast(BinaryIO, out), header, timeline)
                writers.append(writer)
                with Interrupt().installed() as interrupted:
                    result = timeline.run_forward(interrupted=interrupted, until=args.max_insns,
                                                  progress=lambda icount: writer.maybe_sync())  # fmt: skip
                end = writer.finish(RunKind.LIMIT if result.kind == RunKind.LIMIT else RunKind.INTERRUPTED)
        except OSError as exc:
            if out.error is not exc:  # not the recording's file (the UART input, say): as any OSError
                raise
            # A full disk, an I/O error: the file is cut at its last complete chunk.
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}; {_what_was_kept(output)}") from exc
    if capture is not None:
        capture.close()
    close_audio_sink(timeline.machine)
    say(f"recorded {end.icount} instructions to {args.output} ({describe_end(result)})")
    export_overlays(timeline.machine, args.drive)
    return exit_code(end.kind, end.code)
