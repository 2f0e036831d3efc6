"""The virtioblk guest (its own virtio-blk driver) on QEMU: legacy and modern virtio-mmio, rv32 and rv64.

Checks the guest against QEMU only (chronicorn's virtio-blk device is tested elsewhere). Every run uses a
temporary copy of inputs/disk.img, which the guest writes (sector 1): the committed image never changes.
All four transcripts are expected/virtioblk.out plus the one line naming the slot and the interface version.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import EXPECTED, GUESTS, INTERFACES_MODERN_SLOW, XLENS_RV64_SLOW, guest, require_tool

pytestmark = pytest.mark.qemu

DISK = GUESTS / "inputs" / "disk.img"
SECTOR = 512
# QEMU puts the first -device in the highest of the eight virtio-mmio slots (0x10008000).
SLOT = 7
INTERFACES = {"legacy": (1, []), "modern": (2, ["-global", "virtio-mmio.force-legacy=false"])}


def make_disk() -> ModuleType:
    """inputs/make-disk.py as a module (its name has a dash)."""
    spec = importlib.util.spec_from_file_location("make_disk", GUESTS / "inputs" / "make-disk.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_qemu(xlen: str, interface: str, image: Path) -> subprocess.CompletedProcess[bytes]:
    binary = f"qemu-system-riscv{xlen[2:]}"
    require_tool(shutil.which(binary), f"{binary} not installed")
    cmd = [
        binary, "-M", "virt", "-m", "128M", "-bios", "none", "-nographic",
        "-kernel", str(guest(xlen, "virtioblk")),
        "-drive", f"if=none,file={image},format=raw,id=d0",
        "-device", "virtio-blk-device,drive=d0",
        *INTERFACES[interface][1],
    ]  # fmt: skip
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)


def test_committed_disk_image_is_what_the_script_writes() -> None:
    assert DISK.read_bytes() == make_disk().disk_image()
    assert len(DISK.read_bytes()) == 128 * SECTOR


@pytest.mark.parametrize("interface", INTERFACES_MODERN_SLOW)
@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
def test_virtioblk_guest_on_qemu(xlen: str, interface: str, tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    shutil.copyfile(DISK, image)
    proc = run_qemu(xlen, interface, image)
    assert proc.returncode == 0, (proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))

    version_line = f"virtio-mmio slot {SLOT} version {INTERFACES[interface][0]}\n".encode()
    lines = proc.stdout.splitlines(keepends=True)
    assert lines[1] == version_line
    # Everything but the version line is the same on both interfaces and both XLENs.
    assert b"".join(lines[:1] + lines[2:]) == (EXPECTED / "virtioblk.out").read_bytes()

    # The write really reached the disk: sector 1 holds the guest's pattern, the rest is untouched.
    disk = make_disk()
    original = disk.disk_image()
    after = image.read_bytes()
    assert after[SECTOR : 2 * SECTOR] == disk.guest_write_pattern() != original[SECTOR : 2 * SECTOR]
    assert after[:SECTOR] == original[:SECTOR] and after[2 * SECTOR :] == original[2 * SECTOR :]
    assert DISK.read_bytes() == original
