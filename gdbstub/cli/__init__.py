"""The ``chronicorn`` command: the composition root, one module per subcommand.

Exit codes (the same meaning in every command; :class:`~gdbstub.cli.common.ExitCode`): the guest's own code
when it exits through the test finisher; 0 done; 1 internal error; 2 bad input (image, options, recording);
3 guest fault with no handler; 4 the guest waits forever for input that cannot come; 5 a replay diverged;
6 ``locate`` found no write; 130 interrupted.

Start-up is part of the interface (``chronicorn run`` of a small guest should take well under 0.3 s): only
the command being run is imported (its module is named in :data:`COMMANDS`, imported when the command line
names it), so ``run`` never loads the gdb server, pygdbmi or the recording format.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType

from .common import ExitCode, UsageError, say

log = logging.getLogger("chronicorn")


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand: its help line, and the module (in ``gdbstub.cli``) with its options and what it runs."""

    help: str
    module: str
    add_arguments: str = "add_arguments"  # the module's function that adds the command's options
    run: str = "run"  # the module's function that runs it: Namespace -> exit code

    def load(self) -> ModuleType:
        return importlib.import_module(f"{__name__}.{self.module}")


COMMANDS: dict[str, Command] = {
    "run": Command("run a guest; UART to stdout, stdin to UART RX", "run"),
    "serve": Command("serve the guest to gdb (target remote :PORT), recording as it runs", "serve"),
    "record": Command("run the guest and record its inputs to a file", "record"),
    "replay": Command("replay a recording: same output, same ending", "replay"),
    "locate": Command("find the last write to an expression (in a recording, or a guest recorded first)", "locate"),
    "demo": Command("the bug hunt: record the example firmware, find the culprit with gdb", "demo"),
    "info": Command("describe a recording", "info", "add_info_arguments", "info"),
    "events": Command("list a recording's events", "info", "add_events_arguments", "events"),
    "pcap": Command("write the network frames a recording gave the guest to a pcap file", "pcap"),
    "query": Command("ask a recording: every write/read of a value, every call, every interrupt, a value at N",
                     "query"),
    "view": Command("write one self-contained HTML page picturing a recording", "view"),
    "triage": Command("locate the culprit in many recordings and group them by it (local or Dask)", "triage"),
}


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line; the options only of ``commands`` (default: all of them).

    Every command is listed (``chronicorn --help``, the choices of an unknown command); a command's options
    are needed only when it is the one being run, and adding them imports its module.
    """
    wanted = set(COMMANDS if commands is None else commands)
    parser = argparse.ArgumentParser(prog="chronicorn", description="Reverse-debugging GDB stub server on Unicorn.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        subparser = sub.add_parser(name, help=command.help)
        if name in wanted:
            getattr(command.load(), command.add_arguments)(subparser)
    return parser


def _loaded(*names: str) -> tuple[type[BaseException], ...]:
    """The exception classes ``module:Class`` whose modules are imported (an exception of a class never
    imported cannot have been raised), so catching them imports nothing a command did not need."""
    found = []
    for name in names:
        module, _, attribute = name.partition(":")
        if module in sys.modules:
            found.append(getattr(sys.modules[module], attribute))
    return tuple(found)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chronicorn`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # The command is the first positional argument, spelled out in full (argparse takes no abbreviation of
    # a subcommand): any command named anywhere in argv gets its options, which covers it.
    args = build_parser(set(argv) & COMMANDS.keys()).parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="chronicorn: %(message)s", stream=sys.stderr)
    command = COMMANDS[args.command]
    run: Callable[[argparse.Namespace], int] = getattr(command.load(), command.run)
    try:
        return run(args)
    except (*_loaded("machine.loader:ImageError", "replay.log:RecordingError"), UsageError) as exc:
        say(str(exc))
        return ExitCode.BAD_INPUT
    except _loaded("replay.errors:ReplayDivergence") as exc:
        say(str(exc))
        return ExitCode.DIVERGED
    except MemoryError:
        say("out of memory (a recording or option asks for more than this machine has)")
        return ExitCode.BAD_INPUT
    except _loaded("machine.results:EngineError") as exc:  # a chronicorn or Unicorn limitation, not the user's
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
