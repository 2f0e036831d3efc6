"""Shared fixtures: guest paths, running the machine and the CLI."""

from __future__ import annotations

import ctypes
import os
import select
import subprocess
import sys
import time
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
# For the biggest XLEN x guest matrices: the rv64 half is slow, so the fast subset (-m "not slow") runs each
# case once, on rv32 (rv64 keeps fast unit and integration tests of its own).
XLENS_RV64_SLOW = ["rv32", pytest.param("rv64", marks=pytest.mark.slow)]
# Likewise for virtio-mmio's two interfaces: the modern half is slow.
INTERFACES_MODERN_SLOW = ["legacy", pytest.param("modern", marks=pytest.mark.slow)]
GUEST_NAMES = ("hello", "timer", "echo", "compute", "fault", "traps")
ECHO_INPUT = (EXPECTED / "echo.in").read_bytes()


def stock_library_dir() -> Path:
    """Where scripts/build_unicorn.py keeps the wheel's Unicorn library (``LIBUNICORN_PATH`` loads it)."""
    import importlib.util

    spec = importlib.util.find_spec("unicorn")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "lib" / "stock"


def require_tool(available: object, message: str) -> None:
    """Skip the test when a tool it needs is missing, or fail when $CHRONICORN_REQUIRE_TOOLS is 1 (CI).

    ``available`` is a Path (the tool is there when the file exists) or any other value, truthy when the
    tool is there: ``shutil.which(name)``, a bool, ``native_library_path()``.
    """
    __tracebackhide__ = True  # reported at the test's line, not here
    if isinstance(available, Path):
        available = available.exists()
    if available:
        return
    if os.environ.get("CHRONICORN_REQUIRE_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


IN_MODIFY = 0x2  # <sys/inotify.h>


def wait_for_growth(path: Path, size: int, timeout: float = 30) -> int:
    """Block until the file ``path`` holds more than ``size`` bytes; return its size then.

    Woken by the kernel at each write to the file (inotify), so no polling; ``timeout`` only turns a file
    that never grows into a failure.
    """
    __tracebackhide__ = True
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1")
    try:
        if libc.inotify_add_watch(fd, os.fsencode(path), IN_MODIFY) < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
        deadline = time.monotonic() + timeout
        while (now := path.stat().st_size) <= size:  # checked after the watch is set: no write is missed
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                pytest.fail(f"{path} did not grow past {size} bytes within {timeout} s")
            os.read(fd, 4096)  # the events themselves; the size is what matters
        return now
    finally:
        os.close(fd)


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


def varint(value: int) -> bytes:
    """A recording varint written independently of ``replay.log`` (tests craft files with it)."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
