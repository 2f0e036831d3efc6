"""machine/watch.py on Arm: a read watchpoint's stop leaves the registers as before the load (AArch64, Armv7-M).

Unicorn's Arm models write a load's destination before an ``emu_stop`` from its memory hook takes effect, and a
load of several registers writes the first ones before its later accesses reach the hook at all (see
machine/watch.py). Each case here is one load form in a small program assembled for the test: a read watchpoint
on the bytes only that load reads must stop before it with every register as a plain run has them at that icount
(native helper and Python twin alike), and going on from the stop must reach the plain run's end state.

The Cortex-M board's own accesses (exception entry stacking a frame, its return unstacking it) are checked on the
committed pendsv guest: they fire watchpoints as a device's write does (``written_by``).
"""

from __future__ import annotations

import ctypes
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from unicorn import UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE
from unicorn import arm64_const as a64c
from unicorn import arm_const as armc

from machine.core import MachineCore
from machine.factory import make_machine
from machine.icount import native_library_path
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import MachineConfig
from machine.results import RunKind
from machine.watch import ACCESS_MAX, MULTI_LOAD_MAX, SaveIsa, WatchKind, Watchpoint, hook_ranges, is_multi_load
from tests.conftest import ROOT, require_tool

END = 200  # icount past every case (the programs then spin)

# Each case: a global label on the load, the bytes (offset into `data`, length) only that load reads.
A64_CASES = {
    "ldr": (0, 4),
    "ldr_dest_is_base": (16, 4),
    "ldr_pre_index": (32, 8),
    "ldr_post_index": (48, 8),
    "ldp_second": (72, 8),
    "ldp_dest_is_base": (88, 8),
    "ldp_q_second": (112, 4),  # q0 is written before the access to q1's bytes
    "ld1_two_registers": (150, 2),  # v2's bytes are loaded before v3's
    "ldr_q": (168, 4),
    "ld4_last": (252, 4),  # the widest: 64 bytes, first access 63 below
    "ldp_sp_pre_index": (272, 8),
}
A64_PROGRAM = """
    .text
    .globl _start
_start:
    mov x0, #(3 << 20)
    msr cpacr_el1, x0
    isb
    adrp x20, data
    add x20, x20, :lo12:data
    mov x21, sp
    /* Distinct register values, so that any register a stop leaves loaded shows. */
    mov x0, #0x1111
    mov x1, #0x2222
    mov x3, #0x3333
    mov x5, #0x5555
    mov x7, #0x7777
    mov x8, #0x8888
    mov x10, #0xaaaa
    movi v0.16b, #0xe0
    movi v1.16b, #0xe1
    movi v2.16b, #0xe2
    movi v3.16b, #0xe3
    movi v4.16b, #0xe4
    movi v5.16b, #0xe5
    movi v6.16b, #0xe6
    movi v7.16b, #0xe7
    add x1, x20, #16
    add x2, x20, #24
    add x4, x20, #48
    add x6, x20, #64
    add x9, x20, #80
    add x11, x20, #96
    add x12, x20, #128
    add x13, x20, #160
    add x14, x20, #192
    add x15, x20, #256
    .globl ldr
ldr: ldr w0, [x20]
    .globl ldr_dest_is_base
ldr_dest_is_base: ldr w1, [x1]
    .globl ldr_pre_index
ldr_pre_index: ldr x3, [x2, #8]!
    .globl ldr_post_index
ldr_post_index: ldr x5, [x4], #16
    .globl ldp_second
ldp_second: ldp x7, x8, [x6], #16
    .globl ldp_dest_is_base
ldp_dest_is_base: ldp x10, x9, [x9]
    .globl ldp_q_second
ldp_q_second: ldp q0, q1, [x11]
    .globl ld1_two_registers
ld1_two_registers: ld1 {v2.16b, v3.16b}, [x12], #32
    .globl ldr_q
ldr_q: ldr q4, [x13]
    .globl ld4_last
ld4_last: ld4 {v4.4s, v5.4s, v6.4s, v7.4s}, [x14]
    mov sp, x15
    .globl ldp_sp_pre_index
ldp_sp_pre_index: ldp x16, x17, [sp, #8]!
    mov sp, x21
spin: b spin

    .data
    .balign 16
data:
    .rept 80
    .word 0x10203040 + (. - data) * 0x010101
    .endr
"""

M_CASES = {
    "ldr_dest_is_base": (0, 4),
    "ldm_third": (24, 4),  # r3 and r4 are written before the third word is read
    "ldm_writeback": (40, 4),
    "pop_third": (56, 4),
    "ldrd_second": (68, 4),
    "ldm_w_thirteen": (128, 4),  # 13 words from 80: the last at 128
}
M_PROGRAM = """
    .syntax unified
    .thumb
    .cpu cortex-m3
    .text
vectors:
    .word 0x20008000
    .word _start + 1
    .globl _start
    .thumb_func
_start:
    ldr r9, =data
    mov r10, sp
    movs r0, #0x11
    movs r3, #0x33
    movs r4, #0x44
    movs r5, #0x55
    mov r11, r0
    mov r12, r0
    mov r1, r9
    add r2, r9, #16
    add r6, r9, #32
    add r7, r9, #48
    add r8, r9, #64
    .globl ldr_dest_is_base
ldr_dest_is_base: ldr r1, [r1]
    .globl ldm_third
ldm_third: ldm r2, {r3, r4, r5}
    .globl ldm_writeback
ldm_writeback: ldmia r6!, {r3, r4, r5}
    mov sp, r7
    .globl pop_third
pop_third: pop {r3, r4, r5}
    mov sp, r10
    .globl ldrd_second
ldrd_second: ldrd r3, r4, [r8]
    add r0, r9, #80
    .globl ldm_w_thirteen
ldm_w_thirteen: ldmia.w r0, {r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, lr}
spin: b spin
    .ltorg

    .data
    .balign 8
data:
    .rept 40
    .word 0x10203040 + (. - data) * 0x010101
    .endr
"""

A64_REGS = (*(a64c.UC_ARM64_REG_X0 + i for i in range(29)), a64c.UC_ARM64_REG_X29, a64c.UC_ARM64_REG_X30,
            a64c.UC_ARM64_REG_SP, a64c.UC_ARM64_REG_PC, *(a64c.UC_ARM64_REG_Q0 + i for i in range(32)))  # fmt: skip
M_REGS = (*(armc.UC_ARM_REG_R0 + i for i in range(13)), armc.UC_ARM_REG_SP, armc.UC_ARM_REG_LR, armc.UC_ARM_REG_PC,
          armc.UC_ARM_REG_XPSR)  # fmt: skip


def _build(tmp: Path, name: str, source: str, tools: tuple[str, str], ld_args: list[str]) -> Path:
    asm, ld = tools
    require_tool(shutil.which(asm), f"{asm} is needed to assemble the test program")
    require_tool(shutil.which(ld), f"{ld} is needed to link the test program")
    (tmp / f"{name}.s").write_text(source)
    subprocess.run([asm, "-o", str(tmp / f"{name}.o"), str(tmp / f"{name}.s")], check=True, capture_output=True)
    elf = tmp / f"{name}.elf"
    subprocess.run(
        [ld, *ld_args, "-e", "_start", "-o", str(elf), str(tmp / f"{name}.o")], check=True, capture_output=True
    )
    return elf


@pytest.fixture(scope="module")
def a64_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tools = ("aarch64-linux-gnu-as", "aarch64-linux-gnu-ld")
    return _build(
        tmp_path_factory.mktemp("a64"), "loads", A64_PROGRAM, tools, ["-Ttext=0x40080000", "-Tdata=0x40090000"]
    )


@pytest.fixture(scope="module")
def m_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tools = ("arm-none-eabi-as", "arm-none-eabi-ld")
    return _build(tmp_path_factory.mktemp("m"), "loads", M_PROGRAM, tools, ["-Ttext=0x0", "-Tdata=0x20000000"])


def _machine(elf: Path, native: bool) -> MachineCore:
    if native:
        require_tool(native_library_path(), "the native helper is not built")
    machine = make_machine(load_image(str(elf)), ScriptedInputs(), lambda _b: None, MachineConfig(prefer_native=native))
    assert machine.engine.watchpoints.is_native == native
    return machine


def _registers(machine: MachineCore, regs: tuple[int, ...]) -> dict[int, int]:
    return {reg: int(machine.uc.reg_read(reg)) for reg in regs}


def _check_read_stop(elf: Path, regs: tuple[int, ...], label: str, offset: int, length: int, native: bool) -> None:
    image = load_image(str(elf))
    watched = image.symbols["data"] + offset
    machine = _machine(elf, native)
    machine.add_watchpoint(WatchKind.READ, watched, length)
    stop = machine.run(END)
    assert stop.kind == RunKind.WATCHPOINT and stop.pc == image.symbols[label] and stop.fault_addr >= watched
    plain = _machine(elf, native)
    plain.run(stop.icount)
    assert (plain.icount, plain.pc) == (stop.icount, stop.pc)
    assert _registers(machine, regs) == _registers(plain, regs)
    # Going on from the stop: the load runs once, from the right address; the end state is the plain run's.
    after = machine.run(END)
    assert after.kind == RunKind.LIMIT
    plain.run(END)
    assert _registers(machine, regs) == _registers(plain, regs)
    assert machine.digest() == plain.digest()


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
@pytest.mark.parametrize("label", list(A64_CASES))
def test_aarch64_read_stop_keeps_every_register(a64_elf: Path, label: str, native: bool) -> None:
    _check_read_stop(a64_elf, A64_REGS, label, *A64_CASES[label], native)


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
@pytest.mark.parametrize("label", list(M_CASES))
def test_cortexm_read_stop_keeps_every_register(m_elf: Path, label: str, native: bool) -> None:
    _check_read_stop(m_elf, M_REGS, label, *M_CASES[label], native)


def test_a_write_stop_after_a_saved_read_keeps_the_stored_registers(a64_elf: Path) -> None:
    """An access watchpoint over several loads' bytes: each stop, read after read, is a plain run's state."""
    image = load_image(str(a64_elf))
    machine = _machine(a64_elf, True)
    machine.add_watchpoint(WatchKind.ACCESS, image.symbols["data"], 320)
    plain = _machine(a64_elf, True)
    stops = 0
    while (stop := machine.run(END)).kind == RunKind.WATCHPOINT:
        plain.run(stop.icount)
        assert _registers(machine, A64_REGS) == _registers(plain, A64_REGS)
        stops += 1
    assert stops == len(A64_CASES)
    plain.run(END)
    assert machine.digest() == plain.digest()


# -- which loads need their registers saved before their first access -----------------------------------------
def _words(tmp: Path, source: str, arch: str) -> list[int]:
    """The instruction words of ``source`` (Thumb: the first halfword in the low bits, as read from memory)."""
    if arch == "a64":
        tools = ("aarch64-linux-gnu-as", "aarch64-linux-gnu-ld")
        elf = _build(tmp, "insns", ".globl _start\n_start:\n" + source, tools, ["-Ttext=0x40080000"])
    else:
        prologue = ".syntax unified\n.thumb\n.cpu cortex-m3\n.globl _start\n_start:\n"
        elf = _build(tmp, "insns", prologue + source, ("arm-none-eabi-as", "arm-none-eabi-ld"), ["-Ttext=0x0"])
    image = load_image(str(elf))
    start = image.symbols["_start"]
    seg = next(seg for seg in image.segments if seg.addr <= start < seg.addr + len(seg.data))
    code = seg.data[start - seg.addr :] + b"\0\0"
    out, off = [], 0
    while off < len(code) - 2:
        out.append(int.from_bytes(code[off : off + 4], "little"))
        off += 4 if arch == "a64" or code[off + 1] >> 3 in (0x1D, 0x1E, 0x1F) else 2
    return out


MULTI_LOADS = {  # (the assembler's variant, the ISA): loads that write several registers, and instructions that do not
    ("a64", SaveIsa.A64): (
        "ldp q0, q1, [x0]\nldp d0, d1, [x0, #16]!\nldnp s2, s3, [x1]\nld1 {v0.16b, v1.16b}, [x0], #32\n"
        "ld4 {v0.4s, v1.4s, v2.4s, v3.4s}, [x2]\nld2 {v0.s, v1.s}[1], [x3]\nld1r {v0.4s}, [x4]\n",
        "ldr x0, [x1]\nldp x0, x1, [x2]\nldr q0, [x1]\nstp q0, q1, [x0]\nst1 {v0.16b}, [x0]\nldpsw x0, x1, [x2]\n"
        "add x0, x1, x2\nldxr x0, [x1]\n",
    ),
    ("m", SaveIsa.THUMB): (
        "ldm r0, {r1, r2}\nldmia r0!, {r1, r2}\npop {r4, pc}\nldmia.w r0, {r1-r12}\nldmdb r0!, {r1, r2}\n"
        "pop.w {r4-r11, pc}\nldrd r0, r1, [r2]\nldrd r0, r1, [r2, #8]!\n",
        "ldr r0, [r1]\nldr.w r0, [r1, #4]\nstm r0!, {r1, r2}\npush {r4, lr}\nstrd r0, r1, [r2]\n"
        "stmdb sp!, {r4-r11}\nmovs r0, #1\nldrb r0, [r1]\nldr r0, [sp, #4]\n",
    ),
}


@pytest.mark.parametrize(("arch", "isa"), sorted(MULTI_LOADS, key=str))
def test_multi_loads_are_recognised(tmp_path: Path, arch: str, isa: SaveIsa) -> None:
    multi, single = MULTI_LOADS[arch, isa]
    assert all(is_multi_load(isa, w) for w in _words(tmp_path, multi, arch))
    assert not any(is_multi_load(isa, w) for w in _words(tmp_path, single, arch))
    assert not is_multi_load(SaveIsa.NONE, 0x2C40_0000)


@given(insn=st.integers(0, (1 << 32) - 1), isa=st.sampled_from(list(SaveIsa)))
def test_native_and_python_decoders_agree(insn: int, isa: SaveIsa) -> None:
    path = native_library_path()
    require_tool(path, "the native helper is not built")
    lib = ctypes.CDLL(path)
    lib.chron_watch_is_multi_load.argtypes = [ctypes.c_uint64, ctypes.c_uint32]
    assert bool(lib.chron_watch_is_multi_load(int(isa), insn)) == is_multi_load(isa, insn)


def test_read_ranges_reach_a_whole_multi_load_below_where_registers_are_saved() -> None:
    watch = Watchpoint(WatchKind.ACCESS, 0x1000, 4)
    ranges = hook_ranges([watch], MULTI_LOAD_MAX)
    assert ranges[UC_HOOK_MEM_READ] == [(0x1000 - MULTI_LOAD_MAX + 1, 0x1003)]
    assert ranges[UC_HOOK_MEM_WRITE] == [(0x1000 - ACCESS_MAX + 1, 0x1003)]  # (stores write no register)


# -- the Cortex-M board's own accesses: exception entry and return ------------------------------------------
PENDSV = ROOT / "tests" / "guests" / "cortexm" / "build" / "pendsv.elf"


Hits = list[tuple[int, int, str]]


def _board_hits(kind: WatchKind, check: Callable[[MachineCore], None] | None = None) -> tuple[Hits, set[int]]:
    """(icount, watched address, who) of every hit on task a's stack that no instruction made, to the end; and the
    icounts where traps were entered."""
    image = load_image(str(PENDSV))
    machine = make_machine(image, ScriptedInputs(), lambda _b: None, MachineConfig())
    machine.add_watchpoint(kind, image.symbols["stack_a"], 2048)
    traps: set[int] = set()
    machine.trap_tap = lambda entry: traps.add(entry.icount)
    found = []
    while (stop := machine.run()).kind == RunKind.WATCHPOINT:
        if stop.written_by is not None:
            found.append((stop.icount, stop.fault_addr, stop.written_by))
            if check is not None:
                check(machine)
    assert stop.kind == RunKind.EXITED and stop.exit_code == 0
    plain = make_machine(image, ScriptedInputs(), lambda _b: None, MachineConfig())
    assert plain.run().icount == stop.icount and plain.digest() == machine.digest()  # (no divergence)
    return found, traps


def test_exception_entry_stacking_fires_write_watchpoints() -> None:
    image = load_image(str(PENDSV))
    stack = image.symbols["stack_a"]

    def frame_is_there(machine: MachineCore) -> None:  # reported once the frame is written: at the handler
        assert machine.pc & ~1 in (image.symbols["SVC_Handler"] & ~1, image.symbols["PendSV_Handler"] & ~1)
        psp = int(machine.uc.reg_read(armc.UC_ARM_REG_PSP))
        assert stack <= psp < stack + 2048
        (stacked_psr,) = struct.unpack("<I", machine.memory.read(psp + 28, 4))  # the frame's top word: xPSR
        assert stacked_psr & 0x0100_0000  # (Thumb)

    hits, traps = _board_hits(WatchKind.WRITE, frame_is_there)
    assert len(hits) > 4 and {icount for icount, _, _ in hits} <= traps
    assert all(by.startswith("the exception entry to ") and "stacking its frame" in by for _, _, by in hits)
    assert any("SVCall (exception 11)" in by for _, _, by in hits) and any("PendSV (exception 14)" in by
                                                                           for _, _, by in hits)  # fmt: skip


def test_exception_return_unstacking_fires_read_watchpoints() -> None:
    hits, _traps = _board_hits(WatchKind.READ)
    assert len(hits) > 4 and all(by.startswith("the exception return from ") and "unstacking its frame" in by
                                 for _, _, by in hits)  # fmt: skip
    both, _ = _board_hits(WatchKind.ACCESS)
    assert {by for _, _, by in both} >= {by for _, _, by in hits}
