"""gdbstub/target.py: TimelineTarget's reads kept between changes answer exactly what the machine holds.

After every kind of change (debugger writes, steps both ways, monitor seeks), the target's ``g``, ``p`` and
``m`` answers, and the session's ``g`` reply, equal reads made afresh from the machine.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from gdbstub.monitor import Monitor
from gdbstub.rsp.codec import encode
from gdbstub.server import drive
from gdbstub.session import Session
from gdbstub.target import ResumeAction, TargetError, TimelineTarget
from machine.arch.riscv_regs import RegisterError
from machine.boards.virt import RAM_BASE
from machine.debug_memory import DebugMemoryError
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import Machine, MachineConfig
from replay.history import HistoryInputs
from replay.timeline import Timeline
from tests.conftest import guest

REGNUMS = [0, 1, 2, 10, 31, 32, 33, 65, 0x341, 0x1000]  # GPRs, pc, an FPR, CSRs, one that does not exist
SPANS = [(RAM_BASE, 4), (RAM_BASE + 0x40, 2), (RAM_BASE + 0x100, 64), (0x1000, 4), (0x1000, 0x40),
         (0x1000_0000, 8), (0x200_0000, 8), (0x0, 4), (RAM_BASE - 2, 4)]  # fmt: skip
RAM_SPOTS = [RAM_BASE, RAM_BASE + 0x40, RAM_BASE + 0x100]


def new_target() -> TimelineTarget:
    inputs = HistoryInputs([], 0, ScriptedInputs())
    machine = Machine(load_image(guest("rv32", "compute")), inputs, lambda b: None, MachineConfig())
    timeline = Timeline(machine, inputs)
    return TimelineTarget(timeline, Monitor(timeline, lambda: "", lambda path, overwrite: ""))


def fresh(read: Callable[..., bytes], *args: int) -> bytes | str:
    try:
        return read(*args)
    except (RegisterError, DebugMemoryError) as exc:
        return type(exc).__name__


def through_target(read: Callable[..., bytes], *args: int) -> bytes | str:
    try:
        return read(*args)
    except TargetError as exc:
        return {0x16: "RegisterError", 0x0E: "DebugMemoryError"}[exc.errno]


def check_reads(target: TimelineTarget, session: Session) -> None:
    m = target.machine
    for _ in range(2):  # the second time from what the first kept
        assert target.read_registers() == m.registers.read_all()
        for regnum in REGNUMS:
            assert through_target(target.read_register, regnum) == fresh(m.registers.read, regnum)
        for addr, length in SPANS:
            assert through_target(target.read_memory, addr, length) == fresh(m.memory.read, addr, length)
        assert drive(session, encode(b"g")) == encode(m.registers.read_all().hex().encode())


OPS = st.one_of(
    st.tuples(st.just("write_memory"), st.sampled_from(RAM_SPOTS), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("write_register"), st.sampled_from([1, 2, 10, 31, 32]), st.binary(min_size=4, max_size=4)),
    st.tuples(st.just("write_registers"), st.binary(min_size=33 * 4, max_size=33 * 4)),
    st.tuples(st.just("step"), st.integers(min_value=1, max_value=40)),
    st.tuples(st.just("step_back"), st.integers(min_value=1, max_value=5)),
    st.tuples(st.just("seek"), st.integers(min_value=0, max_value=200)),
    st.tuples(st.just("step_packet")),
)


def apply(target: TimelineTarget, session: Session, op: tuple) -> None:
    kind, *args = op
    try:
        if kind == "write_memory":
            target.write_memory(args[0], args[1])
        elif kind == "write_register":
            target.write_register(args[0], args[1])
        elif kind == "write_registers":
            target.write_registers(args[0])
        elif kind in ("step", "step_back"):
            action = ResumeAction.STEP if kind == "step" else ResumeAction.REVERSE_STEP
            for _ in range(args[0]):
                target.resume(action, lambda: False)
        elif kind == "seek":
            target.monitor(f"seek {min(args[0], target.timeline.end)}")
        else:
            drive(session, encode(b"vCont;s"))
    except TargetError:
        pass  # a write inside history is refused: the reads must still be right


@settings(max_examples=30, deadline=None)
@given(st.lists(OPS, min_size=1, max_size=12))
def test_kept_reads_equal_fresh_reads_after_any_change(ops: list[tuple]) -> None:
    target = new_target()
    session = Session(target)
    drive(session, encode(b"QStartNoAckMode"))
    check_reads(target, session)
    for op in ops:
        apply(target, session, op)
        check_reads(target, session)


def test_a_seek_behind_the_targets_back_is_seen() -> None:
    """The kept reads belong to one icount: a timeline moved directly (scripts, tests) is read afresh."""
    target = new_target()
    for _ in range(50):
        target.resume(ResumeAction.STEP, lambda: False)
    before = target.read_registers()
    target.timeline.seek(10)
    assert target.read_registers() == target.machine.registers.read_all() != before


def test_reads_are_kept_until_a_change() -> None:
    target = new_target()
    calls: list[int] = []
    memory = target.machine.memory
    real_read = memory.read

    def counting_read(addr: int, length: int) -> bytes:
        calls.append(addr)
        return real_read(addr, length)

    memory.read = counting_read  # type: ignore[method-assign]
    for _ in range(3):
        target.read_memory(RAM_BASE, 4)
    assert len(calls) == 1
    target.resume(ResumeAction.STEP, lambda: False)
    target.read_memory(RAM_BASE, 4)
    assert len(calls) == 2


def test_a_resume_or_monitor_command_that_keeps_the_icount_still_forgets() -> None:
    """Entering a trap changes the hart without retiring an instruction: the icount alone cannot tell."""
    target = new_target()
    timeline, m = target.timeline, target.machine
    result = timeline.run_forward(True, lambda: False)

    def trap_entry(*args: object) -> object:
        m.registers.write(10, (int.from_bytes(m.registers.read(10), "little") + 1).to_bytes(4, "little"))
        return result

    timeline.run_forward = trap_entry  # type: ignore[method-assign]
    target._monitor = lambda command: str(trap_entry())
    for change in (lambda: target.resume(ResumeAction.STEP, lambda: False), lambda: target.monitor("x")):
        before = target.read_registers()
        change()
        assert target.read_registers() == m.registers.read_all() != before
