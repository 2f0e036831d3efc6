"""gdbstub/rsp/parse.py: payloads as gdb-multiarch sends them -> typed commands."""

from __future__ import annotations

import pytest

from gdbstub.rsp import commands as c
from gdbstub.rsp.parse import ParseError, parse


@pytest.mark.parametrize(
    ("payload", "command"),
    [
        (b"qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386",
         c.QSupported(("multiprocess+", "swbreak+", "hwbreak+", "xmlRegisters=i386"))),
        (b"qSupported", c.QSupported(())),
        (b"vMustReplyEmpty", c.MustReplyEmpty()),
        (b"QStartNoAckMode", c.StartNoAckMode()),
        (b"?", c.HaltReason()),
        (b"g", c.ReadRegisters()),
        (b"G0102", c.WriteRegisters(b"\x01\x02")),
        (b"p20", c.ReadRegister(0x20)),
        (b"P5=78563412", c.WriteRegister(5, b"\x78\x56\x34\x12")),
        (b"m80000000,4", c.ReadMemory(0x80000000, 4)),
        (b"M80000000,2:abcd", c.WriteMemory(0x80000000, b"\xab\xcd")),
        (b"X80000000,3:a$}", c.WriteMemory(0x80000000, b"a$}")),
        (b"X80000000,0:", c.WriteMemory(0x80000000, b"")),
        (b"c", c.Continue()),
        (b"c80000010", c.Continue(None, 0x80000010)),
        (b"C0b", c.Continue(11, None)),
        (b"s", c.Step()),
        (b"S05;80000000", c.Step(5, 0x80000000)),
        (b"vCont?", c.VContQuery()),
        (b"vCont;c", c.VCont((c.VContAction("c"),))),
        (b"vCont;s:1;c", c.VCont((c.VContAction("s", None, 1), c.VContAction("c")))),
        (b"vCont;C05:p1.-1", c.VCont((c.VContAction("c", 5, -1),))),
        (b"Z0,80000010,2", c.InsertBreakpoint(c.BreakpointType.SOFTWARE, 0x80000010, 2)),
        (b"z1,80000010,4", c.RemoveBreakpoint(c.BreakpointType.HARDWARE, 0x80000010, 4)),
        (b"Z2,80001000,8", c.InsertBreakpoint(c.BreakpointType.WRITE_WATCH, 0x80001000, 8)),
        (b"qXfer:features:read:target.xml:0,fff", c.XferRead("features", "target.xml", 0, 0xFFF)),
        (b"qXfer:memory-map:read::0,1000", c.XferRead("memory-map", "", 0, 0x1000)),
        (b"qAttached", c.Attached()),
        (b"qAttached:1", c.Attached()),
        (b"qC", c.CurrentThread()),
        (b"qfThreadInfo", c.ThreadInfoFirst()),
        (b"qsThreadInfo", c.ThreadInfoNext()),
        (b"Hg0", c.SetThread("g", 0)),
        (b"Hc-1", c.SetThread("c", -1)),
        (b"T1", c.ThreadAlive(1)),
        (b"qSymbol::", c.Symbol("::")),
        (b"qOffsets", c.Offsets()),
        (b"k", c.Kill()),
        (b"vKill;1", c.VKill()),
        (b"D", c.Detach()),
        (b"D;1", c.Detach()),
        (b"qRcmd,69636f756e74", c.Monitor("icount")),
        (b"bs", c.ReverseStep()),
        (b"bc", c.ReverseContinue()),
        (b"qTStatus", c.Unknown(b"qTStatus")),
        (b"vFile:open:x", c.Unknown(b"vFile:open:x")),
        (b"!", c.Unknown(b"!")),
        (b"", c.Unknown(b"")),
    ],
)  # fmt: skip
def test_parse(payload: bytes, command: c.Command) -> None:
    assert parse(payload) == command


@pytest.mark.parametrize(
    "payload",
    [b"mzz,4", b"m1000", b"M1000,4:ab", b"M1000,1:zz", b"X10,5:abc", b"Z9,1000,4", b"Z0,1000", b"Pzz",
     b"P1", b"Hx1", b"vCont;q", b"vCont", b"qRcmd,zz", b"qRcmd", b"qXfer:features:read:x", b"pq"],
)  # fmt: skip
def test_malformed_known_packets_raise(payload: bytes) -> None:
    with pytest.raises(ParseError):
        parse(payload)


def test_non_read_xfer_is_unknown() -> None:
    assert isinstance(parse(b"qXfer:features:write:x:0,1"), c.Unknown)


# -- the single-letter fast path of parse() and the regex _hex give what the general route gives -----------
from hypothesis import example, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gdbstub.rsp.parse import LETTERS, NAMED, _hex, _split_name  # noqa: E402

_HEX = frozenset("0123456789abcdefABCDEF")


def _hex_by_set(text: bytes | str) -> int:
    """The definition: ASCII hex digits only, at least one."""
    digits = text.decode("ascii", "replace") if isinstance(text, bytes) else text
    if not digits or not set(digits) <= _HEX:
        raise ParseError(f"not a hex number: {text!r}")
    return int(digits, 16)


def _parse_by_name_first(payload: bytes) -> c.Command:
    """The general route: the name up to ':', ',' or ';' first, then the single letters."""
    if not payload:
        return c.Unknown(payload)
    name, args = _split_name(payload)
    named = NAMED.get(name)
    if named is not None:
        return named(args)
    if payload[:1] in (b"q", b"Q", b"v"):
        return c.Unknown(payload)
    letter = LETTERS.get(chr(payload[0]))
    return c.Unknown(payload) if letter is None else letter(payload[1:])


def _outcome(fn, arg):  # noqa: ANN001, ANN202
    try:
        return fn(arg)
    except ParseError as exc:
        return ("ParseError", str(exc))


HEX_DIGITS = st.lists(st.sampled_from(b"0123456789abcdefABCDEF"), max_size=20).map(bytes)
HEXISH = st.one_of(st.lists(st.sampled_from(b"0123456789abcdefABCDEF,:;=xX_ -+.p"), max_size=24).map(bytes),
                   st.binary(max_size=8))  # fmt: skip
PAYLOADS = st.one_of(
    st.tuples(st.sampled_from(sorted({*LETTERS, *NAMED, "q", "Q", "v", "b", "x"})), HEXISH).map(
        lambda t: t[0].encode() + t[1]
    ),
    st.binary(max_size=24),
)


@given(PAYLOADS)
def test_parse_agrees_with_the_general_route(payload: bytes) -> None:
    assert _outcome(parse, payload) == _outcome(_parse_by_name_first, payload)


@given(st.one_of(HEXISH, st.text(max_size=12), HEX_DIGITS))
@example(b"1_0")
@example(b" 1")
@example(b"1\n")
@example(b"+1")
@example(b"0x1")
@example(b"")
@example("\u0661")  # an Arabic-Indic digit: int() takes it, a hex number does not
def test_hex_is_hex_digits_only(text: bytes | str) -> None:
    assert _outcome(_hex, text) == _outcome(_hex_by_set, text)
