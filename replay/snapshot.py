"""Snapshots: the whole machine plus the log position, keyed by icount (QEMU's replay snapshots).

Restoring a snapshot puts the machine back exactly as it was and repositions the
event log, so running forward from it replays the same inputs at the same icounts.
"""

from __future__ import annotations

from dataclasses import dataclass

from machine.machine import Machine
from machine.state import MachineState


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The machine at ``icount`` and the index of the next event to replay from there."""

    state: MachineState
    log_position: int

    @property
    def icount(self) -> int:
        return self.state.icount


def take_snapshot(machine: Machine, log_position: int) -> Snapshot:
    """The machine now (between instructions); RAM pages unchanged since the last one are shared."""
    return Snapshot(machine.save_state(), log_position)


def restore_snapshot(machine: Machine, snapshot: Snapshot) -> int:
    """Put the machine back; returns the log position to replay from."""
    machine.restore_state(snapshot.state)
    return snapshot.log_position
