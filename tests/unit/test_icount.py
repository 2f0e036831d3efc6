"""machine/icount.py: native helper and Python fallback agree, stops are exact."""

from __future__ import annotations

import ctypes

import pytest
from unicorn import UC_ARCH_RISCV, UC_MODE_RISCV32, Uc
from unicorn import riscv_const as rc
from unicorn.unicorn_py3 import unicorn as ucmod

from machine.icount import (
    CounterState,
    Isa,
    NativeCounter,
    PythonCounter,
    _decode_lengths,
    native_library_path,
)
from tests.conftest import XLENS_RV64_SLOW, guest, make_machine

TARGETS = [1, 2, 3, 7, 100, 1001, 5_000, 16_000, 16_001, 16_417, 16_444, 20_000, 50_001, 123_457, 300_000]


def test_native_helper_is_built() -> None:
    """The package build compiles the helper; the fallback is only for broken builds."""
    assert native_library_path() is not None


def test_native_struct_layout_matches() -> None:
    lib = ctypes.CDLL(native_library_path())
    assert lib.chron_counter_size() == ctypes.sizeof(CounterState)


def test_private_binding_api_still_there() -> None:
    """NativeCounter relies on private names of unicorn==2.1.4: fail loudly if they move.

    (docs/unicorn-facts.md, "Native hooks through the binding")
    """
    assert hasattr(ucmod, "uclib") and hasattr(ucmod, "uc_hook_h")
    assert hasattr(ucmod.uclib, "uc_hook_add") and hasattr(ucmod.uclib, "uc_emu_stop")
    assert hasattr(Uc(UC_ARCH_RISCV, UC_MODE_RISCV32), "_uch")


def test_machines_use_the_expected_counter() -> None:
    assert isinstance(make_machine(guest("rv32", "hello")).counter, NativeCounter)
    assert isinstance(make_machine(guest("rv32", "hello"), native=False).counter, PythonCounter)


def test_decode_lengths_mixes_compressed_and_full() -> None:
    code = bytes.fromhex("b7020010") + bytes.fromhex("8543") + bytes.fromhex("2380 6200") + bytes.fromhex("8503")
    assert _decode_lengths(Isa.RISCV_C, code) == [0, 4, 6, 10]
    assert _decode_lengths(Isa.FIXED4, bytes(12)) == [0, 4, 8]


@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
@pytest.mark.parametrize("name", ["timer", "hello", "traps"])
def test_native_and_fallback_stop_at_the_same_icount_and_state(xlen: str, name: str) -> None:
    """Both counters stop at exactly each target (mid-block included) in identical states."""
    native = make_machine(guest(xlen, name))
    fallback = make_machine(guest(xlen, name), native=False)
    for target in TARGETS:
        a = native.run(target)
        b = fallback.run(target)
        assert (a.kind, a.icount, a.pc) == (b.kind, b.icount, b.pc)
        if a.kind.label == "limit":
            assert a.icount == target
        assert native.digest() == fallback.digest(), f"states differ at icount {target}"


def test_icount_matches_unicorn_count(xlen: str) -> None:
    """Independent check: Unicorn's own count=N on a bare engine reaches the same registers.

    The compute guest does no MMIO and takes no trap before its result, so a
    bare engine runs it identically (count= is exact, docs/unicorn-facts.md, "Exact stops").
    """
    path = guest(xlen, "compute")
    machine = make_machine(path)
    boot = 6  # QEMU's reset vector ROM: 6 instructions, then the image's entry
    assert machine.run(boot).pc == machine.image.entry
    bare_uc = machine.arch.new_uc()
    bare_uc.mem_map(0x8000_0000, 128 << 20)
    for seg in machine.image.segments:
        bare_uc.mem_write(seg.addr, seg.data)
    for i, value in enumerate(machine.hart.registers()[:32]):
        bare_uc.reg_write(rc.UC_RISCV_REG_X0 + i, value)
    position, pc = 0, machine.image.entry
    for target in (1, 9, 1000, 4097, 77_777, 250_001, 1_000_003):
        bare_uc.emu_start(pc, machine.arch.until_addr, count=target - position)
        pc, position = bare_uc.reg_read(rc.UC_RISCV_REG_PC), target
        result = machine.run(boot + target)
        assert result.icount == boot + target
        assert result.pc == pc
        regs = [bare_uc.reg_read(rc.UC_RISCV_REG_X0 + i) for i in range(32)]
        assert machine.hart.registers()[:32] == regs
