"""The test plumbing: a missing tool skips, except under CHRONICORN_REQUIRE_TOOLS=1 (CI), where it fails."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.conftest import ROOT

CASES = """
from pathlib import Path

from tests.conftest import require_tool


def test_missing_command():
    require_tool(None, "frobnicator not installed")


def test_missing_file(tmp_path):
    require_tool(tmp_path / "absent", "the frob firmware is not installed")


def test_present_tool(tmp_path):
    require_tool(tmp_path, "never shown")
    require_tool("/usr/bin/frob", "never shown")
"""


def run_cases(tmp_path: Path, require: str | None) -> dict[str, str]:
    """Run CASES in a child pytest; return each test's outcome and message, e.g. "skipped: frob not installed"."""
    (tmp_path / "test_cases.py").write_text(CASES)
    env = {k: v for k, v in os.environ.items() if k != "CHRONICORN_REQUIRE_TOOLS"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    if require is not None:
        env["CHRONICORN_REQUIRE_TOOLS"] = require
    report = tmp_path / "report.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={report}", "test_cases.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert report.exists(), proc.stdout + proc.stderr
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        result = next((c for c in case if c.tag in ("skipped", "failure", "error")), None)
        outcomes[case.get("name")] = "passed" if result is None else f"{result.tag}: {result.get('message')}"
    assert len(outcomes) == 3, proc.stdout + proc.stderr
    return outcomes


def test_a_missing_tool_skips_by_default(tmp_path: Path) -> None:
    outcomes = run_cases(tmp_path, None)
    assert outcomes == {
        "test_missing_command": "skipped: frobnicator not installed",
        "test_missing_file": "skipped: the frob firmware is not installed",
        "test_present_tool": "passed",
    }


def test_a_missing_tool_fails_under_chronicorn_require_tools(tmp_path: Path) -> None:
    outcomes = run_cases(tmp_path, "1")
    assert outcomes == {
        "test_missing_command": "failure: Failed: frobnicator not installed",
        "test_missing_file": "failure: Failed: the frob firmware is not installed",
        "test_present_tool": "passed",
    }


def test_ci_runs_the_readme_command_with_require_tools() -> None:
    """.ci/run exports CHRONICORN_REQUIRE_TOOLS=1 before the test command, so CI never skips for a tool."""
    script = (ROOT / ".ci" / "run").read_text()
    exported = script.find("export CHRONICORN_REQUIRE_TOOLS=1")
    assert 0 <= exported < script.find("./scripts/test.sh")
