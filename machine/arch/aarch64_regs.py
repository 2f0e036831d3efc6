"""GDB's view of an AArch64 CPU: register numbers, sizes, features and the target description.

Numbering follows gdb's ``aarch64-tdep``: x0-x30 = 0-30, sp = 31, pc = 32, cpsr = 33, v0-v31 = 34-65,
fpsr = 66, fpcr = 67; then the EL1 system registers a firmware debugger wants to see (a feature of our own,
which gdb shows under ``info registers system``/``all``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache

from unicorn import Uc
from unicorn import arm64_const as ac

from .common import RegisterError

CORE, FPU, SYSTEM = "org.gnu.gdb.aarch64.core", "org.gnu.gdb.aarch64.fpu", "org.chronicorn.aarch64.system"
FIRST_V, FPSR_REGNUM, FPCR_REGNUM, FIRST_SYSTEM = 34, 66, 67, 68


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """One register as gdb sees it: Unicorn id (or a system register's (crn, crm, op0, op1, op2))."""

    name: str
    regnum: int
    bitsize: int
    type: str
    feature: str
    uc_reg: int
    cp: tuple[int, int, int, int, int] | None = None


_SYSTEM = (
    ("elr_el1", ac.UC_ARM64_REG_ELR_EL1, None), ("spsr_el1", ac.UC_ARM64_REG_CP_REG, (4, 0, 3, 0, 0)),
    ("esr_el1", ac.UC_ARM64_REG_ESR_EL1, None), ("far_el1", ac.UC_ARM64_REG_FAR_EL1, None),
    ("vbar_el1", ac.UC_ARM64_REG_VBAR_EL1, None), ("sctlr_el1", ac.UC_ARM64_REG_CP_REG, (1, 0, 3, 0, 0)),
    ("tcr_el1", ac.UC_ARM64_REG_CP_REG, (2, 0, 3, 0, 2)), ("ttbr0_el1", ac.UC_ARM64_REG_TTBR0_EL1, None),
    ("ttbr1_el1", ac.UC_ARM64_REG_TTBR1_EL1, None), ("mair_el1", ac.UC_ARM64_REG_MAIR_EL1, None),
    ("sp_el0", ac.UC_ARM64_REG_SP_EL0, None), ("sp_el1", ac.UC_ARM64_REG_SP_EL1, None),
    ("tpidr_el1", ac.UC_ARM64_REG_TPIDR_EL1, None),
)  # fmt: skip


@cache
def registers() -> tuple[RegisterSpec, ...]:
    """Every register gdb is told about, in regnum order (the ``g`` packet covers the core feature)."""
    regs = [RegisterSpec(f"x{i}", i, 64, "int", CORE, ac.UC_ARM64_REG_X0 + i) for i in range(29)]
    regs += [RegisterSpec("x29", 29, 64, "int", CORE, ac.UC_ARM64_REG_X29),
             RegisterSpec("x30", 30, 64, "int", CORE, ac.UC_ARM64_REG_X30),
             RegisterSpec("sp", 31, 64, "data_ptr", CORE, ac.UC_ARM64_REG_SP),
             RegisterSpec("pc", 32, 64, "code_ptr", CORE, ac.UC_ARM64_REG_PC),
             RegisterSpec("cpsr", 33, 32, "int", CORE, ac.UC_ARM64_REG_PSTATE)]  # fmt: skip
    regs += [RegisterSpec(f"v{i}", FIRST_V + i, 128, "aarch64v", FPU, ac.UC_ARM64_REG_Q0 + i) for i in range(32)]
    regs += [RegisterSpec("fpsr", FPSR_REGNUM, 32, "int", FPU, ac.UC_ARM64_REG_FPSR),
             RegisterSpec("fpcr", FPCR_REGNUM, 32, "int", FPU, ac.UC_ARM64_REG_FPCR)]  # fmt: skip
    regs += [RegisterSpec(name, FIRST_SYSTEM + i, 64, "int", SYSTEM, uc_reg, cp)
             for i, (name, uc_reg, cp) in enumerate(_SYSTEM)]  # fmt: skip
    return tuple(regs)


_VECTOR_TYPES = """    <vector id="v2d" type="ieee_double" count="2"/>
    <vector id="v2u" type="uint64" count="2"/>
    <vector id="v2i" type="int64" count="2"/>
    <vector id="v4f" type="ieee_single" count="4"/>
    <vector id="v4u" type="uint32" count="4"/>
    <vector id="v4i" type="int32" count="4"/>
    <vector id="v8u" type="uint16" count="8"/>
    <vector id="v8i" type="int16" count="8"/>
    <vector id="v16u" type="uint8" count="16"/>
    <vector id="v16i" type="int8" count="16"/>
    <vector id="v1u" type="uint128" count="1"/>
    <vector id="v1i" type="int128" count="1"/>
    <union id="vnd"><field name="f" type="v2d"/><field name="u" type="v2u"/><field name="s" type="v2i"/></union>
    <union id="vns"><field name="f" type="v4f"/><field name="u" type="v4u"/><field name="s" type="v4i"/></union>
    <union id="vnh"><field name="u" type="v8u"/><field name="s" type="v8i"/></union>
    <union id="vnb"><field name="u" type="v16u"/><field name="s" type="v16i"/></union>
    <union id="vnq"><field name="u" type="v1u"/><field name="s" type="v1i"/></union>
    <union id="aarch64v"><field name="d" type="vnd"/><field name="s" type="vns"/><field name="h" type="vnh"/>
      <field name="b" type="vnb"/><field name="q" type="vnq"/></union>
"""


@cache
def target_xml() -> str:
    """The target description (``qXfer:features:read:target.xml``), all features inline."""
    features: dict[str, list[str]] = {CORE: [], FPU: [_VECTOR_TYPES.rstrip("\n")], SYSTEM: []}
    for r in registers():
        group = ' group="system"' if r.feature == SYSTEM else ""
        features[r.feature].append(
            f'    <reg name="{r.name}" bitsize="{r.bitsize}" regnum="{r.regnum}" type="{r.type}"{group}/>'
        )
    body = "\n".join(
        f'  <feature name="{name}">\n' + "\n".join(lines) + "\n  </feature>" for name, lines in features.items()
    )
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n<target version="1.0">\n'
        f"  <architecture>aarch64</architecture>\n{body}\n</target>\n"
    )


_G_REGS = tuple(r for r in registers() if r.feature == CORE)
_G_FORMAT = struct.Struct("<33QI")


class Aarch64Registers:
    """Read and write registers by GDB number, as little-endian bytes of the right size."""

    def __init__(self, uc: Uc) -> None:
        self._uc = uc
        self._specs = {r.regnum: r for r in registers()}

    def spec(self, regnum: int) -> RegisterSpec:
        spec = self._specs.get(regnum)
        if spec is None:
            raise RegisterError(f"no register number {regnum}")
        return spec

    def _bank_in_use(self, spec: RegisterSpec) -> bool:
        """``sp_el0``/``sp_el1`` while it is the stack pointer in use: Unicorn keeps it in SP (its banked copy is
        only updated when PSTATE.SP or the exception level changes)."""
        if spec.name not in ("sp_el0", "sp_el1"):
            return False
        pstate = int(self._uc.reg_read(ac.UC_ARM64_REG_PSTATE))
        return (spec.name == "sp_el1") == (pstate & 0xD == 0x5)  # EL1h uses SP_EL1; EL1t and EL0t SP_EL0

    def read_value(self, regnum: int) -> int:
        spec = self.spec(regnum)
        if self._bank_in_use(spec):
            return int(self._uc.reg_read(ac.UC_ARM64_REG_SP))
        value = self._uc.reg_read(spec.uc_reg, spec.cp) if spec.cp else self._uc.reg_read(spec.uc_reg)
        return int(value) & ((1 << spec.bitsize) - 1)

    def read(self, regnum: int) -> bytes:
        """The ``p`` packet's value."""
        spec = self.spec(regnum)
        return self.read_value(regnum).to_bytes(spec.bitsize // 8, "little")

    def write(self, regnum: int, data: bytes) -> None:
        """The ``P`` packet: ``data`` holds exactly the register's bytes."""
        spec = self.spec(regnum)
        if len(data) != spec.bitsize // 8:
            raise RegisterError(f"{spec.name} takes {spec.bitsize // 8} bytes, got {len(data)}")
        value = int.from_bytes(data, "little")
        if spec.name == "cpsr":
            current = self._uc.reg_read(spec.uc_reg)
            if (value ^ current) & 0x1F:
                raise RegisterError("cpsr: the exception level and stack pointer selection cannot be changed")
        if self._bank_in_use(spec):
            self._uc.reg_write(ac.UC_ARM64_REG_SP, value)
        elif spec.cp:
            self._uc.reg_write(spec.uc_reg, (*spec.cp, value))
        else:
            self._uc.reg_write(spec.uc_reg, value)

    def read_all(self) -> bytes:
        """The ``g`` packet: x0-x30, sp, pc, cpsr."""
        return _G_FORMAT.pack(*(self.read_value(r.regnum) for r in _G_REGS))

    def write_all(self, data: bytes) -> None:
        """The ``G`` packet."""
        if len(data) != _G_FORMAT.size:
            raise RegisterError(f"G carries {len(data)} bytes, expected {_G_FORMAT.size}")
        offset = 0
        for spec in _G_REGS:
            size = spec.bitsize // 8
            self.write(spec.regnum, data[offset : offset + size])
            offset += size
