"""``chronicorn locate`` on the planted overflow bug of the Arm guests (cmdbug: an unchecked index writes the
global after the array), as on RISC-V (test_locate.py): recorded, replayed, the culprit line found."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli
from tests.e2e.gdb import require_gdb
from tests.integration.test_arm import BOARDS

pytestmark = pytest.mark.gdb

CULPRIT = {"aarch64": (73, "2", "4"), "cortexm": (79, "10", "7")}  # cmdbug.c line, value before, after


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_locate_finds_the_overflowing_store(board: str) -> None:
    require_gdb()
    b = BOARDS[board]
    result = run_cli("locate", str(b.elf("cmdbug")), "--watch", "scale", "--json", "--uart-input",
                     str(b.directory / "inputs" / "cmdbug-bug.txt"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    first = report["writes"][0]
    line, old, new = CULPRIT[board]
    assert first["function"] == "cmd_set" and first["line"] == line
    assert (str(first["old"]), str(first["new"])) == (old, new)
