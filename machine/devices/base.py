"""The device seam: memory-mapped registers, digests, interrupt lines."""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable
from typing import Protocol

IrqLine = Callable[[bool], None]
"""Sets the level of one interrupt line (True = asserted)."""


class Device(Protocol):
    """A memory-mapped device. Offsets are relative to the device's base address.

    ``peek`` answers reads that neither change state nor depend on the current
    icount; it returns None when the read must happen at an exact instruction
    boundary (the machine then defers the access until it knows the icount).
    Writes always happen at an exact boundary.
    """

    name: str
    size: int
    access_size: int  # natural register width in bytes (how a debugger should read it)

    def read(self, offset: int, size: int) -> int: ...

    def write(self, offset: int, size: int, value: int) -> None: ...

    def peek(self, offset: int, size: int) -> int | None: ...

    def state(self) -> bytes:
        """Everything guest-visible about the device, for state digests."""
        ...


def sub_word(value: int, offset: int, size: int) -> int:
    """Extract ``size`` bytes at byte ``offset`` of a little-endian register value."""
    return (value >> (8 * offset)) & ((1 << (8 * size)) - 1)


def merge_word(old: int, offset: int, size: int, value: int, width: int = 8) -> int:
    """Replace ``size`` bytes at byte ``offset`` of a ``width``-byte register."""
    shift = 8 * offset
    mask = ((1 << (8 * size)) - 1) << shift
    return ((old & ~mask) | ((value << shift) & mask)) & ((1 << (8 * width)) - 1)


def save_device(device: Device) -> dict[str, object]:
    """A device's state: its public attributes (callbacks and wiring are private by convention)."""
    return {k: copy.deepcopy(v) for k, v in vars(device).items() if not k.startswith("_")}


def load_device(device: Device, state: dict[str, object]) -> None:
    """Put back what :func:`save_device` captured."""
    for key, value in state.items():
        current = getattr(device, key, None)
        value = copy.deepcopy(value)
        if isinstance(current, deque) and not isinstance(value, deque):  # from a serialized snapshot
            value = deque(value)
        setattr(device, key, value)
