"""RISC-V instruction decoding the board needs: lengths, trapped instructions, data addresses."""

from __future__ import annotations

import enum
from collections.abc import Callable

from ..icount import TrappedInstructions

# CSRs whose values Unicorn gets wrong (host ticks, or no value at all): the
# board emulates every access to them at an exact icount.
CSR_SSTATUS, CSR_SIE, CSR_SIP, CSR_SATP = 0x100, 0x104, 0x144, 0x180
CSR_MSTATUS, CSR_MIDELEG, CSR_MIE, CSR_MIP = 0x300, 0x303, 0x304, 0x344
CSR_CYCLE, CSR_TIME, CSR_INSTRET = 0xC00, 0xC01, 0xC02
CSR_CYCLEH, CSR_TIMEH, CSR_INSTRETH = 0xC80, 0xC81, 0xC82
CSR_MCYCLE, CSR_MINSTRET, CSR_MCYCLEH, CSR_MINSTRETH = 0xB00, 0xB02, 0xB80, 0xB82
COUNTER_CSRS = frozenset({CSR_CYCLE, CSR_TIME, CSR_INSTRET, CSR_CYCLEH, CSR_TIMEH, CSR_INSTRETH})
EMULATED_CSRS = COUNTER_CSRS | {CSR_MCYCLE, CSR_MINSTRET, CSR_MCYCLEH, CSR_MINSTRETH, CSR_MIP, CSR_SIP}
# Writes to these may unmask a pending interrupt: Unicorn executes them, then
# the board stops to take the interrupt at exactly the next boundary.
UNMASKING_CSRS = frozenset({CSR_MSTATUS, CSR_MIE, CSR_MIDELEG, CSR_SSTATUS, CSR_SIE})
# Writes to these change what code a virtual address holds.
REMAPPING_CSRS = frozenset({CSR_SATP})
# The counter enables: the board's native timer reads (machine.riscv_timer_sites) keep a copy, taken before each
# run, so a write ends the run (Unicorn executes it).
CSR_SCOUNTEREN, CSR_MCOUNTEREN = 0x106, 0x306
COUNTER_ENABLE_CSRS = frozenset({CSR_SCOUNTEREN, CSR_MCOUNTEREN})

WFI = 0x10500073
MRET = 0x30200073
SRET = 0x10200073
EXACT = 0xFFFFFFFF
FENCE_I = (0x0000707F, 0x0000100F)
SFENCE_VMA = (0xFE007FFF, 0x12000073)


class Action(enum.Enum):
    """What the board does with a trapped instruction."""

    EMULATE_CSR = "emulate"  # the board computes the CSR (Unicorn's value is wrong)
    WFI = "wfi"  # Unicorn would halt forever: the board idles instead
    STEP_THEN_CHECK = "check"  # Unicorn executes it; then pending interrupts are re-checked
    STEP_THEN_FORGET = "forget"  # Unicorn executes it; then decoded code is forgotten (fence.i, satp)


TRAPPED = TrappedInstructions(
    EMULATED_CSRS | UNMASKING_CSRS | REMAPPING_CSRS | COUNTER_ENABLE_CSRS,
    frozenset({(EXACT, WFI), (EXACT, MRET), (EXACT, SRET), FENCE_I, SFENCE_VMA}),
)
# With Unicorn's riscv-counter-read patch (machine.unicorn_patches), reads of the counter CSRs are answered as
# Unicorn executes them (native/icount.c: chron_rv_counter_csr): they are not trapped. One it declines raises an
# illegal instruction exception, which the engine takes to the board's path (Engine.native_declines).
TRAPPED_NATIVE_COUNTERS = TrappedInstructions(TRAPPED.csrs - COUNTER_CSRS, TRAPPED.patterns)


def is_fence_i(insn: int) -> bool:
    mask, value = FENCE_I
    return insn & mask == value


def is_csr_access(insn: int) -> bool:
    """A Zicsr instruction (csrrw/s/c and their immediate forms)."""
    return insn & 0x7F == 0x73 and (insn >> 12) & 7 not in (0, 4)


def classify(insn: int) -> Action | None:
    """The board's action for a trapped instruction, or None if it is not one."""
    if insn == WFI:
        return Action.WFI
    if insn in (MRET, SRET):
        return Action.STEP_THEN_CHECK
    if any(insn & mask == value for mask, value in (FENCE_I, SFENCE_VMA)):
        return Action.STEP_THEN_FORGET
    if not is_csr_access(insn):
        return None
    csr = insn >> 20
    if csr in EMULATED_CSRS:
        return Action.EMULATE_CSR
    if csr in UNMASKING_CSRS or csr in COUNTER_ENABLE_CSRS:
        return Action.STEP_THEN_CHECK
    if csr in REMAPPING_CSRS:
        return Action.STEP_THEN_FORGET
    return None


# satp.MODE values Unicorn's CPU (QEMU 5) translates: rv64 Bare, Sv39, Sv48 (rv32: Bare and Sv32, every value
# of its one-bit field). QEMU 5 accepts any MODE up to Sv57 and keeps it, then cannot translate Sv57 (nor the
# reserved values): the first fetch faults. The privileged spec makes satp WARL: a write of an unsupported MODE
# has no effect at all, which is how Linux probes Sv57, then Sv48 (it writes satp and reads it back).
SATP64_MODES = frozenset({0, 8, 9})


def satp_is_supported(value: int, xlen: int) -> bool:
    """Whether a satp value names a translation mode this CPU implements (always on rv32)."""
    return xlen == 32 or value >> 60 in SATP64_MODES


def writes_csr(insn: int, csr: int) -> bool:
    """A Zicsr instruction that may write ``csr`` (csrrw always; csrrs/csrrc with rs1 or uimm other than 0)."""
    if not is_csr_access(insn) or insn >> 20 != csr:
        return False
    return (insn >> 12) & 3 == 1 or (insn >> 15) & 0x1F != 0


def instruction_length(low_halfword: int) -> int:
    """Length in bytes of the instruction whose first halfword is given."""
    return 4 if low_halfword & 3 == 3 else 2


def _sext(value: int, bits: int) -> int:
    sign = 1 << (bits - 1)
    return (value & (sign - 1)) - (value & sign)


def _bits(insn: int, hi: int, lo: int) -> int:
    return (insn >> lo) & ((1 << (hi - lo + 1)) - 1)


def data_address(insn: int, gpr: Callable[[int], int], xlen: int) -> int | None:
    """Effective address of a load, store or AMO (the faulting address for ``mtval``)."""
    mask = (1 << xlen) - 1
    if insn & 3 == 3:
        opcode, rs1 = insn & 0x7F, _bits(insn, 19, 15)
        if opcode in (0x03, 0x07):  # LOAD, LOAD-FP
            imm = _sext(insn >> 20, 12)
        elif opcode in (0x23, 0x27):  # STORE, STORE-FP
            imm = _sext((_bits(insn, 31, 25) << 5) | _bits(insn, 11, 7), 12)
        elif opcode == 0x2F:  # AMO, LR, SC
            imm = 0
        else:
            return None
        return (gpr(rs1) + imm) & mask
    quadrant, funct3 = insn & 3, _bits(insn, 15, 13)
    word = funct3 in (2, 6) or (xlen == 32 and funct3 in (3, 7))  # c.lw/c.sw (c.flw/c.fsw on rv32)
    if quadrant == 0 and funct3 != 0 and funct3 != 4:
        offset = _bits(insn, 12, 10) << 3
        offset |= (_bits(insn, 6, 6) << 2 | _bits(insn, 5, 5) << 6) if word else _bits(insn, 6, 5) << 6
        return (gpr(8 + _bits(insn, 9, 7)) + offset) & mask
    if quadrant == 2 and funct3 in (1, 2, 3):  # c.fldsp, c.lwsp, c.ldsp/c.flwsp
        if word:
            offset = _bits(insn, 12, 12) << 5 | _bits(insn, 6, 4) << 2 | _bits(insn, 3, 2) << 6
        else:
            offset = _bits(insn, 12, 12) << 5 | _bits(insn, 6, 5) << 3 | _bits(insn, 4, 2) << 6
        return (gpr(2) + offset) & mask
    if quadrant == 2 and funct3 in (5, 6, 7):  # c.fsdsp, c.swsp, c.sdsp/c.fswsp
        if word:
            offset = _bits(insn, 12, 9) << 2 | _bits(insn, 8, 7) << 6
        else:
            offset = _bits(insn, 12, 10) << 3 | _bits(insn, 9, 7) << 6
        return (gpr(2) + offset) & mask
    return None
