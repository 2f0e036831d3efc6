"""The DWARF index of one ELF: its compilation units, variables, functions and named types by name, and which
compilation unit and function hold a pc. Built lazily: the name index on the first name lookup, a CU's function
ranges when a pc first falls into it."""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .die import die_attr, die_name, die_ranges
from .errors import SymbolError
from .types import NAMED_TAGS, canonical_base_name

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Variable:
    """A DW_TAG_variable or DW_TAG_formal_parameter with a name."""

    name: str
    addr: int | None  # None: no fixed address (a local, or optimised out)
    die: Any  # the DIE with DW_AT_type
    cu_index: int
    external: bool
    function: str | None  # the function it is local to (static locals have addresses)


@dataclass(slots=True)
class Function:
    """A DW_TAG_subprogram with a name: out of line when it has ranges, else abstract (inlined only) or a
    declaration-like entry."""

    name: str
    die: Any
    ranges: list[tuple[int, int]]  # [low, high) pairs
    entry: int | None


def _nearest_range(starts: list[int], spans: list[tuple[int, int, Any]], pc: int) -> Any:
    """The payload of the last span in ``spans`` (sorted by start, ``starts`` their starts) that holds ``pc``:
    spans nest only in odd cases, where the innermost (latest starting) wins. Looks back at most 16 MiB."""
    i = bisect.bisect_right(starts, pc) - 1
    while i >= 0:
        low, high, payload = spans[i]
        if low <= pc < high:
            return payload
        i -= 1
        if pc - low > 1 << 24:
            break
    return None


def line_states(program: Any) -> Iterator[Any]:
    """The line-number state machine's rows of a line program (its opcodes that emit none left out)."""
    for entry in program.get_entries():
        if entry.state is not None:
            yield entry.state


class DwarfIndex:
    """The DWARF of one ELF, read with pyelftools: see the module docstring."""

    def __init__(self, elf: Any, elf_name: str, has_dwarf: bool) -> None:
        self._elf = elf
        self._elf_name = elf_name
        self.has_dwarf = has_dwarf
        self.dwarf: Any = None
        self.cus: list[Any] = []
        self.named_types: dict[str, Any] = {}
        self.main_cu: int | None = None
        self._variables: dict[str, list[Variable]] | None = None
        self._functions: dict[str, list[Function]] = {}
        self._programs: dict[int, Any] = {}  # CU index -> its line program
        self._aranges: Any = None  # .debug_aranges (False: none)
        self._cu_by_offset: dict[int, int] = {}
        self._cu_function_ranges: dict[int, tuple[list[int], list[tuple[int, int, tuple[str, int]]]]] = {}
        self._sequences: list[tuple[int, int, int]] | None = None  # (start, end, cu index) of line sequences
        self._sequence_starts: list[int] = []

    def info(self) -> Any:
        """pyelftools' DWARFInfo (SymbolError when the ELF has none or it is unreadable)."""
        if self.dwarf is None:
            if not self.has_dwarf:
                raise SymbolError(f"{self._elf_name} has no debug info (DWARF): build it with -g")
            from elftools.common.exceptions import ELFError

            try:
                self.dwarf = self._elf.get_dwarf_info()
                self.cus = list(self.dwarf.iter_CUs())
            except (ELFError, ValueError, KeyError, IndexError) as exc:
                raise SymbolError(f"{self._elf_name}: unreadable debug info (DWARF): {exc}") from exc
        return self.dwarf

    # -- names -----------------------------------------------------------------------------------------------------
    def variables(self) -> dict[str, list[Variable]]:
        """Every named variable and parameter ({} without DWARF)."""
        return self._index() if self.has_dwarf else {}

    def functions(self) -> dict[str, list[Function]]:
        """Every named function definition, out of line or abstract ({} without DWARF)."""
        if self.has_dwarf:
            self._index()
        return self._functions

    def _index(self) -> dict[str, list[Variable]]:
        """One walk over every CU's DIEs: globals, statics, locals, functions, named types."""
        if self._variables is not None:
            return self._variables
        self.info()
        variables: dict[str, list[Variable]] = {}
        for cu_index, cu in enumerate(self.cus):
            top = cu.get_top_DIE()
            for die in top.iter_children():
                self._index_type(die)
            for die, function in self._walk(top, None):
                if die.tag == "DW_TAG_subprogram":
                    func = self.function(die)
                    if func is not None:
                        self._functions.setdefault(func.name, []).append(func)
                        if func.name == "main" and func.entry is not None:
                            self.main_cu = cu_index
                    continue
                var = self._variable(die, cu_index, function)
                if var is not None:
                    variables.setdefault(var.name, []).append(var)
        self._variables = variables
        return variables

    def _index_type(self, die: Any) -> None:
        tag = die.tag
        if tag not in ("DW_TAG_typedef", "DW_TAG_base_type") and tag not in NAMED_TAGS:
            return
        name = die_name(die)
        if name is None or die_attr(die, "DW_AT_declaration"):
            return
        if tag == "DW_TAG_base_type":
            key = canonical_base_name(name)
        else:
            key = name if tag == "DW_TAG_typedef" else f"{NAMED_TAGS[tag]} {name}"
        self.named_types.setdefault(key, die)

    def _walk(self, die: Any, function: str | None) -> Iterator[tuple[Any, str | None]]:
        for child in die.iter_children():
            tag = child.tag
            if tag in ("DW_TAG_variable", "DW_TAG_formal_parameter"):
                yield child, function
            elif tag == "DW_TAG_subprogram":
                yield child, function
                yield from self._walk(child, die_name(child) or function)
            elif tag in ("DW_TAG_lexical_block", "DW_TAG_inlined_subroutine"):
                yield from self._walk(child, function)

    def function(self, die: Any) -> Function | None:
        """The Function of a subprogram DIE (None for a nameless one or a declaration)."""
        name = die_name(die)
        if name is None or die_attr(die, "DW_AT_declaration"):
            return None
        ranges = die_ranges(self.dwarf, die)
        return Function(name, die, ranges, ranges[0][0] if ranges else None)  # gdb's BLOCK_ENTRY_PC

    def _variable(self, die: Any, cu_index: int, function: str | None) -> Variable | None:
        name = die_name(die)
        if name is None or die_attr(die, "DW_AT_declaration"):
            return None
        addr = None
        location = die.attributes.get("DW_AT_location")
        if location is not None and location.form in ("DW_FORM_exprloc", "DW_FORM_block1", "DW_FORM_block"):
            from elftools.dwarf.dwarf_expr import DWARFExprParser

            ops = DWARFExprParser(die.cu.structs).parse_expr(location.value)
            if len(ops) == 1 and ops[0].op_name == "DW_OP_addr":
                addr = ops[0].args[0]
        external = bool(die_attr(die, "DW_AT_external"))
        if not external and "DW_AT_specification" in die.attributes:
            external = bool(die_attr(die.get_DIE_from_attribute("DW_AT_specification"), "DW_AT_external"))
        local_to = function if die.tag == "DW_TAG_formal_parameter" or function is not None else None
        return Variable(name, addr, die, cu_index, external, local_to)

    # -- pcs -------------------------------------------------------------------------------------------------------
    def function_at(self, pc: int) -> tuple[str, int] | None:
        """(name, entry) of the out-of-line function whose ranges contain ``pc``: only the CU holding ``pc`` is
        read."""
        if not self.has_dwarf:
            return None
        cu_index = self.cu_index_at(pc)
        if cu_index is None:
            return None
        starts, spans = self._cu_functions(cu_index)
        return _nearest_range(starts, spans, pc)

    def _cu_functions(self, cu_index: int) -> tuple[list[int], list[tuple[int, int, tuple[str, int]]]]:
        """One CU's out-of-line functions as sorted (low, high, (name, entry)) ranges."""
        cached = self._cu_function_ranges.get(cu_index)
        if cached is not None:
            return cached
        spans = []
        pending = list(self.cus[cu_index].get_top_DIE().iter_children())
        while pending:
            die = pending.pop()
            if die.tag == "DW_TAG_subprogram":
                func = self.function(die)
                if func is not None:
                    spans += [(low, high, (func.name, func.entry or low)) for low, high in func.ranges]
            elif die.tag in ("DW_TAG_namespace", "DW_TAG_module"):
                pending += list(die.iter_children())
        spans.sort()
        result = ([s[0] for s in spans], spans)
        self._cu_function_ranges[cu_index] = result
        return result

    def cu_index_at(self, pc: int) -> int | None:
        """The CU whose code holds ``pc``: from .debug_aranges when it says, else from the line tables."""
        self.info()
        if self._aranges is None:
            try:
                self._aranges = self.dwarf.get_aranges() or False
            except Exception as exc:  # a malformed .debug_aranges: the line tables still answer
                log.debug("%s: .debug_aranges unreadable: %s", self._elf_name, exc)
                self._aranges = False
            self._cu_by_offset = {cu.cu_offset: i for i, cu in enumerate(self.cus)}
        if self._aranges:
            offset = self._aranges.cu_offset_at_addr(pc)
            if offset is not None and offset in self._cu_by_offset:
                return self._cu_by_offset[offset]
        if self._sequences is None:
            self._sequences = self._load_sequences()
            self._sequence_starts = [s[0] for s in self._sequences]
        return _nearest_range(self._sequence_starts, self._sequences, pc)

    def _load_sequences(self) -> list[tuple[int, int, int]]:
        """Every CU's line sequences (address ranges), to find the CU holding a pc."""
        sequences = []
        for cu_index in range(len(self.cus)):
            program = self.program(cu_index)
            if program is None:
                continue
            start = None
            for state in line_states(program):
                if start is None:
                    start = state.address
                if state.end_sequence:
                    if state.address > start:
                        sequences.append((start, state.address, cu_index))
                    start = None
        sequences.sort()
        return sequences

    def program(self, cu_index: int) -> Any:
        """A CU's line program (None without one), kept: it keeps its decoded rows."""
        if cu_index not in self._programs:
            self._programs[cu_index] = self.info().line_program_for_CU(self.cus[cu_index])
        return self._programs[cu_index]
