"""QEMU's ``mps2-an385`` board (7.2, ``hw/arm/mps2.c``): a Cortex-M3 with SSRAM, CMSDK UARTs and timers.

Code SSRAM (4 MiB) at 0x00000000 holds the vector table; data SSRAM (4 MiB) at 0x20000000. An ELF image goes to
its segments' addresses; reset takes SP and PC from the vector table (VTOR resets to 0).
Not modelled (accesses fault here; most read as zero on QEMU): UARTs 1-4, the dual timer, the watchdog, the
FPGA I/O and SCC registers, the Ethernet controller, the VGA and the unimplemented-device holes.
"""

from __future__ import annotations

import mmap

from ..loader import Image, ImageError
from ..virtio_slots import VirtioLayout
from .virt import Region

CODE_BASE, CODE_SIZE = 0x0000_0000, 4 * 1024 * 1024
DATA_BASE, DATA_SIZE = 0x2000_0000, 4 * 1024 * 1024
RAM_SIZE = CODE_SIZE + DATA_SIZE  # one buffer: code SSRAM first, then data SSRAM
RAM_WINDOWS = ((CODE_BASE, 0, CODE_SIZE), (DATA_BASE, CODE_SIZE, DATA_SIZE))
CPU_HZ = 25_000_000  # SYSCLK_FRQ: the CPU clock, SysTick's clock and the APB timers'
NS_PER_CPU_TICK = 1_000_000_000 // CPU_HZ  # 40
UART0_RX_IRQ, UART0_TX_IRQ, UART_OVERFLOW_IRQ, TIMER0_IRQ, TIMER1_IRQ = 0, 1, 12, 8, 9
SCS_BASE = 0xE000_E000
VIRTIO_LAYOUT = VirtioLayout(0, 0, DATA_BASE)  # no virtio on this board

MMIO_REGIONS = (
    Region("timer0", 0x4000_0000, 0x1000, "mmio"),
    Region("timer1", 0x4000_1000, 0x1000, "mmio"),
    Region("uart0", 0x4000_4000, 0x1000, "mmio"),
    Region("scs", SCS_BASE, 0x1000, "mmio"),
)


def memory_map() -> tuple[Region, ...]:
    """The board's regions, the SSRAMs last."""
    return (*MMIO_REGIONS, Region("ssram1", CODE_BASE, CODE_SIZE, "ram"), Region("ram", DATA_BASE, DATA_SIZE, "ram"))


def place_image(ram: mmap.mmap, image: Image) -> None:
    """Copy the image's segments into the SSRAMs (``ram`` holds code SSRAM then data SSRAM)."""
    for seg in image.segments:
        for base, offset, size in RAM_WINDOWS:
            if base <= seg.addr and seg.addr + max(seg.mem_size, 1) <= base + size:
                at = offset + seg.addr - base
                ram[at : at + len(seg.data)] = seg.data
                break
        else:
            raise ImageError(f"{image.path}: segment at {seg.addr:#x}..{seg.addr + seg.mem_size:#x} lies outside "
                             "the SSRAMs (0x0-0x3fffff, 0x20000000-0x203fffff)")  # fmt: skip
