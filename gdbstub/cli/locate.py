"""``chronicorn locate``: the last write to an expression, found by reverse execution through gdb."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..locate import LocateError, run_locate
from .common import ExitCode, parse_int, say


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="RECORDING.chrec|GUEST")
    parser.add_argument("--watch", required=True, metavar="EXPR", help="a variable, array element, *(T*)ADDR, ...")
    moment = parser.add_mutually_exclusive_group()
    moment.add_argument("--at", type=parse_int, metavar="ICOUNT", help="search backward from this icount")
    moment.add_argument("--at-end", action="store_true", help="search backward from the end of history (default)")
    parser.add_argument("--depth", type=int, default=1, metavar="N", help="follow N writes back (default 1)")
    parser.add_argument("--json", action="store_true", help="a machine-readable report on stdout")
    parser.add_argument("--uart-input", metavar="FILE", help="for a GUEST: UART input while recording it")
    parser.add_argument("--guest", metavar="ELF", help="for a recording: its guest image, if it has moved")


def run(args: argparse.Namespace) -> int:
    """Prints the report; exit code 0 found, 6 no write found, 2 bad input."""
    echo = (lambda text: print(text, file=sys.stderr)) if args.json else print
    try:
        report = run_locate(Path(args.target), args.watch, None if args.at_end else args.at, args.depth,
                            Path(args.guest) if args.guest else None, args.uart_input, echo)  # fmt: skip
    except LocateError as exc:
        say(str(exc))
        return ExitCode.BAD_INPUT
    print(report.to_json() if args.json else report.to_text())
    return ExitCode.OK if report.found else ExitCode.NOT_FOUND
