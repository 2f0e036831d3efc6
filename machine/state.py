"""Capture and restore the whole machine at an instruction boundary (the basis of snapshots).

A :class:`MachineState` holds the CPU context (Unicorn's, which includes the
CSRs and privilege level), the non-zero RAM chunks, the devices' state and the
board's own bookkeeping (icount, virtual-clock bias, emulated CSR state,
interrupt lines, idle/exit flags). Restoring one and running forward gives the
same states as the original run did (a test proves it).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from unicorn.unicorn_py3.unicorn import UcContext

from .devices.base import load_device, save_device
from .ram import PageTable

if TYPE_CHECKING:
    from .machine import Machine

RAM_CHUNK = 1 << 16  # for digests
DIGEST_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class MachineState:
    """Everything needed to resume the machine exactly where it was."""

    icount: int
    context: UcContext
    ram: PageTable  # shares unchanged pages with the states captured before it
    devices: tuple[tuple[str, dict[str, object]], ...]
    board: tuple[tuple[str, object], ...]  # machine and hart bookkeeping

    @property
    def ram_bytes(self) -> int:
        return self.ram.ram_bytes


def nonzero_chunks(ram: object, size: int, chunk: int = RAM_CHUNK) -> tuple[tuple[int, bytes], ...]:
    """The RAM chunks that hold anything but zeros (a fresh 128 MiB is mostly zeros).

    Slicing the mmap copies, and comparing bytes is a memcmp (memoryview comparison is element-wise, slow).
    """
    zero = bytes(chunk)
    chunks = []
    for offset in range(0, size, chunk):
        data = ram[offset : offset + chunk]  # type: ignore[index]
        if data != zero[: len(data)]:
            chunks.append((offset, data))
    return tuple(chunks)


# Board bookkeeping outside Unicorn, by owner: restored field by field.
_BOARD_FIELDS = ("halted", "exit_code", "reset_requested", "_plic_out", "_msip", "_last_watch_stop")
_HART_FIELDS = ("mip_soft", "mcycle_offset", "minstret_offset")


def capture(machine: Machine) -> MachineState:
    """The whole machine now (between instructions)."""
    board = [(f"machine.{n}", copy.deepcopy(getattr(machine, n))) for n in _BOARD_FIELDS]
    board += [(f"hart.{n}", getattr(machine.hart, n)) for n in _HART_FIELDS]
    board.append(("clock.bias_ns", machine.clock.bias_ns))
    devices = tuple((name, save_device(device)) for name, device in sorted(machine.devices.items()))
    return MachineState(machine.icount, machine.uc.context_save(), machine.ram_pages.capture(), devices, tuple(board))


def restore(machine: Machine, state: MachineState) -> None:
    """Put a captured state back; breakpoints and watchpoints stay as they are."""
    machine.ram_pages.restore(state.ram)
    machine.uc.context_restore(state.context)
    machine.engine.icount = state.icount
    owners = {"machine": machine, "hart": machine.hart, "clock": machine.clock}
    for key, value in state.board:
        owner, name = key.split(".")
        setattr(owners[owner], name, copy.deepcopy(value))
    for name, saved in state.devices:
        load_device(machine.devices[name], saved)
    # RAM (and so code) may have changed under Unicorn's translations and our block counts.
    machine.uc.ctl_flush_tb()
    machine.engine.forget_code()


def state_digest(machine: Machine) -> str:
    """SHA-256 of everything guest-visible: registers, CSRs, RAM, devices, clock."""
    h = hashlib.sha256()
    values = (*machine.hart.registers(), *machine.hart.digest_csrs(), machine.icount, machine.clock.bias_ns,
              int(machine.halted))  # fmt: skip
    for value in values:
        h.update(value.to_bytes(16, "little", signed=True))
    for offset, data in nonzero_chunks(machine.ram, len(machine.ram), DIGEST_CHUNK):
        h.update(offset.to_bytes(8, "little"))
        h.update(data)
    for name, device in sorted(machine.devices.items()):
        h.update(name.encode())
        h.update(device.state())
    return h.hexdigest()
