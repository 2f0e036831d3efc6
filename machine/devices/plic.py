"""SiFive PLIC (QEMU's ``riscv.sifive.plic``) as on ``virt``: 95 sources, two contexts
per hart (0 = M-mode, 1 = S-mode), level-triggered sources, claim/complete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from ..fields import Bool, Int, Tuple, spec
from .base import checked

NUM_SOURCES = 96  # source 0 is reserved
NUM_CONTEXTS = 2
PRIORITY_BASE, PENDING_BASE, ENABLE_BASE = 0x0000, 0x1000, 0x2000
ENABLE_STRIDE, CONTEXT_BASE, CONTEXT_STRIDE = 0x80, 0x200000, 0x1000
MAX_PRIORITY = 7
_FLAGS = Tuple(NUM_SOURCES, Bool())


@dataclass(frozen=True, slots=True)
class PlicState:
    """Per source: priority, line level, pending, claimed; per context: enables and threshold."""

    VERSION: ClassVar[int] = 1
    priority: tuple[int, ...] = spec(Tuple(NUM_SOURCES, Int(8, maximum=MAX_PRIORITY)))
    level: tuple[bool, ...] = spec(_FLAGS)
    pending: tuple[bool, ...] = spec(_FLAGS)
    claimed: tuple[bool, ...] = spec(_FLAGS)
    enable: tuple[tuple[bool, ...], ...] = spec(Tuple(NUM_CONTEXTS, _FLAGS))
    threshold: tuple[int, ...] = spec(Tuple(NUM_CONTEXTS, Int(8, maximum=MAX_PRIORITY)))


class Plic:
    """``on_change(context, level)`` is told whenever a context's output may have changed."""

    name = "plic"
    access_size = 4
    size = 0x600000
    state_type = PlicState

    def __init__(self, on_change: Callable[[int, bool], None]) -> None:
        self._on_change = on_change
        self.priority = [0] * NUM_SOURCES
        self.level = [False] * NUM_SOURCES
        self.pending = [False] * NUM_SOURCES
        self.claimed = [False] * NUM_SOURCES
        self.enable = [[False] * NUM_SOURCES for _ in range(NUM_CONTEXTS)]
        self.threshold = [0] * NUM_CONTEXTS

    def line(self, source: int) -> Callable[[bool], None]:
        """The interrupt line a device drives."""

        def set_level(level: bool) -> None:
            # As Debian's QEMU 7.2 (7.2.22, with "hw/intc: Don't clear pending bits on IRQ lowering"): a raised
            # line makes the source pending, lowering it does not clear that (only a claim does); a claimed
            # source is not offered again until it is completed.
            self.level[source] = level
            if level:
                self.pending[source] = True
            self._update()

        return set_level

    def _best(self, ctx: int) -> int:
        best, best_prio = 0, self.threshold[ctx]
        for src in range(1, NUM_SOURCES):
            offered = self.pending[src] and not self.claimed[src] and self.enable[ctx][src]
            if offered and self.priority[src] > best_prio:
                best, best_prio = src, self.priority[src]
        return best

    def is_asserted(self, ctx: int) -> bool:
        return self._best(ctx) != 0

    def _update(self) -> None:
        for ctx in range(NUM_CONTEXTS):
            self._on_change(ctx, self.is_asserted(ctx))

    @staticmethod
    def _bits(flags: list[bool], word: int) -> int:
        return sum(1 << i for i in range(32) if 32 * word + i < NUM_SOURCES and flags[32 * word + i])

    def peek(self, offset: int, size: int) -> int | None:
        if offset >= CONTEXT_BASE and (offset - CONTEXT_BASE) % CONTEXT_STRIDE == 4:
            return None  # claim has a side effect
        return self.read(offset, size)

    def read(self, offset: int, size: int) -> int:
        if offset < PENDING_BASE:
            src = offset // 4
            return self.priority[src] if src < NUM_SOURCES else 0
        if offset < ENABLE_BASE:
            return self._bits(self.pending, (offset - PENDING_BASE) // 4)
        if offset < CONTEXT_BASE:
            ctx, word = divmod(offset - ENABLE_BASE, ENABLE_STRIDE)
            return self._bits(self.enable[ctx], word // 4) if ctx < NUM_CONTEXTS else 0
        ctx, reg = divmod(offset - CONTEXT_BASE, CONTEXT_STRIDE)
        if ctx >= NUM_CONTEXTS:
            return 0
        if reg == 0:
            return self.threshold[ctx]
        if reg == 4:
            src = self._best(ctx)
            if src:
                self.pending[src] = False
                self.claimed[src] = True
                self._update()
            return src
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        if offset < PENDING_BASE:
            src = offset // 4
            if src < NUM_SOURCES:
                self.priority[src] = value & MAX_PRIORITY
        elif ENABLE_BASE <= offset < CONTEXT_BASE:
            ctx, word = divmod(offset - ENABLE_BASE, ENABLE_STRIDE)
            if ctx < NUM_CONTEXTS:
                for i in range(32):
                    src = 32 * (word // 4) + i
                    if 0 < src < NUM_SOURCES:
                        self.enable[ctx][src] = bool(value >> i & 1)
        elif offset >= CONTEXT_BASE:
            ctx, reg = divmod(offset - CONTEXT_BASE, CONTEXT_STRIDE)
            if ctx >= NUM_CONTEXTS:
                return
            if reg == 0 and value <= MAX_PRIORITY:  # as QEMU: an out-of-range threshold is ignored
                self.threshold[ctx] = value
            elif reg == 4 and 0 < value < NUM_SOURCES and self.claimed[value]:
                self.claimed[value] = False
                if self.level[value]:
                    self.pending[value] = True
        self._update()

    def save(self) -> PlicState:
        return PlicState(tuple(self.priority), tuple(self.level), tuple(self.pending), tuple(self.claimed),
                         tuple(map(tuple, self.enable)), tuple(self.threshold))  # fmt: skip

    def load(self, state: PlicState, check: bool = True) -> None:
        state = checked(state, PlicState) if check else state
        self.priority, self.level = list(state.priority), list(state.level)
        self.pending, self.claimed = list(state.pending), list(state.claimed)
        self.enable, self.threshold = list(map(list, state.enable)), list(state.threshold)
