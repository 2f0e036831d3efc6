"""Debugger writes in a live history (issue 11, defect 7): the history never diverges from itself.

Random register and memory writes (``P``/``G``/``M``, a jump, a few instructions patched into RAM and run) at
the live end, between forward and backward steps and continues and seeks anywhere in history, on the timeline
``chronicorn serve`` builds (its UART output shown once along the timeline). The timeline must never raise
ReplayDivergence nor log a divergence, and the history saved as a recording (``monitor record save``) must
replay to the very state the live run reached, printing exactly what the live run showed.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdbstub.cli.timelines import uart_output
from gdbstub.target import ResumeAction, TargetError, TimelineTarget
from machine.arch.riscv_regs import FIRST_CSR, FIRST_FPR
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import Machine
from machine.results import RunKind
from replay.history import HistoryInputs
from replay.recording import load_recording, make_header
from replay.saver import history_inputs, open_recording, save_timeline
from replay.store import SnapshotStore
from replay.timeline import Timeline
from tests.conftest import guest

GUEST = guest("rv32", "cmdint")  # a 1 ms timer and UART receive interrupts through the PLIC
SCHEDULE = [(17_000 + 1_500 * i, line) for i, line in enumerate([b"sample\n", b"scale 3\n", b"sample\n",
                                                                 b"wait 1\n", b"report\n"] * 4)]  # fmt: skip
BOOTED = 16_500  # icount by which cmdint has set up its devices
CODE = (0x8000_0000, 0x8000_0800)  # cmdint's text (breakpoints, jumps)
DATA = (0x8000_1000, 0x8000_5200)  # its data, ring buffer and stack
SCRATCH = 0x8010_0000  # RAM it never uses
MSTATUS, MIE, MSCRATCH = FIRST_CSR + 0x300, FIRST_CSR + 0x304, FIRST_CSR + 0x340
FFLAGS, FRM, FCSR = FIRST_CSR + 1, FIRST_CSR + 2, FIRST_CSR + 3
REGISTERS = (5, 6, 7, 10, 11, 12, 15, 28, 31, 32, FIRST_FPR, FIRST_FPR + 7, FFLAGS, FRM, FCSR, MSTATUS, MIE, MSCRATCH)

Op = tuple[str, int, int]


class World:
    """A live ``serve`` timeline (periodic snapshots close together) behind the target gdb talks to."""

    def __init__(self) -> None:
        image = load_image(GUEST)
        self.inputs = HistoryInputs([], 0, ScriptedInputs(schedule=list(SCHEDULE)))
        self.shown = bytearray()  # what the server prints: each byte of UART output once along the timeline
        tx, bind = uart_output(self.shown.append)
        self.machine = Machine(image, self.inputs, tx)
        bind(self.machine)
        self.timeline = Timeline(self.machine, self.inputs, SnapshotStore(), interval=4096)
        self.timeline.min_gap = 512
        self.target = TimelineTarget(self.timeline)
        self.header = make_header(image, self.machine.arch.name, self.machine.config.ram_size, 3, "off", {})
        self.timeline.run_forward(until=BOOTED)

    def apply(self, op: Op) -> None:
        kind, a, b = op
        t = self.timeline
        if kind == "forward":
            t.run_forward(until=t.icount + a)
        elif kind == "step":
            t.run_forward(step=True)
        elif kind == "back":
            for _ in range(1 + a % 3):
                t.step_backward()
        elif kind in ("continue", "reverse-continue"):
            addr = CODE[0] + 2 * (a % ((CODE[1] - CODE[0]) // 2))
            t.add_breakpoint(addr)
            try:
                if kind == "continue":
                    t.run_forward(until=t.icount + 5_000)
                else:
                    t.continue_backward()
            finally:
                t.remove_breakpoint(addr)
        elif kind == "seek":
            t.seek(t.start + (t.end - t.start) * a // 1000)
        elif kind == "end":
            t.seek(t.end)
        else:
            with contextlib.suppress(TargetError):  # inside history, or a value it cannot take: nothing written
                self.write(kind, a, b)

    def write(self, kind: str, a: int, b: int) -> None:
        target, machine = self.target, self.machine
        if kind == "register":
            regnum = REGISTERS[a % len(REGISTERS)]
            size = len(machine.registers.read(regnum))
            if regnum == 32:  # pc: where it is, or an instruction or two further
                value = machine.pc + 2 * (b % 3)
            elif regnum == MSTATUS:
                value = machine.registers.read_value(regnum) ^ (b & 0x6000)  # the FPU on or off
            else:
                value = b
            target.write_register(regnum, (value & ((1 << 8 * size) - 1)).to_bytes(size, "little"))
        elif kind == "registers":  # 'G' of what 'g' read, as gdb writes them back
            target.write_registers(machine.registers.read_all())
        elif kind == "memory":
            base, size = (DATA[0], DATA[1] - DATA[0]) if a % 2 else (SCRATCH, 0x1000)
            target.write_memory(base + b % (size - 4), (b * 2654435761 & 0xFFFFFFFF).to_bytes(4, "little"))
        elif kind == "jump":  # 's ADDR' to where it is or one instruction on
            target.resume(ResumeAction.STEP, lambda: False, machine.pc + 2 * (a % 3))
        elif kind == "patch":  # a few instructions written to RAM, then run (gdb's 'call', or a hot patch)
            code = _patch(a, b)
            target.write_memory(SCRATCH + 0x800, code)
            target.write_register(32, (SCRATCH + 0x800).to_bytes(4, "little"))


# rv32 instructions: t0 = the UART, t1 = a letter, a store of t1 to the UART's transmit register, a nop
LUI_T0_UART, SB_T1_T0, NOP = 0x100002B7, 0x00628023, 0x00000013


def _patch(a: int, b: int) -> bytes:
    """t0 = UART; then up to 8 of (t1 = letter, print t1, nop) chosen by ``b``'s bits; then loop back."""
    body = [LUI_T0_UART]
    for i in range(2 + a % 7):
        choice = (b >> (2 * i)) & 3
        body.append(((ord("A") + i) << 20 | 6 << 7 | 0x13) if choice == 0 else NOP if choice == 3 else SB_T1_T0)
    back = -4 * (len(body) - 1)  # jal x0, back to the first instruction after the lui
    imm = back & 0x1FFFFF
    jal = (imm >> 20 & 1) << 31 | (imm >> 1 & 0x3FF) << 21 | (imm >> 11 & 1) << 20 | (imm >> 12 & 0xFF) << 12 | 0x6F
    return b"".join(word.to_bytes(4, "little") for word in [*body, jal])


OPS = st.one_of(
    st.tuples(st.just("forward"), st.integers(1, 4_000), st.just(0)),
    st.tuples(st.sampled_from(["step", "back", "end"]), st.integers(0, 5), st.just(0)),
    st.tuples(st.sampled_from(["continue", "reverse-continue"]), st.integers(0, 1 << 16), st.just(0)),
    st.tuples(st.just("seek"), st.integers(0, 1000), st.just(0)),
    st.tuples(st.sampled_from(["register", "registers", "memory", "jump", "patch"]), st.integers(0, 1 << 16),
              st.integers(0, (1 << 32) - 1)),
)  # fmt: skip


def check_history(ops: list[Op], tmp_path: Path) -> None:
    world = World()
    for op in ops:
        world.apply(op)  # ReplayDivergence would propagate
    t = world.timeline
    t.seek(t.end)
    ended = t.run_forward(until=t.end + 3_000).kind != RunKind.LIMIT  # a live end reached by running
    live = (t.icount, world.machine.digest())
    t.seek(t.start)
    t.seek(t.end)
    if ended:  # the guest ended by itself (idling for ever, a fault, an exit): it does so again from here
        t.run_forward()
    assert (t.icount, world.machine.digest()) == live, "the live history replays differently in its own process"
    path = save_timeline(t, world.header, tmp_path, "h.chrec", overwrite=True)
    loaded = load_recording(io.BytesIO(path.read_bytes()))
    inputs = history_inputs(loaded)
    printed = bytearray()
    machine = Machine(load_image(GUEST), inputs, printed.append)
    replayed = open_recording(loaded, machine, inputs, periodic_snapshots=False)
    replayed.replay_to_end()
    assert (machine.icount, machine.digest()) == live, "the saved recording replays differently"
    assert bytes(printed) == bytes(world.shown), "the server did not show the output the history holds"


@pytest.mark.slow
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(ops=st.lists(OPS, min_size=5, max_size=40))
def test_random_writes_and_moves_keep_the_history_replayable(ops: list[Op], tmp_path_factory) -> None:  # noqa: ANN001
    """No divergence while moving, and the saved history replays to the live end state."""
    errors: list[str] = []
    handler = _ErrorLog(errors)
    logging.getLogger().addHandler(handler)
    try:
        check_history(ops, tmp_path_factory.mktemp("history"))
    finally:
        logging.getLogger().removeHandler(handler)
    assert not errors, errors


class _ErrorLog(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


def test_the_shortest_history_the_property_found_replays(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Code patched in at the live end prints two letters from one translation block. Before the fix both
    bytes were stamped with the block's end icount: the second was never shown and the server logged "replay
    diverged: UART output 0x42 at icount N differs from the first run" for its own history (then at every
    replay through it, which is how a fuzz run piled up thousands)."""
    caplog.set_level(logging.ERROR)
    ops: list[Op] = [("forward", 1, 0)] * 4 + [("seek", 997, 0), ("forward", 412, 0), ("patch", 3, 48238)]
    check_history(ops, tmp_path)
    assert not caplog.records
