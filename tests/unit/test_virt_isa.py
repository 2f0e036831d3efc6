"""The RISC-V virt device tree names the CPU's extensions as its misa has them (issue 17 item 2: it said
rv64imac while the CPU has F and D, so Linux and U-Boot saw no FPU)."""

from __future__ import annotations

import fdt
import pytest
from unicorn import riscv_const as rc

from machine.boards import virt
from machine.factory import make_machine
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from tests.conftest import guest


@pytest.mark.parametrize("xlen", ["rv32", "rv64"])
def test_riscv_isa_matches_misa(xlen: str) -> None:
    machine = make_machine(load_image(guest(xlen, "hello")), ScriptedInputs(), lambda byte: None)
    misa = machine.hart.csr(rc.UC_RISCV_REG_MISA)
    letters = {chr(ord("a") + bit) for bit in range(26) if misa >> bit & 1} - {"s", "u"}  # modes, not extensions
    tree = fdt.parse_dtb(virt.build_fdt(machine.arch, machine.config.ram_size))
    isa = tree.get_property("riscv,isa", "/cpus/cpu@0").value
    assert isa.startswith(xlen) and set(isa[4:]) == letters and "f" in letters and "d" in letters
