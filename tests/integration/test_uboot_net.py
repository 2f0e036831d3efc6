"""Debian's U-Boot on the user network (``--net user,tftp=DIR``): dhcp, ping, tftpboot as on QEMU 7.2, recorded,
replayed with no network, and stepped backward through gdb.

QEMU: ``-netdev user,id=n0,tftp=DIR -device virtio-net-device,netdev=n0``. The transcripts are compared command by
command with only U-Boot's own timings masked: "DHCP client bound to address A (T ms)" and the TFTP rate line
("\\t R KiB/s", which U-Boot leaves out when the transfer took 0 ms). Both measure U-Boot's timer, which runs on
host time on QEMU and on the icount on chronicorn.
"""

# Debian packages: u-boot-qemu, qemu-system-misc (as test_uboot_virtio.py).

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from replay.events import NetFrame
from replay.recording import load_recording
from tests import uboot
from tests.conftest import ROOT, require_tool
from tests.e2e.gdb import Gdb, ServerProcess, require_gdb

pytestmark = pytest.mark.slow

HELLO = b"Hello over TFTP from chronicorn's user network!\n"
COMMANDS = [
    "setenv autoload no",
    "dhcp",
    "printenv ipaddr serverip netmask gatewayip",
    "ping 10.0.2.2",
    "tftpboot 0x82000000 hello.txt",
    "md.b 0x82000000 0x30",
    "crc32 0x82000000 ${filesize}",
    "tftpboot 0x83000000 missing.txt",
    "net list",
]
_BOUND = re.compile(r"(DHCP client bound to address [\d.]+) \(\d+ ms\)")
_RATE = re.compile(r"\r\n\t *[\d.]+ [KMG]?i?B/s\r\n")


def masked(text: str) -> str:
    return _RATE.sub("\r\n", _BOUND.sub(r"\1 (T ms)", text))


def tftp_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "tftp"
    directory.mkdir()
    (directory / "hello.txt").write_bytes(HELLO)
    return directory


def test_uboot_network_session_matches_qemu_records_replays_and_steps_back(tmp_path: Path) -> None:
    require_tool(uboot.UBOOT_ELF, "Debian's u-boot-qemu is not installed")
    require_tool(shutil.which("qemu-system-riscv64"), "qemu-system-riscv64 not installed")
    served = tftp_dir(tmp_path)
    qemu = ["qemu-system-riscv64", "-M", "virt", "-m", "128M", "-nographic", "-bios", str(uboot.UBOOT_ELF),
            "-netdev", f"user,id=n0,tftp={served}", "-device", "virtio-net-device,netdev=n0"]  # fmt: skip
    theirs = uboot.run_uboot_session(qemu, COMMANDS)
    recording = tmp_path / "net.chrec"
    ours_argv = [sys.executable, "-m", "gdbstub.cli", "record", str(uboot.UBOOT_ELF), "-o", str(recording),
                 "--uart-input", "-", "--net", f"user,tftp={served}"]  # fmt: skip
    ours = uboot.run_uboot_session(ours_argv, COMMANDS, cwd=ROOT, session_timeout=600, boot_timeout=300,
                                   command_timeout=200)  # fmt: skip
    assert theirs.returncode == ours.returncode == 0, ours.stderr
    assert [masked(t) for t in ours.outputs] == [masked(t) for t in theirs.outputs]
    assert "DHCP client bound to address 10.0.2.15" in ours.outputs[1]
    assert "host 10.0.2.2 is alive" in ours.outputs[3]
    assert f"Bytes transferred = {len(HELLO)}" in ours.outputs[4]
    assert f"==> {zlib.crc32(HELLO):08x}" in ours.outputs[6]
    assert "eth0 : virtio-net#0 52:54:00:12:34:56 active" in ours.outputs[8]

    replayed = subprocess.run([sys.executable, "-m", "gdbstub.cli", "replay", str(recording)], cwd=ROOT,
                              capture_output=True, timeout=600)  # fmt: skip  (no --net: no network at all)
    assert replayed.returncode == 0, replayed.stderr.decode(errors="replace")
    assert replayed.stdout.decode(errors="replace") == ours.transcript

    with recording.open("rb") as stream:
        frames = [e for e in load_recording(stream).inputs if isinstance(e, NetFrame)]
    assert len(frames) >= 6 and all(f.slot == 7 for f in frames)
    tftp_data = next(f for f in frames if HELLO in f.data)  # the one DATA block of hello.txt
    step_back_over_the_tftp_data(recording, tftp_data.icount)


def step_back_over_the_tftp_data(recording: Path, arrived: int) -> None:
    """The TFTP data frame enters the guest's receive buffer at icount ``arrived`` (before the instruction there
    runs): one instruction later gdb finds the file's bytes in U-Boot's buffer; a reverse-stepi back to
    ``arrived`` shows the buffer without them, a stepi forward shows them again."""
    require_gdb()
    server = ServerProcess(recording, command="replay")
    gdb = Gdb(uboot.UBOOT_ELF)
    try:
        gdb.connect(server.port)
        gdb.seek(arrived + 1)
        pattern = ", ".join(f"{b:#x}" for b in HELLO[:16])
        found = re.search(r"^(0x[0-9a-f]+)", gdb.cli(f"find /b 0x86000000, 0x88000000, {pattern}").text, re.M)
        assert found is not None, "the frame's payload is not in U-Boot's RAM after it arrived"
        buffer = int(found.group(1), 16)
        assert gdb.read_memory(buffer, len(HELLO)) == HELLO
        gdb.run("-exec-step-instruction --reverse")
        assert gdb.icount() == arrived and gdb.read_memory(buffer, len(HELLO)) != HELLO
        gdb.run("-exec-step-instruction")
        assert gdb.icount() == arrived + 1 and gdb.read_memory(buffer, len(HELLO)) == HELLO
    finally:
        gdb.close()
        server.stop()
