#!/usr/bin/env python3
"""Exact icount vs bare Unicorn on a compute-heavy guest, measured in the same run.

Each round runs the guest twice: on a bare Unicorn engine with no hooks at all
(RAM mapped from a host buffer, devices as plain MMIO callbacks, stopped by the
finisher write) and on chronicorn's machine with exact instruction counting.
Prints per-round times, the icount and the median ratio (bare time / counted
time: 1.0 means counting is free). The issue's bar is a median >= 0.8.

    scripts/bench_icount.py [--guest ELF ...] [--rounds 5] [--fallback]

By default the compute guests of every architecture are measured: rv32 and rv64 (~75M instructions each),
AArch64 and Cortex-M (compute100m, ~100M).
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import statistics
import sys
import time
from pathlib import Path

from unicorn import UC_HOOK_INTR, UC_PROT_ALL, arm_const

from machine.arch.registry import choose_arch
from machine.boards import arm_virt, mps2, virt
from machine.factory import make_machine
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import MachineConfig, RunKind

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GUESTS = [
    *(ROOT / f"tests/guests/riscv/build/{xlen}/compute.elf" for xlen in ("rv32", "rv64")),
    ROOT / "tests/guests/aarch64/build/bench/compute100m.elf",  # ~100M instructions
    ROOT / "tests/guests/cortexm/build/bench/compute100m.elf",
]


def run_bare(path: Path) -> tuple[float, bytes]:
    """The guest on Unicorn with no hooks but the exit's; returns (seconds, UART output)."""
    image = load_image(path)
    arch = choose_arch(image, None)
    uc = arch.new_uc()
    out = bytearray()
    entry = image.entry
    if arch.name.startswith("riscv"):
        board, ram_windows = virt, ((virt.RAM_BASE, virt.DEFAULT_RAM_SIZE),)
    elif arch.name == "aarch64":
        board, ram_windows = arm_virt, ((arm_virt.RAM_BASE, arm_virt.DEFAULT_RAM_SIZE),)
    else:
        board, ram_windows = mps2, tuple((b, n) for b, _, n in mps2.RAM_WINDOWS)
    uart, tx_offset = "uart0", 0  # the data register of every board's console UART
    buffers = []
    for base, size in ram_windows:
        ram = mmap.mmap(-1, size)
        buffers.append((base, ram))
        uc.mem_map_ptr(base, size, UC_PROT_ALL, ctypes.addressof(ctypes.c_char.from_buffer(ram)))

    def read(uc, offset, size, data):  # noqa: ANN001 - unicorn callback
        return 0x60 if data == "uart0" and offset == 5 and board is virt else 0

    def write(uc, offset, size, value, data):  # noqa: ANN001
        if data == uart and offset == tx_offset:
            out.append(value & 0xFF)
        if data == "test":
            uc.emu_stop()

    def intr(uc, intno, data):  # noqa: ANN001 - PSCI SYSTEM_OFF (hvc) or semihosting SYS_EXIT (bkpt 0xab)
        uc.emu_stop()

    for region in board.MMIO_REGIONS:
        uc.mmio_map(region.base, region.size, read, region.name, write, region.name)
    if board is not virt:
        uc.hook_add(UC_HOOK_INTR, intr)
    for seg in image.segments:
        for base, ram in buffers:
            if base <= seg.addr < base + len(ram):
                off = seg.addr - base
                ram[off : off + len(seg.data)] = seg.data
    if board is mps2:  # reset: SP and PC from the vector table
        uc.reg_write(arm_const.UC_ARM_REG_SP, int.from_bytes(uc.mem_read(0, 4), "little"))
        entry = int.from_bytes(uc.mem_read(4, 4), "little")
    start = time.perf_counter()
    uc.emu_start(entry, arch.until_addr)
    return time.perf_counter() - start, bytes(out)


def run_counted(path: Path, native: bool) -> tuple[float, bytes, int]:
    """The guest on chronicorn's machine; returns (seconds, UART output, icount)."""
    out = bytearray()
    machine = make_machine(load_image(path), ScriptedInputs(), out.append, MachineConfig(prefer_native=native))
    if native and not machine.is_counter_native:
        sys.exit("the native icount helper is not built: pip install -e . first")
    start = time.perf_counter()
    result = machine.run()
    elapsed = time.perf_counter() - start
    if result.kind != RunKind.EXITED:
        sys.exit(f"guest did not exit: {result.describe()}")
    return elapsed, bytes(out), result.icount


def bench(guest: Path, rounds: int, fallback: bool) -> float:
    """Print the rounds for one guest and return the median ratio."""
    ratios = []
    icount = 0
    print(f"guest {guest}")
    for i in range(rounds):
        bare, bare_out = run_bare(guest)
        counted, out, icount = run_counted(guest, native=True)
        if out != bare_out:
            sys.exit(f"outputs differ: bare {bare_out!r} vs counted {out!r}")
        ratios.append(bare / counted)
        print(
            f"  round {i + 1}: bare {bare * 1e3:7.1f} ms   icount {counted * 1e3:7.1f} ms   "
            f"ratio {bare / counted:.3f}   ({icount / counted / 1e6:.0f} M insn/s)"
        )
    median = statistics.median(ratios)
    print(f"  {icount} instructions; median ratio (bare time / icount time) over {rounds} rounds: {median:.3f}")
    if fallback:
        slow, _, _ = run_counted(guest, native=False)
        print(f"  pure-Python fallback: {slow:.2f} s ({icount / slow / 1e6:.1f} M insn/s)")
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guest", type=Path, action="append", help="guest ELF (repeatable)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fallback", action="store_true", help="also time the pure-Python fallback once")
    args = parser.parse_args()
    medians = [bench(guest, args.rounds, args.fallback) for guest in args.guest or DEFAULT_GUESTS]
    print(f"medians: {', '.join(f'{m:.3f}' for m in medians)} (bar: >= 0.8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
