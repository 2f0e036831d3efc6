"""RISC-V (rv32/rv64): Unicorn ids, register numbering, privilege and exception constants.

The hart's behaviour that Unicorn lacks lives in :mod:`.riscv_hart`; the
instruction decoding the board needs in :mod:`.riscv_insn`.
"""

from __future__ import annotations

from dataclasses import dataclass

from unicorn import UC_ARCH_RISCV, UC_MODE_RISCV32, UC_MODE_RISCV64, Uc
from unicorn import riscv_const as rc
from unicorn.unicorn_py3.unicorn import UcContext

from ..engine import Cause
from ..icount import Isa

_ABI_NAMES = "zero ra sp gp tp t0 t1 t2 s0 s1 a0 a1 a2 a3 a4 a5 a6 a7 s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 t3 t4 t5 t6"
GPR_NAMES = tuple(_ABI_NAMES.split())
GPR_IDS = tuple(rc.UC_RISCV_REG_X0 + i for i in range(32))
FPR_IDS = tuple(rc.UC_RISCV_REG_F0 + i for i in range(32))
PC = rc.UC_RISCV_REG_PC

# Interrupt bits in mip/mie, highest priority first (privileged spec 3.1.9).
MEI, MSI, MTI, SEI, SSI, STI = 11, 3, 7, 9, 1, 5
INTERRUPT_PRIORITY = (MEI, MSI, MTI, SEI, SSI, STI)
SOFTWARE_WRITABLE_MIP = (1 << SSI) | (1 << STI) | (1 << SEI)

MSTATUS_SIE = 1 << 1
MSTATUS_MIE = 1 << 3
MSTATUS_SPIE = 1 << 5
MSTATUS_MPIE = 1 << 7
MSTATUS_SPP = 1 << 8
MSTATUS_MPP_SHIFT = 11
MSTATUS_TW = 1 << 21
PRIV_U, PRIV_S, PRIV_M = 0, 1, 3

# RISC-V exception codes (privileged spec table 3.6). Unicorn reports each as
# its interrupt number and has already advanced pc by 4 (docs/unicorn-facts.md, "RISC-V model").
EXCEPTION_CODES = {
    Cause.MISALIGNED_FETCH: 0,
    Cause.FETCH_FAULT: 1,
    Cause.ILLEGAL_INSTRUCTION: 2,
    Cause.BREAKPOINT: 3,
    Cause.MISALIGNED_LOAD: 4,
    Cause.LOAD_FAULT: 5,
    Cause.MISALIGNED_STORE: 6,
    Cause.STORE_FAULT: 7,
    Cause.FETCH_PAGE_FAULT: 12,
    Cause.LOAD_PAGE_FAULT: 13,
    Cause.STORE_PAGE_FAULT: 15,
}
ECALL_CODES = {PRIV_U: 8, PRIV_S: 9, PRIV_M: 11}
INTR_CAUSES = {code: (cause, 4) for cause, code in EXCEPTION_CODES.items()}
INTR_CAUSES.update({code: (Cause.ECALL, 4) for code in ECALL_CODES.values()})
DATA_FAULTS = frozenset({Cause.MISALIGNED_LOAD, Cause.MISALIGNED_STORE, Cause.LOAD_PAGE_FAULT, Cause.STORE_PAGE_FAULT})
FETCH_FAULTS = frozenset({Cause.FETCH_FAULT, Cause.MISALIGNED_FETCH, Cause.FETCH_PAGE_FAULT})


@dataclass(frozen=True, slots=True)
class RiscvArch:
    """One RISC-V variant: everything the machine needs to build and drive a hart."""

    xlen: int

    @property
    def name(self) -> str:
        return f"riscv{self.xlen}"

    @property
    def isa(self) -> Isa:
        return Isa.RISCV_C

    @property
    def mask(self) -> int:
        return (1 << self.xlen) - 1

    @property
    def pc_reg(self) -> int:
        return PC

    @property
    def until_addr(self) -> int:
        """An address execution can never reach (odd: instructions are 2-aligned)."""
        return self.mask

    def new_uc(self) -> Uc:
        return Uc(UC_ARCH_RISCV, UC_MODE_RISCV32 if self.xlen == 32 else UC_MODE_RISCV64)

    def interrupt_cause(self, code: int) -> int:
        return (1 << (self.xlen - 1)) | code

    # -- what every architecture provides (machine.arch.registry.Arch) ----------------------------------
    @property
    def state_code(self) -> int:
        """The architecture's byte in a machine state file's header (the xlen, as before Arm existed)."""
        return self.xlen

    @property
    def board(self) -> str:
        return "virt"

    @property
    def gdb_name(self) -> str:
        return f"riscv:rv{self.xlen}"

    def cpu_register_count(self) -> int:
        from .riscv_cpu import cpu_registers

        return len(cpu_registers(self))

    def read_cpu(self, context: UcContext, uc: Uc | None = None) -> tuple[int, ...]:
        """The register values a state file holds, from a Unicorn context (:mod:`.riscv_cpu`)."""
        from .riscv_cpu import read_cpu

        return read_cpu(self, context)

    def build_context(self, values: tuple[int, ...] | list[int], uc: Uc | None = None) -> UcContext:
        """A Unicorn context holding exactly these register values, or CpuStateError."""
        from .riscv_cpu import build_context

        return build_context(self, values)

    def target_xml(self) -> str:
        from .riscv_regs import target_xml

        return target_xml(self)


RV32 = RiscvArch(32)
RV64 = RiscvArch(64)


def arch_for_elf(elf_class: int) -> RiscvArch:
    """rv32 for ELFCLASS32, rv64 for ELFCLASS64."""
    return RV32 if elf_class == 32 else RV64


ARCHES = {"riscv32": RV32, "riscv64": RV64}  # the RISC-V variants (all architectures: machine.arch.registry)
