"""gdb's ``monitor ...`` commands (qRcmd): one small function per command, registered in one table.

Errors come back as text starting with ``error:`` (gdb prints a qRcmd ``E``
reply only as "Protocol error with Rcmd", which tells the user nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from replay.store import SnapshotBudgetError
from replay.timeline import Timeline

HELP = """chronicorn monitor commands:
  help                  this text
  icount                instructions retired since reset (where we are in history)
  info                  the machine: architecture, board, RAM, icount shift, image
  seek N                go to icount N (anywhere in history; like rr's 'run N'), then
                        'maint flush register-cache' so that gdb re-reads the registers
  snapshot save NAME    keep a snapshot of this moment under NAME (replacing one of that name);
                        named snapshots are never evicted and must fit the snapshot budget
  snapshot load NAME    go back (or forward) to the moment saved as NAME
  snapshot list         the named snapshots
  snapshot delete NAME  forget the snapshot NAME (frees its share of the budget)
  history               icount range, snapshots held, memory used
  record save [-f] FILE write the history as a recording that 'chronicorn replay' accepts
                        (in the save directory; -f replaces an existing file)
"""


_REFRESH = "(gdb still shows the old state: 'maint flush register-cache' or any step refreshes it)\n"


class MonitorError(Exception):
    """A monitor command the user got wrong; shown as ``error: ...``."""


@dataclass
class Monitor:
    """The monitor of one served timeline; ``save(name, overwrite)`` writes the history as a recording."""

    timeline: Timeline
    describe: Callable[[], str]
    save: Callable[[str, bool], str]

    def __call__(self, command: str) -> str:
        words = command.split() or ["help"]
        two = " ".join(words[:2])
        name, args = (two, words[2:]) if two in COMMANDS else (words[0], words[1:])
        handler = COMMANDS.get(name)
        if handler is None:
            return f"error: unknown monitor command {command.strip()!r} (try: monitor help)\n"
        try:
            return handler(self, args)
        except MonitorError as exc:
            return f"error: {exc}\n"


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


def _snapshot_save(m: Monitor, args: list[str]) -> str:
    name = _one(args, "a name: snapshot save NAME")
    replaced = m.timeline.store.named(name) is not None
    try:
        m.timeline.store.name(name, m.timeline.snapshot())
    except SnapshotBudgetError as exc:
        raise MonitorError(
            f"snapshot {name!r} not saved: {exc} (start the server with a larger --snapshot-budget, or free "
            "some with: monitor snapshot delete NAME)"
        ) from None
    return f"snapshot {name!r} saved at icount {m.timeline.icount}{' (replaced)' if replaced else ''}\n"


def _snapshot_delete(m: Monitor, args: list[str]) -> str:
    name = _one(args, "a name: snapshot delete NAME")
    try:
        snapshot = m.timeline.store.delete(name)
    except KeyError:
        raise MonitorError(f"no snapshot named {name!r} (see: monitor snapshot list)") from None
    return f"snapshot {name!r} (icount {snapshot.icount}) deleted\n"


def _snapshot_load(m: Monitor, args: list[str]) -> str:
    name = _one(args, "a name: snapshot load NAME")
    snapshot = m.timeline.store.named(name)
    if snapshot is None:
        raise MonitorError(f"no snapshot named {name!r} (see: monitor snapshot list)")
    m.timeline.load(snapshot)
    return f"icount {m.timeline.icount}, pc {m.timeline.machine.pc:#x}\n{_REFRESH}"


def _snapshot_list(m: Monitor, args: list[str]) -> str:
    names = m.timeline.store.names()
    if not names:
        return "no named snapshots\n"
    return "".join(f"{name}  icount {icount}\n" for name, icount in names)


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
    )


def _record_save(m: Monitor, args: list[str]) -> str:
    overwrite = bool(args) and args[0] == "-f"
    return m.save(_one(args[1:] if overwrite else args, "a file name: record save [-f] FILE.chrec"), overwrite)


def _info(m: Monitor, args: list[str]) -> str:
    return m.describe()


COMMANDS: dict[str, Callable[[Monitor, list[str]], str]] = {
    "help": lambda m, args: HELP,
    "icount": _icount,
    "info": _info,
    "seek": _seek,
    "snapshot save": _snapshot_save,
    "snapshot load": _snapshot_load,
    "snapshot list": _snapshot_list,
    "snapshot delete": _snapshot_delete,
    "history": _history,
    "record save": _record_save,
}
