"""Every architecture chronicorn runs, and the one that runs an image.

An architecture object (:class:`Arch`) is what the rest of chronicorn knows of a CPU: its name in recordings,
address width, how Unicorn is built for it, how its instruction lengths are decoded for exact icount, how a
state file holds its registers, and gdb's target description. The board that carries it (``arch.board``)
provides the rest (docs/architecture.md, "What an architecture provides").
"""

from __future__ import annotations

from typing import Protocol

from unicorn import Uc
from unicorn.unicorn_py3.unicorn import UcContext

from ..icount import Isa
from ..loader import EM_AARCH64, EM_ARM, EM_RISCV, Image, ImageError
from .aarch64 import AARCH64
from .armv7m import ARMV7M
from .riscv import ARCHES as RISCV_ARCHES
from .riscv import arch_for_elf


class Arch(Protocol):
    """One architecture (a frozen value)."""

    @property
    def name(self) -> str: ...  # in recordings and on the command line: riscv32, riscv64, aarch64

    @property
    def xlen(self) -> int: ...

    @property
    def mask(self) -> int: ...

    @property
    def isa(self) -> Isa: ...

    @property
    def pc_reg(self) -> int: ...

    @property
    def until_addr(self) -> int: ...

    @property
    def state_code(self) -> int: ...  # its byte in a state file's header

    @property
    def board(self) -> str: ...  # the board that carries it

    @property
    def gdb_name(self) -> str: ...  # gdb's name (target description <architecture>)

    def new_uc(self) -> Uc: ...

    def cpu_register_count(self) -> int: ...

    def read_cpu(self, context: UcContext, uc: Uc | None = None) -> tuple[int, ...]: ...

    def build_context(self, values: tuple[int, ...] | list[int], uc: Uc | None = None) -> UcContext: ...

    def target_xml(self) -> str: ...


ARCHES: dict[str, Arch] = {**RISCV_ARCHES, "aarch64": AARCH64, "armv7m": ARMV7M}


def choose_arch(image: Image, wanted: Arch | None) -> Arch:
    """The CPU for an image: from its ELF header, or ``wanted`` (``--arch``) for a raw binary."""
    if image.xlen is None:
        if wanted is None:
            raise ImageError(f"{image.path} is a raw binary: say which core with --arch {'|'.join(ARCHES)}")
        return wanted
    machine = EM_RISCV if image.elf_machine is None else image.elf_machine
    if machine == EM_RISCV:
        arch: Arch = arch_for_elf(image.xlen)
    elif machine == EM_AARCH64 and image.xlen == 64:
        arch = AARCH64
    elif machine == EM_ARM and image.xlen == 32:
        arch = ARMV7M  # 32-bit Arm images run on the Cortex-M board (there is no A-profile AArch32 board)
    else:
        raise ImageError(f"{image.path} is a {image.xlen}-bit ELF file for machine {machine}: not supported")
    if wanted is not None and wanted != arch:
        what = f"{image.xlen}-bit ELF file" if machine == EM_RISCV else f"{arch.name} ELF file"
        raise ImageError(f"{image.path} is a {what} but --arch {wanted.name} was given")
    return arch
