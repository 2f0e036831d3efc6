"""Guest memory as a debugger sees it: reads without side effects, writes to RAM only."""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Mapping, Sequence

from unicorn import Uc
from unicorn.unicorn_py3 import unicorn as _ucmod  # private: pinned unicorn==2.1.4 (docs/unicorn-facts.md)

from .boards.virt import Region
from .devices.base import Device


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
        self, uc: Uc, regions: Sequence[Region], devices: Mapping[str, Device], code_written: Callable[[], None]
    ) -> None:
        self._uc = uc
        self._regions = regions
        self._devices = devices
        self._code_written = code_written
        # The memory region (RAM or ROM) last read: gdb's reads cluster (a stop reads the stack and the code
        # around pc, ~13 reads per stepi), and one region usually covers them.
        self._last = regions[-1]

    def _region_at(self, addr: int) -> Region | None:
        return next((r for r in self._regions if r.contains(addr)), None)

    def read(self, addr: int, length: int) -> bytes:
        """Bytes at guest physical ``addr``; DebugMemoryError where nothing is mapped."""
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
        """Write RAM. DebugMemoryError for unmapped memory, the boot ROM and devices
        (a debugger's device write would be an unlogged, non-deterministic input)."""
        end = addr + len(data)
        if data and not any(r.kind == "ram" and r.base <= addr and end <= r.end for r in self._regions):
            raise DebugMemoryError(f"cannot write {len(data)} bytes at {addr:#x}: only RAM is writable")
        if not data:
            return
        self._uc.mem_write(addr, data)
        self._uc.ctl_remove_cache(addr, end)
        self._code_written()

    def memory_map_xml(self) -> str:
        """RAM, the boot ROM, and devices (listed as RAM so that gdb reads them)."""
        rows = [
            f'  <memory type="{"rom" if r.kind == "rom" else "ram"}" start="{r.base:#x}" length="{r.size:#x}"/>'
            for r in self._regions
        ]
        return (
            '<?xml version="1.0"?>\n<!DOCTYPE memory-map PUBLIC "+//IDN gnu.org//DTD GDB Memory Map V1.0//EN" '
            '"http://sourceware.org/gdb/gdb-memory-map.dtd">\n<memory-map>\n' + "\n".join(rows) + "\n</memory-map>\n"
        )
