"""``chronicorn view``: one self-contained HTML page picturing a recording (:mod:`gdbstub.view` draws it).

The recording is replayed once, forward, to collect what only a replay knows: the guest's UART output (each
line at the icount of its first byte) and the idle warps of the virtual clock. Interrupts, ``--query`` marks
and ``--value`` series come from the query engine (:mod:`replay.query`), which replays on its own timeline
(its query index cached beside the recording as ``chronicorn query`` does, unless ``--no-cache``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from gdbstub.picture import (
    ClockMap,
    ClockTapInputs,
    Fact,
    Lane,
    Mark,
    OutputLines,
    Picture,
    Series,
    WarpLog,
    event_lanes,
    recording_facts,
    state_lanes,
    step_points,
    windowed,
)
from gdbstub.query import open_engine
from gdbstub.view import render_page
from machine.results import RunKind
from replay.query import QueryEngine, QueryError, QueryRequest, parse_query
from replay.recording import LoadedRecording
from replay.timeline import Timeline

from .common import (
    ExitCode,
    Interrupt,
    UsageError,
    check_not_overwriting,
    describe_end,
    icount_value,
    say,
)
from .timelines import read_recording


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", metavar="FILE.chrec")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.html", help="the page to write")
    parser.add_argument("--guest", metavar="ELF",
                        help="the guest image (default: the path stored in the recording); its symbols name what "
                             "--value and --query ask about")  # fmt: skip
    parser.add_argument(
        "--value",
        action="append",
        default=[],
        metavar="EXPR",
        help="plot EXPR's value over time, as a step plot (repeatable), e.g. probe.scale, or 'ADDR LEN'",
    )
    parser.add_argument("--query", action="append", default=[], metavar="QUERY",
                        help="mark what a query finds, as 'chronicorn query' takes it (repeatable), "
                             "e.g. \"writes probe.scale\"")  # fmt: skip
    parser.add_argument("--from", dest="from_icount", type=icount_value, metavar="N",
                        help="picture history from icount N (default: its start)")  # fmt: skip
    parser.add_argument("--to", dest="to_icount", type=icount_value, metavar="N",
                        help="picture history up to icount N (default: its end)")  # fmt: skip
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="neither read nor write the query index beside the recording (as 'chronicorn query')",
    )


def check_output(path: str, inputs: list[tuple[str, str | Path | None]]) -> None:
    """Refuse an output the command could not write, or one that is one of its inputs (before replaying)."""
    target = Path(path)
    check_not_overwriting("-o", path, inputs)
    if target.is_dir():
        raise UsageError(f"-o {path} is a directory")
    if not target.parent.is_dir():
        raise UsageError(f"-o {path}: {target.parent} is not a directory")
    if not os.access(target.parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UsageError(f"-o {path}: not writable")


def run(args: argparse.Namespace) -> int:
    """Writes the page; exit code 0, 2 bad input (recording, options, --query, --value), 5 a replay diverged."""
    loaded = read_recording(args.recording)
    check_output(args.output, [("the recording", args.recording), ("the guest image", args.guest),
                               *(("a recorded disk image", d.path) for d in loaded.header.drives)])  # fmt: skip
    start, end = window(args, loaded)
    whole = end == loaded.last_icount
    questions = Questions.ask(args, start, None if whole else end + 1)  # (checked before the replays)
    if loaded.damage is not None:
        say(f"the recording is damaged at byte {loaded.damage.offset} ({loaded.damage.reason}); "
            f"picturing its intact part, icount 0..{loaded.last_icount}")  # fmt: skip
    replayed = replay_recording(args, loaded)
    if replayed is None:
        return ExitCode.INTERRUPTED
    output, idle, clock = replayed
    found, series = questions.answers()
    lanes = [Lane("uart-output", "UART output", "output", output), *event_lanes(loaded.inputs),
             Lane("idle", "idle (wfi)", "idle", idle), *found, *state_lanes(loaded)]  # fmt: skip
    lanes = [windowed(lane, start, end) for lane in lanes]
    output = lanes[0].marks
    facts = recording_facts(loaded, args.recording)
    if start > 0 or not whole:
        facts += (Fact("pictured", f"icount {start} .. {end}"),)
    title = f"chronicorn view: {Path(args.recording).name}"
    picture = Picture(title, facts, end, clock, tuple(lanes), tuple(series), loaded.names_problems, output, start,
                      whole)  # fmt: skip
    page = render_page(picture)
    try:
        Path(args.output).write_text(page, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    events = sum(len(lane.marks) for lane in lanes if lane.style == "input")
    say(f"{len(output)} UART lines, {events} input events, {len(series)} value series: "
        f"{args.output} ({len(page) >> 10} KiB)")  # fmt: skip
    return ExitCode.OK


def window(args: argparse.Namespace, loaded: LoadedRecording) -> tuple[int, int]:
    """``--from``/``--to`` within history (UsageError when not)."""
    last = loaded.last_icount
    start = 0 if args.from_icount is None else args.from_icount
    end = last if args.to_icount is None else args.to_icount
    if end > last:
        raise UsageError(f"--to {end} is past the end of history (icount {last})")
    if start >= end:
        raise UsageError(f"--from {start} is not before {'--to ' if args.to_icount is not None else 'the end, '}{end}")
    return start, end


def first_line(exc: Exception) -> str:
    """An error's first line (a QueryError about the words goes on with the queries' usage)."""
    lines = str(exc).splitlines()
    return lines[0] if lines else type(exc).__name__


def tapped_timeline(args: argparse.Namespace, loaded: LoadedRecording) -> tuple[Timeline, OutputLines, WarpLog]:
    """The recording's timeline as :func:`~gdbstub.cli.timelines.recording_timeline` builds it, with the view's
    two taps: the UART's bytes go to an :class:`OutputLines` (with the icount of the store that sent each), the
    idle warps to a :class:`WarpLog` (through :class:`ClockTapInputs`, the history's input source)."""
    from .timelines import recording_timeline

    lines, warps = OutputLines(), WarpLog(loaded.header.icount_shift)
    inputs = ClockTapInputs(list(loaded.inputs), loaded.last_icount, warps)
    where = argparse.Namespace(guest=args.guest, ram=None, icount_shift=None, drive=[])
    timeline = recording_timeline(where, loaded, periodic_snapshots=False, output=lines.add, inputs=inputs)
    warps.bias_ns = timeline.machine.clock.bias_ns  # the initial snapshot's
    return timeline, lines, warps


Replayed = tuple[tuple[Mark, ...], tuple[Mark, ...], ClockMap]  # UART lines, idle periods, the clock


def replay_recording(args: argparse.Namespace, loaded: LoadedRecording) -> Replayed | None:
    """Replay the recording to its end: its UART lines, idle periods and virtual clock (None if interrupted)."""
    from .replay import ProgressBar

    timeline, lines, warps = tapped_timeline(args, loaded)
    progress = ProgressBar(timeline.end) if sys.stderr.isatty() else None
    try:
        with Interrupt().installed() as interrupted:
            result = timeline.replay_to_end(interrupted, progress)
    finally:
        if progress is not None:
            print(file=sys.stderr)
    if result.kind == RunKind.INTERRUPTED:
        say(describe_end(result))
        return None
    return lines.marks(), warps.marks(), warps.clock()


@dataclass
class Questions:
    """What ``view`` asks the query engine (:mod:`replay.query`) over icount ``start`` .. ``end`` (excluded;
    None: the end of history): the interrupts and exceptions, each ``--query`` (unless it names its own range)
    and each ``--value``. :meth:`ask` checks the questions' words and targets at once (a bad one is a one-line
    UsageError before anything is replayed or cached); :meth:`answers` replays what they need."""

    engine: QueryEngine
    queries: list[tuple[str, QueryRequest]]
    values: list[tuple[str, QueryRequest]]  # "writes" requests naming each --value's bytes
    start: int
    end: int | None

    @classmethod
    def ask(cls, args: argparse.Namespace, start: int, end: int | None) -> Questions:
        queries = [(text, _request(text, "--query", [])) for text in args.query]
        values = [(expr, _request(expr, "--value", ["writes"])) for expr in args.value]
        engine = open_engine(args.recording, args.guest, cache=not args.no_cache)
        for option, questions in (("--query", queries), ("--value", values)):
            for text, request in questions:
                if request.kind in ("writes", "reads", "accesses"):
                    assert request.target is not None
                    try:
                        engine.target(request.target, request.length)
                    except QueryError as exc:
                        raise UsageError(f"{option} {text!r}: {first_line(exc)}") from None
        queries = [(t, r if r.start is not None or r.end is not None else replace(r, start=start, end=end))
                   for t, r in queries]  # fmt: skip
        return cls(engine, queries, values, start, end)

    def answers(self) -> tuple[list[Lane], list[Series]]:
        """The lanes (interrupts, exceptions, one per query) and the value series."""
        engine = self.engine
        try:
            traps = engine.run(replace(parse_query(["interrupts"]), start=self.start, end=self.end)).rows
            lanes = []
            for kind, title in (("interrupt", "interrupts"), ("exception", "exceptions")):
                marks = tuple(Mark(row["icount"], row["summary"]) for row in traps if row["type"] == kind)
                lanes.append(Lane(title, title, "trap", marks))
            for number, (text, request) in enumerate(self.queries, start=1):
                marks = tuple(sorted((Mark(row["icount"], _mark_text(row)) for row in engine.run(request).rows),
                                     key=lambda m: m.icount))  # fmt: skip
                lanes.append(Lane(f"query-{number}", text, "query", marks))
            series = []
            for expr, request in self.values:
                assert request.target is not None
                points = engine.value_series(request.target, self.start, self.end, length=request.length)
                series.append(Series(expr, step_points(points)))
        except QueryError as exc:
            raise UsageError(first_line(exc)) from None
        return lanes, series


def _request(text: str, option: str, kind: list[str]) -> QueryRequest:
    """A ``--query`` (or, after ``kind``, a ``--value``) as the engine's request; UsageError, one line, if bad."""
    try:
        return parse_query([*kind, *shlex.split(text)])
    except (ValueError, QueryError) as exc:  # (ValueError: shlex's unbalanced quotes)
        raise UsageError(f"{option} {text!r}: {first_line(exc)}") from None


def _mark_text(row: dict) -> str:
    """A query's answer on the timeline: its summary, and the source line where the guest has one."""
    source = row.get("source")
    return f"{row['summary']}\n{source.strip()}" if isinstance(source, str) and source.strip() else row["summary"]
