"""A RISC-V hart's architectural state as plain register values, through Unicorn's public API only.

:func:`cpu_registers` is the one list of what a saved CPU holds: x1-x31, f0-f31,
pc, fcsr, every CSR Unicorn keeps for this hart (M- and S-mode trap setup and
handling, delegation, counter enables, satp), the PMP registers, then the
privilege level. :func:`read_cpu` turns a ``UcContext`` into those values and
:func:`build_context` turns values back into a ``UcContext``; both work on a
scratch Unicorn instance of the same architecture, never on the machine's own.

Unicorn quirks this works around (docs/unicorn-facts.md, "RISC-V model"):

* CSR reads and writes through the register API fail silently below M-mode,
  so they are made with the scratch hart in M-mode;
* fcsr reads and writes fail silently while mstatus.FS is Off, so they are
  made with FS temporarily Dirty;
* the PMP registers have no Unicorn register id: the scratch hart executes
  ``csrr``/``csrw`` instructions for them (in M-mode, at 0x1000; a locked PMP
  entry forbidding that makes the state unencodable: CpuStateError). Zero PMP
  registers are not written back, so an Off entry's derived rule stays as at reset.

Not carried, because no public API reaches it: the LR/SC reservation (an SC
after a restore from a file fails, which the ISA allows at any time, and the
guest retries; ``Machine.forget_reservation`` drops it from a live run where a
state goes to a file, so the run and a replay from the file go on alike), the
address of a fault being raised (only live inside a trap, and states are taken
between instructions) and the TLB (a cache of the page tables in RAM: the
machine flushes it on every restore, so it is re-derived). mip is not in the
list: the board owns it. There is no mcountinhibit in Unicorn 2.1's hart (priv
spec 1.10), and misa is not writable there: it is listed so a state from
another hart model is refused. tests/unit/test_state.py compares a decoded
context with Unicorn's own byte for byte to prove nothing else is lost.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cache

from unicorn import UC_PROT_ALL, Uc, UcError
from unicorn import riscv_const as rc
from unicorn.unicorn_py3.unicorn import UcContext

from .common import CpuStateError
from .riscv import FPR_IDS, GPR_IDS, PC, PRIV_M, PRIV_S, PRIV_U, RiscvArch

CPU_STATE_VERSION = 1  # bump when the register list below changes
MSTATUS_FS = 3 << 13
PRIV_LEVELS = (PRIV_U, PRIV_S, PRIV_M)
_CODE_ADDR = 0x1000  # where the scratch hart runs its csrr/csrw sequences
_SCRATCH_TCG_BUFFER = 1 << 20  # it translates one block of at most 20 instructions
_PMPCFG, _PMPADDR = 0x3A0, 0x3B0
_TEMP_GPRS = range(1, 21)  # x1..x20 carry PMP values to and from the csrr/csrw sequences


class Access(enum.Enum):
    """How a register is reached on the scratch hart."""

    REG = "reg"  # Unicorn register id, any privilege (GPRs, FPRs, pc)
    CSR = "csr"  # Unicorn register id, read and written in M-mode
    INSN = "insn"  # CSR number, only through csrr/csrw instructions (PMP)
    PRIV = "priv"  # the privilege level (written last)


@dataclass(frozen=True, slots=True)
class CpuRegister:
    """One value of a saved CPU: its name, how to reach it, its width."""

    name: str
    access: Access
    ident: int  # Unicorn register id, or the CSR number for Access.INSN
    bits: int


_API_CSRS = (
    ("mstatus", rc.UC_RISCV_REG_MSTATUS), ("misa", rc.UC_RISCV_REG_MISA),
    ("medeleg", rc.UC_RISCV_REG_MEDELEG), ("mideleg", rc.UC_RISCV_REG_MIDELEG), ("mie", rc.UC_RISCV_REG_MIE),
    ("mtvec", rc.UC_RISCV_REG_MTVEC), ("mcounteren", rc.UC_RISCV_REG_MCOUNTEREN),
    ("mscratch", rc.UC_RISCV_REG_MSCRATCH), ("mepc", rc.UC_RISCV_REG_MEPC), ("mcause", rc.UC_RISCV_REG_MCAUSE),
    ("mtval", rc.UC_RISCV_REG_MTVAL), ("stvec", rc.UC_RISCV_REG_STVEC), ("scounteren", rc.UC_RISCV_REG_SCOUNTEREN),
    ("sscratch", rc.UC_RISCV_REG_SSCRATCH), ("sepc", rc.UC_RISCV_REG_SEPC), ("scause", rc.UC_RISCV_REG_SCAUSE),
    ("stval", rc.UC_RISCV_REG_STVAL), ("satp", rc.UC_RISCV_REG_SATP),
)  # fmt: skip


@cache
def cpu_registers(arch: RiscvArch) -> tuple[CpuRegister, ...]:
    """Every value of a saved CPU, in file order (x0 is not saved: it is always zero)."""
    xlen = arch.xlen
    regs = [CpuRegister(f"x{i}", Access.REG, GPR_IDS[i], xlen) for i in range(1, 32)]
    regs += [CpuRegister(f"f{i}", Access.REG, FPR_IDS[i], 64) for i in range(32)]  # D on rv32 too
    regs.append(CpuRegister("pc", Access.REG, PC, xlen))
    regs.append(CpuRegister("fcsr", Access.CSR, rc.UC_RISCV_REG_FCSR, 32))
    regs += [CpuRegister(name, Access.CSR, uc_reg, xlen) for name, uc_reg in _API_CSRS]
    cfgs = range(4) if xlen == 32 else (0, 2)  # rv64: only the even pmpcfg registers exist
    regs += [CpuRegister(f"pmpaddr{i}", Access.INSN, _PMPADDR + i, xlen) for i in range(16)]
    regs += [CpuRegister(f"pmpcfg{i}", Access.INSN, _PMPCFG + i, xlen) for i in cfgs]
    regs.append(CpuRegister("priv", Access.PRIV, rc.UC_RISCV_REG_PRIV, 8))
    return tuple(regs)




def read_cpu(arch: RiscvArch, context: UcContext) -> tuple[int, ...]:
    """The values of :func:`cpu_registers` held by ``context`` (the context itself is not changed)."""
    scratch = _Scratch(arch)
    scratch.uc.context_restore(context)
    return scratch.read()


def build_context(arch: RiscvArch, values: tuple[int, ...] | list[int]) -> UcContext:
    """A context holding exactly ``values`` (in :func:`cpu_registers` order), or CpuStateError."""
    regs = cpu_registers(arch)
    if len(values) != len(regs):
        raise CpuStateError(f"{len(values)} CPU registers, {arch.name} has {len(regs)}")
    for reg, value in zip(regs, values, strict=True):
        if type(value) is not int or not 0 <= value < 1 << reg.bits:
            raise CpuStateError(f"register {reg.name}: {value!r} does not fit in {reg.bits} bits")
    if values[-1] not in PRIV_LEVELS:
        raise CpuStateError(f"no privilege level {values[-1]}")
    scratch = _Scratch(arch)
    scratch.write(values)
    context = scratch.uc.context_save()
    # WARL fields, read-only CSRs and locked PMP entries may not take a value: read back to be exact.
    scratch.uc.context_restore(context)
    for reg, wanted, got in zip(regs, values, scratch.read(), strict=True):
        if wanted != got:
            raise CpuStateError(f"register {reg.name} cannot hold {wanted:#x} on {arch.name} (it reads {got:#x})")
    return context


class _Scratch:
    """A throwaway Unicorn hart to read and write a context through the public register API."""

    def __init__(self, arch: RiscvArch) -> None:
        self.arch = arch
        self.uc: Uc = arch.new_uc()
        # Before first use: Unicorn reserves 1 GiB for translations by default, which a second instance
        # next to the machine's may not get (under a memory limit Unicorn then exits the process).
        self.uc.ctl_set_tcg_buffer_size(_SCRATCH_TCG_BUFFER)
        self.uc.mem_map(_CODE_ADDR, 0x1000, UC_PROT_ALL)
        self.regs = cpu_registers(arch)

    def _run(self, insns: list[int], what: str) -> None:
        """Execute ``insns`` in M-mode (the caller has set privilege M)."""
        code = b"".join(insn.to_bytes(4, "little") for insn in insns)
        self.uc.mem_write(_CODE_ADDR, code)
        try:
            self.uc.emu_start(_CODE_ADDR, _CODE_ADDR + len(code))
        except UcError as exc:  # a locked PMP entry forbidding execution there, for one
            raise CpuStateError(f"cannot {what} the PMP registers: {exc}") from None

    def read(self) -> tuple[int, ...]:
        uc = self.uc
        values = {}
        for reg in self.regs:
            if reg.access in (Access.REG, Access.PRIV):
                values[reg.name] = int(uc.reg_read(reg.ident))
        uc.reg_write(rc.UC_RISCV_REG_PRIV, PRIV_M)
        mstatus = int(uc.reg_read(rc.UC_RISCV_REG_MSTATUS))
        for reg in self.regs:
            if reg.access == Access.CSR and reg.name != "fcsr":
                values[reg.name] = int(uc.reg_read(reg.ident))
        uc.reg_write(rc.UC_RISCV_REG_MSTATUS, mstatus | MSTATUS_FS)
        values["fcsr"] = int(uc.reg_read(rc.UC_RISCV_REG_FCSR))
        by_insn = [reg for reg in self.regs if reg.access == Access.INSN]
        self._run([_csrr(rd, reg.ident) for rd, reg in zip(_TEMP_GPRS, by_insn, strict=False)], "read")
        for rd, reg in zip(_TEMP_GPRS, by_insn, strict=False):
            values[reg.name] = int(uc.reg_read(GPR_IDS[rd]))
        return tuple(values[reg.name] for reg in self.regs)

    def write(self, values: tuple[int, ...] | list[int]) -> None:
        uc = self.uc
        by_name = {reg.name: value for reg, value in zip(self.regs, values, strict=True)}
        uc.reg_write(rc.UC_RISCV_REG_PRIV, PRIV_M)
        # PMP first (the sequence uses x1..x20 and pc), addresses before configs (a locked config freezes
        # them). Zeros are not written: a write also sets up the derived rule of an Off entry, which a hart
        # fresh from reset does not have, so only what the guest wrote is written again.
        by_insn = [reg for reg in self.regs if reg.access == Access.INSN and by_name[reg.name]]
        for rs, reg in zip(_TEMP_GPRS, by_insn, strict=False):
            uc.reg_write(GPR_IDS[rs], by_name[reg.name])
        if by_insn:
            self._run([_csrw(reg.ident, rs) for rs, reg in zip(_TEMP_GPRS, by_insn, strict=False)], "write")
        uc.reg_write(rc.UC_RISCV_REG_MSTATUS, by_name["mstatus"] | MSTATUS_FS)
        uc.reg_write(rc.UC_RISCV_REG_FCSR, by_name["fcsr"])
        for reg in self.regs:
            if reg.access == Access.CSR and reg.name not in ("fcsr", "mstatus"):
                uc.reg_write(reg.ident, by_name[reg.name])
        uc.reg_write(rc.UC_RISCV_REG_MSTATUS, by_name["mstatus"])
        for reg in self.regs:
            if reg.access == Access.REG:
                uc.reg_write(reg.ident, by_name[reg.name])
        uc.reg_write(rc.UC_RISCV_REG_PRIV, by_name["priv"])


def _csrr(rd: int, csr: int) -> int:
    """``csrrs rd, csr, x0``."""
    return (csr << 20) | (2 << 12) | (rd << 7) | 0x73


def _csrw(csr: int, rs1: int) -> int:
    """``csrrw x0, csr, rs1``."""
    return (csr << 20) | (rs1 << 15) | (1 << 12) | 0x73
