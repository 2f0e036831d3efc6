"""Fixtures for end-to-end tests: a real server on a free port and a real gdb-multiarch."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import XLENS_RV64_SLOW
from tests.e2e.gdb import Gdb, ServerProcess, require_gdb


@pytest.fixture(params=XLENS_RV64_SLOW)
def xlen(request: pytest.FixtureRequest) -> str:
    """Each e2e test on both XLENs; the fast subset runs it on rv32 (rv64's registers meet gdb in unit tests)."""
    return request.param


@pytest.fixture
def debug() -> Iterator:  # noqa: ANN401 - returns a factory
    """``debug(elf, *server_args) -> (server, gdb)`` connected; both are cleaned up after the test."""
    require_gdb()
    started: list[tuple[ServerProcess, Gdb]] = []

    def start(elf, *args: str, stdin=None):  # noqa: ANN001, ANN202
        kwargs = {} if stdin is None else {"stdin": stdin}
        server = ServerProcess(elf, *args, **kwargs)
        gdb = Gdb(elf)
        started.append((server, gdb))
        gdb.connect(server.port)
        return server, gdb

    yield start
    for server, gdb in started:
        gdb.close()
        server.stop()
