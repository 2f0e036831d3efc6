"""The end-to-end harness: the project's own gdb client (gdbstub/client.py), so tests and tools share one driver."""

from __future__ import annotations

from gdbstub.client import GdbClient as Gdb
from gdbstub.client import GdbError, ServerProcess, has_gdb
from tests.conftest import require_tool

__all__ = ["Gdb", "GdbError", "ServerProcess", "require_gdb"]


def require_gdb() -> None:
    __tracebackhide__ = True
    require_tool(has_gdb(), "gdb-multiarch not installed")
