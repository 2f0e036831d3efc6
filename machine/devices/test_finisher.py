"""SiFive test finisher (QEMU's ``sifive_test``): lets the guest end the run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from .base import checked

FINISHER_FAIL, FINISHER_PASS, FINISHER_RESET = 0x3333, 0x5555, 0x7777


@dataclass(frozen=True, slots=True)
class FinisherState:
    """The test finisher keeps nothing: a write acts at once (on the board's exit and reset flags)."""

    VERSION: ClassVar[int] = 1


class TestFinisher:
    """Writing 0x5555 exits 0, 0x3333 | code << 16 exits with ``code``, 0x7777 resets."""

    __test__ = False  # not a pytest class
    name = "test"
    access_size = 4
    size = 0x1000
    state_type = FinisherState

    def __init__(self, on_exit: Callable[[int], None], on_reset: Callable[[], None]) -> None:
        self._on_exit = on_exit
        self._on_reset = on_reset

    def peek(self, offset: int, size: int) -> int | None:
        return 0

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        if offset != 0:
            return
        status = value & 0xFFFF
        if status == FINISHER_PASS:
            self._on_exit(0)
        elif status == FINISHER_FAIL:
            self._on_exit((value >> 16) & 0xFFFF)
        elif status == FINISHER_RESET:
            self._on_reset()

    def save(self) -> FinisherState:
        return FinisherState()

    def load(self, state: FinisherState, check: bool = True) -> None:
        if check:
            checked(state, FinisherState)
