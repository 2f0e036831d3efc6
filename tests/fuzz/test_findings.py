"""What the fuzzers found (issue 11), each as the shortest sequence that showed it, replayed in-process.

Each test failed before its fix: the RSP fuzzer (test_rsp_fuzz.py) or the debugger-write property
(tests/integration/test_debugger_writes.py) found it; the comment says how it failed.
"""

from __future__ import annotations

import logging

import pytest

from gdbstub.cli.timelines import uart_output
from gdbstub.rsp.codec import encode
from gdbstub.server import drive
from gdbstub.session import Session
from gdbstub.target import TargetError, TimelineTarget
from machine.arch.riscv_regs import FIRST_CSR
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import Machine
from machine.results import RunKind
from machine.state import decode_state, encode_state
from replay.history import HistoryInputs
from replay.timeline import Timeline
from tests.conftest import guest, make_machine

MSTATUS, MTVEC, MIE, FRM = FIRST_CSR + 0x300, FIRST_CSR + 0x305, FIRST_CSR + 0x304, FIRST_CSR + 2
MSTATUS_FS_INITIAL = 1 << 13
UNMAPPED = 0x4000_0000


def _live(name: str, until: int) -> tuple[Timeline, TimelineTarget, bytearray]:
    """A live timeline as ``serve`` builds it (UART output shown once along it), run to ``until``."""
    shown = bytearray()
    inputs = HistoryInputs([], 0, ScriptedInputs())
    tx, bind = uart_output(shown.append)
    machine = Machine(load_image(guest("rv32", name)), inputs, tx)
    bind(machine)
    timeline = Timeline(machine, inputs)
    timeline.run_forward(until=until)
    return timeline, TimelineTarget(timeline), shown


def _word(value: int, size: int = 4) -> bytes:
    return value.to_bytes(size, "little")


def test_a_floating_point_csr_write_leaves_a_state_that_saves() -> None:
    """``P frm`` with the FPU on: Unicorn set mstatus.FS Dirty without SD, a state no file can hold; the write's
    keyframe raised CpuStateError (a traceback, the connection dropped, the write in the machine but not in
    its history) and 'monitor record save' failed. With the FPU off the write was silently dropped."""
    timeline, target, _ = _live("hello", 16_500)
    with pytest.raises(TargetError, match="FPU is off"):
        target.write_register(FRM, _word(3))
    target.write_register(MSTATUS, _word(target.machine.registers.read_value(MSTATUS) | MSTATUS_FS_INITIAL))
    target.write_register(FRM, _word(3))  # raised CpuStateError
    assert target.machine.registers.read_value(FRM) == 3
    keyframe = timeline.keyframes[timeline.icount]
    state = decode_state(encode_state(keyframe.state, timeline.machine.arch), timeline.machine)
    assert state.icount == keyframe.icount


def test_a_trap_handler_that_faults_on_itself_ends_a_step() -> None:
    """mtvec and pc in unmapped memory: the fetch fault trapped to the same unmapped handler for ever without
    retiring an instruction, so ``s`` never answered (only Ctrl-C stopped it)."""
    timeline, target, _ = _live("hello", 16_500)
    session = Session(target)
    drive(session, encode(b"P%x=%s" % (MTVEC, _word(UNMAPPED).hex().encode())))
    drive(session, encode(b"P20=%s" % _word(UNMAPPED).hex().encode()))
    polls = iter(range(100_000))
    reply = drive(session, encode(b"s"), lambda: next(polls, None) is None)  # Ctrl-C only after many polls
    assert b"T0b" in reply  # SIGSEGV (was T02: stopped by the Ctrl-C)
    assert timeline.icount == 16_500


def test_a_timer_beyond_the_virtual_clock_never_fires() -> None:
    """mtimecmp 2^59 ticks (a guest can write it; the fuzz got there after a jump into the middle of an
    instruction): waiting for it pushed the clock's bias past 64 bits, and every snapshot taken after that
    failed to restore (FieldError: BoardState.bias_ns)."""
    machine = make_machine(guest("rv32", "timer"))
    machine.run(17_000)  # the timer is armed, its interrupt enabled
    machine.clint.mtimecmp = 1 << 59
    machine.halted = True  # in wfi
    result = machine.run(machine.icount + 10)
    assert result.kind == RunKind.IDLE_FOREVER
    machine.restore_state(machine.save_state())  # raised FieldError


def test_two_uart_stores_in_one_block_are_both_shown(caplog: pytest.LogCaptureFixture) -> None:
    """Bytes were stamped with the icount at the end of their translation block: two stores in one block got
    the same stamp, so the second was never shown and the server logged "replay diverged: UART output ...
    differs from the first run" about its own live history, again at every replay through it."""
    timeline, target, shown = _live("hello", 16_000)
    lui_t0_uart, sb_t1_t0, loop = 0x100002B7, 0x00628023, 0x0000006F
    code = [lui_t0_uart, ord("A") << 20 | 6 << 7 | 0x13, sb_t1_t0, ord("B") << 20 | 6 << 7 | 0x13, sb_t1_t0, loop]
    target.write_memory(0x8010_0000, b"".join(_word(w) for w in code))
    target.write_register(32, _word(0x8010_0000))
    caplog.set_level(logging.ERROR)
    timeline.run_forward(until=timeline.icount + 10)
    assert shown.endswith(b"AB")
    timeline.seek(timeline.start)
    timeline.run_forward(until=timeline.end)  # a replay through it: nothing new, nothing different
    assert shown.endswith(b"AB") and shown.count(b"AB") == 1
    assert not caplog.records
