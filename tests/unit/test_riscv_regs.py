"""machine/arch/riscv_regs.py: GDB register numbering, target description, register access."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from machine.arch.riscv import RV32, RV64
from machine.arch.riscv_regs import (
    FIRST_CSR,
    PRIV_REGNUM,
    RegisterError,
    g_packet_registers,
    registers,
    target_xml,
)
from tests.conftest import guest, make_machine, require_tool

ARCHES = {"rv32": RV32, "rv64": RV64}


def test_numbering_follows_gdb(xlen: str) -> None:
    arch = ARCHES[xlen]
    regs = {r.name: r for r in registers(arch)}
    assert [r.name for r in g_packet_registers(arch)][:3] == ["zero", "ra", "sp"]
    assert regs["pc"].regnum == 32 and regs["fp"].regnum == 8
    assert regs["ft0"].regnum == 33 and regs["ft11"].regnum == 64
    assert regs["fcsr"].regnum == FIRST_CSR + 3
    assert regs["mstatus"].regnum == FIRST_CSR + 0x300
    assert regs["priv"].regnum == PRIV_REGNUM
    assert ("cycleh" in regs) == (xlen == "rv32")
    numbers = [r.regnum for r in registers(arch)]
    assert numbers == sorted(set(numbers))


def test_target_xml_is_well_formed_and_complete(xlen: str) -> None:
    arch = ARCHES[xlen]
    root = ET.fromstring(target_xml(arch))
    assert root.findtext("architecture") == f"riscv:rv{arch.xlen}"
    regs = root.findall("./feature/reg")
    assert len(regs) == len(registers(arch))
    features = {f.get("name") for f in root.findall("feature")}
    assert {"org.gnu.gdb.riscv.cpu", "org.gnu.gdb.riscv.fpu", "org.gnu.gdb.riscv.csr"} <= features
    pc = next(r for r in regs if r.get("name") == "pc")
    assert pc.get("bitsize") == str(arch.xlen) and pc.get("type") == "code_ptr"


@pytest.mark.gdb
def test_gdb_accepts_the_target_description(xlen: str, tmp_path: Path) -> None:
    require_tool(shutil.which("gdb-multiarch"), "gdb-multiarch not installed")
    desc = tmp_path / "target.xml"
    desc.write_text(target_xml(ARCHES[xlen]))
    proc = subprocess.run(
        ["gdb-multiarch", "-batch", "-ex", f"set tdesc filename {desc}", "-ex", f"file {guest(xlen, 'hello')}",
         "-ex", "maint print registers"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "warning" not in proc.stderr.lower(), proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()]
    printed = {row[0]: int(row[1]) for row in rows if len(row) > 2 and row[1].isdigit()}
    for spec in registers(ARCHES[xlen]):
        assert printed.get(spec.name) == spec.regnum, spec.name


def test_reads_match_the_machine(xlen: str) -> None:
    machine = make_machine(guest(xlen, "timer"))
    machine.run(20_000)
    regs = machine.registers
    size = ARCHES[xlen].xlen // 8
    assert regs.read(32) == machine.pc.to_bytes(size, "little")
    g = regs.read_all()
    assert len(g) == 33 * size
    assert g[:size] == bytes(size)  # x0
    assert int.from_bytes(regs.read(FIRST_CSR + 0xC02), "little") == machine.icount & ((1 << (8 * size)) - 1)
    for spec in registers(ARCHES[xlen]):
        assert len(regs.read(spec.regnum)) == spec.bitsize // 8, spec.name


def test_writes_read_back(xlen: str) -> None:
    machine = make_machine(guest(xlen, "timer"))
    machine.run(20_000)
    regs = machine.registers
    size = ARCHES[xlen].xlen // 8
    regs.write(10, (0x1234).to_bytes(size, "little"))  # a0
    assert regs.read_value(10) == 0x1234 and machine.hart.gpr(10) == 0x1234
    regs.write(FIRST_CSR + 0xB00, (777).to_bytes(size, "little"))  # mcycle
    assert regs.read_value(FIRST_CSR + 0xB00) == 777
    regs.write(FIRST_CSR + 0x340, (0xABC).to_bytes(size, "little"))  # mscratch
    assert regs.read_value(FIRST_CSR + 0x340) == 0xABC
    regs.write_all(bytes(i & 0xFF for i in range(33 * size)))
    assert regs.read_value(0) == 0  # x0 is hard-wired
    assert regs.read(1) == bytes(range(size, 2 * size))


def test_bad_writes_are_refused(xlen: str) -> None:
    regs = make_machine(guest(xlen, "hello")).registers
    size = ARCHES[xlen].xlen // 8
    with pytest.raises(RegisterError):
        regs.write(FIRST_CSR + 0xC00, bytes(size))  # cycle is read-only
    with pytest.raises(RegisterError):
        regs.write(10, b"\x01")  # wrong size
    with pytest.raises(RegisterError):
        regs.read(5000)
    with pytest.raises(RegisterError):
        regs.write(PRIV_REGNUM, b"\x02")  # no such privilege level
    with pytest.raises(RegisterError):
        regs.write_all(b"\x00" * 3)
