"""gdb's blocks, as far as frames need them: the innermost function at a pc, an inlined one included.

gdb's ``block_for_pc`` finds the innermost lexical block holding a pc; walking up its ``superblock`` chain to
the first block with a function gives what a stop's frame shows: the innermost DW_TAG_inlined_subroutine (named
by its DW_AT_abstract_origin), else the DW_TAG_subprogram. Per compilation unit, the ranges of its function
blocks are painted outer first, so an inner block's ranges overwrite its caller's (gdb's addrmap); a pc then
finds its name by bisection.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .die import die_name, die_ranges
from .dwarf import DwarfIndex

_FUNCTION_TAGS = ("DW_TAG_subprogram", "DW_TAG_inlined_subroutine")
_SCOPE_TAGS = (*_FUNCTION_TAGS, "DW_TAG_lexical_block", "DW_TAG_namespace", "DW_TAG_module")


@dataclass(frozen=True, slots=True)
class InlinedCall:
    """One inlined copy of a function: the function it was inlined into and where it starts."""

    name: str
    caller: str | None  # the innermost enclosing function (itself maybe inlined); None at file scope
    entry: int


class _Map:
    """A piecewise-constant map from addresses to a function name (None: no function block)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.names: list[str | None] = []

    def at(self, addr: int) -> str | None:
        i = bisect.bisect_right(self.starts, addr) - 1
        return self.names[i] if i >= 0 else None

    def paint(self, low: int, high: int, name: str) -> None:
        """[low, high) now maps to ``name``; what was after ``high`` is kept."""
        after = self.at(high)
        lo, hi = bisect.bisect_left(self.starts, low), bisect.bisect_right(self.starts, high)
        self.starts[lo:hi] = [low, high]
        self.names[lo:hi] = [name, after]


def _function_blocks(die: Any, caller: str | None) -> Iterator[tuple[Any, str, str | None]]:
    """(DIE, name, caller name) of every function block below ``die``, outer blocks before inner ones."""
    for child in die.iter_children():
        if child.tag not in _SCOPE_TAGS:
            continue
        inner = caller
        if child.tag in _FUNCTION_TAGS and not child.attributes.get("DW_AT_declaration"):
            name = die_name(child)
            if name is not None:
                yield child, name, caller
                inner = name
        yield from _function_blocks(child, inner)


class Blocks:
    """The function blocks of one ELF's DWARF, read a compilation unit at a time."""

    def __init__(self, index: DwarfIndex) -> None:
        self._index = index
        self._maps: dict[int, _Map] = {}
        self._inlined: dict[str, list[InlinedCall]] | None = None

    def function_at(self, pc: int) -> str | None:
        """The innermost function block (inlined or out of line) holding ``pc``; None outside every one."""
        if not self._index.has_dwarf:
            return None
        cu_index = self._index.cu_index_at(pc)
        if cu_index is None:
            return None
        blocks = self._maps.get(cu_index)
        if blocks is None:
            blocks = self._maps[cu_index] = _Map()
            for die, name, _ in _function_blocks(self._index.cus[cu_index].get_top_DIE(), None):
                for low, high in die_ranges(self._index.dwarf, die):
                    blocks.paint(low, high, name)
        return blocks.at(pc)

    def inlined(self, name: str) -> list[InlinedCall]:
        """Every inlined copy of function ``name`` (one walk over every CU on first use)."""
        if self._inlined is None:
            self._inlined = {}
            if self._index.has_dwarf:
                self._index.info()
                for cu in self._index.cus:
                    for die, callee, caller in _function_blocks(cu.get_top_DIE(), None):
                        ranges = die_ranges(self._index.dwarf, die) if die.tag == "DW_TAG_inlined_subroutine" else []
                        if ranges:  # a concrete copy (an abstract instance tree's have no code)
                            self._inlined.setdefault(callee, []).append(InlinedCall(callee, caller, ranges[0][0]))
        return self._inlined.get(name, [])
