"""One frozen dataclass per RSP packet the stub understands (names as in the GDB manual)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class BreakpointType(enum.IntEnum):
    """The type digit of ``Z``/``z`` packets."""

    SOFTWARE = 0
    HARDWARE = 1
    WRITE_WATCH = 2
    READ_WATCH = 3
    ACCESS_WATCH = 4


ThreadId = int  # -1: all threads, 0: any thread


@dataclass(frozen=True, slots=True)
class QSupported:
    """``qSupported[:feature;...]``: gdb's features, e.g. ``swbreak+``, ``xmlRegisters=i386``."""

    features: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MustReplyEmpty:
    """``vMustReplyEmpty``: must get the empty reply (tests unknown-``v`` handling)."""


@dataclass(frozen=True, slots=True)
class StartNoAckMode:
    """``QStartNoAckMode``."""


@dataclass(frozen=True, slots=True)
class HaltReason:
    """``?``: why the target stopped."""


@dataclass(frozen=True, slots=True)
class ReadRegisters:
    """``g``."""


@dataclass(frozen=True, slots=True)
class WriteRegisters:
    """``G XX...``: all registers, target byte order."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ReadRegister:
    """``p n``: one register by GDB number."""

    regnum: int


@dataclass(frozen=True, slots=True)
class WriteRegister:
    """``P n=r``."""

    regnum: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ReadMemory:
    """``m addr,length``."""

    addr: int
    length: int


@dataclass(frozen=True, slots=True)
class WriteMemory:
    """``M addr,length:XX...`` (hex) or ``X addr,length:binary``."""

    addr: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Continue:
    """``c [addr]`` or ``C sig[;addr]``."""

    signal: int | None = None
    addr: int | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """``s [addr]`` or ``S sig[;addr]``."""

    signal: int | None = None
    addr: int | None = None


@dataclass(frozen=True, slots=True)
class VContQuery:
    """``vCont?``."""


@dataclass(frozen=True, slots=True)
class VContAction:
    """One action of ``vCont``: ``c``, ``C sig``, ``s``, ``S sig``, ``t``, optionally ``:thread``."""

    action: str  # 'c', 's' or 't' (signals are carried in ``signal``)
    signal: int | None = None
    thread: ThreadId | None = None


@dataclass(frozen=True, slots=True)
class VCont:
    """``vCont;action[:thread]...``."""

    actions: tuple[VContAction, ...]


@dataclass(frozen=True, slots=True)
class InsertBreakpoint:
    """``Z type,addr,kind``."""

    type: BreakpointType
    addr: int
    kind: int


@dataclass(frozen=True, slots=True)
class RemoveBreakpoint:
    """``z type,addr,kind``."""

    type: BreakpointType
    addr: int
    kind: int


@dataclass(frozen=True, slots=True)
class XferRead:
    """``qXfer:object:read:annex:offset,length``."""

    object: str
    annex: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Attached:
    """``qAttached[:pid]``."""


@dataclass(frozen=True, slots=True)
class CurrentThread:
    """``qC``."""


@dataclass(frozen=True, slots=True)
class ThreadInfoFirst:
    """``qfThreadInfo``."""


@dataclass(frozen=True, slots=True)
class ThreadInfoNext:
    """``qsThreadInfo``."""


@dataclass(frozen=True, slots=True)
class SetThread:
    """``H op thread``: op ``g`` (registers/memory) or ``c`` (resume)."""

    op: str
    thread: ThreadId


@dataclass(frozen=True, slots=True)
class ThreadAlive:
    """``T thread``."""

    thread: ThreadId


@dataclass(frozen=True, slots=True)
class Symbol:
    """``qSymbol::`` (gdb offers symbol lookups) or ``qSymbol:value:name``."""

    raw: str


@dataclass(frozen=True, slots=True)
class Offsets:
    """``qOffsets``."""


@dataclass(frozen=True, slots=True)
class Kill:
    """``k``."""


@dataclass(frozen=True, slots=True)
class VKill:
    """``vKill;pid``."""


@dataclass(frozen=True, slots=True)
class Detach:
    """``D`` or ``D;pid``."""


@dataclass(frozen=True, slots=True)
class Monitor:
    """``qRcmd,hex``: a ``monitor`` command, decoded to text."""

    command: str


@dataclass(frozen=True, slots=True)
class ReverseStep:
    """``bs``."""


@dataclass(frozen=True, slots=True)
class ReverseContinue:
    """``bc``."""


@dataclass(frozen=True, slots=True)
class Unknown:
    """Anything else: answered with the empty reply."""

    payload: bytes


Command = (
    QSupported | MustReplyEmpty | StartNoAckMode | HaltReason | ReadRegisters | WriteRegisters | ReadRegister
    | WriteRegister | ReadMemory | WriteMemory | Continue | Step | VContQuery | VCont | InsertBreakpoint
    | RemoveBreakpoint | XferRead | Attached | CurrentThread | ThreadInfoFirst | ThreadInfoNext | SetThread
    | ThreadAlive | Symbol | Offsets | Kill | VKill | Detach | Monitor | ReverseStep | ReverseContinue | Unknown
)  # fmt: skip
