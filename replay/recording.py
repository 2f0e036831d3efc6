"""A recording on disk: its header (what was recorded, how) and the checks before replaying it."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections import deque
from dataclasses import asdict, dataclass
from typing import BinaryIO

from unicorn.unicorn_py3.unicorn import UcContext

from machine.loader import Image
from machine.machine import Machine
from machine.ram import PageTable
from machine.state import MachineState

from .events import Event
from .log import FORMAT_VERSION, ChunkKind, Damage, LogReader, LogWriter, RecordingError, decode_events

CHRONICORN_VERSION = "0.1.0"


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
    options: dict[str, object]

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Header:
        try:
            return cls(**data)  # type: ignore[arg-type]
        except TypeError as exc:
            raise RecordingError(f"recording header does not describe a recording: {exc}") from None


def make_header(image: Image, arch: str, ram_size: int, icount_shift: int, sleep: str,
                options: dict[str, object]) -> Header:  # fmt: skip
    return Header(FORMAT_VERSION, CHRONICORN_VERSION, arch, "virt", ram_size, icount_shift, sleep,
                  os.path.abspath(image.path), image.sha256, options)  # fmt: skip


def check_replayable(header: Header, image: Image, ram_size: int | None, icount_shift: int | None) -> None:
    """Refuse, with a clear reason, to replay on a different guest or machine."""
    if image.sha256 != header.image_sha256:
        raise RecordingError(
            f"{image.path} is not the image that was recorded ({header.image_path}, "
            f"sha256 {header.image_sha256[:16]}... vs {image.sha256[:16]}...)"
        )
    if ram_size is not None and ram_size != header.ram_size:
        raise RecordingError(f"the recording was made with {header.ram_size} bytes of RAM, not {ram_size}")
    if icount_shift is not None and icount_shift != header.icount_shift:
        raise RecordingError(f"the recording was made with icount shift {header.icount_shift}, not {icount_shift}")
    if header.board != "virt":
        raise RecordingError(f"the recording is for board {header.board!r}, this chronicorn has 'virt'")


def state_digest(registers: list[int]) -> bytes:
    """16 bytes identifying a register state (verification points)."""
    h = hashlib.sha256()
    for value in registers:
        h.update(value.to_bytes(16, "little", signed=True))
    return h.digest()[:16]


def registers_digest(machine: Machine) -> bytes:
    """The verification-point digest of a machine: its registers and CSRs."""
    return state_digest(machine.hart.registers() + machine.hart.digest_csrs())


# -- the initial snapshot (QEMU's rrsnapshot) ---------------------------------------------
def encode_state(state: MachineState, log_position: int = 0) -> bytes:
    """A machine state as bytes: u32 JSON length, JSON (fields), CPU context bytes, RAM chunks."""
    context = bytes(state.context)
    pages = list(state.ram.chunks())
    meta = {
        "icount": state.icount,
        "board": [[key, _plain(value)] for key, value in state.board],
        "devices": [[name, {k: _plain(v) for k, v in fields.items()}] for name, fields in state.devices],
        "context": [len(context), state.context.arch, state.context.mode],
        "ram": [[offset, len(data)] for offset, data in pages],
        "log_position": log_position,
    }
    body = json.dumps(meta).encode()
    return struct.pack("<I", len(body)) + body + context + b"".join(data for _, data in pages)


def decode_state(data: bytes, ram_size: int) -> MachineState:
    """Inverse of :func:`encode_state` (raises RecordingError on malformed input)."""
    return decode_snapshot(data, ram_size)[0]


def decode_snapshot(data: bytes, ram_size: int) -> tuple[MachineState, int]:
    """A state and the log position stored with it."""
    try:
        (length,) = struct.unpack_from("<I", data)
        meta = json.loads(data[4 : 4 + length])
        pos = 4 + length
        size, arch, mode = meta["context"]
        context = UcContext.__new__(UcContext)
        context.__setstate__((data[pos : pos + size], size, arch, mode))  # the binding's own unpickling path
        pos += size
        ram = []
        for offset, chunk_len in meta["ram"]:
            ram.append((offset, data[pos : pos + chunk_len]))
            pos += chunk_len
        board = tuple(
            (key, tuple(v) if isinstance(v, list) and key.endswith("_stop") else v) for key, v in meta["board"]
        )
        devices = tuple((name, fields) for name, fields in meta["devices"])
        state = MachineState(meta["icount"], context, PageTable.from_chunks(ram_size, ram), devices, board)
        return state, int(meta.get("log_position", 0))
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise RecordingError(f"the initial snapshot is malformed: {exc}") from None


def _plain(value: object) -> object:
    """JSON-able form of device/board fields (deques and tuples become lists)."""
    if isinstance(value, deque | tuple | list):
        return [_plain(v) for v in value]
    return value


# -- whole recordings ------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedRecording:
    """A recording read into memory: header, initial snapshot, events, and damage if any."""

    header: Header
    initial: MachineState
    events: list[Event]
    damage: Damage | None
    keyframes: dict[int, tuple[MachineState, int]]  # icount -> state after debugger writes, log position


def load_recording(stream: BinaryIO) -> LoadedRecording:
    """Read a whole recording (raises RecordingError when it has no usable header or initial snapshot)."""
    reader = LogReader(stream)
    header = Header.from_json(reader.header)
    initial = None
    events: list[Event] = []
    keyframes: dict[int, tuple[MachineState, int]] = {}
    for chunk in reader.chunks():
        if chunk.kind == ChunkKind.SNAPSHOT and chunk.first_icount == 0 and initial is None:
            initial = decode_state(chunk.data, header.ram_size)
        elif chunk.kind == ChunkKind.SNAPSHOT:
            keyframes[chunk.first_icount] = decode_snapshot(chunk.data, header.ram_size)
        elif chunk.kind == ChunkKind.EVENTS:
            events += decode_events(chunk.data, chunk.prefix_icount)
    if initial is None:
        raise RecordingError("the recording has no initial snapshot")
    return LoadedRecording(header, initial, events, reader.damage, keyframes)


def write_recording(stream: BinaryIO, header: Header, initial: MachineState, events: list[Event],
                    keyframes: dict[int, tuple[MachineState, int]] | None = None) -> None:  # fmt: skip
    """Write a whole recording: header, the initial snapshot, keyframes, the events (ending with an End event)."""
    writer = LogWriter(stream, header.to_json())
    writer.write_snapshot(initial.icount, encode_state(initial))
    for icount, (state, position) in sorted((keyframes or {}).items()):
        writer.write_snapshot(icount, encode_state(state, position))
    for start in range(0, len(events), EVENTS_PER_CHUNK):
        writer.write_events(events[start : start + EVENTS_PER_CHUNK])


EVENTS_PER_CHUNK = 4096
