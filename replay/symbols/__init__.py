"""Symbols and DWARF debug information of a guest ELF, for queries answered without gdb (issue 16).

The query engine (``writes EXPR``, ``calls FUNC``, ``value EXPR --at N``...) reads a recording's memory itself;
this package tells it what gdb would: where a watch expression lives and how big it is (:meth:`Symbols.locate`),
how gdb's ``print`` shows its bytes (:meth:`Symbols.format`), which function and source line a pc is in
(:meth:`Symbols.function_at`, :meth:`Symbols.line_at`, as gdb's ``print/a`` and ``info line *PC``) and which
function a stop's frame there shows (:meth:`Symbols.frame_function`: an inlined one), where a function starts
and what its parameters are called, and capstone's text of one instruction.

Everything is read with pyelftools and built lazily, once per table: the symbol table on first use, the DWARF
variable and function index on the first name lookup, a type only when an expression reaches it, a
compilation unit's line table when a pc first falls into it. pc lookups bisect sorted tables.

One module a job: :mod:`.elf` (symbol table), :mod:`.dwarf` (DWARF index), :mod:`.types` (C types),
:mod:`.format` (gdb's ``print``), :mod:`.lines` (line tables, source text), :mod:`.expressions` (watch
expressions), :mod:`.variables` (names in expressions), :mod:`.functions` (pc <-> function),
:mod:`.blocks` (the inlined functions frames show), :mod:`.instructions` (capstone); :class:`Symbols` is the
one object callers hold.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .dwarf import DwarfIndex, Function
from .elf import SymbolTable
from .errors import ReadMemory, SymbolError
from .expressions import Location, locate
from .format import PRINT_MAX, REPEAT_THRESHOLD, ValueFormatter, format_char, format_float, format_string
from .functions import Functions
from .instructions import Disassembler
from .lines import LineTables, SourceLine
from .types import KINDS, VOID, CType, Field, TypeBuilder, canonical_base_name
from .variables import Variables

__all__ = ["KINDS", "PRINT_MAX", "REPEAT_THRESHOLD", "VOID", "CType", "Field", "Location", "ReadMemory",
           "SourceLine", "SymbolError", "Symbols", "canonical_base_name", "format_char", "format_float",
           "format_string"]  # fmt: skip


class Symbols:
    """The symbols and DWARF of one guest ELF; see the package docstring. Build with :meth:`from_elf`."""

    def __init__(self, path: Path, data: bytes, source_dirs: Sequence[Path] = ()) -> None:
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile

        self.path = path
        try:
            elf: Any = ELFFile(io.BytesIO(data))
            self.machine = elf["e_machine"]
            self.address_size = elf.elfclass // 8
            has_dwarf = elf.has_dwarf_info()
        except (ELFError, ValueError, OSError) as exc:
            raise SymbolError(f"{path} is not a valid ELF file: {exc}") from exc
        thumb = self.machine == "EM_ARM"
        symtab = SymbolTable(elf, thumb, has_dwarf)
        self._index = DwarfIndex(elf, path.name, has_dwarf)
        self._types = TypeBuilder(self._index, self.address_size, path.name)
        self._functions = Functions(symtab, self._index, thumb, path.name)
        self._variables = Variables(self._index, symtab, self._types, path.name, self.address_size)
        self._lines = LineTables(self._index, path, tuple(Path(d) for d in source_dirs))
        self._formatter = ValueFormatter(self.symbolize)
        self._disassembler = Disassembler()

    @classmethod
    def from_elf(cls, path: str | Path, source_dirs: Sequence[str | Path] = ()) -> Symbols:
        """Read the ELF file at ``path`` (SymbolError if unreadable or not ELF). ``source_dirs`` are searched
        first for source files (:meth:`source_text`), as gdb's ``directory``."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SymbolError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if data[:4] != b"\x7fELF":
            raise SymbolError(f"{path} is not an ELF file")
        return cls(path, data, tuple(Path(d) for d in source_dirs))

    @property
    def source_dirs(self) -> tuple[Path, ...]:
        """Directories searched first for source files."""
        return self._lines.source_dirs

    # -- functions -------------------------------------------------------------------------------------------------
    def symbolize(self, addr: int) -> tuple[str, int] | None:
        """gdb's ``<name+offset>`` for an address, as (name, offset); None when gdb shows none."""
        found = self._functions.symbolic(addr)
        return None if found is None else found[:2]

    def function_at(self, pc: int) -> str | None:
        """The function containing ``pc`` as gdb names it in ``print/a PC``: the DWARF function (not an
        inlined one) whose ranges hold it, else the symbol-table code symbol before it (assembly labels too)."""
        found = self._functions.symbolic(pc)
        return found[0] if found is not None and found[2] else None

    def frame_function(self, pc: int) -> str | None:
        """The function gdb's frame shows at ``pc``: the innermost inlined function holding it (the name of its
        DW_TAG_inlined_subroutine's abstract origin), else the enclosing DW_TAG_subprogram, else
        :meth:`function_at`. ``print/a`` (:meth:`function_at`) names the out-of-line function instead."""
        return self._functions.frame_function(pc)

    def inline_only(self, name: str) -> bool:
        """Whether function ``name`` has no out-of-line copy, only inlined instances (no call to it to count)."""
        return self._functions.inline_only(name)

    def function_entry(self, name: str) -> int:
        """The address of the first instruction of function ``name`` (Thumb bit cleared); SymbolError when
        there is none, saying so when the function is inlined at every call site."""
        return self._functions.entry(name)

    def parameters(self, name: str) -> list[str]:
        """The formal parameter names of function ``name`` from DWARF ([] if none known): the out-of-line
        instance's, as gdb lists them (a clone that dropped parameters lists fewer), else the declaration's."""
        return self._functions.parameters(name)

    def _dwarf_functions(self) -> dict[str, list[Function]]:
        """Every DWARF function definition by name (for tests comparing with gdb)."""
        return self._index.functions()

    # -- variables and types ---------------------------------------------------------------------------------------
    def locate(self, expr: str, read_memory: ReadMemory | None = None) -> Location:
        """Where the watch expression ``expr`` lives: ``NAME``, ``.field``, ``[i]``, ``->field``, ``*PTR``,
        ``*(TYPE *)ADDR``, ``*(char (*)[N])ADDR`` (raw bytes: type None), any chain of them. Globals and statics
        only. A dereference reads the pointer with ``read_memory(addr, size)`` (SymbolError without it)."""
        return locate(self._variables, expr, read_memory)

    def variables(self) -> list[str]:
        """The global and file-scope static variables with an address in the DWARF: those gdb's ``info
        variables`` lists (a function's static variable is ``FUNCTION::NAME``)."""
        return self._variables.names()

    def lookup_type(self, name: str) -> CType:
        """The type a cast names: ``uint32_t``, ``struct probe``, ``unsigned long``, ``int *``."""
        return self._types.lookup(name)

    def format(self, ctype: CType | None, data: bytes, read_memory: ReadMemory | None = None) -> str:
        """gdb's ``print`` of a value of type ``ctype`` held in ``data``: see
        :meth:`replay.symbols.format.ValueFormatter.format` (and where it differs from gdb)."""
        return self._formatter.format(ctype, data, read_memory)

    # -- lines and instructions ------------------------------------------------------------------------------------
    def line_at(self, pc: int) -> SourceLine | None:
        """The source line of ``pc`` as gdb's ``info line *PC`` finds it (find_pc_line over the CU's files)."""
        return self._lines.line_at(pc)

    def source_path(self, where: SourceLine) -> Path | None:
        """The source file of ``where`` on this machine: ``source_dirs``, the compilation directory, then the
        ELF's directory and up to three above it (guests are built with paths relative to their tree)."""
        return self._lines.source_path(where)

    def source_text(self, where: SourceLine) -> str | None:
        """The text of that source line (without its newline), None if the file or line is missing."""
        return self._lines.source_text(where)

    def instruction(self, arch: str, code: bytes, pc: int) -> str:
        """Capstone's text of the instruction at the start of ``code`` (at ``pc``): ``addi a0, a0, 1``;
        ``(unknown)`` when it does not decode. ``arch``: riscv32, riscv64, aarch64 or armv7m."""
        return self._disassembler.instruction(arch, code, pc)
