"""Watchpoints on device registers are refused when gdb inserts them (issue 11, defect 1).

Before: ``Z2,10000000,1`` (the UART), ``c``, ``c`` recursed inside the machine until Python's recursion
limit and gdb lost the connection. Device registers change without a guest store and reading them has side
effects (or depends on the exact icount), so a watchpoint there is refused with an error gdb shows
("Could not insert hardware watchpoint"), and the session goes on.
"""

from __future__ import annotations

import pytest

from gdbstub.cli.timelines import live_timeline
from gdbstub.rsp.codec import Decoder, Packet, encode
from gdbstub.server import drive
from gdbstub.session import Session
from gdbstub.target import TimelineTarget
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import MachineConfig
from replay.store import SnapshotStore
from tests.conftest import guest
from tests.e2e.gdb import require_gdb


def _session(name: str = "timer") -> Session:
    timeline = live_timeline(load_image(guest("rv32", name)), ScriptedInputs(), MachineConfig(), SnapshotStore())
    session = Session(TimelineTarget(timeline))
    drive(session, encode(b"QStartNoAckMode"))
    return session


def _replies(session: Session, *packets: bytes) -> list[bytes]:
    decoder = Decoder()
    out: list[bytes] = []
    for packet in packets:
        out += [e.payload for e in decoder.feed(drive(session, encode(packet))) if isinstance(e, Packet)]
    return [r for r in out if not r.startswith(b"O") or r == b"OK"]


@pytest.mark.parametrize(
    "insert",
    [b"Z2,10000000,1", b"Z4,10000000,1", b"Z2,2004000,8", b"Z3,200bff8,4", b"Z2,7ffffffe,4", b"Z3,100000,4"],
)
def test_a_watchpoint_outside_ram_is_refused_and_the_session_goes_on(insert: bytes) -> None:
    session = _session()
    assert _replies(session, insert) == [b"E0e"]
    stops = _replies(session, b"c", b"bc", b"c")  # (the sequence that used to drop the connection)
    assert stops[0].startswith(b"T05") and b"replaylog:end" in stops[0]
    assert stops[1].startswith(b"T05") and b"replaylog:begin" in stops[1]
    assert _replies(session, b"?")[0].startswith(b"T")


def test_a_watchpoint_in_ram_next_to_a_refused_one_still_works() -> None:
    session = _session()
    ticks = load_image(guest("rv32", "timer")).symbols["ticks"]
    assert _replies(session, b"Z2,10000000,1", b"Z2,%x,4" % ticks) == [b"E0e", b"OK"]
    assert _replies(session, b"c")[0].startswith(b"T05thread:1;watch:%x;" % ticks)


def test_gdb_shows_the_refusal_and_goes_on(debug) -> None:  # noqa: ANN001
    require_gdb()
    _, gdb = debug(guest("rv32", "timer"))
    assert gdb.cli("watch *(char*)0x10000000").text.startswith("Hardware watchpoint 1")
    refused = gdb.cli("continue").text
    assert "Could not insert hardware watchpoint 1." in refused and refused.endswith("Command aborted.\n")
    gdb.cli("delete")
    assert "No more reverse-execution history" in gdb.cli("continue").text
    assert gdb.cli("reverse-stepi").stop is not None
