"""machine/arch/armv7m*.py: trapped Thumb instructions, the special registers in every mode, the CPU's state-file
values and gdb's M-profile register file, on a real Unicorn Cortex-M3 (``ARMV7M.new_uc()``).

Instruction halfwords come from ``arm-none-eabi-as -mcpu=cortex-m3`` + ``objdump -d`` (the source is in each
comment); a 32-bit instruction is matched as (first halfword << 16) | second.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from unicorn import arm_const as ac

from machine.arch import armv7m as m
from machine.arch.armv7m import ARMV7M, Action, classify
from machine.arch.armv7m_cpu import (
    CPU_REGISTERS,
    XPSR_T,
    CpuStateError,
    MProfileRegisters,
    build_context,
    read_cpu,
    read_uc,
)
from machine.arch.armv7m_regs import M_PROFILE, M_SYSTEM, Armv7mRegisters, target_xml
from machine.arch.common import RegisterError
from machine.icount import Isa

NAMES = [name for name, _ in CPU_REGISTERS]
MSP, PSP = 0x2000_1000, 0x2000_2000

# -- classify ------------------------------------------------------------------------------------------------

CLASSIFIED = {
    0xBF30: Action.WFI,  # wfi
    0xBF20: Action.WFE,  # wfe
    0xB662: Action.STEP_THEN_CHECK,  # cpsie i
    0xB672: Action.STEP_THEN_CHECK,  # cpsid i
    0xB661: Action.STEP_THEN_CHECK,  # cpsie f
    0xB671: Action.STEP_THEN_CHECK,  # cpsid f
    0xF380_8810: Action.STEP_THEN_CHECK,  # msr PRIMASK, r0
    0xF381_8811: Action.STEP_THEN_CHECK,  # msr BASEPRI, r1
    0xF382_8813: Action.STEP_THEN_CHECK,  # msr FAULTMASK, r2
    0xF383_8814: Action.STEP_THEN_CHECK,  # msr CONTROL, r3
    0xF384_8808: Action.STEP_THEN_CHECK,  # msr MSP, r4
    0xF385_8809: Action.STEP_THEN_CHECK,  # msr PSP, r5
    0xF386_8812: Action.STEP_THEN_CHECK,  # msr BASEPRI_MAX, r6
}
ORDINARY = {
    0xF3EF_8010: "mrs r0, PRIMASK",
    0xF3EF_8114: "mrs r1, CONTROL",
    0xBF00: "nop",
    0xBF40: "sev",
    0xBF10: "yield",
    0x3001: "adds r0, #1",
    0xBF08: "it eq",
    0x4608: "mov r0, r1",
    0xF3BF_8F6F: "isb sy",
    0xBF30_0000: "wfi's halfword as the first half of a word",
    0xE92D_BF30: "a 32-bit word whose second halfword is wfi's",
}


@pytest.mark.parametrize(("insn", "action"), sorted(CLASSIFIED.items()), ids=[f"{i:#x}" for i in sorted(CLASSIFIED)])
def test_classify_trapped_instructions(insn: int, action: Action) -> None:
    assert classify(insn) is action
    assert m.TRAPPED.matches(insn)


@pytest.mark.parametrize("insn", sorted(ORDINARY), ids=lambda v: ORDINARY[v])
def test_classify_ordinary_instructions(insn: int) -> None:
    assert classify(insn) is None
    assert not m.TRAPPED.matches(insn)


def test_arch_value() -> None:
    assert (ARMV7M.name, ARMV7M.xlen, ARMV7M.isa, ARMV7M.board, ARMV7M.gdb_name) == (
        "armv7m",
        32,
        Isa.THUMB,
        "mps2-an385",
        "arm",
    )
    assert ARMV7M.cpu_register_count() == len(CPU_REGISTERS) == 22
    with pytest.raises(ValueError, match="Unicorn they belong to"):
        ARMV7M.read_cpu(ARMV7M.new_uc().context_save())
    with pytest.raises(ValueError, match="Unicorn they belong to"):
        ARMV7M.build_context([0] * len(CPU_REGISTERS))


# -- the special registers in every mode --------------------------------------------------------------------------


def _thread_uc(control: int):  # noqa: ANN202
    """A Cortex-M3 in Thread mode with MSP, PSP set and CONTROL = ``control`` (nPRIV last: it locks CONTROL)."""
    uc = ARMV7M.new_uc()
    uc.reg_write(ac.UC_ARM_REG_XPSR, XPSR_T)
    MProfileRegisters(uc).set_banks(MSP, PSP)
    uc.reg_write(ac.UC_ARM_REG_CONTROL, control & 2)
    uc.reg_write(ac.UC_ARM_REG_CONTROL, control)
    return uc


def test_privileged_thread_mode() -> None:
    uc = _thread_uc(0)
    regs = MProfileRegisters(uc)
    assert regs.banks() == (MSP, PSP)
    assert uc.reg_read(ac.UC_ARM_REG_SP) == MSP
    regs.set_masks((1, 0x40, 1))
    assert regs.masks() == (1, 0x40, 1)
    assert uc.reg_read(ac.UC_ARM_REG_PRIMASK) == 1  # (privileged: Unicorn's own view agrees)
    regs.set_banks(MSP + 0x10, PSP + 0x20)
    assert uc.reg_read(ac.UC_ARM_REG_SP) == MSP + 0x10  # the bank in use is the current SP
    assert regs.read("msp") == MSP + 0x10 and regs.read("psp") == PSP + 0x20


def test_unprivileged_thread_mode_on_the_process_stack() -> None:
    uc = _thread_uc(3)
    assert uc.reg_read(ac.UC_ARM_REG_CONTROL) == 3
    assert uc.reg_read(ac.UC_ARM_REG_SP) == PSP
    assert uc.reg_read(ac.UC_ARM_REG_MSP) == 0  # what the guest's MRS would see: hence MProfileRegisters
    regs = MProfileRegisters(uc)
    assert regs.banks() == (MSP, PSP)
    assert regs.masks() == (0, 0, 0)
    regs.set_masks((1, 0x80, 0))
    regs.set_banks(MSP - 8, PSP - 16)
    assert regs.masks() == (1, 0x80, 0)
    assert regs.banks() == (MSP - 8, PSP - 16)
    assert uc.reg_read(ac.UC_ARM_REG_SP) == PSP - 16
    assert uc.reg_read(ac.UC_ARM_REG_XPSR) & 0x1FF == 0  # back in Thread mode
    assert uc.reg_read(ac.UC_ARM_REG_CONTROL) == 3
    for name, value in (("msp", MSP - 8), ("psp", PSP - 16), ("primask", 1), ("basepri", 0x80), ("faultmask", 0)):
        assert regs.read(name) == value
    regs.write("faultmask", 1)
    regs.write("msp", MSP + 4)
    assert regs.masks() == (1, 0x80, 1) and regs.banks() == (MSP + 4, PSP - 16)
    uc.reg_write(ac.UC_ARM_REG_XPSR, XPSR_T | 3)  # seen from Handler mode, where Unicorn shows everything
    assert uc.reg_read(ac.UC_ARM_REG_MSP) == MSP + 4 and uc.reg_read(ac.UC_ARM_REG_PSP) == PSP - 16
    assert uc.reg_read(ac.UC_ARM_REG_BASEPRI) == 0x80 and uc.reg_read(ac.UC_ARM_REG_FAULTMASK) == 1


def test_handler_mode_uses_the_main_stack() -> None:
    uc = _thread_uc(2)  # privileged, on PSP
    uc.reg_write(ac.UC_ARM_REG_XPSR, XPSR_T | 15)  # SysTick's handler
    assert uc.reg_read(ac.UC_ARM_REG_SP) == MSP
    regs = MProfileRegisters(uc)
    assert regs.banks() == (MSP, PSP)
    regs.set_banks(MSP + 0x100, PSP + 0x200)
    regs.set_masks((0, 0x20, 0))
    assert uc.reg_read(ac.UC_ARM_REG_SP) == MSP + 0x100
    assert uc.reg_read(ac.UC_ARM_REG_XPSR) & 0x1FF == 15  # left as it was
    assert regs.masks() == (0, 0x20, 0) and regs.banks() == (MSP + 0x100, PSP + 0x200)
    uc.reg_write(ac.UC_ARM_REG_XPSR, XPSR_T)  # back to Thread mode: PSP again
    assert uc.reg_read(ac.UC_ARM_REG_SP) == PSP + 0x200


def test_pc_is_read_without_the_thumb_bit_and_written_with_it() -> None:
    uc = ARMV7M.new_uc()
    regs = MProfileRegisters(uc)
    regs.write("pc", 0x400)
    assert regs.read("pc") == 0x400
    regs.write("r7", 0x1234_5678)
    assert uc.reg_read(ac.UC_ARM_REG_R7) == 0x1234_5678 and regs.read("r7") == 0x1234_5678


# -- build_context / read_cpu --------------------------------------------------------------------------------------


def _values(**changes: int) -> list[int]:
    values = dict.fromkeys(NAMES, 0)
    values.update({f"r{i}": 0x1000 * i + i for i in range(13)})
    values.update(xpsr=XPSR_T | 0x6000_0000, msp=MSP, psp=PSP, lr=0xFFFF_FFF9, pc=0x4A0)
    values.update(changes)
    return [values[n] for n in NAMES]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"control": 3, "primask": 1, "basepri": 0xA0},  # unprivileged Thread mode on PSP
        {"control": 2, "xpsr": XPSR_T | 15, "faultmask": 1},  # SysTick's handler (on MSP whatever SPSEL)
        {"control": 1, "xpsr": XPSR_T | 47, "basepri": 0xFF},  # the last external interrupt, unprivileged thread
        {"xpsr": XPSR_T | 0xF800_0000 | 3, "pc": 0xFFFF_FFF0},
    ],
    ids=["thread", "thread-unprivileged-psp", "handler", "irq31", "hardfault-flags"],
)
def test_build_context_and_read_cpu_round_trip_in_the_same_unicorn(changes: dict[str, int]) -> None:
    uc = _thread_uc(3)
    uc.reg_write(ac.UC_ARM_REG_R4, 0xAAAA)
    before = read_uc(uc)
    values = _values(**changes)
    context = build_context(values, uc)
    assert read_uc(uc) == before  # the Unicorn itself is left as it was
    assert read_cpu(context, uc) == tuple(values)
    assert read_uc(uc) == before
    uc.context_restore(context)
    assert read_uc(uc) == tuple(values)
    current_sp = values[NAMES.index("msp")]
    if values[NAMES.index("xpsr")] & 0x1FF == 0 and values[NAMES.index("control")] & 2:
        current_sp = values[NAMES.index("psp")]
    assert uc.reg_read(ac.UC_ARM_REG_SP) == current_sp
    assert uc.reg_read(ac.UC_ARM_REG_CONTROL) == values[0]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("control", 4),
        ("primask", 2),
        ("faultmask", 2),
        ("basepri", 0x100),
        ("r3", 1 << 32),
        ("pc", -2),
        ("lr", True),
        ("xpsr", XPSR_T | 48),
        ("xpsr", XPSR_T | 0x1FF),
    ],
)
def test_build_context_refuses_out_of_range_values(name: str, value: int) -> None:
    uc = ARMV7M.new_uc()
    before = read_uc(uc)
    with pytest.raises(CpuStateError, match=name):
        build_context(_values(**{name: value}), uc)
    assert read_uc(uc) == before


def test_build_context_refuses_a_wrong_count_and_a_missing_unicorn() -> None:
    uc = ARMV7M.new_uc()
    with pytest.raises(CpuStateError, match="22"):
        build_context(_values()[:-1], uc)
    with pytest.raises(ValueError):
        build_context(_values())
    with pytest.raises(ValueError):
        read_cpu(uc.context_save())


def test_arch_methods_delegate_with_the_unicorn() -> None:
    uc = ARMV7M.new_uc()
    values = _values(control=2, r12=0xC0FFEE)
    assert ARMV7M.read_cpu(ARMV7M.build_context(values, uc), uc) == tuple(values)


# -- gdb's register file -------------------------------------------------------------------------------------------


def test_target_xml_is_gdbs_m_profile() -> None:
    root = ET.fromstring(target_xml().split("\n", 2)[2])
    assert root.findtext("architecture") == "arm"
    features = {f.get("name"): f for f in root.findall("feature")}
    assert list(features) == ["org.gnu.gdb.arm.m-profile", "org.gnu.gdb.arm.m-system"] == [M_PROFILE, M_SYSTEM]
    profile = {r.get("name"): int(r.get("regnum")) for r in features[M_PROFILE].findall("reg")}
    assert profile == {**{f"r{i}": i for i in range(13)}, "sp": 13, "lr": 14, "pc": 15, "xpsr": 25}
    system = [(r.get("name"), int(r.get("regnum"))) for r in features[M_SYSTEM].findall("reg")]
    assert system == [("msp", 26), ("psp", 27), ("primask", 28), ("basepri", 29), ("faultmask", 30), ("control", 31)]
    assert {r.get("bitsize") for f in features.values() for r in f.findall("reg")} == {"32"}


def test_g_packet_is_r0_to_pc_then_xpsr() -> None:
    uc = _thread_uc(0)
    for i in range(13):
        uc.reg_write(ac.UC_ARM_REG_R0 + i, 0x100 + i)
    uc.reg_write(ac.UC_ARM_REG_LR, 0x1E1)
    uc.reg_write(ac.UC_ARM_REG_PC, 0x481)
    regs = Armv7mRegisters(uc)
    data = regs.read_all()
    assert len(data) == 17 * 4
    words = [int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4)]
    assert words[:13] == [0x100 + i for i in range(13)]
    assert words[13:16] == [MSP, 0x1E1, 0x480]  # sp, lr, pc without the Thumb bit
    assert words[16] == uc.reg_read(ac.UC_ARM_REG_XPSR)
    regs.write_all(data)
    assert regs.read_all() == data
    assert uc.reg_read(ac.UC_ARM_REG_PC) & ~1 == 0x480
    with pytest.raises(RegisterError):
        regs.write_all(data + bytes(4))


def test_pc_write_keeps_the_cpu_in_thumb_state() -> None:
    uc = ARMV7M.new_uc()
    regs = Armv7mRegisters(uc)
    regs.write(15, (0x2000).to_bytes(4, "little"))
    assert regs.read(15) == (0x2000).to_bytes(4, "little")
    # Run one instruction there: an even pc written as such would switch to the Arm state (EXCP_INVSTATE).
    uc.mem_map(0x2000, 0x1000)
    uc.mem_write(0x2000, bytes.fromhex("013000bf"))  # adds r0, #1; nop
    uc.emu_start(uc.reg_read(ac.UC_ARM_REG_PC) | 1, 0x2002)
    assert uc.reg_read(ac.UC_ARM_REG_R0) == 1


def test_special_registers_readable_in_unprivileged_thread_mode() -> None:
    uc = _thread_uc(3)
    MProfileRegisters(uc).set_masks((1, 0x60, 0))
    regs = Armv7mRegisters(uc)
    assert regs.read_value(26) == MSP
    assert regs.read_value(27) == PSP == regs.read_value(13)
    assert (regs.read_value(28), regs.read_value(29), regs.read_value(30)) == (1, 0x60, 0)
    assert regs.read_value(31) == 3
    regs.write(26, (MSP + 0x40).to_bytes(4, "little"))
    regs.write(28, (0).to_bytes(4, "little"))
    assert MProfileRegisters(uc).banks() == (MSP + 0x40, PSP)
    assert MProfileRegisters(uc).masks() == (0, 0x60, 0)


def test_register_writes_out_of_range_are_refused() -> None:
    uc = ARMV7M.new_uc()
    uc.reg_write(ac.UC_ARM_REG_XPSR, XPSR_T)
    regs = Armv7mRegisters(uc)
    for regnum, value in ((28, 2), (29, 0x100), (30, 2), (31, 4)):
        with pytest.raises(RegisterError, match="cannot hold"):
            regs.write(regnum, value.to_bytes(4, "little"))
    with pytest.raises(RegisterError, match="IPSR"):
        regs.write(25, (XPSR_T | 3).to_bytes(4, "little"))
    regs.write(25, (XPSR_T | 0x8000_0000).to_bytes(4, "little"))  # flags: fine
    assert regs.read_value(25) == XPSR_T | 0x8000_0000
    with pytest.raises(RegisterError, match="4 bytes"):
        regs.write(0, bytes(2))
    for regnum in (16, 24, 32):
        with pytest.raises(RegisterError, match="no register"):
            regs.read(regnum)


def test_control_write_in_unprivileged_thread_mode_takes_effect() -> None:
    uc = _thread_uc(3)
    regs = Armv7mRegisters(uc)
    regs.write(31, (0).to_bytes(4, "little"))
    assert regs.read_value(31) == 0
    assert regs.read_value(13) == MSP
