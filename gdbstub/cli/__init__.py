"""The ``chronicorn`` command: the composition root, one module per subcommand.

Exit codes (the same meaning in every command; :class:`~gdbstub.cli.common.ExitCode`): the guest's own code
when it exits through the test finisher; 0 done; 1 internal error; 2 bad input (image, options, recording);
3 guest fault with no handler; 4 the guest waits forever for input that cannot come; 5 a replay diverged;
6 ``locate`` found no write; 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from machine.loader import ImageError
from machine.results import EngineError
from replay.errors import ReplayDivergence
from replay.log import RecordingError

from . import demo, info, locate, record, replay, run, serve
from .common import ExitCode, UsageError, say

log = logging.getLogger("chronicorn")


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand: its help line, its options, what it runs."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {
    "run": Command("run a guest; UART to stdout, stdin to UART RX", run.add_arguments, run.run),
    "serve": Command(
        "serve the guest to gdb (target remote :PORT), recording as it runs", serve.add_arguments, serve.run
    ),  # fmt: skip
    "record": Command("run the guest and record its inputs to a file", record.add_arguments, record.run),
    "replay": Command("replay a recording: same output, same ending", replay.add_arguments, replay.run),
    "locate": Command(
        "find the last write to an expression (in a recording, or a guest recorded first)",
        locate.add_arguments,
        locate.run,
    ),  # fmt: skip
    "demo": Command(
        "the bug hunt: record the example firmware, find the culprit with gdb", demo.add_arguments, demo.run
    ),  # fmt: skip
    "info": Command("describe a recording", info.add_info_arguments, info.info),
    "events": Command("list a recording's events", info.add_events_arguments, info.events),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chronicorn", description="Reverse-debugging GDB stub server on Unicorn.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chronicorn`` console script."""
    args = build_parser().parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="chronicorn: %(message)s", stream=sys.stderr)
    try:
        return COMMANDS[args.command].run(args)
    except (ImageError, RecordingError, UsageError) as exc:
        say(str(exc))
        return ExitCode.BAD_INPUT
    except ReplayDivergence as exc:
        say(str(exc))
        return ExitCode.DIVERGED
    except MemoryError:
        say("out of memory (a recording or option asks for more than this machine has)")
        return ExitCode.BAD_INPUT
    except EngineError as exc:  # a chronicorn or Unicorn limitation, not the user's fault
        log.debug("engine failure", exc_info=True)
        say(f"internal error: {exc} (run with -vv for details)")
        return ExitCode.INTERNAL
    except BrokenPipeError:
        return ExitCode.OK
    except KeyboardInterrupt:
        say("interrupted")
        return ExitCode.INTERRUPTED
    except OSError as exc:  # e.g. the disk filled up under a recording
        say(f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}")
        return ExitCode.BAD_INPUT
