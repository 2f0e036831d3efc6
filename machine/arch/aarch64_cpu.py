"""An AArch64 CPU as a state file holds it: register values through Unicorn's public register API.

Each value is a u64; a 128-bit SIMD register is two (low, high). Not saved, because nothing a correct guest can
see outlives the instruction boundary a state is taken at: the exclusive monitor (a later store-exclusive fails,
as the architecture allows at any time), the TLB (flushed on every restore), and the registers of EL2/EL3,
which guests never reach (the board keeps SCR_EL3.RW set, see :func:`machine.arch.aarch64.Aarch64Arch.new_uc`).
The generic timer's registers are the board's (``ArmBoardState``), not the CPU's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from unicorn import Uc
from unicorn import arm64_const as ac
from unicorn.unicorn_py3.unicorn import UcContext

from .aarch64 import AARCH64, VALID_MODES
from .common import CpuStateError, in_own_context

CPU_STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class CpuRegister:
    """One saved value: a Unicorn register id, or a system register as (crn, crm, op0, op1, op2)."""

    name: str
    uc_reg: int
    cp: tuple[int, int, int, int, int] | None = None
    half: int = -1  # 0/1: the low/high 64 bits of a 128-bit register


_CP_REGS = (
    ("spsr_el1", (4, 0, 3, 0, 0)), ("sctlr_el1", (1, 0, 3, 0, 0)), ("tcr_el1", (2, 0, 3, 0, 2)),
    ("amair_el1", (10, 3, 3, 0, 0)), ("contextidr_el1", (13, 0, 3, 0, 1)), ("cntkctl_el1", (14, 1, 3, 0, 0)),
    ("actlr_el1", (1, 0, 3, 0, 1)), ("afsr0_el1", (5, 1, 3, 0, 0)), ("afsr1_el1", (5, 1, 3, 0, 1)),
    ("mdscr_el1", (0, 2, 2, 0, 2)),
)  # fmt: skip
_API_REGS = (
    ("sp_el0", ac.UC_ARM64_REG_SP_EL0), ("sp_el1", ac.UC_ARM64_REG_SP_EL1), ("elr_el1", ac.UC_ARM64_REG_ELR_EL1),
    ("esr_el1", ac.UC_ARM64_REG_ESR_EL1), ("far_el1", ac.UC_ARM64_REG_FAR_EL1),
    ("vbar_el1", ac.UC_ARM64_REG_VBAR_EL1), ("ttbr0_el1", ac.UC_ARM64_REG_TTBR0_EL1),
    ("ttbr1_el1", ac.UC_ARM64_REG_TTBR1_EL1), ("mair_el1", ac.UC_ARM64_REG_MAIR_EL1),
    ("tpidr_el0", ac.UC_ARM64_REG_TPIDR_EL0), ("tpidr_el1", ac.UC_ARM64_REG_TPIDR_EL1),
    ("tpidrro_el0", ac.UC_ARM64_REG_TPIDRRO_EL0), ("cpacr_el1", ac.UC_ARM64_REG_CPACR_EL1),
    ("par_el1", ac.UC_ARM64_REG_PAR_EL1), ("fpcr", ac.UC_ARM64_REG_FPCR), ("fpsr", ac.UC_ARM64_REG_FPSR),
)  # fmt: skip


@cache
def cpu_registers() -> tuple[CpuRegister, ...]:
    """Every value of a saved CPU, in file order. PSTATE comes first: writing it does not move SP between banks,
    so the banked and current stack pointers written after it are exactly the saved ones."""
    regs = [CpuRegister("pstate", ac.UC_ARM64_REG_PSTATE)]
    regs += [CpuRegister(f"x{i}", ac.UC_ARM64_REG_X0 + i) for i in range(29)]
    regs += [CpuRegister("x29", ac.UC_ARM64_REG_X29), CpuRegister("x30", ac.UC_ARM64_REG_X30)]
    regs += [CpuRegister("sp", ac.UC_ARM64_REG_SP), CpuRegister("pc", ac.UC_ARM64_REG_PC)]
    regs += [CpuRegister(name, uc_reg) for name, uc_reg in _API_REGS]
    regs += [CpuRegister(name, ac.UC_ARM64_REG_CP_REG, cp) for name, cp in _CP_REGS]
    for i in range(32):
        regs += [CpuRegister(f"q{i}", ac.UC_ARM64_REG_Q0 + i, half=0),
                 CpuRegister(f"q{i}h", ac.UC_ARM64_REG_Q0 + i, half=1)]  # fmt: skip
    return tuple(regs)




def _scratch_uc() -> Uc:
    """A throwaway Unicorn CPU to read and write contexts through the register API."""
    return AARCH64.new_uc()


def read_uc(uc: Uc) -> tuple[int, ...]:
    """The values of :func:`cpu_registers` a live Unicorn CPU holds."""
    values = []
    for reg in cpu_registers():
        if reg.cp is not None:
            values.append(uc.reg_read(reg.uc_reg, reg.cp))
        elif reg.half >= 0:
            values.append(uc.reg_read(reg.uc_reg) >> (64 * reg.half) & ((1 << 64) - 1))
        else:
            values.append(uc.reg_read(reg.uc_reg) & ((1 << 64) - 1))
    return tuple(values)


def read_cpu(context: UcContext, uc: Uc | None = None) -> tuple[int, ...]:
    """The values of :func:`cpu_registers` held by ``context``, read in ``uc`` (the machine's own Unicorn, put
    back after; a scratch one when None). Each new Unicorn reserves a translation buffer: under an address-space
    limit a second one may not fit, so states are read and built in the machine's."""
    if uc is None:
        uc = _scratch_uc()
        uc.context_restore(context)
        return read_uc(uc)
    return in_own_context(uc, context, lambda: read_uc(uc))  # type: ignore[no-any-return]


def build_context(values: tuple[int, ...] | list[int], uc: Uc | None = None) -> UcContext:
    """A context holding exactly ``values`` (in :func:`cpu_registers` order), or CpuStateError; built in ``uc``
    (left as it was) or a scratch Unicorn."""
    regs = cpu_registers()
    if len(values) != len(regs):
        raise CpuStateError(f"{len(values)} CPU registers, aarch64 has {len(regs)}")
    for reg, value in zip(regs, values, strict=True):
        if type(value) is not int or not 0 <= value < 1 << 64:
            raise CpuStateError(f"register {reg.name}: {value!r} does not fit in 64 bits")
    pstate = values[0]
    if pstate & 0x1F not in VALID_MODES or pstate >> 32:
        raise CpuStateError(f"pstate {pstate:#x}: not EL0t, EL1t or EL1h in AArch64")
    if uc is None:
        return _build(_scratch_uc(), values)
    return in_own_context(uc, None, lambda: _build(uc, values))  # type: ignore[no-any-return]


def _build(uc: Uc, values: tuple[int, ...] | list[int]) -> UcContext:
    regs = cpu_registers()
    pending_q: dict[int, int] = {}
    for reg, value in zip(regs, values, strict=True):
        if reg.cp is not None:
            uc.reg_write(reg.uc_reg, (*reg.cp, value))
        elif reg.half >= 0:
            pending_q[reg.uc_reg] = pending_q.get(reg.uc_reg, 0) | value << (64 * reg.half)
            if reg.half == 1:
                uc.reg_write(reg.uc_reg, pending_q.pop(reg.uc_reg))
        else:
            uc.reg_write(reg.uc_reg, value)
    context = uc.context_save()
    got = read_uc(uc)
    for reg, wanted, value in zip(regs, values, got, strict=True):
        if wanted != value:
            raise CpuStateError(f"register {reg.name} cannot hold {wanted:#x} (it reads {value:#x})")
    return context
