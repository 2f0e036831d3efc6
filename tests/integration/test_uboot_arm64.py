"""Debian's U-Boot for QEMU's Arm ``virt`` board (u-boot-qemu's ``qemu_arm64/u-boot.bin``), booted as QEMU's
``-bios`` (flash 0), on chronicorn and on QEMU 7.2: the same banner and the same answers to ``version``,
``bdinfo``, ``dm tree``, ``md``, ``crc32``, ``setenv``/``printenv`` and ``poweroff``; recorded, then replayed
byte for byte. Nothing is masked but the autoboot countdown's digits (they show when the key arrived: wall time).

QEMU runs with ``dtb-randomness=off``: by default it puts random seeds (``kaslr-seed``, ``rng-seed``) into the
device tree at each boot, which ``md``/``crc32`` over the tree at RAM's base would show; chronicorn's tree is
QEMU's without them (a recording cannot hold a host random number unlogged). ``-nic none``: chronicorn's board
has no PCI devices (QEMU adds a virtio-net-pci NIC by default).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import uboot
from tests.conftest import ROOT, require_tool
from tests.e2e.gdb import Gdb, ServerProcess, require_gdb

pytestmark = pytest.mark.qemu

UBOOT_BIN = Path("/usr/lib/u-boot/qemu_arm64/u-boot.bin")
UBOOT_ELF = UBOOT_BIN.with_name("uboot.elf")  # its symbols (U-Boot runs relocated: addresses come from seeks)
KIMAGE = ROOT / "tests" / "guests" / "aarch64" / "build" / "kimage.bin"  # an arm64 Image: booti's header
COMMANDS = ["version", "bdinfo", "dm tree", "md.l 0x40000000 0x20", "crc32 0x40000000 0x1000",
            "setenv chronicorn 'reverse debugging'", "printenv chronicorn", "printenv bootdelay",
            "md.l 0x0 0x10", "crc32 0x0 0x10000"]  # fmt: skip


def qemu_argv() -> list[str]:
    return ["qemu-system-aarch64", "-M", "virt,dtb-randomness=off", "-cpu", "cortex-a72", "-m", "128M", "-nic",
            "none", "-display", "none", "-serial", "stdio", "-monitor", "none", "-bios", str(UBOOT_BIN)]  # fmt: skip


def chronicorn_argv(recording: Path) -> list[str]:
    return [sys.executable, "-m", "gdbstub.cli", "record", "--bios", str(UBOOT_BIN), "--arch", "aarch64",
            "-o", str(recording), "--uart-input", "-"]  # fmt: skip


@pytest.mark.slow
def test_uboot_qemu_arm64_answers_as_on_qemu(tmp_path: Path) -> None:
    require_tool(UBOOT_BIN.exists(), f"{UBOOT_BIN} missing (apt-get install u-boot-qemu)")
    require_tool(shutil.which("qemu-system-aarch64"), "qemu-system-aarch64 not installed (apt-get qemu-system-arm)")
    theirs = uboot.run_uboot_session(qemu_argv(), COMMANDS, session_timeout=120, boot_timeout=60)
    recording = tmp_path / "uboot-arm64.chrec"
    ours = uboot.run_uboot_session(chronicorn_argv(recording), COMMANDS, cwd=ROOT, session_timeout=600,
                                   boot_timeout=300, command_timeout=120)  # fmt: skip
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    # The banner (same CPU, the same 47 devices, flash, environment, console) up to the autoboot countdown, whose
    # digits depend on when the key arrived (wall time), then every command's output and the power-off.
    banner = ours.transcript.split(uboot.AUTOBOOT)[0]
    assert banner == theirs.transcript.split(uboot.AUTOBOOT)[0] and "Core:  47 devices" in banner
    assert ours.outputs == theirs.outputs and ours.poweroff == theirs.poweroff
    assert "pl011@9000000" in ours.transcript and "Flash: 64 MiB" in ours.transcript
    assert "Traceback" not in ours.stderr
    replayed = subprocess.run([sys.executable, "-m", "gdbstub.cli", "replay", str(recording)], cwd=ROOT,
                              capture_output=True, timeout=900)  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr.decode(errors="replace")
    assert replayed.stdout.decode(errors="replace") == ours.transcript
    reverse_debug(recording)


def reverse_debug(recording: Path) -> None:
    """gdb on the recorded session (``replay --port``): a breakpoint on a U-Boot instruction seen mid-session is
    found going backward from the end at its last execution, then each earlier one in turn; reverse-stepi and
    stepi move one instruction and come back to the same registers."""
    require_gdb()
    server = ServerProcess(recording, command="replay")
    gdb = Gdb(UBOOT_ELF)
    try:
        gdb.connect(server.port)
        end_stop = gdb.run("-exec-continue")
        assert "reason" not in end_stop and "No more reverse-execution history" in gdb.output
        end = gdb.icount()
        pc = gdb.seek(end // 2).pc  # an instruction U-Boot runs in the middle of the session
        gdb.seek(end)
        gdb.mi(f"-break-insert *{pc:#x}")
        hits = []
        for _ in range(3):
            stopped = gdb.run("-exec-continue --reverse")
            assert stopped["reason"] == "breakpoint-hit" and gdb.location().pc == pc
            hits.append(gdb.icount())
        assert hits == sorted(hits, reverse=True) and len(set(hits)) == 3 and end // 2 <= hits[0] < end
        gdb.mi("-break-delete")
        before = gdb.registers()
        gdb.run("-exec-step-instruction --reverse")
        assert gdb.icount() == hits[-1] - 1
        gdb.run("-exec-step-instruction")
        assert gdb.icount() == hits[-1] and gdb.registers() == before
    finally:
        gdb.close()
        server.stop()


@pytest.mark.slow
def test_bios_and_kernel_boot_as_on_qemu(tmp_path: Path) -> None:
    """QEMU's two-image boot, ``-bios u-boot.bin -kernel Image``: U-Boot finds the kernel through fw_cfg, counts
    down, loads it (``qfw``), moves it (``booti``) and starts it with the device tree in x0. No key is pressed, so
    the whole transcript must be QEMU's, countdown included; recorded, replayed; another kernel file is refused."""
    require_tool(UBOOT_BIN.exists(), f"{UBOOT_BIN} missing (apt-get install u-boot-qemu)")
    require_tool(shutil.which("qemu-system-aarch64"), "qemu-system-aarch64 not installed (apt-get qemu-system-arm)")
    theirs = subprocess.run([*qemu_argv(), "-kernel", str(KIMAGE)], stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=120)  # fmt: skip
    recording = tmp_path / "two-images.chrec"
    kernel = tmp_path / "kimage.bin"
    kernel.write_bytes(KIMAGE.read_bytes())
    ours = subprocess.run([sys.executable, "-m", "gdbstub.cli", "record", "--bios", str(UBOOT_BIN), "--arch",
                           "aarch64", "--kernel", str(kernel), "-o", str(recording), "--uart-input", "/dev/null"],
                          cwd=ROOT, capture_output=True, timeout=600)  # fmt: skip
    assert ours.returncode == theirs.returncode == 0, ours.stderr.decode(errors="replace")
    assert ours.stdout == theirs.stdout
    assert b"kimage: x0 points at a device tree" in ours.stdout
    replayed = subprocess.run([sys.executable, "-m", "gdbstub.cli", "replay", str(recording)], cwd=ROOT,
                              capture_output=True, timeout=600)  # fmt: skip
    assert replayed.returncode == 0 and replayed.stdout == ours.stdout, replayed.stderr.decode(errors="replace")
    kernel.write_bytes(KIMAGE.read_bytes() + b"\0")  # another kernel where the recording's was
    refused = subprocess.run([sys.executable, "-m", "gdbstub.cli", "replay", str(recording)], cwd=ROOT,
                             capture_output=True, timeout=120)  # fmt: skip
    assert refused.returncode != 0 and b"not the one the recording was made with" in refused.stderr


def test_a_scripted_session_from_a_file_records_and_replays(tmp_path: Path) -> None:
    """``--uart-input FILE --expect PROMPT`` (issue 17 item 4): each line goes once U-Boot has printed a prompt
    since the last one: the first (an empty line) stops autoboot, the others are commands at ``=> ``. (On RISC-V
    U-Boot clears its NS16550 FIFO while it sets up its console, so input there at icount 0 is lost.) The session
    is recorded as UART input events; its replay prints the same, and ``info`` reads it."""
    require_tool(UBOOT_BIN.exists(), f"{UBOOT_BIN} missing (apt-get install u-boot-qemu)")
    commands = ["version", "setenv chronicorn scripted", "printenv chronicorn", "poweroff"]
    script = tmp_path / "session.txt"
    script.write_text("\n" + "".join(f"{c}\n" for c in commands))
    recording = tmp_path / "scripted.chrec"
    record = subprocess.run([sys.executable, "-m", "gdbstub.cli", "record", "--bios", str(UBOOT_BIN), "--arch",
                             "aarch64", "-o", str(recording), "--uart-input", str(script),
                             "--expect", uboot.AUTOBOOT, "--expect", uboot.PROMPT],
                            capture_output=True, timeout=300, cwd=ROOT)  # fmt: skip
    assert record.returncode == 0, record.stderr  # poweroff: PSCI SYSTEM_OFF
    out = record.stdout.decode()
    # Every command was read at a prompt, in order, and answered.
    assert [line for line in out.splitlines() if line.startswith(uboot.PROMPT)] == [uboot.PROMPT + c for c in commands]
    assert "chronicorn=scripted\r\n" in out and "U-Boot 2023.01" in out.split("=> version", 1)[1]
    replay = subprocess.run([sys.executable, "-m", "gdbstub.cli", "replay", str(recording)], capture_output=True,
                            timeout=300, cwd=ROOT)  # fmt: skip
    assert replay.returncode == 0 and replay.stdout == record.stdout
    info = subprocess.run([sys.executable, "-m", "gdbstub.cli", "info", str(recording)], capture_output=True,
                          timeout=60, cwd=ROOT)  # fmt: skip
    assert info.returncode == 0 and b"expect" in info.stdout, info.stderr
    # Each line was given when asked for (as the FIFO had room: a line may take several events), the first
    # after boot began.
    events = subprocess.run([sys.executable, "-m", "gdbstub.cli", "events", str(recording)], capture_output=True,
                            timeout=60, cwd=ROOT).stdout.decode().splitlines()  # fmt: skip
    given = [int(line.split()[0]) for line in events if line.split()[1] == "UartInput"]
    assert len(given) >= len(commands) + 1 and given[0] > 0 and given == sorted(set(given))
