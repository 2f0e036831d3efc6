"""What names mean in a watch expression: global and static variables (DWARF, else the symbol table), the
types casts name. The :class:`~replay.symbols.expressions.Scope` of :func:`~replay.symbols.expressions.locate`."""

from __future__ import annotations

from .die import die_type
from .dwarf import DwarfIndex
from .elf import SymbolTable
from .errors import SymbolError
from .expressions import Place
from .types import CType, TypeBuilder


class Variables:
    """Global and static variables of one ELF, by name."""

    def __init__(self, index: DwarfIndex, symtab: SymbolTable, types: TypeBuilder, elf_name: str,
                 address_size: int) -> None:  # fmt: skip
        self._index = index
        self._symtab = symtab
        self._types = types
        self.elf_name = elf_name
        self.address_size = address_size

    def names(self) -> list[str]:
        """The global and file-scope static variables with an address in the DWARF (``info variables``)."""
        return sorted(name for name, found in self._index.variables().items()
                      if any(v.addr is not None and v.function is None for v in found))  # fmt: skip

    def lookup_type(self, name: str) -> CType:
        """The type a cast names."""
        return self._types.lookup(name)

    def is_type_name(self, name: str) -> bool:
        """Whether ``name`` names a type rather than a variable."""
        return self._types.is_type_name(name)

    def lookup_variable(self, name: str, function: str | None = None) -> Place:
        """A global or static variable by name (DWARF, else the symbol table: untyped); with ``function``, that
        function's static variable (gdb's ``FUNCTION::NAME``). A name alone finds a function's static variable
        too when no file-scope variable has that name (gdb would need the function's frame)."""
        candidates = self._index.variables().get(name, [])
        if function is not None:
            candidates = [v for v in candidates if v.function == function]
            if not candidates:
                raise SymbolError(f'No symbol "{name}" in function "{function}".')
        fixed = [v for v in candidates if v.addr is not None]
        if fixed:
            main_cu = self._index.main_cu
            fixed.sort(key=lambda v: (not v.external, v.function is not None, v.cu_index != main_cu, v.cu_index))
            var = fixed[0]
            ctype = self._types.of(die_type(var.die))
            return Place(var.addr, ctype, ctype.size)  # type: ignore[arg-type]
        if candidates:
            local = candidates[0]
            if local.function is not None:
                raise SymbolError(f"{name} is a local variable of {local.function}(): it has no fixed address "
                                  "(watch a global or static variable)")  # fmt: skip
            raise SymbolError(f"{name} has no fixed address (optimised out)")
        if name in self._index.functions():
            raise SymbolError(f"{name} is a function, not a variable")
        s = self._symtab.named(name)
        if s is None:
            raise SymbolError(f'No symbol "{name}" in current context.')
        if s.is_text:
            raise SymbolError(f"{name} is a function, not a variable")
        if not s.size:
            raise SymbolError(f"'{name}' has unknown type and no size; cast it to its declared type")
        return Place(s.addr, None, s.size)
