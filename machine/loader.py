"""Guest images: ELF files (segments, entry, symbols) and raw binaries."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

EM_RISCV = 243


class ImageError(Exception):
    """The guest image cannot be used: a clear, one-line reason."""


@dataclass(frozen=True, slots=True)
class Segment:
    """Bytes to place at a physical address; ``mem_size`` beyond the data is zeroed."""

    addr: int
    data: bytes
    mem_size: int


@dataclass(frozen=True, slots=True)
class Image:
    """A loadable guest: where it goes, where it starts, which architecture."""

    path: str
    entry: int
    segments: tuple[Segment, ...]
    xlen: int | None  # None for raw binaries (the user says --arch)
    sha256: str
    symbols: dict[str, int] = field(default_factory=dict)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_image(path: str | Path, load_addr: int | None = None) -> Image:
    """Load an ELF file, or a raw binary placed at ``load_addr``."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read guest image {path}: {exc.strerror or exc}") from exc
    if data[:4] == b"\x7fELF":
        if load_addr is not None:
            raise ImageError(f"{path} is an ELF file: --load-addr is only for raw binaries")
        return _load_elf(path, data)
    if load_addr is None:
        raise ImageError(f"{path} is not an ELF file (give --load-addr and --arch to load a raw binary)")
    if not data:
        raise ImageError(f"{path} is empty")
    return Image(str(path), load_addr, (Segment(load_addr, data, len(data)),), None, _digest(data))


def _load_elf(path: Path, data: bytes) -> Image:
    import io

    try:
        elf = ELFFile(io.BytesIO(data))
        machine = elf["e_machine"]
        if machine not in ("EM_RISCV", EM_RISCV):
            raise ImageError(f"{path} is an ELF file for {machine}, not RISC-V")
        segments = []
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_LOAD" or seg["p_memsz"] == 0:
                continue
            contents = seg.data()
            if len(contents) != seg["p_filesz"]:
                raise ImageError(f"{path} is truncated: a segment at {seg['p_paddr']:#x} is cut short")
            segments.append(Segment(seg["p_paddr"], contents, seg["p_memsz"]))
        symbols = {}
        symtab = elf.get_section_by_name(".symtab")
        if symtab is not None:
            for sym in symtab.iter_symbols():
                if sym.name and sym["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE"):
                    symbols.setdefault(sym.name, sym["st_value"])
        entry = elf["e_entry"]
        xlen = elf.elfclass
    except ELFError as exc:
        raise ImageError(f"{path} is not a valid ELF file: {exc}") from exc
    if not segments:
        raise ImageError(f"{path} has no loadable segments")
    return Image(str(path), entry, tuple(segments), xlen, _digest(data), symbols)
