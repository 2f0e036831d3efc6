"""GDB's view of a RISC-V hart: register numbers, sizes, features and the target description.

One table (:func:`registers`) is the single source of truth for the ``g``/``p``
packets and for ``qXfer:features:read:target.xml``. Numbering follows gdb's
``riscv-tdep``: x0-x31 = 0-31, pc = 32, f0-f31 = 33-64, CSR n = 65 + n, the
virtual ``priv`` register = 65 + 4096.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from unicorn import riscv_const as rc

from . import riscv_insn as ri
from .common import RegisterError
from .riscv import GPR_NAMES, RiscvArch
from .riscv_cpu import MSTATUS_FS
from .riscv_hart import Hart

FIRST_FPR, FIRST_CSR, PRIV_REGNUM = 33, 65, 65 + 4096
FPR_NAMES = tuple(
    "ft0 ft1 ft2 ft3 ft4 ft5 ft6 ft7 fs0 fs1 fa0 fa1 fa2 fa3 fa4 fa5 fa6 fa7 "
    "fs2 fs3 fs4 fs5 fs6 fs7 fs8 fs9 fs10 fs11 ft8 ft9 ft10 ft11".split()
)


class Source(enum.Enum):
    """Where a register's value lives."""

    UNICORN = "unicorn"  # a Unicorn register (CSRs read with M-mode rights)
    BOARD = "board"  # a CSR the board emulates (counters, mip, sip)
    PRIV = "priv"  # the privilege level


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """One register as gdb sees it."""

    name: str
    regnum: int
    bitsize: int
    type: str
    feature: str
    source: Source
    uc_reg: int = 0  # Unicorn id (UNICORN) or CSR number (BOARD)
    group: str | None = None


# CSRs shown by `info registers all` / `info registers csr` (the rest of the
# CSR space is reachable through the monitor or not at all).
_UNICORN_CSRS = (
    ("mstatus", 0x300, rc.UC_RISCV_REG_MSTATUS), ("misa", 0x301, rc.UC_RISCV_REG_MISA),
    ("medeleg", 0x302, rc.UC_RISCV_REG_MEDELEG), ("mideleg", 0x303, rc.UC_RISCV_REG_MIDELEG),
    ("mie", 0x304, rc.UC_RISCV_REG_MIE), ("mtvec", 0x305, rc.UC_RISCV_REG_MTVEC),
    ("mcounteren", 0x306, rc.UC_RISCV_REG_MCOUNTEREN), ("mscratch", 0x340, rc.UC_RISCV_REG_MSCRATCH),
    ("mepc", 0x341, rc.UC_RISCV_REG_MEPC), ("mcause", 0x342, rc.UC_RISCV_REG_MCAUSE),
    ("mtval", 0x343, rc.UC_RISCV_REG_MTVAL), ("mhartid", 0xF14, rc.UC_RISCV_REG_MHARTID),
    ("sstatus", 0x100, rc.UC_RISCV_REG_SSTATUS), ("sie", 0x104, rc.UC_RISCV_REG_SIE),
    ("stvec", 0x105, rc.UC_RISCV_REG_STVEC), ("scounteren", 0x106, rc.UC_RISCV_REG_SCOUNTEREN),
    ("sscratch", 0x140, rc.UC_RISCV_REG_SSCRATCH), ("sepc", 0x141, rc.UC_RISCV_REG_SEPC),
    ("scause", 0x142, rc.UC_RISCV_REG_SCAUSE), ("stval", 0x143, rc.UC_RISCV_REG_STVAL),
    ("satp", 0x180, rc.UC_RISCV_REG_SATP),
)  # fmt: skip
_BOARD_CSRS = (
    ("mip", ri.CSR_MIP), ("sip", ri.CSR_SIP), ("cycle", ri.CSR_CYCLE), ("time", ri.CSR_TIME),
    ("instret", ri.CSR_INSTRET), ("mcycle", ri.CSR_MCYCLE), ("minstret", ri.CSR_MINSTRET),
)  # fmt: skip
_HIGH_HALVES = (("cycleh", ri.CSR_CYCLEH), ("timeh", ri.CSR_TIMEH), ("instreth", ri.CSR_INSTRETH),
                ("mcycleh", ri.CSR_MCYCLEH), ("minstreth", ri.CSR_MINSTRETH))  # fmt: skip

CPU, FPU, CSR, VIRTUAL = (
    "org.gnu.gdb.riscv.cpu",
    "org.gnu.gdb.riscv.fpu",
    "org.gnu.gdb.riscv.csr",
    ("org.gnu.gdb.riscv.virtual"),
)


@cache
def registers(arch: RiscvArch) -> tuple[RegisterSpec, ...]:
    """Every register gdb is told about, in regnum order (the ``g`` packet covers cpu: 0-32)."""
    xlen = arch.xlen
    regs = [
        RegisterSpec(
            name if name != "s0" else "fp",
            i,
            xlen,
            "code_ptr" if name == "ra" else "data_ptr" if name in ("sp", "gp", "tp", "s0") else "int",
            CPU,
            Source.UNICORN,
            rc.UC_RISCV_REG_X0 + i,
        )
        for i, name in enumerate(GPR_NAMES)
    ]
    regs.append(RegisterSpec("pc", 32, xlen, "code_ptr", CPU, Source.UNICORN, rc.UC_RISCV_REG_PC))
    # Unicorn's harts have the D extension: 64-bit FPRs on rv32 too.
    regs += [
        RegisterSpec(name, FIRST_FPR + i, 64, "ieee_double", FPU, Source.UNICORN, rc.UC_RISCV_REG_F0 + i)
        for i, name in enumerate(FPR_NAMES)
    ]
    regs += [
        RegisterSpec("fflags", FIRST_CSR + 0x001, 32, "int", FPU, Source.UNICORN, rc.UC_RISCV_REG_FFLAGS),
        RegisterSpec("frm", FIRST_CSR + 0x002, 32, "int", FPU, Source.UNICORN, rc.UC_RISCV_REG_FRM),
        RegisterSpec("fcsr", FIRST_CSR + 0x003, 32, "int", FPU, Source.UNICORN, rc.UC_RISCV_REG_FCSR),
    ]
    regs += [
        RegisterSpec(name, FIRST_CSR + num, xlen, "int", CSR, Source.UNICORN, uc_reg, "csr")
        for name, num, uc_reg in _UNICORN_CSRS
    ]
    board = _BOARD_CSRS + (_HIGH_HALVES if xlen == 32 else ())
    regs += [RegisterSpec(name, FIRST_CSR + num, xlen, "int", CSR, Source.BOARD, num, "csr") for name, num in board]
    regs.append(RegisterSpec("priv", PRIV_REGNUM, 8, "int", VIRTUAL, Source.PRIV, rc.UC_RISCV_REG_PRIV, "system"))
    return tuple(sorted(regs, key=lambda r: r.regnum))


@cache
def by_regnum(arch: RiscvArch) -> dict[int, RegisterSpec]:
    return {r.regnum: r for r in registers(arch)}


def g_packet_registers(arch: RiscvArch) -> tuple[RegisterSpec, ...]:
    """What ``g``/``G`` carry: x0-x31 and pc (gdb fetches the rest with ``p``)."""
    return tuple(r for r in registers(arch) if r.feature == CPU)


@cache
def target_xml(arch: RiscvArch) -> str:
    """The target description (``qXfer:features:read:target.xml``), all features inline."""
    # Imported here: xml.sax pulls in urllib, http.client, email and ssl (~20 ms of every command's start-up).
    from xml.sax.saxutils import quoteattr

    features: dict[str, list[str]] = {}
    for r in registers(arch):
        attrs = f'name={quoteattr(r.name)} bitsize="{r.bitsize}" regnum="{r.regnum}" type={quoteattr(r.type)}'
        if r.group:
            attrs += f" group={quoteattr(r.group)}"
        features.setdefault(r.feature, []).append(f"    <reg {attrs}/>")
    body = "\n".join(
        f'  <feature name="{name}">\n' + "\n".join(lines) + "\n  </feature>" for name, lines in features.items()
    )
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n<target version="1.0">\n'
        f"  <architecture>riscv:rv{arch.xlen}</architecture>\n{body}\n</target>\n"
    )


class RegisterFile:
    """Read and write registers by GDB number, as little-endian bytes of the right size.

    ``board_csr(csr)`` reads an emulated CSR at the current icount;
    ``write_board_csr(csr, value)`` writes one (False when it is read-only); ``write_satp(value)`` writes satp
    as the board does after a guest's write.
    """

    def __init__(
        self,
        arch: RiscvArch,
        hart: Hart,
        board_csr: Callable[[int], int],
        write_board_csr: Callable[[int, int], bool],
        write_satp: Callable[[int], None] | None = None,
    ) -> None:
        self.arch = arch
        self._write_satp = write_satp
        self._hart = hart
        self._specs = by_regnum(arch)
        self._board_csr = board_csr
        self._write_board_csr = write_board_csr
        g_regs = g_packet_registers(arch)
        assert all(r.source == Source.UNICORN and r.regnum < FIRST_CSR and r.bitsize == arch.xlen for r in g_regs)
        self._g_ids = tuple(r.uc_reg for r in g_regs)
        self._g_format = struct.Struct(f"<{len(g_regs)}{'Q' if arch.xlen == 64 else 'I'}")

    def spec(self, regnum: int) -> RegisterSpec:
        spec = self._specs.get(regnum)
        if spec is None:
            raise RegisterError(f"no register number {regnum}")
        return spec

    def read_value(self, regnum: int) -> int:
        spec = self.spec(regnum)
        if spec.source == Source.BOARD:
            return self._board_csr(spec.uc_reg)
        if spec.source == Source.PRIV:
            return self._hart.priv
        if spec.regnum >= FIRST_CSR:
            return self._hart.csr(spec.uc_reg)
        return self._hart.reg(spec.uc_reg)

    def read(self, regnum: int) -> bytes:
        """The ``p`` packet's value."""
        spec = self.spec(regnum)
        return (self.read_value(regnum) & ((1 << spec.bitsize) - 1)).to_bytes(spec.bitsize // 8, "little")

    def write(self, regnum: int, data: bytes) -> None:
        """The ``P`` packet: ``data`` holds exactly the register's bytes."""
        spec = self.spec(regnum)
        if len(data) != spec.bitsize // 8:
            raise RegisterError(f"{spec.name} takes {spec.bitsize // 8} bytes, got {len(data)}")
        value = int.from_bytes(data, "little")
        if spec.source == Source.BOARD:
            if not self._write_board_csr(spec.uc_reg, value):
                raise RegisterError(f"{spec.name} is read-only")
        elif spec.source == Source.PRIV:
            if value not in (0, 1, 3):
                raise RegisterError(f"no privilege level {value}")
            self._hart.uc.reg_write(spec.uc_reg, value)
        elif spec.feature == FPU and spec.regnum >= FIRST_CSR:
            self._write_fp_csr(spec, value)
        elif spec.uc_reg == rc.UC_RISCV_REG_SATP and self._write_satp is not None:
            self._write_satp(value)  # as a guest's write: WARL, the TLB flushed, decoded code forgotten
        elif spec.regnum >= FIRST_CSR:
            self._hart.set_csr(spec.uc_reg, value)
        else:
            self._hart.uc.reg_write(spec.uc_reg, value)

    def _write_fp_csr(self, spec: RegisterSpec, value: int) -> None:
        """fflags, frm, fcsr. Unicorn drops them while mstatus.FS is Off (refused here rather than lost), and
        a write marks FS Dirty without setting the SD summary bit: a state no hart holds and no state file
        carries. Writing mstatus back recomputes SD, as an FP instruction of the guest would have."""
        if not self._hart.csr(rc.UC_RISCV_REG_MSTATUS) & MSTATUS_FS:
            raise RegisterError(f"{spec.name} cannot be written while the FPU is off (mstatus.FS is Off)")
        self._hart.set_csr(spec.uc_reg, value)
        self._hart.set_csr(rc.UC_RISCV_REG_MSTATUS, self._hart.csr(rc.UC_RISCV_REG_MSTATUS))

    def read_all(self) -> bytes:
        """The ``g`` packet: x0-x31 then pc; the bytes of :meth:`read` for each, read in one native call
        (``uc_reg_read_batch``: 33 reads through the binding cost ~60 us, a third of a ``stepi``)."""
        values = self._hart._batch.read(self._g_ids)
        if self.arch.xlen == 32:
            values = [v & 0xFFFF_FFFF for v in values]
        return self._g_format.pack(*values)

    def write_all(self, data: bytes) -> None:
        """The ``G`` packet (x0 stays zero: the hardware ignores writes to it)."""
        regs = g_packet_registers(self.arch)
        size = self.arch.xlen // 8
        if len(data) != size * len(regs):
            raise RegisterError(f"G carries {len(data)} bytes, expected {size * len(regs)}")
        for i, spec in enumerate(regs):
            if spec.regnum:
                self.write(spec.regnum, data[i * size : (i + 1) * size])
