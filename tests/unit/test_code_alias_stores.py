"""Rewritten code runs rewritten, on both Unicorn libraries, when the writes come where a translation cache
keyed by physical pages can miss them:

- through another virtual mapping of the page (as Linux loads a program through its linear map and runs it at
  the user address): the alias's TLB entry is made writable first, while the page holds no translated code;
- through a mapping in one privilege level after a store in another to the same virtual page number (M-mode's
  physical X, U-mode's virtual X mapping a code page);
- by a device's DMA while paging is on (the board drops translations by physical address only without paging).

The wheel's Unicorn keeps an alias's entry writable without a check, so the board drops every translation at a
fence.i there. With the `fast-stores` patch (third_party/unicorn/0001) translating a block from a page sets every
TLB entry that maps it (by host address) back to the checked path, and a store makes only its own entry fast.
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
from tests.rv_programs import ENTER_SMODE, MRET_TO_SMODE, build_rv64

# The function each program rewrites, alone on its page (no block is translated from the page before it runs).
TARGET = """
  .align 12
  .option norvc
target:
  li a0, 1
  ret
  .option rvc
"""

ALIAS = (
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
"""
    + TARGET
    + """
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


# U-mode runs `target` through a second megapage, M-mode stores to the physical address equal to that virtual one
# (no code there), U-mode rewrites `target` through it and runs it again.
CROSS_MODE = (
    """
  .globl _start
_start:
  la t0, l1
  srli t0, t0, 12
  slli t0, t0, 10
  ori t0, t0, 1
  la t1, table
  sd t0, 16(t1)             # GiB 2 -> l1 (not a leaf)
  la t0, mtrap
  csrw mtvec, t0
  la t5, table
  srli t5, t5, 12
  li t0, 8
  slli t0, t0, 60
  or t0, t0, t5
  csrw satp, t0
  la t0, umode
  csrw mepc, t0
  li t0, 0x1800
  csrc mstatus, t0
  mret                      # MPP = U
  .align 2
mtrap:                      # an ecall from U: store to physical s1 (RAM, no code there), or finish
  bnez s3, finish
  sw zero, 0(s1)
  csrr t0, mepc
  addi t0, t0, 4
  csrw mepc, t0
  mret
finish:
  li t3, 0x100000
  li t4, 0x5555
  sw t4, 0(t3)              # the test finisher: exit 0
umode:
  la s0, target
  li t1, 0x200000
  add s1, s0, t1            # target through the second megapage
  jalr s1                   # a block is translated from target's page
  mv s2, a0                 # 1
  ecall
  li t2, 0x00200513         # li a0, 2
  sw t2, 0(s1)              # rewrite target through virtual s1
  fence.i
  jalr s1
  mv s3, a0                 # 2, unless the translation of the old code ran
  ecall
1: j 1b
"""
    + TARGET
    + """
  .data
  .align 12
table:
  .fill 512, 8, 0
l1:
  .dword (0x80000 << 10) | 0xdf   # two megapages -> RAM: valid, read, write, execute, user, accessed, dirty
  .dword (0x80000 << 10) | 0xdf
  .fill 510, 8, 0
"""
)

# S-mode runs `target` through GiB 1 (RAM's own addresses are unmapped below M), then waits for a device to
# rewrite it and raise `flag`.
DMA = (
    """
  .globl _start
_start:
  la t5, table
  srli t5, t5, 12
  li t0, 8
  slli t0, t0, 60
  or t0, t0, t5
  csrw satp, t0             # Sv39: only GiB 1 -> RAM (RWX)
  la t0, smode
  li t1, 0x40000000
  sub t0, t0, t1
  csrw mepc, t0"""
    + MRET_TO_SMODE
    + """
smode:
  la s0, target             # (pc-relative: its address in GiB 1)
  la s4, flag
  jalr s0
  mv s2, a0                 # 1
1: lw t0, 0(s4)             # wait for the device
  beqz t0, 1b
  fence.i
  jalr s0
  mv s3, a0                 # 2, unless the translation of the old code ran
  j .
"""
    + TARGET
    + """
  .data
  .align 12
flag:
  .dword 0
  .align 12
table:
  .dword 0
  .dword (0x80000 << 10) | 0xcf
  .fill 510, 8, 0
"""
)


def _results(machine) -> list[int]:
    return [int(machine.uc.reg_read(r)) for r in (rc.UC_RISCV_REG_S2, rc.UC_RISCV_REG_S3)]


def _run_to_exit(elf: Path) -> list[int]:
    machine = make_machine(load_image(elf), ScriptedInputs(), lambda byte: None)
    result = machine.run(10_000)
    assert result.kind == RunKind.EXITED and result.exit_code == 0, result
    return _results(machine)


def _run_with_dma(elf: Path) -> list[int]:
    symbols = {
        name: addr
        for addr, _kind, name in (
            line.split()
            for line in subprocess.run(
                ["riscv64-unknown-elf-nm", str(elf)], capture_output=True, text=True, check=True
            ).stdout.splitlines()
        )
    }
    machine = make_machine(load_image(elf), ScriptedInputs(), lambda byte: None)
    assert machine.run(200).kind == RunKind.LIMIT  # waiting for the flag
    machine.slots.dma.write(int(symbols["target"], 16), (0x00200513).to_bytes(4, "little"))  # li a0, 2
    machine.slots.dma.write(int(symbols["flag"], 16), (1).to_bytes(8, "little"))
    assert machine._after_device_writes(machine.icount) is None
    assert machine.run(400).kind == RunKind.LIMIT
    return _results(machine)


SCENARIOS = {"alias": (ALIAS, _run_to_exit), "cross-mode": (CROSS_MODE, _run_to_exit), "dma": (DMA, _run_with_dma)}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("library", ["installed", "stock"])
def test_rewritten_code_runs_rewritten(tmp_path: Path, library: str, scenario: str) -> None:
    program, run = SCENARIOS[scenario]
    elf = build_rv64(tmp_path, scenario, program, "rv64imac_zicsr_zifencei")
    if library == "installed":
        assert run(elf) == [1, 2]
        return
    stock = stock_library_dir()
    require_tool(stock / "libunicorn.so.2", "the wheel's Unicorn library is not kept (scripts/build_unicorn.py)")
    code = (f"import pathlib, tests.unit.test_code_alias_stores as t\n"
            f"print(t.SCENARIOS[{scenario!r}][1](pathlib.Path({str(elf)!r})))")  # fmt: skip
    env = {**os.environ, "LIBUNICORN_PATH": str(stock)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[1, 2]"
