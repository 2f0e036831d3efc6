"""The end-to-end harness: the project's own gdb client (gdbstub/client.py), so tests and tools share one driver."""

from __future__ import annotations

import pytest

from gdbstub.client import GdbClient as Gdb
from gdbstub.client import GdbError, ServerProcess, has_gdb

__all__ = ["Gdb", "GdbError", "ServerProcess", "require_gdb"]


def require_gdb() -> None:
    if not has_gdb():
        pytest.skip("gdb-multiarch not installed")
