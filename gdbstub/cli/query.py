"""``chronicorn query REC QUERY``: questions over a whole recording (every write, read, call, interrupt, a value).

    chronicorn query REC writes probe.scale [--from N] [--to N] [--json | --csv]
    chronicorn query REC calls set_scale
    chronicorn query REC interrupts
    chronicorn query REC value probe.scale --at 120000

The first query of a recording replays it once to build its query index (about 1 s per 10^8 instructions),
cached beside it as ``REC.index``; later queries replay only the windows that can hold their answers.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .common import ExitCode, UsageError, icount_value, say

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", metavar="RECORDING.chrec")
    parser.add_argument(
        "query",
        nargs="+",
        metavar="QUERY",
        help="writes|reads|accesses EXPR (or ADDR LEN), calls FUNC, interrupts, value EXPR",
    )
    parser.add_argument("--from", dest="start", type=icount_value, metavar="N", help="from icount N (default: start)")
    parser.add_argument(
        "--to", dest="end", type=icount_value, metavar="N", help="up to icount N, excluded (default: end)"
    )
    parser.add_argument("--at", type=icount_value, metavar="N", help="value: the icount to read it at")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="the answers as JSON")
    output.add_argument("--csv", action="store_true", help="the answers as CSV")
    parser.add_argument("--guest", metavar="ELF", help="the recording's guest image, if it has moved")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the query index beside REC")


def words(args: argparse.Namespace) -> list[str]:
    """The query as the words :func:`replay.query.parse_query` reads (the monitor's spelling)."""
    out = list(args.query)
    for option, value in (("--from", args.start), ("--to", args.end), ("--at", args.at)):
        if value is not None:
            out += [option, str(value)]
    return out


def run(args: argparse.Namespace) -> int:
    """Prints the answers; exit code 0 (also when there are none), 2 bad input."""
    from replay.query import QueryError, parse_query

    from ..query import open_engine

    try:
        request = parse_query(words(args))
    except QueryError as exc:
        raise UsageError(str(exc)) from None
    engine = open_engine(args.recording, args.guest, cache=not args.no_cache)
    try:
        result = engine.run(request)
    except QueryError as exc:
        say(str(exc))
        return ExitCode.BAD_INPUT
    text = result.to_json() + "\n" if args.json else result.to_csv() if args.csv else result.to_text()
    sys.stdout.write(text)
    return ExitCode.OK
