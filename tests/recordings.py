"""Test helpers: rewrite a recording with some of its parts changed (tampered or forged recordings)."""

from __future__ import annotations

from pathlib import Path

from replay.events import End, Event, Verify
from replay.history import InputEvent
from replay.log import LogWriter
from replay.recording import Header, LoadedRecording


def rewrite(path: Path, loaded: LoadedRecording, header: Header | None = None,
            inputs: list[InputEvent] | None = None, verify_points: dict[int, bytes] | None = None,
            end: End | None = None) -> None:  # fmt: skip
    """Write ``loaded`` to ``path`` with the given parts replaced (no keyframes)."""
    with open(path, "wb") as stream:
        writer = LogWriter(stream, (header or loaded.header).to_json())
        writer.write_snapshot(0, 0, bytes(loaded.initial.data))
        checks = [Verify(i, d) for i, d in (loaded.verify_points if verify_points is None else verify_points).items()]
        events: list[Event] = sorted([*(loaded.inputs if inputs is None else inputs), *checks], key=lambda e: e.icount)
        final = end if end is not None else loaded.end
        writer.write_events(events + ([final] if final is not None else []))
