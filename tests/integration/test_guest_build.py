"""The committed guest ELFs are what `make -C tests/guests/riscv` builds from the committed sources."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import GUESTS, require_tool

CROSS = "riscv64-unknown-elf-gcc"


@pytest.mark.slow
def test_make_rebuilds_the_committed_elfs(tmp_path: Path) -> None:
    require_tool(shutil.which(CROSS), f"{CROSS} not installed (Debian: gcc-riscv64-unknown-elf)")
    require_tool(shutil.which("make"), "make not installed (Debian: make)")
    tree = tmp_path / "riscv"
    shutil.copytree(GUESTS, tree, ignore=shutil.ignore_patterns("build"))
    proc = subprocess.run(["make", "-C", str(tree), "-j2"], capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()
    committed = sorted(p.relative_to(GUESTS / "build") for p in (GUESTS / "build").rglob("*.elf"))
    rebuilt = sorted(p.relative_to(tree / "build") for p in (tree / "build").rglob("*.elf"))
    assert committed and committed == [p for p in rebuilt if p.parts[0] != "measure"]
    differing = [str(p) for p in committed if (GUESTS / "build" / p).read_bytes() != (tree / "build" / p).read_bytes()]
    assert not differing, f"committed ELFs differ from a fresh build: {differing}"
