"""Run a machine while recording or replaying: verification points every VERIFY_INTERVAL instructions."""

from __future__ import annotations

from collections.abc import Callable

from machine.machine import Machine
from machine.results import RunKind, RunResult
from machine.state import MachineState

from .events import EndReason
from .recorder import Recorder
from .recording import registers_digest
from .replayer import ReplayDivergence, Replayer

VERIFY_INTERVAL = 1 << 20

END_REASONS = {
    RunKind.EXITED: EndReason.GUEST_EXIT,
    RunKind.LIMIT: EndReason.ICOUNT_LIMIT,
    RunKind.INTERRUPTED: EndReason.USER_STOP,
    RunKind.RESET: EndReason.GUEST_RESET,
    RunKind.IDLE_FOREVER: EndReason.IDLE_FOREVER,
    RunKind.FAULT: EndReason.GUEST_FAULT,
}


def record_run(machine: Machine, recorder: Recorder, max_icount: int | None,
               interrupted: Callable[[], bool] | None = None) -> RunResult:  # fmt: skip
    """Run to the end, logging a verification point every VERIFY_INTERVAL instructions."""
    while True:
        target = (machine.icount // VERIFY_INTERVAL + 1) * VERIFY_INTERVAL
        if max_icount is not None:
            target = min(target, max_icount)
        result = machine.run(target, interrupted)
        if result.kind != RunKind.LIMIT or result.icount == max_icount:
            break
        recorder.verify(result.icount, registers_digest(machine))
    recorder.finish(result.icount, END_REASONS[result.kind], result.exit_code or 0)
    return result


def replay_run(machine: Machine, replayer: Replayer, interrupted: Callable[[], bool] | None = None,
               progress: Callable[[int, int], None] | None = None,
               keyframes: dict[int, tuple[MachineState, int]] | None = None) -> RunResult:  # fmt: skip
    """Replay to the recording's end, checking every verification point; ``progress(icount, end)`` at each.

    ``keyframes`` (icount -> state, log position): states after debugger writes, put in place on arrival.
    """
    end = replayer.end
    keyframes = keyframes or {}
    # A recording cut by the user or an icount limit stops there; one that ended by itself
    # (exit, fault, idling forever) must end the same way again.
    stops_by_itself = end is not None and end.reason not in (EndReason.USER_STOP, EndReason.ICOUNT_LIMIT)
    limit = None if end is None or stops_by_itself else end.icount
    digests = dict(replayer.verify_points)
    for icount in sorted({*digests, *keyframes}):
        result = machine.run(icount, interrupted, resume=False)
        if result.kind != RunKind.LIMIT:
            raise ReplayDivergence(
                result.icount, f"the guest stopped ({result.describe()}) before a verification point"
            )
        if progress is not None and end is not None:
            progress(icount, end.icount)
        if icount in keyframes:
            state, replayer.position = keyframes[icount]
            machine.restore_state(state)
        actual = registers_digest(machine)
        if icount in digests and actual != digests[icount]:
            raise ReplayDivergence(icount, f"register digest {actual.hex()} differs from the recorded "
                                           f"{digests[icount].hex()} (pc {machine.pc:#x})")  # fmt: skip
    return machine.run(limit, interrupted, resume=False)
