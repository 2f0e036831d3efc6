"""The Target seam the session drives, and its implementation over a live machine.

Execution is synchronous: :meth:`Target.resume` returns a stop value when the
machine stops; long runs poll ``interrupted()`` so Ctrl-C (0x03) stops them.
Optional capabilities return None when absent, so ``qSupported`` advertises
only what the target really implements.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from machine.arch.riscv_regs import RegisterError, target_xml
from machine.engine import Cause
from machine.machine import Machine
from machine.results import RunKind, RunResult
from machine.watch import WatchKind as MachineWatch

from .rsp.stops import SIGILL, SIGINT, SIGSEGV, SIGTRAP, Breakpoint, Exited, Signal, Stop, WatchKind, Watchpoint

log = logging.getLogger(__name__)


class TargetError(Exception):
    """A request the target refuses; ``errno`` becomes the ``Exx`` reply."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno


EINVAL, EFAULT, EACCES = 0x16, 0x0E, 0x0D


class ResumeAction(enum.Enum):
    CONTINUE = "continue"
    STEP = "step"


class Breakpoints(Protocol):
    """Capability: ``Z0``/``Z1`` breakpoints that never touch guest memory."""

    def add(self, addr: int, hardware: bool = False) -> None: ...

    def remove(self, addr: int, hardware: bool = False) -> None: ...


class Watchpoints(Protocol):
    """Capability: ``Z2``/``Z3``/``Z4`` write, read and access watchpoints of any length."""

    def add(self, kind: WatchKind, addr: int, length: int) -> None: ...

    def remove(self, kind: WatchKind, addr: int, length: int) -> None: ...


class Target(Protocol):
    """What the session needs from whatever it debugs."""

    def read_registers(self) -> bytes: ...

    def write_registers(self, data: bytes) -> None: ...

    def read_register(self, regnum: int) -> bytes: ...

    def write_register(self, regnum: int, data: bytes) -> None: ...

    def read_memory(self, addr: int, length: int) -> bytes: ...

    def write_memory(self, addr: int, data: bytes) -> None: ...

    def resume(self, action: ResumeAction, interrupted: Callable[[], bool], addr: int | None = None) -> Stop:
        """Continue or step (from ``addr`` when given) until the next stop."""
        ...

    def last_stop(self) -> Stop: ...

    def breakpoints(self) -> Breakpoints | None: ...

    def watchpoints(self) -> Watchpoints | None: ...

    def description(self) -> str | None:
        """The target description XML, or None."""
        ...

    def memory_map(self) -> str | None: ...

    def monitor(self, command: str) -> str:
        """Run a ``monitor`` command; returns the text to show (raises TargetError)."""
        ...

    def release_debug_state(self) -> None:
        """The client left: remove every breakpoint and watchpoint it inserted."""
        ...


@dataclass
class _MachineBreakpoints:
    """Both kinds are the same code hook; the kind is kept for the stop reply (swbreak/hwbreak)."""

    machine: Machine
    inserted: dict[int, set[bool]] = field(default_factory=dict)  # addr -> {hardware?}

    def add(self, addr: int, hardware: bool = False) -> None:
        if not 0 <= addr <= self.machine.arch.mask:
            raise TargetError(EINVAL, f"no instruction at {addr:#x}")
        self.machine.add_breakpoint(addr)
        self.inserted.setdefault(addr, set()).add(hardware)

    def remove(self, addr: int, hardware: bool = False) -> None:
        kinds = self.inserted.get(addr, set())
        kinds.discard(hardware)
        if not kinds:
            self.inserted.pop(addr, None)
            self.machine.remove_breakpoint(addr)

    def is_hardware(self, addr: int) -> bool:
        return self.inserted.get(addr) == {True}

    def clear(self) -> None:
        for addr in list(self.inserted):
            self.machine.remove_breakpoint(addr)
        self.inserted.clear()


@dataclass
class _MachineWatchpoints:
    machine: Machine

    def add(self, kind: WatchKind, addr: int, length: int) -> None:
        if not 0 <= addr <= addr + length - 1 <= self.machine.arch.mask:
            raise TargetError(EINVAL, f"cannot watch {length} bytes at {addr:#x}")
        self.machine.add_watchpoint(_MACHINE_WATCH[kind], addr, length)

    def remove(self, kind: WatchKind, addr: int, length: int) -> None:
        self.machine.remove_watchpoint(_MACHINE_WATCH[kind], addr, length)

    def clear(self) -> None:
        self.machine.engine.watchpoints.clear()


_MACHINE_WATCH = {WatchKind.WRITE: MachineWatch.WRITE, WatchKind.READ: MachineWatch.READ,
                  WatchKind.ACCESS: MachineWatch.ACCESS}  # fmt: skip
_RSP_WATCH = {machine_kind: rsp_kind for rsp_kind, machine_kind in _MACHINE_WATCH.items()}


FAULT_SIGNALS = {
    Cause.ILLEGAL_INSTRUCTION: SIGILL,
    Cause.BREAKPOINT: SIGTRAP,
    Cause.ECALL: SIGTRAP,
}


def stop_for(result: RunResult) -> Stop:
    """The gdb stop reason for a machine stop."""
    if result.kind == RunKind.BREAKPOINT:
        return Breakpoint()
    if result.kind == RunKind.WATCHPOINT and result.watch_kind is not None:
        return Watchpoint(_RSP_WATCH[result.watch_kind], result.fault_addr)
    if result.kind == RunKind.EXITED:
        return Exited(result.exit_code or 0)
    if result.kind == RunKind.RESET:  # machine reset is not modelled: the run ends there
        log.warning("the guest asked for a reset (0x7777): not supported, reported as exit 0")
        return Exited(0)
    if result.kind == RunKind.FAULT:
        return Signal(FAULT_SIGNALS.get(result.cause, SIGSEGV) if result.cause else SIGSEGV)
    if result.kind == RunKind.INTERRUPTED:
        return Signal(SIGINT)
    return Signal(SIGTRAP)  # a completed step, or an idle/reset guest stopped for the user


class MachineTarget:
    """A live :class:`Machine` behind the Target seam (forward execution only)."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self._last: Stop = Signal(SIGTRAP)
        self._breakpoints = _MachineBreakpoints(machine)
        self._watchpoints = _MachineWatchpoints(machine)

    # -- registers and memory ------------------------------------------------
    def read_registers(self) -> bytes:
        return self.machine.registers.read_all()

    def write_registers(self, data: bytes) -> None:
        self._registers_call(self.machine.registers.write_all, data)

    def read_register(self, regnum: int) -> bytes:
        try:
            return self.machine.registers.read(regnum)
        except RegisterError as exc:
            raise TargetError(EINVAL, str(exc)) from None

    def write_register(self, regnum: int, data: bytes) -> None:
        self._registers_call(self.machine.registers.write, regnum, data)

    def _registers_call(self, fn: Callable[..., None], *args: object) -> None:
        try:
            fn(*args)
        except RegisterError as exc:
            raise TargetError(EINVAL, str(exc)) from None

    def read_memory(self, addr: int, length: int) -> bytes:
        try:
            return self.machine.memory.read(addr, length)
        except MemoryError as exc:
            raise TargetError(EFAULT, str(exc)) from None

    def write_memory(self, addr: int, data: bytes) -> None:
        try:
            self.machine.memory.write(addr, data)
        except MemoryError as exc:
            raise TargetError(EACCES, str(exc)) from None

    # -- execution -------------------------------------------------------------
    def resume(self, action: ResumeAction, interrupted: Callable[[], bool], addr: int | None = None) -> Stop:
        if isinstance(self._last, Exited):
            return self._last  # an exited guest stays exited until the server restarts it
        if addr is not None:  # 'c ADDR' / 's ADDR': resume at ADDR
            self._check_address(addr)
            self.machine.engine.pc = addr
        limit = self.machine.icount + 1 if action == ResumeAction.STEP else None
        result = self.machine.run(limit, interrupted)
        log.debug("stopped: %s", result.describe())
        self._last = stop_for(result)
        if result.kind == RunKind.BREAKPOINT and self._breakpoints.is_hardware(result.pc):
            self._last = Breakpoint(hardware=True)
        return self._last

    def last_stop(self) -> Stop:
        return self._last

    # -- capabilities ------------------------------------------------------------
    def breakpoints(self) -> Breakpoints | None:
        return self._breakpoints

    def _check_address(self, addr: int) -> None:
        if not 0 <= addr <= self.machine.arch.mask:
            raise TargetError(EINVAL, f"address {addr:#x} does not fit a {self.machine.arch.xlen}-bit hart")

    def release_debug_state(self) -> None:
        self._breakpoints.clear()
        self._watchpoints.clear()

    def watchpoints(self) -> Watchpoints | None:
        return self._watchpoints

    def description(self) -> str | None:
        return target_xml(self.machine.arch)

    def memory_map(self) -> str | None:
        return self.machine.memory.memory_map_xml()

    def monitor(self, command: str) -> str:
        words = command.split()
        if not words or words[0] == "help":
            return (
                "chronicorn monitor commands:\n"
                "  help     this text\n"
                "  icount   instructions retired since reset\n"
                "  info     the machine: architecture, board, RAM, icount shift, image\n"
            )
        if words[0] == "icount":
            return f"{self.machine.icount}\n"
        if words[0] == "info":
            m = self.machine
            return (
                f"architecture: {m.arch.name}\nboard: virt\nRAM: {m.config.ram_size // (1 << 20)} MiB at 0x80000000\n"
                f"icount shift: {m.config.icount_shift}\nicount: {m.icount}\npc: {m.pc:#x}\n"
                f"image: {m.image.path} (sha256 {m.image.sha256[:16]}...)\n"
                f"icount counter: {'native' if m.counter.is_native else 'pure Python'}\n"
            )
        raise TargetError(EINVAL, f"unknown monitor command {words[0]!r} (try: monitor help)")
