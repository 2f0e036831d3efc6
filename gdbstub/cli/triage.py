"""``chronicorn triage``: ``locate`` on many recordings (CI failures, fuzzing crashes), grouped by the culprit.

The table goes to stdout, progress (one line per recording as it is done) to stderr, and with ``--json FILE``
every recording's result and the groups to FILE (``-``: stdout, the table then goes to stderr). Exit code 0
when the recordings were triaged (some may be unreadable: they are a group of their own), 2 for bad input: no
recording matches, a bad option, Dask missing or its scheduler unreachable, or no recording could be triaged
at all (a --watch that names nothing, or only damaged files).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..triage import GROUPINGS, Outcome, RecordingResult, TriageError, find_recordings, make_executor, triage
from .common import ExitCode, UsageError, check_not_overwriting, ranged, say

depth_count = ranged(1, None, "at least 1 write")
job_count = ranged(1, 4096, "1..4096 processes")
MAX_TIMEOUT = 1e6  # seconds (11 days): setitimer's range, and more than any recording needs


def seconds(text: str) -> float:
    """An argparse type: a number of seconds, more than 0 (``--timeout``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text.strip()} is not a number of seconds") from None
    if not 0 < value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"{text.strip()} is out of range (more than 0, at most {MAX_TIMEOUT:g})")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recordings", nargs="+", metavar="DIR|GLOB|FILE",
                        help="recordings: a directory (its *.chrec files, recursively), a glob (quote it; ** "
                             "recursive) or a file")  # fmt: skip
    parser.add_argument("--watch", required=True, metavar="EXPR", help="the expression whose last write is sought")
    parser.add_argument("--executor", default="local", metavar="local|dask://HOST:PORT",
                        help="local worker processes (default), or the workers of a running Dask scheduler "
                             "(pip install 'chronicorn[cluster]')")  # fmt: skip
    parser.add_argument("--jobs", type=job_count, metavar="N",
                        help=f"local worker processes (default: the CPU count, {os.cpu_count()})")  # fmt: skip
    parser.add_argument("--timeout", type=seconds, metavar="SECONDS",
                        help="local: a recording that takes longer is stopped and is that recording's error "
                             "(default: no limit)")  # fmt: skip
    parser.add_argument("--ship", action="store_true",
                        help="dask: send the recordings and their guest images to the workers (default: the "
                             "workers read them at the same paths: a shared file system)")  # fmt: skip
    parser.add_argument("--depth", type=depth_count, default=1, metavar="N",
                        help="follow N writes back in each recording (the first: the culprit; default 1)")  # fmt: skip
    parser.add_argument("--group-by", choices=GROUPINGS, default="pc",
                        help="what culprits must share: function, file:line and pc (default), function and "
                             "file:line (several builds of one source), or function")  # fmt: skip
    parser.add_argument("--locate-passing", action="store_true",
                        help="locate passing recordings (exit code 0) too (they keep groups of their own)")  # fmt: skip
    parser.add_argument("--json", metavar="FILE", help="every recording's result and the groups as JSON (- stdout)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")


def _progress(total: int, quiet: bool):  # noqa: ANN202 - a small closure
    done = 0

    def show(result: RecordingResult) -> None:
        nonlocal done
        done += 1
        if quiet:
            return
        if result.outcome == Outcome.ERROR:
            what = f"error: {result.error}"
        elif result.culprit is not None:
            what = f"{result.outcome.value}: {result.culprit.describe()}"
        elif result.outcome == Outcome.PASSED and not result.located:
            what = "passed"
        else:
            what = f"{result.outcome.value}: no write"
        print(f"[{done}/{total}] {result.recording}: {what} ({result.seconds:.1f} s)", file=sys.stderr, flush=True)

    return show


def run(args: argparse.Namespace) -> int:
    """Triage; exit code 0 done, 2 bad input (see the module's docstring)."""
    try:
        executor = make_executor(args.executor, args.jobs, args.ship, args.timeout)
        found = find_recordings(args.recordings)
    except TriageError as exc:
        raise UsageError(str(exc)) from exc
    if args.jobs is not None and not args.executor == "local":
        raise UsageError("--jobs is for the local executor (a Dask cluster has its own workers)")
    if args.json not in (None, "-"):
        check_not_overwriting("--json", args.json, [("a recording", path) for _, path in found])
        folder = Path(args.json).parent
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise UsageError(f"--json {args.json}: {folder} is not a directory this user can write in")
    try:
        report = triage(args.recordings, args.watch, executor, args.depth, args.locate_passing, args.group_by,
                        _progress(len(found), args.quiet))  # fmt: skip
    except TriageError as exc:
        raise UsageError(str(exc)) from exc
    if args.json == "-":
        print(report.to_text(), file=sys.stderr)
        print(report.to_json())
    else:
        print(report.to_text())
        if args.json is not None:
            try:
                with open(args.json, "w", encoding="utf-8") as out:
                    out.write(report.to_json() + "\n")
            except OSError as exc:
                raise UsageError(f"cannot write {args.json}: {exc.strerror or exc}") from exc
    if not report.triaged:
        say(f"no recording could be triaged (every one is an error: is --watch {args.watch!r} right?)")
        return ExitCode.BAD_INPUT
    return ExitCode.OK
