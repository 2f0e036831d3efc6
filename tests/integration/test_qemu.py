"""The same guests on QEMU (-M virt -bios none -kernel X) give byte-identical UART output."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import GUEST_NAMES, GUESTS, XLENS_RV64_SLOW, guest, guest_input, require_tool, run_cli

pytestmark = pytest.mark.qemu
OPENSBI_DIR = Path("/usr/lib/riscv64-linux-gnu/opensbi/generic")


def qemu(xlen: str) -> str:
    binary = f"qemu-system-riscv{xlen[2:]}"
    require_tool(shutil.which(binary), f"{binary} not installed")
    return binary


def read_qemu(cmd: list[str], stdin: bytes, want: int | None, timeout: float = 60) -> bytes:
    """QEMU's stdout: all of it when the guest exits, else its first ``want`` bytes."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        if want is None:
            out, _ = proc.communicate(stdin, timeout=timeout)
            return out
        proc.stdin.write(stdin)
        proc.stdin.close()
        out = b""
        while len(out) < want:
            chunk = proc.stdout.read1(want - len(out))
            if not chunk:
                break
            out += chunk
        return out
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
@pytest.mark.parametrize("name", GUEST_NAMES)
def test_same_uart_output_as_qemu(xlen: str, name: str) -> None:
    ours = run_cli("run", str(guest(xlen, name)), stdin=guest_input(name))
    cmd = [
        qemu(xlen),
        "-M",
        "virt",
        "-m",
        "128M",
        "-bios",
        "none",
        "-nographic",
        "-kernel",
        str(guest(xlen, name)),
    ]
    # The fault guest never exits on QEMU (the trap loops at mtvec=0): compare what it printed.
    theirs = read_qemu(cmd, guest_input(name), len(ours.stdout) if name == "fault" else None)
    assert ours.stdout == theirs
    assert ours.stdout  # every guest prints something


@pytest.mark.parametrize(("name", "input_name", "exit_code"), [("cmdint", "cmdint-bug.txt", 7), ("stray", None, 7)])
def test_bug_guests_fail_the_same_way_on_qemu(xlen: str, name: str, input_name: str | None, exit_code: int) -> None:
    """The firmware with bugs (demo, locate) fails on QEMU exactly as here: same output, same exit code."""
    stdin = (GUESTS / "inputs" / input_name).read_bytes() if input_name else b""
    ours = run_cli("run", str(guest(xlen, name)), stdin=stdin)
    cmd = [qemu(xlen), "-M", "virt", "-m", "128M", "-bios", "none", "-nographic", "-kernel", str(guest(xlen, name))]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=60)
    assert ours.returncode == proc.returncode == exit_code
    assert ours.stdout == proc.stdout and b"FAILED" in ours.stdout


def test_rtc_reads_the_host_clock_as_on_qemu(xlen: str) -> None:
    """The RTC guest prints the host time: both emulators must give a plausible, current one."""
    ours = run_cli("run", str(guest(xlen, "rtc")))
    cmd = [qemu(xlen), "-M", "virt", "-m", "128M", "-bios", "none", "-nographic", "-kernel", str(guest(xlen, "rtc"))]
    theirs = read_qemu(cmd, b"", None)
    for out in (ours.stdout, theirs):
        lines = out.decode().splitlines()
        assert lines[0].startswith("rtc ns: 0x") and lines[1] == "rtc plausible"
    ours_s = int(ours.stdout.split()[2], 16) // 10**9
    theirs_s = int(theirs.split()[2], 16) // 10**9
    assert abs(ours_s - theirs_s) < 120  # both read the same host clock


CPU_MODEL_LINES = (
    "Boot HART Priv Version",
    "Boot HART Base ISA",
    "Boot HART ISA Extensions",
    "Boot HART MHPM Count",
    "Boot HART MIDELEG",
    "Boot HART MEDELEG",
)


def _without_cpu_model(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if not ln.startswith(CPU_MODEL_LINES)]


@pytest.mark.slow
@pytest.mark.parametrize("firmware", ["fw_jump.elf", "fw_dynamic.elf"])
def test_opensbi_boots_to_its_banner_as_on_qemu(firmware: str) -> None:
    """Debian's OpenSBI fw_jump boots on our virt board and prints what it prints on QEMU.

    Only the lines describing the CPU model differ (Unicorn's CPU is QEMU 5's:
    priv spec 1.10, no H extension, no sstc, no HPM counters).
    """
    opensbi = OPENSBI_DIR / firmware
    require_tool(opensbi, "Debian's opensbi package is not installed")
    ours = run_cli("run", str(opensbi), "--max-insns", "16000000", timeout=300)  # (the 8 virtio nodes: ~11M)
    assert ours.returncode == 0, ours.stderr
    text = ours.stdout.decode()
    assert "OpenSBI v" in text and "Platform Name             : riscv-virtio,qemu" in text
    assert "Domain0 Next Mode         : S-mode" in text
    cmd = [qemu("rv64"), "-M", "virt", "-m", "128M", "-bios", str(opensbi), "-nographic"]
    theirs = read_qemu(cmd, b"", len(ours.stdout)).decode(errors="replace")
    # QEMU's differing CPU lines change the byte count: compare line by line up to the last one.
    ours_lines = _without_cpu_model(text)
    theirs_lines = _without_cpu_model(theirs)[: len(ours_lines) - 1]
    assert len(theirs_lines) > 30
    assert ours_lines[: len(theirs_lines)] == theirs_lines
