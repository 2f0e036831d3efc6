"""gdbstub/client.py: the client's stop reasons map onto the server's one stop vocabulary (RunKind)."""

from __future__ import annotations

import pytest

from gdbstub.client import StopReason
from machine.results import RunKind


@pytest.mark.parametrize(
    ("reason", "reverse", "kind"),
    [
        (StopReason.BREAKPOINT, False, RunKind.BREAKPOINT),
        (StopReason.ACCESS_WATCHPOINT, True, RunKind.WATCHPOINT),
        (StopReason.NO_HISTORY, True, RunKind.HISTORY_BEGIN),
        (StopReason.NO_HISTORY, False, RunKind.HISTORY_END),
        (StopReason.SIGNAL, False, RunKind.INTERRUPTED),
        (StopReason.EXITED, False, RunKind.EXITED),
        (StopReason.END_STEPPING, True, RunKind.LIMIT),
        (StopReason.FUNCTION_FINISHED, False, RunKind.LIMIT),
    ],
)
def test_every_mi_reason_is_a_run_kind(reason: StopReason, reverse: bool, kind: RunKind) -> None:
    assert reason.run_kind(reverse) == kind


def test_no_reason_is_left_unmapped_by_accident() -> None:
    kinds = {reason: reason.run_kind() for reason in StopReason}
    assert set(kinds.values()) <= set(RunKind)
    assert [r for r, k in kinds.items() if k == RunKind.LIMIT] == [
        StopReason.END_STEPPING, StopReason.FUNCTION_FINISHED, StopReason.LOCATION_REACHED, StopReason.OTHER,
    ]  # fmt: skip
