"""gdbstub/cli: a command imports only what it runs (start-up is part of the interface: ``chronicorn run`` of
a small guest should take well under 0.3 s). A test of structure, not of timing: which modules are loaded."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, guest

PROBE = """
import sys
from gdbstub.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
finally:
    print("MODULES", *sorted(sys.modules), file=sys.stderr)
"""

# Never needed to run a guest: the gdb server and protocol, the gdb/MI client, the recording format, the
# ELF library (machine.loader reads plain ELF files with struct), the disassembler (only for --trace).
NOT_FOR_RUN = ("gdbstub.server", "gdbstub.session", "gdbstub.target", "gdbstub.monitor", "gdbstub.rsp",
               "gdbstub.client", "gdbstub.locate", "gdbstub.demo", "pygdbmi", "zstandard", "replay", "elftools",
               "capstone", "subprocess")  # fmt: skip


def modules_loaded(*argv: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("MODULES ")]
    assert line, proc.stderr
    return set(line[-1].split()[1:])


def offending(loaded: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in forbidden))


@pytest.mark.parametrize(
    "argv",
    [("run", "--help"), ("run", str(guest("rv32", "hello")), "--max-insns", "1000")],
    ids=["run --help", "run"],
)
def test_run_imports_only_what_it_runs(argv: tuple[str, ...]) -> None:
    loaded = modules_loaded(*argv)
    assert "gdbstub.cli.run" in loaded
    assert not offending(loaded, NOT_FOR_RUN)
    others = ("gdbstub.cli.serve", "gdbstub.cli.record", "gdbstub.cli.replay", "gdbstub.cli.info",
              "gdbstub.cli.locate", "gdbstub.cli.demo", "gdbstub.cli.timelines")  # fmt: skip
    assert not offending(loaded, others)


def test_the_top_level_help_imports_no_command() -> None:
    loaded = modules_loaded("--help")
    assert not offending(loaded, ("gdbstub.cli.run", "gdbstub.cli.serve", "gdbstub.cli.record", "gdbstub.cli.info",
                                  "pygdbmi", "zstandard", "replay", "gdbstub.server"))  # fmt: skip


def test_serve_help_does_not_import_the_gdb_mi_client() -> None:
    loaded = modules_loaded("serve", "--help")
    assert "gdbstub.server" in loaded  # the command's own modules are there
    assert not offending(loaded, ("pygdbmi", "gdbstub.client", "gdbstub.locate", "gdbstub.cli.locate"))
