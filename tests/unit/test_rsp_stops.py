"""gdbstub/rsp/stops.py: stop reasons -> stop-reply payloads (GDB manual, Stop Reply Packets)."""

from __future__ import annotations

import pytest

from gdbstub.rsp.stops import (
    SIGINT,
    SIGSEGV,
    SIGTRAP,
    Breakpoint,
    Exited,
    HistoryBoundary,
    HistoryEnd,
    Signal,
    Watchpoint,
    stop_reply,
)


@pytest.mark.parametrize(
    ("stop", "reply"),
    [
        (Signal(SIGTRAP), b"T05thread:1;"),
        (Signal(SIGINT), b"T02thread:1;"),
        (Signal(SIGSEGV), b"T0bthread:1;"),
        (Breakpoint(), b"T05thread:1;"),  # no swbreak/hwbreak: not offered (see Breakpoint)
        (Watchpoint(2, 0x80001000), b"T05thread:1;watch:80001000;"),
        (Watchpoint(3, 0x10), b"T05thread:1;rwatch:10;"),
        (Watchpoint(4, 0x10), b"T05thread:1;awatch:10;"),
        (HistoryEnd(HistoryBoundary.BEGIN), b"T05thread:1;replaylog:begin;"),
        (HistoryEnd(HistoryBoundary.END), b"T05thread:1;replaylog:end;"),
        (Exited(0), b"W00"),
        (Exited(3), b"W03"),
        (Exited(0x1FF), b"Wff"),
    ],
)
def test_stop_reply(stop: object, reply: bytes) -> None:
    assert stop_reply(stop) == reply  # type: ignore[arg-type]


def test_thread_id_is_hex() -> None:
    assert stop_reply(Signal(SIGTRAP), thread=0x1A) == b"T05thread:1a;"
