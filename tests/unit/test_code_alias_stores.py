"""Code rewritten through another virtual mapping of its page runs rewritten (as Linux loads a program through its
linear map and runs it at the user address), on both Unicorn libraries.

The program makes the alias's TLB entry writable first (a store while the page holds no translated code), runs
the function (a block is translated from the page), rewrites it through the alias, executes fence.i and runs it
again. The wheel's Unicorn keeps the alias's entry writable without a check, so the old translation would run:
the board drops every translation at a fence.i there. With the `fast-stores` patch (third_party/unicorn/0001)
translating a block from a page sets every TLB entry that maps it (by host address) back to the checked path, so
the store itself invalidates the block.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from unicorn import riscv_const as rc

from machine.factory import make_machine
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.results import RunKind
from tests.conftest import ROOT, require_tool, stock_library_dir
from tests.rv_programs import ENTER_SMODE, build_rv64

PROGRAM = (
    ENTER_SMODE
    + """
smode:
  la t5, table
  srli t5, t5, 12
  li t0, 8
  slli t0, t0, 60
  or t0, t0, t5
  csrw satp, t0             # Sv39: GiB 2 identity (RWX), GiB 1 the same RAM again (RW, the alias)
  la s0, target
  li t1, 0x40000000
  sub s1, s0, t1            # s1: target's address through the alias (0x4xxxxxxx)
  lw t2, 0(s0)              # li a0, 1 (as assembled)
  sw t2, 0(s1)              # a store through the alias while the page holds no translated code
  jalr s0                   # run it: a block is translated from the page
  mv s2, a0                 # 1
  li t2, 0x00200513         # li a0, 2
  sw t2, 0(s1)              # rewrite it through the alias
  fence.i
  jalr s0
  mv s3, a0                 # 2, unless the translation of the old code ran
  csrw satp, zero
  li t3, 0x100000
  li t4, 0x5555
  sw t4, 0(t3)              # the test finisher: exit 0
1: j 1b
  .align 12
  .option norvc
target:                     # alone on its page: no block was translated from it before the jalr
  li a0, 1
  ret
  .option rvc
  .align 12
  .data
  .align 12
table:
  .dword 0
  .dword (0x80000 << 10) | 0xc7   # GiB 1 -> RAM: valid, read, write, accessed, dirty (no execute)
  .dword (0x80000 << 10) | 0xcf   # GiB 2 -> RAM: valid, read, write, execute, accessed, dirty
  .fill 509, 8, 0
"""
)


def _run(elf: Path) -> list[int]:
    machine = make_machine(load_image(elf), ScriptedInputs(), lambda byte: None)
    result = machine.run(10_000)
    assert result.kind == RunKind.EXITED and result.exit_code == 0, result
    return [int(machine.uc.reg_read(r)) for r in (rc.UC_RISCV_REG_S2, rc.UC_RISCV_REG_S3)]


@pytest.mark.parametrize("library", ["installed", "stock"])
def test_code_rewritten_through_an_alias_runs_rewritten(tmp_path: Path, library: str) -> None:
    elf = build_rv64(tmp_path, "alias", PROGRAM, "rv64imac_zicsr_zifencei")
    if library == "installed":
        assert _run(elf) == [1, 2]
        return
    stock = stock_library_dir()
    require_tool(stock / "libunicorn.so.2", "the wheel's Unicorn library is not kept (scripts/build_unicorn.py)")
    code = f"import pathlib, tests.unit.test_code_alias_stores as t; print(t._run(pathlib.Path({str(elf)!r})))"
    env = {**os.environ, "LIBUNICORN_PATH": str(stock)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[1, 2]"
