"""Guest images: ELF files (segments, entry, symbols) and raw binaries."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

EM_ARM, EM_AARCH64, EM_RISCV = 40, 183, 243
KNOWN_MACHINES = {EM_RISCV: "RISC-V", EM_AARCH64: "AArch64", EM_ARM: "Arm"}


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
    elf_machine: int | None = None  # e_machine (EM_RISCV, EM_AARCH64, EM_ARM); None for raw binaries


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
    return _raw(path, data, load_addr)


def load_raw(path: str | Path, load_addr: int, what: str = "image") -> Image:
    """A file's bytes as they are, at ``load_addr`` (an initrd: whatever its contents)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc
    return _raw(path, data, load_addr)


def _raw(path: Path, data: bytes, load_addr: int) -> Image:
    if not data:
        raise ImageError(f"{path} is empty")
    return Image(str(path), load_addr, (Segment(load_addr, data, len(data)),), None, _digest(data))


def _load_elf(path: Path, data: bytes) -> Image:
    parsed = _parse_elf_quickly(data)
    entry, segments, xlen, symbols, machine = parsed if parsed is not None else _parse_elf(path, data)
    if not segments:
        raise ImageError(f"{path} has no loadable segments")
    return Image(str(path), entry, tuple(segments), xlen, _digest(data), symbols, machine)


_Parsed = tuple[int, list[Segment], int, dict[str, int], int]  # entry, loadable segments, xlen, symbols, e_machine
_MACHINE_NAMES = {"EM_RISCV": EM_RISCV, "EM_AARCH64": EM_AARCH64, "EM_ARM": EM_ARM}


def _parse_elf(path: Path, data: bytes) -> _Parsed:
    """The ELF file as pyelftools reads it: the reference, and every error message."""
    import io

    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(io.BytesIO(data))
        name = elf["e_machine"]
        machine = _MACHINE_NAMES.get(name, name)
        if machine not in KNOWN_MACHINES:
            raise ImageError(f"{path} is an ELF file for {name}, not RISC-V, AArch64 or Arm")
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
        return elf["e_entry"], segments, elf.elfclass, symbols, machine
    except ELFError as exc:
        raise ImageError(f"{path} is not a valid ELF file: {exc}") from exc


# The fast path: what pyelftools would read from a plain little-endian RISC-V ELF file, with struct alone
# (importing pyelftools is a tenth of ``chronicorn run``'s start-up). It answers None for anything it does
# not know pyelftools reads the same way without complaint (big-endian, extended numbering, compressed or
# special sections pyelftools parses when it lists them, tables past the end of the file, a truncated
# segment...): :func:`_parse_elf` then reads the file, so results and error messages are pyelftools' own.
_Layout = tuple[struct.Struct, struct.Struct, struct.Struct, struct.Struct, itemgetter, itemgetter]
_ELF: dict[int, _Layout] = {  # ELFCLASS -> header, program header, section header and symbol layouts
    # (little-endian), and where p_type, p_offset, p_paddr, p_filesz, p_memsz and st_name, st_value, st_info are
    1: (struct.Struct("<16sHHIIIIIHHHHHH"), struct.Struct("<8I"), struct.Struct("<10I"), struct.Struct("<IIIBBH"),
        itemgetter(0, 1, 3, 4, 5), itemgetter(0, 1, 3)),
    2: (struct.Struct("<16sHHIQQQIHHHHHH"), struct.Struct("<IIQQQQQQ"), struct.Struct("<IIQQQQIIQQ"),
        struct.Struct("<IBBHQQ"), itemgetter(0, 2, 4, 5, 6), itemgetter(0, 4, 1)),
}  # fmt: skip
_PT_LOAD, _PT_NEEDS_PARSING = 1, (2, 3, 4)  # PT_DYNAMIC, PT_INTERP, PT_NOTE get their own parsing classes
_SHT_NULL, _SHT_PROGBITS, _SHT_SYMTAB, _SHT_STRTAB, _SHT_NOBITS = 0, 1, 2, 3, 8
_SHT_PLAIN = {_SHT_NULL, _SHT_PROGBITS, _SHT_STRTAB, _SHT_NOBITS, 14, 15, 16}  # + INIT/FINI/PREINIT_ARRAY
_SHT_RISCV_ATTRIBUTES = 0x7000_0003
_SHF_COMPRESSED = 0x800
_SHN_XINDEX, _PN_XNUM = 0xFFFF, 0xFFFF
_STT_KEPT = (0, 1, 2)  # STT_NOTYPE, STT_OBJECT, STT_FUNC


_MAX_SEEK = (1 << 63) - 1  # pyelftools seeks a BytesIO: further is an OverflowError


def _cstring(data: bytes, offset: int) -> str | None:
    """pyelftools' ``StringTableSection.get_string``: up to the NUL; '' when there is none before the end
    (None: pyelftools could not seek there)."""
    if offset > _MAX_SEEK:
        return None
    end = data.find(b"\0", offset)
    return data[offset:end].decode("utf-8", errors="replace") if end > offset else ""


def _parse_elf_quickly(data: bytes) -> _Parsed | None:
    if data[:4] != b"\x7fELF" or len(data) < 6 or data[5] != 1:  # EI_DATA: little-endian only
        return None
    layouts = _ELF.get(data[4])  # EI_CLASS
    if layouts is None:
        return None
    ehdr, phdr, shdr, sym, phdr_fields, sym_fields = layouts
    if len(data) < ehdr.size:
        return None
    (_, _, e_machine, _, e_entry, e_phoff, e_shoff, _, _,
     e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx) = ehdr.unpack_from(data)  # fmt: skip
    if e_machine not in KNOWN_MACHINES:
        return None
    segments = []
    if e_phnum:
        if e_phnum == _PN_XNUM or e_phentsize != phdr.size or not 0 < e_phoff <= len(data) - e_phnum * phdr.size:
            return None
        for i in range(e_phnum):
            p_type, p_offset, p_paddr, p_filesz, p_memsz = phdr_fields(phdr.unpack_from(data, e_phoff + i * phdr.size))
            if p_type in _PT_NEEDS_PARSING:
                return None
            if p_type != _PT_LOAD or p_memsz == 0:
                continue
            if p_offset > _MAX_SEEK:
                return None
            contents = data[p_offset : p_offset + p_filesz]
            if len(contents) != p_filesz:
                return None
            segments.append(Segment(p_paddr, contents, p_memsz))
    symbols: dict[str, int] = {}
    if e_shoff == 0:
        return e_entry, segments, data[4] * 32, symbols, e_machine
    if (not e_shnum or e_shentsize != shdr.size or not e_shoff <= len(data) - e_shnum * shdr.size
            or e_shstrndx == _SHN_XINDEX or e_shstrndx >= e_shnum):  # fmt: skip
        return None
    headers = []  # (name, type, offset, size, link, entsize)
    for i in range(e_shnum):
        name, sh_type, flags, _, offset, size, link, _, _, entsize = shdr.unpack_from(data, e_shoff + i * shdr.size)
        if flags & _SHF_COMPRESSED:
            return None
        headers.append((name, sh_type, offset, size, link, entsize))
    names_at = headers[e_shstrndx][2]
    symtab = None
    for name_offset, sh_type, offset, size, link, entsize in headers:
        name = _cstring(data, names_at + name_offset)
        if name is None:
            return None
        if sh_type == _SHT_SYMTAB:
            if link >= e_shnum or headers[link][1] != _SHT_STRTAB or entsize != sym.size or size % entsize:
                return None
            if offset + size > len(data):
                return None
        elif sh_type == _SHT_RISCV_ATTRIBUTES:
            if offset >= len(data) or data[offset] != ord("A"):  # pyelftools checks the format version
                return None
        elif sh_type not in _SHT_PLAIN or (sh_type == _SHT_PROGBITS and name == ".stab"):
            return None
        if name == ".symtab":
            symtab = (sh_type, offset, size, link)  # the last section of that name, as pyelftools finds it
    if symtab is not None:
        sh_type, offset, size, link = symtab
        if sh_type != _SHT_SYMTAB:
            return None
        strings_at = headers[link][2]
        for at in range(offset, offset + size, sym.size):
            st_name, st_value, st_info = sym_fields(sym.unpack_from(data, at))
            if strings_at + st_name > _MAX_SEEK:  # pyelftools reads every symbol's name
                return None
            if st_info & 0xF in _STT_KEPT:  # the symbol's type
                name = _cstring(data, strings_at + st_name)
                if name:
                    symbols.setdefault(name, st_value)
    return e_entry, segments, data[4] * 32, symbols, e_machine
