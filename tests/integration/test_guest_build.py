"""The committed guests are what `make -C tests/guests/{riscv,aarch64,cortexm,linux}` builds from the committed
sources."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import GUESTS, require_tool

CROSS = {  # guest directory -> (its compiler, the Debian package)
    "riscv": ("riscv64-unknown-elf-gcc", "gcc-riscv64-unknown-elf"),
    "aarch64": ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
    "cortexm": ("arm-none-eabi-gcc", "gcc-arm-none-eabi"),
}


@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(CROSS))
def test_make_rebuilds_the_committed_elfs(arch: str, tmp_path: Path) -> None:
    compiler, package = CROSS[arch]
    require_tool(shutil.which(compiler), f"{compiler} not installed (Debian: {package})")
    require_tool(shutil.which("make"), "make not installed (Debian: make)")
    guests = GUESTS.parent / arch
    tree = tmp_path / arch
    shutil.copytree(guests, tree, ignore=shutil.ignore_patterns("build"))
    proc = subprocess.run(["make", "-C", str(tree), "-j2"], capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()
    committed = sorted(p.relative_to(guests / "build") for p in (guests / "build").rglob("*.elf"))
    rebuilt = sorted(p.relative_to(tree / "build") for p in (tree / "build").rglob("*.elf"))
    assert committed and committed == [p for p in rebuilt if p.parts[0] != "measure"]
    differing = [str(p) for p in committed if (guests / "build" / p).read_bytes() != (tree / "build" / p).read_bytes()]
    assert not differing, f"committed ELFs differ from a fresh build: {differing}"


@pytest.mark.slow
def test_make_rebuilds_the_committed_linux_guest(tmp_path: Path) -> None:
    """tests/guests/linux: Debian's linux-source-6.1 (tinyconfig + linux.config), the init and the initramfs are
    what `make -C tests/guests/linux` builds, byte for byte (~90 s on 2 cores; the source is extracted in tmp)."""
    for tool, package in (("riscv64-linux-gnu-gcc", "gcc-riscv64-linux-gnu"), ("make", "make"), ("flex", "flex"),
                          ("bison", "bison"), ("bc", "bc")):  # fmt: skip
        require_tool(shutil.which(tool), f"{tool} not installed (Debian: {package})")
    tarball = Path("/usr/src/linux-source-6.1.tar.xz")
    require_tool(tarball.exists(), "Debian's kernel source is not installed (Debian: linux-source-6.1)")
    guests = GUESTS.parent / "linux"
    tree = tmp_path / "linux"
    shutil.copytree(guests, tree, ignore=shutil.ignore_patterns("build"))
    proc = subprocess.run(["make", "-C", str(tree), f"KSRC_DIR={tmp_path / 'src'}", "JOBS=2"], capture_output=True,
                          timeout=1200)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-4000:]
    for name in ("Image", "init", "initramfs.cpio", "kernel.config"):
        assert (tree / "build" / name).read_bytes() == (guests / "build" / name).read_bytes(), name
