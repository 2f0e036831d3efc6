"""machine/loader.py: ELF and raw images, and clear ImageErrors for everything else."""

from __future__ import annotations

import hashlib
import random
import struct
from pathlib import Path

import pytest

from machine import loader
from machine.loader import Image, ImageError, Segment, load_image
from tests.conftest import ROOT, guest, require_tool

HELLO32 = guest("rv32", "hello")
HELLO64 = guest("rv64", "hello")


def test_rv32_elf() -> None:
    image = load_image(HELLO32)
    assert isinstance(image, Image)
    assert image.entry == 0x8000_0000
    assert image.xlen == 32
    assert image.path == str(HELLO32)
    assert "main" in image.symbols
    assert image.segments[0].addr <= image.symbols["main"] < image.segments[0].addr + image.segments[0].mem_size
    assert image.sha256 == hashlib.sha256(HELLO32.read_bytes()).hexdigest()


def test_rv32_elf_segments_match_program_headers() -> None:
    image = load_image(HELLO32)
    assert image.segments
    first = image.segments[0]
    assert first.addr == 0x8000_0000
    assert 0 < len(first.data) <= first.mem_size
    assert first.data == HELLO32.read_bytes()[0x1000 : 0x1000 + len(first.data)]  # .text at file offset 4 KiB
    for seg in image.segments:
        assert isinstance(seg, Segment)
        assert len(seg.data) <= seg.mem_size
        assert seg.addr >= 0x8000_0000
    ends = sorted((s.addr, s.addr + s.mem_size) for s in image.segments)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(ends, ends[1:], strict=False))


def test_rv64_elf() -> None:
    image = load_image(HELLO64)
    assert image.xlen == 64
    assert image.entry == 0x8000_0000
    assert "main" in image.symbols
    assert image.sha256 != load_image(HELLO32).sha256


def test_path_may_be_a_string() -> None:
    assert load_image(str(HELLO32)).entry == load_image(HELLO32).entry


def test_raw_binary_with_load_addr(tmp_path: Path) -> None:
    raw = tmp_path / "fw.bin"
    raw.write_bytes(b"\x13\x00\x00\x00" * 3)
    image = load_image(raw, load_addr=0x8020_0000)
    assert image.entry == 0x8020_0000
    assert image.xlen is None
    assert image.segments == (Segment(0x8020_0000, raw.read_bytes(), 12),)
    assert image.symbols == {}
    assert image.sha256 == hashlib.sha256(raw.read_bytes()).hexdigest()


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.elf"
    with pytest.raises(ImageError, match=r"cannot read guest image .*nope\.elf: No such file"):
        load_image(missing)


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="cannot read guest image"):
        load_image(tmp_path)


def test_not_elf_without_load_addr(tmp_path: Path) -> None:
    raw = tmp_path / "fw.bin"
    raw.write_bytes(b"\x13\x00\x00\x00")
    with pytest.raises(ImageError, match=r"is not an ELF file \(give --load-addr"):
        load_image(raw)


def test_elf_with_load_addr() -> None:
    with pytest.raises(ImageError, match="is an ELF file: --load-addr is only for raw binaries"):
        load_image(HELLO32, load_addr=0x8000_0000)


def test_empty_raw_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="is empty"):
        load_image(empty, load_addr=0x8000_0000)
    with pytest.raises(ImageError, match="not an ELF file"):
        load_image(empty)


def test_x86_elf_is_not_riscv() -> None:
    true = Path("/bin/true")
    require_tool(true, "no /bin/true on this host")
    with pytest.raises(ImageError, match=r"ELF file for EM_X86_64, not RISC-V, AArch64 or Arm"):
        load_image(true)


def test_truncated_elf_header(tmp_path: Path) -> None:
    cut = tmp_path / "cut.elf"
    cut.write_bytes(HELLO32.read_bytes()[:100])
    with pytest.raises(ImageError, match=r"cut\.elf is not a valid ELF file"):
        load_image(cut)


def test_elf_magic_only(tmp_path: Path) -> None:
    cut = tmp_path / "magic.elf"
    cut.write_bytes(b"\x7fELF")
    with pytest.raises(ImageError, match="not a valid ELF file"):
        load_image(cut)


def test_truncated_segment_data_is_an_error(tmp_path: Path) -> None:
    """An ELF without section headers (as `sstrip` leaves them) cut inside a PT_LOAD segment:
    the segment's bytes are short of p_filesz, which must be refused, not loaded half-way."""
    data = bytearray(HELLO32.read_bytes())
    struct.pack_into("<I", data, 0x20, 0)  # e_shoff
    struct.pack_into("<HH", data, 0x30, 0, 0)  # e_shnum, e_shstrndx
    whole = tmp_path / "noshdr.elf"
    whole.write_bytes(data)
    text = load_image(whole).segments[0]
    assert len(text.data) > 0x100  # the un-truncated file loads in full
    cut = tmp_path / "noshdr-cut.elf"
    cut.write_bytes(data[: 0x1000 + 0x100])  # .text starts at file offset 0x1000
    with pytest.raises(ImageError):
        load_image(cut)


def test_elf_without_loadable_segments(tmp_path: Path) -> None:
    data = bytearray(HELLO32.read_bytes())
    phoff = struct.unpack_from("<I", data, 0x1C)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x2A)
    for i in range(phnum):
        struct.pack_into("<I", data, phoff + i * phentsize, 4)  # p_type = PT_NOTE
    odd = tmp_path / "noload.elf"
    odd.write_bytes(data)
    with pytest.raises(ImageError, match="has no loadable segments"):
        load_image(odd)


# -- the fast ELF reader (struct alone: pyelftools' import is a tenth of `chronicorn run`'s start-up) ----------
def _reference(path: Path, data: bytes) -> object:
    """What pyelftools makes of the file: the parsed tuple, or the exception it ends with."""
    try:
        return loader._parse_elf(path, data)
    except Exception as exc:  # noqa: BLE001 - any outcome is compared, crashes included
        return exc


def test_every_elf_in_the_repository_takes_the_fast_path_and_reads_as_pyelftools_reads_it() -> None:
    elves = [p for p in sorted(ROOT.rglob("*.elf")) if ".venv" not in p.parts]
    assert len(elves) >= 20
    for path in elves:
        data = path.read_bytes()
        quick = loader._parse_elf_quickly(data)
        assert quick is not None, f"{path} took the slow path"
        assert quick == _reference(path, data), path


@pytest.mark.parametrize("xlen", ["rv32", "rv64"])
def test_the_fast_reader_agrees_with_pyelftools_or_defers_to_it_on_damaged_files(xlen: str) -> None:
    """Random damage to the headers, the tables and anywhere else, and truncation: whenever the fast reader
    answers, pyelftools reads the same entry, segments, class and symbols (and raises nothing); otherwise it
    answers None and load_image uses pyelftools (same result, same error, as before the fast path)."""
    path = guest(xlen, "hello")
    base = path.read_bytes()
    if base[4] == 1:
        phoff, shoff = struct.unpack_from("<II", base, 0x1C)
        shentsize, shnum = struct.unpack_from("<HH", base, 0x2E)
    else:
        phoff, shoff = struct.unpack_from("<QQ", base, 0x20)
        shentsize, shnum = struct.unpack_from("<HH", base, 0x3A)
    regions = [(0, 64), (phoff, phoff + 4 * 56), (shoff, shoff + shentsize * shnum), (0, len(base))]
    rng = random.Random(f"elf-{xlen}")
    fast = 0
    for case in range(500):
        data = bytearray(base)
        for _ in range(rng.choice((1, 1, 2, 3, 6))):
            low, high = rng.choice(regions)
            at = rng.randrange(low, min(high, len(data)))
            data[at] = rng.choice((0, 0xFF, 1, 2, 3, 0x70, 0x08, rng.randrange(256), data[at] ^ 1 << rng.randrange(8)))
        if rng.random() < 0.1:
            data = data[: rng.randrange(len(data))]
        quick = loader._parse_elf_quickly(bytes(data))
        if quick is not None:
            fast += 1
            assert quick == _reference(path, bytes(data)), f"case {case}"
    assert 100 < fast < 450  # both paths exercised


def test_the_fast_reader_defers_on_what_pyelftools_parses_itself() -> None:
    data = bytearray(HELLO32.read_bytes())
    assert loader._parse_elf_quickly(bytes(data)) is not None
    big_endian = bytearray(data)
    big_endian[5] = 2
    assert loader._parse_elf_quickly(bytes(big_endian)) is None
    phoff = struct.unpack_from("<I", data, 0x1C)[0]
    note = bytearray(data)
    struct.pack_into("<I", note, phoff, 4)  # PT_NOTE: pyelftools' NoteSegment
    assert loader._parse_elf_quickly(bytes(note)) is None
    entry, segments, xlen, symbols, _ = loader._parse_elf(HELLO32, bytes(data))
    image = load_image(HELLO32)
    assert (image.entry, list(image.segments), image.xlen, image.symbols) == (entry, segments, xlen, symbols)
