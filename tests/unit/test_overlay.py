"""The disk overlay: reads and writes against a model, states that share pages, the image never written."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machine.overlay import DEFAULT_SPILL_AFTER, SECTOR, DiskImage, DiskImageError, DiskOverlay
from machine.ram import PAGE

SIZE = 5 * PAGE + 3 * SECTOR  # not a whole number of pages: the last page is partial


def make_image(tmp_path: Path, size: int = SIZE) -> Path:
    path = tmp_path / "disk.img"
    path.write_bytes(bytes((i * 7 + i // 512) & 0xFF for i in range(size)))
    return path


OPS = st.lists(
    st.tuples(
        st.sampled_from(["write", "read", "save", "load"]),
        st.integers(0, SIZE - 1),
        st.integers(0, 3 * PAGE),
        st.integers(0, 255),
    ),
    max_size=40,
)


@pytest.mark.parametrize("spill_after", [DEFAULT_SPILL_AFTER, 2 * PAGE, 0], ids=["memory", "spills", "all-spilled"])
@settings(max_examples=60, deadline=None)
@given(ops=OPS)
def test_overlay_reads_what_a_bytearray_model_holds_and_states_restore_it(spill_after: int, ops: list,
                                                                           tmp_path_factory) -> None:  # noqa: ANN001
    path = make_image(tmp_path_factory.mktemp("disk"))
    original = path.read_bytes()
    with DiskImage(path) as image:
        disk = DiskOverlay(image, spill_after=spill_after)
        model = bytearray(original)
        saved: list[tuple[object, bytes]] = []
        for op, offset, length, byte in ops:
            length = min(length, SIZE - offset)
            if op == "write":
                disk.write(offset, bytes([byte]) * length)
                model[offset : offset + length] = bytes([byte]) * length
            elif op == "read":
                assert disk.read(offset, length) == bytes(model[offset : offset + length])
            elif op == "save":
                saved.append((disk.save(), bytes(model)))
            elif saved:
                state, content = saved[byte % len(saved)]
                disk.load(state)  # type: ignore[arg-type]
                model[:] = content
        assert disk.read(0, SIZE) == bytes(model)
    assert path.read_bytes() == original  # the image is never written


def test_states_share_pages_not_written_since(tmp_path: Path) -> None:
    with DiskImage(make_image(tmp_path)) as image:
        disk = DiskOverlay(image)
        disk.write(0, b"a" * 10)
        disk.write(3 * PAGE, b"b")
        first = disk.save()
        assert disk.save() is not first and disk.save().table is first.table  # nothing written: same image
        disk.write(PAGE + 5, b"c")
        second = disk.save()
        assert second.table.page(0) is first.table.page(0) and second.table.page(3) is first.table.page(3)
        assert second.table.page(1) is not None and first.table.page(1) is None  # None: the image's bytes
        assert second.written_bytes == 3 * PAGE


def test_out_of_disk_accesses_and_readonly_disks_are_refused(tmp_path: Path) -> None:
    with DiskImage(make_image(tmp_path)) as image:
        disk = DiskOverlay(image)
        for offset, length in ((SIZE - 1, 2), (-1, 1), (SIZE, 1)):
            with pytest.raises(ValueError):
                disk.read(offset, length)
            with pytest.raises(ValueError):
                disk.write(offset, bytes(length))
        assert disk.read(SIZE, 0) == b""
        readonly = DiskOverlay(image, readonly=True)
        with pytest.raises(PermissionError):
            readonly.write(0, b"x")


def test_export_writes_image_plus_overlay_and_never_the_image(tmp_path: Path) -> None:
    path = make_image(tmp_path)
    with DiskImage(path) as image:
        disk = DiskOverlay(image)
        disk.write(SIZE - 100, b"z" * 100)
        out = tmp_path / "out.img"
        disk.export(out)
        assert out.read_bytes() == path.read_bytes()[:-100] + b"z" * 100
        with pytest.raises(ValueError, match="image itself"):
            disk.export(path)
        link = tmp_path / "link.img"
        link.symlink_to(path)
        with pytest.raises(ValueError, match="image itself"):
            disk.export(link)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".partial")]


def test_image_checks_and_sha256(tmp_path: Path) -> None:
    path = make_image(tmp_path)
    with DiskImage(path) as image:
        assert image.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    bad = tmp_path / "odd.img"
    bad.write_bytes(b"x" * 513)
    for target, message in (
        (bad, "whole number"),
        (tmp_path, "not a regular file"),
        (tmp_path / "none", "cannot open"),
    ):
        with pytest.raises(DiskImageError, match=message):
            DiskImage(target)
    empty = tmp_path / "empty.img"
    empty.write_bytes(b"")
    with pytest.raises(DiskImageError):
        DiskImage(empty)


def test_past_the_limit_written_pages_live_in_an_unnamed_file(tmp_path: Path) -> None:
    """Pages frozen past ``spill_after`` are views of the spill file (not bytes in memory), shared by states."""
    path = make_image(tmp_path, 64 * PAGE)
    with DiskImage(path) as image:
        disk = DiskOverlay(image, spill_after=4 * PAGE)
        for index in range(3):
            disk.write(index * PAGE, bytes([index + 1]) * PAGE)
        first = disk.save()
        assert disk.spill is None and all(type(page) is bytes for _, page in first.table.chunks())
        for index in range(3, 12):
            disk.write(index * PAGE, bytes([index + 1]) * PAGE)
        second = disk.save()
        assert disk.spill is not None and disk.spill.pages >= 9 - 1
        kinds = {offset // PAGE: type(page) for offset, page in second.table.chunks()}
        assert all(kinds[i] is bytes for i in range(3)) and all(kinds[i] is memoryview for i in range(4, 12))
        assert [p for _, p in second.table.chunks()][:3] == [p for _, p in first.table.chunks()]  # shared
        assert os.listdir(tmp_path) == ["disk.img"]  # the spill file has no name
        disk.load(first)
        assert disk.read(0, 12 * PAGE) == b"".join(bytes([i + 1]) * PAGE for i in range(3)) + path.read_bytes()[
            3 * PAGE : 12 * PAGE]  # fmt: skip
        disk.load(second)
        assert disk.read(0, 12 * PAGE) == b"".join(bytes([i + 1]) * PAGE for i in range(12))
