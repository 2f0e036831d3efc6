"""Logged non-deterministic inputs: one frozen dataclass per kind, each stamped with its icount.

``EventKind`` values are written to recordings: never renumber or reuse one.
The encoding of each kind lives in :mod:`replay.log` (its CODECS table).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from machine.results import RunKind


class EventKind(enum.IntEnum):
    """Wire numbers of event kinds (values never reused)."""

    UART_INPUT = 1
    HOST_CLOCK = 2
    CLOCK_WARP = 3
    VERIFY = 4
    END = 5
    IO_COMPLETION = 6
    NET_FRAME = 7
    AUDIO_INPUT = 8
    AUDIO_OUTPUT = 9


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
class IoCompletion:
    """The requests pending on these virtio slots (a bit mask) completed at ``icount``: their data, used
    entries and interrupt appeared there (QEMU's blkreplay block event; the data is not logged: the disk
    image and the overlay's history make it the same on replay)."""

    icount: int
    slots: int


@dataclass(frozen=True, slots=True)
class NetFrame:
    """An Ethernet frame the network gave the virtio-net device in ``slot`` at ``icount`` (QEMU's filter-replay
    logs only these, network to guest; what the guest sends is not logged)."""

    icount: int
    slot: int
    data: bytes


@dataclass(frozen=True, slots=True)
class AudioInput:
    """Samples (S16_LE, ``channels`` interleaved, at ``rate`` Hz) the microphone gave the virtio-snd device in
    ``slot`` for a capture buffer that completed at ``icount`` (QEMU's replay-audio logs them the same way)."""

    icount: int
    slot: int
    rate: int
    channels: int
    data: bytes


@dataclass(frozen=True, slots=True)
class AudioOutput:
    """``nbytes`` of samples the virtio-snd device in ``slot`` finished playing at ``icount`` (QEMU logs what the
    host consumed; here playback is paced by virtual time, so a replay must consume the same at the same icount:
    it is checked, and ``info`` adds it up)."""

    icount: int
    slot: int
    rate: int
    channels: int
    nbytes: int


@dataclass(frozen=True, slots=True)
class Verify:
    """A verification point: a digest of the registers at ``icount`` (divergence detection)."""

    icount: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class End:
    """The end of the recording and how the run ended there (``RunKind``'s wire number in the file).

    ``kind`` is EXITED/RESET/FAULT/IDLE_FOREVER when the guest ended by itself (replay must end the same
    way), INTERRUPTED when the user stopped it, LIMIT at ``--max-insns``. ``code`` is the exit code.
    """

    icount: int
    kind: RunKind
    code: int = 0


Event = UartInput | HostClock | ClockWarp | IoCompletion | NetFrame | AudioInput | AudioOutput | Verify | End

KIND_OF: dict[type, EventKind] = {
    UartInput: EventKind.UART_INPUT,
    HostClock: EventKind.HOST_CLOCK,
    ClockWarp: EventKind.CLOCK_WARP,
    Verify: EventKind.VERIFY,
    End: EventKind.END,
    IoCompletion: EventKind.IO_COMPLETION,
    NetFrame: EventKind.NET_FRAME,
    AudioInput: EventKind.AUDIO_INPUT,
    AudioOutput: EventKind.AUDIO_OUTPUT,
}
