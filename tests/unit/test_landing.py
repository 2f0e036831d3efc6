"""Landing on a trap's handler going backward, and a Cortex-M state with EPSR.T clear restored by a seek.

On Cortex-M, a branch to an even address retires into a state with EPSR.T clear; the INVSTATE UsageFault
(escalated to HardFault) is taken before the next instruction. Unicorn reports it only at the branch, so a
state restored there (a seek, a snapshot) must raise it itself, or execution would go on in Thumb and history
would differ from the run that recorded it.
"""

from __future__ import annotations

from pathlib import Path

from unicorn import arm_const

from machine.factory import make_machine
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.results import RunKind
from replay.history import HistoryInputs
from replay.store import SnapshotStore
from replay.timeline import Timeline

GUEST = Path(__file__).resolve().parents[1] / "guests/cortexm/build/hardfault.elf"


def _timeline() -> tuple[Timeline, int]:
    image = load_image(str(GUEST))
    inputs = HistoryInputs([], 0, ScriptedInputs())
    machine = make_machine(image, inputs, lambda byte: None)
    return Timeline(machine, inputs, SnapshotStore()), image.symbols["HardFault_Handler"] & ~1


def _hits(timeline: Timeline, handler: int, until: int) -> list[tuple[int, int, str]]:
    timeline.add_breakpoint(handler)
    hits = []
    while True:
        result = timeline.run_forward(until=until)
        if result.kind != RunKind.BREAKPOINT:
            break
        hits.append((result.icount, result.pc, timeline.machine.digest()))
    timeline.remove_breakpoint(handler)
    return hits


def test_reverse_continue_lands_in_a_fault_handler_entered_at_the_hit() -> None:
    timeline, handler = _timeline()
    end = timeline.run_forward().icount  # the guest exits
    timeline.seek(0)
    forward = _hits(timeline, handler, end)
    assert len(forward) == 2  # the two faults of the guest
    timeline.seek(end)
    timeline.add_breakpoint(handler)
    for icount, pc, digest in reversed(forward):
        result = timeline.continue_backward()
        assert (result.kind, result.icount, result.pc) == (RunKind.BREAKPOINT, icount, pc)
        assert timeline.machine.pc == handler and timeline.machine.digest() == digest


def test_a_seek_into_the_arm_state_takes_the_fault_as_the_recorded_run_did() -> None:
    timeline, handler = _timeline()
    end = timeline.run_forward().icount
    timeline.seek(0)
    second = _hits(timeline, handler, end)[1][0]
    timeline.seek(second + 50)
    later = timeline.machine.digest()
    # From a fresh restore of the state before the fault is entered (EPSR.T clear), forward again.
    other, _ = _timeline()
    other.run_forward(until=second)
    other.store.add(other.snapshot())
    other.run_forward(until=second + 10)
    other.seek(second)
    assert not other.machine.uc.reg_read(arm_const.UC_ARM_REG_XPSR) & (1 << 24)
    other.run_forward(until=second + 50)
    assert other.machine.digest() == later
