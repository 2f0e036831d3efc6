"""``chronicorn locate``, ``chronicorn demo`` and the Python API behind them, on three bugs of different kinds.

Expected lines come from the guests' sources (the line carrying the bug's comment), never hard-coded.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gdbstub.client import GdbClient, ServerProcess, StopReason
from tests.conftest import GUESTS, ROOT, XLENS_RV64_SLOW, guest
from tests.e2e.gdb import require_gdb

pytestmark = pytest.mark.gdb

BUG_INPUT = GUESTS / "inputs" / "cmdint-bug.txt"
OK_INPUT = GUESTS / "inputs" / "cmdint-ok.txt"


def line_of(source: str, marker: str) -> int:
    lines = (GUESTS / source).read_text().splitlines()
    return next(n for n, text in enumerate(lines, 1) if marker in text)


def chronicorn(*args: str) -> subprocess.CompletedProcess[str]:
    require_gdb()
    return subprocess.run([sys.executable, "-m", "gdbstub.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def cmdint_recording(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("rec") / "cmdint.chrec"
    proc = chronicorn("record", str(guest("rv32", "cmdint")), "-o", str(path), "--uart-input", str(BUG_INPUT))
    assert proc.returncode == 7 and "ASSERT FAILED" in proc.stdout
    return str(path)


def test_locate_finds_the_overflowing_copy(cmdint_recording: str) -> None:
    proc = chronicorn("locate", cmdint_recording, "--watch", "probe.scale")
    assert proc.returncode == 0, proc.stderr
    copy_line = line_of("cmdint.c", "*dst++ = *text++;")
    assert f"set_name  ./cmdint.c:{copy_line}" in proc.stdout
    assert "*dst++ = *text++;" in proc.stdout and "instruction: sb" in proc.stdout


@pytest.mark.slow
def test_locate_json_report_is_complete_and_consistent(cmdint_recording: str) -> None:
    proc = chronicorn("locate", cmdint_recording, "--watch", "probe.scale", "--depth", "4", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # stdout is only the JSON document
    assert report["found"] is True and report["watch"] == "probe.scale"
    writes = report["writes"]
    assert len(writes) == 4
    for write in writes:
        assert set(write) == {"icount", "pc", "function", "file", "line", "source", "instruction", "old", "new"}
        assert isinstance(write["icount"], int) and isinstance(write["pc"], int)
        assert write["icount"] < report["from_icount"]
    # The chain: each write's "old" is the next (earlier) write's "new"; three overflowing bytes, then set_scale.
    for later, earlier in zip(writes, writes[1:], strict=False):
        assert later["old"] == earlier["new"] and later["icount"] > earlier["icount"]
    assert [w["function"] for w in writes] == ["set_name"] * 3 + ["set_scale"]
    assert writes[3]["new"] == "3" and writes[3]["line"] == line_of("cmdint.c", "probe.scale = (uint32_t)value;")


@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
def test_locate_records_a_guest_first_stray_pointer(xlen: str) -> None:
    proc = chronicorn("locate", str(guest(xlen, "stray")), "--watch", "pool[0].value")
    assert proc.returncode == 0, proc.stderr
    assert "CHECK FAILED" in proc.stdout  # the recording's output is shown
    assert f"complete_request  ./stray.c:{line_of('stray.c', 'the stray write')}" in proc.stdout
    assert "value: 100 -> 0" in proc.stdout


@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
def test_locate_off_by_one_in_an_interrupt_handler(xlen: str) -> None:
    proc = chronicorn("locate", str(guest(xlen, "isrbug")), "--watch", "capture.guard", "--json")
    assert proc.returncode == 0, proc.stderr
    (write,) = json.loads(proc.stdout)["writes"]
    assert write["function"] == "trap_handler"
    assert write["line"] == line_of("isrbug.c", "capture.samples[count++] =")
    assert write["old"] == str(0x600DCAFE)


@pytest.mark.slow
def test_locate_not_found_before_the_write_and_bad_inputs(cmdint_recording: str, tmp_path) -> None:  # noqa: ANN001
    proc = chronicorn("locate", cmdint_recording, "--watch", "probe.scale", "--at", "1000")
    assert proc.returncode == 6 and "none" in proc.stdout
    proc = chronicorn("locate", cmdint_recording, "--watch", "no_such_variable")
    assert proc.returncode == 2 and 'No symbol "no_such_variable"' in proc.stderr
    junk = tmp_path / "junk.chrec"
    junk.write_bytes(b"CHRONREC" + b"\xff" * 40)
    proc = chronicorn("locate", str(junk), "--watch", "probe.scale")
    assert proc.returncode == 2 and "chronicorn:" in proc.stderr and "Traceback" not in proc.stderr
    proc = chronicorn("locate", str(ROOT / "README.md"), "--watch", "x")
    assert proc.returncode == 2 and "not an ELF file" in proc.stderr
    proc = chronicorn("locate", cmdint_recording, "--watch", "probe.scale", "--depth", "0")
    assert proc.returncode == 2


def test_locate_at_an_icount_with_a_healthy_run() -> None:
    proc = chronicorn("locate", str(guest("rv32", "cmdint")), "--uart-input", str(OK_INPUT),
                      "--watch", "probe.scale", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (write,) = json.loads(proc.stdout)["writes"]
    assert write["function"] == "set_scale" and (write["old"], write["new"]) == ("1", "3")


@pytest.mark.slow
def test_demo_finds_the_culprit() -> None:
    proc = chronicorn("demo")
    assert proc.returncode == 0, proc.stderr
    assert "ASSERT FAILED" in proc.stdout and "(gdb) reverse-continue" in proc.stdout
    assert f"set_name  ./cmdint.c:{line_of('cmdint.c', '*dst++ = *text++;')}" in proc.stdout


@pytest.mark.slow
def test_api_stops_are_values_including_the_ends_of_history(cmdint_recording: str) -> None:
    require_gdb()
    elf = guest("rv32", "cmdint")
    with ServerProcess(cmdint_recording, command="replay") as server, GdbClient(elf) as gdb:
        start = gdb.connect(server.port)
        assert start.pc == 0x1000 and gdb.icount() == 0
        assert gdb.stepi(reverse=True).reason == StopReason.NO_HISTORY  # a value, not an exception
        number = gdb.break_at("set_name")
        stop = gdb.cont()
        assert stop.reason == StopReason.BREAKPOINT and stop.location.function == "set_name"
        first = gdb.icount()
        assert gdb.evaluate("probe.scale") == "1"
        gdb.delete(number)
        stop = gdb.finish()
        assert stop.reason == StopReason.FUNCTION_FINISHED and stop.location.function == "main"
        stop = gdb.step(reverse=True)
        assert stop.location.function == "set_name"
        assert gdb.finish(reverse=True).location.function == "main"
        assert gdb.icount() <= first  # set_name is inlined: its first instruction is also main's

        assert gdb.cont().reason == StopReason.NO_HISTORY  # the end of the recording
        assert gdb.read_memory(0x1000, 4) == bytes.fromhex("97020000")  # auipc t0, 0 (the reset vector)
        location = gdb.seek(first)
        assert location.function == "set_name" and gdb.source_line(location) is not None
        assert gdb.registers()["pc"] == location.pc


@pytest.mark.slow
def test_the_bisection_script_finds_when_the_invariant_broke(cmdint_recording: str) -> None:
    require_gdb()
    script = ROOT / "scripts" / "find_invariant_break.py"
    proc = subprocess.run([sys.executable, str(script), cmdint_recording, "probe.scale >= 1 && probe.scale <= 100"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # The second overflowing byte makes scale 0x3332 (> 100): one of the copy loop's stores, in set_name.
    assert "set_name" in proc.stdout and "*dst++ = *text++;" in proc.stdout
    first = int(proc.stdout.split("first broken at icount ")[1].split(":")[0])
    report = json.loads(chronicorn("locate", cmdint_recording, "--watch", "probe.scale", "--json").stdout)
    assert first <= report["writes"][0]["icount"] + 1  # no later than the last write of the overflow
