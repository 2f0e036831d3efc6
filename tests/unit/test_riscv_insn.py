"""machine/arch/riscv_insn.py: decoding checked against capstone on every instruction of the guests."""

from __future__ import annotations

import capstone
import pytest
from elftools.elf.elffile import ELFFile

from machine.arch import riscv_insn as ri
from machine.arch.riscv import GPR_NAMES
from tests.conftest import GUEST_NAMES, guest

MEMORY_MNEMONICS = {
    "lb", "lbu", "lh", "lhu", "lw", "lwu", "ld", "sb", "sh", "sw", "sd", "flw", "fsw", "fld", "fsd",
    "c.lw", "c.sw", "c.ld", "c.sd", "c.lwsp", "c.swsp", "c.ldsp", "c.sdsp", "c.flw", "c.fsw", "c.fld", "c.fsd",
    "c.flwsp", "c.fswsp", "c.fldsp", "c.fsdsp",
}  # fmt: skip


def gpr(n: int) -> int:
    return 0x1000_0000 + 0x100 * n


def instructions(xlen: str, name: str):  # noqa: ANN201 - generator of capstone instructions
    with open(guest(xlen, name), "rb") as f:
        elf = ELFFile(f)
        text = elf.get_section_by_name(".text")
        code, addr = text.data(), text["sh_addr"]
    mode = capstone.CS_MODE_RISCV32 if xlen == "rv32" else capstone.CS_MODE_RISCV64
    cs = capstone.Cs(capstone.CS_ARCH_RISCV, mode | capstone.CS_MODE_RISCVC)
    cs.detail = True
    yield from cs.disasm(code, addr)


@pytest.mark.parametrize("name", GUEST_NAMES)
def test_data_address_matches_capstone(xlen: str, name: str) -> None:
    bits = 32 if xlen == "rv32" else 64
    checked = 0
    for insn in instructions(xlen, name):
        word = int.from_bytes(insn.bytes, "little")
        if insn.mnemonic in MEMORY_MNEMONICS:
            offset, base = insn.op_str.rsplit(",", 1)[1].strip().rstrip(")").split("(")  # "imm(base)"
            expected = (gpr(GPR_NAMES.index(base)) + int(offset, 0)) & ((1 << bits) - 1)
            assert ri.data_address(word, gpr, bits) == expected, f"{insn.mnemonic} {insn.op_str}"
            checked += 1
        elif insn.mnemonic.split(".")[0] not in ("amoadd", "amoswap", "lr", "sc", "amoor", "amoand"):
            assert ri.data_address(word, gpr, bits) is None, f"{insn.mnemonic} {insn.op_str}"
    assert checked > 10


def test_data_address_of_an_atomic_is_rs1() -> None:
    amoadd_w = 0x00B2A52F  # amoadd.w a0, a1, (t0)
    assert ri.data_address(amoadd_w, gpr, 32) == gpr(5)


@pytest.mark.parametrize(("low", "length"), [(0x4385, 2), (0x0073, 4), (0x0001, 2), (0xFFFF, 4), (0x0000, 2)])
def test_instruction_length(low: int, length: int) -> None:
    assert ri.instruction_length(low) == length
