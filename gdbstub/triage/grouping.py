"""Grouping results by (outcome, culprit): what ``--group-by`` compares, and the order groups are shown in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .results import Culprit, Outcome, RecordingResult

GROUPINGS = ("pc", "line", "function")


@dataclass(frozen=True, slots=True)
class GroupKey:
    """What the recordings of a group share: the outcome, and the culprit (None: no write) or the error."""

    outcome: Outcome
    culprit: Culprit | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """Recordings with the same :class:`GroupKey`, in the order they were given."""

    key: GroupKey
    recordings: tuple[str, ...]

    def describe(self, watch: str, located: bool) -> str:
        key = self.key
        if key.outcome == Outcome.ERROR:
            return f"cannot triage: {key.error}"
        if key.culprit is not None:
            return key.culprit.describe()
        if key.outcome == Outcome.PASSED and not located:
            return "exit code 0 (not located)"
        return f"nothing wrote {watch} (with a change of value) since the start of history"


def group_results(results: Iterable[RecordingResult], group_by: str = "pc") -> tuple[Group, ...]:
    """Group by outcome and culprit: failed groups first (largest first), then errors, then passed ones."""
    if group_by not in GROUPINGS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPINGS)}, not {group_by!r}")
    members: dict[GroupKey, list[str]] = {}
    for result in results:
        members.setdefault(key_of(result, group_by), []).append(result.recording)
    rank = {Outcome.FAILED: 0, Outcome.ERROR: 1, Outcome.PASSED: 2}
    order = sorted(members.items(), key=lambda item: (rank[item[0].outcome], item[0].culprit is None, -len(item[1])))
    return tuple(Group(key, tuple(names)) for key, names in order)  # (sorted is stable: first seen first)


def key_of(result: RecordingResult, group_by: str = "pc") -> GroupKey:
    """The group a result belongs to."""
    if result.outcome == Outcome.ERROR:
        return GroupKey(Outcome.ERROR, error=result.error)
    culprit = result.culprit
    return GroupKey(result.outcome, culprit.grouped_by(group_by) if culprit is not None else None)
