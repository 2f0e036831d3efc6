"""``chronicorn info`` and ``chronicorn events``: what a recording holds, every part of it checked."""

from __future__ import annotations

import argparse
import collections
from dataclasses import fields
from pathlib import Path

from machine.arch.registry import ARCHES
from machine.factory import make_machine, ram_base_for
from machine.loader import Image, Segment
from machine.machine import MachineConfig
from replay.events import AudioInput, AudioOutput, End, Event, NetFrame, Verify
from replay.history import HistoryInputs
from replay.log import RecordingError
from replay.recording import LoadedRecording, StoredState
from replay.saver import check_state

from .common import UsageError, icount_value, say
from .timelines import read_recording


def add_info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", metavar="FILE.chrec")


def add_events_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", metavar="FILE.chrec")
    parser.add_argument("--from", dest="from_icount", type=icount_value, metavar="N", help="from icount N (0 or more)")
    parser.add_argument("--to", dest="to_icount", type=icount_value, metavar="N", help="to icount N (0 or more)")


def _check_states(loaded: LoadedRecording) -> dict[str, str]:
    """Decode every snapshot on a blank machine of the recording's kind (RecordingError if one of history is
    malformed); named snapshots that are not are returned, each with why (replay --port makes them bookmarks)."""
    header = loaded.header
    arch = ARCHES[header.arch]
    # A raw image (config.arch decides); placed where the recorded one was: a firmware in Arm virt's flash
    # (--bios) makes another board (no PL061, QEMU's firmware boot), and so another set of devices.
    load_addr = header.options.get("load_addr")
    placed = isinstance(load_addr, int) and 0 <= load_addr < 1 << 64
    segments = (Segment(load_addr, b"\0", 1),) if placed else ()
    blank = Image("<no image>", load_addr if placed else ram_base_for(arch.name), segments, None, "0" * 64)
    inputs = HistoryInputs([], 0)
    try:
        config = MachineConfig(arch, header.ram_size, header.icount_shift, audio=header.audio)
        machine = make_machine(blank, inputs, lambda byte: None, config)
    except MemoryError:
        raise RecordingError(f"the recording's {header.ram_size}-byte RAM does not fit in memory") from None
    states: list[tuple[StoredState, str]] = [(loaded.initial, "initial"), *((k, "keyframe") for k in loaded.keyframes)]
    disks = tuple((machine.slots.layout.slot(i), d.size, d.sha256) for i, d in enumerate(header.drives))
    for stored, what in states:
        check_state(stored, machine, what, disks)
    unusable = {}
    for named in loaded.named_snapshots:
        try:
            decoded = check_state(named.state, machine, f"named {named.name!r}", disks)
        except RecordingError as exc:
            unusable[named.name] = str(exc)
        else:
            if decoded.icount != named.state.icount:
                unusable[named.name] = f"its state is at icount {decoded.icount}"
    return unusable


def _all_events(loaded: LoadedRecording) -> list[Event]:
    checks = [Verify(icount, digest) for icount, digest in loaded.verify_points.items()]
    ordered: list[Event] = sorted([*loaded.inputs, *checks], key=lambda e: e.icount)
    return ordered + ([loaded.end] if loaded.end is not None else [])


def info(args: argparse.Namespace) -> int:
    """Header, icount range, events by kind, sizes, damage."""
    loaded = read_recording(args.recording)
    unusable = _check_states(loaded)
    events = _all_events(loaded)
    counts = collections.Counter(type(event).__name__ for event in events)
    end: End | None = loaded.end
    for key, value in loaded.header.to_json().items():
        print(f"{key:20} {value}")
    print(f"{'file size':20} {Path(args.recording).stat().st_size} bytes")
    print(f"{'history':20} icount 0 .. {loaded.last_icount}")
    print(f"{'events from':20} icount {events[0].icount if events else 0} .. {events[-1].icount if events else 0}")
    print(f"{'end':20} {f'{end.kind.label} (code {end.code}) at icount {end.icount}' if end else 'none'}")
    print(f"{'keyframes':20} {len(loaded.keyframes)}")
    for kind, count in sorted(counts.items()):
        print(f"{'events ' + kind:20} {count}")
    if loaded.header.audio:
        heard = sum(len(e.data) / (2 * e.channels * e.rate) for e in events if isinstance(e, AudioInput))
        played = sum(e.nbytes / (2 * e.channels * e.rate) for e in events if isinstance(e, AudioOutput))
        print(f"{'audio':20} {heard:.3f} s captured (logged), {played:.3f} s played")
    print(f"{'execution index':20} {_describe_index(loaded)}")
    _show_names(loaded, unusable)
    if loaded.damage is not None:
        print(f"{'damaged':20} at byte {loaded.damage.offset}: {loaded.damage.reason}")
    return 0


def _describe_index(loaded: LoadedRecording) -> str:
    """Whether a backward continue over the recording skips windows at once (format version 4)."""
    if loaded.code_index_problem is not None:
        return f"ignored ({loaded.code_index_problem})"
    index = loaded.code_index
    if index is None:
        return "none (built while replaying)"
    if not index.entries:
        return f"0 entries, {index.stored_bytes} bytes"
    known = sum(ranges is not None for _, _, ranges in index.entries)
    return (f"{len(index.entries)} entries ({known} known), icount {index.entries[0][0]} .. {index.until}, "
            f"{index.stored_bytes} bytes")  # fmt: skip


def _show_names(loaded: LoadedRecording, unusable: dict[str, str]) -> None:
    """The bookmarks and named snapshots (format version 6), one a line by icount, and what was left out."""
    rows: list[tuple[int, str, str]] = []
    for name, mark in loaded.bookmarks:
        rows.append((mark.icount, name, "bookmark" + (f", pc {mark.pc:#x}" if mark.pc is not None else "")))
    for named in loaded.named_snapshots:
        why = unusable.get(named.name)
        what = f"snapshot ({len(named.state.data)} bytes)" if why is None else f"a bookmark (its snapshot: {why})"
        rows.append((named.state.icount, named.name, what))
    snapshots = len(loaded.named_snapshots) - len(unusable)
    summary = f"{len(rows) - snapshots} bookmarks, {snapshots} named snapshots" if rows else "none"
    print(f"{'names':20} {summary}")
    for icount, name, what in sorted(rows):
        print(f"  {name:18} icount {icount}: {what}")
    for problem in loaded.names_problems:
        print(f"{'names left out':20} {problem}")


FRAME_PREFIX = 32  # bytes of a network frame shown by ``events``


def _field(event: Event, name: str) -> str:
    """``name=value``; a network frame or captured audio as its length and first bytes in hex."""
    value = getattr(event, name)
    if isinstance(event, NetFrame | AudioInput) and name == "data":
        more = "..." if len(value) > FRAME_PREFIX else ""
        return f"length={len(value)}, data={value[:FRAME_PREFIX].hex()}{more}"
    return f"{name}={value!r}"


def events(args: argparse.Namespace) -> int:
    """One line per event, optionally within [--from, --to]."""
    if args.from_icount is not None and args.to_icount is not None and args.from_icount > args.to_icount:
        raise UsageError(f"--from {args.from_icount} is after --to {args.to_icount}")
    loaded = read_recording(args.recording)
    for event in _all_events(loaded):
        if args.from_icount is not None and event.icount < args.from_icount:
            continue
        if args.to_icount is not None and event.icount > args.to_icount:
            break
        text = ", ".join(_field(event, f.name) for f in fields(event) if f.name != "icount")
        print(f"{event.icount:>14}  {type(event).__name__:10} {text}")
    if loaded.damage is not None:
        say(f"the recording is damaged at byte {loaded.damage.offset} ({loaded.damage.reason})")
    return 0
