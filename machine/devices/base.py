"""The device seam: memory-mapped registers, explicit saved state, interrupt lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol, TypeVar

from ..fields import FieldError, check_fields

S = TypeVar("S")

IrqLine = Callable[[bool], None]
"""Sets the level of one interrupt line (True = asserted)."""


class Device(Protocol):
    """A memory-mapped device. Offsets are relative to the device's base address.

    Its state is explicit: every public instance attribute is a field of its
    ``state_type`` (tests/unit/test_state.py checks it); callbacks and other
    wiring are underscore-private and never saved.

    ``peek`` answers reads that neither change state nor depend on the current
    icount; it returns None when the read must happen at an exact instruction
    boundary (the machine then defers the access until it knows the icount).
    Writes always happen at an exact boundary.
    """

    name: str
    size: int
    access_size: int  # natural register width in bytes (how a debugger should read it)
    state_type: ClassVar[type]  # the frozen dataclass save() returns (it has a VERSION)

    def read(self, offset: int, size: int) -> int: ...

    def write(self, offset: int, size: int, value: int) -> None: ...

    def peek(self, offset: int, size: int) -> int | None: ...

    def save(self) -> Any:
        """The device's whole state, a frozen ``state_type`` (also what state digests cover)."""
        ...

    def load(self, state: Any, check: bool = True) -> None:
        """Make a saved state the device's own, after validating it (raises FieldError; ``check`` False: the
        state is one this kind of device saved, valid by construction).

        Interrupt lines are not driven: their levels are part of the board's state.
        """
        ...


def sub_word(value: int, offset: int, size: int) -> int:
    """Extract ``size`` bytes at byte ``offset`` of a little-endian register value."""
    return (value >> (8 * offset)) & ((1 << (8 * size)) - 1)


def merge_word(old: int, offset: int, size: int, value: int, width: int = 8) -> int:
    """Replace ``size`` bytes at byte ``offset`` of a ``width``-byte register."""
    shift = 8 * offset
    mask = ((1 << (8 * size)) - 1) << shift
    return ((old & ~mask) | ((value << shift) & mask)) & ((1 << (8 * width)) - 1)


def checked(state: object, state_type: type[S]) -> S:
    """``state`` if it is a valid ``state_type`` (types, ranges, lengths), else FieldError."""
    if type(state) is not state_type:
        raise FieldError(f"{state_type.__name__} expected, got {type(state).__name__}")
    check_fields(state)
    return state  # type: ignore[return-value]
