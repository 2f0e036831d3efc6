"""Capture and restore the whole machine at an instruction boundary (the basis of snapshots).

A :class:`MachineState` holds the CPU as Unicorn's context (fast to take and put
back: snapshots cost ~0.2 ms), the non-zero RAM pages, each device's own frozen
state dataclass and the board's bookkeeping (:class:`BoardState`). Restoring one
and running forward gives the same states as the original run did (a test
proves it). Nothing is saved by attribute name: every field is declared.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH
from unicorn.unicorn_py3.unicorn import UcContext

from .arch.riscv import SOFTWARE_WRITABLE_MIP
from .devices.plic import NUM_CONTEXTS
from .fields import Bool, Int, Optional, Tuple, check_fields, encode_fields, spec
from .ram import PageTable

if TYPE_CHECKING:
    from .machine import Machine

DIGEST_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class BoardState:
    """The board's bookkeeping outside Unicorn and the devices: machine, hart and clock fields.

    Field by field, where it lives: :data:`BOARD_ATTRIBUTES`.
    """

    VERSION: ClassVar[int] = 1
    halted: bool = spec(Bool())  # in wfi
    exit_code: int | None = spec(Optional(Int(16)))  # the guest wrote to the test finisher
    reset_requested: bool = spec(Bool())
    plic_out: tuple[bool, ...] = spec(Tuple(NUM_CONTEXTS, Bool()))  # the PLIC's outputs, per context
    msip: bool = spec(Bool())  # the CLINT's software interrupt line
    last_watch_stop: tuple[int, int] | None = spec(Optional(Tuple(2, Int(64))))  # (icount, pc) reported
    mip_soft: int = spec(Int(64, mask=SOFTWARE_WRITABLE_MIP))
    mcycle_offset: int = spec(Int(128, signed=True))
    minstret_offset: int = spec(Int(128, signed=True))
    bias_ns: int = spec(Int(64))  # the virtual clock's idle warps


BOARD_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "halted": ("machine", "halted"),
    "exit_code": ("machine", "exit_code"),
    "reset_requested": ("machine", "reset_requested"),
    "plic_out": ("machine", "_plic_out"),
    "msip": ("machine", "_msip"),
    "last_watch_stop": ("machine", "_last_watch_stop"),
    "mip_soft": ("hart", "mip_soft"),
    "mcycle_offset": ("hart", "mcycle_offset"),
    "minstret_offset": ("hart", "minstret_offset"),
    "bias_ns": ("clock", "bias_ns"),
}
"""BoardState field -> (owner, attribute): the test that every board attribute is saved reads this."""


@dataclass(frozen=True, slots=True)
class MachineState:
    """Everything needed to resume the machine exactly where it was."""

    icount: int
    context: UcContext  # Unicorn's own (uc.context_save()): fast
    ram: PageTable  # shares unchanged pages with the states captured before it
    devices: tuple[tuple[str, Any], ...]  # (name, the device's frozen state), by name
    board: BoardState

    @property
    def ram_bytes(self) -> int:
        return self.ram.ram_bytes


def capture_board(machine: Machine) -> BoardState:
    hart = machine.hart
    return BoardState(
        machine.halted, machine.exit_code, machine.reset_requested, tuple(machine._plic_out), machine._msip,
        machine._last_watch_stop, hart.mip_soft, hart.mcycle_offset, hart.minstret_offset, machine.clock.bias_ns,
    )  # fmt: skip


def restore_board(machine: Machine, board: BoardState) -> None:
    """Put the board's bookkeeping back (``board`` is valid: see :func:`restore`)."""
    machine.halted, machine.exit_code, machine.reset_requested = board.halted, board.exit_code, board.reset_requested
    machine._plic_out, machine._msip = list(board.plic_out), board.msip
    machine._last_watch_stop = board.last_watch_stop
    hart = machine.hart
    hart.mip_soft, hart.mcycle_offset, hart.minstret_offset = board.mip_soft, board.mcycle_offset, board.minstret_offset
    machine.clock.bias_ns = board.bias_ns


def capture(machine: Machine) -> MachineState:
    """The whole machine now (between instructions)."""
    devices = tuple((name, device.save()) for name, device in sorted(machine.devices.items()))
    return MachineState(machine.icount, machine.uc.context_save(), machine.ram_pages.capture(), devices,
                        capture_board(machine))  # fmt: skip


def restore(machine: Machine, state: MachineState) -> None:
    """Put a captured state back; breakpoints and watchpoints stay as they are.

    An invalid state (FieldError, TypeError, KeyError: only ever built by hand, :func:`capture` and
    :func:`decode_state` give valid ones) is refused with the machine unchanged.
    """
    if {name for name, _ in state.devices} != machine.devices.keys():
        raise KeyError(f"devices {sorted(n for n, _ in state.devices)}, the machine has {sorted(machine.devices)}")
    if type(state.board) is not BoardState:
        raise TypeError(f"BoardState expected, got {type(state.board).__name__}")
    check_fields(state.board)
    _load_devices(machine, state.devices)
    machine.ram_pages.restore(state.ram)
    machine.uc.context_restore(state.context)
    # Unicorn keeps its TLB across context_restore and TB flushes: entries of the state we leave would
    # translate addresses for the restored one (its page tables may differ). Flushing costs ~3 us.
    machine.uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)
    machine.engine.icount = state.icount
    restore_board(machine, state.board)
    # RAM (and so code) may have changed under Unicorn's translations and our block counts.
    machine.uc.ctl_flush_tb()
    machine.engine.forget_code()


def _load_devices(machine: Machine, states: tuple[tuple[str, Any], ...]) -> None:
    """Each device takes its state (each validates it), or, if one refuses, all keep their own."""
    previous = [(device, device.save()) for device in machine.devices.values()]
    try:
        for name, saved in states:
            machine.devices[name].load(saved)
    except Exception:
        for device, own in previous:
            device.load(own)
        raise


def state_digest(machine: Machine) -> str:
    """SHA-256 of everything guest-visible: registers, CSRs, RAM, devices, clock."""
    h = hashlib.sha256()
    values = (*machine.hart.registers(), *machine.hart.digest_csrs(), machine.icount, machine.clock.bias_ns,
              int(machine.halted))  # fmt: skip
    for value in values:
        h.update(value.to_bytes(16, "little", signed=True))
    ram, zero = machine.ram, bytes(DIGEST_CHUNK)
    for offset in range(0, len(ram), DIGEST_CHUNK):
        data = ram[offset : offset + DIGEST_CHUNK]  # a copy; comparing bytes is a memcmp
        if data != zero[: len(data)]:
            h.update(offset.to_bytes(8, "little"))
            h.update(data)
    for name, device in sorted(machine.devices.items()):
        h.update(name.encode())
        h.update(encode_fields(device.save()))
    return h.hexdigest()
