"""Small RISC-V test programs: a shared prologue, and assembling and linking one at RAM's base with Debian's
``riscv64-unknown-elf`` tools (a test needing them is skipped, or fails in CI, without them)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import require_tool

# From M-mode to S-mode at mepc.
MRET_TO_SMODE = """
  li t0, 0x1800
  csrc mstatus, t0
  li t0, 0x800
  csrs mstatus, t0          # MPP = S
  mret
"""
# From M-mode to S-mode at `smode`, as firmware hands over to a kernel (the program defines `smode`).
ENTER_SMODE = (
    """
  .globl _start
_start:
  la t0, smode
  csrw mepc, t0"""
    + MRET_TO_SMODE
)


def build_rv64(tmp_path: Path, name: str, source: str, march: str = "rv64imac_zicsr") -> Path:
    """``source`` assembled for ``march`` and linked at 0x80000000 (entry ``_start``): the ELF's path."""
    require_tool(shutil.which("riscv64-unknown-elf-as"), "riscv64-unknown-elf-as is needed (gcc-riscv64-unknown-elf)")
    src, obj, elf = tmp_path / f"{name}.S", tmp_path / f"{name}.o", tmp_path / f"{name}.elf"
    src.write_text(source)
    subprocess.run(["riscv64-unknown-elf-as", f"-march={march}", "-o", str(obj), str(src)], check=True)
    subprocess.run(["riscv64-unknown-elf-ld", "-N", "-Ttext=0x80000000", "-e", "_start", "-o", str(elf), str(obj)],
                   check=True, capture_output=True)  # fmt: skip
    return elf
