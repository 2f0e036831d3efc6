"""The monitor's query commands: ``monitor writes EXPR``, ``calls FUNC``, ``interrupts``, ``value``, ``goto N``,
``when`` — the query engine (:mod:`replay.query`) from gdb, so its answers can be jumped to with ``goto``.

Registered into :data:`gdbstub.monitor.COMMANDS`; each takes the monitor (``timeline``, ``query_engine()``)
and the command's words, and returns text (a :class:`~gdbstub.monitor.MonitorError` is shown as ``error:``).
A query never moves gdb: the timeline is back where it was when the answer comes.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Protocol

from replay.query import QueryEngine, QueryError, parse_query

if TYPE_CHECKING:
    from replay.timeline import Timeline

HELP = """  writes EXPR|ADDR LEN [--from N] [--to N]
                        every write that changed EXPR (icount, old -> new, function, line); then 'monitor goto N'
  reads / accesses EXPR|ADDR LEN [--from N] [--to N]
                        every read (or access) of it
  calls FUNC [--from N] [--to N]
                        every call of FUNC: icount, caller, arguments, the icount of its return
  interrupts [--from N] [--to N]
                        every trap or interrupt taken: cause, handler, how long until it returned
  value EXPR --at N     the value of EXPR at icount N (gdb does not move)
  goto N                go to icount N (as seek N)
  when                  where we are: icount, the input events and traps nearest to it
"""

NEAREST = 3  # events shown on each side by `when`
KINDS = ("writes", "reads", "accesses", "calls", "interrupts", "value")  # the queries the monitor takes


class QueryMonitor(Protocol):
    """What the commands need of :class:`gdbstub.monitor.Monitor`."""

    timeline: Timeline

    def query_engine(self) -> QueryEngine: ...


def make_query_command(error: type[Exception]) -> Callable[..., str]:
    """The handler of every query kind (``kind``: the command's name), raising ``error`` for bad input."""

    def query(m: QueryMonitor, args: list[str], *, kind: str) -> str:
        try:
            request = parse_query([kind, *args])
            result = m.query_engine().run(request)
        except QueryError as exc:
            raise error(str(exc)) from None
        return result.to_text()

    return query


def when(m: QueryMonitor, args: list[str]) -> str:
    """``monitor when``: the current icount, and the input events and traps around it."""
    t = m.timeline
    here = t.icount
    lines = [f"now: icount {here} (history {t.start}..{t.end}), pc {t.machine.pc:#x}"]
    events = t.inputs.events
    keys = [e.icount for e in events]
    at = bisect.bisect_right(keys, here)
    before, after = events[max(0, at - NEAREST) : at], events[at : at + NEAREST]
    lines.append(f"input events: {len(events)} in history, {at} up to here")
    lines += [f"  icount {e.icount} ({e.icount - here:+d}): {_describe(e)}" for e in before + after]
    engine = m.query_engine()
    index = engine.index
    if index is not None:  # traps are known once a query built the index: `when` never replays for them
        traps = index.traps
        starts = [trap.icount for trap in traps]
        n = bisect.bisect_right(starts, here)
        near = traps[max(0, n - NEAREST) : n + NEAREST]
        lines.append(f"traps: {len(traps)} in history, {n} up to here")
        lines += [f"  icount {trap.icount} ({trap.icount - here:+d}): {_trap(engine, trap)}" for trap in near]
    else:
        lines.append("traps: not known yet (any query over history, e.g. 'monitor interrupts', finds them)")
    return "\n".join(lines) + "\n"


def _trap(engine: QueryEngine, trap: Any) -> str:
    from replay.query import trap_name

    back = "" if trap.returned is None else f", returns at icount {trap.returned}"
    return f"{trap_name(engine.arch, trap.cause, trap.interrupt)} -> {trap.handler:#x}{back}"


def _describe(event: object) -> str:
    parts = []
    for f in fields(event):  # type: ignore[arg-type]
        if f.name == "icount":
            continue
        value = getattr(event, f.name)
        if isinstance(value, bytes) and len(value) > 16:
            value = f"{value[:16]!r}... ({len(value)} bytes)"
        parts.append(f"{f.name}={value!r}" if not isinstance(value, str) else f"{f.name}={value}")
    return f"{type(event).__name__} {', '.join(parts)}"
