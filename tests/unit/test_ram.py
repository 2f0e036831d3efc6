"""Page tables share unchanged pages; capture/restore are exact with and without the native tracker."""

from __future__ import annotations

import ctypes
import mmap

import pytest

from machine.ram import NODE_PAGES, PAGE, PageTable, RamPages
from tests.conftest import require_tool

SIZE = 4 << 20


def new_ram(native: bool) -> tuple[mmap.mmap, RamPages]:
    ram = mmap.mmap(-1, SIZE)
    pages = RamPages(ram, ctypes.addressof(ctypes.c_char.from_buffer(ram)), prefer_native=native)
    return ram, pages


@pytest.fixture(params=[True, False], ids=["native", "python"])
def native(request: pytest.FixtureRequest) -> bool:
    return request.param


def test_capture_shares_every_unchanged_page(native: bool) -> None:
    ram, pages = new_ram(native)
    ram[0:5] = b"hello"
    ram[PAGE * 100 : PAGE * 100 + 3] = b"abc"
    first = pages.capture()
    assert [offset for offset, _ in first.chunks()] == [0, PAGE * 100]
    ram[PAGE * 100] = ord("X")
    second = pages.capture()
    assert second.page(0) is first.page(0)  # shared, not copied
    assert second.page(100) is not first.page(100) and second.page(100)[:3] == b"Xbc"
    assert second.nodes[0] is first.nodes[0]  # whole untouched nodes shared as well
    assert pages.capture() is second  # nothing changed: the same table


def test_restore_writes_back_exactly_any_earlier_image(native: bool) -> None:
    ram, pages = new_ram(native)
    images = []
    for step in range(5):
        ram[step * PAGE * 7 : step * PAGE * 7 + 4] = bytes([step + 1] * 4)
        if step == 3:
            ram[0:5] = bytes(5)  # a page back to zeros
        images.append((pages.capture(), bytes(ram)))
    for table, content in reversed(images):
        pages.restore(table)
        assert bytes(ram) == content
    table, content = images[2]
    ram[SIZE - 1] = 9  # written after the last capture, then a restore must undo it too
    pages.restore(table)
    assert bytes(ram) == content


def test_zero_pages_are_not_stored(native: bool) -> None:
    ram, pages = new_ram(native)
    ram[PAGE : PAGE + 1] = b"\1"
    pages.capture()
    ram[PAGE : PAGE + 1] = b"\0"
    table = pages.capture()
    assert list(table.chunks()) == [] and all(node is None for node in table.nodes)


def test_from_chunks_splits_any_piece_into_pages() -> None:
    data = bytes(range(256)) * (PAGE * 3 // 256)
    table = PageTable.from_chunks(SIZE, [(PAGE * NODE_PAGES - PAGE, data)])
    assert [offset for offset, _ in table.chunks()] == [PAGE * (NODE_PAGES - 1 + i) for i in range(3)]
    assert b"".join(page for _, page in table.chunks()) == data
    with pytest.raises(ValueError):
        PageTable.from_chunks(SIZE, [(1, b"x")])
    with pytest.raises(ValueError):
        PageTable.from_chunks(SIZE, [(SIZE - PAGE, bytes(2 * PAGE))])


def test_the_native_tracker_is_used_when_built() -> None:
    from machine.icount import native_library_path

    require_tool(native_library_path(), "native helper not built")
    _, pages = new_ram(True)
    assert pages.is_tracked


def test_tracking_slots_are_released_with_their_ram() -> None:
    from machine.icount import native_library_path

    require_tool(native_library_path(), "native helper not built")
    for _ in range(300):  # more than the native helper's 256 slots
        ram, pages = new_ram(True)
        assert pages.is_tracked
        ram[0] = 1  # writable through the handler
        assert pages.capture().page(0)[:1] == b"\1"
        del ram, pages


@pytest.mark.slow
def test_scattered_writes_past_the_mapping_limit_stay_correct() -> None:
    """Every other page of 512 MiB written: 131,072 mappings, past Linux's default limit of 65,530.

    The tracker then gives up page protection (no crash) and compares contents; images stay exact either way.
    """
    size = 512 << 20
    ram = mmap.mmap(-1, size)
    pages = RamPages(ram, ctypes.addressof(ctypes.c_char.from_buffer(ram)))
    before = pages.capture()
    for offset in range(0, size, 2 * PAGE):
        ram[offset] = 1
    after = pages.capture()
    assert sum(1 for _ in after.chunks()) == size // (2 * PAGE)
    pages.restore(before)
    assert ram[0] == 0 and ram[size - 2 * PAGE] == 0
    pages.restore(after)
    assert ram[0] == 1 and ram[size - 2 * PAGE] == 1 and ram[PAGE] == 0
