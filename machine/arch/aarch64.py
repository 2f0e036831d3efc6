"""AArch64 (Armv8-A at EL1, Unicorn's Cortex-A72): Unicorn ids, the instructions the board handles, syndromes.

What Unicorn 2.1.4 does on its own, measured (docs/unicorn-facts.md has the interrupt-injection recipe):

| guest does | Unicorn does |
|---|---|
| ``svc #imm`` | ``UC_HOOK_INTR`` intno 2 (EXCP_SWI), pc already past it; ESR/ELR/vector untouched |
| ``hvc``/``smc`` at EL1 (no EL2/EL3 in use) | intno 1 (EXCP_UDEF), pc at the instruction |
| an undefined instruction | intno 1, pc at it |
| ``brk #imm`` | intno 7 (EXCP_BKPT), pc at it |
| a load/store to unmapped memory | ``emu_start`` fails with UC_ERR_READ/WRITE_UNMAPPED, pc at it |
| ``mrs xN, cntvct_el0`` | host time: the board emulates every generic-timer register access |
| ``wfi`` | ends ``emu_start``: the board traps ``wfi`` and idles |
| ``eret`` | works once SCR_EL3.RW is set (the board sets it at reset) |

So the board performs exception entry itself (ESR, ELR, SPSR, FAR, PSTATE, the vector) and computes each
syndrome from the instruction, as QEMU's ``arm_cpu_do_interrupt_aarch64`` does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from unicorn import UC_ARCH_ARM64, UC_MODE_ARM, Uc
from unicorn import arm64_const as ac
from unicorn.unicorn_py3.unicorn import UcContext

from ..engine import Cause
from ..icount import Isa, TrappedInstructions

PC = ac.UC_ARM64_REG_PC

# Unicorn's (QEMU's) exception numbers reported to UC_HOOK_INTR: (cause, bytes pc was already advanced).
EXCP_UDEF, EXCP_SWI, EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT, EXCP_BKPT = 1, 2, 3, 4, 7
INTR_CAUSES = {
    EXCP_UDEF: (Cause.ILLEGAL_INSTRUCTION, 0),
    EXCP_SWI: (Cause.ECALL, 4),
    EXCP_PREFETCH_ABORT: (Cause.FETCH_FAULT, 0),
    EXCP_DATA_ABORT: (Cause.LOAD_FAULT, 0),
    EXCP_BKPT: (Cause.BREAKPOINT, 0),
}

# Exception classes (ESR_ELx.EC), Arm ARM D17.2.37.
EC_UNKNOWN, EC_SVC, EC_HVC, EC_SMC = 0x00, 0x15, 0x16, 0x17
EC_INSN_ABORT_SAME_EL, EC_PC_ALIGN, EC_DATA_ABORT_SAME_EL, EC_BRK = 0x21, 0x22, 0x25, 0x3C
EC_INSN_ABORT_LOWER_EL, EC_DATA_ABORT_LOWER_EL = 0x20, 0x24
ESR_IL = 1 << 25
FSC_SYNC_EXTERNAL = 0x10  # synchronous external abort, not on a table walk (QEMU: an unassigned address)
WNR = 1 << 6

# PSTATE as Unicorn's UC_ARM64_REG_PSTATE holds it.
PSTATE_SP = 1  # M[0]: SP_ELx (h) rather than SP_EL0 (t)
PSTATE_EL_SHIFT = 2
PSTATE_F, PSTATE_I, PSTATE_A, PSTATE_D = 1 << 6, 1 << 7, 1 << 8, 1 << 9
PSTATE_DAIF = PSTATE_D | PSTATE_A | PSTATE_I | PSTATE_F
EL1H = (1 << PSTATE_EL_SHIFT) | PSTATE_SP  # 0x5
VALID_MODES = (0b0000, 0b0100, 0b0101)  # EL0t, EL1t, EL1h (AArch64 only: no EL2/EL3, no AArch32)

# Vector offsets from VBAR_EL1 (Arm ARM D1.10.2): by where the exception comes from, then its type.
VECTOR_CURRENT_SP0, VECTOR_CURRENT_SPX, VECTOR_LOWER_A64 = 0x000, 0x200, 0x400
VECTOR_SYNC, VECTOR_IRQ, VECTOR_FIQ, VECTOR_SERROR = 0x000, 0x080, 0x100, 0x180

SCR_EL3 = (1, 1, 3, 6, 0)  # (crn, crm, op0, op1, op2) for UC_ARM64_REG_CP_REG
SCR_RW = 1 << 10
SPSR_EL1 = (4, 0, 3, 0, 0)

# -- the instructions the board handles (the counter marks them; the board acts before they execute) --------
WFI, WFE = 0xD503207F, 0xD503205F
ERET = 0xD69F03E0
# MRS/MSR of the generic timer's EL0 registers (op0=3, op1=3, CRn=14, CRm 0-3; L in bit 21): CNTFRQ, CNTPCT,
# CNTVCT, CNTP_*, CNTV_*. Unicorn reads the host clock for the counters. (CRm 8-15 are the PMU's event counters,
# which Unicorn runs itself.)
TIMER_SYSREG = (0xFFDFFC00, 0xD51BE000)
# MSR DAIFSet/DAIFClr, #imm (op1=3, CRn=4, op2=6/7) and MSR DAIF, Xt: may unmask a pending interrupt.
DAIF_IMM = (0xFFFFF0DF, 0xD50340DF)
DAIF_REG = (0xFFFFFFE0, 0xD51B4220)
# MSR SCTLR_EL1 / TTBR0_EL1 / TTBR1_EL1 / TCR_EL1, Xt (op0=3, op1=0, CRn=1|2): what code an address holds.
REMAP_SYSREG = (0xFFFFE000, 0xD5180000), (0xFFFFF000, 0xD5182000)
WFX = (0xFFFFFFDF, 0xD503205F)  # wfi and wfe


class Action(enum.Enum):
    """What the board does with a trapped instruction."""

    TIMER = "timer"  # the board emulates the generic-timer register access
    WFI = "wfi"  # the board idles
    WFE = "wfe"  # as QEMU's TCG for one CPU: a no-op
    STEP_THEN_CHECK = "check"  # Unicorn executes it; then pending interrupts are re-checked
    STEP_THEN_FORGET = "forget"  # Unicorn executes it; then decoded code is forgotten (MMU settings)


TRAPPED = TrappedInstructions(
    frozenset(),
    frozenset({TIMER_SYSREG, DAIF_IMM, DAIF_REG, (0xFFFFFFFF, ERET), WFX, *REMAP_SYSREG}),
)
# With the native helper, timer *reads* are answered inside emu_start (icount.add_a64_timer_hook): only the
# writes (MSR: L clear), which move the next deadline, stop the run.
TIMER_WRITE = (0xFFFFFC00, 0xD51BE000)
TRAPPED_NATIVE_TIMER = TrappedInstructions(
    frozenset(),
    frozenset({TIMER_WRITE, DAIF_IMM, DAIF_REG, (0xFFFFFFFF, ERET), WFX, *REMAP_SYSREG}),
)


def classify(insn: int) -> Action | None:
    """The board's action for a trapped instruction, or None if it is not one."""
    if insn == WFI:
        return Action.WFI
    if insn == WFE:
        return Action.WFE
    if insn & TIMER_SYSREG[0] == TIMER_SYSREG[1]:
        return Action.TIMER
    if insn == ERET or any(insn & mask == value for mask, value in (DAIF_IMM, DAIF_REG)):
        return Action.STEP_THEN_CHECK
    if any(insn & mask == value for mask, value in REMAP_SYSREG):
        return Action.STEP_THEN_FORGET
    return None


@dataclass(frozen=True, slots=True)
class SysregAccess:
    """A decoded MRS/MSR: which system register (op0, op1, CRn, CRm, op2), read or write, the general register."""

    op0: int
    op1: int
    crn: int
    crm: int
    op2: int
    is_read: bool
    rt: int


def decode_sysreg(insn: int) -> SysregAccess:
    """Fields of an MRS (``is_read``) or MSR (register) instruction."""
    return SysregAccess(2 + (insn >> 19 & 1), insn >> 16 & 7, insn >> 12 & 15, insn >> 8 & 15, insn >> 5 & 7,
                        bool(insn >> 21 & 1), insn & 31)  # fmt: skip


def exception_syndrome(insn: int | None) -> tuple[int, int]:
    """(ESR, bytes from the instruction to the preferred return address) for a synchronous exception raised
    by this instruction itself: svc/hvc/smc/brk carry their immediate; anything else is undefined."""
    if insn is None:
        return (EC_UNKNOWN << 26) | ESR_IL, 0
    imm16 = insn >> 5 & 0xFFFF
    if insn & 0xFFE0001F == 0xD4000001:  # svc: the return address is the next instruction
        return (EC_SVC << 26) | ESR_IL | imm16, 4
    if insn & 0xFFE0001F == 0xD4200000:  # brk
        return (EC_BRK << 26) | ESR_IL | imm16, 0
    return (EC_UNKNOWN << 26) | ESR_IL, 0


def is_hvc(insn: int | None) -> bool:
    return insn is not None and insn & 0xFFE0001F == 0xD4000002


def is_smc(insn: int | None) -> bool:
    return insn is not None and insn & 0xFFE0001F == 0xD4000003


@dataclass(frozen=True, slots=True)
class Aarch64Arch:
    """AArch64 at EL1 on Unicorn's Cortex-A72 (the CPU ``-cpu cortex-a72`` gives QEMU's virt board)."""

    @property
    def name(self) -> str:
        return "aarch64"

    @property
    def xlen(self) -> int:
        return 64

    @property
    def mask(self) -> int:
        return (1 << 64) - 1

    @property
    def isa(self) -> Isa:
        return Isa.A64

    @property
    def pc_reg(self) -> int:
        return PC

    @property
    def until_addr(self) -> int:
        """An address execution can never reach (odd: instructions are 4-aligned)."""
        return self.mask

    @property
    def state_code(self) -> int:
        return 0xA8

    @property
    def board(self) -> str:
        return "virt"

    @property
    def gdb_name(self) -> str:
        return "aarch64"

    def new_uc(self) -> Uc:
        uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        uc.ctl_set_cpu_model(ac.UC_CPU_ARM64_A72)
        # EL3 is not in use, but eret checks SCR_EL3.RW (docs/unicorn-facts.md): AArch64 below EL3.
        uc.reg_write(ac.UC_ARM64_REG_CP_REG, (*SCR_EL3, uc.reg_read(ac.UC_ARM64_REG_CP_REG, SCR_EL3) | SCR_RW))
        return uc

    def cpu_register_count(self) -> int:
        from .aarch64_cpu import cpu_registers

        return len(cpu_registers())

    def read_cpu(self, context: UcContext, uc: Uc | None = None) -> tuple[int, ...]:
        from .aarch64_cpu import read_cpu

        return read_cpu(context, uc)

    def build_context(self, values: tuple[int, ...] | list[int], uc: Uc | None = None) -> UcContext:
        from .aarch64_cpu import build_context

        return build_context(values, uc)

    def target_xml(self) -> str:
        from .aarch64_regs import target_xml

        return target_xml()


AARCH64 = Aarch64Arch()
