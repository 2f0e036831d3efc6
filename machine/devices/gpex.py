"""The PCIe ECAM window of QEMU 7.2's generic PCIe host (``gpex``: ``hw/pci-host/gpex.c``, ``pcie_host.c``), and
the host's empty PCI windows, as the Arm ``virt`` board has them with ``-nic none`` (no PCI device but the host
bridge).

The ``virt`` board (7.2, highmem ECAM, any RAM size up to its 255 GiB legacy limit) places the windows as its
device tree says (``pcie@10000000``: ``reg`` and ``ranges``, read from ``-M virt,dumpdtb=``):

=======================  ===================  ==============  ======================================
window                   base                 size            device (reads, writes)
=======================  ===================  ==============  ======================================
ECAM (buses 0..255)      0x40_1000_0000       0x1000_0000     :class:`GpexEcam`
PIO                      0x3EFF_0000          0x1_0000        :class:`PciPioWindow` (ones, ignored)
MMIO (32-bit)            0x1000_0000          0x2EFF_0000     :class:`PciMmioWindow` (ones, ignored)
MMIO (64-bit, high)      0x80_0000_0000       0x80_0000_0000  :class:`PciMmioHighWindow` (ones, ...)
=======================  ===================  ==============  ======================================

ECAM: a function's configuration space is at ``bus << 20 | device << 15 | function << 12 | register``
(:func:`ecam_offset`). Only 00:00.0 exists, QEMU's ``gpex-root``: a conventional PCI device (256 bytes of
configuration space), vendor 0x1b36 (Red Hat), device 0x0008 (PCIe host bridge), revision 0, class 0x060000
(host bridge), header type 0 (one function, no BARs, no expansion ROM, no capability list), subsystem
0x1af4:0x1100 (QEMU's defaults), no interrupt pin. Every other function, and the root's registers from 0x100 to
0xFFF, read all ones and ignore writes (``pcie_mmcfg_data_read``/``_write``). Writes to the root go through
QEMU's write mask (``pci_init_wmask``): command bits IO, MEMORY, MASTER, SERR and INTX_DISABLE (0x0507), the
cache line size, the interrupt line, and all of 0x40..0xFF; every other bit keeps its value (the status
register's write-1-to-clear bits are never set, so clearing them changes nothing). Accesses of any width work
byte by byte (QEMU splits 8-byte ones into two 4-byte ones; the result is the same).

Recorded from QEMU 7.2 (the tests hold the bytes): the reset configuration space through qtest (before any
firmware runs), the write mask by writing 0xFF to each byte and reading back, and U-Boot 2023.01's view
after its PCI enumeration (``pci header 00.00.00``, ``pci display.b 00.00.00 0 100``), which differs only in
the command register (0x0004, bus master) and cache line size (0x08) U-Boot wrote.

The PIO and MMIO windows hold no device, yet they are not holes: QEMU 7.2's gpex answers them itself
(``allow-unmapped-accesses``, on by default: ``unassigned_io_ops``), reads give all ones and writes are
ignored, where an unmapped address would be a synchronous external abort (checked with U-Boot: ``md.l
0x10000000``, ``md.l 0x3eff0000``, ``md.q 0x10000000``, ``md.w 0x8000000002`` read ones, ``mw.q 0x3eff0000 0`` is
ignored).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..fields import Bytes, FieldError, Int, spec
from .base import checked

ECAM_BASE, ECAM_SIZE = 0x40_1000_0000, 0x1000_0000
PIO_BASE, PIO_SIZE = 0x3EFF_0000, 0x1_0000
MMIO_BASE, MMIO_SIZE = 0x1000_0000, 0x2EFF_0000
MMIO_HIGH_BASE, MMIO_HIGH_SIZE = 0x80_0000_0000, 0x80_0000_0000

CONFIG_SIZE = 0x100  # a conventional PCI device's configuration space (pci_config_size)
COMMAND, CACHE_LINE_SIZE, INTERRUPT_LINE, DEVICE_SPECIFIC = 0x04, 0x0C, 0x3C, 0x40
COMMAND_MASK = 0x0507  # PCI_COMMAND_IO | MEMORY | MASTER | SERR | INTX_DISABLE
DEVICE_SPECIFIC_SIZE = CONFIG_SIZE - DEVICE_SPECIFIC

VENDOR_ID, DEVICE_ID, REVISION, CLASS_CODE = 0x1B36, 0x0008, 0x00, 0x060000
SUBSYSTEM_VENDOR_ID, SUBSYSTEM_ID = 0x1AF4, 0x1100

# The header (0x00..0x3F) as QEMU resets it: IDs, class, subsystem IDs; everything else zero.
RESET_HEADER = bytes.fromhex(
    "361b0800" "00000000" "00000006" "00000000"
    "00000000" "00000000" "00000000" "00000000"
    "00000000" "00000000" "00000000" "f41a0011"
    "00000000" "00000000" "00000000" "00000000"
)  # fmt: skip


def ecam_offset(bus: int, device: int, function: int, register: int = 0) -> int:
    """Where in the ECAM window a function's ``register`` is."""
    if not (0 <= bus < 256 and 0 <= device < 32 and 0 <= function < 8 and 0 <= register < 0x1000):
        raise ValueError(f"no ECAM address for {bus:02x}:{device:02x}.{function} register {register:#x}")
    return bus << 20 | device << 15 | function << 12 | register


@dataclass(frozen=True, slots=True)
class GpexEcamState:
    """The host bridge's writable configuration bytes (the rest of its configuration space is constant)."""

    VERSION: ClassVar[int] = 1
    command: int = spec(Int(16, mask=COMMAND_MASK))
    cache_line_size: int = spec(Int(8))
    interrupt_line: int = spec(Int(8))
    device_specific: bytes = spec(Bytes(DEVICE_SPECIFIC_SIZE))  # 0x40..0xFF

    def check_invariants(self) -> None:
        if len(self.device_specific) != DEVICE_SPECIFIC_SIZE:
            raise FieldError(f"GpexEcamState.device_specific: {len(self.device_specific)} bytes, "
                             f"not {DEVICE_SPECIFIC_SIZE}")  # fmt: skip


class GpexEcam:
    """The ECAM window (``ECAM_SIZE`` bytes at ``ECAM_BASE``): 00:00.0 is the host bridge, nothing else exists."""

    name = "pcie-ecam"
    size = ECAM_SIZE
    access_size = 4
    state_type = GpexEcamState

    def __init__(self) -> None:
        self.command = 0
        self.cache_line_size = 0
        self.interrupt_line = 0
        self.device_specific = bytes(DEVICE_SPECIFIC_SIZE)

    def config(self) -> bytes:
        """The host bridge's 256 bytes of configuration space now."""
        header = bytearray(RESET_HEADER)
        header[COMMAND : COMMAND + 2] = self.command.to_bytes(2, "little")
        header[CACHE_LINE_SIZE] = self.cache_line_size
        header[INTERRUPT_LINE] = self.interrupt_line
        return bytes(header) + self.device_specific

    def peek(self, offset: int, size: int) -> int | None:
        return self.read(offset, size)  # no side effects

    def read(self, offset: int, size: int) -> int:
        end = offset + size
        if offset >= CONFIG_SIZE:  # another function, or the root's 0x100..0xFFF
            return (1 << (8 * size)) - 1
        data = self.config()[offset:end] + b"\xff" * max(0, end - CONFIG_SIZE)
        return int.from_bytes(data, "little")

    def write(self, offset: int, size: int, value: int) -> None:
        if offset >= CONFIG_SIZE:
            return
        data = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")[: CONFIG_SIZE - offset]
        for reg, byte in enumerate(data, offset):
            if reg in (COMMAND, COMMAND + 1):
                shift = 8 * (reg - COMMAND)
                mask = (COMMAND_MASK >> shift & 0xFF) << shift
                self.command = (self.command & ~mask) | (byte << shift & mask)
            elif reg == CACHE_LINE_SIZE:
                self.cache_line_size = byte
            elif reg == INTERRUPT_LINE:
                self.interrupt_line = byte
        if offset + len(data) > DEVICE_SPECIFIC:
            start = max(offset, DEVICE_SPECIFIC)
            chunk = data[start - offset :]
            i = start - DEVICE_SPECIFIC
            self.device_specific = self.device_specific[:i] + chunk + self.device_specific[i + len(chunk) :]

    def save(self) -> GpexEcamState:
        return GpexEcamState(self.command, self.cache_line_size, self.interrupt_line, self.device_specific)

    def load(self, state: GpexEcamState, check: bool = True) -> None:
        state = checked(state, GpexEcamState) if check else state
        self.command, self.cache_line_size, self.interrupt_line, self.device_specific = (
            state.command, state.cache_line_size, state.interrupt_line, state.device_specific)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PciWindowState:
    """Nothing: the window holds no device."""

    VERSION: ClassVar[int] = 1


class PciWindow:
    """An empty PCI window: reads all ones, writes ignored, as QEMU 7.2's gpex answers it (one subclass per
    window, so that name and size stay class attributes: a device's public attributes are its state)."""

    name: ClassVar[str]
    size: ClassVar[int]
    access_size = 4
    state_type = PciWindowState

    def peek(self, offset: int, size: int) -> int:
        return (1 << (8 * size)) - 1

    def read(self, offset: int, size: int) -> int:
        return (1 << (8 * size)) - 1

    def write(self, offset: int, size: int, value: int) -> None:
        """Ignored."""

    def save(self) -> PciWindowState:
        return PciWindowState()

    def load(self, state: PciWindowState, check: bool = True) -> None:
        if check:
            checked(state, PciWindowState)


class PciPioWindow(PciWindow):
    """The PIO window, ``PIO_SIZE`` bytes at ``PIO_BASE``."""

    name = "pcie-pio"
    size = PIO_SIZE


class PciMmioWindow(PciWindow):
    """The 32-bit MMIO window, ``MMIO_SIZE`` bytes at ``MMIO_BASE``."""

    name = "pcie-mmio"
    size = MMIO_SIZE


class PciMmioHighWindow(PciWindow):
    """The 64-bit MMIO window, ``MMIO_HIGH_SIZE`` bytes at ``MMIO_HIGH_BASE``."""

    name = "pcie-mmio-high"
    size = MMIO_HIGH_SIZE


PCI_WINDOWS = ((PIO_BASE, PciPioWindow), (MMIO_BASE, PciMmioWindow), (MMIO_HIGH_BASE, PciMmioHighWindow))
"""The ``virt`` board's empty PCI windows: (base, device class)."""
