"""C types from DWARF (:class:`CType`, :class:`Field`) and gdb's C spelling of them (``whatis``), built lazily
per type DIE; the types a cast names (``lookup_type``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .die import die_attr, die_name, die_type, subrange_count
from .errors import SymbolError

if TYPE_CHECKING:
    from .dwarf import DwarfIndex

KINDS = ("int", "uint", "bool", "char", "uchar", "float", "pointer", "array", "struct", "union", "enum", "void",
         "func")  # fmt: skip


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

INT_WORDS = {"unsigned", "signed", "short", "long", "int", "char"}
NAMED_TAGS = {"DW_TAG_structure_type": "struct", "DW_TAG_union_type": "union", "DW_TAG_enumeration_type": "enum",
              "DW_TAG_class_type": "class"}  # fmt: skip
_DW_ATE = {2: "bool", 4: "float", 5: "int", 6: "int", 7: "uint", 8: "uint", 0x10: "uint"}
_QUALIFIERS = {"DW_TAG_const_type": "const", "DW_TAG_volatile_type": "volatile", "DW_TAG_restrict_type": "restrict",
               "DW_TAG_atomic_type": "_Atomic"}  # fmt: skip
_QUALIFIER_ORDER = ("const", "volatile", "restrict", "_Atomic")  # as gdb's c_type_print_modifier prints them
# gdb's builtin C types, for casts naming a base type the DWARF does not describe: name -> (kind, size or 0 for
# the address size)
_BUILTIN = {"char": ("uchar", 1), "signed char": ("char", 1), "unsigned char": ("uchar", 1), "short": ("int", 2),
            "unsigned short": ("uint", 2), "int": ("int", 4), "unsigned int": ("uint", 4), "long": ("int", 0),
            "unsigned long": ("uint", 0), "long long": ("int", 8), "unsigned long long": ("uint", 8),
            "float": ("float", 4), "double": ("float", 8), "_Bool": ("bool", 1)}  # fmt: skip


def canonical_base_name(name: str) -> str:
    """gdb 13's spelling of a C base type: GCC's ``long unsigned int`` is gdb's ``unsigned long``."""
    words = name.split()
    if words and set(words) <= INT_WORDS:
        unsigned, longs = "unsigned" in words, words.count("long")
        if "char" in words:
            return "unsigned char" if unsigned else "signed char" if "signed" in words else "char"
        core = "short" if "short" in words else "long long" if longs == 2 else "long" if longs == 1 else "int"
        return f"unsigned {core}" if unsigned else core
    if sorted(words) == ["__int128", "unsigned"]:
        return "unsigned __int128"
    return name


def is_flag_enum(values: list[tuple[str, int]]) -> bool:
    """gdb 13's flag enum: every value non-negative with at most one bit set, no two sharing a bit."""
    mask = 0
    for _, value in values:
        if value < 0 or bin(value).count("1") > 1 or mask & value:
            return False
        mask |= value
    return True


def pointer_to(pointee: CType, size: int) -> CType:
    """A pointer of ``size`` bytes to ``pointee``, spelled as gdb does (``int *``, ``char **``)."""
    name = f"{pointee.name}*" if pointee.name.endswith("*") else f"{pointee.name} *"
    return CType("pointer", name, size, _pointee=lambda: pointee)


class TypeBuilder:
    """CTypes of one ELF's type DIEs, one per DIE (cached by offset), and the types casts name."""

    def __init__(self, index: DwarfIndex, address_size: int, elf_name: str) -> None:
        self._index = index
        self._address_size = address_size
        self._elf_name = elf_name
        self._types: dict[int, CType] = {}

    def of(self, die: Any) -> CType:
        """The CType of a type DIE (None: void), cached by DIE offset."""
        if die is None:
            return VOID
        cached = self._types.get(die.offset)
        if cached is not None:
            return cached
        result = self._build(die)
        self._types[die.offset] = result
        return result

    def _build(self, die: Any) -> CType:
        tag = die.tag
        name = self.spell(die, "")
        size = die_attr(die, "DW_AT_byte_size")
        if tag == "DW_TAG_base_type":
            size = size or 0
            kind = _DW_ATE.get(die_attr(die, "DW_AT_encoding"), "uint")
            if kind in ("int", "uint") and size == 1:
                kind = "char" if kind == "int" else "uchar"  # gdb prints every 1-byte integer as a character
            return CType(kind, name, size)
        if tag == "DW_TAG_typedef" or tag in _QUALIFIERS:
            return replace(self.of(die_type(die)), name=name)
        if tag in ("DW_TAG_pointer_type", "DW_TAG_reference_type", "DW_TAG_rvalue_reference_type"):
            target = die_type(die)
            return CType("pointer", name, size or die.cu["address_size"], _pointee=lambda: self.of(target))
        if tag == "DW_TAG_array_type":
            return self._array(die, name)
        if tag in ("DW_TAG_structure_type", "DW_TAG_union_type", "DW_TAG_class_type"):
            kind = "union" if tag == "DW_TAG_union_type" else "struct"
            # The CType is cached before its members are built: a member may point back to it.
            placeholder = CType(kind, name, size or 0)
            self._types[die.offset] = placeholder
            return replace(placeholder, fields=tuple(self._fields(die)))
        if tag == "DW_TAG_enumeration_type":
            values = [(die_name(child) or "", die_attr(child, "DW_AT_const_value") or 0)
                      for child in die.iter_children() if child.tag == "DW_TAG_enumerator"]  # fmt: skip
            return CType("enum", name, size or 4, enumerators=tuple(values), flag_enum=is_flag_enum(values))
        if tag == "DW_TAG_subroutine_type":
            return CType("func", name, 1)
        if tag == "DW_TAG_unspecified_type":
            return CType("void", name, 1)
        return CType("void", name, size or 1)

    def _array(self, die: Any, name: str) -> CType:
        dims = [subrange_count(c) for c in die.iter_children() if c.tag == "DW_TAG_subrange_type"] or [None]
        element = self.of(die_type(die))
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
            if child.tag != "DW_TAG_member" or die_attr(child, "DW_AT_external"):
                continue
            ftype = self.of(die_type(child))
            loc = child.attributes.get("DW_AT_data_member_location")
            offset = 0
            if loc is not None:
                if isinstance(loc.value, int):
                    offset = loc.value
                else:
                    ops = DWARFExprParser(child.cu.structs).parse_expr(loc.value)
                    offset = sum(op.args[0] for op in ops if op.op_name == "DW_OP_plus_uconst")
            bit_size = die_attr(child, "DW_AT_bit_size") or 0
            bit_offset = 0
            if bit_size:
                data_bit_offset = die_attr(child, "DW_AT_data_bit_offset")
                if data_bit_offset is not None:
                    offset, bit_offset = data_bit_offset // 8, data_bit_offset % 8
                else:  # DWARF 2-4: DW_AT_bit_offset counts from the storage unit's most significant bit
                    storage = die_attr(child, "DW_AT_byte_size") or ftype.size
                    first = storage * 8 - (die_attr(child, "DW_AT_bit_offset") or 0) - bit_size
                    offset, bit_offset = offset + first // 8, first % 8
            yield Field(die_name(child) or "", offset, ftype, bit_size, bit_offset)

    # -- spelling --------------------------------------------------------------------------------------------------
    def spell(self, die: Any, inner: str, outer_quals: frozenset[str] = frozenset()) -> str:
        """gdb's C spelling of a type with a declarator ``inner`` (c_print_type): ``char (*)[16]``.
        ``outer_quals`` are qualifiers of an enclosing array type: C gives them to its elements."""

        def join(base: str, decl: str) -> str:
            return f"{base} {decl}" if decl else base

        quals = set(outer_quals)
        while die is not None and die.tag in _QUALIFIERS:
            quals.add(_QUALIFIERS[die.tag])
            die = die_type(die)
        if quals:
            if die is not None and die.tag == "DW_TAG_array_type":
                pass  # below, to the elements
            elif die is not None and die.tag == "DW_TAG_pointer_type":
                return self._spell_pointer(die, inner, [q for q in _QUALIFIER_ORDER if q in quals])
            else:
                return " ".join(q for q in _QUALIFIER_ORDER if q in quals) + " " + self.spell(die, inner)
        if die is None:
            return join("void", inner)
        tag = die.tag
        if tag == "DW_TAG_pointer_type":
            return self._spell_pointer(die, inner, [])
        if tag in ("DW_TAG_reference_type", "DW_TAG_rvalue_reference_type"):
            return self.spell(die_type(die), "&" + inner)
        if tag == "DW_TAG_array_type":
            counts = [subrange_count(c) for c in die.iter_children() if c.tag == "DW_TAG_subrange_type"]
            dims = "".join(f"[{c}]" if c is not None else "[]" for c in counts)
            return self.spell(die_type(die), inner + (dims or "[]"), frozenset(quals))
        if tag == "DW_TAG_subroutine_type":
            return self.spell(die_type(die), f"{inner}({', '.join(self._parameter_types(die))})")
        if tag == "DW_TAG_base_type":
            return join(canonical_base_name(die_name(die) or "?"), inner)
        if tag in NAMED_TAGS:
            return join(f"{NAMED_TAGS[tag]} {die_name(die) or '{...}'}", inner)
        return join(die_name(die) or "void", inner)

    def _parameter_types(self, die: Any) -> list[str]:
        params = []
        for child in die.iter_children():
            if child.tag == "DW_TAG_formal_parameter":
                params.append(self.spell(die_type(child), ""))
            elif child.tag == "DW_TAG_unspecified_parameters":
                params.append("...")
        if not params:
            return ["void"] if die_attr(die, "DW_AT_prototyped") else []
        return params

    def _spell_pointer(self, die: Any, inner: str, quals: list[str]) -> str:
        decl = "*" + "".join(" " + q for q in quals)
        if inner:
            decl += (" " if quals else "") + inner
        target = die_type(die)
        if target is not None and target.tag in ("DW_TAG_array_type", "DW_TAG_subroutine_type"):
            decl = f"({decl})"
        return self.spell(target, decl)

    # -- casts -----------------------------------------------------------------------------------------------------
    def lookup(self, name: str) -> CType:
        """The type a cast names: ``uint32_t``, ``struct probe``, ``unsigned long``, ``int *``."""
        text = " ".join(name.replace("*", " * ").split())
        words = [w for w in text.replace("*", " ").split() if w not in ("const", "volatile")]
        result = self._base(" ".join(words))
        for _ in range(text.count("*")):
            result = pointer_to(result, self._address_size)
        return result

    def _base(self, name: str) -> CType:
        if not self._index.has_dwarf:
            raise SymbolError(f"{self._elf_name} has no debug info (DWARF): no type {name!r} to cast to")
        self._index.variables()
        if name == "void":
            return VOID
        words = name.split()
        key = name
        if words and words[0] in ("struct", "union", "enum"):
            key = " ".join(words[:2])
        elif set(words) <= INT_WORDS:
            key = canonical_base_name(name)
        die = self._index.named_types.get(key)
        if die is not None:
            return self.of(die)
        if key in _BUILTIN:
            kind, size = _BUILTIN[key]
            return CType(kind, key, size or self._address_size)
        if words and words[0] in ("struct", "union", "enum") and len(words) == 2:
            raise SymbolError(f"No {words[0]} type named {words[1]}.")
        raise SymbolError(f'No symbol "{name}" in current context.')

    def is_type_name(self, name: str) -> bool:
        """Whether ``name`` is a typedef or base type the DWARF describes (a cast, not a variable)."""
        if not self._index.has_dwarf:
            return False
        variables = self._index.variables()  # the walk that fills named_types too
        return name in self._index.named_types and name not in variables
