"""The AArch64 ``virt`` board: every guest as on QEMU 7.2, exact icount, record/replay, state round trips.

Guests: tests/guests/aarch64 (built with aarch64-linux-gnu-gcc, run there on ``qemu-system-aarch64 -M virt
-cpu cortex-a72 -m 128M -nographic -kernel X``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from machine.arm_virt import ArmVirtMachine
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.results import RunKind
from machine.state import decode_state, encode_state
from tests.conftest import ROOT, require_tool, run_cli

A64 = ROOT / "tests" / "guests" / "aarch64"
GUESTS = {  # name -> (stdin file, expected output file)
    "hello": (None, "hello.out"),
    "timer": (None, "timer.out"),
    "echo": ("expected/echo.in", "echo.out"),
    "compute": (None, "compute.out"),
    "fault": (None, "fault.out"),
    "cmdbug-ok": ("inputs/cmdbug-ok.txt", "cmdbug-ok.out"),
    "cmdbug-bug": ("inputs/cmdbug-bug.txt", "cmdbug-bug.out"),
}


def elf(name: str) -> Path:
    return A64 / "build" / f"{name.split('-')[0]}.elf"


def stdin_of(name: str) -> bytes:
    path = GUESTS[name][0]
    return (A64 / path).read_bytes() if path else b""


def machine(name: str, out: bytearray, schedule: list[tuple[int, bytes]] | None = None) -> ArmVirtMachine:
    return ArmVirtMachine(load_image(elf(name)), ScriptedInputs(0, schedule), out.append)


@pytest.mark.parametrize("name", sorted(GUESTS))
def test_uart_output_is_qemus(name: str) -> None:
    """``chronicorn run`` prints what QEMU printed (expected/, recorded from QEMU 7.2) and exits 0."""
    ours = run_cli("run", str(elf(name)), stdin=stdin_of(name))
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == (A64 / "expected" / GUESTS[name][1]).read_bytes()


@pytest.mark.qemu
@pytest.mark.parametrize("name", ["hello", "timer", "fault", "cmdbug-bug"])
def test_same_uart_output_as_qemu_itself(name: str) -> None:
    """The same ELF on qemu-system-aarch64 now, not only its recorded transcript."""
    require_tool(shutil.which("qemu-system-aarch64"), "qemu-system-aarch64 not installed (apt-get qemu-system-arm)")
    cmd = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-m", "128M", "-display", "none",
           "-serial", "stdio", "-monitor", "none", "-kernel", str(elf(name))]  # fmt: skip
    theirs = subprocess.run(cmd, input=stdin_of(name), capture_output=True, timeout=60)
    ours = run_cli("run", str(elf(name)), stdin=stdin_of(name))
    assert ours.stdout == theirs.stdout and ours.stdout


def test_psci_system_off_ends_the_run_and_the_icount_is_exact() -> None:
    """hello ends with PSCI SYSTEM_OFF at the same icount in every run, and a run cut anywhere resumes to it."""
    out = bytearray()
    whole = machine("hello", out).run()
    assert whole.kind == RunKind.EXITED and whole.exit_code == 0
    assert out.startswith(b"Hello from chronicorn!")
    for cut in (1, 17, 1000, whole.icount - 1):
        parts = machine("hello", bytearray())
        first = parts.run(cut)
        assert (first.kind, first.icount) == (RunKind.LIMIT, cut)
        rest = parts.run()
        assert (rest.kind, rest.icount, rest.pc) == (RunKind.EXITED, whole.icount, whole.pc)


def test_timer_interrupts_land_at_the_same_icounts_in_every_run() -> None:
    """The generic timer counts the virtual clock: the digest at the end is the same run after run."""
    digests = set()
    for _ in range(2):
        m = machine("timer", bytearray())
        result = m.run()
        assert result.kind == RunKind.EXITED
        digests.add((result.icount, m.digest()))
    assert len(digests) == 1


def test_state_round_trip_through_a_file_resumes_identically() -> None:
    """A state taken mid-run (inside the timer guest's interrupt traffic), encoded, decoded into a fresh machine
    and run on gives the same end as the original run."""
    out = bytearray()
    original = machine("timer", out)
    original.run(3000)
    blob = encode_state(original.save_state(), original.arch)
    end = original.run()
    fresh = machine("timer", bytearray())
    fresh.restore_state(decode_state(blob, fresh))  # type: ignore[arg-type]
    again = fresh.run()
    assert (again.kind, again.icount, again.pc) == (end.kind, end.icount, end.pc)
    assert fresh.digest() == original.digest()


def test_uart_input_at_exact_icounts_reaches_the_echo_guest() -> None:
    """Scripted UART input enters at its icount through the PL011's receive interrupt (GIC SPI 1)."""
    out = bytearray()
    m = machine("echo", out, schedule=[(20000, b"abc\n"), (40000, b"q")])
    assert m.run().kind == RunKind.EXITED
    assert b"ABC" in out and out.endswith(b"bye\n")


def test_record_then_replay_verifies(tmp_path: Path) -> None:
    """``record`` writes a recording of an AArch64 run; ``replay`` runs it again, checking every verification
    point, and prints the same output."""
    rec = tmp_path / "echo.chron"
    recorded = run_cli("record", str(elf("echo")), "-o", str(rec), stdin=stdin_of("echo"))
    assert recorded.returncode == 0, recorded.stderr
    replayed = run_cli("replay", str(rec))
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout == (A64 / "expected" / "echo.out").read_bytes()
    info = run_cli("info", str(rec))
    assert info.returncode == 0 and b"aarch64" in info.stdout


def test_an_image_of_another_architecture_is_refused() -> None:
    riscv = ROOT / "tests" / "guests" / "riscv" / "build" / "rv64" / "hello.elf"
    with pytest.raises(Exception, match="aarch64"):
        ArmVirtMachine(load_image(riscv), ScriptedInputs(), lambda b: None)
