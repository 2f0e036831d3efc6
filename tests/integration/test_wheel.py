"""chronicorn installs anywhere: the wheel built from this tree works in a fresh virtualenv, away from the repository.

The wheel must carry every subpackage, the demo's firmware and the native icount helper built for it; the
installed ``chronicorn demo``, run from an unrelated directory, must find the culprit. Dependencies come
from the package index (or pip's cache).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.gdb import require_gdb

# What a build must not see: version control, virtualenvs, earlier builds and build products of this tree.
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.so",
                                     ".pytest_cache", ".ruff_cache", ".hypothesis")  # fmt: skip


def run(*command: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A command with this test's environment minus anything pointing back at the repository."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    proc = subprocess.run([str(c) for c in command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0 or not check, f"{command}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_the_wheel_installs_and_runs_the_demo_outside_the_repository(tmp_path: Path) -> None:
    require_gdb()
    # Build from a clean copy: an in-tree build would leave build/ behind and could pack stale modules from it.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", dist, source, cwd=tmp_path)
    (wheel,) = dist.glob("chronicorn-*.whl")
    assert "-none-any" not in wheel.name, f"{wheel.name}: a pure wheel has no native helper"

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    check = (
        "import gdbstub, machine.icount as icount, importlib.resources as r; "
        "print(gdbstub.__file__); print(icount.native_library_path()); "
        "print((r.files('gdbstub.demo') / 'firmware' / 'rv32' / 'cmdint.elf').is_file()); "
        "print((r.files('machine') / 'native' / 'icount.c').is_file())"
    )
    package, native, firmware, native_source = run(python, "-c", check, cwd=elsewhere).stdout.split("\n")[:4]
    site = str(venv / "lib")
    assert package.startswith(site), f"gdbstub imported from {package}, not from the installed wheel"
    assert native.startswith(site) and Path(native).is_file(), f"native helper not installed: {native}"
    assert firmware == "True" and native_source == "True", "package data missing from the wheel"

    demo = run(venv / "bin" / "chronicorn", "demo", cwd=elsewhere, check=False)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "(gdb) reverse-continue" in demo.stdout
    assert "set_name  ./cmdint.c:" in demo.stdout  # locate's report names the overflowing copy
