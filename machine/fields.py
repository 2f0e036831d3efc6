"""Typed fields of state dataclasses: one declaration gives validation, a binary encoding and a fingerprint.

A state dataclass (a device's, the board's) declares each field's kind with :func:`spec`::

    @dataclass(frozen=True, slots=True)
    class ClintState:
        VERSION: ClassVar[int] = 1
        msip: int = spec(Int(32, mask=1))

:func:`check_fields` validates a state (types, ranges, lengths), :func:`encode_fields` /
:func:`decode_fields` give its little-endian binary form (no pickle, no names from the
file), and :func:`fingerprint` describes the layout so a test notices a field change
that did not bump ``VERSION``. Decoding treats its input as hostile: every length is
checked against the bytes present and every value against its kind before use.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import field, fields
from functools import cache
from typing import Any, Protocol


class FieldError(ValueError):
    """A value does not fit its declared kind, or the bytes do not hold a valid encoding."""


class Reader:
    """Bounds-checked reading from bytes (every read raises FieldError past the end)."""

    def __init__(self, data: bytes | memoryview, pos: int = 0, end: int | None = None) -> None:
        self.data = memoryview(data).cast("B")
        self.pos = pos
        self.end = len(self.data) if end is None else end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def take(self, size: int, what: str = "data") -> memoryview:
        if size < 0 or size > self.remaining:
            raise FieldError(f"{what} needs {size} bytes, {self.remaining} left")
        view = self.data[self.pos : self.pos + size]
        self.pos += size
        return view

    def unpack(self, fmt: struct.Struct, what: str = "data") -> tuple[Any, ...]:
        return fmt.unpack(self.take(fmt.size, what))

    def uint(self, size: int, what: str = "data") -> int:
        return int.from_bytes(self.take(size, what), "little")

    def expect_end(self, what: str) -> None:
        if self.remaining:
            raise FieldError(f"{self.remaining} stray bytes after {what}")


class Kind(Protocol):
    """How one field is checked and encoded."""

    def check(self, value: object) -> None:
        """Raise FieldError unless ``value`` is of this kind."""
        ...

    def encode(self, value: Any, out: bytearray) -> None: ...

    def decode(self, reader: Reader) -> Any: ...

    def describe(self) -> str: ...


class Int:
    """An int in ``bits`` bits (two's complement when ``signed``), optionally limited by ``mask``/``maximum``."""

    def __init__(self, bits: int, signed: bool = False, mask: int | None = None, maximum: int | None = None) -> None:
        self.size = bits // 8
        self.signed = signed
        self.low = -(1 << (bits - 1)) if signed else 0
        self.high = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        if maximum is not None:
            self.high = min(self.high, maximum)
        self.mask = mask

    def check(self, value: object) -> None:
        if type(value) is not int or not self.low <= value <= self.high:
            raise FieldError(f"{value!r} is not an int in {self.low}..{self.high}")
        if self.mask is not None and value & ~self.mask:
            raise FieldError(f"{value:#x} has bits outside {self.mask:#x}")

    def check_all(self, values: tuple[object, ...]) -> None:
        """:meth:`check` for many values, fast (restores validate whole PLIC arrays)."""
        if not all(type(v) is int for v in values):
            raise FieldError("not all ints")
        if values and (min(values) < self.low or max(values) > self.high):  # type: ignore[type-var,operator]
            raise FieldError(f"values outside {self.low}..{self.high}")
        if self.mask is not None and any(v & ~self.mask for v in values):  # type: ignore[operator]
            raise FieldError(f"values with bits outside {self.mask:#x}")

    def encode(self, value: int, out: bytearray) -> None:
        out += value.to_bytes(self.size, "little", signed=self.signed)

    def decode(self, reader: Reader) -> int:
        value = int.from_bytes(reader.take(self.size), "little", signed=self.signed)
        self.check(value)
        return value

    def describe(self) -> str:
        return f"{'i' if self.signed else 'u'}{8 * self.size}"


class Bool:
    """True or False, one byte (0 or 1)."""

    def check(self, value: object) -> None:
        if type(value) is not bool:
            raise FieldError(f"{value!r} is not a bool")

    def check_all(self, values: tuple[object, ...]) -> None:
        if not all(v is True or v is False for v in values):
            raise FieldError("not all bools")

    def encode(self, value: bool, out: bytearray) -> None:
        out.append(value)

    def decode(self, reader: Reader) -> bool:
        byte = reader.uint(1)
        if byte > 1:
            raise FieldError(f"bool byte {byte}")
        return byte == 1

    def describe(self) -> str:
        return "bool"


class Tuple:
    """A tuple of exactly ``length`` items of one kind."""

    def __init__(self, length: int, item: Int | Bool | Tuple) -> None:
        self.length = length
        self.item = item

    def check(self, value: object) -> None:
        if type(value) is not tuple or len(value) != self.length:
            raise FieldError(f"not a tuple of {self.length} items")
        self.check_all_items(value)

    def check_all_items(self, value: tuple[object, ...]) -> None:
        if isinstance(self.item, Tuple):
            for item in value:
                self.item.check(item)
        else:
            self.item.check_all(value)

    def encode(self, value: tuple[Any, ...], out: bytearray) -> None:
        for item in value:
            self.item.encode(item, out)

    def decode(self, reader: Reader) -> tuple[Any, ...]:
        return tuple(self.item.decode(reader) for _ in range(self.length))

    def describe(self) -> str:
        return f"({self.item.describe()})*{self.length}"


class Bytes:
    """Up to ``max_length`` bytes (immutable), after a two-byte length."""

    def __init__(self, max_length: int) -> None:
        if max_length > 0xFFFF:
            raise ValueError("Bytes fields hold at most 65535 bytes")
        self.max_length = max_length

    def check(self, value: object) -> None:
        if type(value) is not bytes or len(value) > self.max_length:
            raise FieldError(f"not bytes of at most {self.max_length}")

    def encode(self, value: bytes, out: bytearray) -> None:
        out += len(value).to_bytes(2, "little") + value

    def decode(self, reader: Reader) -> bytes:
        length = reader.uint(2)
        if length > self.max_length:
            raise FieldError(f"{length} bytes, at most {self.max_length}")
        return bytes(reader.take(length))

    def describe(self) -> str:
        return f"bytes<={self.max_length}"


class Optional:
    """None or a value of ``inner`` kind: a presence byte, then the value."""

    def __init__(self, inner: Int | Tuple) -> None:
        self.inner = inner

    def check(self, value: object) -> None:
        if value is not None:
            self.inner.check(value)

    def encode(self, value: Any, out: bytearray) -> None:
        out.append(value is not None)
        if value is not None:
            self.inner.encode(value, out)

    def decode(self, reader: Reader) -> Any:
        present = reader.uint(1)
        if present > 1:
            raise FieldError(f"presence byte {present}")
        return self.inner.decode(reader) if present else None

    def describe(self) -> str:
        return f"optional {self.inner.describe()}"


def spec(kind: Kind) -> Any:
    """Declare a dataclass field of this kind (a required field: no default)."""
    return field(metadata={"kind": kind})


@cache
def _kinds(cls: type) -> Sequence[tuple[str, Kind]]:
    return tuple((f.name, f.metadata["kind"]) for f in fields(cls))


def check_fields(state: Any) -> None:
    """Raise FieldError naming the first field of ``state`` whose value does not fit its kind.

    A state class may add rules across fields in a ``check_invariants()`` method (raising FieldError).
    """
    for name, kind in _kinds(type(state)):
        try:
            kind.check(getattr(state, name))
        except FieldError as exc:
            raise FieldError(f"{type(state).__name__}.{name}: {exc}") from None
    invariants = getattr(state, "check_invariants", None)
    if invariants is not None:
        invariants()


def encode_fields(state: Any) -> bytes:
    """The fields of ``state`` in declaration order (each kind's fixed or length-prefixed form)."""
    out = bytearray()
    for name, kind in _kinds(type(state)):
        kind.encode(getattr(state, name), out)
    return bytes(out)


def decode_fields(cls: type, data: bytes | memoryview) -> Any:
    """Inverse of :func:`encode_fields`; ``data`` must hold exactly one encoded state of ``cls``."""
    reader = Reader(data)
    values = {}
    for name, kind in _kinds(cls):
        try:
            values[name] = kind.decode(reader)
        except FieldError as exc:
            raise FieldError(f"{cls.__name__}.{name}: {exc}") from None
    reader.expect_end(cls.__name__)
    state = cls(**values)
    invariants = getattr(state, "check_invariants", None)
    if invariants is not None:
        invariants()
    return state


def fingerprint(cls: type) -> str:
    """The encoded layout of a state class (names, kinds, sizes; not the value limits), for tests
    that catch a change made without a new VERSION."""
    return ";".join(f"{name}:{kind.describe()}" for name, kind in _kinds(cls))
