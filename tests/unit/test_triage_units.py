"""gdbstub/triage/ without gdb: grouping, ordering, the report's text and JSON, finding recordings, executors, the
worker's guest symbols kept from one recording to the next."""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import multiprocessing
import os
import shutil
import threading
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path

import pytest

from gdbstub.locate import Write
from gdbstub.triage import (
    Culprit,
    DaskExecutor,
    Ending,
    Job,
    LocalExecutor,
    Outcome,
    RecordingResult,
    TriageError,
    TriageReport,
    _result_of,
    dask_address,
    examine,
    find_recordings,
    group_results,
    key_of,
    make_executor,
    worker,
)
from gdbstub.triage.symbols_cache import SymbolsCache, image_key, shipped_key
from gdbstub.triage.timed_pool import run_within
from replay.symbols import Symbols
from tests.conftest import ROOT, require_tool, run_cli

CMDINT = ROOT / "gdbstub" / "demo" / "firmware" / "rv32" / "cmdint.elf"


def write(pc: int, line: int, function: str = "set_name", file: str = "./cmdint.c") -> Write:
    return Write(100, pc, function, file, line, f"line {line}", f"sb at {pc:#x}", "1", "2")


def failed(name: str, *writes: Write) -> RecordingResult:
    return RecordingResult(name, Outcome.FAILED, Ending("exited", 7, 1000), located=True, from_icount=1000,
                           writes=writes)  # fmt: skip


PASSED = Ending("exited", 0, 900)


def sample() -> list[RecordingResult]:
    return [
        failed("a", write(0x10, 5)),
        failed("b", write(0x20, 6)),
        RecordingResult("c", Outcome.PASSED, PASSED),
        failed("d", write(0x10, 5), write(0x8, 4)),  # the culprit is the latest write only
        failed("e"),  # nothing wrote it
        RecordingResult("f", Outcome.ERROR, error="recording is truncated inside its header"),
        failed("g", write(0x10, 5)),
        RecordingResult("h", Outcome.ERROR, error="the recording has no initial snapshot"),
        RecordingResult("i", Outcome.ERROR, error="recording is truncated inside its header"),
        failed("j", write(0x24, 6)),  # the same line, another instruction (another build, an unrolled loop)
    ]


def test_groups_by_outcome_and_culprit_largest_failed_first_then_errors_then_passed() -> None:
    groups = group_results(sample())
    assert [g.recordings for g in groups] == [("a", "d", "g"), ("b",), ("j",), ("e",), ("f", "i"), ("h",), ("c",)]
    assert [g.key.outcome for g in groups] == [Outcome.FAILED] * 4 + [Outcome.ERROR] * 2 + [Outcome.PASSED]
    assert groups[0].key.culprit == Culprit("set_name", "./cmdint.c", 5, 0x10)
    assert groups[3].key.culprit is None and groups[4].key.error == "recording is truncated inside its header"
    # Each recording is in exactly one group, the one its own key names.
    results = sample()
    assert sorted(name for g in groups for name in g.recordings) == sorted(r.recording for r in results)
    for result in results:
        (group,) = [g for g in groups if result.recording in g.recordings]
        assert group.key == key_of(result)


def test_group_by_line_ignores_the_pc_and_function_the_line() -> None:
    by_line = group_results(sample(), "line")
    assert [g.recordings for g in by_line][:3] == [("a", "d", "g"), ("b", "j"), ("e",)]
    assert by_line[1].key.culprit == Culprit("set_name", "./cmdint.c", 6, None)
    by_function = group_results(sample(), "function")
    assert by_function[0].recordings == ("a", "b", "d", "g", "j")
    with pytest.raises(ValueError, match="group_by"):
        group_results(sample(), "file")


def test_source_and_instruction_are_shown_not_compared() -> None:
    one = Culprit("f", "x.c", 3, 0x40, "a = 1;", "sw a0, 0(a1)")
    assert one == Culprit("f", "x.c", 3, 0x40) and hash(one) == hash(Culprit("f", "x.c", 3, 0x40))
    assert one != Culprit("f", "x.c", 3, 0x44)
    assert one.describe() == "f  x.c:3  pc 0x40"


def test_passed_recordings_located_on_request_group_apart_from_failed_ones() -> None:
    located = RecordingResult("p", Outcome.PASSED, PASSED, located=True, writes=(write(0x10, 5),))
    groups = group_results([failed("a", write(0x10, 5)), located])
    assert [(g.key.outcome, g.recordings) for g in groups] == [(Outcome.FAILED, ("a",)), (Outcome.PASSED, ("p",))]


def report(results: list[RecordingResult], locate_passing: bool = False) -> TriageReport:
    return TriageReport("probe.scale", 1, "pc", "local (2 processes)", locate_passing, tuple(results),
                        group_results(results), 1.5)  # fmt: skip


def test_the_json_lists_every_recording_with_its_group_and_every_group() -> None:
    data = json.loads(report(sample()).to_json())
    assert data["summary"] == {"recordings": 10, "failed": 6, "passed": 1, "errors": 3, "groups": 7}
    groups = {g["group"]: g for g in data["groups"]}
    for entry in data["recordings"]:
        assert entry["recording"] in groups[entry["group"]]["recordings"]
    first = data["recordings"][0]
    assert first["outcome"] == "failed" and first["ending"] == {"kind": "exited", "code": 7, "icount": 1000}
    assert first["writes"][0]["pc"] == 0x10 and "seconds" in first
    assert groups[1]["culprit"]["line"] == 5 and groups[1]["count"] == 3
    assert groups[6]["error"] == "the recording has no initial snapshot" and groups[6]["culprit"] is None


def test_the_text_table_has_one_row_per_group_and_their_members() -> None:
    text = report(sample()).to_text()
    assert "10 recordings: 6 failed (5 with a write to probe.scale), 1 passed, 3 could not be triaged; 7 groups" in text
    rows = [line for line in text.splitlines() if line[:5].strip().isdigit()]
    assert len(rows) == 7
    assert rows[0].split()[:4] == ["1", "3", "failed", "set_name"] and "./cmdint.c:5  pc 0x10" in rows[0]
    assert "nothing wrote probe.scale" in rows[3] and "cannot triage: recording is truncated" in rows[4]
    assert rows[6].split()[:3] == ["7", "1", "passed"] and "not located" in rows[6]
    assert "group 1: a d g" in text and "5 | line 5" in text


def test_a_report_of_errors_only_is_not_triaged() -> None:
    errors = [RecordingResult("x", Outcome.ERROR, error="cannot watch 'nope'")]
    assert not report(errors).triaged and report(sample()).triaged


def test_find_recordings_directories_globs_files_once_each(tmp_path: Path) -> None:
    (tmp_path / "ci" / "run1").mkdir(parents=True)
    for name in ("ci/a.chrec", "ci/run1/b.chrec", "ci/notes.txt", "c.chrec"):
        (tmp_path / name).write_bytes(b"x")
    found = find_recordings([str(tmp_path / "ci"), str(tmp_path / "*.chrec"), str(tmp_path / "ci" / "a.chrec")])
    assert [path.relative_to(tmp_path).as_posix() for _, path in found] == ["ci/a.chrec", "ci/run1/b.chrec", "c.chrec"]
    assert found[0][0] == str(tmp_path / "ci" / "a.chrec")  # the name as it was given (here: found in the dir)
    with pytest.raises(TriageError, match="no recordings match"):
        find_recordings([str(tmp_path / "*.zip")])
    with pytest.raises(TriageError, match="no such file"):
        find_recordings([str(tmp_path / "missing.chrec")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(TriageError, match="no recordings match"):
        find_recordings([str(tmp_path / "empty")])


def test_examine_turns_unreadable_files_into_error_results(tmp_path: Path) -> None:
    junk = tmp_path / "junk.chrec"
    junk.write_bytes(b"not a recording at all")
    result = examine(Job(str(junk), "junk.chrec", "x"))
    assert result.outcome == Outcome.ERROR and result.error and not result.located
    assert str(junk) not in result.error  # the path is left out, so the same reason groups together
    missing = examine(Job(str(tmp_path / "gone.chrec"), "gone.chrec", "x"))
    assert missing.outcome == Outcome.ERROR and missing.error == "cannot read the recording: No such file or directory"
    shipped = examine(Job("x.chrec", "x.chrec", "x", data=b"CHRONREC" + b"\xff" * 40))
    assert shipped.outcome == Outcome.ERROR and shipped.error


def test_executor_specs() -> None:
    assert dask_address("dask://127.0.0.1:8786") == "tcp://127.0.0.1:8786"
    assert dask_address("dask://tls://sched.example:8786") == "tls://sched.example:8786"
    for bad in ("dask://host", "dask://:8786", "dask://host:0", "dask://host:http"):
        with pytest.raises(TriageError, match="dask://HOST:PORT"):
            dask_address(bad)
    assert make_executor("local", 3) == LocalExecutor(3)
    with pytest.raises(TriageError, match="expected local or dask"):
        make_executor("ray://h:1")
    with pytest.raises(TriageError, match="--ship is for a Dask executor"):
        make_executor("local", ship=True)


def test_the_dask_executor_is_built_only_with_dask_installed() -> None:
    require_tool(importlib.util.find_spec("distributed") is not None,
                 "dask.distributed is not installed: pip install 'chronicorn[cluster]'")  # fmt: skip
    assert make_executor("dask://h:1", ship=True) == DaskExecutor("tcp://h:1", ship=True)


def test_a_worker_that_died_is_that_recordings_error_not_the_runs() -> None:
    future: concurrent.futures.Future[RecordingResult] = concurrent.futures.Future()
    future.set_exception(BrokenProcessPool("A process in the process pool was terminated abruptly"))
    result = _result_of(future, Job("/x/a.chrec", "a.chrec", "probe.scale"))
    assert result == RecordingResult("a.chrec", Outcome.ERROR, error="the worker failed: BrokenProcessPool: A process "
                                     "in the process pool was terminated abruptly")  # fmt: skip


def test_a_worker_keeps_an_images_symbols_until_its_file_changes(tmp_path: Path) -> None:
    image = tmp_path / "cmdint.elf"
    shutil.copyfile(CMDINT, image)
    cache = SymbolsCache(size=2)
    first = Symbols.from_elf(image)
    assert cache.share(image_key(image), first) is first
    assert cache.share(image_key(image), Symbols.from_elf(image)) is first  # the same file: the same symbols
    (tmp_path / "link.elf").symlink_to(image)
    assert cache.share(image_key(tmp_path / "link.elf"), Symbols.from_elf(tmp_path / "link.elf")) is first
    info = image.stat()
    os.utime(image, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    touched = Symbols.from_elf(image)
    assert cache.share(image_key(image), touched) is touched and len(cache) == 2  # rewritten: read again
    assert cache.share(None, first) is first and cache.share(image_key(image), None) is None
    assert image_key(tmp_path / "gone.elf") is None
    other = Symbols.from_elf(CMDINT)
    assert cache.share(image_key(CMDINT), other) is other and len(cache) == 2  # the oldest one went
    assert cache.share(image_key(image), touched) is touched and cache.share(image_key(CMDINT), first) is other
    assert shipped_key("a.elf", b"x") == shipped_key("a.elf", b"x") != shipped_key("a.elf", b"y")
    cache.clear()
    assert len(cache) == 0


def test_examine_finds_the_same_with_the_symbols_a_worker_kept(tmp_path: Path) -> None:
    recordings = []
    for n, name in enumerate(("kitchen-sink-drawer-17", "upstairs-and-downstairs")):
        (tmp_path / f"{n}.in").write_text(f"scale {n + 2}\nname {name}\nsample\nreport\nquit\n")
        recordings.append(tmp_path / f"{n}.chrec")
        proc = run_cli("record", str(CMDINT), "-o", str(recordings[-1]), "--uart-input", str(tmp_path / f"{n}.in"))
        assert recordings[-1].exists(), proc.stderr.decode()
    jobs = [Job(str(path), path.name, "probe.scale", depth=2) for path in recordings]
    cold = []
    for job in jobs:
        worker._symbols.clear()
        cold.append(examine(job))
    assert len(worker._symbols) == 1 and all(r.located and r.writes for r in cold)
    assert cold[0].culprit != cold[1].culprit or cold[0].writes != cold[1].writes  # two different answers
    assert [examine(job) for job in jobs] == cold  # with the symbols kept from the first recording
    shipped = [Job(job.name, job.name, job.watch, 2, data=Path(job.recording).read_bytes(), guest_name="cmdint.elf")
               for job in jobs]  # fmt: skip
    sourceless = [replace(r, writes=tuple(replace(w, source=None) for w in r.writes)) for r in cold]
    assert [examine(job, CMDINT.read_bytes()) for job in shipped] == sourceless  # (./cmdint.c is not beside it)
    assert len(worker._symbols) == 2


def stuck_or_dead(job: Job) -> RecordingResult:
    """examine, except that a recording named hang* waits for what never comes (as one that hangs would; for at
    most a minute, so that a broken time limit fails the test instead of hanging it), and crash* ends the
    worker process."""
    if job.name.startswith("hang") and not threading.Event().wait(60):
        return RecordingResult(job.name, Outcome.ERROR, error="not stopped by the time limit")
    if job.name.startswith("crash"):
        os._exit(3)
    return examine(job)


def test_a_recording_over_the_time_limit_is_its_error_and_the_others_go_on(tmp_path: Path) -> None:
    junk = tmp_path / "junk.chrec"
    junk.write_bytes(b"not a recording at all")
    names = ["hang-1.chrec", "junk-1.chrec", "crash.chrec", "junk-2.chrec", "hang-2.chrec", "junk-3.chrec"]
    jobs = [Job(str(junk), name, "x") for name in names]
    context = multiprocessing.get_context()
    results = {r.recording: r for r in run_within(2.0, jobs, 2, context, work=stuck_or_dead)}
    assert sorted(results) == sorted(names)
    for name in ("hang-1.chrec", "hang-2.chrec"):
        assert results[name] == RecordingResult(name, Outcome.ERROR, error="took longer than 2 s (the time limit)")
        assert results[name].seconds >= 2.0
    assert results["crash.chrec"].error == "the worker failed: its process ended with exit code 3"
    for name in ("junk-1.chrec", "junk-2.chrec", "junk-3.chrec"):
        assert results[name] == replace(examine(Job(str(junk), name, "x")), recording=name) and results[name].error


def test_the_local_executor_with_a_time_limit_runs_every_recording_in_a_worker(tmp_path: Path) -> None:
    junk = tmp_path / "junk.chrec"
    junk.write_bytes(b"not a recording at all")
    executor = make_executor("local", 1, timeout=600)
    assert executor == LocalExecutor(1, 600.0) and executor.describe() == "local (1 process, at most 600 s a recording)"
    assert list(executor.run([Job(str(junk), "junk.chrec", "x")])) == [examine(Job(str(junk), "junk.chrec", "x"))]
    for bad in (0, -1, float("inf"), float("nan")):
        with pytest.raises(TriageError, match="expected a number of seconds"):
            make_executor("local", timeout=bad)
    with pytest.raises(TriageError, match="--timeout is for the local executor"):
        make_executor("dask://h:1", timeout=5)


@pytest.mark.parametrize(("option", "message"), [
    (["--timeout", "0"], "argument --timeout: 0 is out of range"),
    (["--timeout", "soon"], "argument --timeout: soon is not a number of seconds"),
    (["--timeout", "5", "--executor", "dask://h:1"], "--timeout is for the local executor"),
])  # fmt: skip
def test_bad_timeouts_are_one_line_and_exit_2(tmp_path: Path, option: list[str], message: str) -> None:
    (tmp_path / "a.chrec").write_bytes(b"not a recording at all")
    proc = run_cli("triage", str(tmp_path), "--watch", "x", *option)
    assert proc.returncode == 2 and message in proc.stderr.decode() and "Traceback" not in proc.stderr.decode()
