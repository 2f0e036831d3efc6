"""Timer reads answered inside emu_start (machine.riscv_timer_sites) see exactly what the board's Python path sees.

The program polls every clock a RISC-V guest has: ``rdtime``/``rdcycle``/``rdinstret`` (rv32: and their high
halves) at the end of a block, CLINT ``mtime`` loads of every width in the middle of one (``ld``, ``lw``, ``lwu``,
``lh``, ``lbu``, ``c.ld``, ``c.lw``), after a guest write to ``mcycle``/``minstret`` and after an idle warp of the
clock (``wfi`` until a timer compare), then from S-mode with ``cycle`` disabled in ``mcounteren`` (an illegal
instruction the M-mode handler skips). It folds every value it reads into a running sum.

The same program runs with the native sites, without the native helper (every read answered in Python), and cut
into runs of a few instructions (every read inside a landing, where the sites stand aside): the sum, the registers
and the state digest agree at every cut, and the first run really answered reads natively.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from unicorn import riscv_const as rc

from machine.arch.riscv_regs import registers
from machine.factory import make_machine
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import MachineConfig
from machine.results import RunKind
from machine.state import state_digest
from tests.conftest import require_tool

LOOPS = 40

PROGRAM = """
  .globl _start
  .option rvc
_start:
  la t0, trap
  csrw mtvec, t0
  li s0, 0
  li s2, 0x200bff8            # mtime
  mv a5, s2
  la s3, results
  li t0, 1000
  csrw mcycle, t0             # moves the board's cycle offset
  csrw minstret, t0
  li s1, {loops}
loop:
  rdtime t1                   # a CSR read ends its block
  add s0, s0, t1
  rdcycle t1
  xor s0, s0, t1
  rdinstret t1
  add s0, s0, t1
{wide}
  lw t1, 0(s2)                # mtime loads in the middle of a block
  add s0, s0, t1
  lw t1, 4(s2)
  add s0, s0, t1
  lh t1, 2(s2)
  add s0, s0, t1
  lbu t1, 1(s2)
  add s0, s0, t1
  lw a4, 0(a5)                # c.lw
  add s0, s0, a4
  slli t2, s0, 7
  srli t3, s0, 3
  xor s0, t2, t3
  addi s1, s1, -1
  bnez s1, loop
  rdtime t0                   # idle until a timer compare 5000 ticks on: the clock warps
  li t1, 5000
  add t0, t0, t1
  li t2, 0x2004000
{set_compare}
  li t0, 0x80
  csrs mie, t0                # MTIE (mstatus.MIE stays 0: wfi wakes, no interrupt is taken)
  wfi
  li t0, -1
{clear_compare}
  rdtime t1
  add s0, s0, t1
  li t0, 2
  csrw mcounteren, t0         # S-mode may read time, not cycle
  la t0, smode
  csrw mepc, t0
  li t0, 0x1800
  csrc mstatus, t0
  li t0, 0x800
  csrs mstatus, t0
  mret
smode:
  li s1, {loops}
sloop:
  rdtime t1
  add s0, s0, t1
  rdcycle t1                  # illegal here: the handler skips it and sets t1
  add s0, s0, t1
  addi s1, s1, -1
  bnez s1, sloop
  ecall
  .align 2
trap:
  csrr t4, mcause
  li t5, 9
  beq t4, t5, done
  csrr t4, mepc
  addi t4, t4, 4
  csrw mepc, t4
  li t1, 0x77
  mret
done:
{store_sum}
  li t3, 0x100000
  li t4, 0x5555
  sw t4, 0(t3)                # the test finisher: exit 0
1: j 1b
  .data
  .align 3
results: .dword 0, 0
"""

WIDE = {
    64: """  ld t1, 0(s2)
  add s0, s0, t1
  lwu t1, 4(s2)
  add s0, s0, t1
  ld a4, 0(a5)                # c.ld
  add s0, s0, a4""",
    32: """  rdtimeh t1
  add s0, s0, t1
  rdcycleh t1
  xor s0, s0, t1
  rdinstreth t1
  add s0, s0, t1""",
}


def _build(tmp_path: Path, xlen: int) -> Path:
    require_tool(shutil.which("riscv64-unknown-elf-as"), "riscv64-unknown-elf-as is needed (gcc-riscv64-unknown-elf)")
    store = "sd" if xlen == 64 else "sw"
    text = PROGRAM.format(
        loops=LOOPS, wide=WIDE[xlen],
        set_compare="  sd t0, 0(t2)" if xlen == 64 else "  sw t0, 0(t2)\n  sw zero, 4(t2)",
        clear_compare="  sd t0, 0(t2)" if xlen == 64 else "  sw t0, 4(t2)\n  sw t0, 0(t2)",
        store_sum=f"  {store} s0, 0(s3)",
    )  # fmt: skip
    source, obj, elf = tmp_path / "timers.S", tmp_path / "timers.o", tmp_path / f"timers{xlen}.elf"
    source.write_text(text)
    march, emul = ("rv64imac_zicsr", "elf64lriscv") if xlen == 64 else ("rv32imac_zicsr", "elf32lriscv")
    abi = "lp64" if xlen == 64 else "ilp32"
    subprocess.run(["riscv64-unknown-elf-as", f"-march={march}", f"-mabi={abi}", "-o", str(obj), str(source)],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["riscv64-unknown-elf-ld", "-m", emul, "-N", "-Ttext=0x80000000", "-e", "_start", "-o", str(elf),
                    str(obj)], check=True, capture_output=True)  # fmt: skip
    return elf


def _machine(elf: Path, native: bool):
    return make_machine(load_image(elf), ScriptedInputs(), lambda byte: None, MachineConfig(prefer_native=native))


def _snapshot(machine) -> tuple[int, int, str]:
    return machine.icount, int(machine.uc.reg_read(rc.UC_RISCV_REG_S0)), state_digest(machine)


def _run_in_steps(machine, steps: list[int]) -> list[tuple[int, int, str]]:
    """Run to each icount in ``steps``, then to the end; the state at each stop and at the end."""
    seen = []
    for icount in steps:
        result = machine.run(max_icount=icount)
        assert result.kind == RunKind.LIMIT, result
        seen.append(_snapshot(machine))
    result = machine.run(max_icount=1_000_000)
    assert result.kind == RunKind.EXITED and result.exit_code == 0, result
    return [*seen, _snapshot(machine)]


@pytest.mark.parametrize("xlen", [64, 32])
def test_native_timer_reads_equal_the_python_path(tmp_path: Path, xlen: int) -> None:
    elf = _build(tmp_path, xlen)
    total = _machine(elf, True).run(max_icount=1_000_000).icount
    cuts = list(range(97, total, 211))
    native = _machine(elf, True)
    fast = _run_in_steps(native, cuts)
    assert native.timer_sites is not None
    csr_reads, mtime_reads = native.timer_sites.reads
    assert csr_reads >= LOOPS and mtime_reads >= LOOPS  # the loop's reads were answered natively
    slow = _run_in_steps(_machine(elf, False), cuts)
    assert fast == slow
    stepped = _machine(elf, True)  # runs of 1-5 instructions: every read inside a landing
    icount, seen = 0, []
    for cut in cuts:
        while icount < cut:
            icount = min(cut, icount + 1 + icount % 5)
            assert stepped.run(max_icount=icount).kind == RunKind.LIMIT
        seen.append(_snapshot(stepped))
    assert seen == fast[:-1]


def test_a_breakpoint_on_a_timer_read_stops_there(tmp_path: Path) -> None:
    elf = _build(tmp_path, 64)
    probe = _machine(elf, True)
    probe.run(max_icount=200)  # the sites are hooked
    loop = next(addr for addr in range(0x80000000, 0x80000100, 2)
                if probe.hart.read_insn(addr) == 0xC0102373)  # rdtime t1  # fmt: skip
    mtime_load = next(addr for addr in range(loop, loop + 0x40, 2)
                      if probe.hart.read_insn(addr) == 0x00093303)  # ld t1, 0(s2)  # fmt: skip
    for addr in (loop, mtime_load):
        native, slow = _machine(elf, True), _machine(elf, False)
        native.run(max_icount=200)  # sites are in place before the breakpoint is set
        slow.run(max_icount=200)
        hits = []
        for machine in (native, slow):
            machine.add_breakpoint(addr)
            stops = []
            for _ in range(3):
                result = machine.run(max_icount=1_000_000)
                assert result.kind == RunKind.BREAKPOINT and result.pc == addr
                stops.append(_snapshot(machine))
            machine.remove_breakpoint(addr)
            result = machine.run(max_icount=1_000_000)
            assert result.kind == RunKind.EXITED
            stops.append(_snapshot(machine))
            hits.append(stops)
        assert hits[0] == hits[1]


# U-mode under Sv39: the code at virtual 0x80400000 is physically at 0x80600000, and physical 0x80400000 holds a
# decoy with another counter read at the same offset. Below M-mode a site must read its instruction through the
# MMU (Unicorn's reads of satp there do not fail, they return garbage: reading code "physically" answered the
# decoy's rdcycle).
UMODE_PROGRAM = """
  .globl _start
  .option norvc
_start:
  la t0, trap
  csrw mtvec, t0
  li t0, 0x80200000           # root table: entry 2 -> the level-1 table at 0x80201000
  li t1, (0x80201000 >> 12) << 10 | 1
  sd t1, 16(t0)
  li t0, 0x80201000           # level 1: VA 0x80000000 -> PA 0x80000000, VA 0x80400000 -> PA 0x80600000
  li t1, (0x80000000 >> 12) << 10 | 0xdf
  sd t1, 0(t0)
  li t1, (0x80600000 >> 12) << 10 | 0xdf
  sd t1, 16(t0)
  li t0, 7
  csrw mcounteren, t0
  csrw scounteren, t0
  li t0, (8 << 60) | (0x80200000 >> 12)
  csrw satp, t0
  li t0, 0x80400000
  csrw mepc, t0
  li t0, 0x1800
  csrc mstatus, t0            # MPP = U
  li s0, 0
  li s1, 50
  mret
  .align 2
trap:
  li t3, 0x100000
  li t4, 0x5555
  sw t4, 0(t3)
1: j 1b
  .org 0x400000
decoy:
  nop
  nop
  rdcycle t1
  add s0, s0, t1
  addi s1, s1, -1
  bnez s1, decoy
  ecall
  .org 0x600000
real:
  nop
  nop
  rdtime t1
  add s0, s0, t1
  addi s1, s1, -1
  bnez s1, real
  ecall
"""


def test_user_mode_reads_under_paging_equal_the_python_path(tmp_path: Path) -> None:
    require_tool(shutil.which("riscv64-unknown-elf-as"), "riscv64-unknown-elf-as is needed (gcc-riscv64-unknown-elf)")
    source, obj, elf = tmp_path / "umode.S", tmp_path / "umode.o", tmp_path / "umode.elf"
    source.write_text(UMODE_PROGRAM)
    subprocess.run(["riscv64-unknown-elf-as", "-march=rv64imac_zicsr", "-o", str(obj), str(source)], check=True,
                   capture_output=True)  # fmt: skip
    subprocess.run(["riscv64-unknown-elf-ld", "-N", "-Ttext=0x80000000", "-e", "_start", "-o", str(elf), str(obj)],
                   check=True, capture_output=True)  # fmt: skip
    native, slow = _machine(elf, True), _machine(elf, False)
    for machine in (native, slow):
        assert machine.run(max_icount=1_000_000).kind == RunKind.EXITED
    assert native.timer_sites is not None and native.timer_sites.reads[0] >= 40  # answered natively, in U-mode
    assert _snapshot(native) == _snapshot(slow)


def test_a_debugger_write_of_satp_is_a_guest_write(tmp_path: Path) -> None:
    """WARL (an unsupported mode is not written) and the TLB flushed, as after the guest's own csrw."""
    machine = _machine(_build(tmp_path, 64), True)
    machine.run(max_icount=100)
    satp = next(spec.regnum for spec in registers(machine.arch) if spec.name == "satp")
    machine.registers.write(satp, (10 << 60).to_bytes(8, "little"))  # Sv57: not supported
    assert machine.hart.csr(rc.UC_RISCV_REG_SATP) == 0
    machine.registers.write(satp, (8 << 60 | 0x80001).to_bytes(8, "little"))  # Sv39: written
    assert machine.hart.csr(rc.UC_RISCV_REG_SATP) == 8 << 60 | 0x80001
