"""DESIGN.md import rules, checked by walking the imports with ast."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"machine": {"replay", "gdbstub"}, "replay": {"gdbstub"}}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_forbidden_edges(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        bad = imports_of(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_rsp_core_uses_only_the_standard_library() -> None:
    rsp = ROOT / "gdbstub" / "rsp"
    for path in rsp.rglob("*.py") if rsp.exists() else []:
        third_party = {m for m in imports_of(path) if m not in sys.stdlib_module_names and m != "gdbstub"}
        assert not third_party, f"{path.relative_to(ROOT)} imports {third_party}"


def test_the_walker_sees_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import replay.log\nfrom gdbstub import cli\nfrom . import sibling\n")
    assert imports_of(probe) == {"replay", "gdbstub"}
