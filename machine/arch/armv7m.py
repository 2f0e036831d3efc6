"""Armv7-M (Unicorn's Cortex-M3, Thumb-2 only): Unicorn ids, the instructions the board handles, exception numbers.

What Unicorn 2.1.4 does on its own, measured (docs/unicorn-facts.md, "Interrupt injection"):

| guest does | Unicorn does |
|---|---|
| ``svc #imm`` | ``UC_HOOK_INTR`` intno 2 (EXCP_SWI), pc already past it (2 bytes); no exception entry |
| ``bkpt #imm`` | intno 7 (EXCP_BKPT), pc at it (semihosting: ``bkpt 0xab``) |
| a branch to EXC_RETURN (``bx lr``) | intno 8 (EXCP_EXCEPTION_EXIT), pc = EXC_RETURN & ~1, nothing popped |
| an undefined instruction | intno 1 (EXCP_UDEF), pc at it |
| a branch to an even address | intno 18 (EXCP_INVSTATE), pc at the target |
| a load/store to unmapped memory | ``emu_start`` fails with UC_ERR_READ/WRITE_UNMAPPED |
| ``wfi`` | ends ``emu_start`` right after it: the board traps ``wfi`` and idles |
| a pc written or started at without bit 0 | switches to the Arm state, which M-profile lacks: every pc carries bit 0 |

So the board performs exception entry and return itself (the 8-word frame, EXC_RETURN, IPSR, the stack
pointer banks) with the NVIC of :mod:`machine.devices.armv7m_scs`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
from unicorn import arm_const as ac
from unicorn.unicorn_py3.unicorn import UcContext

from ..engine import Cause
from ..icount import Isa, TrappedInstructions

PC = ac.UC_ARM_REG_PC
EXCP_UDEF, EXCP_SWI, EXCP_BKPT, EXCP_EXCEPTION_EXIT, EXCP_INVSTATE = 1, 2, 7, 8, 18
EXCP_NOCP, EXCP_DIVBYZERO, EXCP_UNALIGNED = 17, 23, 22
INTR_CAUSES = {
    EXCP_UDEF: (Cause.ILLEGAL_INSTRUCTION, 0),
    EXCP_SWI: (Cause.ECALL, 2),
    EXCP_BKPT: (Cause.BREAKPOINT, 0),
    EXCP_EXCEPTION_EXIT: (Cause.EXCEPTION_RETURN, 0),
    EXCP_INVSTATE: (Cause.INVALID_STATE, 0),
    EXCP_NOCP: (Cause.ILLEGAL_INSTRUCTION, 0),
    EXCP_DIVBYZERO: (Cause.ILLEGAL_INSTRUCTION, 0),
    EXCP_UNALIGNED: (Cause.MISALIGNED_LOAD, 0),
}

# -- the instructions the board handles -------------------------------------------------------------
# 16-bit instructions are matched as the halfword, 32-bit ones as (first << 16) | second (icount.thumb_insn).
WFI, WFE = 0xBF30, 0xBF20
WFX = (0xFFFF_FFEF, 0xBF20)
CPS = (0xFFFF_FFE8, 0xB660)  # cpsie/cpsid i/f: may unmask a pending exception
MSR = (0xFFF0_FF00, 0xF380_8800)  # msr SYSm, Rn: PRIMASK, BASEPRI, FAULTMASK, CONTROL, MSP, PSP...

TRAPPED = TrappedInstructions(frozenset(), frozenset({WFX, CPS, MSR}))


class Action(enum.Enum):
    """What the board does with a trapped instruction."""

    WFI = "wfi"
    WFE = "wfe"  # as QEMU for one CPU without events: a no-op
    STEP_THEN_CHECK = "check"  # Unicorn executes it; then pending exceptions are re-checked


def classify_at(code: bytes) -> Action | None:
    """The board's action for the trapped Thumb instruction at the start of ``code`` (up to 18 bytes): an IT
    instruction with a trapped member is stepped as a whole, then pending exceptions are checked."""
    from ..icount import it_block_bytes, thumb_insn

    if len(code) < 2:
        return None
    action = classify(thumb_insn(code, 0))
    if action is not None:
        return action
    member, end = 2, 2 + it_block_bytes(code, 0)
    while member + 2 <= min(end, len(code)):
        if classify(thumb_insn(code, member)) is not None:
            return Action.STEP_THEN_CHECK
        member += 4 if code[member + 1] & 0xF8 >= 0xE8 else 2
    return None


def classify(insn: int) -> Action | None:
    if insn == WFI:
        return Action.WFI
    if insn == WFE:
        return Action.WFE
    if any(insn & mask == value for mask, value in (CPS, MSR)):
        return Action.STEP_THEN_CHECK
    return None


@dataclass(frozen=True, slots=True)
class Armv7mArch:
    """A Cortex-M3 (the CPU of QEMU's ``mps2-an385``)."""

    @property
    def name(self) -> str:
        return "armv7m"

    @property
    def xlen(self) -> int:
        return 32

    @property
    def mask(self) -> int:
        return 0xFFFF_FFFF

    @property
    def isa(self) -> Isa:
        return Isa.THUMB

    @property
    def pc_reg(self) -> int:
        return PC

    @property
    def until_addr(self) -> int:
        """An address execution can never reach as an instruction: EXC_RETURN space (exception return, which
        Unicorn reports as an interrupt before fetching there)."""
        return 0xFFFF_FFFE

    @property
    def state_code(self) -> int:
        return 0x37

    @property
    def board(self) -> str:
        return "mps2-an385"

    @property
    def gdb_name(self) -> str:
        return "arm"

    def new_uc(self) -> Uc:
        uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        uc.ctl_set_cpu_model(ac.UC_CPU_ARM_CORTEX_M3)
        return uc

    def cpu_register_count(self) -> int:
        from .armv7m_cpu import CPU_REGISTERS

        return len(CPU_REGISTERS)

    def read_cpu(self, context: UcContext, uc: Uc | None = None) -> tuple[int, ...]:
        from .armv7m_cpu import read_cpu

        return read_cpu(context, uc)

    def build_context(self, values: tuple[int, ...] | list[int], uc: Uc | None = None) -> UcContext:
        from .armv7m_cpu import build_context

        return build_context(values, uc)

    def target_xml(self) -> str:
        from .armv7m_regs import target_xml

        return target_xml()


ARMV7M = Armv7mArch()
