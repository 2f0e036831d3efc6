"""Logged non-deterministic inputs: one frozen dataclass per kind, each stamped with its icount.

``EventKind`` values are written to recordings: never renumber or reuse one.
The encoding of each kind lives in :mod:`replay.log` (its CODECS table).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EventKind(enum.IntEnum):
    """Wire numbers of event kinds (values never reused)."""

    UART_INPUT = 1
    HOST_CLOCK = 2
    CLOCK_WARP = 3
    VERIFY = 4
    END = 5


class EndReason(enum.IntEnum):
    """Why a recording ends (wire numbers)."""

    GUEST_EXIT = 1
    USER_STOP = 2
    ICOUNT_LIMIT = 3
    GUEST_RESET = 4
    IDLE_FOREVER = 5
    GUEST_FAULT = 6


@dataclass(frozen=True, slots=True)
class UartInput:
    """Bytes that entered the UART receiver at ``icount`` (an asynchronous event)."""

    icount: int
    data: bytes


@dataclass(frozen=True, slots=True)
class HostClock:
    """A read of the host's real-time clock (the RTC), as QEMU's "host clock" event."""

    icount: int
    ns: int


@dataclass(frozen=True, slots=True)
class ClockWarp:
    """Virtual time that passed while the guest idled in ``wfi`` (QEMU's warp timer)."""

    icount: int
    warp_ns: int


@dataclass(frozen=True, slots=True)
class Verify:
    """A verification point: a digest of the registers at ``icount`` (divergence detection)."""

    icount: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class End:
    """The end of the recording and why; ``code`` is the exit code for GUEST_EXIT."""

    icount: int
    reason: EndReason
    code: int = 0


Event = UartInput | HostClock | ClockWarp | Verify | End

KIND_OF: dict[type, EventKind] = {
    UartInput: EventKind.UART_INPUT,
    HostClock: EventKind.HOST_CLOCK,
    ClockWarp: EventKind.CLOCK_WARP,
    Verify: EventKind.VERIFY,
    End: EventKind.END,
}
