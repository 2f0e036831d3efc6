"""The ELF symbol table as gdb keeps it ("minimal symbols") and the allocated sections, for pc lookups."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class MinSym:
    """A symbol-table entry as gdb keeps it (a "minimal symbol")."""

    addr: int
    size: int
    name: str
    section: int
    is_text: bool
    is_global: bool


class SymbolTable:
    """The ``.symtab`` of one ELF, read on first use and kept sorted by address (Thumb bits cleared)."""

    def __init__(self, elf: Any, thumb: bool, has_dwarf: bool) -> None:
        self._elf = elf
        self._thumb = thumb
        self._has_dwarf = has_dwarf
        self._msyms: list[MinSym] | None = None
        self._addrs: list[int] = []
        self._sections: list[tuple[int, int, int]] = []  # (start, end, index) of allocated sections
        self._code_sections: set[int] = set()
        self._entries: dict[str, int] | None = None  # function name -> entry

    def symbols(self) -> list[MinSym]:
        """Every minimal symbol, sorted by address (sized and global ones last among equals)."""
        if self._msyms is not None:
            return self._msyms
        from elftools.elf.sections import SymbolTableSection

        for index, sec in enumerate(self._elf.iter_sections()):
            if sec["sh_flags"] & 0x2 and sec["sh_size"]:  # SHF_ALLOC
                self._sections.append((sec["sh_addr"], sec["sh_addr"] + sec["sh_size"], index))
                if sec["sh_flags"] & 0x4:  # SHF_EXECINSTR
                    self._code_sections.add(index)
        self._sections.sort()
        syms = []
        symtab = self._elf.get_section_by_name(".symtab")
        if isinstance(symtab, SymbolTableSection):
            for sym in symtab.iter_symbols():
                kind, shndx, name = sym["st_info"]["type"], sym["st_shndx"], sym.name
                if not name or kind in ("STT_SECTION", "STT_FILE") or not isinstance(shndx, int):
                    continue  # gdb keeps no minimal symbol for these; SHN_ABS/UNDEF are strings here
                if name.startswith("$") or name.startswith(".L"):
                    continue  # mapping symbols ($x, $d, $t, $a) and compiler labels
                addr = sym["st_value"]
                is_text = shndx in self._code_sections
                if is_text and self._thumb:
                    addr &= ~1
                name = re.sub(r"\.\d+$", "", name)  # gdb's print name: "digits.0" -> "digits"
                syms.append(MinSym(addr, sym["st_size"], name, shndx, is_text,
                                   sym["st_info"]["bind"] != "STB_LOCAL"))  # fmt: skip
        syms.sort(key=lambda s: (s.addr, s.size != 0, s.is_global))
        self._msyms = syms
        self._addrs = [s.addr for s in syms]
        return syms

    def section_of(self, addr: int) -> int | None:
        """The index of the allocated section holding ``addr``."""
        self.symbols()
        for start, end, index in self._sections:
            if start <= addr < end:
                return index
        return None

    def is_code(self, addr: int) -> bool:
        """Whether ``addr`` is in an executable section."""
        return self.section_of(addr) in self._code_sections

    def at(self, addr: int) -> MinSym | None:
        """gdb's lookup_minimal_symbol_by_pc_section: the symbol before ``addr`` in its section (a sized symbol
        must contain it; zero-sized ones are labels)."""
        syms = self.symbols()
        section = self.section_of(addr)
        if section is None:
            return None
        hi = bisect.bisect_right(self._addrs, addr) - 1
        best_zero = -1
        while hi >= 0:
            s = syms[hi]
            if s.section != section:
                hi -= 1
                continue
            if s.size == 0:
                if best_zero < 0:
                    best_zero = hi
                hi -= 1
                continue
            prev = syms[hi - 1] if hi > 0 else None
            if addr >= s.addr + s.size and prev is not None and prev.size and addr < prev.addr + prev.size:
                hi -= 1
                continue
            break
        if best_zero >= 0 and (hi < 0 or syms[hi].size == 0):
            hi = best_zero
        if hi >= 0 and syms[hi].size and addr >= syms[hi].addr + syms[hi].size:
            if best_zero < 0:
                return None
            hi = best_zero
        return syms[hi] if hi >= 0 else None

    def entry(self, name: str) -> int | None:
        """The address of code symbol ``name`` (sized ones only when DWARF describes the unsized labels)."""
        if self._entries is None:
            self._entries = {}
            for s in self.symbols():
                if s.is_text and (s.size or not self._has_dwarf):
                    self._entries.setdefault(s.name, s.addr)
        return self._entries.get(name)

    def named(self, name: str) -> MinSym | None:
        """The first symbol called ``name``, by address."""
        return next((s for s in self.symbols() if s.name == name), None)
