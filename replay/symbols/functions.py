"""Functions: which one holds a pc (as gdb's ``print/a`` names it), where one starts, its parameters."""

from __future__ import annotations

from .blocks import Blocks
from .die import die_name
from .dwarf import DwarfIndex
from .elf import SymbolTable
from .errors import SymbolError


class Functions:
    """The functions of one ELF, from its symbol table and DWARF."""

    def __init__(self, symtab: SymbolTable, index: DwarfIndex, thumb: bool, elf_name: str) -> None:
        self._symtab = symtab
        self._index = index
        self._thumb = thumb
        self._elf_name = elf_name
        self._blocks = Blocks(index)

    def symbolic(self, addr: int) -> tuple[str, int, bool] | None:
        """(name, offset, is code) of gdb's build_address_symbolic: the DWARF function containing ``addr``,
        unless a symbol-table entry starts exactly there and the function does not; else the entry before it
        (zero-sized data symbols are not used). Code addresses lose the Thumb bit first."""
        msym = self._symtab.at(addr)
        plain = msym is not None and msym.is_text and "." not in msym.name and not self._thumb
        if plain and msym.addr <= addr < msym.addr + msym.size:  # type: ignore[union-attr]
            # A plain function symbol holds addr: DWARF names the same function with the same entry, so big
            # guests need not have their DWARF read for this. Not so for a clone (DWARF's f is f.constprop) nor
            # on Thumb (an assembly function's DWARF entry may keep the Thumb bit, and gdb counts from it).
            return msym.name, addr - msym.addr, True  # type: ignore[union-attr]
        func = self._index.function_at(addr) if self._symtab.is_code(addr) else None
        if msym is not None and msym.size == 0 and not msym.is_text:
            msym = None
        if func is not None and (msym is None or msym.addr != addr or func[1] == addr):
            return func[0], (addr & ~1 if self._thumb else addr) - func[1], True
        if msym is None:
            return None
        if msym.is_text and self._thumb:
            addr &= ~1
        return msym.name, addr - msym.addr, msym.is_text

    def entry(self, name: str) -> int:
        """The address of the first instruction of function ``name`` (Thumb bit cleared)."""
        found = self._symtab.entry(name)
        if found is not None:
            return found
        for func in self._index.functions().get(name, []):
            if func.entry is not None:
                return func.entry & ~1 if self._thumb else func.entry
        if self.inline_only(name):
            copies = self._blocks.inlined(name)
            callers = ", ".join(sorted({c.caller or "?" for c in copies}))
            raise SymbolError(f"{name} is inlined at every call site (no call to count); its {len(copies)} inlined "
                              f"cop{'y runs' if len(copies) == 1 else 'ies run'} inside {callers}")  # fmt: skip
        raise SymbolError(f'no function named "{name}" in {self._elf_name}')

    def frame_function(self, pc: int) -> str | None:
        """The function a stop's frame at ``pc`` shows: the innermost inlined function there, else the
        out-of-line function, else :meth:`symbolic`'s code symbol (gdb's ``block_for_pc`` walked up to the first
        block with a function)."""
        name = self._blocks.function_at(pc)
        if name is not None:
            return name
        found = self.symbolic(pc)
        return found[0] if found is not None and found[2] else None

    def inline_only(self, name: str) -> bool:
        """Whether function ``name`` exists only as inlined copies: no out-of-line code, no symbol."""
        if self._symtab.entry(name) is not None:
            return False
        if any(f.entry is not None for f in self._index.functions().get(name, [])):
            return False
        return bool(self._blocks.inlined(name))

    def parameters(self, name: str) -> list[str]:
        """The formal parameter names of function ``name`` from DWARF ([] if none known): the out-of-line
        instance's, as gdb lists them (a clone that dropped parameters lists fewer), else the declaration's."""
        funcs = sorted(self._index.functions().get(name, []), key=lambda f: f.entry is None)
        for func in funcs:
            names = [die_name(child) for child in func.die.iter_children() if child.tag == "DW_TAG_formal_parameter"]
            if func.entry is not None or all(names):
                return [n or "" for n in names]
        return []
