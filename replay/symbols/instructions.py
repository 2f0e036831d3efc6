"""Capstone's text of one guest instruction, per architecture."""

from __future__ import annotations

from typing import Any

from .errors import SymbolError


def capstone_modes() -> dict[str, tuple[int, int]]:
    """Architecture name (as machine.arch names it) -> capstone (arch, mode): gdbstub/cli/run.py's Tracer's
    mapping, plus Thumb for the M profile."""
    import capstone as cs

    return {
        "riscv32": (cs.CS_ARCH_RISCV, cs.CS_MODE_RISCV32 | cs.CS_MODE_RISCVC),
        "riscv64": (cs.CS_ARCH_RISCV, cs.CS_MODE_RISCV64 | cs.CS_MODE_RISCVC),
        "aarch64": (cs.CS_ARCH_ARM64, cs.CS_MODE_ARM),
        "armv7m": (cs.CS_ARCH_ARM, cs.CS_MODE_THUMB | cs.CS_MODE_MCLASS),
    }


class Disassembler:
    """One capstone instance per architecture, made on first use."""

    def __init__(self) -> None:
        self._engines: dict[str, Any] = {}

    def instruction(self, arch: str, code: bytes, pc: int) -> str:
        """Capstone's text of the instruction at the start of ``code`` (at ``pc``): ``addi a0, a0, 1``;
        ``(unknown)`` when it does not decode. ``arch``: riscv32, riscv64, aarch64 or armv7m."""
        engine = self._engines.get(arch)
        if engine is None:
            import capstone

            modes = capstone_modes()
            if arch not in modes:
                raise SymbolError(f"no disassembler for {arch!r} (known: {', '.join(modes)})")
            engine = capstone.Cs(*modes[arch])
            self._engines[arch] = engine
        for insn in engine.disasm(code, pc, 1):
            return f"{insn.mnemonic} {insn.op_str}".strip()
        return "(unknown)"
