"""machine/arch/aarch64*.py: trapped-instruction classes, system-register decoding, syndromes, the generic timer,
the CPU's state-file values and gdb's register file, on a real Unicorn Cortex-A72.

Instruction words come from ``aarch64-linux-gnu-as`` + ``objdump -d`` (the source is in each comment).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from unicorn import arm64_const as ac

from machine.arch import aarch64 as a64
from machine.arch.aarch64 import AARCH64, Action, classify, decode_sysreg, exception_syndrome, is_hvc, is_smc
from machine.arch.aarch64_cpu import CpuStateError, build_context, cpu_registers, read_cpu, read_uc
from machine.arch.aarch64_regs import CORE, FPU, SYSTEM, Aarch64Registers, registers, target_xml
from machine.arch.aarch64_timer import (
    CTL_ENABLE,
    CTL_IMASK,
    CTL_ISTATUS,
    FREQUENCY_HZ,
    GenericTimer,
    TimerState,
    UndefinedAccess,
)
from machine.arch.common import RegisterError
from machine.factory import make_machine
from machine.icount import Isa, open_native_library
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import MachineConfig
from machine.results import RunKind
from tests.conftest import require_tool

U64 = (1 << 64) - 1

# -- classify ------------------------------------------------------------------------------------------------

CLASSIFIED = {
    0xD503207F: Action.WFI,  # wfi
    0xD503205F: Action.WFE,  # wfe
    0xD69F03E0: Action.STEP_THEN_CHECK,  # eret
    0xD50342DF: Action.STEP_THEN_CHECK,  # msr daifset, #2
    0xD50342FF: Action.STEP_THEN_CHECK,  # msr daifclr, #2
    0xD51B4223: Action.STEP_THEN_CHECK,  # msr daif, x3
    0xD51BE321: Action.TIMER,  # msr cntv_ctl_el0, x1
    0xD51BE207: Action.TIMER,  # msr cntp_tval_el0, x7
    0xD53BE042: Action.TIMER,  # mrs x2, cntvct_el0
    0xD53BE005: Action.TIMER,  # mrs x5, cntfrq_el0
    0xD53BE024: Action.TIMER,  # mrs x4, cntpct_el0
    0xD53BE249: Action.TIMER,  # mrs x9, cntp_cval_el0
    0xD53BE05E: Action.TIMER,  # mrs x30, cntvct_el0
    0xD5181000: Action.STEP_THEN_FORGET,  # msr sctlr_el1, x0
    0xD5182001: Action.STEP_THEN_FORGET,  # msr ttbr0_el1, x1
    0xD5182022: Action.STEP_THEN_FORGET,  # msr ttbr1_el1, x2
    0xD5182043: Action.STEP_THEN_FORGET,  # msr tcr_el1, x3
}
ORDINARY = {
    0x91000400: "add x0, x0, #1",
    0xD503201F: "nop",
    0xD5033FDF: "isb",
    0xD53B4223: "mrs x3, daif (a read unmasks nothing)",
    0xD5381000: "mrs x0, sctlr_el1 (a read changes no mapping)",
    0xD518A203: "msr mair_el1, x3",
    0xD518C000: "msr vbar_el1, x0",
    0xD518E100: "msr cntkctl_el1, x0 (op1=0: EL1's own register, not the EL0 timer block)",
    0xD538E100: "mrs x0, cntkctl_el1",
    0xD4024681: "svc #0x1234",
    0xD4207D00: "brk #0x3e8",
    0xD4000002: "hvc #0",
    0xD4000003: "smc #0",
    0x00000000: "udf #0",
}


@pytest.mark.parametrize(("insn", "action"), sorted(CLASSIFIED.items()), ids=[f"{i:#010x}" for i in sorted(CLASSIFIED)])
def test_classify_trapped_instructions(insn: int, action: Action) -> None:
    assert classify(insn) is action
    assert a64.TRAPPED.matches(insn)


@pytest.mark.parametrize("insn", sorted(ORDINARY), ids=lambda v: ORDINARY[v])
def test_classify_ordinary_instructions(insn: int) -> None:
    assert classify(insn) is None
    assert not a64.TRAPPED.matches(insn)
    assert not a64.TRAPPED_NATIVE_TIMER.matches(insn)


def test_native_timer_patterns_trap_timer_writes_only() -> None:
    """With the native helper, generic-timer reads are answered inside emu_start: only MSRs stop the run."""
    assert a64.TRAPPED_NATIVE_TIMER.matches(0xD51BE321)  # msr cntv_ctl_el0, x1
    assert a64.TRAPPED_NATIVE_TIMER.matches(0xD51BE207)  # msr cntp_tval_el0, x7
    assert not a64.TRAPPED_NATIVE_TIMER.matches(0xD53BE042)  # mrs x2, cntvct_el0
    assert not a64.TRAPPED_NATIVE_TIMER.matches(0xD53BE005)  # mrs x5, cntfrq_el0
    for insn in (0xD503207F, 0xD69F03E0, 0xD50342FF, 0xD51B4223, 0xD5181000, 0xD5182043):
        assert a64.TRAPPED_NATIVE_TIMER.matches(insn)


@pytest.mark.parametrize(
    "insn",
    [0xD53BE800, 0xD51BE801, 0xD53BEC02, 0xD53BEFE3],
    ids=["mrs pmevcntr0_el0", "msr pmevcntr0_el0", "mrs pmevtyper0_el0", "mrs pmccfiltr_el0"],
)
def test_pmu_event_registers_are_not_timer_accesses(insn: int) -> None:
    assert classify(insn) is None




@pytest.mark.parametrize(
    ("insn", "native"),
    [
        pytest.param(0xD53BE800, True, id="mrs-native"),  # (reads are left to Unicorn by the native MRS hook)
        pytest.param(0xD53BE800, False, id="mrs-python"),
        pytest.param(0xD51BE801, True, id="msr-native"),
        pytest.param(0xD51BE801, False, id="msr-python"),
    ],
)
def test_a_pmu_event_counter_access_runs_on_the_virt_board(insn: int, native: bool, tmp_path: Path) -> None:
    """`mrs x0, pmevcntr0_el0` / `msr pmevcntr0_el0, x1`, then PSCI SYSTEM_OFF (movz x0, #8; movk x0, #0x8400,
    lsl #16; hvc #0), as a raw image at 0x40080000: QEMU's cortex-a72 has a PMU, so it exits."""
    if native:
        require_tool(open_native_library() is not None, "native icount helper not built")
    path = tmp_path / "pmu.bin"
    path.write_bytes(b"".join(w.to_bytes(4, "little") for w in (insn, 0xD2800100, 0xF2B08000, 0xD4000002)))
    machine = make_machine(load_image(path, load_addr=0x4008_0000), ScriptedInputs(0, None), lambda _: None,
                           MachineConfig(arch=AARCH64, prefer_native=native))  # fmt: skip
    assert machine.counter.is_native == native
    result = machine.run(100)
    assert (result.kind, result.icount) == (RunKind.EXITED, 4)


# -- decode_sysreg -------------------------------------------------------------------------------------------


def test_decode_sysreg_of_an_mrs() -> None:
    access = decode_sysreg(0xD53BE249)  # mrs x9, cntp_cval_el0 (S3_3_C14_C2_2)
    assert (access.op0, access.op1, access.crn, access.crm, access.op2) == (3, 3, 14, 2, 2)
    assert access.is_read and access.rt == 9


def test_decode_sysreg_of_an_msr() -> None:
    access = decode_sysreg(0xD51BE321)  # msr cntv_ctl_el0, x1 (S3_3_C14_C3_1)
    assert (access.op0, access.op1, access.crn, access.crm, access.op2) == (3, 3, 14, 3, 1)
    assert not access.is_read and access.rt == 1


def test_decode_sysreg_fields_of_other_registers() -> None:
    assert decode_sysreg(0xD53BE05E) == a64.SysregAccess(3, 3, 14, 0, 2, True, 30)  # mrs x30, cntvct_el0
    assert decode_sysreg(0xD5181000) == a64.SysregAccess(3, 0, 1, 0, 0, False, 0)  # msr sctlr_el1, x0
    assert decode_sysreg(0xD518E100) == a64.SysregAccess(3, 0, 14, 1, 0, False, 0)  # msr cntkctl_el1, x0
    assert decode_sysreg(0xD5100240) == a64.SysregAccess(2, 0, 0, 2, 2, False, 0)  # msr mdscr_el1, x0
    assert decode_sysreg(0xD53BE01F).rt == 31  # mrs xzr, cntfrq_el0


# -- exception_syndrome, hvc/smc -------------------------------------------------------------------------------


def test_svc_syndrome_carries_the_immediate_and_returns_past_it() -> None:
    esr, back = exception_syndrome(0xD4024681)  # svc #0x1234
    assert esr >> 26 == a64.EC_SVC == 0x15
    assert esr & a64.ESR_IL
    assert esr & 0xFFFF == 0x1234
    assert back == 4
    assert exception_syndrome(0xD4000001) == ((0x15 << 26) | (1 << 25), 4)  # svc #0


def test_brk_syndrome_returns_to_the_brk() -> None:
    esr, back = exception_syndrome(0xD4207D00)  # brk #0x3e8
    assert esr == (0x3C << 26) | (1 << 25) | 0x3E8
    assert back == 0


@pytest.mark.parametrize("insn", [0x00000000, 0xD4000002, 0xD4000003, 0x91000400, None],
                         ids=["udf", "hvc", "smc", "add", "unreadable"])  # fmt: skip
def test_anything_else_is_an_unknown_exception(insn: int | None) -> None:
    assert exception_syndrome(insn) == ((a64.EC_UNKNOWN << 26) | a64.ESR_IL, 0)


def test_hvc_and_smc_are_told_apart() -> None:
    assert is_hvc(0xD4000002) and is_hvc(0xD40000A2)  # hvc #0, hvc #5
    assert is_smc(0xD4000003) and is_smc(0xD40000A3)  # smc #0, smc #5
    for insn in (0xD4000002, 0xD40000A2):
        assert not is_smc(insn)
    for insn in (0xD4000003, 0xD4000001, 0xD4207D00, 0x00000000, None):
        assert not is_hvc(insn)
    assert not is_smc(0xD4000001) and not is_smc(None)


def test_arch_value() -> None:
    assert (AARCH64.name, AARCH64.xlen, AARCH64.isa, AARCH64.board, AARCH64.gdb_name) == (
        "aarch64",
        64,
        Isa.A64,
        "virt",
        "aarch64",
    )
    assert AARCH64.until_addr % 4 != 0  # never an instruction's address
    assert AARCH64.cpu_register_count() == len(cpu_registers())


def test_new_uc_sets_scr_el3_rw() -> None:
    uc = AARCH64.new_uc()
    assert uc.reg_read(ac.UC_ARM64_REG_CP_REG, a64.SCR_EL3) & a64.SCR_RW
    assert uc.reg_read(ac.UC_ARM64_REG_PSTATE) & 0x1F == a64.EL1H


# -- the generic timer -------------------------------------------------------------------------------------------

CNTFRQ, CNTPCT, CNTVCT = (0, 0), (0, 1), (0, 2)
PHYS, VIRT = 2, 3  # CRm
TVAL, CTL, CVAL = 0, 1, 2  # op2


def test_frequency_and_counters_read() -> None:
    timer = GenericTimer()
    assert timer.access(*CNTFRQ, True, 0, 5) == FREQUENCY_HZ == 62_500_000
    assert timer.access(*CNTPCT, True, 0, 12345) == 12345
    assert timer.access(*CNTVCT, True, 0, 12345) == 12345
    assert GenericTimer.count(16 * 1000 + 15) == 1000
    assert GenericTimer.count(1 << 80) == (1 << 76) & U64


@pytest.mark.parametrize(
    "reg",
    [CNTFRQ, CNTPCT, CNTVCT, (PHYS, 3), (VIRT, 7), (1, 0), (4, 0)],
    ids=["cntfrq", "cntpct", "cntvct", "phys-op2-3", "virt-op2-7", "crm1", "crm4"],
)
def test_writes_to_read_only_or_missing_registers_are_undefined(reg: tuple[int, int]) -> None:
    timer = GenericTimer()
    with pytest.raises(UndefinedAccess):
        timer.access(*reg, False, 1, 0)
    assert timer.save() == TimerState(0, 0, 0, 0)


def test_missing_registers_are_undefined_to_read_too() -> None:
    with pytest.raises(UndefinedAccess):
        GenericTimer().access(PHYS, 3, True, 0, 0)


def test_cval_round_trips_and_is_64_bit() -> None:
    timer = GenericTimer()
    assert timer.access(VIRT, CVAL, False, (1 << 64) + 0x1234, 0) == 0
    assert timer.access(VIRT, CVAL, True, 0, 0) == 0x1234
    assert timer.access(PHYS, CVAL, True, 0, 0) == 0  # the other timer is untouched
    assert timer.save() == TimerState(0, 0, 0, 0x1234)


def test_tval_write_sign_extends() -> None:
    timer = GenericTimer()
    timer.access(PHYS, TVAL, False, 100, 1000)
    assert timer.cval["phys"] == 1100
    timer.access(PHYS, TVAL, False, 0xFFFF_FFFF, 1000)  # -1
    assert timer.cval["phys"] == 999
    timer.access(PHYS, TVAL, False, 0x8000_0000, 1 << 40)  # INT32_MIN
    assert timer.cval["phys"] == (1 << 40) - (1 << 31)
    timer.access(PHYS, TVAL, False, 0x7FFF_FFFF, 0)  # INT32_MAX
    assert timer.cval["phys"] == 0x7FFF_FFFF
    timer.access(VIRT, TVAL, False, 0xFFFF_FFFF_0000_0005, 10)  # only the low 32 bits count
    assert timer.cval["virt"] == 15
    timer.access(VIRT, TVAL, False, 0xFFFF_FFF0, 5)  # below zero wraps as a 64-bit count
    assert timer.cval["virt"] == (5 - 16) & U64


def test_tval_read_is_cval_minus_count_in_32_bits() -> None:
    timer = GenericTimer()
    timer.access(VIRT, CVAL, False, 1000, 0)
    assert timer.access(VIRT, TVAL, True, 0, 400) == 600
    assert timer.access(VIRT, TVAL, True, 0, 1001) == 0xFFFF_FFFF  # past: negative
    assert timer.access(VIRT, TVAL, True, 0, 1000 + (1 << 32)) == 0  # truncated to 32 bits


def test_ctl_keeps_enable_and_imask_and_reports_istatus() -> None:
    timer = GenericTimer()
    timer.access(PHYS, CVAL, False, 50, 0)
    timer.access(PHYS, CTL, False, 0xFFFF_FFFF, 0)  # ISTATUS and the rest are not writable
    assert timer.ctl["phys"] == CTL_ENABLE | CTL_IMASK
    assert timer.access(PHYS, CTL, True, 0, 49) == CTL_ENABLE | CTL_IMASK
    assert timer.access(PHYS, CTL, True, 0, 50) == CTL_ENABLE | CTL_IMASK | CTL_ISTATUS  # masked: still met
    timer.access(PHYS, CTL, False, CTL_IMASK, 0)  # disabled: ISTATUS reads 0 even past CVAL
    assert timer.access(PHYS, CTL, True, 0, 1000) == CTL_IMASK
    assert timer.access(VIRT, CTL, True, 0, 1000) == 0


def test_fires_needs_enable_unmasked_and_the_compare_met() -> None:
    timer = GenericTimer()
    timer.access(VIRT, CVAL, False, 100, 0)
    assert not timer.fires("virt", 200)  # disabled
    timer.access(VIRT, CTL, False, CTL_ENABLE, 0)
    assert not timer.fires("virt", 99)
    assert timer.fires("virt", 100) and timer.fires("virt", 101)
    timer.access(VIRT, CTL, False, CTL_ENABLE | CTL_IMASK, 0)
    assert not timer.fires("virt", 200)
    assert not timer.fires("phys", 200)


def test_deadline_is_the_earliest_enabled_unmasked_future_compare() -> None:
    timer = GenericTimer()
    assert timer.deadline_ticks(0) is None
    timer.access(PHYS, CVAL, False, 500, 0)
    timer.access(VIRT, CVAL, False, 300, 0)
    assert timer.deadline_ticks(0) is None  # neither enabled
    timer.access(PHYS, CTL, False, CTL_ENABLE, 0)
    assert timer.deadline_ticks(0) == 500
    timer.access(VIRT, CTL, False, CTL_ENABLE | CTL_IMASK, 0)
    assert timer.deadline_ticks(0) == 500  # a masked timer never raises its output
    timer.access(VIRT, CTL, False, CTL_ENABLE, 0)
    assert timer.deadline_ticks(0) == 300
    assert timer.deadline_ticks(300) == 500  # the virtual timer's output is already high at 300
    assert timer.deadline_ticks(500) is None


def test_timer_save_and_load() -> None:
    timer = GenericTimer()
    timer.access(PHYS, CTL, False, CTL_ENABLE, 0)
    timer.access(PHYS, CVAL, False, 77, 0)
    timer.access(VIRT, CTL, False, CTL_IMASK, 0)
    timer.access(VIRT, CVAL, False, U64, 0)
    state = timer.save()
    assert state == TimerState(CTL_ENABLE, 77, CTL_IMASK, U64)
    other = GenericTimer()
    other.load(state)
    assert other.save() == state
    assert other.access(VIRT, CVAL, True, 0, 0) == U64
    other.access(PHYS, CVAL, False, 1, 0)
    assert timer.cval["phys"] == 77  # not shared


# -- the CPU's state-file values ------------------------------------------------------------------------------------


def _index(name: str) -> int:
    return [r.name for r in cpu_registers()].index(name)


def _busy_uc():  # noqa: ANN202
    """A Unicorn CPU with a distinct value in every general and SIMD register, EL0t, some system registers."""
    uc = AARCH64.new_uc()
    for i in range(29):
        uc.reg_write(ac.UC_ARM64_REG_X0 + i, 0x1111_0000_0000_0000 * (i % 15 + 1) + i)
    uc.reg_write(ac.UC_ARM64_REG_X29, 0x2929)
    uc.reg_write(ac.UC_ARM64_REG_X30, 0x3030_3030_3030_3030)
    uc.reg_write(ac.UC_ARM64_REG_PC, 0x4008_0004)
    uc.reg_write(ac.UC_ARM64_REG_SP_EL1, 0x4100_0000)
    uc.reg_write(ac.UC_ARM64_REG_VBAR_EL1, 0x4000_0800)
    uc.reg_write(ac.UC_ARM64_REG_TPIDR_EL0, 0xDEAD_BEEF_0000_0001)
    uc.reg_write(ac.UC_ARM64_REG_CP_REG, (*a64.SPSR_EL1, 0x3C5))
    for i in range(32):
        uc.reg_write(ac.UC_ARM64_REG_Q0 + i, (0xA0 + i) << 120 | (0x5000 + i) << 64 | 0xF00D_0000 + i)
    uc.reg_write(ac.UC_ARM64_REG_PSTATE, 0x6000_0000)  # EL0t, Z and C set
    uc.reg_write(ac.UC_ARM64_REG_SP, 0x4200_0000)  # the stack pointer in use
    # Unicorn's banked copy (QEMU syncs it with SP only when the mode changes): saved as it is, whatever it is.
    uc.reg_write(ac.UC_ARM64_REG_SP_EL0, 0x4300_0000)
    return uc


def test_read_cpu_of_a_real_context() -> None:
    uc = _busy_uc()
    values = read_cpu(uc.context_save())
    assert len(values) == len(cpu_registers()) == 1 + 31 + 2 + 16 + 10 + 64
    assert values[_index("pstate")] == 0x6000_0000
    assert values[_index("x7")] == 0x1111_0000_0000_0000 * 8 + 7
    assert values[_index("x30")] == 0x3030_3030_3030_3030
    assert values[_index("pc")] == 0x4008_0004
    assert values[_index("sp")] == 0x4200_0000
    assert values[_index("sp_el0")] == 0x4300_0000
    assert values[_index("sp_el1")] == 0x4100_0000
    assert values[_index("vbar_el1")] == 0x4000_0800
    assert values[_index("spsr_el1")] == 0x3C5
    assert values[_index("tpidr_el0")] == 0xDEAD_BEEF_0000_0001
    assert values == read_uc(uc)


def test_q_registers_are_saved_as_two_halves() -> None:
    values = read_uc(_busy_uc())
    for i in (0, 5, 31):
        assert values[_index(f"q{i}")] == 0xF00D_0000 + i
        assert values[_index(f"q{i}h")] == (0xA0 + i) << 56 | 0x5000 + i
    assert [r.half for r in cpu_registers() if r.name in ("q3", "q3h")] == [0, 1]


def test_build_context_round_trips_through_a_real_unicorn() -> None:
    values = read_uc(_busy_uc())
    context = build_context(values)
    assert read_cpu(context) == values
    target = AARCH64.new_uc()  # and restored into a machine's Unicorn
    target.context_restore(context)
    assert read_uc(target) == values
    assert target.reg_read(ac.UC_ARM64_REG_Q9) == (0xA9 << 120) | (0x5009 << 64) | 0xF00D_0009
    assert target.reg_read(ac.UC_ARM64_REG_SP) == 0x4200_0000
    assert AARCH64.read_cpu(AARCH64.build_context(values)) == values


def test_build_context_keeps_the_other_stack_pointer_bank() -> None:
    values = list(read_uc(_busy_uc()))
    values[_index("pstate")] = 0x3C5  # EL1h: sp is SP_EL1
    values[_index("sp")] = values[_index("sp_el1")] = 0x4180_0000
    values[_index("sp_el0")] = 0x4280_0000
    assert read_cpu(build_context(values)) == tuple(values)


@pytest.mark.parametrize("pstate", [0x3C9, 0x3CD, 0x3C8, 0x3D5, 0x3C1, 0x3C2, 1 << 32 | 0x3C5],
                         ids=["EL2h", "EL3h", "EL2t", "aarch32", "EL0h", "EL0-bit1", "above-32-bits"])  # fmt: skip
def test_build_context_refuses_a_mode_the_cpu_cannot_be_in(pstate: int) -> None:
    values = list(read_uc(AARCH64.new_uc()))
    values[0] = pstate
    with pytest.raises(CpuStateError, match="pstate"):
        build_context(values)


def test_build_context_accepts_each_valid_mode() -> None:
    values = list(read_uc(AARCH64.new_uc()))
    for mode in a64.VALID_MODES:
        values[0] = 0x3C0 | mode
        assert read_cpu(build_context(values))[0] == 0x3C0 | mode


def test_build_context_refuses_bad_values() -> None:
    values = list(read_uc(AARCH64.new_uc()))
    with pytest.raises(CpuStateError, match="CPU registers"):
        build_context(values[:-1])
    for bad in (-1, 1 << 64, True, 1.0):
        wrong = list(values)
        wrong[_index("x3")] = bad
        with pytest.raises(CpuStateError, match="x3"):
            build_context(wrong)
    wrong = list(values)
    wrong[_index("fpsr")] = 1 << 5  # a RES0 bit: Unicorn cannot hold it
    with pytest.raises(CpuStateError, match="fpsr cannot hold"):
        build_context(wrong)


# -- gdb's register file --------------------------------------------------------------------------------------------


def test_target_xml_parses_with_gdbs_features_and_numbers() -> None:
    root = ET.fromstring(target_xml().split("\n", 2)[2])  # (past the XML declaration and the DOCTYPE)
    assert root.tag == "target"
    assert root.findtext("architecture") == "aarch64"
    features = {f.get("name"): f for f in root.findall("feature")}
    assert list(features) == ["org.gnu.gdb.aarch64.core", "org.gnu.gdb.aarch64.fpu", SYSTEM]
    assert (CORE, FPU) == ("org.gnu.gdb.aarch64.core", "org.gnu.gdb.aarch64.fpu")
    core = {r.get("name"): (int(r.get("regnum")), int(r.get("bitsize"))) for r in features[CORE].findall("reg")}
    assert core == {**{f"x{i}": (i, 64) for i in range(31)}, "sp": (31, 64), "pc": (32, 64), "cpsr": (33, 32)}
    fpu = {r.get("name"): (int(r.get("regnum")), int(r.get("bitsize"))) for r in features[FPU].findall("reg")}
    assert fpu == {**{f"v{i}": (34 + i, 128) for i in range(32)}, "fpsr": (66, 32), "fpcr": (67, 32)}
    assert {v.get("id") for v in features[FPU].findall("vector")} >= {"v2d", "v4f", "v16u"}
    assert {u.get("id") for u in features[FPU].findall("union")} >= {"aarch64v", "vnd", "vns"}
    system = features[SYSTEM].findall("reg")
    assert [int(r.get("regnum")) for r in system] == list(range(68, 68 + len(system)))
    assert all(r.get("group") == "system" for r in system)
    assert "vbar_el1" in {r.get("name") for r in system}
    every = [int(r.get("regnum")) for f in features.values() for r in f.findall("reg")]
    assert every == list(range(len(every))) == [r.regnum for r in registers()]


def test_g_packet_is_x0_to_cpsr() -> None:
    uc = _busy_uc()
    regs = Aarch64Registers(uc)
    data = regs.read_all()
    assert len(data) == 33 * 8 + 4
    assert int.from_bytes(data[3 * 8 : 4 * 8], "little") == 0x1111_0000_0000_0000 * 4 + 3
    assert int.from_bytes(data[31 * 8 : 32 * 8], "little") == 0x4200_0000  # sp
    assert int.from_bytes(data[32 * 8 : 33 * 8], "little") == 0x4008_0004  # pc
    assert int.from_bytes(data[33 * 8 :], "little") == 0x6000_0000  # cpsr
    regs.write_all(data)
    assert regs.read_all() == data
    with pytest.raises(RegisterError):
        regs.write_all(data[:-1])


def test_g_packet_write_sets_every_core_register() -> None:
    uc = AARCH64.new_uc()
    regs = Aarch64Registers(uc)
    cpsr = uc.reg_read(ac.UC_ARM64_REG_PSTATE)
    values = [0x100 + i for i in range(31)] + [0x4100_0000, 0x4008_0000]
    regs.write_all(b"".join(v.to_bytes(8, "little") for v in values) + (cpsr | 0x8000_0000).to_bytes(4, "little"))
    assert [uc.reg_read(ac.UC_ARM64_REG_X0 + i) for i in range(29)] == values[:29]
    assert uc.reg_read(ac.UC_ARM64_REG_X30) == 0x11E
    assert uc.reg_read(ac.UC_ARM64_REG_SP) == 0x4100_0000 and uc.reg_read(ac.UC_ARM64_REG_PC) == 0x4008_0000
    assert uc.reg_read(ac.UC_ARM64_REG_PSTATE) == cpsr | 0x8000_0000


def test_cpsr_write_refuses_a_mode_change_and_keeps_flags() -> None:
    uc = AARCH64.new_uc()
    regs = Aarch64Registers(uc)
    cpsr = regs.read_value(33)
    assert cpsr & 0x1F == a64.EL1H
    for mode in (0x4, 0x0, 0x9):
        with pytest.raises(RegisterError, match="cpsr"):
            regs.write(33, ((cpsr & ~0x1F) | mode).to_bytes(4, "little"))
    assert regs.read_value(33) == cpsr
    regs.write(33, (cpsr | 0xF000_0000).to_bytes(4, "little"))  # NZCV: fine
    assert regs.read(33) == (cpsr | 0xF000_0000).to_bytes(4, "little")
    with pytest.raises(RegisterError):
        regs.write(33, bytes(8))


def test_p_and_p_packets_round_trip_a_v_register() -> None:
    uc = AARCH64.new_uc()
    regs = Aarch64Registers(uc)
    value = bytes(range(0x10, 0x20))
    regs.write(34 + 7, value)  # v7
    assert regs.read(34 + 7) == value
    assert uc.reg_read(ac.UC_ARM64_REG_Q7) == int.from_bytes(value, "little")
    assert regs.read(34 + 8) == bytes(16)
    with pytest.raises(RegisterError, match="16 bytes"):
        regs.write(34 + 7, value[:8])


def test_p_packets_of_x_pc_and_system_registers() -> None:
    uc = _busy_uc()
    regs = Aarch64Registers(uc)
    assert regs.read(30) == (0x3030_3030_3030_3030).to_bytes(8, "little")
    assert regs.read(32) == (0x4008_0004).to_bytes(8, "little")
    spsr = next(r.regnum for r in registers() if r.name == "spsr_el1")
    assert regs.read_value(spsr) == 0x3C5
    regs.write(spsr, (0x3C4).to_bytes(8, "little"))
    assert uc.reg_read(ac.UC_ARM64_REG_CP_REG, a64.SPSR_EL1) == 0x3C4
    fpsr = 66
    regs.write(fpsr, (0x0800_0001).to_bytes(4, "little"))  # QC, IOC
    assert regs.read_value(fpsr) == 0x0800_0001
    with pytest.raises(RegisterError, match="no register number"):
        regs.read(68 + 100)


def test_gdb_reads_the_live_stack_pointer_as_the_bank_in_use() -> None:
    uc = AARCH64.new_uc()  # EL1h
    uc.mem_map(0x1000, 0x1000)
    uc.mem_write(0x1000, (0x9100003F).to_bytes(4, "little"))  # mov sp, x1
    uc.reg_write(ac.UC_ARM64_REG_X1, 0x7000)
    uc.emu_start(0x1000, 0x1004)
    regs = Aarch64Registers(uc)
    sp_el1 = next(r.regnum for r in registers() if r.name == "sp_el1")
    assert regs.read_value(31) == 0x7000
    assert regs.read_value(sp_el1) == 0x7000
