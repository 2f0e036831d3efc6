"""The machine for an image: the board that carries its architecture."""

from __future__ import annotations

from collections.abc import Callable

from .arch.registry import choose_arch
from .core import MachineCore
from .inputs import InputSource
from .loader import Image
from .machine import DEFAULT_CONFIG, Machine, MachineConfig


def make_machine(image: Image, inputs: InputSource, uart_tx: Callable[[int], None],
                 config: MachineConfig = DEFAULT_CONFIG) -> MachineCore:  # fmt: skip
    """RISC-V ``virt`` for riscv32/riscv64 images, Arm ``virt`` for aarch64 ones (``config.arch`` for raw
    binaries); ImageError for anything else."""
    arch = choose_arch(image, config.arch)
    if arch.name == "aarch64":
        from .arm_virt import ArmVirtMachine

        return ArmVirtMachine(image, inputs, uart_tx, config)
    return Machine(image, inputs, uart_tx, config)


def ram_base_for(arch_name: str) -> int:
    """Where RAM starts on the board that carries this architecture."""
    if arch_name == "aarch64":
        from .boards import arm_virt

        return arm_virt.RAM_BASE
    from .boards import virt

    return virt.RAM_BASE
