"""Payload -> typed command: one small parse function per packet, chosen from one table.

``parse`` never raises for a packet it does not know (that is :class:`Unknown`,
answered with the empty reply); it raises :class:`ParseError` for a known
packet with malformed arguments (answered with an error reply).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import commands as c


class ParseError(ValueError):
    """A known packet whose arguments are malformed."""


_HEX_BYTES = re.compile(rb"[0-9a-fA-F]+")
_HEX_STR = re.compile(r"[0-9a-fA-F]+")


def _hex(text: bytes | str) -> int:
    """Hex digits only: int() would also take a sign, '0x', '_' and spaces."""
    pattern = _HEX_BYTES if isinstance(text, bytes) else _HEX_STR
    if pattern.fullmatch(text) is None:  # type: ignore[arg-type]
        raise ParseError(f"not a hex number: {text!r}")
    return int(text, 16)


def _thread(text: str) -> c.ThreadId:
    if text == "-1":
        return -1
    if text.startswith("p"):  # multiprocess form p<pid>.<tid>: we have one process
        text = text.partition(".")[2] or "0"
        if text == "-1":
            return -1
    return _hex(text)


def _hex_bytes(text: bytes) -> bytes:
    try:
        return bytes.fromhex(text.decode("ascii"))
    except ValueError:
        raise ParseError("bad hex data") from None


def _addr_length(args: bytes) -> tuple[int, int]:
    addr, sep, length = args.partition(b",")
    if not sep:
        raise ParseError("expected addr,length")
    return _hex(addr), _hex(length)


def _read_memory(args: bytes) -> c.Command:
    return c.ReadMemory(*_addr_length(args))


def _write_memory_hex(args: bytes) -> c.Command:
    head, sep, data = args.partition(b":")
    if not sep:
        raise ParseError("expected addr,length:data")
    addr, length = _addr_length(head)
    blob = _hex_bytes(data)
    if len(blob) != length:
        raise ParseError(f"M says {length} bytes but carries {len(blob)}")
    return c.WriteMemory(addr, blob)


def _write_memory_binary(args: bytes) -> c.Command:
    head, sep, data = args.partition(b":")
    if not sep:
        raise ParseError("expected addr,length:data")
    addr, length = _addr_length(head)
    if len(data) != length:
        raise ParseError(f"X says {length} bytes but carries {len(data)}")
    return c.WriteMemory(addr, data)


def _resume(cls: type[c.Continue] | type[c.Step], with_signal: bool) -> Callable[[bytes], c.Command]:
    def parse(args: bytes) -> c.Command:
        if with_signal:
            sig, _, addr = args.partition(b";")
            return cls(_hex(sig), _hex(addr) if addr else None)
        return cls(None, _hex(args) if args else None)

    return parse


def _breakpoint(cls: type[c.InsertBreakpoint] | type[c.RemoveBreakpoint]) -> Callable[[bytes], c.Command]:
    def parse(args: bytes) -> c.Command:
        fields = args.split(b";")[0].split(b",")  # conditions/commands after ';' are not offered
        if len(fields) != 3:
            raise ParseError("expected type,addr,kind")
        try:
            kind = c.BreakpointType(_hex(fields[0]))
        except ValueError:
            raise ParseError(f"unknown breakpoint type {fields[0]!r}") from None
        return cls(kind, _hex(fields[1]), _hex(fields[2]))

    return parse


def _write_register(args: bytes) -> c.Command:
    num, sep, value = args.partition(b"=")
    if not sep:
        raise ParseError("expected n=value")
    return c.WriteRegister(_hex(num), _hex_bytes(value))


def _set_thread(args: bytes) -> c.Command:
    if len(args) < 2 or args[:1] not in (b"g", b"c"):
        raise ParseError("expected Hg<thread> or Hc<thread>")
    return c.SetThread(args[:1].decode(), _thread(args[1:].decode("ascii", "replace")))


def _vcont(args: bytes) -> c.Command:
    actions = []
    for item in args.split(b";")[1:]:
        act, _, thread = item.decode("ascii", "replace").partition(":")
        tid = _thread(thread) if thread else None
        if act in ("c", "s", "t"):
            actions.append(c.VContAction(act, None, tid))
        elif act[:1] in ("C", "S") and len(act) > 1:
            actions.append(c.VContAction(act[0].lower(), _hex(act[1:]), tid))
        else:
            raise ParseError(f"unsupported vCont action {act!r}")
    if not actions:
        raise ParseError("vCont without actions")
    return c.VCont(tuple(actions))


def _xfer(args: bytes) -> c.Command:
    parts = args.decode("ascii", "replace").split(":")
    if len(parts) != 5 or parts[0] != "":
        raise ParseError("expected qXfer:object:read:annex:offset,length")
    _, obj, op, annex, span = parts
    if op != "read":
        return c.Unknown(b"qXfer" + args)
    offset, length = _addr_length(span.encode())
    return c.XferRead(obj, annex, offset, length)


def _monitor(args: bytes) -> c.Command:
    if not args.startswith(b","):
        raise ParseError("expected qRcmd,hex")
    try:
        return c.Monitor(_hex_bytes(args[1:]).decode("utf-8"))
    except UnicodeDecodeError:
        raise ParseError("monitor command is not text") from None


def _const(value: c.Command) -> Callable[[bytes], c.Command]:
    return lambda args: value


# Named packets: the name runs up to the first ':', ',' or ';' (see _split_name).
NAMED: dict[str, Callable[[bytes], c.Command]] = {
    "qSupported": lambda a: c.QSupported(tuple(f for f in a.lstrip(b":").decode("ascii", "replace").split(";") if f)),
    "vMustReplyEmpty": _const(c.MustReplyEmpty()),
    "QStartNoAckMode": _const(c.StartNoAckMode()),
    "vCont?": _const(c.VContQuery()),
    "vCont": _vcont,
    "qXfer": _xfer,
    "qAttached": _const(c.Attached()),
    "qC": _const(c.CurrentThread()),
    "qfThreadInfo": _const(c.ThreadInfoFirst()),
    "qsThreadInfo": _const(c.ThreadInfoNext()),
    "qSymbol": lambda a: c.Symbol(a.decode("ascii", "replace")),
    "qOffsets": _const(c.Offsets()),
    "vKill": _const(c.VKill()),
    "qRcmd": _monitor,
    "bs": _const(c.ReverseStep()),
    "bc": _const(c.ReverseContinue()),
}

# Single-letter packets: the arguments follow the letter directly.
LETTERS: dict[str, Callable[[bytes], c.Command]] = {
    "?": _const(c.HaltReason()),
    "g": _const(c.ReadRegisters()),
    "G": lambda a: c.WriteRegisters(_hex_bytes(a)),
    "p": lambda a: c.ReadRegister(_hex(a)),
    "P": _write_register,
    "m": _read_memory,
    "M": _write_memory_hex,
    "X": _write_memory_binary,
    "c": _resume(c.Continue, with_signal=False),
    "C": _resume(c.Continue, with_signal=True),
    "s": _resume(c.Step, with_signal=False),
    "S": _resume(c.Step, with_signal=True),
    "Z": _breakpoint(c.InsertBreakpoint),
    "z": _breakpoint(c.RemoveBreakpoint),
    "H": _set_thread,
    "T": lambda a: c.ThreadAlive(_thread(a.decode("ascii", "replace"))),
    "k": _const(c.Kill()),
    "D": _const(c.Detach()),
}


def _split_name(payload: bytes) -> tuple[str, bytes]:
    if payload.startswith(b"vCont?"):
        return "vCont?", payload[6:]
    end = len(payload)
    for sep in b":,;":
        i = payload.find(bytes((sep,)))
        if i != -1:
            end = min(end, i)
    return payload[:end].decode("ascii", "replace"), payload[end:]


_NAMED_FIRST = frozenset(name.encode()[0] for name in NAMED)
"""First bytes of the named packets: any other packet is a single letter (``m``, ``g``, ``Z``...) at once."""


def parse(payload: bytes) -> c.Command:
    """The command a packet payload carries."""
    if not payload:
        return c.Unknown(payload)
    if payload[0] not in _NAMED_FIRST:
        letter = LETTERS.get(chr(payload[0]))
        return c.Unknown(payload) if letter is None else letter(payload[1:])
    name, args = _split_name(payload)
    named = NAMED.get(name)
    if named is not None:
        return named(args)
    if payload[:1] in (b"q", b"Q", b"v"):  # an unknown general query or v packet
        return c.Unknown(payload)
    letter = LETTERS.get(chr(payload[0]))
    if letter is None:
        return c.Unknown(payload)
    return letter(payload[1:])
