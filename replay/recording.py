"""A recording on disk: its header (what was recorded, how) and the checks before replaying it."""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass

from machine.loader import Image

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
