"""Guest memory as a debugger sees it: reads without side effects, writes to RAM only."""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Mapping, Sequence

from unicorn import UC_PROT_EXEC, UC_PROT_READ, Uc
from unicorn.unicorn_py3 import unicorn as _ucmod  # private: pinned unicorn==2.1.4 (docs/unicorn-facts.md)

from .boards.virt import Region
from .devices.base import Device

PAGE = 4096
ADDRESS_END = 1 << 64  # the memory map covers every address gdb can ask for


class DebugMemoryError(Exception):
    """A debugger access to memory that is not there (or not writable)."""


class DebugMemory:
    """``m``/``M``/``X`` and ``qXfer:memory-map:read`` for one machine.

    Device registers are read with :meth:`Device.peek`: registers whose read
    would change the device (UART RBR, PLIC claim) or depend on the exact
    icount read as zero. ``code_written`` is called after a write to RAM, so
    decoded code there is forgotten.
    """

    def __init__(
        self, uc: Uc, regions: Sequence[Region], devices: Mapping[str, Device], code_written: Callable[[], None],
        translated: Callable[[], bool] | None = None,
    ) -> None:  # fmt: skip
        """``translated()``: the CPU's addresses go through its MMU now (then the debugger's addresses do too,
        as QEMU's gdbstub reads and writes them: a Linux guest's kernel and user addresses)."""
        self._uc = uc
        self._translated = translated
        self._regions = regions
        self._devices = devices
        self._code_written = code_written
        # The memory region (RAM or ROM) last read: gdb's reads cluster (a stop reads the stack and the code
        # around pc, ~13 reads per stepi), and one region usually covers them.
        self._last = regions[-1]

    def _region_at(self, addr: int) -> Region | None:
        return next((r for r in self._regions if r.contains(addr)), None)

    def _pieces(self, addr: int, length: int) -> list[tuple[int, int]]:
        """[addr, addr + length) as (physical address, length) pieces: through the MMU when it is on."""
        if self._translated is None or not self._translated():
            return [(addr, length)]
        pieces, at, end = [], addr, addr + length
        physical = ctypes.c_uint64()
        while at < end:
            size = min(end, (at | (PAGE - 1)) + 1) - at
            # Readable, or else executable (a debugger reads code it may not load), as the CPU maps it now.
            if all(_ucmod.uclib.uc_vmem_translate(self._uc._uch, ctypes.c_uint64(at), prot, ctypes.byref(physical))
                   for prot in (UC_PROT_READ, UC_PROT_EXEC)):  # fmt: skip
                raise DebugMemoryError(f"no mapping for virtual address {at:#x}")
            pieces.append((physical.value, size))
            at += size
        return pieces

    def read(self, addr: int, length: int) -> bytes:
        """Bytes at guest ``addr`` (virtual while the MMU is on); DebugMemoryError where nothing is mapped."""
        pieces = self._pieces(addr, length)
        if len(pieces) == 1:
            return self._read_physical(*pieces[0])
        return b"".join(self._read_physical(at, size) for at, size in pieces)

    def _read_physical(self, addr: int, length: int) -> bytes:
        last = self._last
        if last.base <= addr and addr + length <= last.end and length > 0:
            # Wholly inside the memory region read last: one native read (the binding's mem_read and the
            # region walk below cost twice as much). On any failure the general path decides.
            buf = ctypes.create_string_buffer(length)
            if _ucmod.uclib.uc_mem_read(self._uc._uch, addr, buf, length) == 0:
                return buf.raw
        return self._read_regions(addr, length)

    def _read_regions(self, addr: int, length: int) -> bytes:
        out = bytearray()
        while len(out) < length:
            at = addr + len(out)
            region = self._region_at(at)
            if region is None:
                raise DebugMemoryError(f"no memory at {at:#x}")
            chunk = min(length - len(out), region.end - at)
            if region.kind == "mmio":
                device = self._devices[region.name]
                width = device.access_size
                for i in range(chunk):
                    offset = at - region.base + i
                    value = device.peek(offset - offset % width, width) or 0
                    out.append((value >> (8 * (offset % width))) & 0xFF)
            else:
                self._last = region
                out += self._uc.mem_read(at, chunk)
        return bytes(out)

    def write(self, addr: int, data: bytes) -> None:
        """Write RAM (at virtual addresses while the MMU is on, whatever the page's permissions, as a debugger
        does). DebugMemoryError for unmapped memory, the boot ROM and devices (a debugger's device write would be
        an unlogged, non-deterministic input); nothing is written then."""
        pieces = self._pieces(addr, len(data))
        for at, size in pieces:
            self._check_writable(at, size)
        if not data:
            return
        done = 0
        for at, size in pieces:
            self._uc.mem_write(at, data[done : done + size])
            done += size
        self._uc.ctl_remove_cache(addr, addr + len(data))  # (translations are found by the address the CPU uses)
        self._code_written()

    def _check_writable(self, addr: int, length: int) -> None:
        end = addr + length
        if length and not any(r.kind == "ram" and r.base <= addr and end <= r.end for r in self._regions):
            raise DebugMemoryError(f"cannot write {length} bytes at {addr:#x}: only RAM is writable")

    def memory_map_xml(self) -> str:
        """The boot ROM as ROM; everything else as RAM (devices, so that gdb reads them, and the gaps: with the
        MMU on, any address may be mapped; the server answers an error where nothing is)."""
        rows, at = [], 0
        for r in sorted(self._regions, key=lambda r: r.base):
            if r.kind != "rom":
                continue
            if r.base > at:
                rows.append(f'  <memory type="ram" start="{at:#x}" length="{r.base - at:#x}"/>')
            rows.append(f'  <memory type="rom" start="{r.base:#x}" length="{r.size:#x}"/>')
            at = r.end
        rows.append(f'  <memory type="ram" start="{at:#x}" length="{ADDRESS_END - at:#x}"/>')
        return (
            '<?xml version="1.0"?>\n<!DOCTYPE memory-map PUBLIC "+//IDN gnu.org//DTD GDB Memory Map V1.0//EN" '
            '"http://sourceware.org/gdb/gdb-memory-map.dtd">\n<memory-map>\n' + "\n".join(rows) + "\n</memory-map>\n"
        )
