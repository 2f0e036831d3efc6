"""The words of a query (``writes probe.scale --from 0``), shared by ``chronicorn query`` and the monitor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class QueryError(Exception):
    """A question that cannot be asked (bad words, unknown symbol, range outside history): one line."""


KINDS = ("writes", "reads", "accesses", "calls", "interrupts", "value")
USAGE = """queries:
  writes EXPR|ADDR LEN [--from N] [--to N]    every write that changed the bytes (icount, pc, function, line,
                                               instruction, old -> new)
  reads EXPR|ADDR LEN [--from N] [--to N]     every read of them
  accesses EXPR|ADDR LEN [--from N] [--to N]  every read or write
  calls FUNC [--from N] [--to N]              every entry (icount, caller, arguments) and its return
  interrupts [--from N] [--to N]              every trap or interrupt taken (cause, handler, until its return)
  value EXPR|ADDR LEN --at N                  the value at icount N"""


@dataclass(frozen=True, slots=True)
class QueryRequest:
    """One question: ``kind`` (one of :data:`KINDS`) about ``target`` (an expression, a function, or an
    address with ``length``) over ``[start, end)`` (None: the whole history), or ``at`` for ``value``."""

    kind: str
    target: str | None = None
    length: int | None = None
    start: int | None = None
    end: int | None = None
    at: int | None = None


def _number(text: str, what: str) -> int:
    try:
        value = int(text.replace("_", ""), 0)
    except ValueError:
        raise QueryError(f"{what}: {text!r} is not a number") from None
    if value < 0:
        raise QueryError(f"{what}: {text!r} is negative")
    return value


def parse_query(words: Sequence[str]) -> QueryRequest:
    """The words of a query (``writes probe.scale --from 0``) as a request; QueryError (with the usage) if wrong."""
    if not words or words[0] not in KINDS:
        known = ", ".join(KINDS)
        raise QueryError(f"unknown query {words[0]!r} (one of: {known})" if words else f"which query? ({known})")
    kind, rest = words[0], list(words[1:])
    options: dict[str, int] = {}
    target: list[str] = []
    i = 0
    while i < len(rest):
        word = rest[i]
        if word in ("--from", "--to", "--at"):
            if i + 1 >= len(rest):
                raise QueryError(f"{word} needs an icount")
            if word in options:
                raise QueryError(f"{word} given twice")
            options[word] = _number(rest[i + 1], word)
            i += 2
            continue
        if word.startswith("--"):
            raise QueryError(f"unknown option {word!r} (--from N, --to N; --at N for value)")
        target.append(word)
        i += 1
    length = None
    if len(target) == 2 and _is_int(target[0]) and _is_int(target[1]):
        length = _number(target[1], "length")
        if not 1 <= length <= 1 << 20:
            raise QueryError(f"length {length}: 1 to {1 << 20} bytes")
        target = [target[0]]
    text = " ".join(target) or None
    if kind == "interrupts" and text is not None:
        raise QueryError(f"interrupts takes no target ({text!r})")
    if kind != "interrupts" and text is None:
        raise QueryError(f"{kind} needs {'a function' if kind == 'calls' else 'an expression or ADDR LEN'}")
    if kind == "value":
        if "--at" not in options or "--from" in options or "--to" in options:
            raise QueryError("value takes --at N (and no --from/--to)")
    elif "--at" in options:
        raise QueryError(f"--at is for value; {kind} takes --from N --to N")
    start, end = options.get("--from"), options.get("--to")
    if start is not None and end is not None and end < start:
        raise QueryError(f"--to {end} is before --from {start}")
    return QueryRequest(kind, text, length, start, end, options.get("--at"))


def _is_int(text: str) -> bool:
    try:
        int(text.replace("_", ""), 0)
    except ValueError:
        return False
    return True
