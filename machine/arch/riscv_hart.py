"""What a RISC-V hart does that Unicorn's model does not (docs/unicorn-facts.md, "RISC-V model"):

trap entry into ``mtvec``/``stvec`` with delegation, the interrupt-enable
rules, icount-derived counters, the board-owned ``mip``/``sip``, and the
privilege checks for every instruction the board emulates instead of Unicorn.
"""

from __future__ import annotations

import functools

from unicorn import Uc
from unicorn import riscv_const as rc

from ..engine import Cause
from ..icount import read_code
from . import riscv_insn as ri
from .common import BatchReader
from .riscv import (
    DATA_FAULTS,
    ECALL_CODES,
    EXCEPTION_CODES,
    FETCH_FAULTS,
    FPR_IDS,
    GPR_IDS,
    INTERRUPT_PRIORITY,
    MSTATUS_MIE,
    MSTATUS_MPIE,
    MSTATUS_MPP_SHIFT,
    MSTATUS_SIE,
    MSTATUS_SPIE,
    MSTATUS_SPP,
    MSTATUS_TW,
    PC,
    PRIV_M,
    PRIV_S,
    PRIV_U,
    SOFTWARE_WRITABLE_MIP,
    SSI,
    RiscvArch,
)
from .riscv_cpu import MSTATUS_FS

_M_TRAP_REGS = (rc.UC_RISCV_REG_MEPC, rc.UC_RISCV_REG_MCAUSE, rc.UC_RISCV_REG_MTVAL, rc.UC_RISCV_REG_MTVEC)
_S_TRAP_REGS = (rc.UC_RISCV_REG_SEPC, rc.UC_RISCV_REG_SCAUSE, rc.UC_RISCV_REG_STVAL, rc.UC_RISCV_REG_STVEC)
_DIGEST_CSRS = (
    rc.UC_RISCV_REG_MSTATUS, rc.UC_RISCV_REG_MIE, rc.UC_RISCV_REG_MTVEC, rc.UC_RISCV_REG_MEPC,
    rc.UC_RISCV_REG_MCAUSE, rc.UC_RISCV_REG_MTVAL, rc.UC_RISCV_REG_MSCRATCH, rc.UC_RISCV_REG_MEDELEG,
    rc.UC_RISCV_REG_MIDELEG, rc.UC_RISCV_REG_MCOUNTEREN, rc.UC_RISCV_REG_STVEC, rc.UC_RISCV_REG_SEPC,
    rc.UC_RISCV_REG_SCAUSE, rc.UC_RISCV_REG_STVAL, rc.UC_RISCV_REG_SSCRATCH, rc.UC_RISCV_REG_SATP,
    rc.UC_RISCV_REG_SCOUNTEREN, rc.UC_RISCV_REG_MIP, rc.UC_RISCV_REG_FCSR,
)  # fmt: skip
_RUN_CSRS = (rc.UC_RISCV_REG_MCOUNTEREN, rc.UC_RISCV_REG_SCOUNTEREN, rc.UC_RISCV_REG_SATP)
_FP_CSRS = frozenset({rc.UC_RISCV_REG_FFLAGS, rc.UC_RISCV_REG_FRM, rc.UC_RISCV_REG_FCSR})


class Hart:
    """Architectural state and rules Unicorn does not keep for one RISC-V hart."""

    def __init__(self, uc: Uc, arch: RiscvArch) -> None:
        self.uc = uc
        self.arch = arch
        self.mip_soft = 0  # software-writable mip bits (SSIP, STIP, SEIP)
        self.mcycle_offset = 0
        self.minstret_offset = 0
        self._run_csrs: tuple[int, int, int] | None = None  # (mcounteren, scounteren, satp) as last read (run_csrs)

    # -- register access -------------------------------------------------------
    def reg(self, uc_reg: int) -> int:
        """A GPR, FPR, pc or the privilege level."""
        return int(self.uc.reg_read(uc_reg))

    def set_reg(self, uc_reg: int, value: int) -> None:
        self.uc.reg_write(uc_reg, value & self.arch.mask)

    def gpr(self, n: int) -> int:
        return self.reg(GPR_IDS[n])

    @property
    def priv(self) -> int:
        return int(self.uc.reg_read(rc.UC_RISCV_REG_PRIV))

    def csr(self, uc_reg: int) -> int:
        """A CSR, read with M-mode rights: Unicorn's CSR reads fail silently below M-mode."""
        priv = self.priv
        if priv != PRIV_M:
            self.uc.reg_write(rc.UC_RISCV_REG_PRIV, PRIV_M)
        try:
            if uc_reg in _FP_CSRS:
                return self._fp_csr_m(uc_reg)
            return int(self.uc.reg_read(uc_reg))
        finally:
            if priv != PRIV_M:
                self.uc.reg_write(rc.UC_RISCV_REG_PRIV, priv)

    def _fp_csr_m(self, uc_reg: int) -> int:
        """fflags, frm or fcsr, in M-mode. Unicorn refuses them while mstatus.FS is Off and then reports whatever
        its stack held (a digest would differ between two processes): FS is switched on around the read."""
        mstatus = int(self.uc.reg_read(rc.UC_RISCV_REG_MSTATUS))
        if mstatus & MSTATUS_FS:
            return int(self.uc.reg_read(uc_reg))
        self.uc.reg_write(rc.UC_RISCV_REG_MSTATUS, mstatus | MSTATUS_FS)
        try:
            return int(self.uc.reg_read(uc_reg))
        finally:
            self.uc.reg_write(rc.UC_RISCV_REG_MSTATUS, mstatus)

    def run_csrs(self) -> tuple[int, int, int]:
        """(mcounteren, scounteren, satp), read once until :meth:`forget_run_csrs` (reading them below M-mode
        costs four register accesses each; they change only through :meth:`set_csr`, a guest's trapped write, or
        a restore, whose callers forget them)."""
        if self._run_csrs is None:
            mcounteren, scounteren, satp = self._csrs_m(_RUN_CSRS)
            self._run_csrs = (mcounteren, scounteren, satp)
        return self._run_csrs

    def forget_run_csrs(self) -> None:
        self._run_csrs = None

    def set_csr(self, uc_reg: int, value: int) -> None:
        """Write a CSR with M-mode rights (see :meth:`csr`)."""
        self._run_csrs = None
        priv = self.priv
        if priv != PRIV_M:
            self.uc.reg_write(rc.UC_RISCV_REG_PRIV, PRIV_M)
        try:
            self.uc.reg_write(uc_reg, value & self.arch.mask)
        finally:
            if priv != PRIV_M:
                self.uc.reg_write(rc.UC_RISCV_REG_PRIV, priv)

    def read_insn(self, pc: int) -> int | None:
        """The instruction at virtual ``pc`` as the CPU fetches it (None if unreadable)."""
        low = read_code(self.uc, pc, 2)
        if len(low) != 2:
            return None
        if ri.instruction_length(int.from_bytes(low, "little")) == 2:
            return int.from_bytes(low, "little")
        full = read_code(self.uc, pc, 4)
        return int.from_bytes(full, "little") if len(full) == 4 else None

    # -- interrupts and traps ----------------------------------------------------
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

    def traps_to_s_mode(self, code: int, is_interrupt: bool) -> bool:
        """True when this trap is delegated to S-mode (``medeleg``/``mideleg``, taken below M)."""
        deleg = self.csr(rc.UC_RISCV_REG_MIDELEG if is_interrupt else rc.UC_RISCV_REG_MEDELEG)
        return self.priv < PRIV_M and bool(deleg >> code & 1)

    def has_trap_handler(self, code: int) -> bool:
        """False only for a trap into M-mode before the guest has set mtvec (reset value 0)."""
        if self.traps_to_s_mode(code, False):
            return True
        return self.csr(rc.UC_RISCV_REG_MTVEC) & ~3 != 0

    def enter_trap(self, pc: int, code: int, tval: int, is_interrupt: bool = False) -> None:
        """Take a trap exactly as the privileged spec says (``mret``/``sret``-compatible)."""
        priv = self.priv
        status = self.csr(rc.UC_RISCV_REG_MSTATUS)
        if self.traps_to_s_mode(code, is_interrupt):
            spie = MSTATUS_SPIE if status & MSTATUS_SIE else 0
            status = (status & ~(MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP)) | spie
            status |= MSTATUS_SPP if priv == PRIV_S else 0
            regs, target_priv = _S_TRAP_REGS, PRIV_S
        else:
            mpie = MSTATUS_MPIE if status & MSTATUS_MIE else 0
            status = (status & ~(MSTATUS_MIE | MSTATUS_MPIE | (3 << MSTATUS_MPP_SHIFT))) | mpie
            status |= (priv & 3) << MSTATUS_MPP_SHIFT
            regs, target_priv = _M_TRAP_REGS, PRIV_M
        epc_reg, cause_reg, tval_reg, tvec_reg = regs
        self.set_csr(rc.UC_RISCV_REG_MSTATUS, status)
        self.set_csr(epc_reg, pc)
        self.set_csr(cause_reg, self.arch.interrupt_cause(code) if is_interrupt else code)
        self.set_csr(tval_reg, tval)
        tvec = self.csr(tvec_reg)
        target = tvec & ~3
        if tvec & 3 == 1 and is_interrupt:
            target += 4 * code
        if target_priv != priv:
            self.uc.reg_write(rc.UC_RISCV_REG_PRIV, target_priv)
        self.set_reg(PC, target)

    def trap_value(self, cause: Cause, pc: int, addr: int) -> int:
        """mtval/stval for an exception at ``pc`` (``addr``: the faulting address, if known), as QEMU 7.2."""
        if cause == Cause.ILLEGAL_INSTRUCTION:
            return self.read_insn(pc) or 0
        if cause in FETCH_FAULTS:
            return addr or pc
        if cause in DATA_FAULTS:
            insn = self.read_insn(pc)
            data = None if insn is None else ri.data_address(insn, self.gpr, self.arch.xlen)
            return data or 0
        if cause in (Cause.LOAD_FAULT, Cause.STORE_FAULT):
            return addr
        return 0

    def exception_code(self, cause: Cause) -> int:
        if cause == Cause.ECALL:
            return ECALL_CODES.get(self.priv, 11)
        return EXCEPTION_CODES[cause]

    # -- instructions the board executes itself --------------------------------------
    def may_wfi(self) -> bool:
        """wfi is illegal in U-mode, and in S-mode when mstatus.TW is set."""
        priv = self.priv
        return priv == PRIV_M or (priv == PRIV_S and not self.csr(rc.UC_RISCV_REG_MSTATUS) & MSTATUS_TW)

    def _may_access(self, csr: int, writes: bool) -> bool:
        """CSR privilege (bits 9:8), read-only CSRs (bits 11:10 = 3) and counter enables."""
        priv = self.priv
        if priv < (csr >> 8) & 3 or (writes and csr >> 10 == 3):
            return False
        if csr & 0x80 and self.arch.xlen == 64 and csr in ri.EMULATED_CSRS - {ri.CSR_MIP, ri.CSR_SIP}:
            return False  # the *h halves exist on rv32 only
        if csr in ri.COUNTER_CSRS and priv < PRIV_M:
            bit = 1 << (csr & 0x1F)
            if not self.csr(rc.UC_RISCV_REG_MCOUNTEREN) & bit:
                return False
            if priv == PRIV_U and not self.csr(rc.UC_RISCV_REG_SCOUNTEREN) & bit:
                return False
        return True

    def csr_value(self, csr: int, icount: int, mtime: int, mip: int) -> int:
        """Current value of an emulated CSR (the high halves exist on rv32 only)."""
        if csr == ri.CSR_MIP:
            return mip
        if csr == ri.CSR_SIP:
            return mip & self.csr(rc.UC_RISCV_REG_MIDELEG)
        low = csr & ~0x80
        if low == ri.CSR_TIME:
            value = mtime
        elif low in (ri.CSR_CYCLE, ri.CSR_MCYCLE):
            value = icount + self.mcycle_offset
        elif low in (ri.CSR_INSTRET, ri.CSR_MINSTRET):
            value = icount + self.minstret_offset
        else:
            raise ValueError(f"CSR {csr:#x} is not emulated")
        if csr & 0x80:
            return (value >> 32) & 0xFFFFFFFF
        return value & self.arch.mask

    def emulate_csr(self, insn: int, icount: int, mtime: int, mip: int) -> bool:
        """Execute a CSR instruction on an emulated CSR; False if it is illegal here.

        Updates the destination register and the emulated state; the caller
        advances pc and icount.
        """
        csr = insn >> 20
        funct3 = (insn >> 12) & 7
        rd = (insn >> 7) & 31
        rs1 = (insn >> 15) & 31
        writes = funct3 & 3 == 1 or rs1 != 0
        if csr not in ri.EMULATED_CSRS or not self._may_access(csr, writes):
            return False
        source = rs1 if funct3 >= 5 else self.gpr(rs1)
        old = self.csr_value(csr, icount, mtime, mip)
        if writes:
            # For mip/sip only the software-writable bits take part in the read-modify-write:
            # an asserted external SEIP must not become a sticky software bit (spec 3.1.9).
            base = self.mip_soft if csr in (ri.CSR_MIP, ri.CSR_SIP) else old
            new = {1: source, 2: base | source, 3: base & ~source}[funct3 & 3] & self.arch.mask
            # The writer itself retires and would increment the counter: the new
            # value is what the next instruction (icount + 1) reads.
            self._write_csr(csr, new, icount + 1)
        if rd:
            self.set_reg(GPR_IDS[rd], old)
        return True

    def write_emulated_csr(self, csr: int, value: int, icount: int) -> bool:
        """A debugger's write to an emulated CSR, read back as ``value`` at ``icount``.

        False for the read-only counters (cycle, time, instret and their halves)
        and for CSRs that are not emulated.
        """
        if csr not in ri.EMULATED_CSRS or csr >> 10 == 3:
            return False
        self._write_csr(csr, value & self.arch.mask, icount)
        return True

    def _write_csr(self, csr: int, new: int, effective: int) -> None:
        """Write an emulated CSR so that it reads ``new`` at icount ``effective``."""
        if csr == ri.CSR_MIP:
            self.mip_soft = new & SOFTWARE_WRITABLE_MIP
            return
        if csr == ri.CSR_SIP:  # only SSIP, and only when delegated
            writable = (1 << SSI) & self.csr(rc.UC_RISCV_REG_MIDELEG)
            self.mip_soft = (self.mip_soft & ~writable) | (new & writable)
            return
        high = csr & 0x80
        is_cycle = csr & ~0x80 == ri.CSR_MCYCLE
        current = effective + (self.mcycle_offset if is_cycle else self.minstret_offset)
        if high:
            target = (new << 32) | (current & 0xFFFFFFFF)
        elif self.arch.xlen == 32:
            target = (current & ~0xFFFFFFFF) | new
        else:
            target = new
        offset = target - effective
        if is_cycle:
            self.mcycle_offset = offset
        else:
            self.minstret_offset = offset

    # -- digests ------------------------------------------------------------------
    def registers(self) -> list[int]:
        """GPRs x0..x31, pc and privilege: the register part of a state digest."""
        return [*self._batch.read(_REGS), self.priv]

    def digest_csrs(self) -> list[int]:
        """FPRs, CSRs and the board-kept hart state, for state digests."""
        return self._batch.read(FPR_IDS) + self._csrs_m(_DIGEST_CSRS) + [self.mip_soft, self.mcycle_offset,
                                                                           self.minstret_offset]  # fmt: skip

    def _csrs_m(self, ids: tuple[int, ...]) -> list[int]:
        """CSRs read in one native call with M-mode rights (see :meth:`csr`; fcsr as :meth:`_fp_csr_m` reads it)."""
        priv = self.priv
        if priv != PRIV_M:
            self.uc.reg_write(rc.UC_RISCV_REG_PRIV, PRIV_M)
        try:
            csrs = self._batch.read(ids)
            if rc.UC_RISCV_REG_FCSR in ids:
                csrs[ids.index(rc.UC_RISCV_REG_FCSR)] = self._fp_csr_m(rc.UC_RISCV_REG_FCSR)
            return csrs
        finally:
            if priv != PRIV_M:
                self.uc.reg_write(rc.UC_RISCV_REG_PRIV, priv)

    @functools.cached_property
    def _batch(self) -> BatchReader:
        return BatchReader(self.uc)


_REGS = (*GPR_IDS, PC)
