"""machine/debug_memory.py with the MMU on: the debugger's addresses are virtual, as QEMU's gdbstub has them.

A bare Unicorn RISC-V 64 CPU in S-mode with Sv39 paging: a 1 GiB superpage maps virtual 0 to RAM at
0x8000_0000; nothing else is mapped. Reads and writes at virtual addresses reach the physical bytes, across a page
boundary too, and an address with no mapping is an error that writes nothing. With the MMU off the same
addresses are physical. The memory map gdb gets marks the boot ROM and lets gdb ask for any other address.
"""

from __future__ import annotations

import re

import pytest
from unicorn import UC_ARCH_RISCV, UC_MODE_RISCV64, Uc
from unicorn import riscv_const as rc

from machine.boards.virt import Region
from machine.debug_memory import ADDRESS_END, DebugMemory, DebugMemoryError

RAM = 0x8000_0000
ROOT = RAM + 0x1000  # the Sv39 root page table
PTE_VRWXAD = 0xCF  # valid, readable, writable, executable, accessed, dirty


def _machine(paging: bool) -> tuple[Uc, DebugMemory, list[int]]:
    uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
    uc.mem_map(RAM, 0x10_0000)
    uc.mem_write(RAM, bytes(range(256)) * 4096)
    uc.mem_write(ROOT, bytes(4096))
    uc.mem_write(ROOT, ((RAM >> 12) << 10 | PTE_VRWXAD).to_bytes(8, "little"))  # VA 0..1 GiB -> RAM
    if paging:
        uc.reg_write(rc.UC_RISCV_REG_SATP, (8 << 60) | (ROOT >> 12))
        uc.reg_write(rc.UC_RISCV_REG_PRIV, 1)  # S-mode: translated
    written: list[int] = []
    regions = [Region("mrom", 0x1000, 0xF000, "rom"), Region("ram", RAM, 0x10_0000, "ram")]
    memory = DebugMemory(uc, regions, {}, lambda: written.append(1), lambda: paging)
    return uc, memory, written


def test_reads_and_writes_go_through_the_mmu() -> None:
    uc, memory, written = _machine(paging=True)
    assert memory.read(0x2000, 16) == bytes(uc.mem_read(RAM + 0x2000, 16))
    memory.write(0x2FFE, b"abcd")  # across a page boundary
    assert bytes(uc.mem_read(RAM + 0x2FFE, 4)) == b"abcd"
    assert memory.read(0x2FFE, 4) == b"abcd"
    assert written == [1]


def test_an_unmapped_virtual_address_is_an_error_and_nothing_is_written() -> None:
    uc, memory, written = _machine(paging=True)
    with pytest.raises(DebugMemoryError, match="virtual address 0x40000000"):
        memory.read(0x4000_0000, 4)
    before = bytes(uc.mem_read(RAM + 0x3FFF_F000 % 0x10_0000, 16))
    with pytest.raises(DebugMemoryError):
        memory.write(0x3FFF_FFFE, b"abcd")  # the first half is mapped (outside RAM here), the second is not
    assert bytes(uc.mem_read(RAM + 0x3FFF_F000 % 0x10_0000, 16)) == before
    assert written == []


def test_without_paging_addresses_are_physical() -> None:
    uc, memory, _ = _machine(paging=False)
    assert memory.read(RAM + 0x2000, 8) == bytes(uc.mem_read(RAM + 0x2000, 8))
    with pytest.raises(DebugMemoryError):
        memory.read(0x2_0000, 8)  # no memory there physically (its virtual address is mapped)


def test_the_memory_map_marks_the_rom_and_covers_every_address() -> None:
    _, memory, _ = _machine(paging=False)
    found = re.findall(r'type="(\w+)" start="(\w+)" length="(\w+)"', memory.memory_map_xml())
    rows = [(kind, int(start, 16), int(length, 16)) for kind, start, length in found]
    assert rows == [("ram", 0, 0x1000), ("rom", 0x1000, 0xF000), ("ram", 0x10000, ADDRESS_END - 0x10000)]
