"""Named snapshots and bookmarks outlive the session (issue 16 item 3), from the real gdb-multiarch.

``serve``: stop somewhere, ``monitor snapshot save A``, step on, ``monitor bookmark B``, run to the end,
``monitor record save``; then ``replay FILE --port 0``: ``monitor snapshot list`` shows both, loading A lands
at A's icount with A's registers (without re-running there), ``reverse-stepi`` from it retraces what the live
session saw, B is reached with B's registers, and ``replay FILE`` (no port) still replays to the same end.
compute runs long enough for verification points: its A is checked against the next one when first loaded.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import expected_output, guest, run_cli
from tests.e2e.gdb import Gdb, ServerProcess, require_gdb

pytestmark = pytest.mark.gdb

# guest -> (where to stop first: a breakpoint's function and hits to pass, or an icount to seek to; what loading
# A says about its check)
STOPS = {"timer": ("trap_handler", 1, "trusted as written"), "compute": (2_600_000, 0, "agrees with history at icount")}


def icount(gdb: Gdb) -> int:
    return int(gdb.console("monitor icount"))


def here(gdb: Gdb) -> tuple[int, dict[str, int]]:
    gdb.mi("maint flush register-cache")  # (after a monitor command moved the machine behind gdb's back)
    return icount(gdb), gdb.registers()


@pytest.mark.parametrize(("xlen", "name"), [("rv32", "timer"), pytest.param("rv64", "timer", marks=pytest.mark.slow),
                                             pytest.param("rv32", "compute", marks=pytest.mark.slow)])  # fmt: skip
def test_names_saved_in_a_recording_come_back_in_its_replay(xlen: str, name: str, debug, tmp_path) -> None:  # noqa: ANN001
    elf = guest(xlen, name)
    where, ignore, check = STOPS[name]
    _, gdb = debug(elf, "--save-dir", str(tmp_path))
    if isinstance(where, str):
        gdb.break_at(where, ignore=ignore)
        gdb.cont()
        gdb.delete()
    else:  # (compute's functions are inlined into main: no breakpoint to stop at) run it all, then go back
        gdb.cont()
        gdb.seek(where)
    for _ in range(3):
        gdb.stepi()
    before_a = here(gdb)
    gdb.stepi()
    at_a = here(gdb)
    assert gdb.console("monitor snapshot save A") == f"snapshot 'A' saved at icount {at_a[0]}\n"
    for _ in range(4):
        gdb.stepi()
    at_b = here(gdb)
    assert gdb.console("monitor bookmark B") == f"bookmark 'B' at icount {at_b[0]}, pc {at_b[1]['pc']:#x}\n"
    gdb.cont()  # to the guest's exit: the end of history
    end = icount(gdb)
    assert "saved icount 0.." in gdb.console("monitor record save names.chrec")
    path = tmp_path / "names.chrec"

    require_gdb()
    with ServerProcess(path, command="replay") as server, Gdb(elf) as replay:
        replay.connect(server.port)
        assert icount(replay) == 0
        listed = replay.console("monitor snapshot list")
        assert listed == (f"A  icount {at_a[0]}  (from the recording)\n"
                          f"B  icount {at_b[0]}  bookmark, pc {at_b[1]['pc']:#x}\n")  # fmt: skip
        reply = replay.console("monitor snapshot load A")
        assert reply.startswith(f"icount {at_a[0]}, pc {at_a[1]['pc']:#x}\n") and check in reply
        assert here(replay) == at_a
        replay.stepi(reverse=True)
        assert here(replay) == before_a
        replay.stepi()
        assert here(replay) == at_a
        assert replay.console("monitor bookmark goto B").startswith(f"icount {at_b[0]}")
        assert here(replay) == at_b
        assert re.search(r"^A  icount \d+\n", replay.console("monitor snapshot list"))  # checked now
        replay.cont()
        assert icount(replay) == end and "No more reverse-execution history" in replay.output

    replayed = run_cli("replay", str(path))
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == expected_output(xlen, name)
    info = run_cli("info", str(path)).stdout.decode()
    assert "format_version       6\n" in info and "names                1 bookmarks, 1 named snapshots\n" in info
