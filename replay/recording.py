"""A recording on disk: its header (what was recorded, how) and the checks before replaying it."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections import deque
from dataclasses import asdict, dataclass

from unicorn.unicorn_py3.unicorn import UcContext

from machine.loader import Image
from machine.state import MachineState

from .log import FORMAT_VERSION, RecordingError

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


# -- the initial snapshot (QEMU's rrsnapshot) ---------------------------------------------
def encode_state(state: MachineState) -> bytes:
    """A machine state as bytes: u32 JSON length, JSON (fields), CPU context bytes, RAM chunks."""
    context = bytes(state.context)
    meta = {
        "icount": state.icount,
        "board": [[key, _plain(value)] for key, value in state.board],
        "devices": [[name, {k: _plain(v) for k, v in fields.items()}] for name, fields in state.devices],
        "context": [len(context), state.context.arch, state.context.mode],
        "ram": [[offset, len(data)] for offset, data in state.ram],
    }
    body = json.dumps(meta).encode()
    return struct.pack("<I", len(body)) + body + context + b"".join(data for _, data in state.ram)


def decode_state(data: bytes) -> MachineState:
    """Inverse of :func:`encode_state` (raises RecordingError on malformed input)."""
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
        return MachineState(meta["icount"], context, tuple(ram), devices, board)
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise RecordingError(f"the initial snapshot is malformed: {exc}") from None


def _plain(value: object) -> object:
    """JSON-able form of device/board fields (deques and tuples become lists)."""
    if isinstance(value, deque | tuple | list):
        return [_plain(v) for v in value]
    return value
