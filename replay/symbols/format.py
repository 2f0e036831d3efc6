"""gdb's ``print`` of C values, as gdb-multiarch 13 shows them in the C locale: strings, characters, floats,
enums, arrays with ``<repeats N times>``, structs, pointers with ``<symbol+offset>``."""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from decimal import Decimal, localcontext

from .errors import ReadMemory, SymbolError
from .types import CType, Field

PRINT_MAX = 200  # gdb's `set print elements` default
REPEAT_THRESHOLD = 10  # gdb's `set print repeats` default
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


class ValueFormatter:
    """gdb's ``print`` of typed bytes; ``symbolize(addr)`` names addresses as ``print/a`` does (or None)."""

    def __init__(self, symbolize: Callable[[int], tuple[str, int] | None]) -> None:
        self._symbolize = symbolize

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
        found = self._symbolize(addr)
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
