"""``chronicorn record``: run the guest live and write every non-deterministic input to a recording.

The recording is the guest's timeline run forward live to its end: the same objects ``serve`` uses, with a
:class:`~replay.saver.RecordingWriter` flushing the history to the file at least every second.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from machine.inputs import HostInputs
from machine.loader import ImageError
from machine.results import RunKind
from replay.recording import make_header
from replay.saver import RecordingWriter

from .common import (
    Interrupt,
    add_machine_options,
    describe_end,
    exit_code,
    load_guest,
    machine_config,
    open_uart_input,
    parse_int,
    say,
)
from .timelines import live_timeline


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_machine_options(parser)
    parser.add_argument("-o", "--output", required=True, metavar="FILE.chrec", help="the recording to write")
    parser.add_argument("--uart-input", default="-", metavar="FILE|-", help="UART input (default: stdin)")
    parser.add_argument("--sleep", choices=["on", "off"], default="off",
                        help="off: idle wfi jumps to the next timer deadline; on: virtual time follows real time "
                             "while idle (the warps are logged)")  # fmt: skip
    parser.add_argument("--max-insns", type=parse_int, metavar="N", help="stop recording after N instructions")


def run(args: argparse.Namespace) -> int:
    config = machine_config(args)
    image = load_guest(args.guest, args.load_addr)
    output = Path(args.output)
    if output.exists() and output.resolve() == Path(image.path).resolve():
        raise ImageError(f"{args.output} is the guest image: the recording must go elsewhere")
    source = open_uart_input(args.uart_input)
    closing = contextlib.nullcontext() if source is None or source is sys.stdin.buffer else source
    with closing:
        writers: list[RecordingWriter] = []
        live = HostInputs(None if source is None else source.fileno(), sleep=args.sleep == "on")
        # The machine first: a bad image or option is refused before the output file is touched.
        timeline = live_timeline(image, live, config, periodic_snapshots=False,
                                 on_record=lambda: writers[0].maybe_sync() if writers else None)  # fmt: skip
        try:
            out = open(output, "wb")  # noqa: SIM115 - the recording is written as the guest runs
        except OSError as exc:
            raise ImageError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
        options: dict[str, str | int | None] = {"max_insns": args.max_insns, "uart_input": args.uart_input,
                                                "load_addr": args.load_addr}  # fmt: skip
        header = make_header(image, timeline.machine.arch.name, config.ram_size, config.icount_shift, args.sleep,
                             options)  # fmt: skip
        with out:
            writer = RecordingWriter(out, header, timeline)
            writers.append(writer)
            with Interrupt().installed() as interrupted:
                result = timeline.run_forward(interrupted=interrupted, until=args.max_insns,
                                              progress=lambda icount: writer.maybe_sync())  # fmt: skip
            end = writer.finish(RunKind.LIMIT if result.kind == RunKind.LIMIT else RunKind.INTERRUPTED)
    say(f"recorded {end.icount} instructions to {args.output} ({describe_end(result)})")
    return exit_code(end.kind, end.code)
