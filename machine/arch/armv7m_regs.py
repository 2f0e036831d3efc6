"""GDB's view of a Cortex-M: the M-profile target description, as gdb's ``arm-tdep`` expects it.

``org.gnu.gdb.arm.m-profile``: r0-r12 = 0-12, sp = 13, lr = 14, pc = 15, xpsr = 25; ``org.gnu.gdb.arm.m-system``:
msp = 26, psp = 27 (gdb unwinds through an exception frame with them), then primask, basepri, faultmask, control.
"""

from __future__ import annotations

import struct
from functools import cache

from unicorn import Uc
from unicorn import arm_const as ac

from .armv7m_cpu import MProfileRegisters
from .common import RegisterError

M_PROFILE, M_SYSTEM = "org.gnu.gdb.arm.m-profile", "org.gnu.gdb.arm.m-system"
_CORE = (*((f"r{i}", i, ac.UC_ARM_REG_R0 + i, "uint32") for i in range(13)),
         ("sp", 13, ac.UC_ARM_REG_SP, "data_ptr"), ("lr", 14, ac.UC_ARM_REG_LR, "int"),
         ("pc", 15, ac.UC_ARM_REG_PC, "code_ptr"), ("xpsr", 25, ac.UC_ARM_REG_XPSR, "int"))  # fmt: skip
_SYSTEM = (("msp", 26, ac.UC_ARM_REG_MSP, "data_ptr"), ("psp", 27, ac.UC_ARM_REG_PSP, "data_ptr"),
           ("primask", 28, ac.UC_ARM_REG_PRIMASK, "int"), ("basepri", 29, ac.UC_ARM_REG_BASEPRI, "int"),
           ("faultmask", 30, ac.UC_ARM_REG_FAULTMASK, "int"),
           ("control", 31, ac.UC_ARM_REG_CONTROL, "int"))  # fmt: skip
_SPECIAL = ("msp", "psp", "primask", "basepri", "faultmask", "control")  # through MProfileRegisters: any mode
_LIMITS = {"primask": 1, "faultmask": 1, "basepri": 0xFF, "control": 3}


@cache
def target_xml() -> str:
    """The target description (``qXfer:features:read:target.xml``)."""
    def feature(name: str, regs: tuple) -> str:  # noqa: ANN001
        lines = [f'    <reg name="{n}" bitsize="32" regnum="{num}" type="{t}"/>' for n, num, _, t in regs]
        return f'  <feature name="{name}">\n' + "\n".join(lines) + "\n  </feature>"

    return ('<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n<target version="1.0">\n'
            f"  <architecture>arm</architecture>\n{feature(M_PROFILE, _CORE)}\n{feature(M_SYSTEM, _SYSTEM)}\n"
            "</target>\n")  # fmt: skip


_G_FORMAT = struct.Struct("<17I")  # r0-r15, then xpsr (gdb's remote numbering packs them in regnum order)


class Armv7mRegisters:
    """Read and write registers by GDB number, as little-endian bytes (all 32-bit)."""

    def __init__(self, uc: Uc) -> None:
        self._uc = uc
        self._special = MProfileRegisters(uc)
        self._specs = {num: (name, uc_reg) for name, num, uc_reg, _ in (*_CORE, *_SYSTEM)}

    def _spec(self, regnum: int) -> tuple[str, int]:
        spec = self._specs.get(regnum)
        if spec is None:
            raise RegisterError(f"no register number {regnum}")
        return spec

    def read_value(self, regnum: int) -> int:
        name, uc_reg = self._spec(regnum)
        if name in _SPECIAL:
            return self._special.read(name)
        value = int(self._uc.reg_read(uc_reg)) & 0xFFFF_FFFF
        return value & ~1 if name == "pc" else value

    def read(self, regnum: int) -> bytes:
        """The ``p`` packet's value."""
        return self.read_value(regnum).to_bytes(4, "little")

    def write(self, regnum: int, data: bytes) -> None:
        """The ``P`` packet."""
        name, uc_reg = self._spec(regnum)
        if len(data) != 4:
            raise RegisterError(f"{name} takes 4 bytes, got {len(data)}")
        value = int.from_bytes(data, "little")
        if value > _LIMITS.get(name, 0xFFFF_FFFF):
            raise RegisterError(f"{name} cannot hold {value:#x}")
        if name == "xpsr" and (value ^ self.read_value(regnum)) & 0x1FF:
            raise RegisterError("xpsr: the exception number (IPSR) cannot be changed")
        if name in _SPECIAL:
            self._special.write(name, value)
        else:
            self._uc.reg_write(uc_reg, value | 1 if name == "pc" else value)

    def read_all(self) -> bytes:
        """The ``g`` packet: r0-r15, xpsr."""
        return _G_FORMAT.pack(*(self.read_value(n) for n in (*range(16), 25)))

    def write_all(self, data: bytes) -> None:
        """The ``G`` packet."""
        if len(data) != _G_FORMAT.size:
            raise RegisterError(f"G carries {len(data)} bytes, expected {_G_FORMAT.size}")
        for i, regnum in enumerate((*range(16), 25)):
            self.write(regnum, data[4 * i : 4 * i + 4])
