"""``chronicorn triage`` on recordings made here from the bug guests with varied inputs, some passing.

What triage says of each recording is checked against what the single-recording commands say of it:
``chronicorn info`` (how it ends: exit code 0 is passing) and ``chronicorn locate --json`` (the culprit, or
exit code 6: no write, or 2: unusable), never against hard-coded culprits. Then the same recordings on a real
Dask cluster (``LocalCluster``: a scheduler and two worker processes) must group the same way.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import GUESTS, ROOT, require_tool, run_cli

CMDINT = ROOT / "gdbstub" / "demo" / "firmware" / "rv32" / "cmdint.elf"
ARM = {board: ROOT / "tests" / "guests" / board for board in ("cortexm", "aarch64")}
INSTALL_HINT = "pip install 'chronicorn[cluster]'"
REPORTS = itertools.count()


@dataclass(frozen=True)
class Made:
    """One recording to make: the guest, its UART input, an instruction limit (a run cut short, as by a CI
    timeout)."""

    name: str
    guest: Path
    uart_input: bytes = b""
    max_insns: int | None = None


# cmdint (the demo firmware): name TEXT copies TEXT into a 16-byte field with no bound, over probe.scale.
CMDINT_RUNS = [
    Made("demo-bug", CMDINT, (ROOT / "gdbstub" / "demo" / "firmware" / "cmdint-bug.txt").read_bytes()),
    Made("ok", CMDINT, (GUESTS / "inputs" / "cmdint-ok.txt").read_bytes()),
    Made("long-name", CMDINT, b"scale 9\nname upstairs-and-downstairs\nsample\nreport\nquit\n"),
    Made("name-16", CMDINT, b"scale 3\nname 0123456789abcdef\nreport\nquit\n"),  # only the terminator overflows
    Made("kitchen", CMDINT, b"name kitchen-sink-drawer-17\nsample\nreport\nquit\n"),
    Made("scale-5", CMDINT, b"scale 5\nsample\nwait 2\nsample\nreport\nquit\n"),
    Made("hangs", CMDINT, b"sample\nreport\n", max_insns=40_000),  # no quit: runs until the limit
]
ISRBUG_RUNS = [
    Made("rv32", GUESTS / "build" / "rv32" / "isrbug.elf"),
    Made("rv64", GUESTS / "build" / "rv64" / "isrbug.elf"),
    Made("rv32-cut", GUESTS / "build" / "rv32" / "isrbug.elf", max_insns=3_000),  # before the ninth tick
]
STRAY_RUNS = [
    Made("rv32", GUESTS / "build" / "rv32" / "stray.elf"),
    Made("rv64", GUESTS / "build" / "rv64" / "stray.elf"),
]
CMDBUG_RUNS = [  # cmdbug exits 0 even with the bug (its output is wrong): found only with --locate-passing
    *(Made(f"{board}-{kind}", d / "build" / "cmdbug.elf", (d / "inputs" / f"cmdbug-{kind}.txt").read_bytes())
      for board, d in ARM.items() for kind in ("bug", "ok")),
    Made("cortexm-set-9", ARM["cortexm"] / "build" / "cmdbug.elf", b"set 9 3\nsum\n", max_insns=100_000),
]  # fmt: skip


def record(made: Made, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    uart = folder / f"{made.name}.in"
    uart.write_bytes(made.uart_input)
    output = folder / f"{made.name}.chrec"
    limit = ["--max-insns", str(made.max_insns)] if made.max_insns else []
    proc = run_cli("record", str(made.guest), "-o", str(output), "--uart-input", str(uart), *limit)
    assert output.exists(), proc.stderr.decode()
    uart.unlink()
    return output


def damage(folder: Path, source: Path) -> None:
    """Three copies that are not whole recordings: cut in the header, cut in the tail, not a recording."""
    data = source.read_bytes()
    (folder / "cut-header.chrec").write_bytes(data[:300])
    (folder / "cut-tail.chrec").write_bytes(data[:-20])  # inside the last chunk: the rest loads, with no End
    (folder / "notes.chrec").write_text("not a recording\n")


def make_set(tmp_path_factory: pytest.TempPathFactory, runs: list[Made], damaged: str | None = None) -> Path:
    folder = tmp_path_factory.mktemp("recordings")
    for made in runs:
        record(made, folder)
    if damaged is not None:
        damage(folder, folder / f"{damaged}.chrec")
    return folder


@pytest.fixture(scope="module")
def cmdint_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_set(tmp_path_factory, CMDINT_RUNS, damaged="ok")


def triage(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[bytes]:
    return run_cli("triage", *args, timeout=timeout)


def triage_json(folder: Path, watch: str, *options: str) -> dict:
    out = folder.parent / f"{folder.name}-{next(REPORTS)}.json"
    proc = triage(str(folder), "--watch", watch, "--json", str(out), *options)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()
    return json.loads(out.read_text())


# -- what the single-recording commands say ---------------------------------------------------------------------
def expected_key(recording: Path, watch: str, locate_passing: bool = False, ending: dict | None = None,
                 ) -> tuple[tuple, str | None]:  # fmt: skip
    """(outcome, culprit) from ``chronicorn info`` and ``chronicorn locate`` on this recording alone, and the
    text of the culprit's source line as locate shows it. ``ending``: triage's, checked against info's."""
    info = run_cli("info", str(recording))
    if info.returncode != 0:
        return ("error",), None
    end = next(line for line in info.stdout.decode().splitlines() if line.startswith("end "))
    said = f"{ending['kind']} (code {ending['code']}) at icount {ending['icount']}" if ending else "none"
    assert end.split(None, 1)[1] == said, recording
    outcome = "passed" if "exited (code 0)" in end else "failed"
    if outcome == "passed" and not locate_passing:
        return ("passed", None), None
    locate = run_cli("locate", str(recording), "--watch", watch, "--json", timeout=300)
    if locate.returncode == 6:
        return (outcome, None), None
    if locate.returncode == 2:
        return ("error",), None
    assert locate.returncode == 0, locate.stderr.decode()
    first = json.loads(locate.stdout)["writes"][0]
    return (outcome, (first["function"], first["file"], first["line"], first["pc"])), first["source"]


def triage_key(entry: dict) -> tuple:
    if entry["outcome"] == "error":
        return ("error",)
    writes = entry["writes"]
    first = writes[0] if writes else None
    return (entry["outcome"], (first["function"], first["file"], first["line"], first["pc"]) if first else None)


def check_against_locate(report: dict, watch: str, locate_passing: bool = False) -> dict[str, tuple]:
    """Each recording's outcome and culprit are what info/locate say; the groups are exactly the recordings
    with one (outcome, culprit), errors grouped by their reason. Returns recording -> key."""
    keys = {}
    for entry in report["recordings"]:
        expected, source = expected_key(Path(entry["recording"]), watch, locate_passing, entry["ending"])
        assert triage_key(entry) == expected, entry["recording"]
        assert (entry["writes"][0]["source"] if entry["writes"] else None) == source
        keys[entry["recording"]] = expected + ((entry["error"],) if expected == ("error",) else ())
    partition = {frozenset(name for name, key in keys.items() if key == value) for value in keys.values()}
    assert {frozenset(group["recordings"]) for group in report["groups"]} == partition
    assert sum(group["count"] for group in report["groups"]) == len(report["recordings"]) == len(keys)
    return keys


def line_with(source: str, marker: str) -> str:
    """The line of a guest's source (cmdint.c of the demo, cmdbug.c of the Cortex-M guests) holding ``marker``,
    its comment left out."""
    folder = ROOT / "gdbstub" / "demo" / "firmware" / "src" if source == "cmdint.c" else ARM["cortexm"]
    line = next(text for text in (folder / source).read_text().splitlines() if marker in text)
    return line.split("/*")[0].strip()


# -- tests ------------------------------------------------------------------------------------------------------
def test_a_failing_a_passing_and_a_damaged_recording(tmp_path: Path) -> None:
    runs = [CMDINT_RUNS[0], CMDINT_RUNS[1]]
    for made in runs:
        record(made, tmp_path / "set")
    (tmp_path / "set" / "cut-header.chrec").write_bytes((tmp_path / "set" / "ok.chrec").read_bytes()[:300])
    proc = triage(str(tmp_path / "set" / "*.chrec"), "--watch", "probe.scale", "--jobs", "2", "--json", "-")
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout)  # stdout is only the JSON document; the table went to stderr
    assert "group  count  outcome  culprit" in proc.stderr.decode()
    by_name = {Path(entry["recording"]).name: entry for entry in report["recordings"]}
    assert by_name["demo-bug.chrec"]["outcome"] == "failed" and by_name["demo-bug.chrec"]["located"]
    assert by_name["ok.chrec"]["outcome"] == "passed" and not by_name["ok.chrec"]["located"]
    assert by_name["ok.chrec"]["ending"]["code"] == 0 and by_name["demo-bug.chrec"]["ending"]["code"] == 7
    assert by_name["cut-header.chrec"]["outcome"] == "error" and "truncated" in by_name["cut-header.chrec"]["error"]
    assert report["summary"] == {"recordings": 3, "failed": 1, "passed": 1, "errors": 1, "groups": 3}
    bug = by_name["demo-bug.chrec"]["writes"][0]
    locate = json.loads(run_cli("locate", str(tmp_path / "set" / "demo-bug.chrec"), "--watch", "probe.scale",
                                "--json").stdout)  # fmt: skip
    assert bug == locate["writes"][0]


@pytest.mark.slow
def test_cmdint_recordings_group_as_locate_finds_them_one_by_one(cmdint_set: Path) -> None:
    report = triage_json(cmdint_set, "probe.scale")
    keys = check_against_locate(report, "probe.scale")
    named = {Path(name).stem: key for name, key in keys.items()}
    # The set is varied as meant: two culprits in set_name, a run without a write, passing runs, errors.
    assert named["demo-bug"] == named["long-name"] == named["kitchen"] != named["name-16"]
    assert named["demo-bug"][1][:2] == named["name-16"][1][:2]  # one function, two lines
    sources = {Path(e["recording"]).stem: e["writes"][0]["source"].strip() for e in report["recordings"] if e["writes"]}
    assert sources["demo-bug"] == line_with("cmdint.c", "*dst++ = *text++;") and sources["name-16"] == "*dst = 0;"
    assert named["hangs"] == ("failed", None) and named["cut-tail"] == ("failed", None)
    assert named["ok"] == named["scale-5"] == ("passed", None)
    assert named["cut-header"][0] == named["notes"][0] == "error"
    cut = next(e for e in report["recordings"] if Path(e["recording"]).stem == "cut-tail")
    assert cut["damage"] and cut["ending"] is None  # searched up to where the intact part ends
    outcomes = [g["outcome"] for g in report["groups"]]
    assert outcomes == sorted(outcomes, key=["failed", "error", "passed"].index)
    assert report["groups"][0]["count"] == 3  # the largest group first


@pytest.mark.slow
def test_isrbug_builds_group_by_pc_or_together_by_line(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = make_set(tmp_path_factory, ISRBUG_RUNS)
    by_pc = triage_json(folder, "capture.guard")
    keys = check_against_locate(by_pc, "capture.guard")
    culprits = {key[1] for key in keys.values() if key[1] is not None}
    assert len(culprits) == 2 and len({c[:3] for c in culprits}) == 1  # rv32 and rv64: one line, two pcs
    by_line = triage_json(folder, "capture.guard", "--group-by", "line")
    assert len(by_line["groups"]) == len(by_pc["groups"]) - 1
    (merged,) = [g for g in by_line["groups"] if g["count"] == 2]
    assert merged["culprit"]["pc"] is None and merged["culprit"]["line"] == next(iter(culprits))[2]


@pytest.mark.slow
def test_stray_pointer_recordings(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = make_set(tmp_path_factory, STRAY_RUNS)
    report = triage_json(folder, "pool[0].value", "--jobs", "1")
    keys = check_against_locate(report, "pool[0].value")
    assert all(key[0] == "failed" and key[1] is not None for key in keys.values())
    assert report["executor"] == "local (1 process)"


@pytest.mark.slow
def test_arm_cmdbug_passes_with_wrong_output_located_on_request(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = make_set(tmp_path_factory, CMDBUG_RUNS)
    plain = triage_json(folder, "scale")
    check_against_locate(plain, "scale")
    assert plain["summary"]["passed"] == 4 and not any(e["located"] for e in plain["recordings"]
                                                       if e["outcome"] == "passed")  # fmt: skip
    located = triage_json(folder, "scale", "--locate-passing")
    keys = check_against_locate(located, "scale", locate_passing=True)
    bugs = [e for e in located["recordings"] if Path(e["recording"]).stem.endswith("-bug")]
    assert len({keys[e["recording"]] for e in bugs}) == 2 and all(keys[e["recording"]][0] == "passed" for e in bugs)
    assert {e["writes"][0]["source"].split("/*")[0].strip() for e in bugs} == {line_with("cmdbug.c", "values[n] = v")}
    assert keys[next(n for n in keys if Path(n).stem == "cortexm-set-9")] == ("failed", None)


# -- Dask -------------------------------------------------------------------------------------------------------
def require_dask() -> None:
    require_tool(importlib.util.find_spec("distributed") is not None,
                 f"dask.distributed is not installed: {INSTALL_HINT}")  # fmt: skip


@pytest.fixture(scope="module")
def dask_scheduler() -> Iterator[str]:
    """A real cluster: a scheduler and two single-threaded worker processes, on free loopback ports."""
    require_dask()
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=":0") as cluster:  # fmt: skip
        yield cluster.scheduler_address


def without_timings(report: dict) -> dict:
    return {**report, "seconds": None, "executor": None,
            "recordings": [{**entry, "seconds": None} for entry in report["recordings"]]}  # fmt: skip


@pytest.mark.slow
def test_a_dask_cluster_groups_as_local_processes_do(cmdint_set: Path, dask_scheduler: str) -> None:
    local = triage_json(cmdint_set, "probe.scale", "--jobs", "2")
    address = "dask://" + dask_scheduler.removeprefix("tcp://")
    on_dask = triage_json(cmdint_set, "probe.scale", "--executor", address)
    assert on_dask["executor"].startswith("dask tcp://127.0.0.1:")
    assert without_timings(on_dask) == without_timings(local)
    # Shipped: the workers get the bytes (the recordings and cmdint.elf once), not the paths.
    shipped = triage_json(cmdint_set, "probe.scale", "--executor", address, "--ship")
    assert [(g["recordings"], g["outcome"], g["error"], g["culprit"] and {**g["culprit"], "source": None})
            for g in shipped["groups"]] == [
           (g["recordings"], g["outcome"], g["error"], g["culprit"] and {**g["culprit"], "source": None})
            for g in local["groups"]]  # fmt: skip


def test_without_dask_the_error_says_how_to_install_it(tmp_path: Path) -> None:
    shim = tmp_path / "shim" / "distributed"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError(\"No module named 'distributed'\")\n")
    recording = tmp_path / "x.chrec"
    recording.write_bytes(b"x")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shim.parent), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", "gdbstub.cli", "triage", str(recording), "--watch", "x",
                           "--executor", "dask://127.0.0.1:8786"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert INSTALL_HINT in proc.stderr and proc.stderr.count("\n") == 1


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    recording = tmp_path / "a.chrec"
    recording.write_bytes(b"not yet")
    cases = [
        ([str(tmp_path / "none-*.chrec"), "--watch", "x"], "no recordings match"),
        ([str(tmp_path / "nothing"), "--watch", "x"], "no such file or directory"),
        ([str(tmp_path), "--watch", "x", "--executor", "ray://h:1"], "expected local or dask://HOST:PORT"),
        ([str(tmp_path), "--watch", "x", "--executor", "dask://h"], "expected dask://HOST:PORT"),
        ([str(tmp_path), "--watch", "x", "--ship"], "--ship is for a Dask executor"),
        ([str(tmp_path), "--watch", "x", "--json", str(recording)], "it would be overwritten"),
        ([str(tmp_path), "--watch", "x", "--json", str(tmp_path / "no" / "r.json")], "not a directory"),
        ([str(tmp_path), "--watch", "x", "--jobs", "0"], "out of range"),
        ([str(tmp_path), "--watch", "x", "--depth", "0"], "out of range"),
    ]
    for args, message in cases:
        proc = run_cli("triage", *args)
        stderr = proc.stderr.decode()
        assert proc.returncode == 2 and message in stderr and "Traceback" not in stderr, (args, stderr)
    assert recording.read_bytes() == b"not yet"
    # Every recording unusable (here: not a recording at all) is bad input too, after the table.
    proc = run_cli("triage", str(recording), "--watch", "x")
    assert proc.returncode == 2 and "no recording could be triaged" in proc.stderr.decode()
    assert "cannot triage:" in proc.stdout.decode()


def test_a_watch_naming_nothing_is_bad_input(tmp_path: Path) -> None:
    recording = record(CMDINT_RUNS[0], tmp_path)
    proc = triage(str(tmp_path), "--watch", "no_such_variable", "-q")
    assert proc.returncode == 2, proc.stderr.decode()
    alone = run_cli("locate", str(recording), "--watch", "no_such_variable")
    assert alone.returncode == 2
    reason = alone.stderr.decode().strip().splitlines()[-1].removeprefix("chronicorn: ")
    assert f"error    cannot triage: {reason}" in proc.stdout.decode()  # locate's own reason, as locate gives it
