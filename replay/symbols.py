"""Symbols and DWARF debug information of a guest ELF, for queries answered without gdb (issue 16).

The query engine (``writes EXPR``, ``calls FUNC``, ``value EXPR --at N``...) reads a recording's memory itself;
this module tells it what gdb would: where a watch expression lives and how big it is (:meth:`Symbols.locate`),
how gdb's ``print`` shows its bytes (:meth:`Symbols.format`), which function and source line a pc is in
(:meth:`Symbols.function_at`, :meth:`Symbols.line_at`, as gdb's ``print/a`` and ``info line *PC``), where a
function starts and what its parameters are called, and capstone's text of one instruction.

Everything is read with pyelftools and built lazily, once per table: the symbol table on first use, the DWARF
variable and function index on the first name lookup, a type only when an expression reaches it, a
compilation unit's line table when a pc first falls into it. pc lookups bisect sorted tables.
"""

from __future__ import annotations

import bisect
import io
import logging
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ReadMemory = Callable[[int, int], bytes]

KINDS = ("int", "uint", "bool", "char", "uchar", "float", "pointer", "array", "struct", "union", "enum", "void",
         "func")  # fmt: skip
PRINT_MAX = 200  # gdb's `set print elements` default
REPEAT_THRESHOLD = 10  # gdb's `set print repeats` default


class SymbolError(Exception):
    """An expression or name the ELF cannot answer (unknown name, bad syntax, no debug info): one clear line."""


@dataclass(frozen=True, slots=True)
class Field:
    """A member of a struct or union."""

    name: str  # '' for an anonymous struct or union member
    offset: int  # bytes from the start of the enclosing struct (of the storage holding a bit-field)
    type: CType
    bit_size: int = 0  # a bit-field's width (0: not a bit-field)
    bit_offset: int = 0  # a bit-field's first bit, counted from bit 0 of the byte at ``offset`` (little-endian)


@dataclass(frozen=True, slots=True)
class CType:
    """A C type from DWARF: enough to size a value and print it as gdb does.

    Typedefs and const/volatile qualifiers are resolved (``kind``, ``size`` and the members are the
    underlying type's) but ``name`` is what gdb's ``whatis`` says (``uint32_t``, ``volatile uint8_t [256]``).
    ``kind`` is one of :data:`KINDS`; ``func`` is a function type, reached only through a function pointer.
    """

    kind: str
    name: str
    size: int
    count: int = 0  # array: number of elements (0: unknown bound)
    element: CType | None = None  # array: the element type
    fields: tuple[Field, ...] = ()  # struct, union
    enumerators: tuple[tuple[str, int], ...] = ()  # enum, in declaration order
    flag_enum: bool = False  # enum whose values gdb decomposes as bit flags, "(A | B)"
    _pointee: Callable[[], CType] | None = field(default=None, compare=False, repr=False)  # lazy: types recurse

    @property
    def target(self) -> CType | None:
        """A pointer's pointee or an array's element type (None for the other kinds)."""
        if self.kind == "array":
            return self.element
        return self._pointee() if self._pointee is not None else None

    @property
    def is_signed(self) -> bool:
        """Whether values of this type are read as two's complement (an enum is when a value is negative)."""
        if self.kind == "enum":
            return any(value < 0 for _, value in self.enumerators)
        return self.kind in ("int", "char")

    def member(self, name: str) -> tuple[int, Field] | None:
        """The member called ``name`` (looked for inside anonymous members too) and its byte offset."""
        for f in self.fields:
            if f.name == name:
                return f.offset, f
            if not f.name and f.type.kind in ("struct", "union"):
                found = f.type.member(name)
                if found is not None:
                    return f.offset + found[0], found[1]
        return None


VOID = CType("void", "void", 1)


@dataclass(frozen=True, slots=True)
class Location:
    """Where a watch expression lives: ``size`` bytes at ``addr``, of ``type`` (None: raw, untyped bytes)."""

    expr: str
    addr: int
    size: int
    type: CType | None


@dataclass(frozen=True, slots=True)
class SourceLine:
    """A source line: ``file`` as the DWARF line table names it (what gdb's ``info line`` shows)."""

    file: str
    line: int


# -- capstone -----------------------------------------------------------------------------------------------
def _capstone_modes() -> dict[str, tuple[int, int]]:
    """Architecture name (as machine.arch names it) -> capstone (arch, mode): gdbstub/cli/run.py's Tracer's
    mapping, plus Thumb for the M profile."""
    import capstone as cs

    return {
        "riscv32": (cs.CS_ARCH_RISCV, cs.CS_MODE_RISCV32 | cs.CS_MODE_RISCVC),
        "riscv64": (cs.CS_ARCH_RISCV, cs.CS_MODE_RISCV64 | cs.CS_MODE_RISCVC),
        "aarch64": (cs.CS_ARCH_ARM64, cs.CS_MODE_ARM),
        "armv7m": (cs.CS_ARCH_ARM, cs.CS_MODE_THUMB | cs.CS_MODE_MCLASS),
    }


# -- expressions ----------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(0[xX][0-9a-fA-F]+|\d+)[uUlL]*|([A-Za-z_$][\w$]*)|(->|::|[.\[\]()*-]))")
_TYPE_WORDS = {"unsigned", "signed", "short", "long", "int", "char", "float", "double", "void", "_Bool",
               "struct", "union", "enum", "const", "volatile"}  # fmt: skip
_INT_WORDS = {"unsigned", "signed", "short", "long", "int", "char"}


def _tokens(expr: str) -> list[tuple[str, Any]]:
    """('num', int) | ('id', str) | ('op', str) tokens of a watch expression."""
    out: list[tuple[str, Any]] = []
    pos, text = 0, expr.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise SymbolError(f"cannot parse {expr!r}: unexpected {text[pos:].strip()[:10]!r}")
        number, ident, op = m.groups()
        if number:
            try:
                out.append(("num", int(number, 8) if re.fullmatch(r"0\d+", number) else int(number, 0)))
            except ValueError:
                raise SymbolError(f"cannot parse {expr!r}: invalid number {number!r}") from None
        else:
            out.append(("id", ident) if ident else ("op", op))
        pos = m.end()
    return out


def canonical_base_name(name: str) -> str:
    """gdb 13's spelling of a C base type: GCC's ``long unsigned int`` is gdb's ``unsigned long``."""
    words = name.split()
    if words and set(words) <= _INT_WORDS:
        unsigned, longs = "unsigned" in words, words.count("long")
        if "char" in words:
            return "unsigned char" if unsigned else "signed char" if "signed" in words else "char"
        core = "short" if "short" in words else "long long" if longs == 2 else "long" if longs == 1 else "int"
        return f"unsigned {core}" if unsigned else core
    if sorted(words) == ["__int128", "unsigned"]:
        return "unsigned __int128"
    return name


@dataclass(frozen=True, slots=True)
class _Place:
    """An lvalue while evaluating: bytes at ``addr`` of ``type`` (None: untyped, ``size`` bytes)."""

    addr: int
    type: CType | None
    size: int


@dataclass(frozen=True, slots=True)
class _Value:
    """An rvalue while evaluating: an integer literal (type None) or a cast to a pointer type."""

    value: int
    type: CType | None


# -- gdb's value printing ----------------------------------------------------------------------------------------
_NAMED_ESCAPES = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}


def _emit_char(byte: int, quoter: str) -> str:
    """gdb's print_wchar for one byte of a C string in the C locale (bytes past 0x7f are not printable)."""
    if 0x20 <= byte < 0x7F:
        ch = chr(byte)
        return "\\" + ch if ch in ("\\", quoter) else ch
    return _NAMED_ESCAPES.get(byte) or f"\\{byte:03o}"


def format_string(data: bytes, force_ellipses: bool = False) -> str:
    """gdb's generic_printstr for a C char array or string: runs longer than 10 become ``'c' <repeats N
    times>``, at most 200 characters (then ``...``), a final NUL dropped."""
    length = len(data)
    if not force_ellipses and length and data[-1] == 0:
        length -= 1
    if length == 0:
        return '""'
    groups: list[tuple[int, int]] = []  # (byte, repeat count)
    printed, i = 0, 0
    while printed < PRINT_MAX and i < length:
        j = i + 1
        while j < length and data[j] == data[i]:
            j += 1
        groups.append((data[i], j - i))
        printed += j - i
        i = j
    finished = i >= length
    out, last = [], "start"
    for byte, count in groups:
        if count > REPEAT_THRESHOLD:
            if last == "single":
                out.append('"')
            if last != "start":
                out.append(", ")
            out.append(f"'{_emit_char(byte, chr(34))}' <repeats {count} times>")
            last = "repeat"
        else:
            if last != "single":
                if last != "start":
                    out.append(", ")
                out.append('"')
            out.append(_emit_char(byte, '"') * count)
            last = "single"
    if last == "single":
        out.append('"')
    if force_ellipses or not finished:
        out.append("...")
    return "".join(out)


def format_char(value: int, byte: int) -> str:
    """gdb's ``print`` of a char: the number and the character, ``65 'A'``, ``0 '\\000'``."""
    return f"{value} '{_emit_char(byte, chr(39))}'"


_FLOAT_FORMATS = {4: (8, 23, 9), 8: (11, 52, 17), 16: (15, 112, 36)}  # size -> exponent, mantissa bits, digits


def format_float(data: bytes) -> str:
    """gdb's ``print`` of an IEEE float (4, 8 or 16 bytes): ``%.9g``, ``%.17g`` or ``%.36g`` (DECIMAL_DIG of
    the format), ``inf``, ``nan(0xMANTISSA)``."""
    size = len(data)
    exp_bits, man_bits, digits = _FLOAT_FORMATS[size]
    bits = int.from_bytes(data, "little")
    sign = "-" if bits >> (size * 8 - 1) else ""
    exponent = (bits >> man_bits) & ((1 << exp_bits) - 1)
    mantissa = bits & ((1 << man_bits) - 1)
    if exponent == (1 << exp_bits) - 1:
        if mantissa == 0:
            return f"{sign}inf"
        first = man_bits % 32 or 32  # gdb's floatformat_mantissa: the top chunk with %lx, then %08lx each
        text = f"{mantissa >> (man_bits - first):x}"
        for shift in range(man_bits - first - 32, -1, -32):
            text += f"{(mantissa >> shift) & 0xFFFF_FFFF:08x}"
        return f"{sign}nan(0x{text})"
    if size in (4, 8):
        value = struct.unpack("<f" if size == 4 else "<d", data)[0]
        return f"%.{digits}g" % value
    return _format_g(exponent, mantissa, man_bits, exp_bits, digits, sign)


def _format_g(exponent: int, mantissa: int, man_bits: int, exp_bits: int, digits: int, sign: str) -> str:
    """C's ``%.Ng`` of a binary float too wide for Python floats (IEEE quad), exactly."""
    bias = (1 << (exp_bits - 1)) - 1
    if exponent == 0:
        significand, power = mantissa, 1 - bias - man_bits
    else:
        significand, power = mantissa | (1 << man_bits), exponent - bias - man_bits
    if significand == 0:
        return f"{sign}0"
    with localcontext() as ctx:
        ctx.prec = 12000
        exact = Decimal(significand) * (Decimal(2) ** power)
        ctx.prec = digits
        rounded = +exact  # round half even to `digits` significant digits, as glibc's printf
        sig, exp10 = rounded.as_tuple().digits, rounded.adjusted()
    text = "".join(map(str, sig)).ljust(digits, "0")
    if -4 <= exp10 < digits:
        if exp10 >= 0:
            whole, frac = text[: exp10 + 1], text[exp10 + 1 :]
        else:
            whole, frac = "0", "0" * (-exp10 - 1) + text
        frac = frac.rstrip("0")
        return f"{sign}{whole}{'.' + frac if frac else ''}"
    frac = text[1:].rstrip("0")
    return f"{sign}{text[0]}{'.' + frac if frac else ''}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"


# -- the ELF ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _MinSym:
    """A symbol-table entry as gdb keeps it (a "minimal symbol")."""

    addr: int
    size: int
    name: str
    section: int
    is_text: bool
    is_global: bool


@dataclass(slots=True)
class _Variable:
    name: str
    addr: int | None  # None: no fixed address (a local, or optimised out)
    die: Any  # the DIE with DW_AT_type
    cu_index: int
    external: bool
    function: str | None  # the function it is local to (static locals have addresses)


@dataclass(slots=True)
class _Function:
    name: str
    die: Any
    ranges: list[tuple[int, int]]  # [low, high) pairs
    entry: int | None


@dataclass(slots=True)
class _LineTable:
    """One compilation unit's line table, per source file as gdb builds it (buildsym's subfiles)."""

    comp_dir: str
    subfiles: list[tuple[str, list[int], list[tuple[int, int, bool]]]]  # (name, pcs, [(pc, line, is_stmt)])


_DW_ATE = {2: "bool", 4: "float", 5: "int", 6: "int", 7: "uint", 8: "uint", 0x10: "uint"}
_QUALIFIERS = {"DW_TAG_const_type": "const", "DW_TAG_volatile_type": "volatile", "DW_TAG_restrict_type": "restrict",
               "DW_TAG_atomic_type": "_Atomic"}  # fmt: skip
_QUALIFIER_ORDER = ("const", "volatile", "restrict", "_Atomic")  # as gdb's c_type_print_modifier prints them
_NAMED_TAGS = {"DW_TAG_structure_type": "struct", "DW_TAG_union_type": "union", "DW_TAG_enumeration_type": "enum",
               "DW_TAG_class_type": "class"}  # fmt: skip
# gdb's builtin C types, for casts naming a base type the DWARF does not describe: name -> (kind, size or 0 for
# the address size)
_BUILTIN = {"char": ("uchar", 1), "signed char": ("char", 1), "unsigned char": ("uchar", 1), "short": ("int", 2),
            "unsigned short": ("uint", 2), "int": ("int", 4), "unsigned int": ("uint", 4), "long": ("int", 0),
            "unsigned long": ("uint", 0), "long long": ("int", 8), "unsigned long long": ("uint", 8),
            "float": ("float", 4), "double": ("float", 8), "_Bool": ("bool", 1)}  # fmt: skip


def _attr(die: Any, name: str) -> Any:
    attr = die.attributes.get(name)
    return None if attr is None else attr.value


def _name(die: Any) -> str | None:
    """A DIE's name, also through DW_AT_abstract_origin / DW_AT_specification."""
    for _ in range(4):
        value = _attr(die, "DW_AT_name")
        if value is not None:
            return value.decode(errors="replace")
        for ref in ("DW_AT_abstract_origin", "DW_AT_specification"):
            if ref in die.attributes:
                die = die.get_DIE_from_attribute(ref)
                break
        else:
            return None
    return None


def _subrange_count(die: Any) -> int | None:
    """Elements in one dimension of an array (DW_AT_count, or the bounds); None when unknown (no bound, a VLA)."""
    for attr in ("DW_AT_count", "DW_AT_upper_bound"):
        value = die.attributes.get(attr)
        if value is not None and value.form.startswith(("DW_FORM_data", "DW_FORM_udata", "DW_FORM_sdata",
                                                         "DW_FORM_implicit_const")):  # fmt: skip
            number = value.value
            size = {"DW_FORM_data4": 32, "DW_FORM_data8": 64}.get(value.form)
            if size and number == (1 << size) - 1:  # GCC writes int a[0]'s upper bound -1 as an unsigned data4
                number = -1
            if attr == "DW_AT_count":
                return max(number, 0)
            return max(number - (_attr(die, "DW_AT_lower_bound") or 0) + 1, 0)
    return None


def _type_die(die: Any) -> Any:
    """The DIE's DW_AT_type (through its specification or abstract origin); None for void."""
    for _ in range(4):
        if "DW_AT_type" in die.attributes:
            return die.get_DIE_from_attribute("DW_AT_type")
        for ref in ("DW_AT_specification", "DW_AT_abstract_origin"):
            if ref in die.attributes:
                die = die.get_DIE_from_attribute(ref)
                break
        else:
            return None
    return None


class Symbols:
    """The symbols and DWARF of one guest ELF; see the module docstring. Build with :meth:`from_elf`."""

    def __init__(self, path: Path, data: bytes, source_dirs: Sequence[Path] = ()) -> None:
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile

        self.path = path
        self.source_dirs = tuple(Path(d) for d in source_dirs)
        try:
            self._elf = ELFFile(io.BytesIO(data))
            self.machine = self._elf["e_machine"]
            self.address_size = self._elf.elfclass // 8
            self._has_dwarf = self._elf.has_dwarf_info()
        except (ELFError, ValueError, OSError) as exc:
            raise SymbolError(f"{path} is not a valid ELF file: {exc}") from exc
        self._thumb = self.machine == "EM_ARM"
        self._dwarf: Any = None
        self._msyms: list[_MinSym] | None = None
        self._msym_addrs: list[int] = []
        self._entries: dict[str, int] | None = None  # function name -> entry, from the symbol table
        self._sections: list[tuple[int, int, int]] | None = None  # (start, end, index) of allocated sections
        self._code_sections: set[int] = set()
        self._variables: dict[str, list[_Variable]] | None = None
        self._functions: dict[str, list[_Function]] = {}
        self._named_types: dict[str, Any] = {}
        self._main_cu: int | None = None
        self._types: dict[int, CType] = {}
        self._cus: list[Any] = []
        self._line_tables: dict[int, _LineTable] = {}
        self._programs: dict[int, Any] = {}  # CU index -> its line program
        self._aranges: Any = None  # .debug_aranges (False: none)
        self._cu_by_offset: dict[int, int] = {}
        self._cu_function_ranges: dict[int, tuple[list[int], list[tuple[int, int, str, int]]]] = {}
        self._sequences: list[tuple[int, int, int]] | None = None  # (start, end, cu index) of line sequences
        self._sequence_starts: list[int] = []
        self._line_cache: dict[int, SourceLine | None] = {}
        self._file_dirs: dict[str, str] = {}  # subfile name -> its CU's comp_dir
        self._disassemblers: dict[str, Any] = {}
        self._source_cache: dict[Path, list[str] | None] = {}

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

    # -- the symbol table ----------------------------------------------------------------------------------------
    def _load_symtab(self) -> list[_MinSym]:
        if self._msyms is not None:
            return self._msyms
        from elftools.elf.sections import SymbolTableSection

        sections = []
        text_sections = set()
        for index, sec in enumerate(self._elf.iter_sections()):
            if sec["sh_flags"] & 0x2 and sec["sh_size"]:  # SHF_ALLOC
                sections.append((sec["sh_addr"], sec["sh_addr"] + sec["sh_size"], index))
                if sec["sh_flags"] & 0x4:  # SHF_EXECINSTR
                    text_sections.add(index)
        self._sections = sorted(sections)
        self._code_sections = text_sections
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
                is_text = shndx in text_sections
                if is_text and self._thumb:
                    addr &= ~1
                name = re.sub(r"\.\d+$", "", name)  # gdb's print name: "digits.0" -> "digits"
                syms.append(_MinSym(addr, sym["st_size"], name, shndx, is_text,
                                    sym["st_info"]["bind"] != "STB_LOCAL"))  # fmt: skip
        syms.sort(key=lambda s: (s.addr, s.size != 0, s.is_global))
        self._msyms = syms
        self._msym_addrs = [s.addr for s in syms]
        return syms

    def _section_of(self, addr: int) -> int | None:
        self._load_symtab()
        assert self._sections is not None
        for start, end, index in self._sections:
            if start <= addr < end:
                return index
        return None

    def _msymbol(self, addr: int) -> _MinSym | None:
        """gdb's lookup_minimal_symbol_by_pc_section: the symbol before ``addr`` in its section (a sized symbol
        must contain it; zero-sized ones are labels)."""
        syms = self._load_symtab()
        section = self._section_of(addr)
        if section is None:
            return None
        hi = bisect.bisect_right(self._msym_addrs, addr) - 1
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

    def _symbolic(self, addr: int) -> tuple[str, int, bool] | None:
        """(name, offset, is code) of gdb's build_address_symbolic: the DWARF function containing ``addr``,
        unless a symbol-table entry starts exactly there and the function does not; else the entry before it
        (zero-sized data symbols are not used). Code addresses lose the Thumb bit first."""
        msym = self._msymbol(addr)
        plain = msym is not None and msym.is_text and "." not in msym.name and not self._thumb
        if plain and msym.addr <= addr < msym.addr + msym.size:  # type: ignore[union-attr]
            # A plain function symbol holds addr: DWARF names the same function with the same entry, so big
            # guests need not have their DWARF read for this. Not so for a clone (DWARF's f is f.constprop) nor
            # on Thumb (an assembly function's DWARF entry may keep the Thumb bit, and gdb counts from it).
            return msym.name, addr - msym.addr, True  # type: ignore[union-attr]
        func = self._dwarf_function_at(addr) if self._section_of(addr) in self._code_sections else None
        if msym is not None and msym.size == 0 and not msym.is_text:
            msym = None
        if func is not None and (msym is None or msym.addr != addr or func[1] == addr):
            return func[0], (addr & ~1 if self._thumb else addr) - func[1], True
        if msym is None:
            return None
        if msym.is_text and self._thumb:
            addr &= ~1
        return msym.name, addr - msym.addr, msym.is_text

    def symbolize(self, addr: int) -> tuple[str, int] | None:
        """gdb's ``<name+offset>`` for an address, as (name, offset); None when gdb shows none."""
        found = self._symbolic(addr)
        return None if found is None else found[:2]

    def function_at(self, pc: int) -> str | None:
        """The function containing ``pc`` as gdb names it in ``print/a PC``: the DWARF function (not an
        inlined one) whose ranges hold it, else the symbol-table code symbol before it (assembly labels too)."""
        found = self._symbolic(pc)
        return found[0] if found is not None and found[2] else None

    def function_entry(self, name: str) -> int:
        """The address of the first instruction of function ``name`` (Thumb bit cleared)."""
        if self._entries is None:
            self._entries = {}
            for s in self._load_symtab():
                if s.is_text and (s.size or not self._has_dwarf):
                    self._entries.setdefault(s.name, s.addr)
        if name in self._entries:
            return self._entries[name]
        for func in self._dwarf_functions().get(name, []):
            if func.entry is not None:
                return func.entry & ~1 if self._thumb else func.entry
        raise SymbolError(f'no function named "{name}" in {self.path.name}')

    def parameters(self, name: str) -> list[str]:
        """The formal parameter names of function ``name`` from DWARF ([] if none known): the out-of-line
        instance's, as gdb lists them (a clone that dropped parameters lists fewer), else the declaration's."""
        funcs = sorted(self._dwarf_functions().get(name, []), key=lambda f: f.entry is None)
        for func in funcs:
            names = [_name(child) for child in func.die.iter_children() if child.tag == "DW_TAG_formal_parameter"]
            if func.entry is not None or all(names):
                return [n or "" for n in names]
        return []

    # -- DWARF: variables and functions --------------------------------------------------------------------------
    def _dwarf_info(self) -> Any:
        if self._dwarf is None:
            if not self._has_dwarf:
                raise SymbolError(f"{self.path.name} has no debug info (DWARF): build it with -g")
            from elftools.common.exceptions import ELFError

            try:
                self._dwarf = self._elf.get_dwarf_info()
                self._cus = list(self._dwarf.iter_CUs())
            except (ELFError, ValueError, KeyError, IndexError) as exc:
                raise SymbolError(f"{self.path.name}: unreadable debug info (DWARF): {exc}") from exc
        return self._dwarf

    def _dwarf_functions(self) -> dict[str, list[_Function]]:
        if self._has_dwarf:
            self._index()
        return self._functions

    def _index(self) -> dict[str, list[_Variable]]:
        """One walk over every CU's DIEs: globals, statics, locals, functions, named types."""
        if self._variables is not None:
            return self._variables
        self._dwarf_info()
        variables: dict[str, list[_Variable]] = {}
        for cu_index, cu in enumerate(self._cus):
            top = cu.get_top_DIE()
            for die in top.iter_children():
                tag = die.tag
                if tag in ("DW_TAG_typedef", "DW_TAG_base_type") or tag in _NAMED_TAGS:
                    name = _name(die)
                    if name is not None and not _attr(die, "DW_AT_declaration"):
                        key = (
                            canonical_base_name(name)
                            if tag == "DW_TAG_base_type"
                            else (name if tag == "DW_TAG_typedef" else f"{_NAMED_TAGS[tag]} {name}")
                        )
                        self._named_types.setdefault(key, die)
            for die, function in self._walk(top, None):
                if die.tag == "DW_TAG_subprogram":
                    func = self._function(die, cu)
                    if func is not None:
                        self._functions.setdefault(func.name, []).append(func)
                        if func.name == "main" and func.entry is not None:
                            self._main_cu = cu_index
                    continue
                var = self._variable(die, cu_index, function)
                if var is not None:
                    variables.setdefault(var.name, []).append(var)
        self._variables = variables
        return variables

    def _walk(self, die: Any, function: str | None) -> Iterator[tuple[Any, str | None]]:
        for child in die.iter_children():
            tag = child.tag
            if tag in ("DW_TAG_variable", "DW_TAG_formal_parameter"):
                yield child, function
            elif tag == "DW_TAG_subprogram":
                yield child, function
                yield from self._walk(child, _name(child) or function)
            elif tag in ("DW_TAG_lexical_block", "DW_TAG_inlined_subroutine"):
                yield from self._walk(child, function)

    def _function(self, die: Any, cu: Any) -> _Function | None:
        name = _name(die)
        if name is None or _attr(die, "DW_AT_declaration"):
            return None
        ranges = self._die_ranges(die, cu)
        return _Function(name, die, ranges, ranges[0][0] if ranges else None)  # gdb's BLOCK_ENTRY_PC

    def _die_ranges(self, die: Any, cu: Any) -> list[tuple[int, int]]:
        low = _attr(die, "DW_AT_low_pc")
        if low is not None and "DW_AT_high_pc" in die.attributes:
            high_attr = die.attributes["DW_AT_high_pc"]
            high = high_attr.value if high_attr.form == "DW_FORM_addr" else low + high_attr.value
            return [(low, high)] if high > low else []
        if "DW_AT_ranges" in die.attributes:
            try:
                rlists = self._dwarf.range_lists()
                entries = rlists.get_range_list_at_offset(die.attributes["DW_AT_ranges"].value, cu=cu)
            except Exception as exc:  # pyelftools raises various errors on unusual range lists
                log.debug("range list of %s unreadable: %s", _name(die), exc)
                return []
            base = _attr(cu.get_top_DIE(), "DW_AT_low_pc") or 0
            out = []
            for entry in entries:
                if hasattr(entry, "base_address") and not hasattr(entry, "begin_offset"):
                    base = entry.base_address
                    continue
                begin, end = entry.begin_offset, entry.end_offset
                if not getattr(entry, "is_absolute", False):
                    begin, end = begin + base, end + base
                if end > begin:
                    out.append((begin, end))
            return out
        return []

    def _variable(self, die: Any, cu_index: int, function: str | None) -> _Variable | None:
        name = _name(die)
        if name is None or _attr(die, "DW_AT_declaration"):
            return None
        addr = None
        location = die.attributes.get("DW_AT_location")
        if location is not None and location.form in ("DW_FORM_exprloc", "DW_FORM_block1", "DW_FORM_block"):
            from elftools.dwarf.dwarf_expr import DWARFExprParser

            ops = DWARFExprParser(die.cu.structs).parse_expr(location.value)
            if len(ops) == 1 and ops[0].op_name == "DW_OP_addr":
                addr = ops[0].args[0]
        external = bool(_attr(die, "DW_AT_external"))
        if not external and "DW_AT_specification" in die.attributes:
            external = bool(_attr(die.get_DIE_from_attribute("DW_AT_specification"), "DW_AT_external"))
        local_to = function if die.tag == "DW_TAG_formal_parameter" or function is not None else None
        return _Variable(name, addr, die, cu_index, external, local_to)

    def _dwarf_function_at(self, pc: int) -> tuple[str, int] | None:
        """(name, entry) of the DWARF function whose ranges contain ``pc``: only the CU holding ``pc`` is read."""
        if not self._has_dwarf:
            return None
        cu_index = self._cu_index_at(pc)
        if cu_index is None:
            return None
        lows, ranges = self._cu_functions(cu_index)
        i = bisect.bisect_right(lows, pc) - 1
        while i >= 0:  # ranges nest only in odd cases (a function inside another's ranges): the innermost wins
            low, high, name, entry = ranges[i]
            if low <= pc < high:
                return name, entry
            i -= 1
            if pc - low > 1 << 24:
                break
        return None

    def _cu_functions(self, cu_index: int) -> tuple[list[int], list[tuple[int, int, str, int]]]:
        """One CU's out-of-line functions as sorted (low, high, name, entry) ranges."""
        cached = self._cu_function_ranges.get(cu_index)
        if cached is not None:
            return cached
        cu = self._cus[cu_index]
        ranges = []
        pending = list(cu.get_top_DIE().iter_children())
        while pending:
            die = pending.pop()
            if die.tag == "DW_TAG_subprogram":
                func = self._function(die, cu)
                if func is not None:
                    ranges += [(low, high, func.name, func.entry or low) for low, high in func.ranges]
            elif die.tag in ("DW_TAG_namespace", "DW_TAG_module"):
                pending += list(die.iter_children())
        ranges.sort()
        result = ([r[0] for r in ranges], ranges)
        self._cu_function_ranges[cu_index] = result
        return result

    def _cu_index_at(self, pc: int) -> int | None:
        """The CU whose code holds ``pc``: from .debug_aranges when it says, else from the line tables."""
        self._dwarf_info()
        if self._aranges is None:
            try:
                self._aranges = self._dwarf.get_aranges() or False
            except Exception as exc:  # a malformed .debug_aranges: the line tables still answer
                log.debug("%s: .debug_aranges unreadable: %s", self.path.name, exc)
                self._aranges = False
            self._cu_by_offset = {cu.cu_offset: i for i, cu in enumerate(self._cus)}
        if self._aranges:
            offset = self._aranges.cu_offset_at_addr(pc)
            if offset is not None and offset in self._cu_by_offset:
                return self._cu_by_offset[offset]
        self._load_sequences()
        assert self._sequences is not None
        i = bisect.bisect_right(self._sequence_starts, pc) - 1
        while i >= 0:
            start, end, index = self._sequences[i]
            if start <= pc < end:
                return index
            i -= 1
            if pc - start > 1 << 24:
                break
        return None

    # -- DWARF: types ----------------------------------------------------------------------------------------------
    def _ctype(self, die: Any) -> CType:
        """The CType of a type DIE (None: void), cached by DIE offset."""
        if die is None:
            return VOID
        cached = self._types.get(die.offset)
        if cached is not None:
            return cached
        result = self._build_type(die)
        self._types[die.offset] = result
        return result

    def _build_type(self, die: Any) -> CType:
        tag = die.tag
        name = self._spell(die, "")
        size = _attr(die, "DW_AT_byte_size")
        if tag == "DW_TAG_base_type":
            size = size or 0
            kind = _DW_ATE.get(_attr(die, "DW_AT_encoding"), "uint")
            if kind in ("int", "uint") and size == 1:
                kind = "char" if kind == "int" else "uchar"  # gdb prints every 1-byte integer as a character
            return CType(kind, name, size)
        if tag == "DW_TAG_typedef" or tag in _QUALIFIERS:
            return replace(self._ctype(_type_die(die)), name=name)
        if tag in ("DW_TAG_pointer_type", "DW_TAG_reference_type", "DW_TAG_rvalue_reference_type"):
            target = _type_die(die)
            return CType("pointer", name, size or die.cu["address_size"], _pointee=lambda: self._ctype(target))
        if tag == "DW_TAG_array_type":
            return self._array(die, name)
        if tag in ("DW_TAG_structure_type", "DW_TAG_union_type", "DW_TAG_class_type"):
            kind = "union" if tag == "DW_TAG_union_type" else "struct"
            # The CType is cached before its members are built: a member may point back to it.
            placeholder = CType(kind, name, size or 0)
            self._types[die.offset] = placeholder
            fields = tuple(self._fields(die))
            return replace(placeholder, fields=fields)
        if tag == "DW_TAG_enumeration_type":
            values = []
            for child in die.iter_children():
                if child.tag == "DW_TAG_enumerator":
                    values.append((_name(child) or "", _attr(child, "DW_AT_const_value") or 0))
            return CType("enum", name, size or 4, enumerators=tuple(values), flag_enum=self._is_flag_enum(values))
        if tag == "DW_TAG_subroutine_type":
            return CType("func", name, 1)
        if tag == "DW_TAG_unspecified_type":
            return CType("void", name, 1)
        return CType("void", name, size or 1)

    @staticmethod
    def _is_flag_enum(values: list[tuple[str, int]]) -> bool:
        """gdb 13's flag enum: every value non-negative with at most one bit set, no two sharing a bit."""
        mask = 0
        for _, value in values:
            if value < 0 or bin(value).count("1") > 1 or mask & value:
                return False
            mask |= value
        return True

    def _array(self, die: Any, name: str) -> CType:
        dims = [_subrange_count(c) for c in die.iter_children() if c.tag == "DW_TAG_subrange_type"] or [None]
        element = self._ctype(_type_die(die))
        # Inner dimensions first: int a[2][3] is an array of 2 arrays of 3 ints.
        for depth in range(len(dims) - 1, 0, -1):
            suffix = "".join(f"[{d}]" if d is not None else "[]" for d in dims[depth:])
            inner_name = element.name + ("" if element.name.endswith("*") else " ") + suffix
            count = dims[depth] or 0
            element = CType("array", inner_name, element.size * count, count, element)
        count = dims[0] or 0
        return CType("array", name, element.size * count, count, element)

    def _fields(self, die: Any) -> Iterator[Field]:
        from elftools.dwarf.dwarf_expr import DWARFExprParser

        for child in die.iter_children():
            if child.tag != "DW_TAG_member" or _attr(child, "DW_AT_external"):
                continue
            ftype = self._ctype(_type_die(child))
            loc = child.attributes.get("DW_AT_data_member_location")
            offset = 0
            if loc is not None:
                if isinstance(loc.value, int):
                    offset = loc.value
                else:
                    ops = DWARFExprParser(child.cu.structs).parse_expr(loc.value)
                    offset = sum(op.args[0] for op in ops if op.op_name == "DW_OP_plus_uconst")
            bit_size = _attr(child, "DW_AT_bit_size") or 0
            bit_offset = 0
            if bit_size:
                data_bit_offset = _attr(child, "DW_AT_data_bit_offset")
                if data_bit_offset is not None:
                    offset, bit_offset = data_bit_offset // 8, data_bit_offset % 8
                else:  # DWARF 2-4: DW_AT_bit_offset counts from the storage unit's most significant bit
                    storage = _attr(child, "DW_AT_byte_size") or ftype.size
                    first = storage * 8 - (_attr(child, "DW_AT_bit_offset") or 0) - bit_size
                    offset, bit_offset = offset + first // 8, first % 8
            yield Field(_name(child) or "", offset, ftype, bit_size, bit_offset)

    def _spell(self, die: Any, inner: str, outer_quals: frozenset[str] = frozenset()) -> str:
        """gdb's C spelling of a type with a declarator ``inner`` (c_print_type): ``char (*)[16]``.
        ``outer_quals`` are qualifiers of an enclosing array type: C gives them to its elements."""

        def join(base: str, decl: str) -> str:
            return f"{base} {decl}" if decl else base

        quals = set(outer_quals)
        while die is not None and die.tag in _QUALIFIERS:
            quals.add(_QUALIFIERS[die.tag])
            die = _type_die(die)
        if quals:
            if die is not None and die.tag == "DW_TAG_array_type":
                pass  # below, to the elements
            elif die is not None and die.tag == "DW_TAG_pointer_type":
                return self._spell_pointer(die, inner, [q for q in _QUALIFIER_ORDER if q in quals])
            else:
                return " ".join(q for q in _QUALIFIER_ORDER if q in quals) + " " + self._spell(die, inner)
        if die is None:
            return join("void", inner)
        tag = die.tag
        if tag == "DW_TAG_pointer_type":
            return self._spell_pointer(die, inner, [])
        if tag in ("DW_TAG_reference_type", "DW_TAG_rvalue_reference_type"):
            return self._spell(_type_die(die), "&" + inner)
        if tag == "DW_TAG_array_type":
            counts = [_subrange_count(c) for c in die.iter_children() if c.tag == "DW_TAG_subrange_type"]
            dims = "".join(f"[{c}]" if c is not None else "[]" for c in counts)
            return self._spell(_type_die(die), inner + (dims or "[]"), frozenset(quals))
        if tag == "DW_TAG_subroutine_type":
            params = []
            for child in die.iter_children():
                if child.tag == "DW_TAG_formal_parameter":
                    params.append(self._spell(_type_die(child), ""))
                elif child.tag == "DW_TAG_unspecified_parameters":
                    params.append("...")
            if not params:
                params = ["void"] if _attr(die, "DW_AT_prototyped") else []
            return self._spell(_type_die(die), f"{inner}({', '.join(params)})")
        if tag == "DW_TAG_base_type":
            return join(canonical_base_name(_name(die) or "?"), inner)
        if tag in _NAMED_TAGS:
            return join(f"{_NAMED_TAGS[tag]} {_name(die) or '{...}'}", inner)
        return join(_name(die) or "void", inner)

    def _spell_pointer(self, die: Any, inner: str, quals: list[str]) -> str:
        decl = "*" + "".join(" " + q for q in quals)
        if inner:
            decl += (" " if quals else "") + inner
        target = _type_die(die)
        if target is not None and target.tag in ("DW_TAG_array_type", "DW_TAG_subroutine_type"):
            decl = f"({decl})"
        return self._spell(target, decl)

    def lookup_type(self, name: str) -> CType:
        """The type a cast names: ``uint32_t``, ``struct probe``, ``unsigned long``, ``int *``."""
        text = " ".join(name.replace("*", " * ").split())
        stars = text.count("*")
        words = [w for w in text.replace("*", " ").split() if w not in ("const", "volatile")]
        base = self._base_type(" ".join(words))
        for _ in range(stars):
            pointee = base
            base = CType("pointer", f"{pointee.name} *" if not pointee.name.endswith("*") else f"{pointee.name}*",
                         self.address_size, _pointee=lambda p=pointee: p)  # fmt: skip
        return base

    def _is_type_name(self, name: str) -> bool:
        """Whether ``name`` is a typedef or base type the DWARF describes (a cast, not a variable)."""
        if not self._has_dwarf:
            return False
        self._index()
        return name in self._named_types and name not in (self._variables or {})

    def _base_type(self, name: str) -> CType:
        if not self._has_dwarf:
            raise SymbolError(f"{self.path.name} has no debug info (DWARF): no type {name!r} to cast to")
        self._index()
        if name == "void":
            return VOID
        words = name.split()
        key = name
        if words and words[0] in ("struct", "union", "enum"):
            key = " ".join(words[:2])
        elif set(words) <= _INT_WORDS:
            key = canonical_base_name(name)
        die = self._named_types.get(key)
        if die is not None:
            return self._ctype(die)
        if key in _BUILTIN:
            kind, size = _BUILTIN[key]
            return CType(kind, key, size or self.address_size)
        if words and words[0] in ("struct", "union", "enum") and len(words) == 2:
            raise SymbolError(f"No {words[0]} type named {words[1]}.")
        raise SymbolError(f'No symbol "{name}" in current context.')

    # -- locate ----------------------------------------------------------------------------------------------------
    def locate(self, expr: str, read_memory: ReadMemory | None = None) -> Location:
        """Where the watch expression ``expr`` lives: ``NAME``, ``.field``, ``[i]``, ``->field``, ``*PTR``,
        ``*(TYPE *)ADDR``, ``*(char (*)[N])ADDR`` (raw bytes: type None), any chain of them. Globals and statics
        only. A dereference reads the pointer with ``read_memory(addr, size)`` (SymbolError without it)."""
        text = expr.strip()
        if not text:
            raise SymbolError("empty expression")
        parser = _Parser(self, text, read_memory)
        result = parser.parse()
        if not isinstance(result, _Place):
            raise SymbolError(f"{text!r} is a value, not an object in memory")
        if result.type is not None and result.type.kind in ("void", "func"):
            raise SymbolError(f"{text!r} has type {result.type.name}: nothing to watch")
        if result.size <= 0:
            raise SymbolError(f"{text!r} has no size (an incomplete type or an array without bounds)")
        return Location(text, result.addr, result.size, result.type)

    def variables(self) -> list[str]:
        """The global and file-scope static variables with an address in the DWARF: those gdb's ``info
        variables`` lists (a function's static variable is ``FUNCTION::NAME``)."""
        if not self._has_dwarf:
            return []
        return sorted(
            name
            for name, found in self._index().items()
            if any(v.addr is not None and v.function is None for v in found)
        )

    def _lookup_variable(self, name: str, function: str | None = None) -> _Place:
        """A global or static variable by name (DWARF, else the symbol table: untyped); with ``function``, that
        function's static variable (gdb's ``FUNCTION::NAME``). A name alone finds a function's static variable
        too when no file-scope variable has that name (gdb would need the function's frame)."""
        candidates = self._index().get(name, []) if self._has_dwarf else []
        if function is not None:
            candidates = [v for v in candidates if v.function == function]
            if not candidates:
                raise SymbolError(f'No symbol "{name}" in function "{function}".')
        fixed = [v for v in candidates if v.addr is not None]
        if fixed:
            fixed.sort(key=lambda v: (not v.external, v.function is not None, v.cu_index != self._main_cu,
                                      v.cu_index))  # fmt: skip
            var = fixed[0]
            ctype = self._ctype(_type_die(var.die))
            return _Place(var.addr, ctype, ctype.size)  # type: ignore[arg-type]
        if candidates:
            local = candidates[0]
            if local.function is not None:
                raise SymbolError(f"{name} is a local variable of {local.function}(): it has no fixed address "
                                  "(watch a global or static variable)")  # fmt: skip
            raise SymbolError(f"{name} has no fixed address (optimised out)")
        if self._has_dwarf and name in self._dwarf_functions():
            raise SymbolError(f"{name} is a function, not a variable")
        for s in self._load_symtab():
            if s.name == name:
                if s.is_text:
                    raise SymbolError(f"{name} is a function, not a variable")
                if not s.size:
                    raise SymbolError(f"'{name}' has unknown type and no size; cast it to its declared type")
                return _Place(s.addr, None, s.size)
        raise SymbolError(f'No symbol "{name}" in current context.')

    # -- format ----------------------------------------------------------------------------------------------------
    def format(self, ctype: CType | None, data: bytes, read_memory: ReadMemory | None = None) -> str:
        """gdb's ``print`` of a value of type ``ctype`` held in ``data``.

        As gdb-multiarch 13 prints it in the C locale: integers in decimal, chars as ``65 'A'``, bools
        true/false, floats with gdb's digits, enums by name (flag enums as ``(A | B)``), arrays with
        ``<repeats N times>`` and at most 200 elements, char arrays as strings, structs ``{a = 1, b = 2}``.
        Pointers are ``(type *) 0xADDR <symbol+off>`` (the type only at top level, as gdb), plus the string for
        char pointers when ``read_memory`` is given (without it only the address: gdb would read the string).
        ``ctype`` None: raw bytes, a little-endian unsigned integer for 1, 2, 4 and 8 bytes, else hex bytes.

        Where it differs from gdb: a char pointer's string needs ``read_memory``; bytes past 0x7f are always
        octal escapes (gdb in a UTF-8 locale prints valid UTF-8 as characters); ``set print`` settings are
        gdb's defaults (200 elements, repeats over 10, no pretty printing); an address in the padding after a
        sized symbol has no ``<symbol+off>`` (as a fresh gdb; gdb names it once it has read that CU's lines);
        floats other than IEEE binary32/64/128 (``_Float16``, x87 80-bit, complex) are not decoded.
        """
        if ctype is None:
            if len(data) in (1, 2, 4, 8):
                return str(int.from_bytes(data, "little"))
            return " ".join(f"{b:02x}" for b in data)
        if len(data) < ctype.size:
            raise SymbolError(f"{len(data)} bytes for a value of type {ctype.name} ({ctype.size} bytes)")
        text = self._value(ctype, data, 0, read_memory)
        if ctype.kind == "pointer" and self._pointer_shows_type(ctype):
            return f"({ctype.name}) {text}"
        return text

    @staticmethod
    def _pointer_shows_type(ctype: CType) -> bool:
        """gdb's c_value_print: a top-level pointer shows its type, except a plain pointer to ``char``."""
        target = ctype.target
        plain = "*" in ctype.name  # a typedef'd pointer is spelled by its own name
        if plain and target is not None:
            return re.sub(r"^((const|volatile|restrict|_Atomic) )+", "", target.name) != "char"
        return True

    def _value(self, t: CType, data: bytes, off: int, read_memory: ReadMemory | None) -> str:
        kind = t.kind
        raw = data[off : off + t.size]
        if kind in ("int", "uint", "char", "uchar", "bool", "enum"):
            value = int.from_bytes(raw, "little", signed=t.is_signed)
            return self._scalar(t, value, raw[0] if raw else 0)
        if kind == "float":
            return format_float(raw) if t.size in _FLOAT_FORMATS else "<invalid float value>"
        if kind == "pointer":
            return self._pointer(t, int.from_bytes(raw, "little"), read_memory)
        if kind == "array":
            return self._array_value(t, data, off, read_memory)
        if kind in ("struct", "union"):
            if not t.fields:
                return "<incomplete type>" if t.size == 0 else "{<No data fields>}"
            parts = []
            for f in t.fields:
                if f.bit_size:
                    value = self._bitfield(f, data, off)
                    text = self._scalar(f.type, value, value & 0xFF)
                else:
                    text = self._value(f.type, data, off + f.offset, read_memory)
                parts.append(f"{f.name} = {text}" if f.name else text)
            return "{" + ", ".join(parts) + "}"
        if kind == "func":
            return f"{{{t.name}}} {self._address(off)}"
        return "void"

    def _scalar(self, t: CType, value: int, byte: int) -> str:
        if t.kind in ("char", "uchar"):
            return format_char(value, byte)
        if t.kind == "bool":
            return "false" if value == 0 else "true" if value == 1 else str(value)
        if t.kind == "enum":
            return self._enum(t, value)
        return str(value)

    @staticmethod
    def _bitfield(f: Field, data: bytes, off: int) -> int:
        nbytes = (f.bit_offset + f.bit_size + 7) // 8
        raw = int.from_bytes(data[off + f.offset : off + f.offset + nbytes], "little")
        value = (raw >> f.bit_offset) & ((1 << f.bit_size) - 1)
        if f.type.is_signed and value >> (f.bit_size - 1):
            value -= 1 << f.bit_size
        return value

    @staticmethod
    def _enum(t: CType, value: int) -> str:
        for name, v in t.enumerators:
            if v == value:
                return name
        if not t.flag_enum:
            return str(value)
        parts = []
        for name, v in t.enumerators:
            if value & v:
                parts.append(name)
                value &= ~v
        if value:
            parts.append(f"unknown: 0x{value:x}")
        return f"({' | '.join(parts)})" if parts else "0"

    def _address(self, addr: int) -> str:
        found = self.symbolize(addr)
        if found is None:
            return f"0x{addr:x}"
        name, offset = found
        return f"0x{addr:x} <{name}+{offset}>" if offset else f"0x{addr:x} <{name}>"

    def _pointer(self, t: CType, addr: int, read_memory: ReadMemory | None) -> str:
        target = t.target
        text = self._address(addr)
        if target is not None and target.kind in ("char", "uchar") and target.size == 1 and addr and read_memory:
            text += " " + self._string_at(addr, read_memory)
        return text

    @staticmethod
    def _string_at(addr: int, read_memory: ReadMemory) -> str:
        """gdb's val_print_string: up to 200 bytes or the NUL, ``...`` when it goes on."""
        buf = bytearray()

        def byte_at(a: int) -> int | None:
            try:
                got = read_memory(a, 1)
            except Exception:  # the reader's own error for unreadable memory
                return None
            return got[0] if len(got) == 1 else None

        error = False
        while len(buf) < PRINT_MAX:
            b = byte_at(addr + len(buf))
            if b is None:
                error = True
                break
            buf.append(b)
            if b == 0:
                break
        force = False
        if not error and (not buf or buf[-1] != 0):
            peek = byte_at(addr + len(buf))
            force = peek is not None and peek != 0
        out = format_string(bytes(buf), force) if buf else ""
        if error:
            message = f"<error: Cannot access memory at address 0x{addr + len(buf):x}>"
            out = f"{out}{message}" if out else message
        return out

    def _array_value(self, t: CType, data: bytes, off: int, read_memory: ReadMemory | None) -> str:
        element = t.element
        assert element is not None
        if element.kind in ("char", "uchar") and element.size == 1:
            return format_string(data[off : off + t.count])
        if t.count == 0 or element.size == 0:
            return "{}"
        size = element.size
        parts, i, printed = [], 0, 0
        while i < t.count and printed < PRINT_MAX:
            chunk = data[off + i * size : off + (i + 1) * size]
            reps = 1
            while i + reps < t.count and data[off + (i + reps) * size : off + (i + reps + 1) * size] == chunk:
                reps += 1
            text = self._value(element, data, off + i * size, read_memory)
            if reps > REPEAT_THRESHOLD:
                parts.append(f"{text} <repeats {reps} times>")
                i += reps
                printed += REPEAT_THRESHOLD
            else:
                parts.append(text)
                i += 1
                printed += 1
        return "{" + ", ".join(parts) + ("..." if i < t.count else "") + "}"

    # -- lines -----------------------------------------------------------------------------------------------------
    def line_at(self, pc: int) -> SourceLine | None:
        """The source line of ``pc`` as gdb's ``info line *PC`` finds it (find_pc_line over the CU's files)."""
        if pc in self._line_cache:
            return self._line_cache[pc]
        result = self._find_line(pc)
        if len(self._line_cache) < 1 << 16:
            self._line_cache[pc] = result
        return result

    def _find_line(self, pc: int) -> SourceLine | None:
        if not self._has_dwarf:
            return None
        cu_index = self._cu_index_at(pc)
        if cu_index is None or self._program(cu_index) is None:
            return None
        table = self._line_table(cu_index)
        best: tuple[int, int, str] | None = None  # (pc, line, file)
        for name, pcs, entries in table.subfiles:
            k = bisect.bisect_right(pcs, pc)
            if k == 0:
                continue
            prev = k - 1
            entry_pc, line, is_stmt = entries[prev]
            if not line or (best is not None and entry_pc <= best[0]):
                continue
            if not is_stmt:  # gdb: back up over entries at the same address to one that is a statement
                tmp = prev
                while tmp > 0 and entries[tmp - 1][0] == entry_pc and entries[tmp - 1][1] and not entries[tmp][2]:
                    tmp -= 1
                if entries[tmp][2]:
                    prev = tmp
                    line = entries[tmp][1]
            best = (entry_pc, line, name)
        return SourceLine(best[2], best[1]) if best is not None else None

    def _load_sequences(self) -> None:
        """Every CU's line sequences (address ranges), to find the CU holding a pc."""
        if self._sequences is not None:
            return
        self._dwarf_info()
        sequences = []
        for cu_index in range(len(self._cus)):
            program = self._program(cu_index)
            if program is None:
                continue
            start = None
            for entry in program.get_entries():
                state = entry.state
                if state is None:
                    continue
                if start is None:
                    start = state.address
                if state.end_sequence:
                    if state.address > start:
                        sequences.append((start, state.address, cu_index))
                    start = None
        sequences.sort()
        self._sequences = sequences
        self._sequence_starts = [s[0] for s in sequences]

    def _program(self, cu_index: int) -> Any:
        """A CU's line program (None without one), kept: it keeps its decoded rows."""
        if cu_index not in self._programs:
            self._programs[cu_index] = self._dwarf.line_program_for_CU(self._cus[cu_index])
        return self._programs[cu_index]

    def _line_table(self, cu_index: int) -> _LineTable:
        """A CU's line table as gdb's DWARF reader records it (lnp_state_machine::record_line and
        buildsym's record_line), one sorted table per source file."""
        table = self._line_tables.get(cu_index)
        if table is not None:
            return table
        cu = self._cus[cu_index]
        top = cu.get_top_DIE()
        comp_dir = (_attr(top, "DW_AT_comp_dir") or b"").decode(errors="replace")
        cu_low = _attr(top, "DW_AT_low_pc") or 0
        program = self._programs[cu_index]
        version = program.header["version"]
        dirs = [d.decode(errors="replace") for d in program.header["include_directory"]]
        files = program.header["file_entry"]
        names: dict[int, str] = {}

        def file_name(index: int) -> str:
            if index not in names:
                fi = index if version >= 5 else index - 1
                if not 0 <= fi < len(files):
                    names[index] = "?"
                else:
                    fe = files[fi]
                    name = fe.name.decode(errors="replace")
                    d = fe.dir_index if version >= 5 else fe.dir_index - 1
                    if not name.startswith("/") and 0 <= d < len(dirs):
                        name = f"{dirs[d]}/{name}"
                    names[index] = name
            return names[index]

        subfiles: dict[str, list[tuple[int, int, bool]]] = {}

        def record(sub: str | None, line: int, addr: int, is_stmt: bool) -> None:
            if sub is None:
                return
            vec = subfiles.setdefault(sub, [])
            if line == 0:  # an end marker deletes the entries at its address
                last_line = None
                while vec:
                    last_line = vec[-1][1]
                    if vec[-1][0] != addr:
                        break
                    vec.pop()
                if last_line is None or last_line == 0:
                    return
            vec.append((addr, line, is_stmt))

        last_subfile: str | None = None
        last_line = 0
        last_address: int | None = None
        stmt_at_address = False
        seen_line, nonzero_disc = None, False
        skipping = False
        new_sequence = True
        for entry in program.get_entries():
            st = entry.state
            if st is None:
                continue
            if new_sequence:
                last_subfile, last_line, last_address, stmt_at_address = None, 0, None, False
                skipping = st.address == 0 and cu_low > 0  # gdb ignores sequences of GC'd code (PR 12528)
                new_sequence = False
                if program.header["file_entry"]:
                    subfiles.setdefault(file_name(st.file), [])
            if st.line != seen_line:
                nonzero_disc = st.discriminator != 0
                seen_line = st.line
            else:
                nonzero_disc |= st.discriminator != 0
            end = st.end_sequence
            if not skipping and (getattr(st, "op_index", 0) == 0 or end):
                sub = file_name(st.file)
                file_changed = last_subfile != sub
                ignore = (file_changed and not end and last_address == st.address and not st.is_stmt
                          and stmt_at_address) or (not end and st.line == 0)  # fmt: skip
                if (file_changed and not ignore) or end:
                    record(last_subfile, 0, st.address, True)
                if not end and not ignore:
                    if file_changed or st.line != last_line or not nonzero_disc:
                        record(sub, st.line, st.address, bool(st.is_stmt))
                    last_subfile, last_line = sub, st.line
            if last_address != st.address:
                stmt_at_address, last_address = False, st.address
            stmt_at_address |= bool(st.is_stmt)
            if end:
                new_sequence = True
        ordered = list(subfiles.items())
        ordered = ordered[:1] + ordered[:0:-1]  # gdb: the primary file first, then the others newest first
        out = []
        for name, vec in ordered:
            vec.sort(key=lambda e: (e[0], e[1] != 0))
            out.append((name, [e[0] for e in vec], vec))
            self._file_dirs.setdefault(name, comp_dir)
        table = _LineTable(comp_dir, out)
        self._line_tables[cu_index] = table
        return table

    def source_path(self, where: SourceLine) -> Path | None:
        """The source file of ``where`` on this machine: ``source_dirs``, the compilation directory, then the
        ELF's directory and up to three above it (guests are built with paths relative to their tree)."""
        name = Path(where.file)
        if name.is_absolute():
            return name if name.is_file() else None
        comp_dir = Path(self._file_dirs.get(where.file, ""))
        elf_dirs = [self.path.resolve().parent, *self.path.resolve().parents[:3]]
        dirs = [*self.source_dirs]
        if comp_dir.is_absolute():
            dirs.append(comp_dir)
        dirs += elf_dirs
        for d in dirs:
            for candidate in (d / name, d / name.name):
                if candidate.is_file():
                    return candidate
        return None

    def source_text(self, where: SourceLine) -> str | None:
        """The text of that source line (without its newline), None if the file or line is missing."""
        path = self.source_path(where)
        if path is None:
            return None
        if path not in self._source_cache:
            try:
                self._source_cache[path] = path.read_text(errors="replace").splitlines()
            except OSError:
                self._source_cache[path] = None
        lines = self._source_cache[path]
        if lines is None or not 0 < where.line <= len(lines):
            return None
        return lines[where.line - 1]

    # -- instructions --------------------------------------------------------------------------------------------
    def instruction(self, arch: str, code: bytes, pc: int) -> str:
        """Capstone's text of the instruction at the start of ``code`` (at ``pc``): ``addi a0, a0, 1``;
        ``(unknown)`` when it does not decode. ``arch``: riscv32, riscv64, aarch64 or armv7m."""
        cs = self._disassemblers.get(arch)
        if cs is None:
            import capstone

            modes = _capstone_modes()
            if arch not in modes:
                raise SymbolError(f"no disassembler for {arch!r} (known: {', '.join(modes)})")
            cs = capstone.Cs(*modes[arch])
            self._disassemblers[arch] = cs
        for insn in cs.disasm(code, pc, 1):
            return f"{insn.mnemonic} {insn.op_str}".strip()
        return "(unknown)"


_Node = tuple  # ('num', n) ('var', name, function) ('deref', node) ('cast', words, stars, count, node) ('member', node,
# name, arrow) ('index', node, i)


class _Parser:
    """Watch expressions: parsed whole first (a syntax error is reported as one), then evaluated."""

    def __init__(self, symbols: Symbols, text: str, read_memory: ReadMemory | None) -> None:
        self.symbols = symbols
        self.text = text
        self.read_memory = read_memory
        self.tokens = _tokens(text)
        self.pos = 0

    # -- syntax ----------------------------------------------------------------------------------------------------
    def error(self, message: str) -> SymbolError:
        return SymbolError(f"cannot parse {self.text!r}: {message}")

    def peek(self, offset: int = 0) -> tuple[str, Any] | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self, kind: str, value: Any = None) -> Any:
        tok = self.peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            want = value if value is not None else {"id": "a name", "num": "a number"}.get(kind, kind)
            raise self.error(f"expected {want!r}, got {repr(tok[1]) if tok else 'the end'}")
        self.pos += 1
        return tok[1]

    def accept(self, value: str) -> bool:
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] == value:
            self.pos += 1
            return True
        return False

    def parse(self) -> _Place | _Value:
        node = self.unary()
        tok = self.peek()
        if tok is not None:
            raise self.error(f"unexpected {tok[1]!r}")
        return self.evaluate(node)

    def unary(self) -> _Node:
        if self.accept("*"):
            return ("deref", self.unary())
        if self.accept("-"):
            return ("num", -self.take("num"))
        if self.is_cast():
            self.take("op", "(")
            words = []
            while (tok := self.peek()) is not None and tok[0] == "id":
                words.append(self.take("id"))
            stars, count = 0, None
            while self.accept("*"):
                stars += 1
            if self.accept("("):  # TYPE (*)[N]: a pointer to an array
                self.take("op", "*")
                self.take("op", ")")
                self.take("op", "[")
                count = self.take("num")
                self.take("op", "]")
            self.take("op", ")")
            return ("cast", tuple(w for w in words if w not in ("const", "volatile")), stars, count, self.unary())
        return self.postfix(self.primary())

    def is_cast(self) -> bool:
        tok, nxt = self.peek(), self.peek(1)
        if tok != ("op", "(") or nxt is None or nxt[0] != "id":
            return False
        if nxt[1] in _TYPE_WORDS or self.symbols._is_type_name(nxt[1]):
            return True
        i = 2  # "(NAME *...)": a cast to an unknown type, said so when evaluated
        while self.peek(i) == ("op", "*"):
            i += 1
        return i > 2 and self.peek(i) == ("op", ")")

    def primary(self) -> _Node:
        tok = self.peek()
        if tok is None:
            raise self.error("unexpected end")
        self.pos += 1
        if tok[0] == "num":
            return ("num", tok[1])
        if tok[0] == "id":
            if self.accept("::"):  # FUNCTION::NAME, a function's static variable
                return ("var", self.take("id"), tok[1])
            return ("var", tok[1], None)
        if tok == ("op", "("):
            inner = self.unary()
            self.take("op", ")")
            return inner
        raise self.error(f"unexpected {tok[1]!r}")

    def postfix(self, node: _Node) -> _Node:
        while True:
            if self.accept("."):
                node = ("member", node, self.take("id"), False)
            elif self.accept("->"):
                node = ("member", node, self.take("id"), True)
            elif self.accept("["):
                index = -self.take("num") if self.accept("-") else self.take("num")
                self.take("op", "]")
                node = ("index", node, index)
            else:
                return node

    # -- evaluation ------------------------------------------------------------------------------------------------
    def evaluate(self, node: _Node) -> _Place | _Value:
        op = node[0]
        if op == "num":
            return _Value(node[1], None)
        if op == "var":
            return self.symbols._lookup_variable(node[1], node[2])
        if op == "deref":
            return self.deref(self.evaluate(node[1]))
        if op == "cast":
            _, words, stars, count, operand = node
            value = self.evaluate(operand)
            if isinstance(value, _Place):
                raise SymbolError(f"{self.text!r}: cast a number, as in *(TYPE *)0x80001000")
            return _Value(value.value, self.cast_type(words, stars, count))
        if op == "member":
            return self.member(self.evaluate(node[1]), node[2], node[3])
        return self.index(self.evaluate(node[1]), node[2])

    def cast_type(self, words: tuple[str, ...], stars: int, count: int | None) -> CType:
        """The pointer type of a cast: TYPE *... or TYPE (*)[N] (``char (*)[N]``: raw bytes, no DWARF needed)."""
        if not words:
            raise self.error("expected a type name")
        size = self.symbols.address_size
        name = " ".join(words)
        if count is not None:
            if name == "char" and stars == 0:
                raw = CType("array", f"char [{count}]", count, count)
                return CType("pointer", f"char (*)[{count}]", size, _pointee=lambda: raw)
            element = self.symbols.lookup_type(name + " *" * stars)
            array = CType("array", f"{element.name} [{count}]", element.size * count, count, element)
            return CType("pointer", f"{element.name} (*)[{count}]", size, _pointee=lambda: array)
        if stars == 0:
            return self.symbols.lookup_type(name)
        return self.symbols.lookup_type(name + " *" * stars)

    def typed(self, value: _Place | _Value, what: str) -> CType:
        if value.type is None:
            if isinstance(value, _Place):
                name = self.text.split("[")[0].split(".")[0].split("-")[0].lstrip("*( ")
                raise SymbolError(f"'{name}' has unknown type; cast it to its declared type "
                                  f"({self.symbols.path.name} has no debug info for it)")  # fmt: skip
            raise self.error(f"{what} of a plain number")
        return value.type

    def pointer_value(self, value: _Place | _Value) -> int:
        """The address a pointer holds: read from memory for an object, the number for a cast."""
        if isinstance(value, _Value):
            return value.value
        if self.read_memory is None:
            raise SymbolError(f"{self.text!r} dereferences a pointer: that needs the guest's memory")
        size = value.type.size if value.type is not None else self.symbols.address_size
        data = self.read_memory(value.addr, size)
        if len(data) < size:
            raise SymbolError(f"cannot read the pointer at 0x{value.addr:x} for {self.text!r}")
        return int.from_bytes(data[:size], "little")

    def deref(self, value: _Place | _Value) -> _Place:
        ctype = self.typed(value, "dereference")
        if ctype.kind == "array" and isinstance(value, _Place):
            element = ctype.element or VOID
            return _Place(value.addr, element, element.size)
        if ctype.kind != "pointer":
            raise SymbolError(f"{self.text!r}: attempt to take contents of a non-pointer value ({ctype.name})")
        target = ctype.target
        if target is None or target.kind == "void":
            raise SymbolError(f"{self.text!r}: attempt to take contents of a non-pointer value (void *)")
        if ctype.name.startswith("char (*)[") and target.element is None:  # *(char (*)[N])ADDR: raw bytes
            return _Place(self.pointer_value(value), None, target.count)
        return _Place(self.pointer_value(value), target, target.size)

    def member(self, value: _Place | _Value, name: str, arrow: bool) -> _Place:
        ctype = self.typed(value, "a member")
        if ctype.kind == "pointer":
            value = self.deref(value)
            ctype = value.type  # type: ignore[assignment]
        elif arrow:
            raise SymbolError(f"{self.text!r}: -> needs a pointer, {ctype.name} is not one")
        if not isinstance(value, _Place) or ctype is None or ctype.kind not in ("struct", "union"):
            raise SymbolError(f"{self.text!r}: {ctype.name if ctype else 'it'} is not a struct or union, "
                              f"it has no member {name!r}")  # fmt: skip
        found = ctype.member(name)
        if found is None:
            raise SymbolError(f"There is no member named {name}. ({ctype.name} in {self.text!r})")
        offset, f = found
        if f.bit_size:
            raise SymbolError(f"{self.text!r}: {name} is a bit-field: watch the struct that holds it")
        return _Place(value.addr + offset, f.type, f.type.size)

    def index(self, value: _Place | _Value, i: int) -> _Place:
        ctype = self.typed(value, "an index")
        if ctype.kind == "array" and isinstance(value, _Place):
            element = ctype.element or VOID
            return _Place(value.addr + i * element.size, element, element.size)
        if ctype.kind == "pointer":
            target = ctype.target
            if target is None or target.kind == "void":
                raise SymbolError(f"{self.text!r}: cannot index a void pointer")
            return _Place(self.pointer_value(value) + i * target.size, target, target.size)
        raise SymbolError(f"{self.text!r}: cannot subscript something of type {ctype.name}")
