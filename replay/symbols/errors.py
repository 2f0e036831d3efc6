"""The error every lookup of :mod:`replay.symbols` raises, and the memory reader its callers pass in."""

from __future__ import annotations

from collections.abc import Callable

ReadMemory = Callable[[int, int], bytes]
"""``read_memory(addr, size) -> bytes``: the guest's memory, for expressions and strings behind pointers."""


class SymbolError(Exception):
    """An expression or name the ELF cannot answer (unknown name, bad syntax, no debug info): one clear line."""
