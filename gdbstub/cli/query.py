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
from pathlib import Path

from .common import ExitCode, UsageError, icount_value, ranged, say

job_count = ranged(1, 64, "1 to 64 processes")

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
    parser.add_argument(
        "--jobs",
        type=job_count,
        default=1,
        metavar="N",
        help="scan windows in N processes (writes, reads, accesses; needs the cached index)",
    )


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
    from replay.query_index import cache_path

    from ..query import open_engine, process_scanner

    try:
        request = parse_query(words(args))
    except QueryError as exc:
        raise UsageError(str(exc)) from None
    engine = open_engine(args.recording, args.guest, cache=not args.no_cache)
    try:
        if args.jobs > 1 and not args.no_cache:
            engine.ensure_index()  # (built and cached first: every worker reads it)
            if cache_path(Path(args.recording)).is_file():
                engine.scanner = process_scanner(args.recording, args.guest, args.jobs)
        result = engine.run(request)
    except QueryError as exc:
        say(str(exc))
        return ExitCode.BAD_INPUT
    text = result.to_json() + "\n" if args.json else result.to_csv() if args.csv else result.to_text()
    sys.stdout.write(text)
    return ExitCode.OK
