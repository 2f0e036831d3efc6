"""gdb's ``monitor ...`` commands (qRcmd): one small function per command, registered in one table.

Errors come back as text starting with ``error:`` (gdb prints a qRcmd ``E``
reply only as "Protocol error with Rcmd", which tells the user nothing).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from replay.bookmarks import Bookmark, check_against_history, go_to_bookmark, name_problem
from replay.errors import ReplayDivergence
from replay.query import QueryEngine
from replay.store import SnapshotBudgetError
from replay.timeline import Timeline

from . import monitor_query

log = logging.getLogger(__name__)

HELP = (
    """chronicorn monitor commands:
  help                  this text
  icount                instructions retired since reset (where we are in history)
  info                  the machine: architecture, board, RAM, icount shift, image
  seek N                go to icount N (anywhere in history; like rr's 'run N'), then
                        'maint flush register-cache' so that gdb re-reads the registers
  snapshot save NAME    keep a snapshot of this moment under NAME (replacing what had that name);
                        named snapshots are never evicted and must fit the snapshot budget
  snapshot load NAME    go back (or forward) to the moment saved as NAME (a snapshot or a bookmark)
  snapshot list         the named snapshots and bookmarks, by icount
  snapshot delete NAME  forget the snapshot or bookmark NAME (frees a snapshot's share of the budget)
  bookmark NAME         name this moment (its icount and pc; no state kept: cheap, any number;
                        NAME is not list, goto or delete)
  bookmark goto NAME    go to the bookmark or snapshot NAME (a bookmark replays there from a snapshot)
  bookmark list         the same list as snapshot list
  bookmark delete NAME  the same as snapshot delete NAME
                        Names are printable, without spaces, at most 128 bytes; snapshots and bookmarks
                        share them. 'record save' keeps both in the recording ('replay --port' has them)
  history               icount range, snapshots held, memory used, bookmarks
  record save [-f] FILE write the history as a recording that 'chronicorn replay' accepts
                        (in the save directory; -f replaces an existing file)
queries over the whole history (gdb stays where it is; answers name icounts to 'goto'):
"""
    + monitor_query.HELP
)


_REFRESH = "(gdb still shows the old state: 'maint flush register-cache' or any step refreshes it)\n"


class MonitorError(Exception):
    """A monitor command the user got wrong; shown as ``error: ...``."""


@dataclass
class Monitor:
    """The monitor of one served timeline; ``save(name, overwrite)`` writes the history as a recording."""

    timeline: Timeline
    describe: Callable[[], str]
    save: Callable[[str, bool], str]
    engine: Callable[[], QueryEngine] | None = None  # builds the query engine (on the first query)
    _engine: QueryEngine | None = field(default=None, init=False, repr=False)

    def query_engine(self) -> QueryEngine:
        """The query engine over this timeline (built once: its index grows with a live history)."""
        if self._engine is None:
            if self.engine is None:
                raise MonitorError("queries are not available on this server")
            self._engine = self.engine()
        return self._engine

    def __call__(self, command: str) -> str:
        words = command.split() or ["help"]
        two = " ".join(words[:2])
        name, args = (two, words[2:]) if two in COMMANDS else (words[0], words[1:])
        handler = COMMANDS.get(name)
        if handler is None:
            return f"error: unknown monitor command {command.strip()!r} (try: monitor help)\n"
        start = self.timeline.icount
        try:
            return handler(self, args)
        except MonitorError as exc:
            return f"error: {exc}\n"
        except ReplayDivergence as exc:  # as a resume does: history is known good up to where we started
            log.error("%s", exc)
            self.timeline.cut_history(start)
            self.timeline.seek(min(start, self.timeline.end))
            return f"error: {exc}; history ends at icount {self.timeline.end}\n{_REFRESH}"


def _int(text: str) -> int:
    try:
        return int(text.replace("_", ""), 0)
    except ValueError:
        raise MonitorError(f"{text!r} is not a number") from None


def _one(args: list[str], what: str) -> str:
    if len(args) != 1:
        raise MonitorError(f"expected {what}")
    return args[0]


def _icount(m: Monitor, args: list[str]) -> str:
    return f"{m.timeline.icount}\n"


def _seek(m: Monitor, args: list[str]) -> str:
    target = _int(_one(args, "one icount: seek N"))
    t = m.timeline
    if not t.start <= target <= t.end:
        raise MonitorError(f"icount {target} is outside history ({t.start}..{t.end})")
    t.seek(target)
    return f"icount {t.icount}, pc {t.machine.pc:#x}\n{_REFRESH}"


def _new_name(args: list[str], usage: str) -> str:
    name = _one(args, f"a name: {usage}")
    problem = name_problem(name)
    if problem is not None:
        raise MonitorError(f"{name[:40]!r} cannot be a name: {problem}")
    return name


def _forget(m: Monitor, name: str) -> str:
    """Forget whatever ``name`` names; what it was (for the reply), or "" if nothing."""
    t = m.timeline
    t.bookmarks.unchecked.discard(name)
    mark = t.bookmarks.marks.pop(name, None)
    if mark is not None:
        return f"bookmark at icount {mark.icount}"
    if t.store.named(name) is not None:
        return f"snapshot at icount {t.store.delete(name).icount}"
    return ""


def _snapshot_save(m: Monitor, args: list[str]) -> str:
    name = _new_name(args, "snapshot save NAME")
    t = m.timeline
    replaced = t.store.named(name) is not None
    try:
        t.store.name(name, t.snapshot())
    except SnapshotBudgetError as exc:
        raise MonitorError(
            f"snapshot {name!r} not saved: {exc} (start the server with a larger --snapshot-budget, or free "
            "some with: monitor snapshot delete NAME)"
        ) from None
    t.bookmarks.unchecked.discard(name)
    mark = t.bookmarks.marks.pop(name, None)
    note = " (replaced)" if replaced else f" (replaced the bookmark at icount {mark.icount})" if mark else ""
    return f"snapshot {name!r} saved at icount {t.icount}{note}\n"


def _bookmark(m: Monitor, args: list[str]) -> str:
    name = _new_name(args, "bookmark NAME")
    t = m.timeline
    old = _forget(m, name)
    t.bookmarks.marks[name] = Bookmark(t.icount, t.machine.pc)
    note = f" (replaced the {old})" if old else ""
    return f"bookmark {name!r} at icount {t.icount}, pc {t.machine.pc:#x}{note}\n"


def _delete(m: Monitor, args: list[str], usage: str) -> str:
    name = _one(args, f"a name: {usage}")
    what = _forget(m, name)
    if not what:
        raise MonitorError(f"no snapshot named {name!r}, nor a bookmark (see: monitor snapshot list)")
    kind, _, where = what.partition(" at ")
    return f"{kind} {name!r} ({where}) deleted\n"


def _goto(m: Monitor, args: list[str], usage: str) -> str:
    name = _one(args, f"a name: {usage}")
    t = m.timeline
    note = ""
    snapshot = t.store.named(name)
    if snapshot is not None and snapshot.icount > t.end:  # (history was cut short since: a replay diverged)
        raise MonitorError(f"snapshot {name!r} at icount {snapshot.icount} lies past the end of history ({t.end})")
    if snapshot is not None and name in t.bookmarks.unchecked:
        check = check_against_history(t, snapshot)
        t.bookmarks.unchecked.discard(name)
        if check.problem is None:
            note = (f"(the snapshot saved in the recording agrees with history at icount {check.checked_at})\n"
                    if check.checked_at is not None else
                    "(the snapshot saved in the recording is trusted as written: no verification point follows "
                    "it to check it against)\n")  # fmt: skip
        else:
            log.warning("the recording's snapshot %r contradicts its history: %s", name, check.problem)
            t.store.delete(name)
            t.bookmarks.marks[name] = Bookmark(snapshot.icount)
            t.load(t.store.at_or_before(snapshot.icount))  # off the refused state: the seek below replays
            note = f"(the snapshot saved in the recording contradicts history: {check.problem}; it is a bookmark " \
                   "now, and going there replayed history)\n"  # fmt: skip
            snapshot = None
    if snapshot is not None:
        t.load(snapshot)
        return f"icount {t.icount}, pc {t.machine.pc:#x}\n{note}{_REFRESH}"
    mark = t.bookmarks.marks.get(name)
    if mark is None:
        raise MonitorError(f"no snapshot named {name!r}, nor a bookmark (see: monitor snapshot list)")
    if not t.start <= mark.icount <= t.end:
        raise MonitorError(f"bookmark {name!r} at icount {mark.icount} is outside history ({t.start}..{t.end})")
    go_to_bookmark(t, mark)
    return f"icount {t.icount}, pc {t.machine.pc:#x}\n{note}{_REFRESH}"


def _names(m: Monitor, args: list[str]) -> str:
    t = m.timeline
    rows = [(icount, name, "") for name, icount in t.store.names()]
    rows += [(mark.icount, name, "  bookmark" + (f", pc {mark.pc:#x}" if mark.pc is not None else ""))
             for name, mark in t.bookmarks.marks.items()]  # fmt: skip
    if not rows:
        return "no named snapshots\n"
    unchecked = t.bookmarks.unchecked
    return "".join(f"{name}  icount {icount}{kind}{'  (from the recording)' if name in unchecked else ''}\n"
                   for icount, name, kind in sorted(rows))  # fmt: skip


def _history(m: Monitor, args: list[str]) -> str:
    t = m.timeline
    stats = t.store.stats()
    mode = "live: going forward past the end runs the guest" if t.is_live else "a saved recording (fixed end)"
    return (
        f"history: icount {t.start}..{t.end} ({mode})\n"
        f"now: icount {t.icount}, pc {t.machine.pc:#x}\n"
        f"snapshots: {stats.count} periodic/automatic, {stats.named} named, every {t.interval} instructions "
        f"past the furthest point\n"
        f"memory: {stats.bytes_used / (1 << 20):.1f} MiB of {stats.budget / (1 << 20):.0f} MiB budget "
        f"({stats.evicted} evicted)\n"
        f"events: {t.event_count}\n"
        f"bookmarks: {len(t.bookmarks.marks)} (no state held)\n"
    )


def _record_save(m: Monitor, args: list[str]) -> str:
    overwrite = bool(args) and args[0] == "-f"
    return m.save(_one(args[1:] if overwrite else args, "a file name: record save [-f] FILE.chrec"), overwrite)


def _info(m: Monitor, args: list[str]) -> str:
    return m.describe()


_query = monitor_query.make_query_command(MonitorError)

COMMANDS: dict[str, Callable[[Monitor, list[str]], str]] = {
    "help": lambda m, args: HELP,
    "icount": _icount,
    "info": _info,
    "seek": _seek,
    "snapshot save": _snapshot_save,
    "snapshot load": lambda m, args: _goto(m, args, "snapshot load NAME"),
    "snapshot list": _names,
    "snapshot delete": lambda m, args: _delete(m, args, "snapshot delete NAME"),
    "bookmark": _bookmark,
    "bookmark goto": lambda m, args: _goto(m, args, "bookmark goto NAME"),
    "bookmark list": _names,
    "bookmark delete": lambda m, args: _delete(m, args, "bookmark delete NAME"),
    "history": _history,
    "record save": _record_save,
    "goto": _seek,
    "when": monitor_query.when,
    **{kind: functools.partial(_query, kind=kind) for kind in monitor_query.KINDS},
}
