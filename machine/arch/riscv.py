"""RISC-V (rv32/rv64, M-mode firmware): Unicorn ids, registers, traps, emulated CSRs.

Unicorn's RISC-V model executes instructions but performs no architectural
trap entry and returns host ticks for the counters (unicorn-facts.md), so this
module supplies what the hart needs to look like QEMU's: trap entry into
``mtvec``, ``mret``-compatible ``mstatus`` updates, and icount-derived
``cycle``/``time``/``instret`` plus a board-owned ``mip``.
"""

from __future__ import annotations

from dataclasses import dataclass

from unicorn import UC_ARCH_RISCV, UC_MODE_RISCV32, UC_MODE_RISCV64, Uc
from unicorn import riscv_const as rc

from ..engine import Cause
from ..icount import Isa, TrappedInstructions

GPR_NAMES = [
    "zero",
    "ra",
    "sp",
    "gp",
    "tp",
    "t0",
    "t1",
    "t2",
    "s0",
    "s1",
    "a0",
    "a1",
    "a2",
    "a3",
    "a4",
    "a5",
    "a6",
    "a7",
    "s2",
    "s3",
    "s4",
    "s5",
    "s6",
    "s7",
    "s8",
    "s9",
    "s10",
    "s11",
    "t3",
    "t4",
    "t5",
    "t6",
]
GPR_IDS = tuple(rc.UC_RISCV_REG_X0 + i for i in range(32))
PC = rc.UC_RISCV_REG_PC

# CSRs whose values Unicorn gets wrong (host ticks, or no value at all): the
# board emulates every access to them at an exact icount.
CSR_CYCLE, CSR_TIME, CSR_INSTRET = 0xC00, 0xC01, 0xC02
CSR_CYCLEH, CSR_TIMEH, CSR_INSTRETH = 0xC80, 0xC81, 0xC82
CSR_MCYCLE, CSR_MINSTRET, CSR_MCYCLEH, CSR_MINSTRETH = 0xB00, 0xB02, 0xB80, 0xB82
CSR_MIP = 0x344
CSR_MSTATUS, CSR_MIE = 0x300, 0x304
EMULATED_CSRS = frozenset(
    {
        CSR_CYCLE,
        CSR_TIME,
        CSR_INSTRET,
        CSR_CYCLEH,
        CSR_TIMEH,
        CSR_INSTRETH,
        CSR_MCYCLE,
        CSR_MINSTRET,
        CSR_MCYCLEH,
        CSR_MINSTRETH,
        CSR_MIP,
    }
)
# Instructions that may unmask a pending interrupt: Unicorn executes them, then
# the board stops to take the interrupt at exactly the next boundary.
MRET = 0x30200073
UNMASKING_CSRS = frozenset({CSR_MSTATUS, CSR_MIE})
WFI = 0x10500073
# Unicorn halts the vCPU on wfi and, since it never sees our interrupts,
# never wakes it again: the board executes wfi itself.
TRAPPED = TrappedInstructions(EMULATED_CSRS | UNMASKING_CSRS, frozenset({WFI, MRET}))


def is_unmasking(insn: int) -> bool:
    """True for mret and CSR accesses to mstatus/mie (executed by Unicorn, then checked)."""
    return insn == MRET or (insn & 0x7F == 0x73 and (insn >> 12) & 7 not in (0, 4) and insn >> 20 in UNMASKING_CSRS)


READ_ONLY_CSRS = frozenset({CSR_CYCLE, CSR_TIME, CSR_INSTRET, CSR_CYCLEH, CSR_TIMEH, CSR_INSTRETH})

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
PRIV_S, PRIV_M = 1, 3

EXCEPTION_CODES = {
    Cause.FETCH_FAULT: 1,
    Cause.ILLEGAL_INSTRUCTION: 2,
    Cause.BREAKPOINT: 3,
    Cause.LOAD_FAULT: 5,
    Cause.STORE_FAULT: 7,
}
ECALL_CODES = {0: 8, 1: 9, 3: 11}  # ecall from U, S, M mode

# Unicorn interrupt numbers -> (cause, bytes by which Unicorn advanced pc).
INTR_CAUSES = {2: (Cause.ILLEGAL_INSTRUCTION, 4), 8: (Cause.ECALL, 4)}


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


RV32 = RiscvArch(32)
RV64 = RiscvArch(64)


def instruction_length(low_halfword: int) -> int:
    """Length in bytes of the instruction whose first halfword is given."""
    return 4 if low_halfword & 3 == 3 else 2


class Hart:
    """Architectural state Unicorn does not keep: trap entry, mip, counters."""

    def __init__(self, uc: Uc, arch: RiscvArch) -> None:
        self.uc = uc
        self.arch = arch
        self.mip_soft = 0  # software-writable mip bits (SSIP, STIP, SEIP)
        self.mcycle_offset = 0
        self.minstret_offset = 0

    def reg(self, uc_reg: int) -> int:
        """A GPR, pc or privilege level."""
        return int(self.uc.reg_read(uc_reg))

    def set_reg(self, uc_reg: int, value: int) -> None:
        self.uc.reg_write(uc_reg, value & self.arch.mask)

    @property
    def priv(self) -> int:
        return int(self.uc.reg_read(rc.UC_RISCV_REG_PRIV))

    def csr(self, uc_reg: int) -> int:
        """A CSR, read with M-mode rights: Unicorn's CSR reads fail silently below M-mode."""
        priv = self.priv
        if priv == PRIV_M:
            return int(self.uc.reg_read(uc_reg))
        self.uc.reg_write(rc.UC_RISCV_REG_PRIV, PRIV_M)
        try:
            return int(self.uc.reg_read(uc_reg))
        finally:
            self.uc.reg_write(rc.UC_RISCV_REG_PRIV, priv)

    def set_csr(self, uc_reg: int, value: int) -> None:
        """Write a CSR with M-mode rights (see :meth:`csr`)."""
        priv = self.priv
        if priv != PRIV_M:
            self.uc.reg_write(rc.UC_RISCV_REG_PRIV, PRIV_M)
        try:
            self.uc.reg_write(uc_reg, value & self.arch.mask)
        finally:
            if priv != PRIV_M:
                self.uc.reg_write(rc.UC_RISCV_REG_PRIV, priv)

    def has_trap_handler(self) -> bool:
        """True once the guest has pointed mtvec somewhere (reset value 0 = none)."""
        return self.csr(rc.UC_RISCV_REG_MTVEC) & ~3 != 0

    def enabled_interrupt(self, mip: int) -> int | None:
        """The highest-priority interrupt that would be taken now, if any.

        Interrupts delegated through ``mideleg`` go to S-mode and are enabled
        below S-mode or in S-mode with SIE set; the others go to M-mode and are
        enabled below M-mode or with MIE set (privileged spec 3.1.9).
        """
        pending = mip & self.csr(rc.UC_RISCV_REG_MIE)
        if not pending:
            return None
        priv = self.priv
        status = self.csr(rc.UC_RISCV_REG_MSTATUS)
        deleg = self.csr(rc.UC_RISCV_REG_MIDELEG)
        m_on = priv < PRIV_M or bool(status & MSTATUS_MIE)
        s_on = priv < PRIV_S or (priv == PRIV_S and bool(status & MSTATUS_SIE))
        enabled = (pending & ~deleg if m_on else 0) | (pending & deleg if s_on else 0)
        for code in INTERRUPT_PRIORITY:
            if enabled & (1 << code):
                return code
        return None

    def enter_trap(self, pc: int, code: int, tval: int, is_interrupt: bool = False) -> None:
        """Take a trap exactly as the privileged spec says (``mret``/``sret``-compatible).

        Traps from S/U-mode whose cause is delegated (``medeleg``/``mideleg``)
        go to S-mode, all others to M-mode.
        """
        priv = self.priv
        deleg = self.csr(rc.UC_RISCV_REG_MIDELEG if is_interrupt else rc.UC_RISCV_REG_MEDELEG)
        cause = self.arch.interrupt_cause(code) if is_interrupt else code
        status = self.csr(rc.UC_RISCV_REG_MSTATUS)
        if priv < PRIV_M and deleg >> code & 1:
            spie = MSTATUS_SPIE if status & MSTATUS_SIE else 0
            status = (status & ~(MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP)) | spie
            status |= MSTATUS_SPP if priv == PRIV_S else 0
            regs = (
                rc.UC_RISCV_REG_SEPC,
                rc.UC_RISCV_REG_SCAUSE,
                rc.UC_RISCV_REG_STVAL,
                rc.UC_RISCV_REG_STVEC,
            )
            target_priv = PRIV_S
        else:
            mpie = MSTATUS_MPIE if status & MSTATUS_MIE else 0
            status = (status & ~(MSTATUS_MIE | MSTATUS_MPIE | (3 << MSTATUS_MPP_SHIFT))) | mpie
            status |= (priv & 3) << MSTATUS_MPP_SHIFT
            regs = (
                rc.UC_RISCV_REG_MEPC,
                rc.UC_RISCV_REG_MCAUSE,
                rc.UC_RISCV_REG_MTVAL,
                rc.UC_RISCV_REG_MTVEC,
            )
            target_priv = PRIV_M
        epc_reg, cause_reg, tval_reg, tvec_reg = regs
        self.set_csr(rc.UC_RISCV_REG_MSTATUS, status)
        self.set_csr(epc_reg, pc)
        self.set_csr(cause_reg, cause)
        self.set_csr(tval_reg, tval)
        tvec = self.csr(tvec_reg)
        target = tvec & ~3
        if tvec & 3 == 1 and is_interrupt:
            target += 4 * code
        if target_priv != priv:
            self.uc.reg_write(rc.UC_RISCV_REG_PRIV, target_priv)
        self.set_reg(PC, target)

    def exception_code(self, cause: Cause) -> int:
        if cause == Cause.ECALL:
            return ECALL_CODES.get(self.priv, 11)
        return EXCEPTION_CODES[cause]

    def read_insn(self, pc: int) -> int:
        low = int.from_bytes(self.uc.mem_read(pc, 2), "little")
        if instruction_length(low) == 2:
            return low
        return int.from_bytes(self.uc.mem_read(pc, 4), "little")

    # -- emulated CSRs ------------------------------------------------------
    def csr_value(self, csr: int, icount: int, mtime: int, mip: int) -> int:
        """Current value of an emulated CSR (the high halves exist on rv32 only)."""
        low = csr & ~0x80
        if low == CSR_TIME:
            value = mtime
        elif low in (CSR_CYCLE, CSR_MCYCLE):
            value = icount + self.mcycle_offset
        elif low in (CSR_INSTRET, CSR_MINSTRET):
            value = icount + self.minstret_offset
        else:
            return mip
        if csr & 0x80:
            return (value >> 32) & 0xFFFFFFFF
        return value & self.arch.mask

    def emulate_csr(self, insn: int, icount: int, mtime: int, mip: int) -> bool:
        """Execute a CSR instruction on an emulated CSR; False if it is illegal.

        Updates the destination register and the emulated state; the caller
        advances pc and icount.
        """
        csr = insn >> 20
        funct3 = (insn >> 12) & 7
        rd = (insn >> 7) & 31
        rs1 = (insn >> 15) & 31
        if csr & 0x80 and self.arch.xlen == 64:
            return False
        source = rs1 if funct3 >= 5 else self.reg(GPR_IDS[rs1])
        writes = funct3 & 3 == 1 or rs1 != 0
        if writes and csr in READ_ONLY_CSRS:
            return False
        old = self.csr_value(csr, icount, mtime, mip)
        if writes:
            # For mip only the software-writable bits take part in the read-modify-write:
            # an asserted external SEIP must not become a sticky software bit (spec 3.1.9).
            base = self.mip_soft if csr == CSR_MIP else old
            new = {1: source, 2: base | source, 3: base & ~source}[funct3 & 3] & self.arch.mask
            self._write_csr(csr, old, new, icount)
        if rd:
            self.set_reg(GPR_IDS[rd], old)
        return True

    def _write_csr(self, csr: int, old: int, new: int, icount: int) -> None:
        if csr == CSR_MIP:
            self.mip_soft = new & SOFTWARE_WRITABLE_MIP
            return
        # Counter writes take effect for the next instruction (the writer itself
        # retires and would increment the counter: hence +1).
        high = csr & 0x80
        is_cycle = csr & ~0x80 == CSR_MCYCLE
        current = icount + 1 + (self.mcycle_offset if is_cycle else self.minstret_offset)
        if high:
            target = (new << 32) | (current & 0xFFFFFFFF)
        elif self.arch.xlen == 32:
            target = (current & ~0xFFFFFFFF) | new
        else:
            target = new
        offset = target - (icount + 1)
        if is_cycle:
            self.mcycle_offset = offset
        else:
            self.minstret_offset = offset

    def registers(self) -> list[int]:
        """GPRs x0..x31 then pc: the register part of a state digest."""
        return [self.reg(r) for r in GPR_IDS] + [self.reg(PC), self.priv]

    def digest_csrs(self) -> list[int]:
        ids = (
            rc.UC_RISCV_REG_MSTATUS,
            rc.UC_RISCV_REG_MIE,
            rc.UC_RISCV_REG_MTVEC,
            rc.UC_RISCV_REG_MEPC,
            rc.UC_RISCV_REG_MCAUSE,
            rc.UC_RISCV_REG_MTVAL,
            rc.UC_RISCV_REG_MSCRATCH,
            rc.UC_RISCV_REG_MEDELEG,
            rc.UC_RISCV_REG_MIDELEG,
            rc.UC_RISCV_REG_STVEC,
            rc.UC_RISCV_REG_SEPC,
            rc.UC_RISCV_REG_SCAUSE,
            rc.UC_RISCV_REG_STVAL,
            rc.UC_RISCV_REG_SSCRATCH,
            rc.UC_RISCV_REG_SATP,
        )
        return [self.csr(r) for r in ids] + [self.mip_soft, self.mcycle_offset, self.minstret_offset]


def arch_for_elf(elf_class: int) -> RiscvArch:
    """rv32 for ELFCLASS32, rv64 for ELFCLASS64."""
    return RV32 if elf_class == 32 else RV64


ARCHES = {"riscv32": RV32, "riscv64": RV64}
