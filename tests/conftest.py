"""Shared fixtures: guest paths, running the machine and the CLI."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import Machine, MachineConfig, RunResult

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "tests" / "guests" / "riscv"
EXPECTED = GUESTS / "expected"
XLENS = ("rv32", "rv64")
GUEST_NAMES = ("hello", "timer", "echo", "compute", "fault", "traps")
ECHO_INPUT = (EXPECTED / "echo.in").read_bytes()


def guest(xlen: str, name: str) -> Path:
    """Path of a committed guest ELF."""
    return GUESTS / "build" / xlen / f"{name}.elf"


def expected_output(xlen: str, name: str) -> bytes:
    """The UART output QEMU gives for a guest (recorded in tests/guests/riscv/expected)."""
    specific = EXPECTED / f"{name}.{xlen}.out"
    return (specific if specific.exists() else EXPECTED / f"{name}.out").read_bytes()


def guest_input(name: str) -> bytes:
    return ECHO_INPUT if name == "echo" else b""


@dataclass
class Run:
    machine: Machine
    result: RunResult
    output: bytes


def make_machine(
    path: Path,
    schedule: list[tuple[int, bytes]] | None = None,
    clock_ns: int = 0,
    native: bool = True,
    out: bytearray | None = None,
) -> Machine:
    """A machine with scripted (deterministic) inputs; UART output appended to ``out``."""
    sink = out if out is not None else bytearray()
    return Machine(
        load_image(path), ScriptedInputs(clock_ns, schedule), sink.append, MachineConfig(prefer_native=native)
    )


def run_machine(path: Path, max_icount: int | None = None, **kw: object) -> Run:
    out = bytearray()
    machine = make_machine(path, out=out, **kw)  # type: ignore[arg-type]
    result = machine.run(max_icount)
    return Run(machine, result, bytes(out))


def run_cli(*args: str, stdin: bytes = b"", timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """Run the real ``chronicorn`` command line."""
    return subprocess.run(
        [sys.executable, "-m", "gdbstub.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture(params=XLENS)
def xlen(request: pytest.FixtureRequest) -> str:
    return request.param
