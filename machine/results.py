"""How a run of the machine ends: values, no behaviour."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .engine import Cause
from .watch import WatchKind


class RunKind(enum.Enum):
    """How a run ended."""

    EXITED = "exited"  # the guest wrote to the test finisher
    RESET = "reset"  # the guest asked for a reset
    LIMIT = "limit"  # the requested icount was reached
    FAULT = "fault"  # an exception with no guest trap handler
    IDLE_FOREVER = "idle"  # wfi with no timer and no input that can ever come
    INTERRUPTED = "interrupted"  # the caller asked to stop
    BREAKPOINT = "breakpoint"  # pc reached a breakpoint (not yet executed)
    WATCHPOINT = "watchpoint"  # the instruction at pc accesses watched memory (not yet executed)
    # Reported by replay's timeline, never by the machine itself:
    HISTORY_BEGIN = "history-begin"  # going backward reached icount 0
    HISTORY_END = "history-end"  # going forward reached the end of a fixed recording


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

    def describe(self) -> str:
        """One line for humans."""
        where = f"icount {self.icount}, pc {self.pc:#x}"
        if self.kind == RunKind.FAULT and self.cause is not None:
            extra = f" {self.fault_addr:#x}" if self.cause in (Cause.LOAD_FAULT, Cause.STORE_FAULT) else ""
            return f"guest fault at {where}: {self.cause.value}{extra}"
        if self.kind == RunKind.EXITED:
            return f"guest exited with code {self.exit_code} at {where}"
        return f"{self.kind.value} at {where}"
