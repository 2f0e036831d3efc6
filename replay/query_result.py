"""A query's answers as rows, and how they are shown: a text table, JSON, CSV; names of trap causes."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from .query_request import QueryRequest


@dataclass(frozen=True, slots=True)
class QueryResult:
    """A query's answers as rows (every row has ``icount`` and a one-line ``summary``), and how to show them."""

    kind: str
    request: QueryRequest
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    note: str = ""  # e.g. "(stopped at MAX_ANSWERS)"

    def to_json(self) -> str:
        return json.dumps({"query": self.kind, "target": self.request.target, "rows": list(self.rows),
                           "note": self.note}, indent=2)  # fmt: skip

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(self.columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: _cell(row.get(k)) for k in self.columns})
        return out.getvalue()

    def to_text(self) -> str:
        """An aligned table (the columns that say something for a person: no raw addresses twice)."""
        title = f"{self.kind} {self.request.target or ''}".rstrip()
        if not self.rows:
            return f"{title}: none in icount {_span(self.request)}\n"
        cells = [[_cell(row.get(c)) for c in self.columns] for row in self.rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(self.columns)]
        lines = [f"{title}: {len(self.rows)} in icount {_span(self.request)}{' ' + self.note if self.note else ''}"]
        lines.append("  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)).rstrip())
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
        return "\n".join(lines) + "\n"


def _span(request: QueryRequest) -> str:
    if request.at is not None:
        return str(request.at)
    return f"{'start' if request.start is None else request.start}..{'end' if request.end is None else request.end}"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


@dataclass(frozen=True, slots=True)
class ValuePoint:
    """The value of an expression from ``icount`` on (a step plot's point); ``number`` None when not numeric."""

    icount: int
    text: str
    number: float | None


_RISCV_INTERRUPTS = {1: "supervisor software", 3: "machine software", 5: "supervisor timer", 7: "machine timer",
                     9: "supervisor external", 11: "machine external"}  # fmt: skip
_RISCV_EXCEPTIONS = {0: "instruction misaligned", 1: "instruction access fault", 2: "illegal instruction",
                     3: "breakpoint", 4: "load misaligned", 5: "load access fault", 6: "store misaligned",
                     7: "store access fault", 8: "ecall from U", 9: "ecall from S", 11: "ecall from M",
                     12: "instruction page fault", 13: "load page fault", 15: "store page fault"}  # fmt: skip
_A64_CLASSES = {0x00: "unknown", 0x01: "wfi/wfe", 0x07: "fp access", 0x0E: "illegal state", 0x15: "svc",
                0x16: "hvc", 0x17: "smc", 0x18: "msr/mrs", 0x20: "instruction abort (lower EL)",
                0x21: "instruction abort", 0x22: "pc alignment", 0x24: "data abort (lower EL)", 0x25: "data abort",
                0x26: "sp alignment", 0x3C: "brk"}  # fmt: skip
_M_EXCEPTIONS = {2: "NMI", 3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault", 11: "SVCall",
                 12: "DebugMonitor", 14: "PendSV", 15: "SysTick"}  # fmt: skip


def trap_name(arch: str, cause: int, interrupt: bool) -> str:
    """A person's name for a trap's cause on ``arch``."""
    if arch.startswith("riscv"):
        names = _RISCV_INTERRUPTS if interrupt else _RISCV_EXCEPTIONS
        return names.get(cause, f"{'interrupt' if interrupt else 'exception'} {cause}")
    if arch == "aarch64":
        if interrupt:
            timers = {27: "virtual timer", 30: "physical timer", 26: "hypervisor timer"}
            return f"IRQ {cause}" + (f" ({timers[cause]})" if cause in timers else "")
        return _A64_CLASSES.get(cause, f"exception class {cause:#x}")
    if cause >= 16:
        return f"IRQ {cause - 16}"
    return _M_EXCEPTIONS.get(cause, f"exception {cause}")
