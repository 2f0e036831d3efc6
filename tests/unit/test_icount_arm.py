"""machine/icount.py for the Arm ISAs: the Python fallback's decoding of A64 and Thumb-2 (an IT block retires as
one instruction), trapped-instruction noting, and the native counter agreeing with it on real Unicorn programs
(icount and exact landing at every limit).

The programs are embedded as machine code; the source of each is in the comment above it (assembled with
``arm-none-eabi-as -mcpu=cortex-m3`` / ``aarch64-linux-gnu-as``; ``test_embedded_code_is_the_assembled_source``
checks that, when the assemblers are installed).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from unicorn import UC_HOOK_CODE, Uc
from unicorn import arm64_const as a64c
from unicorn import arm_const as armc

from machine.arch import aarch64 as a64
from machine.arch import armv7m as v7m
from machine.arch.aarch64 import AARCH64
from machine.arch.armv7m import ARMV7M
from machine.engine import Engine, EngineStop, StopKind
from machine.icount import (
    NO_LIMIT,
    Isa,
    NativeCounter,
    PythonCounter,
    StopReason,
    TrappedInstructions,
    _decode_lengths,
    it_block_bytes,
    make_counter,
    open_native_library,
    thumb_insn,
)
from tests.conftest import require_tool

# -- the programs -------------------------------------------------------------------------------------------------

# Thumb-2 (Cortex-M3), at THUMB_BASE:
#    0: movs r0, #0               2: movs r1, #9               4: mov.w r2, #0
#  loop:
#    8: adds r0, #1               a: cmp r0, #4
#    c: ite lt                    e: addlt r2, #1             10: addge.w r2, r2, #0x100
#   14: cpsid i                  16: tst.w r0, #1
#   1a: itttt ne                 1c: addne r3, #1             1e: addne.w r4, r4, #2
#   22: subne r5, #1             24: movne.w r6, r0
#   28: cpsie i                  2a: msr PRIMASK, r7
#   2e: ittet gt                 30: addgt r7, #1             32: addgt.w r8, r8, #3
#   36: addle.w r9, r9, #4       3a: movgt r10, r0
#   3c: cmp r1, #3               3e: it eq                    40: beq.w skip
#   44: eor.w r11, r11, r0       48: adds.w r12, r12, #5
#  skip:
#   4c: subs r1, #1              4e: bne loop
#  done:
#   50: b done
THUMB_SOURCE = """.syntax unified
.thumb
    movs r0, #0
    movs r1, #9
    mov.w r2, #0
loop:
    adds r0, #1
    cmp r0, #4
    ite lt
    addlt r2, #1
    addge.w r2, r2, #0x100
    cpsid i
    tst.w r0, #1
    itttt ne
    addne r3, #1
    addne.w r4, r4, #2
    subne r5, #1
    movne.w r6, r0
    cpsie i
    msr primask, r7
    ittet gt
    addgt r7, #1
    addgt.w r8, r8, #3
    addle r9, #4
    movgt r10, r0
    cmp r1, #3
    it eq
    beq.w skip
    eor.w r11, r11, r0
    adds r12, r12, #5
skip:
    subs r1, #1
    bne loop
done:
    b done
"""
THUMB_CODE = bytes.fromhex(
    "002009214ff0000201300428b4bf013202f5807272b610f0010f1fbf013304f10204013d4fea000662b687f31088c5bf013708f1030809"
    "f104098246032908bf00f004b88bea000b1cf1050c0139dbd1fee7"
)
THUMB_OFFSETS = [0x0, 0x2, 0x4, 0x8, 0xA, 0xC, 0x14, 0x16, 0x1A, 0x28, 0x2A, 0x2E, 0x3C, 0x3E, 0x44, 0x48, 0x4C, 0x4E,
                 0x50]  # fmt: skip
THUMB_IT_BLOCKS = {0xC: 6, 0x1A: 12, 0x2E: 12, 0x3E: 4}  # IT instruction -> bytes of the instructions it covers
THUMB_BASE = 0x1000

# AArch64, at A64_BASE:
#    0: mov x0, #0                4: mov x1, #12
#  loop:
#    8: add x0, x0, #1            c: msr daifset, #2          10: tst x0, #1              14: b.eq even
#   18: add x2, x2, x0           1c: msr daifclr, #2
#  even:
#   20: madd x3, x0, x0, x3      24: subs x1, x1, #1          28: b.ne loop
#  done:
#   2c: b done
A64_SOURCE = """start:
    mov x0, #0
    mov x1, #12
loop:
    add x0, x0, #1
    msr daifset, #2
    tst x0, #1
    b.eq even
    add x2, x2, x0
    msr daifclr, #2
even:
    madd x3, x0, x0, x3
    subs x1, x1, #1
    b.ne loop
done:
    b done
"""
A64_CODE = bytes.fromhex(
    "000080d2810180d200040091df4203d51f0040f2600000544200008bff4203d5030c009b210400f101ffff5400000014"
)
A64_BASE = 0x4008_0000


def _assemble(tool: str, flags: list[str], source: str, tmp_path: Path) -> bytes:
    require_tool(shutil.which(tool), f"{tool} not installed (apt-get install binutils-arm-none-eabi "
                                     "binutils-aarch64-linux-gnu)")  # fmt: skip
    objcopy = tool.removesuffix("as") + "objcopy"
    (tmp_path / "p.S").write_text(source)
    subprocess.run([tool, *flags, str(tmp_path / "p.S"), "-o", str(tmp_path / "p.o")], check=True)
    subprocess.run([objcopy, "-O", "binary", str(tmp_path / "p.o"), str(tmp_path / "p.bin")], check=True)
    return (tmp_path / "p.bin").read_bytes()


@pytest.mark.parametrize("isa", ["thumb", "a64"])
def test_embedded_code_is_the_assembled_source(isa: str, tmp_path: Path) -> None:
    if isa == "thumb":
        assert _assemble("arm-none-eabi-as", ["-mcpu=cortex-m3"], THUMB_SOURCE, tmp_path) == THUMB_CODE
    else:
        assert _assemble("aarch64-linux-gnu-as", [], A64_SOURCE, tmp_path) == A64_CODE


# -- decoding -----------------------------------------------------------------------------------------------------


def test_a64_lengths_are_whole_words() -> None:
    assert _decode_lengths(Isa.A64, A64_CODE) == list(range(0, 0x30, 4))
    assert _decode_lengths(Isa.A64, bytes(10)) == [0, 4]  # a partial word starts no instruction
    assert _decode_lengths(Isa.A64, b"") == []


def test_thumb_lengths_mix_16_and_32_bit_and_count_it_blocks_once() -> None:
    assert _decode_lengths(Isa.THUMB, THUMB_CODE) == THUMB_OFFSETS


def test_it_block_bytes_of_the_program() -> None:
    for at in range(0, len(THUMB_CODE), 2):
        assert it_block_bytes(THUMB_CODE, at) == THUMB_IT_BLOCKS.get(at, 0), f"at {at:#x}"


ADD16 = bytes.fromhex("0130")  # adds r0, #1 (addne r0, #1 inside a block)
ADD32 = bytes.fromhex("00f10100")  # add.w r0, r0, #1


@pytest.mark.parametrize(
    ("it", "members"),
    [
        (0xBF18, 1),  # it ne
        (0xBF08, 1),  # it eq
        (0xBF1C, 2),  # itt ne
        (0xBF14, 2),  # ite ne
        (0xBF04, 2),  # itt eq
        (0xBF1E, 3),  # ittt ne
        (0xBF02, 3),  # ittt eq
        (0xBF15, 4),  # itete ne
        (0xBF01, 4),  # itttt eq
    ],
)
def test_it_masks_cover_one_to_four_instructions(it: int, members: int) -> None:
    for pattern in ([ADD16] * 4, [ADD32] * 4, [ADD16, ADD32] * 2, [ADD32, ADD16] * 2):
        code = it.to_bytes(2, "little") + b"".join(pattern) + ADD16
        covered = sum(len(p) for p in pattern[:members])
        assert it_block_bytes(code, 0) == covered
        # IT + its members are one instruction, the next one starts after them
        assert _decode_lengths(Isa.THUMB, code)[:2] == [0, 2 + covered]
        assert len(_decode_lengths(Isa.THUMB, code)) == 1 + (4 - members) + 1


@pytest.mark.parametrize("hint", [0xBF00, 0xBF10, 0xBF20, 0xBF30, 0xBF40], ids=["nop", "yield", "wfe", "wfi", "sev"])
def test_hints_with_a_zero_mask_are_not_it(hint: int) -> None:
    code = hint.to_bytes(2, "little") + ADD16 * 4
    assert it_block_bytes(code, 0) == 0
    assert _decode_lengths(Isa.THUMB, code) == [0, 2, 4, 6, 8]


def test_it_block_cut_by_the_end_of_the_code() -> None:
    code = (0xBF01).to_bytes(2, "little") + ADD32 + ADD16  # itttt with only two members present
    assert it_block_bytes(code, 0) == 6
    assert it_block_bytes(code[:1], 0) == 0
    assert it_block_bytes(code, len(code)) == 0
    assert _decode_lengths(Isa.THUMB, code) == [0]


def test_thumb_insn_as_the_trapped_patterns_see_it() -> None:
    assert thumb_insn(THUMB_CODE, 0x14) == 0xB672  # cpsid i
    assert thumb_insn(THUMB_CODE, 0x2A) == 0xF387_8810  # msr PRIMASK, r7
    assert thumb_insn(THUMB_CODE, 0x4) == 0xF04F_0200  # mov.w r2, #0
    assert thumb_insn(THUMB_CODE, 0x50) == 0xE7FE  # b done: 0b11100 is a 16-bit branch
    assert thumb_insn(THUMB_CODE[:0x2E], 0x2A) == 0xF387_8810  # ends exactly with the code
    assert thumb_insn(THUMB_CODE[:0x2D], 0x2A) == 0xF387  # cut: only the first halfword
    assert thumb_insn(bytes.fromhex("87f3"), 0) == 0xF387  # the first half of a cut 32-bit instruction
    assert v7m.classify(thumb_insn(THUMB_CODE, 0x2A)) is v7m.Action.STEP_THEN_CHECK


# -- trapped-instruction noting -------------------------------------------------------------------------------------


def _uc(isa: Isa, code: bytes) -> tuple[Uc, int]:
    if isa == Isa.THUMB:
        uc, base = ARMV7M.new_uc(), THUMB_BASE
        uc.mem_map(0, 0x10000)
    else:
        uc, base = AARCH64.new_uc(), A64_BASE
        uc.mem_map(A64_BASE, 0x10000)
    uc.mem_write(base, code)
    return uc, base


def _start(uc: Uc, isa: Isa, pc: int) -> None:
    until = ARMV7M.until_addr if isa == Isa.THUMB else AARCH64.until_addr
    uc.emu_start(pc | (1 if isa == Isa.THUMB else 0), until)


def test_python_counter_notes_trapped_a64_instructions_before_running_their_block() -> None:
    uc, base = _uc(Isa.A64, A64_CODE)
    counter = PythonCounter(uc, Isa.A64, a64.TRAPPED)
    _start(uc, Isa.A64, base)
    st = counter.state
    assert st.stop_reason == StopReason.SPECIAL
    assert counter.take_new_specials() == [base + 0xC]  # msr daifset
    assert counter.take_new_specials() == []
    assert (st.miss_addr, st.miss_size, st.miss_insns) == (base, 0x10, 4)  # (Unicorn ends a block at msr daif*)
    assert st.icount == 0 and uc.reg_read(a64c.UC_ARM64_REG_PC) == base  # nothing of the block ran
    assert uc.reg_read(a64c.UC_ARM64_REG_X1) == 0


def test_python_counter_notes_trapped_thumb_instructions_16_and_32_bit() -> None:
    uc, base = _uc(Isa.THUMB, THUMB_CODE)
    counter = PythonCounter(uc, Isa.THUMB, v7m.TRAPPED)
    st = counter.state
    # Unicorn ends a block after each of them: start where each block begins (cpsid i; tst.w, itttt and its
    # members, cpsie i; msr PRIMASK, a 32-bit one).
    for start, special, insns in ((0x14, 0x14, 1), (0x16, 0x28, 3), (0x2A, 0x2A, 1)):
        st.stop_reason = StopReason.NONE
        _start(uc, Isa.THUMB, base + start)
        assert st.stop_reason == StopReason.SPECIAL
        assert counter.take_new_specials() == [base + special]
        assert (st.miss_addr, st.miss_insns) == (base + start, insns)
        assert st.icount == 0


def test_python_counter_stops_before_the_block_that_would_cross_the_limit() -> None:
    for limit in (5, 40, 77):
        uc, base = _uc(Isa.THUMB, THUMB_CODE)
        counter = PythonCounter(uc, Isa.THUMB, TrappedInstructions(frozenset(), frozenset()))
        counter.state.limit = limit
        _start(uc, Isa.THUMB, base)
        st = counter.state
        assert st.stop_reason == StopReason.LIMIT
        assert 0 <= st.icount <= limit  # (5: the first block holds 7)
        # the count is that of the instructions retired: the pc is where the reference is after as many
        assert _reference(Isa.THUMB, st.icount + 1)[st.icount][0] == uc.reg_read(armc.UC_ARM_REG_PC)
        assert counter.take_new_specials() == []


IT_MSR = bytes.fromhex("894208bf81f310880132fee7")  # cmp r1, r1; it eq; msreq PRIMASK, r1; adds r2, #1


@pytest.mark.parametrize("native", [False, True], ids=["python", "native"])
def test_a_trapped_instruction_inside_an_it_block_is_noted(native: bool) -> None:
    if native:
        require_tool(open_native_library() is not None, "native icount helper not built")
    uc, base = _uc(Isa.THUMB, IT_MSR)
    counter = make_counter(uc, Isa.THUMB, v7m.TRAPPED, prefer_native=native)
    assert counter.is_native == native
    counter.state.limit = counter.state.fast_limit = 50  # (not noted, it would spin in `b .` for ever)
    _start(uc, Isa.THUMB, base)
    assert counter.state.stop_reason == StopReason.SPECIAL
    # The IT instruction stands for its block (one instruction, as Unicorn runs it): it is what gets trapped.
    assert counter.take_new_specials() == [base + 2]


# -- native and Python counters agree, and land exactly -------------------------------------------------------------


def _engine(isa: Isa, native: bool) -> Engine:
    if native:
        require_tool(open_native_library() is not None, "native icount helper not built")
    if isa == Isa.THUMB:
        uc, base = _uc(isa, THUMB_CODE)
        arch, trapped, classify, intr = ARMV7M, v7m.TRAPPED, v7m.classify, v7m.INTR_CAUSES

        def insn_at(addr: int) -> int:
            return thumb_insn(bytes(uc.mem_read(addr, 4)), 0)
    else:
        uc, base = _uc(isa, A64_CODE)
        arch, trapped, classify, intr = AARCH64, a64.TRAPPED, a64.classify, a64.INTR_CAUSES

        def insn_at(addr: int) -> int:
            return int.from_bytes(uc.mem_read(addr, 4), "little")

    counter = make_counter(uc, isa, trapped, prefer_native=native)
    assert isinstance(counter, NativeCounter if native else PythonCounter)
    engine = Engine(uc, counter, arch.pc_reg, intr, arch.until_addr, lambda a: classify(insn_at(a)) is not None,
                    thumb=isa == Isa.THUMB)  # fmt: skip
    engine.pc = base
    return engine


def _run_to(engine: Engine, limit: int) -> tuple[EngineStop, list[EngineStop]]:
    """Run to ``limit``, stepping over each trapped instruction as a board does; (last stop, trapped stops)."""
    trapped = []
    while True:
        stop = engine.run(limit, NO_LIMIT)
        if stop.kind != StopKind.CSR or stop.icount >= limit:  # (a trapped instruction right at the limit waits)
            return stop, trapped
        trapped.append(stop)
        after = engine.step_over_trapped()
        assert after.kind == StopKind.LIMIT and after.icount == stop.icount + 1


def _registers(isa: Isa, uc: Uc) -> list[int]:
    if isa == Isa.THUMB:
        ids = [armc.UC_ARM_REG_R0 + i for i in range(13)] + [armc.UC_ARM_REG_PC, armc.UC_ARM_REG_PRIMASK]
    else:
        ids = [a64c.UC_ARM64_REG_X0 + i for i in range(4)] + [a64c.UC_ARM64_REG_PC, a64c.UC_ARM64_REG_PSTATE]
    return [int(uc.reg_read(r)) for r in ids]


def _reference(isa: Isa, count: int) -> list[tuple[int, list[int]]]:
    """(pc, registers) before each of the first ``count`` instructions, from a bare Unicorn stopped by a code hook
    (an IT block's members are part of its IT instruction)."""
    uc, base = _uc(isa, THUMB_CODE if isa == Isa.THUMB else A64_CODE)
    members = {base + it + 2 + k for it, size in THUMB_IT_BLOCKS.items() for k in range(size)}
    seen: list[tuple[int, list[int]]] = []

    def hook(uc: Uc, addr: int, size: int, _data: object) -> None:
        if isa == Isa.THUMB and addr in members:
            return
        if len(seen) == count:
            uc.emu_stop()
            return
        seen.append((addr, _registers(isa, uc)))

    uc.hook_add(UC_HOOK_CODE, hook)
    _start(uc, isa, base)
    return seen


A64_END, THUMB_END = 130, 200  # both programs end in `b done` well before these icounts


@pytest.mark.parametrize("isa", [Isa.THUMB, Isa.A64], ids=["thumb", "a64"])
def test_native_and_python_counters_land_on_every_icount(isa: Isa) -> None:
    """Cut at every icount in turn (mostly mid-block): same icount, pc and registers with both counters, and those
    of a bare Unicorn stopped before the same instruction."""
    end = THUMB_END if isa == Isa.THUMB else A64_END
    reference = _reference(isa, end + 1)
    assert len(reference) == end + 1
    engines = [_engine(isa, native=True), _engine(isa, native=False)]
    for limit in range(1, end + 1):
        stops = [_run_to(e, limit)[0] for e in engines]
        for engine, stop in zip(engines, stops, strict=True):
            assert stop.kind in (StopKind.LIMIT, StopKind.CSR)
            assert (stop.icount, engine.icount) == (limit, limit)
            pc, regs = reference[limit]
            assert stop.pc == pc, f"icount {limit}: pc {stop.pc:#x}, expected {pc:#x}"
            assert _registers(isa, engine.uc) == regs, f"icount {limit}"
        assert _registers(isa, engines[0].uc) == _registers(isa, engines[1].uc)


@pytest.mark.parametrize("isa", [Isa.THUMB, Isa.A64], ids=["thumb", "a64"])
def test_native_and_python_counters_agree_on_long_runs_and_trapped_stops(isa: Isa) -> None:
    """Fresh engines sent straight to a limit: the same trapped-instruction stops on the way, the same end."""
    end = THUMB_END if isa == Isa.THUMB else A64_END
    reference = _reference(isa, end + 1)
    for limit in (1, 2, 3, 7, 13, 29, 64, 97, end):
        results = []
        for native in (True, False):
            engine = _engine(isa, native)
            stop, trapped = _run_to(engine, limit)
            results.append(([(t.icount, t.pc) for t in trapped], stop.icount, stop.pc, _registers(isa, engine.uc)))
        assert results[0] == results[1], f"limit {limit}"
        assert results[0][1:3] == (limit, reference[limit][0])
        for icount, pc in results[0][0]:
            assert reference[icount][0] == pc  # a trapped stop is exactly before its instruction
    offsets = {0x14, 0x28, 0x2A} if isa == Isa.THUMB else {0xC, 0x1C}
    base = THUMB_BASE if isa == Isa.THUMB else A64_BASE
    assert {pc - base for _, pc in results[0][0]} == offsets


def test_it_blocks_are_single_instructions_for_the_engine() -> None:
    """An icount never stops inside an IT block: the instruction after `ite lt` (8 bytes later) is one further."""
    for native in (True, False):
        engine = _engine(Isa.THUMB, native)
        assert _run_to(engine, 5)[0].pc == THUMB_BASE + 0xC  # at `ite lt`
        assert _run_to(engine, 6)[0].pc == THUMB_BASE + 0x14  # past it and both members
        assert engine.uc.reg_read(armc.UC_ARM_REG_R2) == 1  # addlt ran (r0 = 1 < 4), addge.w did not


# -- what the IT-block gap means on mps2-an385 ------------------------------------------------------------------------


def _irq_guest(conditional: bool) -> tuple[bytes, int]:
    """A Cortex-M image (at 0) that pends IRQ0 under PRIMASK, then clears PRIMASK; (image, handler address).

    0x00: .word 0x20001000, reset      0x40: .word handler (IRQ0)
    0x80 reset: movs r1, #1; msr PRIMASK, r1; ldr r0, =0xE000E100 (ISER0); str r1, [r0]
                ldr r0, =0xE000E200 (ISPR0); str r1, [r0]; movs r2, #0; movs r1, #0; cmp r1, r1
                [it eq; msreq PRIMASK, r1] or [msr PRIMASK, r1]; adds r2, #1 (x4); spin: b spin
    handler:    mov r3, r2; hang: b hang
    0xa8:       .word 0xE000E100, 0xE000E200
    """
    unmask = bytes.fromhex("08bf81f31088" if conditional else "81f31088")
    code = bytes.fromhex("012181f310880848016008480160002200218942") + unmask + bytes.fromhex("0132013201320132fee7")
    handler = 0x80 + len(code)
    code += bytes.fromhex("1346fee7")
    image = bytearray(0xB0)
    image[0:8] = (0x2000_1000).to_bytes(4, "little") + (0x81).to_bytes(4, "little")
    image[0x40:0x44] = (handler | 1).to_bytes(4, "little")
    image[0x80 : 0x80 + len(code)] = code
    image[0xA8:0xB0] = bytes.fromhex("00e100e000e200e0")
    return bytes(image), handler


def _irq_entry_icount(conditional: bool, native: bool, tmp_path: Path) -> int:
    from machine.factory import make_machine
    from machine.inputs import ScriptedInputs
    from machine.loader import load_image
    from machine.machine import MachineConfig
    from machine.results import RunKind

    image, handler = _irq_guest(conditional)
    path = tmp_path / f"irq-{conditional}.bin"
    path.write_bytes(image)
    machine = make_machine(load_image(path, load_addr=0), ScriptedInputs(0, None), lambda _: None,
                           MachineConfig(arch=ARMV7M, prefer_native=native))  # fmt: skip
    assert machine.counter.is_native == native
    machine.add_breakpoint(handler)
    result = machine.run(1000)
    assert result.kind in (RunKind.BREAKPOINT, RunKind.LIMIT)
    return result.icount


@pytest.mark.parametrize("native", [False, True], ids=["python", "native"])
def test_unmasking_msr_takes_the_pending_interrupt_at_once(native: bool, tmp_path: Path) -> None:
    if native:
        require_tool(open_native_library() is not None, "native icount helper not built")
    assert _irq_entry_icount(False, native, tmp_path) == 10  # right after the msr, as QEMU


@pytest.mark.parametrize("native", [False, True], ids=["python", "native"])
def test_conditional_unmasking_msr_takes_the_pending_interrupt_at_once(native: bool, tmp_path: Path) -> None:
    if native:
        require_tool(open_native_library() is not None, "native icount helper not built")
    assert _irq_entry_icount(True, native, tmp_path) == 10
