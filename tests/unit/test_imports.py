"""DESIGN.md import rules, checked by walking the imports with ast."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"machine": {"replay", "gdbstub"}, "replay": {"gdbstub"}}
RSP = ROOT / "gdbstub" / "rsp"


def imports_of(path: Path) -> set[str]:
    """Top-level packages a module imports absolutely (relative imports stay inside its own package)."""
    return {name.split(".")[0] for name in modules_of(path) if not name.startswith(".")}


def modules_of(path: Path) -> set[str]:
    """Absolute module names a module imports; relative ones as ``.name`` (their package is the module's own)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names.add(node.module)
            elif node.level == 1:
                names.add("." + (node.module or ""))
            else:
                names.add(".." + (node.module or ""))  # above its own package
    return names


def _sources(folder: Path) -> list[Path]:
    files = sorted(folder.rglob("*.py"))
    assert files, f"{folder.relative_to(ROOT)} has no Python files: moved? update this test"
    return files


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_forbidden_edges(package: str) -> None:
    for path in _sources(ROOT / package):
        bad = imports_of(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_rsp_core_uses_only_the_standard_library_and_itself() -> None:
    for path in _sources(RSP):
        for module in modules_of(path):
            if module.startswith(".."):
                pytest.fail(f"{path.relative_to(ROOT)} imports {module} from outside gdbstub/rsp")
            if module.startswith(".") or module == "__future__" or module.startswith("gdbstub.rsp"):
                continue
            assert module.split(".")[0] in sys.stdlib_module_names, f"{path.relative_to(ROOT)} imports {module}"


def test_the_walker_sees_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import replay.log\nfrom gdbstub import cli\nfrom . import sibling\nfrom ..x import y\n")
    assert modules_of(probe) == {"replay.log", "gdbstub", ".", "..x"}
    assert imports_of(probe) == {"replay", "gdbstub"}
