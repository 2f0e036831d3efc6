"""Watch expressions (gdb's C subset: ``NAME``, ``F::NAME``, ``.field``, ``[i]``, ``->field``, ``*PTR``,
``*(TYPE *)ADDR``, ``*(char (*)[N])ADDR``): parsed whole, then evaluated to where the object lives."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import ReadMemory, SymbolError
from .types import VOID, CType

_TOKEN = re.compile(r"\s*(?:(0[xX][0-9a-fA-F]+|\d+)[uUlL]*|([A-Za-z_$][\w$]*)|(->|::|[.\[\]()*-]))")
_TYPE_WORDS = {"unsigned", "signed", "short", "long", "int", "char", "float", "double", "void", "_Bool",
               "struct", "union", "enum", "const", "volatile"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Location:
    """Where a watch expression lives: ``size`` bytes at ``addr``, of ``type`` (None: raw, untyped bytes)."""

    expr: str
    addr: int
    size: int
    type: CType | None


@dataclass(frozen=True, slots=True)
class Place:
    """An lvalue while evaluating: bytes at ``addr`` of ``type`` (None: untyped, ``size`` bytes)."""

    addr: int
    type: CType | None
    size: int


@dataclass(frozen=True, slots=True)
class Value:
    """An rvalue while evaluating: an integer literal (type None) or a cast to a pointer type."""

    value: int
    type: CType | None


class Scope(Protocol):
    """What an expression's names mean: variables, the types casts name, the target's pointer size."""

    elf_name: str
    address_size: int

    def lookup_variable(self, name: str, function: str | None = None) -> Place: ...

    def lookup_type(self, name: str) -> CType: ...

    def is_type_name(self, name: str) -> bool: ...


def locate(scope: Scope, expr: str, read_memory: ReadMemory | None = None) -> Location:
    """Where the watch expression ``expr`` lives (see :meth:`replay.symbols.Symbols.locate`)."""
    text = expr.strip()
    if not text:
        raise SymbolError("empty expression")
    result = _Parser(scope, text, read_memory).parse()
    if not isinstance(result, Place):
        raise SymbolError(f"{text!r} is a value, not an object in memory")
    if result.type is not None and result.type.kind in ("void", "func"):
        raise SymbolError(f"{text!r} has type {result.type.name}: nothing to watch")
    if result.size <= 0:
        raise SymbolError(f"{text!r} has no size (an incomplete type or an array without bounds)")
    return Location(text, result.addr, result.size, result.type)


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


_Node = tuple  # ('num', n) ('var', name, function) ('deref', node) ('cast', words, stars, count, node) ('member', node,
# name, arrow) ('index', node, i)


class _Parser:
    """Watch expressions: parsed whole first (a syntax error is reported as one), then evaluated."""

    def __init__(self, scope: Scope, text: str, read_memory: ReadMemory | None) -> None:
        self.scope = scope
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

    def parse(self) -> Place | Value:
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
        if nxt[1] in _TYPE_WORDS or self.scope.is_type_name(nxt[1]):
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
    def evaluate(self, node: _Node) -> Place | Value:
        op = node[0]
        if op == "num":
            return Value(node[1], None)
        if op == "var":
            return self.scope.lookup_variable(node[1], node[2])
        if op == "deref":
            return self.deref(self.evaluate(node[1]))
        if op == "cast":
            _, words, stars, count, operand = node
            value = self.evaluate(operand)
            if isinstance(value, Place):
                raise SymbolError(f"{self.text!r}: cast a number, as in *(TYPE *)0x80001000")
            return Value(value.value, self.cast_type(words, stars, count))
        if op == "member":
            return self.member(self.evaluate(node[1]), node[2], node[3])
        return self.index(self.evaluate(node[1]), node[2])

    def cast_type(self, words: tuple[str, ...], stars: int, count: int | None) -> CType:
        """The pointer type of a cast: TYPE *... or TYPE (*)[N] (``char (*)[N]``: raw bytes, no DWARF needed)."""
        if not words:
            raise self.error("expected a type name")
        size = self.scope.address_size
        name = " ".join(words)
        if count is not None:
            if name == "char" and stars == 0:
                raw = CType("array", f"char [{count}]", count, count)
                return CType("pointer", f"char (*)[{count}]", size, _pointee=lambda: raw)
            element = self.scope.lookup_type(name + " *" * stars)
            array = CType("array", f"{element.name} [{count}]", element.size * count, count, element)
            return CType("pointer", f"{element.name} (*)[{count}]", size, _pointee=lambda: array)
        if stars == 0:
            return self.scope.lookup_type(name)
        return self.scope.lookup_type(name + " *" * stars)

    def typed(self, value: Place | Value, what: str) -> CType:
        if value.type is None:
            if isinstance(value, Place):
                name = self.text.split("[")[0].split(".")[0].split("-")[0].lstrip("*( ")
                raise SymbolError(f"'{name}' has unknown type; cast it to its declared type "
                                  f"({self.scope.elf_name} has no debug info for it)")  # fmt: skip
            raise self.error(f"{what} of a plain number")
        return value.type

    def pointer_value(self, value: Place | Value) -> int:
        """The address a pointer holds: read from memory for an object, the number for a cast."""
        if isinstance(value, Value):
            return value.value
        if self.read_memory is None:
            raise SymbolError(f"{self.text!r} dereferences a pointer: that needs the guest's memory")
        size = value.type.size if value.type is not None else self.scope.address_size
        data = self.read_memory(value.addr, size)
        if len(data) < size:
            raise SymbolError(f"cannot read the pointer at 0x{value.addr:x} for {self.text!r}")
        return int.from_bytes(data[:size], "little")

    def deref(self, value: Place | Value) -> Place:
        ctype = self.typed(value, "dereference")
        if ctype.kind == "array" and isinstance(value, Place):
            element = ctype.element or VOID
            return Place(value.addr, element, element.size)
        if ctype.kind != "pointer":
            raise SymbolError(f"{self.text!r}: attempt to take contents of a non-pointer value ({ctype.name})")
        target = ctype.target
        if target is None or target.kind == "void":
            raise SymbolError(f"{self.text!r}: attempt to take contents of a non-pointer value (void *)")
        if ctype.name.startswith("char (*)[") and target.element is None:  # *(char (*)[N])ADDR: raw bytes
            return Place(self.pointer_value(value), None, target.count)
        return Place(self.pointer_value(value), target, target.size)

    def member(self, value: Place | Value, name: str, arrow: bool) -> Place:
        ctype = self.typed(value, "a member")
        if ctype.kind == "pointer":
            value = self.deref(value)
            ctype = value.type  # type: ignore[assignment]
        elif arrow:
            raise SymbolError(f"{self.text!r}: -> needs a pointer, {ctype.name} is not one")
        if not isinstance(value, Place) or ctype is None or ctype.kind not in ("struct", "union"):
            raise SymbolError(f"{self.text!r}: {ctype.name if ctype else 'it'} is not a struct or union, "
                              f"it has no member {name!r}")  # fmt: skip
        found = ctype.member(name)
        if found is None:
            raise SymbolError(f"There is no member named {name}. ({ctype.name} in {self.text!r})")
        offset, f = found
        if f.bit_size:
            raise SymbolError(f"{self.text!r}: {name} is a bit-field: watch the struct that holds it")
        return Place(value.addr + offset, f.type, f.type.size)

    def index(self, value: Place | Value, i: int) -> Place:
        ctype = self.typed(value, "an index")
        if ctype.kind == "array" and isinstance(value, Place):
            element = ctype.element or VOID
            return Place(value.addr + i * element.size, element, element.size)
        if ctype.kind == "pointer":
            target = ctype.target
            if target is None or target.kind == "void":
                raise SymbolError(f"{self.text!r}: cannot index a void pointer")
            return Place(self.pointer_value(value) + i * target.size, target, target.size)
        raise SymbolError(f"{self.text!r}: cannot subscript something of type {ctype.name}")
