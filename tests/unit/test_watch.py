"""machine/watch.py: hook ranges, the native helper's structure, the native and Python checks on one access."""

from __future__ import annotations

import ctypes

import pytest
from hypothesis import given
from hypothesis import strategies as st
from unicorn import UC_ARCH_RISCV, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE, UC_MODE_RISCV64, Uc
from unicorn import riscv_const as rc

from machine.icount import CounterState, StopReason, native_library_path
from machine.watch import ACCESS_MAX, WatchKind, Watchpoint, WatchpointSet, WatchState, _load_native, hook_ranges

CODE, DATA = 0x1000, 0x10000


def test_native_watch_helper_is_built_and_matches_its_mirror() -> None:
    path = native_library_path()
    assert path is not None
    assert ctypes.CDLL(path).chron_watch_size() == ctypes.sizeof(WatchState)


def test_hook_ranges_start_below_the_watched_bytes_and_split_by_kind() -> None:
    write = Watchpoint(WatchKind.WRITE, 0x1000, 4)
    read = Watchpoint(WatchKind.READ, 0x2000, 1)
    ranges = hook_ranges([write, read])
    assert ranges == {
        UC_HOOK_MEM_WRITE: [(0x1000 - ACCESS_MAX + 1, 0x1003)],
        UC_HOOK_MEM_READ: [(0x2000 - ACCESS_MAX + 1, 0x2000)],
    }
    both = hook_ranges([Watchpoint(WatchKind.ACCESS, 4, 2)])
    assert both == {UC_HOOK_MEM_WRITE: [(0, 5)], UC_HOOK_MEM_READ: [(0, 5)]}  # clamped at address 0
    assert hook_ranges([]) == {}


def test_touching_and_overlapping_ranges_merge() -> None:
    ws = [Watchpoint(WatchKind.WRITE, 0x100, 8), Watchpoint(WatchKind.WRITE, 0x108 + ACCESS_MAX - 1, 4),
          Watchpoint(WatchKind.ACCESS, 0x104, 1), Watchpoint(WatchKind.WRITE, 0x400, 1)]  # fmt: skip
    assert hook_ranges(ws)[UC_HOOK_MEM_WRITE] == [(0x100 - ACCESS_MAX + 1, 0x108 + ACCESS_MAX + 2),
                                                   (0x400 - ACCESS_MAX + 1, 0x400)]  # fmt: skip


@given(
    addr=st.integers(0, 1 << 20),
    length=st.integers(1, 64),
    access=st.integers(0, (1 << 20) + 80),
    size=st.sampled_from([1, 2, 4, 8, 16]),
)
def test_every_overlapping_access_starts_inside_a_hook_range(addr: int, length: int, access: int, size: int) -> None:
    """Unicorn checks only an access's first address against a hook's range (partial overlaps from below)."""
    watchpoint = Watchpoint(WatchKind.ACCESS, addr, length)
    if watchpoint.hit_by(True, access, size) is None:
        return
    for spans in hook_ranges([watchpoint]).values():
        assert any(begin <= access <= end for begin, end in spans)


def _one_access(native: bool, insn: bytes, watchpoints: list[Watchpoint], suspended: bool = False,
                stopped: bool = False) -> tuple[object, ...]:  # fmt: skip
    """Run one load/store at DATA+3 under a watch set: what the hook recorded and did."""
    uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
    uc.mem_map(CODE, 0x1000)
    uc.mem_map(DATA, 0x1000)
    uc.mem_write(CODE, insn)
    uc.mem_write(DATA, bytes(range(1, 17)))
    uc.reg_write(rc.UC_RISCV_REG_A0, DATA + 3)
    uc.reg_write(rc.UC_RISCV_REG_T0, 0xA0B0C0D0E0F01020)
    counter = CounterState()
    counter.fast_limit = 99
    counter.stop_reason = StopReason.LIMIT if stopped else StopReason.NONE
    watch = WatchpointSet(uc, counter, native)
    assert watch.is_native == native
    watch.replace(watchpoints)
    watch.suspended = suspended
    uc.emu_start(CODE, CODE + len(insn))
    hit = watch.take_hit()
    assert watch.take_hit() is None  # taken once
    return hit, int(counter.stop_reason), int(counter.fast_limit)


SD = (0x00553023).to_bytes(4, "little")  # sd t0, 0(a0): 8 bytes at DATA+3
LW = (0x00052303).to_bytes(4, "little")  # lw t1, 0(a0): 4 bytes at DATA+3


@pytest.mark.parametrize(
    ("insn", "watchpoints"),
    [
        (SD, [Watchpoint(WatchKind.WRITE, DATA + 10, 4)]),  # the store starts below and overlaps one byte
        (SD, [Watchpoint(WatchKind.READ, DATA + 4, 4), Watchpoint(WatchKind.ACCESS, DATA + 6, 2)]),  # second
        (SD, [Watchpoint(WatchKind.WRITE, DATA + 11, 4)]),  # just past the store: no hit
        (SD, [Watchpoint(WatchKind.WRITE, DATA, 3)]),  # just before it: no hit
        (LW, [Watchpoint(WatchKind.WRITE, DATA + 4, 1), Watchpoint(WatchKind.READ, DATA + 2, 2)]),
        (LW, [Watchpoint(WatchKind.ACCESS, DATA + 6, 8)]),
    ],
)
def test_native_and_python_checks_agree_on_one_access(insn: bytes, watchpoints: list[Watchpoint]) -> None:
    if _load_native() is None:
        pytest.skip("native helper not built")
    native = _one_access(True, insn, watchpoints)
    assert native == _one_access(False, insn, watchpoints)
    hit = native[0]
    if hit is not None:
        assert native[1:] == (StopReason.EXTERNAL, 0)  # stopped as the counter's own stops do
        w = hit.watchpoint  # type: ignore[attr-defined]
        assert hit.addr == max(DATA + 3, w.addr)  # type: ignore[attr-defined]
        expected = (DATA + 3, bytes(range(4, 12))) if insn == SD else None  # the bytes before the store
        assert hit.restore == expected  # type: ignore[attr-defined]
    else:
        assert native[1:] == (StopReason.NONE, 99)


@pytest.mark.parametrize("native", [True, False])
def test_suspended_or_already_stopping_reports_nothing(native: bool) -> None:
    if native and _load_native() is None:
        pytest.skip("native helper not built")
    watch = [Watchpoint(WatchKind.WRITE, DATA + 3, 1)]
    assert _one_access(native, SD, watch, suspended=True) == (None, StopReason.NONE, 99)
    assert _one_access(native, SD, watch, stopped=True) == (None, StopReason.LIMIT, 99)
