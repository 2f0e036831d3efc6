"""The machine for an image: the board that carries its architecture."""

from __future__ import annotations

from collections.abc import Callable

from .arch.registry import choose_arch
from .core import MachineCore
from .inputs import InputSource
from .loader import Image, ImageError
from .machine import DEFAULT_CONFIG, Machine, MachineConfig
from .virtio_slots import VirtioLayout


def make_machine(image: Image, inputs: InputSource, uart_tx: Callable[[int], None],
                 config: MachineConfig = DEFAULT_CONFIG) -> MachineCore:  # fmt: skip
    """RISC-V ``virt`` for riscv32/riscv64 images, Arm ``virt`` for aarch64 ones, ``mps2-an385`` for 32-bit Arm
    (Cortex-M) ones (``config.arch`` for raw binaries); ImageError for anything else."""
    arch = choose_arch(image, config.arch)
    if config.board is not None and config.board != arch.board:
        raise ImageError(f"{image.path} is an {arch.name} image: it runs on the {arch.board} board, not {config.board}")
    if arch.name == "aarch64":
        from .arm_virt import ArmVirtMachine

        return ArmVirtMachine(image, inputs, uart_tx, config)
    if arch.name == "armv7m":
        from .mps2 import Mps2Machine

        return Mps2Machine(image, inputs, uart_tx, config)
    return Machine(image, inputs, uart_tx, config)


def ram_base_for(arch_name: str) -> int:
    """Where RAM starts on the board that carries this architecture."""
    if arch_name == "aarch64":
        from .boards import arm_virt

        return arm_virt.RAM_BASE
    if arch_name == "armv7m":
        return 0
    from .boards import virt

    return virt.RAM_BASE


def virtio_layout_for(arch_name: str) -> VirtioLayout:
    """The virtio-mmio slots of the board that carries this architecture (Cortex-M's has none)."""
    if arch_name == "aarch64":
        from .boards import arm_virt

        return arm_virt.VIRTIO_LAYOUT
    if arch_name == "armv7m":
        from .boards import mps2

        return mps2.VIRTIO_LAYOUT
    from .boards import virt

    return virt.VIRTIO_LAYOUT
