"""Bookmarks: names for moments of history (``monitor bookmark NAME``), kept with the timeline and in recordings.

A bookmark is a name for an icount (and the pc there): cheap, no machine state; going to it is a seek. A named
snapshot (``monitor snapshot save NAME``) holds the whole state and lives in the snapshot store. Both share one
namespace: a name means one place in history.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Bookmark:
    """A named moment: the icount, and the pc there (a stop after an interrupt was entered at that icount has
    the handler's pc: going there enters it again, as a backward continue does)."""

    icount: int
    pc: int


@dataclass
class Bookmarks:
    """One timeline's bookmarks, and which of its named snapshots came from a recording unchecked."""

    marks: dict[str, Bookmark] = field(default_factory=dict)
    unchecked: set[str] = field(default_factory=set)  # named snapshots loaded from a file, not yet checked
