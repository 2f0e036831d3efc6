"""How a run of the machine ends: values, no behaviour."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .engine import Cause, EngineError
from .watch import WatchKind

__all__ = ["Cause", "EngineError", "RunKind", "RunResult", "WatchKind"]  # what runs end with, and why


class RunKind(enum.IntEnum):
    """How a run ended: the one stop vocabulary, from the machine to the wire.

    The timeline reports the same kinds (plus the two history ends), the gdb stub maps each to one stop
    reply (``gdbstub.target.STOP_REPLIES``), the client derives its stop reasons from it, and a recording's
    End event stores the value: these numbers are written to files, never renumber or reuse one.
    """

    EXITED = 1  # the guest wrote to the test finisher
    INTERRUPTED = 2  # the caller asked to stop (Ctrl-C; a recording cut by the user)
    LIMIT = 3  # the requested icount was reached (a completed step; --max-insns)
    RESET = 4  # the guest asked for a reset
    IDLE_FOREVER = 5  # wfi with no timer and no input that can ever come
    FAULT = 6  # an exception with no guest trap handler
    BREAKPOINT = 7  # pc reached a breakpoint (not yet executed)
    WATCHPOINT = 8  # the instruction at pc accesses watched memory (not yet executed)
    # Reported by replay's timeline, never by the machine itself:
    HISTORY_BEGIN = 9  # going backward reached the start of history
    HISTORY_END = 10  # going forward reached the end of a fixed recording

    @property
    def ends_by_itself(self) -> bool:
        """The guest ended the run (exit, reset, fault, idling forever), not the caller or a limit."""
        return self in (RunKind.EXITED, RunKind.RESET, RunKind.IDLE_FOREVER, RunKind.FAULT)

    @property
    def label(self) -> str:
        """A short human name: ``idle-forever``, ``history-begin``..."""
        return self.name.lower().replace("_", "-")


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of :meth:`Machine.run`."""

    kind: RunKind
    icount: int
    pc: int
    exit_code: int | None = None
    cause: Cause | None = None
    fault_addr: int = 0  # the faulting address, or the watched address accessed
    watch_kind: WatchKind | None = None
    written_by: str | None = None  # a watchpoint hit by a device's write into RAM: which device, when

    def describe(self) -> str:
        """One line for humans."""
        where = f"icount {self.icount}, pc {self.pc:#x}"
        if self.kind == RunKind.FAULT and self.cause is not None:
            extra = f" {self.fault_addr:#x}" if self.cause in (Cause.LOAD_FAULT, Cause.STORE_FAULT) else ""
            return f"guest fault at {where}: {self.cause.value}{extra}"
        if self.kind == RunKind.EXITED:
            return f"guest exited with code {self.exit_code} at {where}"
        return f"{self.kind.label} at {where}"


@dataclass(frozen=True, slots=True)
class TrapEntry:
    """A trap or interrupt the machine entered (told to :attr:`MachineCore.trap_tap`).

    ``icount``: where it was taken (the handler's first instruction runs at this icount); ``handler``: that
    instruction's address; ``resume``: where the interrupted code goes on when the handler returns (the saved
    pc: mepc, ELR, the stacked return address); ``cause``: the architecture's number for it (RISC-V
    mcause/scause code, AArch64 ESR exception class or the GIC's interrupt id, Cortex-M exception number).
    """

    icount: int
    handler: int
    resume: int
    cause: int
    interrupt: bool
