"""machine/arch/riscv.py: emulated CSRs, interrupt selection and trap entry on a real Unicorn hart."""

from __future__ import annotations

import pytest
from unicorn import riscv_const as rc

from machine.arch.riscv import (
    ARCHES,
    GPR_IDS,
    MEI,
    MSI,
    MSTATUS_MIE,
    MSTATUS_MPIE,
    MSTATUS_SIE,
    MSTATUS_SPIE,
    MSTATUS_SPP,
    MTI,
    PC,
    RV32,
    RV64,
    SEI,
    SSI,
    STI,
    RiscvArch,
    arch_for_elf,
)
from machine.arch.riscv_hart import Hart
from machine.arch.riscv_insn import MRET, WFI, Action, classify, instruction_length
from machine.engine import Cause

CYCLE, TIME, INSTRET = 0xC00, 0xC01, 0xC02
CYCLEH, TIMEH, INSTRETH = 0xC80, 0xC81, 0xC82
MCYCLE, MINSTRET, MCYCLEH, MINSTRETH = 0xB00, 0xB02, 0xB80, 0xB82
MSTATUS, MIE, MIP = 0x300, 0x304, 0x344
CSRRW, CSRRS, CSRRC, CSRRWI, CSRRSI, CSRRCI = 1, 2, 3, 5, 6, 7
T0, A0, A1 = 5, 10, 11
RAM = 0x8000_0000
MPP_SHIFT = 11

ARCH = pytest.mark.parametrize("arch", [RV32, RV64], ids=["rv32", "rv64"])


def csr_insn(funct3: int, rd: int, rs1: int, csr: int) -> int:
    """A SYSTEM-opcode CSR instruction word (rs1 is the uimm for the *I forms)."""
    return csr << 20 | rs1 << 15 | funct3 << 12 | rd << 7 | 0x73


def make_hart(arch: RiscvArch) -> Hart:
    return Hart(arch.new_uc(), arch)


def gpr(hart: Hart, n: int) -> int:
    return hart.reg(GPR_IDS[n])


def set_gpr(hart: Hart, n: int, value: int) -> None:
    hart.set_reg(GPR_IDS[n], value)


def read_csr(hart: Hart, csr: int, icount: int, mtime: int = 0, mip: int = 0) -> int:
    """``csrr a0, csr`` through the emulation; returns a0."""
    assert hart.emulate_csr(csr_insn(CSRRS, A0, 0, csr), icount, mtime, mip)
    return gpr(hart, A0)


def write_csr(hart: Hart, csr: int, value: int, icount: int, mip: int = 0) -> None:
    """``csrw csr, t0`` through the emulation."""
    set_gpr(hart, T0, value)
    assert hart.emulate_csr(csr_insn(CSRRW, 0, T0, csr), icount, 0, mip)


def test_csr_insn_helper_matches_assembler() -> None:
    assert csr_insn(CSRRS, A0, 0, CYCLE) == 0xC0002573  # rdcycle a0
    assert csr_insn(CSRRS, A0, 0, TIME) == 0xC0102573  # rdtime a0
    assert csr_insn(CSRRW, 0, T0, 0x305) == 0x30529073  # csrw mtvec, t0


# ---------------------------------------------------------------------------- counters


@ARCH
def test_user_counters_are_icount_derived(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    assert read_csr(hart, CYCLE, 1234, mtime=99) == 1234
    assert read_csr(hart, INSTRET, 1234, mtime=99) == 1234
    assert read_csr(hart, TIME, 1234, mtime=99) == 99
    assert read_csr(hart, MCYCLE, 777) == 777
    assert read_csr(hart, MINSTRET, 778) == 778


def test_rv32_high_halves() -> None:
    hart = make_hart(RV32)
    icount = 0x3_1234_5678
    mtime = 0x7_0000_0001
    assert read_csr(hart, CYCLE, icount, mtime) == 0x1234_5678
    assert read_csr(hart, CYCLEH, icount, mtime) == 3
    assert read_csr(hart, INSTRETH, icount, mtime) == 3
    assert read_csr(hart, MCYCLEH, icount, mtime) == 3
    assert read_csr(hart, MINSTRETH, icount, mtime) == 3
    assert read_csr(hart, TIME, icount, mtime) == 1
    assert read_csr(hart, TIMEH, icount, mtime) == 7


def test_rv64_counters_are_full_width_and_have_no_high_halves() -> None:
    hart = make_hart(RV64)
    icount = 0x3_1234_5678
    assert read_csr(hart, CYCLE, icount) == icount
    assert read_csr(hart, TIME, 0, mtime=0x9_0000_0000) == 0x9_0000_0000
    set_gpr(hart, A0, 0x55)
    for csr in (CYCLEH, TIMEH, INSTRETH, MCYCLEH, MINSTRETH):
        assert not hart.emulate_csr(csr_insn(CSRRS, A0, 0, csr), icount, 0, 0)
    assert gpr(hart, A0) == 0x55  # an illegal instruction changes nothing


@ARCH
@pytest.mark.parametrize(
    "insn",
    [
        csr_insn(CSRRW, 0, T0, CYCLE),
        csr_insn(CSRRW, A0, 0, TIME),  # csrrw always writes, even from x0
        csr_insn(CSRRS, A0, T0, INSTRET),
        csr_insn(CSRRC, A0, T0, CYCLE),
        csr_insn(CSRRWI, A0, 0, TIME),
        csr_insn(CSRRSI, A0, 1, CYCLE),
        csr_insn(CSRRCI, A0, 4, INSTRET),
    ],
    ids=["csrrw", "csrrw-x0", "csrrs", "csrrc", "csrrwi-0", "csrrsi", "csrrci"],
)
def test_writes_to_read_only_counters_are_refused(arch: RiscvArch, insn: int) -> None:
    hart = make_hart(arch)
    set_gpr(hart, T0, 1)
    set_gpr(hart, A0, 0x77)
    assert hart.emulate_csr(insn, 100, 5, 0) is False
    assert gpr(hart, A0) == 0x77
    assert (hart.mcycle_offset, hart.minstret_offset) == (0, 0)


def test_rv32_high_half_writes_refused() -> None:
    hart = make_hart(RV32)
    set_gpr(hart, T0, 1)
    for csr in (CYCLEH, TIMEH, INSTRETH):
        assert not hart.emulate_csr(csr_insn(CSRRW, 0, T0, csr), 1, 0, 0)


@ARCH
def test_reads_with_zero_source_are_not_writes(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    assert hart.emulate_csr(csr_insn(CSRRSI, A0, 0, CYCLE), 42, 0, 0)
    assert gpr(hart, A0) == 42
    assert hart.emulate_csr(csr_insn(CSRRC, A1, 0, TIME), 42, 9, 0)
    assert gpr(hart, A1) == 9


@ARCH
def test_rd_x0_is_not_written(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    assert hart.emulate_csr(csr_insn(CSRRS, 0, 0, CYCLE), 42, 0, 0)
    assert gpr(hart, 0) == 0


@ARCH
def test_mcycle_write_then_read(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    set_gpr(hart, T0, 1000)
    assert hart.emulate_csr(csr_insn(CSRRW, A0, T0, MCYCLE), 50, 0, 0)
    assert gpr(hart, A0) == 50  # old value
    assert read_csr(hart, MCYCLE, 51) == 1000  # the next instruction sees the written value
    assert read_csr(hart, MCYCLE, 60) == 1009  # ... plus the instructions since
    assert read_csr(hart, CYCLE, 60) == 1009  # cycle is mcycle's user view
    assert read_csr(hart, MINSTRET, 60) == 60  # instret untouched
    assert read_csr(hart, INSTRET, 60) == 60


@ARCH
def test_minstret_write_then_read(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    write_csr(hart, MINSTRET, 5, 1000)
    assert read_csr(hart, MINSTRET, 1001) == 5
    assert read_csr(hart, INSTRET, 1011) == 15
    assert read_csr(hart, MCYCLE, 1011) == 1011


@ARCH
def test_mcycle_set_and_clear_bits(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    set_gpr(hart, T0, 0xFF)
    assert hart.emulate_csr(csr_insn(CSRRC, A0, T0, MCYCLE), 0x1FF, 0, 0)
    assert gpr(hart, A0) == 0x1FF
    assert read_csr(hart, MCYCLE, 0x200) == 0x100
    assert hart.emulate_csr(csr_insn(CSRRSI, 0, 0x3, MCYCLE), 0x300, 0, 0)
    assert read_csr(hart, MCYCLE, 0x301) == 0x203


@ARCH
def test_mcycle_wraps_at_xlen(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    write_csr(hart, MCYCLE, arch.mask, 10)
    assert read_csr(hart, MCYCLE, 11) == arch.mask
    assert read_csr(hart, MCYCLE, 12) == 0  # wrapped (rv32: the carry went to mcycleh)
    if arch.xlen == 32:
        assert read_csr(hart, MCYCLEH, 12) == 1


def test_rv32_mcycle_halves_are_written_independently() -> None:
    hart = make_hart(RV32)
    write_csr(hart, MCYCLEH, 5, 10)
    assert read_csr(hart, MCYCLEH, 11) == 5
    assert read_csr(hart, MCYCLE, 11) == 11  # low half kept counting
    write_csr(hart, MCYCLE, 0xFFFF_FFFF, 20)
    assert read_csr(hart, MCYCLE, 21) == 0xFFFF_FFFF
    assert read_csr(hart, MCYCLEH, 21) == 5
    assert read_csr(hart, MCYCLE, 22) == 0  # carry into the high half
    assert read_csr(hart, MCYCLEH, 22) == 6
    write_csr(hart, MINSTRETH, 2, 30)
    assert read_csr(hart, INSTRETH, 31) == 2
    assert read_csr(hart, INSTRET, 31) == 31
    assert read_csr(hart, CYCLEH, 31) == 6


# ---------------------------------------------------------------------------- mip


@ARCH
def test_mip_reads_the_board_value(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    board = 1 << MEI | 1 << MTI | 1 << MSI
    assert read_csr(hart, MIP, 5, mip=board) == board


@ARCH
def test_mip_only_software_bits_are_writable(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    write_csr(hart, MIP, arch.mask, 1)
    assert hart.mip_soft == 1 << SSI | 1 << STI | 1 << SEI
    set_gpr(hart, T0, 1 << SSI)
    assert hart.emulate_csr(csr_insn(CSRRC, A0, T0, MIP), 2, 0, hart.mip_soft)
    assert gpr(hart, A0) == 1 << SSI | 1 << STI | 1 << SEI
    assert hart.mip_soft == 1 << STI | 1 << SEI
    write_csr(hart, MIP, 0, 3)
    assert hart.mip_soft == 0
    assert (hart.mcycle_offset, hart.minstret_offset) == (0, 0)


@ARCH
def test_mip_set_does_not_latch_external_seip(arch: RiscvArch) -> None:
    """csrs/csrc on mip use only the software-writable SEIP bit in their read-modify-write
    (privileged spec 3.1.9): an external SEIP seen at that moment must not become sticky."""
    hart = make_hart(arch)
    external = 1 << SEI  # PLIC context 1 asserted
    set_gpr(hart, T0, 1 << SSI)
    assert hart.emulate_csr(csr_insn(CSRRS, 0, T0, MIP), 10, 0, hart.mip_soft | external)
    assert hart.mip_soft & (1 << SSI)
    assert hart.mip_soft & (1 << SEI) == 0


# ---------------------------------------------------------------------------- interrupts


def enable(hart: Hart, mie: int, mstatus: int) -> None:
    hart.set_csr(rc.UC_RISCV_REG_MIE, mie)
    hart.set_csr(rc.UC_RISCV_REG_MSTATUS, mstatus)


M_BITS = 1 << MEI | 1 << MSI | 1 << MTI


@ARCH
def test_interrupt_priority_mei_msi_mti(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    enable(hart, M_BITS, MSTATUS_MIE)
    assert hart.enabled_interrupt(M_BITS) == MEI
    assert hart.enabled_interrupt(1 << MSI | 1 << MTI) == MSI
    assert hart.enabled_interrupt(1 << MTI) == MTI
    assert hart.enabled_interrupt(0) is None


@ARCH
def test_interrupts_masked_by_mstatus_mie_in_m_mode(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    enable(hart, M_BITS, 0)
    assert hart.priv == 3
    assert hart.enabled_interrupt(M_BITS) is None


@ARCH
def test_interrupts_masked_by_mie(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    enable(hart, 1 << MTI, MSTATUS_MIE)
    assert hart.enabled_interrupt(M_BITS) == MTI
    enable(hart, 0, MSTATUS_MIE)
    assert hart.enabled_interrupt(M_BITS) is None


@ARCH
def test_m_interrupts_always_enabled_below_m_mode(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    enable(hart, M_BITS, 0)
    hart.uc.reg_write(rc.UC_RISCV_REG_PRIV, 1)
    assert hart.enabled_interrupt(1 << MTI) == MTI
    hart.uc.reg_write(rc.UC_RISCV_REG_PRIV, 0)
    assert hart.enabled_interrupt(1 << MSI) == MSI


@ARCH
def test_delegated_interrupts_go_to_s_mode_only(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    hart.set_csr(rc.UC_RISCV_REG_MIDELEG, 1 << SEI)
    enable(hart, 1 << SEI | 1 << MTI, MSTATUS_MIE | MSTATUS_SIE)
    assert hart.enabled_interrupt(1 << SEI) is None  # in M-mode, never
    hart.uc.reg_write(rc.UC_RISCV_REG_PRIV, 1)
    assert hart.enabled_interrupt(1 << SEI) == SEI
    assert hart.enabled_interrupt(1 << SEI | 1 << MTI) == MTI  # M-level target first
    enable(hart, 1 << SEI, MSTATUS_MIE)  # SIE clear
    assert hart.enabled_interrupt(1 << SEI) is None
    hart.uc.reg_write(rc.UC_RISCV_REG_PRIV, 0)
    assert hart.enabled_interrupt(1 << SEI) == SEI


# ---------------------------------------------------------------------------- trap entry


def mstatus(hart: Hart) -> int:
    return hart.csr(rc.UC_RISCV_REG_MSTATUS)


@ARCH
def test_exception_entry_from_m_mode(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    hart.set_csr(rc.UC_RISCV_REG_MTVEC, RAM + 0x1001)  # vectored, but exceptions use the base
    hart.set_csr(rc.UC_RISCV_REG_MSTATUS, MSTATUS_MIE)
    hart.enter_trap(RAM + 0x100, 2, 0xDEAD)
    assert hart.reg(PC) == RAM + 0x1000
    assert hart.csr(rc.UC_RISCV_REG_MEPC) == RAM + 0x100
    assert hart.csr(rc.UC_RISCV_REG_MCAUSE) == 2
    assert hart.csr(rc.UC_RISCV_REG_MTVAL) == 0xDEAD
    status = mstatus(hart)
    assert status & MSTATUS_MIE == 0
    assert status & MSTATUS_MPIE
    assert (status >> MPP_SHIFT) & 3 == 3
    assert hart.priv == 3


@ARCH
def test_interrupt_entry_vectored(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    hart.set_csr(rc.UC_RISCV_REG_MTVEC, RAM + 0x1001)
    hart.set_csr(rc.UC_RISCV_REG_MSTATUS, MSTATUS_MPIE)  # MIE clear: MPIE must become 0
    hart.enter_trap(RAM + 0x44, MTI, 0, is_interrupt=True)
    assert hart.reg(PC) == RAM + 0x1000 + 4 * MTI
    assert hart.csr(rc.UC_RISCV_REG_MCAUSE) == 1 << (arch.xlen - 1) | MTI
    assert hart.csr(rc.UC_RISCV_REG_MEPC) == RAM + 0x44
    assert mstatus(hart) & (MSTATUS_MIE | MSTATUS_MPIE) == 0


@ARCH
def test_interrupt_entry_direct_mode(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    hart.set_csr(rc.UC_RISCV_REG_MTVEC, RAM + 0x2000)
    hart.enter_trap(RAM, MEI, 0, is_interrupt=True)
    assert hart.reg(PC) == RAM + 0x2000
    assert hart.csr(rc.UC_RISCV_REG_MCAUSE) == arch.interrupt_cause(MEI)


@ARCH
def test_trap_from_s_mode_to_m_mode_records_mpp(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    hart.set_csr(rc.UC_RISCV_REG_MTVEC, RAM + 0x1000)
    hart.uc.reg_write(rc.UC_RISCV_REG_PRIV, 1)
    hart.enter_trap(RAM + 8, 9, 0)  # ecall from S, not delegated
    assert hart.priv == 3
    assert (mstatus(hart) >> MPP_SHIFT) & 3 == 1
    assert hart.csr(rc.UC_RISCV_REG_MCAUSE) == 9


@ARCH
def test_delegated_exception_goes_to_s_mode(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    hart.set_csr(rc.UC_RISCV_REG_MTVEC, RAM + 0x1000)
    hart.set_csr(rc.UC_RISCV_REG_STVEC, RAM + 0x3000)
    hart.set_csr(rc.UC_RISCV_REG_MEDELEG, 1 << 2)
    hart.set_csr(rc.UC_RISCV_REG_MSTATUS, MSTATUS_SIE)
    hart.uc.reg_write(rc.UC_RISCV_REG_PRIV, 1)
    hart.enter_trap(RAM + 0x10, 2, 0x1234)
    assert hart.priv == 1
    assert hart.reg(PC) == RAM + 0x3000
    assert hart.csr(rc.UC_RISCV_REG_SEPC) == RAM + 0x10
    assert hart.csr(rc.UC_RISCV_REG_SCAUSE) == 2
    assert hart.csr(rc.UC_RISCV_REG_STVAL) == 0x1234
    status = mstatus(hart)
    assert status & MSTATUS_SIE == 0 and status & MSTATUS_SPIE and status & MSTATUS_SPP
    assert hart.csr(rc.UC_RISCV_REG_MCAUSE) == 0  # M-mode untouched


@ARCH
def test_trap_entry_then_guest_mret_returns(arch: RiscvArch) -> None:
    """The state enter_trap leaves is what Unicorn's own mret expects."""
    hart = make_hart(arch)
    hart.uc.mem_map(RAM, 0x4000)
    handler = RAM + 0x1000
    hart.uc.mem_write(handler, MRET.to_bytes(4, "little"))
    hart.set_csr(rc.UC_RISCV_REG_MTVEC, handler)
    hart.set_csr(rc.UC_RISCV_REG_MIE, 1 << MTI)
    hart.set_csr(rc.UC_RISCV_REG_MSTATUS, MSTATUS_MIE)
    hart.enter_trap(RAM + 0x20, MTI, 0, is_interrupt=True)
    hart.uc.emu_start(hart.reg(PC), 0, count=1)
    assert hart.reg(PC) == RAM + 0x20
    assert hart.priv == 3
    assert mstatus(hart) & MSTATUS_MIE


@ARCH
def test_trap_handler_and_exception_codes(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    assert not hart.has_trap_handler(2)
    hart.set_csr(rc.UC_RISCV_REG_MTVEC, 1)  # vectored with base 0: still none
    assert not hart.has_trap_handler(2)
    hart.set_csr(rc.UC_RISCV_REG_MTVEC, RAM)
    assert hart.has_trap_handler(2)
    assert hart.exception_code(Cause.ECALL) == 11
    hart.uc.reg_write(rc.UC_RISCV_REG_PRIV, 1)
    assert hart.exception_code(Cause.ECALL) == 9
    hart.uc.reg_write(rc.UC_RISCV_REG_PRIV, 0)
    assert hart.exception_code(Cause.ECALL) == 8
    codes = {
        c: hart.exception_code(c)
        for c in (Cause.FETCH_FAULT, Cause.ILLEGAL_INSTRUCTION, Cause.BREAKPOINT, Cause.LOAD_FAULT, Cause.STORE_FAULT)
    }
    assert list(codes.values()) == [1, 2, 3, 5, 7]


@ARCH
def test_csr_access_uses_m_mode_rights_and_restores_priv(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    hart.set_csr(rc.UC_RISCV_REG_MSCRATCH, 0x1234)
    hart.uc.reg_write(rc.UC_RISCV_REG_PRIV, 0)
    assert hart.csr(rc.UC_RISCV_REG_MSCRATCH) == 0x1234
    hart.set_csr(rc.UC_RISCV_REG_MSCRATCH, 0x5678)
    assert hart.priv == 0
    hart.uc.reg_write(rc.UC_RISCV_REG_PRIV, 3)
    assert hart.csr(rc.UC_RISCV_REG_MSCRATCH) == 0x5678


# ---------------------------------------------------------------------------- helpers


@ARCH
def test_read_insn_handles_compressed(arch: RiscvArch) -> None:
    hart = make_hart(arch)
    hart.uc.mem_map(RAM, 0x1000)
    hart.uc.mem_write(RAM, bytes.fromhex("8543") + WFI.to_bytes(4, "little"))
    assert hart.read_insn(RAM) == 0x4385  # c.li t2, 1
    assert hart.read_insn(RAM + 2) == WFI


def test_instruction_length() -> None:
    assert instruction_length(0x4385) == 2
    assert instruction_length(0x0073) == 4
    assert instruction_length(0x0001) == 2


def test_classify_trapped_instructions() -> None:
    assert classify(MRET) == Action.STEP_THEN_CHECK
    assert classify(csr_insn(CSRRS, 0, T0, MSTATUS)) == Action.STEP_THEN_CHECK
    assert classify(csr_insn(CSRRWI, 0, 8, MIE)) == Action.STEP_THEN_CHECK
    assert classify(csr_insn(CSRRS, A0, 0, CYCLE)) == Action.EMULATE_CSR
    assert classify(WFI) == Action.WFI
    assert classify(0x0000100F) == Action.STEP_THEN_FORGET  # fence.i
    assert classify(csr_insn(CSRRW, 0, T0, 0x180)) == Action.STEP_THEN_FORGET  # satp
    assert classify(csr_insn(4, 0, 0, MSTATUS)) is None  # funct3 4 is not a CSR op
    assert classify(0x00000013) is None  # nop


def test_arches() -> None:
    assert arch_for_elf(32) is RV32 and arch_for_elf(64) is RV64
    assert ARCHES == {"riscv32": RV32, "riscv64": RV64}
    assert RV32.mask == 0xFFFF_FFFF and RV64.mask == (1 << 64) - 1
    assert RV32.interrupt_cause(7) == 0x8000_0007
    assert RV64.interrupt_cause(11) == 0x8000_0000_0000_000B
    assert RV32.until_addr & 1 and RV64.until_addr & 1
    assert RV32.name == "riscv32"
