"""The report of a triage: every recording's result and the groups, as a text table or as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .grouping import Group
from .results import Outcome, RecordingResult


@dataclass(frozen=True, slots=True)
class TriageReport:
    """Every recording's result (in the order given) and the groups; ``to_text`` the table, ``to_json`` all."""

    watch: str
    depth: int
    group_by: str
    executor: str
    locate_passing: bool
    results: tuple[RecordingResult, ...]
    groups: tuple[Group, ...]
    seconds: float = field(default=0.0, compare=False)

    def count(self, outcome: Outcome) -> int:
        return sum(result.outcome == outcome for result in self.results)

    @property
    def triaged(self) -> bool:
        """Whether any recording could be examined (all errors: a bad --watch, or no usable recording)."""
        return self.count(Outcome.ERROR) < len(self.results)

    def group_of(self, recording: str) -> int:
        """The 1-based number of the group holding ``recording``."""
        return next(n for n, group in enumerate(self.groups, 1) if recording in group.recordings)

    def summary(self) -> str:
        failed, errors = self.count(Outcome.FAILED), self.count(Outcome.ERROR)
        unwritten = sum(r.outcome == Outcome.FAILED and not r.writes for r in self.results)
        return (f"{len(self.results)} recordings: {failed} failed ({failed - unwritten} with a write to "
                f"{self.watch}), {self.count(Outcome.PASSED)} passed, {errors} could not be triaged; "
                f"{len(self.groups)} group{'s' if len(self.groups) != 1 else ''}")  # fmt: skip

    def to_text(self, width: int = 100) -> str:
        """The summary table, then each group's recordings."""
        lines = [f"triage of {self.watch} (last write before the end), depth {self.depth}, grouped by "
                 f"{self.group_by}, executor {self.executor}, {self.seconds:.1f} s",  # fmt: skip
                 self.summary(), "", f"{'group':>5}  {'count':>5}  {'outcome':7}  culprit"]  # fmt: skip
        for n, group in enumerate(self.groups, 1):
            lines.append(f"{n:>5}  {len(group.recordings):>5}  {group.key.outcome.value:7}  "
                         f"{group.describe(self.watch, self.locate_passing)}")  # fmt: skip
            culprit = group.key.culprit
            if culprit is not None and culprit.source:
                instruction = " ".join((culprit.instruction or "").split())
                lines.append(f"{'':22}{culprit.line or '':>5} | {culprit.source.strip()}"
                             + (f"   ({instruction})" if instruction else ""))  # fmt: skip
        lines.append("")
        for n, group in enumerate(self.groups, 1):
            lines.append(_wrapped(f"group {n}:", group.recordings, width))
        for result in self.results:
            if result.damage is not None and result.located:
                lines.append(f"note: {result.recording} is damaged ({result.damage}): its intact part was searched")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        groups = []
        for n, group in enumerate(self.groups, 1):
            culprit = group.key.culprit
            groups.append({"group": n, "outcome": group.key.outcome.value, "error": group.key.error,
                           "culprit": asdict(culprit) if culprit is not None else None,
                           "label": group.describe(self.watch, self.locate_passing),
                           "count": len(group.recordings), "recordings": list(group.recordings)})  # fmt: skip
        recordings = [{**result.to_dict(), "group": self.group_of(result.recording)} for result in self.results]
        return {"watch": self.watch, "depth": self.depth, "group_by": self.group_by, "executor": self.executor,
                "locate_passing": self.locate_passing, "seconds": round(self.seconds, 3),
                "summary": {"recordings": len(self.results), "failed": self.count(Outcome.FAILED),
                            "passed": self.count(Outcome.PASSED), "errors": self.count(Outcome.ERROR),
                            "groups": len(self.groups)},
                "groups": groups, "recordings": recordings}  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _wrapped(head: str, names: Sequence[str], width: int) -> str:
    lines, line = [], head
    for name in names:
        if len(line) + 1 + len(name) > width and line.strip():
            lines.append(line)
            line = " " * 4
        line += f" {name}"
    return "\n".join([*lines, line])
