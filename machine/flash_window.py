"""A CFI flash bank on the bus: plain memory while it reads as an array (so code runs from it at full speed),
the device model otherwise (QEMU's ROMD mode of ``pflash_cfi01``).

In read-array mode the bank may be mapped read/execute from a host buffer holding the array; a guest write there
faults (Unicorn: write to protected memory), the board calls :meth:`FlashWindow.to_device`, and the write runs
again as a device access at its exact icount. The device stays mapped after its command sequence (its reads
have no side effects: answered inside ``emu_start``); only an instruction fetch from the bank (a fault on the
device mapping) maps the buffer again (:meth:`to_array`), copying only the pages written since it was filled.
Remapping a 64 MiB bank costs ~10 ms (Unicorn's unmap), and U-Boot's CFI probe issues ~250 commands per bank.

Which of the two is mapped is invisible to the guest (array reads are the same either way, a write reaches the
device either way, a fetch runs the array either way), so it is not state: a restore only makes sure a device
not in read-array mode is mapped (:meth:`after_restore`).
"""

from __future__ import annotations

import ctypes
import mmap

from unicorn import UC_PROT_EXEC, UC_PROT_READ, Uc

from .devices.pflash_cfi01 import PflashCfi01, changed_pages
from .engine import Engine
from .mmio import map_device
from .ram import PAGE, PageTable


class FlashWindow:
    """One bank at ``base``: its device, its array buffer and which of the two is mapped."""

    def __init__(self, uc: Uc, engine: Engine, base: int, device: PflashCfi01, image: bytes = b"") -> None:
        self._uc = uc
        self._engine = engine
        self.base = base
        self.device = device
        self._buffer = mmap.mmap(-1, device.size)
        self._ptr = ctypes.addressof(ctypes.c_char.from_buffer(self._buffer))
        # The buffer holds the image (the device's array before any write; zeros past it) and the written pages
        # of ``_filled``: only pages written since have to be copied.
        self._buffer[: len(image)] = image
        self._filled = PageTable.empty(device.size)
        self._as_array: bool | None = None  # what is mapped now (None: nothing yet)
        self.sync()

    def contains(self, addr: int) -> bool:
        return self.base <= addr < self.base + self.device.size

    def to_device(self) -> None:
        """A write reached the bank while it was memory: map the device (the write then runs as an access)."""
        self._map(as_array=False)

    def sync(self) -> None:
        """Map what the device's mode says, with the buffer up to date."""
        self._map(as_array=self.device.is_array_mode)

    def to_array(self) -> bool:
        """An instruction fetch reached the device mapping: map the array if the device reads as one (False:
        it does not, and the fetch faults as on QEMU, which cannot execute from flash in command mode)."""
        if not self.device.is_array_mode:
            return False
        self._map(as_array=True)
        return True

    def after_restore(self) -> None:
        """The device's state was put back: a device in command mode must be mapped; an array mapping must hold
        the restored contents."""
        if not self.device.is_array_mode:
            self._map(as_array=False)
        elif self._as_array:
            self._refill()

    def _map(self, as_array: bool) -> None:
        if as_array:
            self._refill()
        if as_array == self._as_array:
            return
        size = self.device.size
        if self._as_array is not None:
            self._uc.mem_unmap(self.base, size)
        if as_array:
            self._uc.mem_map_ptr(self.base, size, UC_PROT_READ | UC_PROT_EXEC, self._ptr)
        else:
            map_device(self._uc, self._engine, self.base, size, self.device)
        self._as_array = as_array
        self._uc.ctl_remove_cache(self.base, self.base + size)
        self._engine.forget_code()

    def _refill(self) -> None:
        pages = self.device.written_pages()
        if self._filled is pages:
            return
        indices = changed_pages(self._filled, pages)
        for index in indices:
            offset = index * PAGE
            self._buffer[offset : offset + PAGE] = self.device.array_bytes(offset, PAGE)
        self._filled = pages
        if self._as_array and indices:
            self._uc.ctl_remove_cache(self.base, self.base + self.device.size)
            self._engine.forget_code()
