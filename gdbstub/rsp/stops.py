"""Stop reasons as values, and their stop-reply payloads (``T``, ``S``, ``W``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

SIGINT, SIGILL, SIGTRAP, SIGSEGV = 2, 4, 5, 11


WATCH_KEYWORDS = {2: b"watch", 3: b"rwatch", 4: b"awatch"}
"""Stop-reply keyword by ``Z`` packet type (2 write, 3 read, 4 access watchpoint)."""


class HistoryBoundary(enum.Enum):
    """Which end of the execution history was reached; the value is the ``replaylog`` keyword."""

    BEGIN = "begin"
    END = "end"


@dataclass(frozen=True, slots=True)
class Signal:
    """Stopped by a signal (SIGTRAP after a step, SIGINT after Ctrl-C, SIGSEGV/SIGILL on faults)."""

    signal: int


@dataclass(frozen=True, slots=True)
class Breakpoint:
    """A software (``Z0``) or hardware (``Z1``) breakpoint was hit.

    Reported as a plain ``T05``, without ``swbreak:``/``hwbreak:`` (not offered in ``qSupported``): gdb tells
    its own breakpoints apart, and the kind costs one more packet per stop (gdb reads the breakpoint's bytes
    at pc, docs/gdb-protocol-facts.md) while mattering only to non-stop mode, which chronicorn does not offer.
    """


@dataclass(frozen=True, slots=True)
class Watchpoint:
    """A watchpoint on ``addr`` fired; ``ztype`` is its ``Z`` packet type (2 write, 3 read, 4 access)."""

    ztype: int
    addr: int
    note: str = ""  # shown on gdb's console before the stop (an ``O`` packet): e.g. a device wrote the bytes


@dataclass(frozen=True, slots=True)
class Exited:
    """The program exited with ``code``."""

    code: int


@dataclass(frozen=True, slots=True)
class HistoryEnd:
    """Reverse or replayed execution reached an end of the recorded history.

    ``note`` (optional) is shown on gdb's console before the stop (an ``O`` packet), e.g. why history ends here.
    """

    boundary: HistoryBoundary
    note: str = ""


Stop = Signal | Breakpoint | Watchpoint | Exited | HistoryEnd


def stop_reply(stop: Stop, thread: int = 1) -> bytes:
    """The stop-reply payload for ``stop`` (GDB manual, "Stop Reply Packets")."""
    if isinstance(stop, Exited):
        return b"W%02x" % (stop.code & 0xFF)
    prefix = b"T%02xthread:%x;" % (_signal_of(stop), thread)
    if isinstance(stop, Watchpoint):
        return prefix + b"%s:%x;" % (WATCH_KEYWORDS[stop.ztype], stop.addr)
    if isinstance(stop, HistoryEnd):
        return prefix + b"replaylog:%s;" % stop.boundary.value.encode()
    return prefix


def _signal_of(stop: Stop) -> int:
    return stop.signal if isinstance(stop, Signal) else SIGTRAP
