"""Debian's U-Boot on the virt board reading and writing an ext2 virtio-blk disk: on QEMU, then on chronicorn.

The session (tests/uboot.py) stops autoboot, runs UBOOT_VIRTIO_COMMANDS at U-Boot's prompt and powers off.
On QEMU it is checked against facts computed here (listings, CRC32s, a memory dump, a write read back); on
chronicorn it must print what QEMU prints, command by command, with only U-Boot's load timings masked.
"""

# Debian packages these tests need: u-boot-qemu (/usr/lib/u-boot/qemu-riscv64/uboot.elf) and e2fsprogs
# (mke2fs, debugfs), besides qemu-system-misc for QEMU.

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests import uboot
from tests.conftest import INTERFACES_MODERN_SLOW, ROOT, require_tool
from tests.e2e.gdb import Gdb, ServerProcess, require_gdb

SECTOR = 512
QEMU = "qemu-system-riscv64"
INTERFACES = {"legacy": True, "modern": False}


def require_uboot_tools(qemu: bool = True) -> None:
    require_tool(uboot.e2fs_tool("mke2fs") and uboot.e2fs_tool("debugfs"), "e2fsprogs (mke2fs, debugfs) not installed")
    require_tool(uboot.UBOOT_ELF, "Debian's u-boot-qemu is not installed")
    if qemu:
        require_tool(shutil.which(QEMU), f"{QEMU} not installed")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def disk_image(directory: Path) -> Path:
    """The session's disk, built in ``directory`` (disk.img)."""
    directory.mkdir(parents=True, exist_ok=True)
    return uboot.make_ext2_image(directory / "disk.img", uboot.uboot_files())


def qemu_transcript(tmp_path: Path, legacy: bool = True, image: Path | None = None) -> uboot.UbootRun:
    """The U-Boot session on QEMU with ``image`` (else a disk built in ``tmp_path``), legacy or modern virtio-mmio."""
    require_uboot_tools()
    if image is None:
        image = disk_image(tmp_path)
    return uboot.run_uboot_session(uboot.qemu_uboot_argv(image, legacy))


def chronicorn_uboot_argv(image: Path, recording: Path) -> list[str]:
    """``chronicorn record`` of U-Boot with ``image`` as its drive, the UART on stdin/stdout (run from ROOT)."""
    return [
        sys.executable, "-m", "gdbstub.cli", "record", str(uboot.UBOOT_ELF), "-o", str(recording),
        "--uart-input", "-", "--drive", str(image),
    ]  # fmt: skip


def md_b(address: int, data: bytes) -> str:
    """What U-Boot's ``md.b address len(data)`` prints for memory holding ``data``."""
    lines = []
    for offset in range(0, len(data), 16):
        row = data[offset : offset + 16]
        hexes = "".join(f" {b:02x}" for b in row).ljust(16 * 3)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in row)
        lines.append(f"{address + offset:08x}:{hexes}  {text}\r\n")
    return "".join(lines)


def crc32_line(address: int, data: bytes) -> str:
    return f"crc32 for {address:08x} ... {address + len(data) - 1:08x} ==> {zlib.crc32(data):08x}\r\n"


def listing(output: str) -> dict[str, tuple[bool, int]]:
    """``ls``'s output as name -> (is a directory, size)."""
    entries = {}
    for line in output.splitlines()[1:]:  # after the echoed command
        kind, size, name = line[:5], line[5:].split()[0], line[5:].split()[1]
        entries[name] = (kind == "<DIR>", int(size))
    return entries


def test_ext2_image_build_is_deterministic(tmp_path: Path) -> None:
    require_uboot_tools(qemu=False)
    first = disk_image(tmp_path / "a")
    second = disk_image(tmp_path / "b")
    assert sha256(first) == sha256(second)
    assert first.stat().st_size == 4096 * 1024
    # Build twice within one second and the host's times could still hide in both: every inode's times and
    # owner are the fixed ones, not the times the source tree was written or its owner.
    names = ["/", "/lost+found", *sorted({"/" + n for n in uboot.uboot_files()} | {"/dir"})]
    fixed = {"ctime": uboot.FS_TIME, "atime": uboot.FS_TIME, "mtime": uboot.FS_TIME, "crtime": uboot.FS_TIME}
    for name in names:
        assert uboot.inode_times(first, name) == {**fixed, "uid": 0, "gid": 0}, name


@pytest.mark.qemu
@pytest.mark.parametrize("interface", INTERFACES_MODERN_SLOW)
def test_uboot_virtio_session_on_qemu(interface: str, tmp_path: Path) -> None:
    image = disk_image(tmp_path)
    before = sha256(image)
    disk = image.read_bytes()
    run = qemu_transcript(tmp_path, INTERFACES[interface], image)
    assert run.returncode == 0, run.stderr
    out = dict(zip(run.commands, run.outputs, strict=True))  # a repeated command: its last output
    for command, text in zip(run.commands, run.outputs, strict=True):
        assert text.startswith(command + "\r\n"), (command, text)  # U-Boot's echo of what was typed
        assert text.endswith("\r\n"), (command, text)

    assert out["virtio scan"] == "virtio scan\r\n"  # probed before the prompt: nothing new
    assert "Device 0: QEMU VirtIO Block Device\r\n" in out["virtio info"]
    assert f"Capacity: 4.0 MB = 0.0 GB ({len(disk) // SECTOR} x 512)" in out["virtio info"]
    assert "... is now current device" in out["virtio device 0"]
    assert "Device 1: unknown device" in out["virtio device 1"]
    assert out["fstype virtio 0 fs; printenv fs"].endswith("\r\nfs=ext4\r\n")  # U-Boot's ext4 driver reads ext2

    files = uboot.uboot_files()
    assert listing(out["ls virtio 0"]) == {
        ".": (True, 1024), "..": (True, 1024), "lost+found": (True, 12288), "dir": (True, 1024),
        "hello.txt": (False, len(files["hello.txt"])), "big.bin": (False, len(files["big.bin"])),
    }  # fmt: skip
    assert listing(out["ls virtio 0 /dir"]) == {
        ".": (True, 1024), "..": (True, 1024),
        "inner.txt": (False, len(files["dir/inner.txt"])), "empty": (False, 0),
    }  # fmt: skip
    assert "** Can not find directory. **" in out["ls virtio 0 /nodir"]
    assert out["size virtio 0 hello.txt; printenv filesize"].endswith(f"\r\nfilesize={len(uboot.HELLO):x}\r\n")

    hello = uboot.HELLO
    load = f"load virtio 0 {uboot.LOAD_ADDR:#x} hello.txt"
    assert f"\r\n{len(hello)} bytes read in " in out[load]
    assert out[f"crc32 {uboot.LOAD_ADDR:#x} ${{filesize}}"].endswith(crc32_line(uboot.LOAD_ADDR, hello))
    assert zlib.crc32(hello) == zlib.crc32(files["hello.txt"])
    dump = out[f"md.b {uboot.LOAD_ADDR:#x} 0x40"]
    assert dump.split("\r\n", 1)[1] == md_b(uboot.LOAD_ADDR, hello.ljust(0x40, b"\0"))  # RAM after it is zero
    part = files["dir/inner.txt"][4:10]  # load ... 6 4: 6 bytes from offset 4
    assert "\r\n6 bytes read in " in out["load virtio 0 0x82100000 dir/inner.txt 6 4"]
    assert out["md.b 0x82100000 8"].split("\r\n", 1)[1] == md_b(0x82100000, part + b"\0\0")
    assert "Failed to load 'missing.txt'" in out["load virtio 0 0x87000000 missing.txt"]

    assert "block # 0, count 2 ... 2 blocks read: OK" in out["virtio read 0x83000000 0 2"]
    assert out["crc32 0x83000000 0x400"].endswith(crc32_line(0x83000000, disk[:0x400]))
    # Before the write, sector 8 is the image's (not the pattern); after it, it reads back as written.
    assert disk[8 * SECTOR : 9 * SECTOR] != b"\xa5" * SECTOR
    compare = "cmp.b 0x84000000 0x85000000 0x200"
    first_cmp, second_cmp = (o for c, o in zip(run.commands, run.outputs, strict=True) if c == compare)
    assert "Total of 0 byte(s) were the same" in first_cmp
    assert "block # 8, count 1 ... 1 blocks written: OK" in out["virtio write 0x84000000 8 1"]
    assert second_cmp == f"{compare}\r\nTotal of 512 byte(s) were the same\r\n"
    last = len(disk) // SECTOR - 1
    assert f"block # {last}, count 1 ... 1 blocks read: OK" in out[f"virtio read 0x85000000 {last:#x} 1"]
    # Past the end: QEMU fails the request (VIRTIO_BLK_S_IOERR), U-Boot prints -EIO as the block count.
    assert f"block # {last}, count 2 ... -5 blocks read: ERROR" in out[f"virtio read 0x85000000 {last:#x} 2"]

    big = uboot.big_file()
    assert f"\r\n{len(big)} bytes read in " in out[f"load virtio 0 {uboot.BIG_ADDR:#x} big.bin"]
    assert out[f"crc32 {uboot.BIG_ADDR:#x} ${{filesize}}"].endswith(crc32_line(uboot.BIG_ADDR, big))

    assert run.poweroff == "poweroff\r\npoweroff ...\r\n"
    assert sha256(image) == before  # the write went to QEMU's snapshot, not to the file


@pytest.mark.qemu
def test_legacy_and_modern_virtio_mmio_print_the_same(tmp_path: Path) -> None:
    """U-Boot's driver prints nothing about the interface version: one QEMU transcript serves for both."""
    image = disk_image(tmp_path)
    legacy, modern = (qemu_transcript(tmp_path, legacy, image) for legacy in (True, False))
    assert legacy.masked() == modern.masked()
    # The boot too, up to the countdown: how it ends depends on when the key arrived ("\b\b\b 0" when U-Boot
    # saw it already there right after printing the prompt, "\b\b\b 0 " when it saw it while counting down).
    assert legacy.transcript.split(uboot.AUTOBOOT)[0] == modern.transcript.split(uboot.AUTOBOOT)[0]


def test_mask_timing_masks_only_the_time_and_rate() -> None:
    cases = {
        "52 bytes read in 2 ms (25.4 KiB/s)\r\n": "52 bytes read in T ms (R)\r\n",
        "262144 bytes read in 1 ms (250 MiB/s)\r\n": "262144 bytes read in T ms (R)\r\n",
        "4 bytes read in 7 ms (0 Bytes/s)\r\n": "4 bytes read in T ms (R)\r\n",
        "4 bytes read in 0 ms\r\n": "4 bytes read in T ms (R)\r\n",  # U-Boot prints no rate for 0 ms
        "crc32 for 82000000 ... 82000033 ==> d96fdc09\r\n": "crc32 for 82000000 ... 82000033 ==> d96fdc09\r\n",
        "1 blocks read: OK (2 ms)\r\n": "1 blocks read: OK (2 ms)\r\n",
    }
    for text, masked in cases.items():
        assert uboot.mask_timing(text) == masked


@pytest.mark.slow
@pytest.mark.qemu
def test_uboot_session_matches_qemu(tmp_path: Path) -> None:
    """chronicorn records U-Boot's session with the same disk and prints what QEMU prints.

    Compared from the first command on: the boot banner names the CPU's extensions and counts the board's
    devices, which describe the emulator rather than the disk. Legacy and modern QEMU print the same (above).
    The time bounds only turn a hang into a failure.
    """
    image = disk_image(tmp_path)
    before = sha256(image)
    theirs = qemu_transcript(tmp_path, legacy=True, image=image)
    recording = tmp_path / "uboot.chrec"
    ours = uboot.run_uboot_session(
        chronicorn_uboot_argv(image, recording), cwd=ROOT, session_timeout=300, boot_timeout=300, command_timeout=120
    )
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.masked() == theirs.masked()
    assert "Traceback" not in ours.stderr
    assert recording.stat().st_size > 0
    assert sha256(image) == before  # chronicorn's overlay keeps the writes; the image is read-only
    replayed = subprocess.run([sys.executable, "-m", "gdbstub.cli", "replay", str(recording)], cwd=ROOT,
                              capture_output=True, timeout=600)  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr.decode(errors="replace")
    assert replayed.stdout.decode(errors="replace") == ours.transcript  # the whole session, byte for byte
    reverse_debug_the_session(recording, image)
    assert sha256(image) == before


def completion_icounts(recording: Path) -> list[int]:
    """The icounts of the recording's IoCompletion events (``chronicorn events``)."""
    listed = subprocess.run([sys.executable, "-m", "gdbstub.cli", "events", str(recording)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=True).stdout  # fmt: skip
    return [int(line.split()[0]) for line in listed.splitlines() if "IoCompletion" in line]


def reverse_debug_the_session(recording: Path, image: Path) -> None:
    """gdb on the recorded U-Boot session (``replay --port``): a breakpoint in U-Boot's virtio-mmio notify path
    (Debian's uboot.elf is stripped: the instruction after the QueueNotify store, found at a completion's icount)
    is hit going backward at exactly the logged completions, latest first; a reverse watchpoint on a buffer
    ``virtio read`` filled stops where the device wrote it, showing the data it had before."""
    require_gdb()
    completions = completion_icounts(recording)
    assert len(completions) >= 10
    server = ServerProcess(recording, command="replay")
    gdb = Gdb(uboot.UBOOT_ELF)
    try:
        gdb.connect(server.port)
        notify_next = gdb.seek(completions[0]).pc  # U-Boot polls: the completion lands right after the store
        gdb.mi(f"-break-insert *{notify_next:#x}")
        gdb.run("-exec-continue")
        assert gdb.icount() == completions[1]
        end_stop = gdb.run("-exec-continue")  # on to the last request ...
        gdb.mi("-break-delete")
        end_stop = gdb.run("-exec-continue")  # ... and the end of the session
        assert "reason" not in end_stop and "No more reverse-execution history" in gdb.output
        gdb.mi(f"-break-insert *{notify_next:#x}")
        for expected in reversed(completions[-3:]):  # reverse-continue: the last three requests, latest first
            stopped = gdb.run("-exec-continue --reverse")
            assert stopped["reason"] == "breakpoint-hit" and gdb.icount() == expected
        at = gdb.icount()
        gdb.run("-exec-step-instruction --reverse")  # back over the QueueNotify store itself
        assert gdb.icount() == at - 1 and gdb.location().pc < notify_next
        gdb.mi("-break-delete")
        # The session's last direct reads into 0x85000000: block 8 after the write (0xa5s), then the disk's last
        # sector (what the image has there) over it. Going back with a watchpoint: the device's writes, in turn.
        last_sector = image.read_bytes()[-SECTOR:][:4]
        gdb.run("-exec-continue")  # the end again
        gdb.mi('-break-watch "*(unsigned int *)0x85000000"')
        changes = []
        for _ in range(2):
            stopped = gdb.run("-exec-continue --reverse")
            assert stopped["reason"] == "watchpoint-trigger", stopped
            assert "written by the virtio-blk device in slot 7 completing its requests at icount" in gdb.output
            changes.append((gdb.icount(), stopped["value"]["old"], stopped["value"]["new"]))
        assert all(icount in completions for icount, _, _ in changes), (changes, completions[-20:])
        (_, later, earlier), (_, later2, earlier2) = changes
        assert int(later, 0) == int.from_bytes(last_sector, "little") and int(earlier, 0) == 0xA5A5A5A5
        assert int(later2, 0) == 0xA5A5A5A5 and int(earlier2, 0) != 0xA5A5A5A5
        assert gdb.read_memory(0x85000000, 4) == int(earlier2, 0).to_bytes(4, "little")
    finally:
        gdb.close()
        server.stop()
