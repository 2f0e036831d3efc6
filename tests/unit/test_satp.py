"""satp is WARL: a write of a translation mode the CPU does not implement has no effect (issue 17 item 2).

Unicorn's RISC-V CPU (QEMU 5) keeps any MODE up to Sv57 but translates only Bare, Sv39 and Sv48: Linux 6.1
writes an Sv57 satp, reads it back, keeps Sv57, and its first fetch faults. The board undoes such a write
(the privileged spec: "the entire write has no effect"). The program runs in S-mode, as Linux does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from unicorn import riscv_const as rc

from machine.arch.riscv_insn import CSR_SATP, satp_is_supported, writes_csr
from machine.factory import make_machine
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.results import RunKind
from tests.rv_programs import ENTER_SMODE, build_rv64

PROGRAM = (
    ENTER_SMODE
    + """
smode:
  la t5, table
  srli t5, t5, 12           # the root table's PPN (an identity map: execution goes on after each write)
  mv a4, t5
  li t0, {first}
  slli t0, t0, 60
  or t0, t0, t5
  csrw satp, t0
  csrr a0, satp
  li t1, 9
  slli t1, t1, 60
  or t1, t1, t5
  csrw satp, t1             # Sv48: implemented
  csrr a1, satp
  li t2, {second}
  slli t2, t2, 60
  or t2, t2, t5
  csrrw a2, satp, t2        # the old value comes back whatever happens to the write
  csrr a3, satp
  csrw satp, zero
  li t3, 0x100000
  li t4, 0x5555
  sw t4, 0(t3)              # the test finisher: exit 0
1: j 1b
  .data
  .align 12
table:                      # entry 0: Sv48's first 512 GiB, Sv39's first GiB; entry 2: Sv39's third GiB
  .dword 0xcf               # (leaves: valid, read, write, execute, accessed, dirty; identity)
  .dword 0
  .dword (0x80000 << 10) | 0xcf
  .fill 509, 8, 0
"""
)


def _run(tmp_path: Path, first: int, second: int) -> list[int]:
    """a0-a3 as the program leaves them, and a4: the root table's PPN (in every satp it writes)."""
    elf = build_rv64(tmp_path, "satp", PROGRAM.format(first=first, second=second))
    machine = make_machine(load_image(elf), ScriptedInputs(), lambda byte: None)
    result = machine.run(10_000)
    assert result.kind == RunKind.EXITED and result.exit_code == 0
    return [int(machine.uc.reg_read(rc.UC_RISCV_REG_A0 + i)) for i in range(5)]


@pytest.mark.parametrize("mode", [10, 11, 1, 7, 12, 15])
def test_an_unsupported_mode_is_not_written(tmp_path: Path, mode: int) -> None:
    a0, a1, a2, a3, ppn = _run(tmp_path, mode, mode)
    sv48 = 9 << 60 | ppn
    assert a0 == 0  # the write of `mode` had no effect: satp is still Bare
    assert a1 == sv48  # Sv48 is written
    assert (a2, a3) == (sv48, sv48)  # csrrw returns the old value; the unsupported one is not written


def test_supported_modes_are_written(tmp_path: Path) -> None:
    a0, a1, a2, a3, ppn = _run(tmp_path, 8, 0)
    assert (a0, a1, a2, a3) == (8 << 60 | ppn, 9 << 60 | ppn, 9 << 60 | ppn, ppn)  # mode 0 (Bare) keeps the PPN


def test_which_instructions_write_satp() -> None:
    csrw = 0x18029073  # csrrw zero, satp, t0
    csrr = 0x18002573  # csrrs a0, satp, zero: a read
    csrs = 0x1802A073  # csrrs zero, satp, t0
    assert writes_csr(csrw, CSR_SATP) and writes_csr(csrs, CSR_SATP) and not writes_csr(csrr, CSR_SATP)
    assert satp_is_supported(10 << 60, 32) and not satp_is_supported(10 << 60, 64)
