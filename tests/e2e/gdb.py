"""The end-to-end harness: the project's own Python API (gdbstub/api.py), so tests and tools share one driver."""

from __future__ import annotations

import pytest

from gdbstub.api import Debugger as Gdb
from gdbstub.api import GdbError, Server, has_gdb
from gdbstub.api import Server as ServerProcess

__all__ = ["Gdb", "GdbError", "Server", "ServerProcess", "require_gdb"]


def require_gdb() -> None:
    if not has_gdb():
        pytest.skip("gdb-multiarch not installed")
