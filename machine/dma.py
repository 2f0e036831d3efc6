"""Guest RAM as devices reach it (DMA), and the drives the board attaches to virtio slots.

Devices read and write RAM directly (not through instructions), so nothing in Unicorn sees those writes:
:class:`DmaMemory` checks every access against RAM and notes every write, so that the machine can drop
the translations of code a device overwrote (a firmware loading a program from disk and jumping to it) and
report watched bytes a device changed (see the Watchpoints section of the README).
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass

from .devices.virtqueue import GuestMemoryError
from .overlay import DEFAULT_SPILL_AFTER


@dataclass(frozen=True, slots=True)
class DriveConfig:
    """One ``--drive``: a raw disk image (never written) and whether the guest may write its overlay."""

    path: str
    readonly: bool = False
    spill_after: int = DEFAULT_SPILL_AFTER  # written bytes kept in memory before the overlay spills to a file


class DmaMemory:
    """RAM at ``base`` for devices: bounds-checked reads and writes, writes noted until taken."""

    def __init__(self, ram: mmap.mmap, base: int) -> None:
        self._ram = ram
        self._base = base
        self._size = len(ram)
        self._written: list[tuple[int, int]] = []

    def check(self, addr: int, size: int) -> None:
        """GuestMemoryError unless [addr, addr+size) lies in RAM."""
        offset = addr - self._base
        if size < 0 or offset < 0 or offset + size > self._size:
            raise GuestMemoryError(f"{size} bytes at {addr:#x} are outside RAM")

    def read(self, addr: int, size: int) -> bytes:
        self.check(addr, size)
        offset = addr - self._base
        return self._ram[offset : offset + size]

    def write(self, addr: int, data: bytes) -> None:
        self.check(addr, len(data))
        if not data:
            return
        offset = addr - self._base
        self._ram[offset : offset + len(data)] = data
        self._written.append((addr, len(data)))

    def take_written(self) -> list[tuple[int, int]]:
        """The (address, length) of every write since the last call."""
        written, self._written = self._written, []
        return written
