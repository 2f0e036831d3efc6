"""A recording on disk, read back: the header (what was recorded, how), validated whole before replay.

``load_recording`` reads and checks everything a replay will rely on (QEMU checks far less): the header's
fields one by one, the initial snapshot first, keyframes (states after debugger writes) consistent with the
input events, events in icount order with at most one End and nothing after it, verification points no
further apart than the header's interval (so a replay's length is bounded by the file's size). Snapshot
payloads are decoded against a real machine later (:func:`replay.saver.open_recording`), where
:mod:`machine.state` checks every byte of them. A damaged tail is not an error: the intact prefix loads and
:attr:`LoadedRecording.damage` says where reading stopped.

The execution index a version 4 file carries (:mod:`replay.code_index`) is decoded and checked here too, but
it is only an optimisation: one that is malformed (though intact as a chunk: a bad checksum is damage like
any other) is ignored with a warning (:attr:`LoadedRecording.code_index_problem`) and the recording loads
without it; the timeline then builds its index as it runs, as for a version 3 file. Entries reaching past
the end of a damaged recording's intact part are cut at its end (what ran in a stretch covers what ran in
any part of it).

The bookmarks and named snapshots a version 6 file carries (:mod:`replay.bookmarks`) are an annotation too:
a malformed bookmarks chunk is ignored with a warning (:attr:`LoadedRecording.names_problems`), and a named
snapshot whose state cannot be used (malformed, at another icount than listed, a log position that does not
fit the events, past the named snapshots' memory bound of one RAM's worth) is loaded as a bookmark at its
icount. Names past a damaged recording's intact part are left out.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, BinaryIO

from machine.arch.registry import ARCHES
from machine.loader import Image

from .bookmarks import Bookmark, NameEntry, NameKind, decode_named_state, decode_names
from .code_index import DEFAULT_INDEX_BYTES, Entry, decode_entries
from .events import AudioInput, AudioOutput, ClockWarp, End, HostClock, IoCompletion, NetFrame, UartInput, Verify
from .history import InputEvent
from .log import FORMAT_VERSION, MAX_ICOUNT, Chunk, ChunkKind, Damage, LogReader, RecordingError, decode_events
from .verify import VERIFY_INTERVAL

if TYPE_CHECKING:
    from machine.machine import Machine

CHRONICORN_VERSION = "0.1.0"
BOARDS = ("virt", "mps2-an385")
MAX_RAM_SIZE = 1 << 31
MIN_VERIFY_INTERVAL, MAX_VERIFY_INTERVAL = 1 << 10, 1 << 26
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_LOADED_INDEX_BYTES = DEFAULT_INDEX_BYTES  # a saved index is at most what a timeline holds

log = logging.getLogger(__name__)


def state_size_limit(ram_size: int) -> int:
    """The largest encoded machine state a machine with ``ram_size`` bytes of RAM can have (chunk limit)."""
    return ram_size + (ram_size >> 12) * 16 + (1 << 20)


MAX_DRIVE_BYTES = 1 << 44
VIRTIO_INTERFACES = ("legacy", "modern")
DRIVES_SINCE = 5  # the format version whose header names drives and the virtio interface


@dataclass(frozen=True, slots=True)
class DriveRecord:
    """A disk image the recording was made with (replay refuses another: the data is not in the file)."""

    path: str
    size: int
    sha256: str
    readonly: bool

    @classmethod
    def from_json(cls, data: object) -> DriveRecord:
        if not isinstance(data, dict) or sorted(data) != sorted(f.name for f in fields(cls)):
            raise RecordingError("recording header field 'drives' holds an entry that is not a drive")
        drive = cls(**data)
        if not isinstance(drive.path, str) or len(drive.path) > 4096:
            raise RecordingError("recording header field 'drives' has a path that is not a string")
        if not isinstance(drive.size, int) or isinstance(drive.size, bool) or not 0 < drive.size <= MAX_DRIVE_BYTES \
                or drive.size % 512:  # fmt: skip
            raise RecordingError("recording header field 'drives' has a size that is not a number of sectors")
        if not isinstance(drive.sha256, str) or not _SHA256.fullmatch(drive.sha256):
            raise RecordingError("recording header field 'drives' has a sha256 that is not a SHA-256 digest")
        if not isinstance(drive.readonly, bool):
            raise RecordingError("recording header field 'drives' has a readonly that is not true or false")
        return drive


@dataclass(frozen=True, slots=True)
class Header:
    """Everything replay must match: QEMU records the same in its rr header (and checks less)."""

    format_version: int
    chronicorn_version: str
    arch: str
    board: str
    ram_size: int
    icount_shift: int
    sleep: str
    image_path: str
    image_sha256: str
    verify_interval: int
    max_chunk_bytes: int
    options: dict[str, str | int | None]
    drives: tuple[DriveRecord, ...] = ()  # version 5 on: the disk images, first drive first
    virtio: str = "legacy"  # version 5 on: the virtio-mmio interface
    network: bool = False  # version 5 on: a virtio-net device (its frames from the network are events)
    audio: bool = False  # version 5 on: a virtio-snd device (captured samples and playback are events)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["drives"] = [asdict(drive) for drive in self.drives]
        if self.format_version < DRIVES_SINCE:
            del data["drives"], data["virtio"], data["network"], data["audio"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Header:
        """A header from a file's JSON, every field checked (RecordingError names the first bad one)."""
        version = data.get("format_version")
        names = [f.name for f in fields(cls)]
        if isinstance(version, int) and version < DRIVES_SINCE:
            names = names[:-4]
        unknown = sorted(set(data) - set(names))
        missing = [n for n in names if n not in data]
        if unknown or missing:
            what = f"unknown field {unknown[0]!r}" if unknown else f"no field {missing[0]!r}"
            raise RecordingError(f"recording header has {what}")
        values = dict(data)
        if "drives" in values:
            drives = values["drives"]
            if not isinstance(drives, list) or len(drives) > 8:
                raise RecordingError("recording header field 'drives' is not a list of at most 8 drives")
            values["drives"] = tuple(DriveRecord.from_json(d) for d in drives)
        header = cls(**values)  # type: ignore[arg-type]
        header._validate()
        return header

    def _validate(self) -> None:
        def bad(name: str, why: str) -> RecordingError:
            return RecordingError(f"recording header field {name!r} {why}")

        for name in ("format_version", "ram_size", "icount_shift", "verify_interval", "max_chunk_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise bad(name, f"is not an integer ({type(value).__name__})")
        for name in ("chronicorn_version", "arch", "board", "sleep", "image_path", "image_sha256"):
            if not isinstance(getattr(self, name), str):
                raise bad(name, "is not a string")
        if self.arch not in ARCHES:
            raise bad("arch", f"is {self.arch[:40]!r}; this chronicorn has {', '.join(sorted(ARCHES))}")
        if self.board not in BOARDS:
            raise bad("board", f"is {self.board[:40]!r}; this chronicorn has {', '.join(BOARDS)}")
        if self.board != ARCHES[self.arch].board:
            raise bad("board", f"is {self.board!r}, but {self.arch} runs on {ARCHES[self.arch].board}")
        if not 0 < self.ram_size <= MAX_RAM_SIZE or self.ram_size % 4096:
            raise bad("ram_size", f"is {self.ram_size}: a multiple of 4 KiB up to {MAX_RAM_SIZE >> 30} GiB")
        if not 0 <= self.icount_shift <= 10:
            raise bad("icount_shift", f"is {self.icount_shift}: 0..10")
        if self.sleep not in ("on", "off"):
            raise bad("sleep", "is neither 'on' nor 'off'")
        if not _SHA256.fullmatch(self.image_sha256):
            raise bad("image_sha256", "is not a SHA-256 digest")
        if not MIN_VERIFY_INTERVAL <= self.verify_interval <= MAX_VERIFY_INTERVAL:
            raise bad("verify_interval", f"is {self.verify_interval}: {MIN_VERIFY_INTERVAL}..{MAX_VERIFY_INTERVAL}")
        if not 64 <= self.max_chunk_bytes <= state_size_limit(self.ram_size):
            raise bad("max_chunk_bytes", f"is {self.max_chunk_bytes}: more than a {self.ram_size}-byte RAM needs")
        if not isinstance(self.options, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str | int)) for k, v in self.options.items()
        ):
            raise bad("options", "is not a table of names to strings or numbers")
        for name in ("network", "audio"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "is not true or false")
        if self.virtio not in VIRTIO_INTERFACES:
            raise bad("virtio", f"is neither {' nor '.join(map(repr, VIRTIO_INTERFACES))}")


def make_header(image: Image, arch: str, ram_size: int, icount_shift: int, sleep: str,
                options: dict[str, str | int | None], machine: Machine | None = None) -> Header:  # fmt: skip
    """The header of a recording made now on this machine (``machine``: its drives and virtio interface)."""
    drives: tuple[DriveRecord, ...] = ()
    virtio = "legacy"
    network = audio = False
    if machine is not None:
        network, audio = bool(machine.nets), machine.config.audio
        disks = [d.disk for _, d in sorted(machine.disks.items(), reverse=True)]  # the first drive first
        drives = tuple(DriveRecord(os.path.abspath(d.image.path), d.size, d.image.sha256, d.readonly) for d in disks)
        virtio = "legacy" if machine.config.virtio_legacy else "modern"
    return Header(FORMAT_VERSION, CHRONICORN_VERSION, arch, ARCHES[arch].board, ram_size, icount_shift, sleep,
                  os.path.abspath(image.path), image.sha256, VERIFY_INTERVAL, state_size_limit(ram_size), options,
                  drives, virtio, network, audio)  # fmt: skip


def check_drives(header: Header, machine: Machine) -> None:
    """Refuse, with a clear reason, drives other than the recorded ones (their data is not in the recording)."""
    disks = [d for _, d in sorted(machine.disks.items(), reverse=True)]
    if len(disks) != len(header.drives):
        raise RecordingError(f"the recording was made with {len(header.drives)} drive(s), not {len(disks)}")
    for number, (drive, disk) in enumerate(zip(header.drives, disks, strict=True), 1):
        image = disk.disk.image
        if image.size != drive.size or image.sha256 != drive.sha256:
            raise RecordingError(
                f"drive {number}: {str(image.path)[:200]} is not the disk image that was recorded "
                f"({drive.path[:200]}, {drive.size} bytes, sha256 {drive.sha256[:16]}...; this one: {image.size} "
                f"bytes, sha256 {image.sha256[:16]}...)"
            )
        if disk.disk.readonly != drive.readonly:
            raise RecordingError(f"drive {number} was recorded {'read-only' if drive.readonly else 'writable'}")


def check_replayable(header: Header, image: Image, ram_size: int | None, icount_shift: int | None) -> None:
    """Refuse, with a clear reason, to replay on a different guest or machine."""
    if image.sha256 != header.image_sha256:
        raise RecordingError(
            f"{image.path} is not the image that was recorded ({header.image_path[:200]}, "
            f"sha256 {header.image_sha256[:16]}... vs {image.sha256[:16]}...)"
        )
    if ram_size is not None and ram_size != header.ram_size:
        raise RecordingError(f"the recording was made with {header.ram_size} bytes of RAM, not {ram_size}")
    if icount_shift is not None and icount_shift != header.icount_shift:
        raise RecordingError(f"the recording was made with icount shift {header.icount_shift}, not {icount_shift}")


@dataclass(frozen=True, slots=True)
class StoredState:
    """A snapshot chunk not yet decoded: the machine at ``icount``, the next input event's index there."""

    icount: int
    log_position: int
    data: memoryview


@dataclass(frozen=True, slots=True)
class NamedState:
    """A named snapshot a recording carries (version 6): its name and its state, not yet decoded."""

    name: str
    state: StoredState


@dataclass(frozen=True)
class LoadedIndex:
    """A recording's execution index: entries ``(start, end, CodeRanges | None)``, contiguous, in order."""

    entries: list[Entry]
    stored_bytes: int  # its chunk's payload, inflated

    @property
    def until(self) -> int:
        return self.entries[-1][1] if self.entries else 0


@dataclass(frozen=True)
class LoadedRecording:
    """A recording read into memory and checked; ``damage`` says where an intact prefix ends."""

    header: Header
    initial: StoredState
    keyframes: tuple[StoredState, ...]
    inputs: list[InputEvent]
    verify_points: dict[int, bytes]
    end: End | None
    damage: Damage | None
    code_index: LoadedIndex | None = None  # the execution index it carries (version 4), if usable
    code_index_problem: str | None = None  # why the index it carries is not used
    bookmarks: tuple[tuple[str, Bookmark], ...] = ()  # (version 6) by icount; named snapshots left without state too
    named_snapshots: tuple[NamedState, ...] = ()  # (version 6) by icount
    names_problems: tuple[str, ...] = ()  # what of its names was left out or made a bookmark, and why

    @property
    def last_icount(self) -> int:
        """Where history ends: the End event's icount, or the last icount the intact part vouches for."""
        if self.end is not None:
            return self.end.icount
        known = [self.initial.icount, *self.verify_points, *(e.icount for e in self.inputs[-1:])]
        return max(known + [k.icount for k in self.keyframes])


def load_recording(stream: BinaryIO) -> LoadedRecording:
    """Read and check a whole recording (RecordingError when it has no usable header or initial snapshot)."""
    reader = LogReader(stream)
    header = Header.from_json(reader.header)
    if header.format_version != reader.version:
        raise RecordingError(f"recording header says format version {header.format_version}, "
                             f"the file is version {reader.version}")  # fmt: skip
    reader.chunk_limit = header.max_chunk_bytes
    reader.named_budget = header.ram_size  # named snapshots' states: one RAM's worth in all (the rest: bookmarks)
    names = _Names()
    initial: StoredState | None = None
    keyframes: list[StoredState] = []
    keyframe_icounts: set[int] = set()
    state_bytes = 0  # inflated snapshots held: the initial one plus keyframes, at most a RAM's worth plus 1 GiB
    inputs: list[InputEvent] = []
    verify_points: dict[int, bytes] = {}
    end: End | None = None
    index: LoadedIndex | None = None
    index_problem: str | None = None
    for chunk in reader.chunks():
        if initial is None:
            if chunk.kind != ChunkKind.SNAPSHOT or chunk.first_icount != 0 or chunk.prefix != 0:
                raise RecordingError("the recording does not start with its initial snapshot")
            initial = StoredState(0, 0, chunk.data)
        elif end is not None:
            raise RecordingError(f"the recording has data after its end (icount {end.icount})")
        elif chunk.kind == ChunkKind.SNAPSHOT:
            if chunk.prefix > len(inputs) or chunk.first_icount in keyframe_icounts:
                raise RecordingError(f"the keyframe at icount {chunk.first_icount} does not fit the events")
            state_bytes += len(chunk.data)
            if state_bytes > header.ram_size + (1 << 30):
                raise RecordingError("the recording's keyframes need more memory than its machine could have")
            keyframe_icounts.add(chunk.first_icount)
            keyframes.append(StoredState(chunk.first_icount, chunk.prefix, chunk.data))
        elif chunk.kind == ChunkKind.CODE_INDEX:
            if index is not None or index_problem is not None:
                index, index_problem = None, "the recording has two execution indexes"
                continue
            try:
                entries = decode_entries(chunk.data, chunk.prefix, chunk.last_icount, MAX_LOADED_INDEX_BYTES)
            except RecordingError as exc:
                index_problem = str(exc)
                continue
            index = LoadedIndex(entries, len(chunk.data))
        elif chunk.kind == ChunkKind.BOOKMARKS:
            names.read_entries(chunk)
        elif chunk.kind == ChunkKind.NAMED_SNAPSHOT:
            names.read_state(chunk)
        else:
            previous = max(inputs[-1].icount if inputs else 0, max(verify_points, default=0))
            if chunk.prefix < previous:
                raise RecordingError(f"events at icount {chunk.first_icount} go back in time")
            try:
                events = decode_events(chunk.data, chunk.prefix, chunk.last_icount)
            except RecordingError as exc:
                reader.damage = Damage(chunk.offset, str(exc))
                break
            for event in events:
                if end is not None:
                    raise RecordingError(f"the recording has events after its end (icount {end.icount})")
                if isinstance(event, End):
                    end = event
                elif isinstance(event, Verify):
                    if event.icount in verify_points:
                        raise RecordingError(f"two verification points at icount {event.icount}")
                    verify_points[event.icount] = event.digest
                elif isinstance(event, UartInput | HostClock | ClockWarp | IoCompletion | NetFrame | AudioInput
                                | AudioOutput):  # fmt: skip
                    inputs.append(event)
    if initial is None:
        raise RecordingError("the recording has no initial snapshot")
    loaded = LoadedRecording(header, initial, tuple(keyframes), inputs, verify_points, end, reader.damage)
    _check_consistent(loaded)
    if index_problem is not None:
        log.warning("the recording's execution index is ignored (%s): it is rebuilt while replaying", index_problem)
    elif index is not None:
        index = _cut_index(index, loaded.last_icount)
    bookmarks, named, problems = names.resolve(loaded)
    if problems:  # (one line: 'chronicorn info' lists them all)
        more = f" (and {len(problems) - 1} more: see chronicorn info)" if len(problems) > 1 else ""
        log.warning("the recording's names: %s%s", problems[0], more)
    return replace(loaded, code_index=index, code_index_problem=index_problem, bookmarks=bookmarks,
                   named_snapshots=named, names_problems=problems)  # fmt: skip


class _Names:
    """A recording's bookmarks chunk and named snapshot chunks as read, then checked against its history."""

    def __init__(self) -> None:
        self.entries: list[NameEntry] | None = None
        self.problem: str | None = None  # the bookmarks chunk is not used: why
        self.states: dict[str, StoredState] = {}
        self.problems: list[str] = []

    def read_entries(self, chunk: Chunk) -> None:
        if self.entries is not None or self.problem is not None:
            self.entries, self.problem = None, "the recording has two bookmarks chunks"
            return
        try:
            self.entries = decode_names(chunk.data, chunk.prefix, chunk.last_icount)
        except RecordingError as exc:
            self.problem = str(exc)

    def read_state(self, chunk: Chunk) -> None:
        if chunk.skipped:
            self.problems.append(f"the named snapshot at byte {chunk.offset} is not loaded: the named snapshots "
                                 "need more memory than the recording's RAM size")  # fmt: skip
            return
        try:
            name, icount, data = decode_named_state(chunk.data)
        except RecordingError as exc:
            self.problems.append(f"the named snapshot at byte {chunk.offset} is ignored ({exc})")
            return
        if name in self.states:
            self.problems.append(f"the named snapshot {name!r} is in the recording twice: the second is ignored")
            return
        self.states[name] = StoredState(icount, chunk.prefix, data)

    def resolve(self, loaded: LoadedRecording,
                ) -> tuple[tuple[tuple[str, Bookmark], ...], tuple[NamedState, ...], tuple[str, ...]]:  # fmt: skip
        """Bookmarks (named snapshots without a usable state among them), named snapshots, problems."""
        if self.problem is not None or self.entries is None:
            if self.problem is not None:
                return (), (), (f"the bookmarks and named snapshots are ignored ({self.problem})",)
            if self.states:
                return (), (), ("the named snapshots are ignored (the recording lists no names)",)
            return (), (), tuple(self.problems)
        last = loaded.last_icount
        bookmarks: list[tuple[str, Bookmark]] = []
        named: list[NamedState] = []
        problems = list(self.problems)
        for entry in self.entries:
            what = f"{entry.kind.name.lower()} {entry.name!r} at icount {entry.icount}"
            if entry.icount > last:
                problems.append(f"{what} lies past the end of the intact history ({last}): left out")
                continue
            if entry.kind == NameKind.BOOKMARK:
                bookmarks.append((entry.name, Bookmark(entry.icount, entry.pc)))
                continue
            stored = self.states.pop(entry.name, None)
            why = None
            if stored is None:
                why = "its state is not loaded"
            elif stored.icount != entry.icount:
                why = f"its state is listed at icount {stored.icount}"
            elif not _fits_events(stored, loaded.inputs):
                why = "its log position does not fit the events"
            if why is None and stored is not None:
                named.append(NamedState(entry.name, stored))
            else:
                problems.append(f"{what}: {why}; it is a bookmark (going there replays history)")
                bookmarks.append((entry.name, Bookmark(entry.icount)))
        problems += [f"the named snapshot {name!r} is not listed as a snapshot among the names: ignored"
                     for name in self.states]  # fmt: skip
        bookmarks.sort(key=lambda item: (item[1].icount, item[0]))
        named.sort(key=lambda item: (item.state.icount, item.name))
        return tuple(bookmarks), tuple(named), tuple(problems)


def _fits_events(state: StoredState, inputs: list[InputEvent]) -> bool:
    """The state's log position lies between the input events at or before and at or after its icount."""
    position = state.log_position
    if position > len(inputs):
        return False
    return not ((position and inputs[position - 1].icount > state.icount) or (
        position < len(inputs) and inputs[position].icount < state.icount))  # fmt: skip


def _cut_index(index: LoadedIndex, last: int) -> LoadedIndex:
    """The entries within history ``[0, last]`` (the last one cut there: its code covers its part's)."""
    entries = [e for e in index.entries if e[0] < last]
    if entries and entries[-1][1] > last:
        start, _, ranges = entries[-1]
        entries[-1] = (start, last, ranges)
    return LoadedIndex(entries, index.stored_bytes)


def _check_consistent(loaded: LoadedRecording) -> None:
    """Keyframes inside history and between their events; verification points dense enough."""
    last = loaded.last_icount
    if last >= MAX_ICOUNT:
        raise RecordingError("the recording's end lies beyond any icount")
    for event in loaded.inputs[-1:]:
        if event.icount > last:
            raise RecordingError(f"an input at icount {event.icount} lies past the end ({last})")
    inputs = loaded.inputs
    for keyframe in loaded.keyframes:
        position = keyframe.log_position
        if keyframe.icount > last or (position and inputs[position - 1].icount > keyframe.icount) or (
                position < len(inputs) and inputs[position].icount < keyframe.icount):  # fmt: skip
            raise RecordingError(f"the keyframe at icount {keyframe.icount} does not fit the events")
    # Points are due every `interval` (one instruction later where a trap was entered right there, or
    # missing at a keyframe): twice that is the most a writer leaves between two.
    interval = loaded.header.verify_interval
    previous = 0
    for icount in [*sorted(loaded.verify_points), last]:
        if icount > last:
            raise RecordingError(f"a verification point at icount {icount} lies past the end ({last})")
        if icount - previous > 2 * interval:
            raise RecordingError(
                f"no verification point between icount {previous} and {icount} (every {interval} expected): "
                "the recording is damaged or crafted"
            )
        previous = icount
