"""``chronicorn locate``: the last write to an expression, found by reverse execution through gdb."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

from ..locate import LocateError, is_recording, run_locate
from .common import ExitCode, UsageError, icount_value, ranged, say

depth_count = ranged(1, None, "at least 1 write")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="RECORDING.chrec|GUEST")
    parser.add_argument("--watch", required=True, metavar="EXPR", help="a variable, array element, *(T*)ADDR, ...")
    moment = parser.add_mutually_exclusive_group()
    moment.add_argument("--at", type=icount_value, metavar="ICOUNT", help="search backward from this icount")
    moment.add_argument("--at-end", action="store_true", help="search backward from the end of history (default)")
    parser.add_argument("--depth", type=depth_count, default=1, metavar="N",
                        help="follow N writes back, N at least 1 (default 1)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="a machine-readable report on stdout")
    parser.add_argument("--uart-input", metavar="FILE", help="for a GUEST: UART input while recording it")
    parser.add_argument("--guest", metavar="ELF", help="for a recording: its guest image, if it has moved")


def _readable_file(what: str, path: str) -> None:
    """A file ``locate`` reads must be a regular file it can open (checked before gdb is started)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # (a FIFO would block the open)
            raise UsageError(f"{what} {path} is not a regular file")
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def check_arguments(args: argparse.Namespace) -> None:
    """The files named on the command line, and the options that apply to what ``target`` is."""
    _readable_file("the target", args.target)
    recording = is_recording(Path(args.target))
    if args.guest is not None:
        if not recording:
            raise UsageError(f"--guest is for a recording; {args.target} is a guest image")
        _readable_file("the --guest image", args.guest)
    if args.uart_input is not None:
        if recording:
            raise UsageError(f"--uart-input is for a guest image; {args.target} is a recording")
        _readable_file("the UART input", args.uart_input)


def run(args: argparse.Namespace) -> int:
    """Prints the report; exit code 0 found, 6 no write found, 2 bad input."""
    try:
        check_arguments(args)
    except LocateError as exc:
        raise UsageError(str(exc)) from exc
    echo = (lambda text: print(text, file=sys.stderr)) if args.json else print
    try:
        report = run_locate(Path(args.target), args.watch, None if args.at_end else args.at, args.depth,
                            Path(args.guest) if args.guest else None, args.uart_input, echo)  # fmt: skip
    except LocateError as exc:
        say(str(exc))
        return ExitCode.BAD_INPUT
    print(report.to_json() if args.json else report.to_text())
    return ExitCode.OK if report.found else ExitCode.NOT_FOUND
