"""Damaged and crafted recordings never crash, hang or traceback the ``chronicorn`` command (issue 10).

Each test makes variants of three small real recordings (echo with UART input, rtc which reads the host
clock, timer), recorded at test time by ``chronicorn record``, and runs ``replay --guest ELF`` (the right
ELF, in case the header's path is damaged), ``replay`` without ``--guest`` (when the header's bytes differ
from the recording's: otherwise it is the same run), ``info`` and ``events`` on each, under a time limit
(``TIMEOUT_S``: hitting it is a failure, "hang") and an address-space limit (``MEMORY_LIMIT``: a memory
blow-up fails inside the child instead of taking the machine down). A run passes when:

* its exit code is in the documented set: replay 0 (replayed, possibly the intact prefix with a warning),
  2 (bad input) or 5 (divergence); info and events 0 or 2; never a signal;
* its stderr has no "Traceback" (nor "Exception ignored" ones) and at most ``MAX_STDERR_LINES`` lines, and
  with exit code 2 exactly one line, starting "chronicorn:";
* its peak resident memory stays under ``MEMORY_BUDGET_MIB`` (stricter than the address-space limit: a
  ~3 KB file that makes chronicorn touch 1 GiB before refusing it is a bomb that went off; measured by the
  fork server only).

Failures are collected, classified (hang; signal; traceback: exception type and innermost frame; exit code;
stderr shape; memory), and reported together at the end with the commands that failed, one example per
class (the one with the fewest mutations) and its stderr, so one run shows every class. Each example is
written out as a reproducer with a README.txt of commands (in ``$CHRONICORN_DAMAGE_SAVE``, else the test's
tmp dir).

The variants:

* byte mutations, blind to the format: truncate; flip 1-8 bits; zero, duplicate (insert a copy), delete,
  or splice (bytes from elsewhere in the file or another recording) a range; set a 1/2/4/8-byte
  little-endian field to an extreme (0, 1, 0x7f.., 0x80.., 0xff.., 2**31, 2**32-1, 2**63); append
  garbage; or two of these in a row. Half of the offsets are drawn near a structural landmark (see
  :func:`landmarks`: the header's fields, each chunk's head), half anywhere.
* crafted chunks (:func:`craft`): byte mutations of a chunk's *decompressed* payload, recompressed and
  reframed with right lengths and CRC (byte damage to a payload only ever meets the CRC check; this reaches
  the decoders behind it); chunk head fields; dropped, duplicated and reordered chunks; payloads swapped
  between chunks and recordings; synthetic event records with extreme kinds, deltas and fields.
* the header matrix (:func:`header_variants`): every header key deleted or set to each of
  ``HEADER_VALUES``; hostile image paths (/dev/zero, a directory, a NUL byte...); non-object, empty,
  non-UTF-8, 100000-deep, duplicate-key and oversized headers; all with a right CRC.
* execution index chunks (:func:`index_variants`, format version 4, on echo saved as ``monitor record
  save`` saves): truncated, counts beyond the payload, past the end, huge varints, 4 MiB of tiny entries,
  duplicated, stamped past the end, inside a version 3 file, and 12 payload mutations.
* bookmarks and named snapshot chunks (:func:`names_variants`, format version 6, on "echo+names": echo saved
  with two named snapshots and two bookmarks, one of the recordings every suite draws from): counts and
  name lengths beyond the payload, bad names, duplicates, unknown kinds, past the end, huge varints, 1 MiB
  of entries, states at other icounts or log positions, cut states, a state claiming a RAM's worth, chunks
  twice, stamped past the end, inside a version 5 file, and 12 payload mutations of each kind.
* handcrafted cases (:func:`handcrafted_cases`): zstd bombs (1 GiB of zeros, level 19, streamed: ~32 KB;
  with no content size, with it, and with a lying one) as snapshot and events payloads with right CRCs; RAM
  size 2**44; arch "x86_64"; icount_shift "3"; unknown keys; decompressed payloads shorter than 8 bytes; a
  CPU state claiming the wrong length; a varint that never ends; an End 2**64 instructions later; a 2**70 ns
  clock reading; huge header and chunk length fields; the last bytes cut; the intact recordings.

Tiers: fast (not ``slow``): the handcrafted cases, a hypothesis property over 30 byte mutations, and a check
that the fork server (below) agrees with ``python -m``; ``slow``: 1,200 byte mutations, 300 crafted chunks
and the header matrix. ~1,750 variants and ~5,500 runs in all, ~1.5 min on 2 cores when nothing hangs.

Choices:

* Generation. The mutation code is written once against a tiny :class:`Chooser` interface and driven two
  ways. The fast property draws through hypothesis (``derandomize=True``, no database: CI sees the same
  variants every run; hypothesis starts with boundary cases: offset 0, truncation, header fields). The slow
  suites draw from ``random.Random(f"{SEED}:{index}")``: the same variants whatever hypothesis version is
  installed, each re-creatable from its index (``#index`` in the report), offsets spread evenly over the
  file (hypothesis skews towards small integers, the header, and away from the chunks at the end). Both
  generate first and run after (two at a time); hypothesis does not shrink: one example per class is what
  the decoder's author needs, and shrinking through 20 s hangs would take hours.
* Running. A fresh ``python -m gdbstub.cli`` spends ~0.25 s importing unicorn and chronicorn before it reads
  the file, and interpreter teardown ~0.1 s more: ~5,500 runs would take ~15 min on 2 cores. So runs go
  through scripts/fuzz_recordings.py, a fork server that imports those modules once and forks a real child
  per run doing what ``python -m gdbstub.cli ARGS`` does (runpy; uncaught exceptions, ``SystemExit``,
  atexit, finalizers as the interpreter; its own resource limits; real signals; it skips only the module
  teardown), ~0.03-0.08 s a run, ``WORKERS`` at a time. ``test_fork_server_agrees_with_python_m`` checks it
  gives the exit codes and stderr of ``[sys.executable, "-m", "gdbstub.cli", ...]`` with ``preexec_fn``
  limits; every failure class's example is re-run that literal way (the report says whether it confirms);
  ``CHRONICORN_DAMAGE_RUNNER=subprocess`` runs everything that way.
* Hangs cost the whole timeout: after ``HANG_BUDGET`` of them in one test the timeout drops to
  ``SHORT_TIMEOUT_S`` (>50x what a healthy run of these guests takes), so a hang-prone decoder still gets
  its full report in minutes.

The crafting needs the container's framing: :data:`CHUNK_LAYOUTS` (one row per format version: 2 as of
commit 3ceba3e, 3 since 6128457, varint payload prefixes since 64d85ba), :class:`Container`,
:func:`read_prefix`, :func:`snapshot_marks`, :func:`with_cpu_length` and the event-record helpers, all
under "format knowledge". ``test_the_format_knowledge_matches_the_recorder`` checks they take today's
recordings apart and back byte for byte; when the format changes, adapt them (a builder that meets a
format it does not know fails saying what to adapt, it never skips). The byte mutations need none of it
(landmarks fall back to a guess). The recordings are made at test time, so their bytes vary a little from
run to run (the rtc clock reading, UART input timing); the mutations drawn do not.

Environment: CHRONICORN_DAMAGE_RUNNER (fork | subprocess), CHRONICORN_DAMAGE_WORKERS (2),
CHRONICORN_DAMAGE_TIMEOUT (20 s), CHRONICORN_DAMAGE_SAVE (where reproducers go).
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import resource
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, TypeVar

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import varint

ROOT = Path(__file__).resolve().parents[2]
GUESTS = ROOT / "tests" / "guests" / "riscv"
FORK_SERVER = ROOT / "scripts" / "fuzz_recordings.py"
CLI_MODULE = "gdbstub.cli"
PRELOAD = ("gdbstub.cli.*", "gdbstub.cli_recording", "replay.*", "machine.machine", "machine.state", "machine.loader",
           "zstandard", "unicorn", "capstone", "elftools.elf.elffile")  # fmt: skip

EXIT_CODES = {"replay": {0, 2, 5}, "info": {0, 2}, "events": {0, 2}}
TIMEOUT_S = float(os.environ.get("CHRONICORN_DAMAGE_TIMEOUT", "20"))
SHORT_TIMEOUT_S = min(TIMEOUT_S, 5.0)
HANG_BUDGET = 3
MEMORY_LIMIT = 2 << 30
MEMORY_BUDGET_MIB = 512  # peak RSS a run may use (these recordings are < 64 KB; a healthy run takes < 100)
STDERR_FILE_LIMIT = 64 << 20
MAX_STDERR_LINES = 4
WORKERS = int(os.environ.get("CHRONICORN_DAMAGE_WORKERS", "2"))
RUNNER = os.environ.get("CHRONICORN_DAMAGE_RUNNER", "fork")
SAVE_DIR = os.environ.get("CHRONICORN_DAMAGE_SAVE")

SEED = 20_240_610
FAST_EXAMPLES = 30
FULL_BYTE_VARIANTS = 1200
FULL_CRAFTED_VARIANTS = 300

T = TypeVar("T")


# -- the recordings ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recording:
    name: str
    elf: Path
    data: bytes


GUEST_INPUTS = {"echo": GUESTS / "expected" / "echo.in", "rtc": None, "timer": None, "virtioblk": None,
                "netping": None, "aarch64-echo": GUESTS.parent / "aarch64" / "expected" / "echo.in",
                "cortexm-pendsv": None}  # fmt: skip
# The Arm boards' recordings: AArch64 (its CPU state, the GIC's), Cortex-M (tasks on PSP, the NVIC's state).
ELF_PATHS = {"aarch64-echo": GUESTS.parent / "aarch64" / "build" / "echo.elf",
             "cortexm-pendsv": GUESTS.parent / "cortexm" / "build" / "pendsv.elf"}  # fmt: skip
MACHINE_OPTIONS = {
    "virtioblk": ["--drive", str(GUESTS / "inputs" / "disk.img")],  # (read by its recorded path at replay)
    "netping": ["--net", "user"],  # (a replay needs no network: the frames are events)
}


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Recording]:
    """echo (UART input), rtc (a host-clock read) and timer (interrupts), each ~17k instructions, virtioblk (a disk
    read and written: completion events, a disk in every state), netping (network frames as events), one
    recording of each Arm board (AArch64 echo, Cortex-M pendsv), and echo+names (saved as ``monitor record
    save`` saves it, with named snapshots and bookmarks: format version 6)."""
    directory = tmp_path_factory.mktemp("recordings")
    empty = directory / "empty.in"
    empty.write_bytes(b"")
    made = {}
    for name, uart_input in GUEST_INPUTS.items():
        elf = ELF_PATHS.get(name, GUESTS / "build" / "rv32" / f"{name}.elf")
        out = directory / f"{name}.chrec"
        command = [sys.executable, "-m", CLI_MODULE, "record", str(elf), "-o", str(out),
                   "--uart-input", str(uart_input or empty)]  # fmt: skip
        command += MACHINE_OPTIONS.get(name, [])
        proc = subprocess.run(command, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        if proc.returncode != 0 or not out.is_file():
            pytest.fail(f"`chronicorn record` of {name} failed (exit {proc.returncode}); stderr:\n"
                        f"{proc.stderr.decode(errors='replace')[-2000:]}", pytrace=False)  # fmt: skip
        made[name] = Recording(name, elf, out.read_bytes())
    made["echo+names"] = names_recording(directory)
    return made


NAMES_SCHEDULE = [(16_800, b"ab\n"), (30_000, b"hello\n"), (45_000, b"q")]


def names_recording(directory: Path) -> Recording:
    """echo served and saved by ``monitor record save`` with two named snapshots and two bookmarks (version 6:
    an index, a bookmarks chunk and two named snapshot chunks before the End)."""
    from gdbstub.monitor import Monitor
    from machine.inputs import ScriptedInputs
    from machine.loader import load_image
    from machine.machine import Machine
    from replay.history import HistoryInputs
    from replay.recording import make_header
    from replay.saver import save_timeline
    from replay.store import SnapshotStore
    from replay.timeline import Timeline

    elf = GUESTS / "build" / "rv32" / "echo.elf"
    inputs = HistoryInputs([], 0, ScriptedInputs(0, list(NAMES_SCHEDULE)))
    machine = Machine(load_image(elf), inputs, lambda byte: None)
    timeline = Timeline(machine, inputs, SnapshotStore(), 1024)
    monitor = Monitor(timeline, lambda: "", lambda path, overwrite: "")
    for until, command in ((2_000, "bookmark early"), (9_000, "snapshot save mid"),
                           (16_900, "bookmark typed"), (17_300, "snapshot save late")):  # fmt: skip
        timeline.run_forward(until=until)
        assert timeline.icount == until and not monitor(command).startswith("error"), command
    timeline.run_forward()
    header = make_header(machine.image, machine.arch.name, machine.config.ram_size, 3, "off", {})
    path = save_timeline(timeline, header, directory, "echo+names.chrec")
    return Recording("echo+names", elf, path.read_bytes())


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """zstd frames of 1 GiB of zeros (level 19, streaming: ~32 KB): with no content size, 1 GiB, a lie."""
    out = io.BytesIO()
    zeros = bytes(1 << 24)
    with zstandard.ZstdCompressor(level=19).stream_writer(out, size=1 << 30, closefd=False) as writer:
        for _ in range(64):
            writer.write(zeros)
    pledged = out.getvalue()
    start, fcs_size = _zstd_content_size_field(pledged)
    assert fcs_size == 4, "zstd wrote the 1 GiB content size in an unexpected field width"
    descriptor = pledged[4] & 0x3F  # no content-size field (needs a window descriptor: single-segment is off)
    return {
        "1 GiB, no content size": pledged[:4] + bytes((descriptor,)) + pledged[5:start] + pledged[start + 4 :],
        "1 GiB, content size 1 GiB": pledged,
        "1 GiB, content size claims 4 GiB - 1": pledged[:start] + b"\xff\xff\xff\xff" + pledged[start + 4 :],
    }


def _zstd_content_size_field(frame: bytes) -> tuple[int, int]:
    """Offset and width of a zstd frame header's Frame_Content_Size field (RFC 8878 3.1.1.1)."""
    descriptor = frame[4]
    single_segment = descriptor >> 5 & 1
    assert not single_segment, "a single-segment frame has no window descriptor to keep"
    dictionary_bytes = (0, 1, 2, 4)[descriptor & 3]
    width = (0, 2, 4, 8)[descriptor >> 6]
    return 4 + 1 + 1 + dictionary_bytes, width


# -- running the command ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    status: int | None  # exit code, or -signal; None: killed for outliving its timeout
    stderr: str
    seconds: float
    timeout: float
    peak_mib: float | None = None  # peak resident memory (fork server only)


class Runner(Protocol):
    def run(self, args: Sequence[str], timeout: float) -> Outcome: ...

    def close(self) -> None: ...


def _limit_resources() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class SubprocessRunner:
    """The literal command: ``[sys.executable, "-m", "gdbstub.cli", *args]``, limits set in ``preexec_fn``."""

    def run(self, args: Sequence[str], timeout: float) -> Outcome:
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", CLI_MODULE, *args], cwd=ROOT, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout, preexec_fn=_limit_resources,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            return Outcome(None, _text(exc.stderr or b""), time.monotonic() - started, timeout)
        return Outcome(proc.returncode, _text(proc.stderr), time.monotonic() - started, timeout)

    def close(self) -> None:
        pass


class ForkServerRunner:
    """The same command, forked from scripts/fuzz_recordings.py with the imports already done."""

    def __init__(self, workdir: Path) -> None:
        self._stderr = workdir / f"stderr-{threading.get_ident()}-{id(self)}"
        self._proc = subprocess.Popen(
            [sys.executable, str(FORK_SERVER), "--module", CLI_MODULE, "--preload", ",".join(PRELOAD)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        ready = self._read()
        if not ready.get("ready"):
            raise RuntimeError(f"the fork server did not start: {ready}")

    def _read(self) -> dict[str, object]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server exited (status {self._proc.wait()})")
        return json.loads(line)

    def run(self, args: Sequence[str], timeout: float) -> Outcome:
        assert self._proc.stdin is not None
        limits = {"AS": MEMORY_LIMIT, "CORE": 0, "FSIZE": STDERR_FILE_LIMIT}
        request = {"args": list(args), "stderr": str(self._stderr), "timeout": timeout, "limits": limits}
        self._proc.stdin.write(json.dumps(request).encode() + b"\n")
        self._proc.stdin.flush()
        answer = self._read()
        with open(self._stderr, "rb") as f:
            stderr = _text(f.read(256 << 10))
        status = None if answer["hung"] else int(answer["status"])  # type: ignore[call-overload]
        peak = int(answer["peak_rss_kib"]) / 1024  # type: ignore[call-overload]
        return Outcome(status, stderr, float(answer["seconds"]), timeout, peak)  # type: ignore[arg-type]

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(timeout=30)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def make_runner(kind: str, workdir: Path) -> Runner:
    return SubprocessRunner() if kind == "subprocess" else ForkServerRunner(workdir)


# -- verdicts ---------------------------------------------------------------------------------------------
def commands(path: Path, elf: Path, header_changed: bool = True) -> list[tuple[str, list[str]]]:
    """(label, arguments) of the runs a variant gets.

    ``replay`` without ``--guest`` takes the image path from the header: when the header's bytes are the
    original ones that is the path ``--guest`` names, the same run, so it is left out.
    """
    runs = [("replay --guest", ["replay", str(path), "--guest", str(elf)])]
    if header_changed:
        runs.append(("replay", ["replay", str(path)]))
    return [*runs, ("info", ["info", str(path)]), ("events", ["events", str(path)])]


def verdict(command: str, outcome: Outcome) -> str | None:
    """What is wrong with one run (its failure class: tracebacks say where, the rest which command), or None."""
    if outcome.status is None:
        return f"hang (killed at the time limit) in {command}"
    if outcome.status < 0:
        try:
            name = signal.Signals(-outcome.status).name
        except ValueError:
            name = f"signal {-outcome.status}"
        return f"killed by {name} in {command}"
    if "Traceback" in outcome.stderr:
        ignored, exception, where = traceback_parts(outcome.stderr)
        return f"traceback{' (ignored)' if ignored else ''}: {exception.split(':')[0]}{where}"
    if outcome.peak_mib is not None and outcome.peak_mib > MEMORY_BUDGET_MIB:
        return f"memory: peak RSS over {MEMORY_BUDGET_MIB} MiB in {command}"
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    if outcome.status not in EXIT_CODES[command]:
        return f"exit {outcome.status} from {command}" + (f": {_normalise(lines[-1])}" if lines else "")
    if outcome.status == 2 and (len(lines) != 1 or not lines[0].startswith("chronicorn:")):
        return f"exit 2 from {command} without a one-line 'chronicorn: ...' error ({len(lines)} stderr lines)"
    if len(lines) > MAX_STDERR_LINES:
        return f"{len(lines)} lines on stderr from {command}"
    return None


def traceback_parts(stderr: str) -> tuple[bool, str, str]:
    """The last traceback: whether it was "Exception ignored", its exception line, its innermost frame."""
    lines = stderr.splitlines()
    start = max(i for i, line in enumerate(lines) if "Traceback" in line)
    ignored = any("Exception ignored" in line for line in lines[max(0, start - 2) : start + 1])
    end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() and not lines[i].startswith(" ")), None)
    exception = lines[end] if end is not None else "?"
    frames = [re.match(r'\s*File "(.*)", line \d+, in (.*)', line) for line in lines[start:end]]
    where = ""
    if innermost := [frame for frame in frames if frame][-1:]:
        path, function = Path(innermost[0].group(1)), innermost[0].group(2)
        inside = path.is_relative_to(ROOT) and "site-packages" not in path.parts
        shown = path.relative_to(ROOT) if inside else path.name
        where = f" in {function} ({shown})"
    return ignored, exception, where


def _normalise(text: str) -> str:
    """Failure-class text: numbers and addresses folded, so one class does not split per file offset."""
    return re.sub(r"\d+", "#", re.sub(r"0x[0-9a-fA-F]+", "0x#", text))[:160]


@dataclass(frozen=True)
class Variant:
    description: str
    data: bytes
    elf: Path
    weight: int = 1  # elementary mutations in it (the simplest example of a class is shown)
    header_changed: bool = True  # False: the file header's bytes are the recording's (see commands())


def make_variant(description: str, data: bytes, recording: Recording, weight: int = 1) -> Variant:
    try:
        header_end = Container.parse(recording.data).header_end
    except UnknownFormat:
        header_end = len(data) + 1  # unknown: count it as changed
    changed = data[:header_end] != recording.data[:header_end]
    return Variant(description, data, recording.elf, weight, changed)


@dataclass
class Failure:
    variant: Variant
    label: str
    args: list[str]
    outcome: Outcome


@dataclass
class Ledger:
    """Every failing run, by class; what the final assertion reports."""

    variants: int = 0
    runs: int = 0
    hangs: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # class -> command label -> failing runs
    examples: dict[str, Failure] = field(default_factory=dict)
    confirmations: dict[str, str] = field(default_factory=dict)
    reproducers: dict[str, Path] = field(default_factory=dict)
    saved: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, klass: str, failure: Failure) -> None:
        with self.lock:
            by_label = self.counts.setdefault(klass, {})
            by_label[failure.label] = by_label.get(failure.label, 0) + 1
            best = self.examples.get(klass)
            key = (failure.variant.weight, len(failure.variant.description))
            if best is None or key < (best.variant.weight, len(best.variant.description)):
                self.examples[klass] = failure
            if failure.outcome.status is None:
                self.hangs += 1

    def summary(self, show: int = 40) -> str:
        total = {klass: sum(by_label.values()) for klass, by_label in self.counts.items()}
        lines = [f"{sum(total.values())} of {self.runs} runs failed ({self.variants} variants x "
                 f"{self.runs // max(1, self.variants)} commands); {len(self.counts)} failure classes:"]  # fmt: skip
        ranked = sorted(self.counts, key=lambda klass: (-total[klass], klass))
        for number, klass in enumerate(ranked[:show], 1):
            example = self.examples[klass]
            status = "hung" if example.outcome.status is None else f"exit {example.outcome.status}"
            if example.outcome.peak_mib is not None:
                status += f", peak RSS {example.outcome.peak_mib:.0f} MiB"
            tail = [line for line in example.outcome.stderr.splitlines() if line.strip()][-2:]
            where = ", ".join(f"{label} {count}" for label, count in sorted(self.counts[klass].items()))
            lines.append(f"{number:3}. {klass}\n       [{total[klass]} runs: {where}]")
            lines.append(f"       e.g. {example.variant.description[:300]}")
            args = [str(self.reproducers.get(klass, arg)) if arg == example.args[1] else arg for arg in example.args]
            lines.append(f"       chronicorn {' '.join(args)} -> {status} in {example.outcome.seconds:.2f} s")
            lines += [f"       | {line[:200]}" for line in tail]
            if klass in self.confirmations:
                lines.append(f"       python -m gdbstub.cli: {self.confirmations[klass]}")
        if len(ranked) > show:
            lines.append(f"     ... and {len(ranked) - show} more classes")
        if self.saved:
            lines.append(self.saved)
        return "\n".join(lines)


def run_variants(variants: Sequence[Variant], workdir: Path, tag: str) -> Ledger:
    """Run the four commands on every variant, ``WORKERS`` at a time; confirm and save one example a class."""
    ledger = Ledger(variants=len(variants))
    local = threading.local()
    runners: list[Runner] = []
    runners_lock = threading.Lock()

    def check(indexed: tuple[int, Variant]) -> None:
        index, variant = indexed
        if not hasattr(local, "runner"):
            local.runner = make_runner(RUNNER, workdir)
            local.path = workdir / f"variant-{threading.get_ident()}.chrec"
            with runners_lock:
                runners.append(local.runner)
        local.path.write_bytes(variant.data)
        for label, args in commands(local.path, variant.elf, variant.header_changed):
            timeout = TIMEOUT_S if ledger.hangs < HANG_BUDGET else SHORT_TIMEOUT_S
            outcome = local.runner.run(args, timeout)
            with ledger.lock:
                ledger.runs += 1
            problem = verdict(args[0], outcome)
            if problem is not None:
                ledger.add(problem, Failure(variant, label, args, outcome))

    try:
        with ThreadPoolExecutor(max_workers=max(1, WORKERS)) as pool:
            list(pool.map(check, enumerate(variants)))
    finally:
        for runner in runners:
            runner.close()
    if ledger.counts:
        _save_reproducers(ledger, Path(SAVE_DIR) if SAVE_DIR else workdir / "reproducers", tag)
        if RUNNER != "subprocess":
            _confirm(ledger)
    return ledger


def _save_reproducers(ledger: Ledger, directory: Path, tag: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    notes = []
    for number, (klass, example) in enumerate(sorted(ledger.examples.items()), 1):
        slug = re.sub(r"[^a-z0-9]+", "-", klass.lower()).strip("-")[:60]
        path = directory / f"{tag}-{number:02d}-{slug}.chrec"
        path.write_bytes(example.variant.data)
        ledger.reproducers[klass] = path
        args = [str(path) if arg == example.args[1] else arg for arg in example.args]
        notes.append(f"{path.name}\n  class:   {klass}\n  variant: {example.variant.description}\n"
                     f"  run:     python -m gdbstub.cli {' '.join(args)}\n")  # fmt: skip
    with open(directory / "README.txt", "a") as f:
        f.write("".join(notes))
    ledger.saved = f"reproducers (one per class): {directory} (README.txt lists class and command of each)"


def _confirm(ledger: Ledger) -> None:
    """Re-run each class's example as ``python -m gdbstub.cli`` (the literal command, not the fork server)."""

    def confirm(item: tuple[str, Failure]) -> tuple[str, str]:
        klass, example = item
        path = Path(example.args[1]).with_name(f"confirm-{threading.get_ident()}.chrec")
        path.write_bytes(example.variant.data)
        args = [str(path), *example.args[2:]]
        outcome = SubprocessRunner().run([example.args[0], *args], example.outcome.timeout)
        problem = verdict(example.args[0], outcome)
        if problem is None and klass.startswith("memory:"):
            return klass, f"exit {outcome.status} (python -m runs do not measure memory)"
        if problem is None:
            return klass, (f"NOT reproduced (exit {outcome.status}): undefined behaviour (heap contents) "
                           "or a fork-server artefact")  # fmt: skip
        return klass, "confirmed" if problem == klass else f"fails differently: {problem}"

    with ThreadPoolExecutor(max_workers=max(1, WORKERS)) as pool:
        ledger.confirmations.update(pool.map(confirm, list(ledger.examples.items())))


def assert_clean(ledger: Ledger) -> None:
    if ledger.counts:
        pytest.fail(ledger.summary(), pytrace=False)


# -- choosing ---------------------------------------------------------------------------------------------
class Chooser(Protocol):
    """Where the mutation code's decisions come from: a seeded Random, or hypothesis."""

    def integer(self, low: int, high: int) -> int: ...

    def pick(self, options: Sequence[T]) -> T: ...

    def blob(self, size: int) -> bytes: ...


class RandomChooser:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def integer(self, low: int, high: int) -> int:
        return self._rng.randint(low, high)

    def pick(self, options: Sequence[T]) -> T:
        return self._rng.choice(options)

    def blob(self, size: int) -> bytes:
        return self._rng.randbytes(size)


class DrawChooser:
    def __init__(self, draw: Callable[[st.SearchStrategy[T]], T]) -> None:
        self._draw = draw

    def integer(self, low: int, high: int) -> int:
        return self._draw(st.integers(low, high))  # type: ignore[arg-type, return-value]

    def pick(self, options: Sequence[T]) -> T:
        return self._draw(st.sampled_from(options))  # type: ignore[arg-type, return-value]

    def blob(self, size: int) -> bytes:
        return self._draw(st.binary(min_size=size, max_size=size))  # type: ignore[arg-type, return-value]


# -- byte mutations (format-blind) ------------------------------------------------------------------------
def extremes(width: int) -> tuple[int, ...]:
    """0, 1, 0x7f.., 0x80.., 0xff.., 2**31, 2**32-1, 2**63 as ``width``-byte values."""
    mask = (1 << 8 * width) - 1
    values = (0, 1, mask >> 1, (mask >> 1) + 1, mask, 1 << 31, (1 << 32) - 1, 1 << 63)
    return tuple(sorted({value & mask for value in values}))


def _offset(ch: Chooser, data: bytes, marks: Sequence[int], span: int = 1) -> int:
    """An offset where ``span`` bytes fit: near a landmark half of the time, else anywhere."""
    limit = max(0, len(data) - span)
    if marks and ch.integer(0, 1):
        return min(ch.pick(marks) + ch.integer(0, 31), limit)
    return ch.integer(0, limit)


def _length(ch: Chooser, available: int) -> int:
    if available <= 0:
        return 0
    return ch.integer(1, min(available, ch.pick((4, 32, 512, available))))


Donors = Sequence[tuple[str, bytes]]


def _truncate(ch: Chooser, data: bytes, marks: Sequence[int], donors: Donors) -> tuple[bytes, str]:
    at = min(_offset(ch, data, marks), max(0, len(data) - 1))
    return data[:at], f"truncate at {at}"


def _flip(ch: Chooser, data: bytes, marks: Sequence[int], donors: Donors) -> tuple[bytes, str]:
    if not data:
        return data, "flip nothing"
    out = bytearray(data)
    spots = []
    for _ in range(ch.integer(1, 8)):
        at, bit = _offset(ch, data, marks), ch.integer(0, 7)
        out[at] ^= 1 << bit
        spots.append(f"{at}.{bit}")
    return bytes(out), f"flip bits {', '.join(spots)}"


def _zero(ch: Chooser, data: bytes, marks: Sequence[int], donors: Donors) -> tuple[bytes, str]:
    start = _offset(ch, data, marks)
    size = _length(ch, len(data) - start)
    return data[:start] + bytes(size) + data[start + size :], f"zero {size} bytes at {start}"


def _duplicate(ch: Chooser, data: bytes, marks: Sequence[int], donors: Donors) -> tuple[bytes, str]:
    start = _offset(ch, data, marks)
    size = _length(ch, len(data) - start)
    at = ch.pick((start + size, _offset(ch, data, marks), len(data)))
    return data[:at] + data[start : start + size] + data[at:], f"insert a copy of {size} bytes at {start} at {at}"


def _delete(ch: Chooser, data: bytes, marks: Sequence[int], donors: Donors) -> tuple[bytes, str]:
    start = _offset(ch, data, marks)
    size = _length(ch, len(data) - start)
    return data[:start] + data[start + size :], f"delete {size} bytes at {start}"


def _splice(ch: Chooser, data: bytes, marks: Sequence[int], donors: Donors) -> tuple[bytes, str]:
    name, donor = ch.pick([("itself", data), *donors])
    start = _offset(ch, data, marks)
    size = _length(ch, len(data) - start)
    source = ch.integer(0, max(0, len(donor) - 1))
    taken = donor[source : source + ch.pick((size, _length(ch, len(donor) - source)))]
    return (data[:start] + taken + data[start + size :],
            f"replace {size} bytes at {start} with {len(taken)} bytes at {source} of {name}")  # fmt: skip


def _set_field(ch: Chooser, data: bytes, marks: Sequence[int], donors: Donors) -> tuple[bytes, str]:
    width = ch.pick((1, 2, 4, 8))
    if len(data) < width:
        return data, "set no field (too short)"
    value = ch.pick(extremes(width))
    at = _offset(ch, data, marks, width)
    return data[:at] + value.to_bytes(width, "little") + data[at + width :], f"set u{8 * width} at {at} to {value:#x}"


def _append(ch: Chooser, data: bytes, marks: Sequence[int], donors: Donors) -> tuple[bytes, str]:
    size = ch.integer(1, 64)
    kind = ch.pick(("random", "zero", "0xff", "copy"))
    if kind == "copy":
        start = _offset(ch, data, marks)
        tail = data[start : start + size]
    else:
        tail = {"random": ch.blob(size), "zero": bytes(size), "0xff": b"\xff" * size}[kind]
    return data + tail, f"append {len(tail)} {kind} bytes"


ELEMENTARY = (_truncate, _flip, _zero, _duplicate, _delete, _splice, _set_field, _append)


def mutate(ch: Chooser, data: bytes, marks: Sequence[int], donors: Donors) -> tuple[bytes, str, int]:
    """One elementary mutation, or (a quarter of the time) two in a row: new bytes, description, count."""
    steps = ch.pick((1, 1, 1, 2))
    descriptions = []
    for _ in range(steps):
        data, description = ch.pick(ELEMENTARY)(ch, data, marks, donors)
        descriptions.append(description)
    return data, " then ".join(descriptions), steps


def landmarks(data: bytes) -> tuple[int, ...]:
    """Where structure starts: the file header's fields, the header's end, each chunk and its payload.

    Taken from :class:`Container` when it knows the format, else guessed (every ``CK`` in the file).
    """
    marks = {0, len(MAGIC), len(MAGIC) + 4, len(MAGIC) + 8, len(data)}
    try:
        container = Container.parse(data)
    except UnknownFormat:
        marks |= {match.start() for match in re.finditer(b"CK", data)}
    else:
        marks |= {container.header_end - 4, container.header_end}
        for chunk in container.chunks:
            marks |= {chunk.offset, chunk.offset + container.layout.struct.size}
    return tuple(sorted(mark for mark in marks if mark <= len(data)))


def byte_variant(ch: Chooser, recordings: dict[str, Recording]) -> Variant:
    recording = recordings[ch.pick(sorted(recordings))]
    donors = [(other.name, other.data) for other in recordings.values() if other is not recording]
    data, description, steps = mutate(ch, recording.data, landmarks(recording.data), donors)
    return make_variant(f"{recording.name}: {description}", data, recording, steps)


# -- format knowledge (adapt here when the container changes) ---------------------------------------------
MAGIC = b"CHRONREC"


class UnknownFormat(Exception):
    """This test's crafting code does not know the recording's format: adapt CHUNK_LAYOUTS and friends."""


@dataclass(frozen=True)
class ChunkLayout:
    struct: struct.Struct
    fields: tuple[str, ...]  # in order; "tag", "kind", "length", "crc", "first", "last", maybe "raw_length"

    def offset_of(self, name: str) -> int:
        """Where a field starts in the chunk head."""
        codes = re.findall(r"\d*[a-zA-Z]", self.struct.format.lstrip("<"))
        return struct.calcsize("<" + "".join(codes[: self.fields.index(name)]))


CHUNK_LAYOUTS = {
    2: ChunkLayout(struct.Struct("<2sBIIQQ"), ("tag", "kind", "length", "crc", "first", "last")),  # 3ceba3e
    3: ChunkLayout(struct.Struct("<2sBIIIQQ"), ("tag", "kind", "length", "raw_length", "crc", "first", "last")),
}
CHUNK_LAYOUTS[4] = CHUNK_LAYOUTS[3]  # version 4: version 3 plus an execution index chunk
CHUNK_LAYOUTS[5] = CHUNK_LAYOUTS[3]  # version 5: drives in the header, completion events, disks after the board
CHUNK_LAYOUTS[6] = CHUNK_LAYOUTS[3]  # version 6: version 5 plus bookmarks and named snapshot chunks
SNAPSHOT, EVENTS, CODE_INDEX, BOOKMARKS, NAMED_SNAPSHOT = 1, 2, 3, 4, 5  # chunk kinds
VARINT_PREFIXED = (3, 4, 5, 6)  # format versions whose chunk payloads start with a varint
UART_INPUT, HOST_CLOCK, CLOCK_WARP, VERIFY, END, IO_COMPLETION, NET_FRAME = 1, 2, 3, 4, 5, 6, 7  # event kinds
EVENT_FIELDS = {UART_INPUT: "b", HOST_CLOCK: "v", CLOCK_WARP: "v", VERIFY: "b", END: "vv",
                IO_COMPLETION: "v", NET_FRAME: "vb"}  # b: bytes, v: varint  # fmt: skip


@dataclass
class Chunk:
    kind: int
    first: int
    last: int
    payload: bytes  # compressed, as in the file
    raw_length: int | None = None
    crc: int | None = None  # None: the right one
    offset: int = -1

    @classmethod
    def of_raw(cls, kind: int, first: int, last: int, raw: bytes) -> Chunk:
        return cls(kind, first, last, zstandard.ZstdCompressor(level=3).compress(raw), len(raw))

    def raw(self) -> bytes:
        return zstandard.ZstdDecompressor().decompress(self.payload, max_output_size=256 << 20)


@dataclass
class Container:
    """A recording split into its parts, and put back together with correct checksums and lengths."""

    version: int
    header: bytes  # the JSON text
    chunks: list[Chunk]
    tail: bytes = b""  # whatever follows the last whole chunk
    header_end: int = 0

    @property
    def layout(self) -> ChunkLayout:
        try:
            return CHUNK_LAYOUTS[self.version]
        except KeyError:
            raise UnknownFormat(f"recording format version {self.version}: add its chunk layout") from None

    @classmethod
    def parse(cls, data: bytes) -> Container:
        if data[: len(MAGIC)] != MAGIC or len(data) < len(MAGIC) + 8:
            raise UnknownFormat("no recording magic")
        version, length = struct.unpack_from("<II", data, len(MAGIC))
        start = len(MAGIC) + 8
        container = cls(version, data[start : start + length], [], header_end=start + length + 4)
        layout = container.layout
        pos = container.header_end
        while pos + layout.struct.size <= len(data):
            fields = dict(zip(layout.fields, layout.struct.unpack_from(data, pos), strict=True))
            end = pos + layout.struct.size + fields["length"]
            if fields["tag"] != b"CK" or end > len(data):
                break
            payload = data[pos + layout.struct.size : end]
            container.chunks.append(Chunk(fields["kind"], fields["first"], fields["last"], payload,
                                          fields.get("raw_length"), None, pos))  # fmt: skip
            pos = end
        container.tail = data[pos:]
        return container

    def build(self) -> bytes:
        out = bytearray(MAGIC + struct.pack("<II", self.version, len(self.header)) + self.header)
        out += struct.pack("<I", zlib.crc32(self.header))
        for chunk in self.chunks:
            values = {"tag": b"CK", "kind": chunk.kind, "length": len(chunk.payload), "first": chunk.first,
                      "last": chunk.last, "crc": zlib.crc32(chunk.payload) if chunk.crc is None else chunk.crc,
                      "raw_length": chunk.raw_length if chunk.raw_length is not None else 0}  # fmt: skip
            out += self.layout.struct.pack(*(values[name] for name in self.layout.fields)) + chunk.payload
        return bytes(out + self.tail)

    def header_json(self) -> dict[str, object]:
        return json.loads(self.header)

    def with_header(self, header: dict[str, object] | bytes) -> Container:
        text = header if isinstance(header, bytes) else json.dumps(header, sort_keys=True).encode()
        return Container(self.version, text, list(self.chunks), self.tail)

    def index_of(self, kind: int) -> int:
        return next(i for i, chunk in enumerate(self.chunks) if chunk.kind == kind)

    def replacing(self, index: int, chunk: Chunk) -> Container:
        chunks = list(self.chunks)
        chunks[index] = chunk
        return Container(self.version, self.header, chunks, self.tail)


def read_varint(raw: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = raw[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def read_prefix(raw: bytes, version: int) -> tuple[int, int]:
    """A chunk payload's leading number (events: the prefix icount; snapshots: the log position), its size."""
    if version == 2:
        return struct.unpack_from("<Q", raw)[0], 8
    if version in VARINT_PREFIXED:
        return read_varint(raw, 0)
    raise UnknownFormat(f"chunk payloads of format version {version}: teach read_prefix")


def write_prefix(value: int, version: int) -> bytes:
    if version == 2:
        return struct.pack("<Q", value)
    if version in VARINT_PREFIXED:
        return varint(value)
    raise UnknownFormat(f"chunk payloads of format version {version}: teach write_prefix")


def state_start(raw: bytes, version: int, kind: int = SNAPSHOT) -> int:
    """Where the machine state starts in a snapshot chunk's raw payload (after the prefix; in a named snapshot's
    (version 6) after its name and icount too)."""
    _, p = read_prefix(raw, version)
    if kind == NAMED_SNAPSHOT:
        length, p = read_varint(raw, p)
        _, p = read_varint(raw, p + length)
    return p


def snapshot_marks(raw: bytes, version: int, kind: int = SNAPSHOT) -> tuple[int, ...]:
    """Where the parts of a snapshot chunk's raw payload start (the prefix, then the machine state)."""
    p = state_start(raw, version, kind)
    if version == 2:  # u32 JSON length | JSON (context length, RAM chunks, devices) | context bytes | RAM
        (length,) = struct.unpack_from("<I", raw, p)
        context = json.loads(raw[p + 4 : p + 4 + length])["context"][0]
        return 0, p, p + 4, p + 4 + length, p + 4 + length + context
    if version in VARINT_PREFIXED:  # machine.state: 20-byte header | u16 version, u16 count N, N x u64 | u32 pages
        (count,) = struct.unpack_from("<H", raw, p + 22)
        return 0, p, p + 8, p + 20, p + 22, p + 24, p + 24 + 8 * count, p + 28 + 8 * count, p + 36 + 8 * count
    raise UnknownFormat(f"the machine-state encoding of format version {version}: teach snapshot_marks")


def with_cpu_length(raw: bytes, version: int, size: Callable[[int, int], int], kind: int = SNAPSHOT) -> bytes:
    """A snapshot chunk's raw payload whose CPU part claims ``size(length, largest)`` (the bytes stay).

    v2: the byte count of Unicorn's context in the state's JSON (largest 2**31); v3: the register count.
    """
    p = state_start(raw, version, kind)
    if version == 2:
        (length,) = struct.unpack_from("<I", raw, p)
        meta = json.loads(raw[p + 4 : p + 4 + length])
        meta["context"][0] = size(meta["context"][0], 1 << 31)
        body = json.dumps(meta).encode()
        return raw[:p] + struct.pack("<I", len(body)) + body + raw[p + 4 + length :]
    if version in VARINT_PREFIXED:
        (count,) = struct.unpack_from("<H", raw, p + 22)
        return raw[: p + 22] + struct.pack("<H", min(size(count, 0xFFFF), 0xFFFF)) + raw[p + 24 :]
    raise UnknownFormat(f"the machine-state encoding of format version {version}: teach with_cpu_length")


Record = tuple[int, int, Sequence[int | bytes]]  # event kind, icount delta, fields


def record(kind: int, delta: int, *fields: int | bytes) -> bytes:
    """One event record: varint kind, varint icount delta, fields (bytes: varint length + data)."""
    out = varint(kind) + varint(delta)
    for value in fields:
        out += varint(len(value)) + value if isinstance(value, bytes) else varint(value)
    return out


def split_records(raw: bytes, version: int) -> tuple[int, list[Record]]:
    """An events chunk's raw payload as (prefix icount, records)."""
    prefix, pos = read_prefix(raw, version)
    records: list[Record] = []
    while pos < len(raw):
        kind, pos = read_varint(raw, pos)
        delta, pos = read_varint(raw, pos)
        fields: list[int | bytes] = []
        for spec in EVENT_FIELDS[kind]:
            value, pos = read_varint(raw, pos)
            if spec == "b":
                fields.append(raw[pos : pos + value])
                pos += value
            else:
                fields.append(value)
        records.append((kind, delta, fields))
    return prefix, records


def join_records(records: Iterable[Record]) -> bytes:
    return b"".join(record(kind, delta, *fields) for kind, delta, fields in records)


# -- crafted chunks ---------------------------------------------------------------------------------------
DELTAS = (0, 1, 100, 1 << 31, (1 << 32) - 1, 1 << 62, (1 << 63) - 1, 1 << 63, (1 << 64) - 1, 1 << 70)
CHUNK_ICOUNTS = (0, 1, 16_000, (1 << 32) - 1, 1 << 62, 1 << 63, (1 << 64) - 1)


def _synthetic_record(ch: Chooser) -> Record:
    kind = ch.pick((UART_INPUT, HOST_CLOCK, CLOCK_WARP, VERIFY, END, 0, 6, 127, 128, 1 << 32))
    delta = ch.pick(DELTAS)
    fields: list[int | bytes] = []
    for spec in EVENT_FIELDS.get(kind, ch.pick(("", "v", "b"))):
        fields.append(ch.blob(ch.pick((0, 1, 15, 16, 17))) if spec == "b" else ch.pick((*DELTAS, 2, 5, 6, 7)))
    return kind, delta, fields


def craft(ch: Chooser, recordings: dict[str, Recording]) -> Variant:
    """A recording whose chunks are well framed (right lengths and CRCs) but whose contents are not."""
    recording = recordings[ch.pick(sorted(recordings))]
    container = Container.parse(recording.data)
    chunks = container.chunks
    index = ch.integer(0, len(chunks) - 1)
    chunk = chunks[index]
    how = ch.pick(("payload bytes", "payload bytes", "payload bytes", "chunk fields", "chunk order",
                   "payload swap", "synthetic events"))  # fmt: skip
    where = f"{recording.name}: chunk {index} (kind {chunk.kind})"
    if how == "payload bytes":
        raw = chunk.raw()
        marks = (snapshot_marks(raw, container.version, chunk.kind) if chunk.kind in (SNAPSHOT, NAMED_SNAPSHOT)
                 else (0, read_prefix(raw, container.version)[1]))  # fmt: skip
        donors = [(f"chunk {i}", c.raw()) for i, c in enumerate(chunks) if i != index]
        raw, description, steps = mutate(ch, raw, marks, donors)
        crafted = Chunk.of_raw(chunk.kind, chunk.first, chunk.last, raw)
        return make_variant(f"{where}, decompressed payload: {description}, recompressed",
                            container.replacing(index, crafted).build(), recording, steps)  # fmt: skip
    if how == "chunk fields":
        name = ch.pick(("kind", "first", "last", *(("raw_length",) if "raw_length" in container.layout.fields else ())))
        value = ch.pick((0, 1, 2, 3, 255) if name == "kind" else CHUNK_ICOUNTS)
        if name == "raw_length":
            value &= 0xFFFFFFFF
        crafted = replace(chunk, **{name: value})
        return make_variant(f"{where}: {name} = {value:#x}", container.replacing(index, crafted).build(), recording)
    if how == "chunk order":
        order = list(range(len(chunks)))
        edit = ch.pick(("drop", "duplicate", "reverse", "events first, twice"))
        if edit == "drop":
            del order[index]
        elif edit == "duplicate":
            order.insert(index, index)
        elif edit == "reverse":
            order.reverse()
        else:
            order = [i for i in order if chunks[i].kind == EVENTS] * 2 + order
        shuffled = Container(container.version, container.header, [chunks[i] for i in order], container.tail)
        return make_variant(f"{recording.name}: chunks {edit} -> order {order}", shuffled.build(), recording)
    if how == "payload swap":
        donor_recording = recordings[ch.pick(sorted(recordings))]
        donor_chunks = Container.parse(donor_recording.data).chunks
        donor_index = ch.integer(0, len(donor_chunks) - 1)
        donor = donor_chunks[donor_index]
        crafted = Chunk(chunk.kind, chunk.first, chunk.last, donor.payload, donor.raw_length)
        return make_variant(f"{where}: payload of {donor_recording.name}'s chunk {donor_index} (kind {donor.kind})",
                            container.replacing(index, crafted).build(), recording)  # fmt: skip
    records = [_synthetic_record(ch) for _ in range(ch.integer(1, 4))]
    prefix = ch.pick((0, chunk.last, (1 << 64) - 1))
    raw = write_prefix(prefix, container.version) + join_records(records) + ch.pick((b"", b"\x80", ch.blob(3)))
    first, last = ch.pick(((chunk.first, chunk.last), (0, 0), (0, (1 << 64) - 1)))
    crafted = Chunk.of_raw(EVENTS, first, last, raw)
    if ch.integer(0, 1):
        events_index = container.index_of(EVENTS)
        built, placement = container.replacing(events_index, crafted), "instead of the events chunk"
    else:
        built = Container(container.version, container.header, [*chunks, crafted], container.tail)
        placement = "appended"
    return make_variant(f"{recording.name}: synthetic events chunk {placement}: prefix {prefix:#x}, icounts "
                        f"{first:#x}..{last:#x}, records {records!r}", built.build(), recording)  # fmt: skip


def crafted_variant(ch: Chooser, recordings: dict[str, Recording]) -> Variant:
    try:
        return craft(ch, recordings)
    except UnknownFormat as exc:
        pytest.fail(f"the crafting code needs adapting to the new format: {exc}", pytrace=False)


# -- the header matrix --------------------------------------------------------------------------------------
HEADER_VALUES: tuple[object, ...] = (None, -1, 0, 1, 1 << 44, 1 << 64, 1.5, "", "x", "3", [], {}, True)
IMAGE_PATHS = ("/dev/zero", "/", "/nonexistent/guest.elf", "guest.elf", "nul\x00byte", "/proc/self/mem",
               "/dev/stdin", "x" * 5000)  # fmt: skip


def header_variants(recording: Recording) -> list[Variant]:
    container = Container.parse(recording.data)
    header = container.header_json()
    out = []

    def add(description: str, new: dict[str, object] | bytes) -> None:
        out.append(make_variant(f"{recording.name}: header {description}", container.with_header(new).build(),
                                recording))  # fmt: skip

    for key in sorted(header):
        add(f"without {key!r}", {k: v for k, v in header.items() if k != key})
        for value in HEADER_VALUES:
            add(f"{key} = {value!r}", {**header, key: value})
    for path in IMAGE_PATHS:
        add(f"image_path = {path[:40]!r}", {**header, "image_path": path})
    for description, text in (
        ("a JSON array", b"[]"), ("JSON null", b"null"), ("a JSON number", b"1"), ("a JSON string", b'"x"'),
        ("empty", b""), ("not UTF-8", b"\xff\xfe{}"), ("nested 100000 deep", b"[" * 100_000 + b"]" * 100_000),
        ("with a duplicate key", json.dumps(header)[:-1].encode() + b', "arch": "x86_64"}'),
        ("with 100000 unknown keys", json.dumps({**header, **{f"k{i}": i for i in range(100_000)}}).encode()),
        ("with a 1 MB string", json.dumps({**header, "board": "v" * (1 << 20)}).encode()),
    ):  # fmt: skip
        add(description, text)
    return out


# -- handcrafted cases --------------------------------------------------------------------------------------
def handcrafted_cases(recordings: dict[str, Recording], bombs: dict[str, bytes]) -> list[Variant]:
    """The known-dangerous shapes, one variant each (a builder that meets an unknown format fails the test)."""
    echo, rtc, timer = recordings["echo"], recordings["rtc"], recordings["timer"]
    cases: list[Variant] = [make_variant(f"{r.name}: intact", r.data, r) for r in recordings.values()]
    cases += [make_variant(f"{r.name}: the last 5 bytes cut", r.data[:-5], r) for r in recordings.values()]

    def case(description: str, recording: Recording, build: Callable[[Container], bytes | Container]) -> None:
        try:
            built = build(Container.parse(recording.data))
        except UnknownFormat as exc:
            pytest.fail(f"handcrafted case {description!r} needs adapting to the new format: {exc}", pytrace=False)
        data = built.build() if isinstance(built, Container) else built
        cases.append(make_variant(f"{recording.name}: {description}", data, recording))

    def header(**changes: object) -> Callable[[Container], Container]:
        return lambda c: c.with_header({**c.header_json(), **changes})

    def chunk(kind: int, raw: bytes = b"", payload: bytes | None = None) -> Callable[[Container], Container]:
        """The first chunk of ``kind`` with a new raw payload, or a new compressed one (its raw length 1 GiB)."""

        def build(c: Container) -> Container:
            index = c.index_of(kind)
            old = c.chunks[index]
            new = Chunk.of_raw(kind, old.first, old.last, raw) if payload is None else Chunk(
                kind, old.first, old.last, payload, 1 << 30)  # fmt: skip
            return c.replacing(index, new)

        return build

    for name, bomb in bombs.items():
        for kind in (SNAPSHOT, EVENTS):
            where = "snapshot" if kind == SNAPSHOT else "events"
            case(f"zstd bomb ({name}) as the {where} chunk's payload", echo, chunk(kind, payload=bomb))
    case("header ram_size 2**44", echo, header(ram_size=1 << 44))
    case("header arch 'x86_64'", echo, header(arch="x86_64"))
    case("header icount_shift '3' (a string)", echo, header(icount_shift="3"))
    case("header with unknown keys", echo, header(compression="lz4", future={"x": 1}))
    case("header image_path /dev/zero (replay without --guest reads it)", echo, header(image_path="/dev/zero"))
    case("header nested 100000 deep", echo, lambda c: c.with_header(b"[" * 100_000 + b"]" * 100_000))
    case("header length field 2**32-1", echo, lambda c: c.build()[:12] + b"\xff\xff\xff\xff" + c.build()[16:])
    for kind, raw in ((SNAPSHOT, b"\x01\x02"), (EVENTS, b""), (EVENTS, b"\x00" * 7)):
        where = "snapshot" if kind == SNAPSHOT else "events"
        case(f"{where} chunk payload of {len(raw)} bytes (decompressed)", echo, chunk(kind, raw=raw))

    def cpu_length(size: Callable[[int, int], int]) -> Callable[[Container], Container]:
        def build(c: Container) -> Container:
            index = c.index_of(SNAPSHOT)
            old = c.chunks[index]
            return c.replacing(index, Chunk.of_raw(SNAPSHOT, old.first, old.last,
                                                   with_cpu_length(old.raw(), c.version, size)))  # fmt: skip

        return build

    for description, size in (("0", lambda n, top: 0), ("8", lambda n, top: 8), ("256", lambda n, top: 256),
                              ("x 64", lambda n, top: n * 64), ("the largest", lambda n, top: top)):  # fmt: skip
        case(f"snapshot: the CPU state's length {description}", timer, cpu_length(size))

    def events(transform: Callable[[list[Record]], bytes], holding: int = -1) -> Callable[[Container], Container]:
        """An events chunk (the first with a ``holding`` record, else the first) with ``transform(records)``."""

        def build(c: Container) -> Container:
            chosen = [i for i, chunk in enumerate(c.chunks) if chunk.kind == EVENTS]
            split = {i: split_records(c.chunks[i].raw(), c.version) for i in chosen}
            index = next((i for i in chosen if any(k == holding for k, _, _ in split[i][1])), chosen[0])
            prefix, records = split[index]
            raw = write_prefix(prefix, c.version) + transform(records)
            return c.replacing(index, Chunk.of_raw(EVENTS, c.chunks[index].first, c.chunks[index].last, raw))

        return build

    def late_end(records: list[Record]) -> bytes:
        return join_records([(k, 1 << 64 if k == END else d, f) for k, d, f in records])

    def future_clock(records: list[Record]) -> bytes:
        return join_records([(k, d, [1 << 70] if k == HOST_CLOCK else f) for k, d, f in records])

    case("events: a varint that never ends (1 MiB of 0xff)", echo, events(lambda records: b"\xff" * (1 << 20)))
    case("events: the End 2**64 instructions after the previous event", echo, events(late_end, END))
    case("events: the host clock reads 2**70 ns", rtc, events(future_clock, HOST_CLOCK))
    case("events: a UART input claiming 2**40 bytes", echo,
         events(lambda records: varint(UART_INPUT) + varint(0) + varint(1 << 40)))  # fmt: skip
    case("events: a verification point at icount 100 with a 3-byte digest", timer,
         events(lambda records: join_records([(VERIFY, 100, [b"abc"]), *records])))  # fmt: skip

    def huge_chunk_length(c: Container) -> bytes:
        data = c.build()
        offset = c.chunks[c.index_of(EVENTS)].offset + c.layout.offset_of("length")
        return data[:offset] + b"\xff\xff\xff\xff" + data[offset + 4 :]

    case("the events chunk's length field 2**32-1", echo, huge_chunk_length)
    return cases


# -- the tests ----------------------------------------------------------------------------------------------
@st.composite
def damaged_recordings(draw: st.DrawFn, recordings: dict[str, Recording]) -> Variant:
    """Hypothesis strategy: a byte-mutated variant of one of the recordings."""
    return byte_variant(DrawChooser(draw), recordings)


def test_the_format_knowledge_matches_the_recorder(recordings: dict[str, Recording]) -> None:
    """The crafting helpers take real recordings apart and put them back byte for byte (else: adapt them)."""
    for recording in recordings.values():
        try:
            container = Container.parse(recording.data)
            assert container.build() == recording.data, "Container.parse/build do not round-trip"
            assert not container.tail, "bytes after the last chunk"
            for chunk in container.chunks:
                raw = chunk.raw()
                assert chunk.raw_length in (None, len(raw)), "raw_length is not the inflated size"
                if chunk.kind == EVENTS:
                    prefix, records = split_records(raw, container.version)
                    assert write_prefix(prefix, container.version) + join_records(records) == raw, "event records"
                elif chunk.kind in (SNAPSHOT, NAMED_SNAPSHOT):
                    marks = snapshot_marks(raw, container.version, chunk.kind)
                    assert list(marks) == sorted(marks) and marks[-1] <= len(raw), "snapshot layout"
                    assert with_cpu_length(raw, container.version, lambda n, top: n, chunk.kind) == raw, "CPU length"
                else:  # the index, the bookmarks: a varint prefix, then entries
                    prefix, body = read_prefix(raw, container.version)
                    assert write_prefix(prefix, container.version) + raw[body:] == raw, "chunk prefix"
            kinds = [chunk.kind for chunk in container.chunks]
            if recording.name == "echo+names":
                assert container.version == 6 and kinds[-4:] == [BOOKMARKS, NAMED_SNAPSHOT, NAMED_SNAPSHOT, EVENTS]
        except (UnknownFormat, AssertionError, KeyError, IndexError, ValueError, struct.error) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            pytest.fail(f"{recording.name}: the format knowledge in this file no longer matches what "
                        f"`chronicorn record` writes ({reason}); adapt it", pytrace=False)  # fmt: skip


@pytest.mark.slow  # (several seconds: the fast subset keeps test_byte_mutations_fast)
def test_handcrafted_cases(recordings: dict[str, Recording], bombs: dict[str, bytes], tmp_path: Path) -> None:
    ledger = run_variants(handcrafted_cases(recordings, bombs), tmp_path, "handcrafted")
    assert_clean(ledger)


def test_byte_mutations_fast(recordings: dict[str, Recording], tmp_path: Path) -> None:
    """The first ``FAST_EXAMPLES`` distinct variants hypothesis draws (it starts simple and repeats itself)."""
    variants: dict[bytes, Variant] = {}

    @settings(max_examples=4 * FAST_EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(damaged_recordings(recordings))
    def collect(variant: Variant) -> None:
        variants.setdefault(variant.data, variant)

    collect()
    assert len(variants) >= FAST_EXAMPLES
    assert_clean(run_variants(list(variants.values())[:FAST_EXAMPLES], tmp_path, "fast"))


@pytest.mark.slow  # (several seconds: the fast subset keeps test_byte_mutations_fast)
def test_fork_server_agrees_with_python_m(recordings: dict[str, Recording], tmp_path: Path) -> None:
    """The fork server's runs give what ``[sys.executable, "-m", "gdbstub.cli", ...]`` gives."""
    echo, rtc = recordings["echo"], recordings["rtc"]
    samples = {
        "echo intact": (echo, echo.data),
        "echo cut inside the last chunk": (echo, echo.data[:-5]),
        "rtc cut inside the last chunk": (rtc, rtc.data[:-5]),
        "echo with a bad magic": (echo, b"X" + echo.data[1:]),
        "echo with a bad header checksum": (echo, echo.data[:20] + bytes((echo.data[20] ^ 1,)) + echo.data[21:]),
        "echo with header length 2**32-1": (echo, echo.data[:12] + b"\xff" * 4 + echo.data[16:]),
    }
    path = tmp_path / "sample.chrec"
    server = ForkServerRunner(tmp_path)
    mismatches = []
    try:
        for name, (recording, data) in samples.items():
            path.write_bytes(data)
            for label, args in commands(path, recording.elf):
                forked = server.run(args, TIMEOUT_S)
                literal = SubprocessRunner().run(args, TIMEOUT_S)
                clean = [_comparable(outcome.stderr) for outcome in (forked, literal)]
                if forked.status != literal.status or clean[0] != clean[1]:
                    mismatches.append(f"{name}, {label}: fork server {forked.status} {clean[0]!r}, "
                                      f"python -m {literal.status} {clean[1]!r}")  # fmt: skip
    finally:
        server.close()
    assert not mismatches, "\n".join(mismatches)


def _comparable(stderr: str) -> str:
    """stderr without traceback frames (above the module they are runpy's or the fork server's) or addresses."""
    lines = re.sub(r"0x[0-9a-f]{8,}", "0x#", stderr).splitlines()
    return "\n".join(line for line in lines if not line.startswith(" "))


@pytest.mark.slow
def test_byte_mutations_full(recordings: dict[str, Recording], tmp_path: Path) -> None:
    variants = []
    for index in range(FULL_BYTE_VARIANTS):
        variant = byte_variant(RandomChooser(random.Random(f"{SEED}:{index}")), recordings)
        variants.append(replace(variant, description=f"#{index} {variant.description}"))
    assert_clean(run_variants(variants, tmp_path, "bytes"))


@pytest.mark.slow
def test_crafted_chunks_full(recordings: dict[str, Recording], tmp_path: Path) -> None:
    variants = []
    for index in range(FULL_CRAFTED_VARIANTS):
        variant = crafted_variant(RandomChooser(random.Random(f"{SEED}:crafted:{index}")), recordings)
        variants.append(replace(variant, description=f"#{index} {variant.description}"))
    assert_clean(run_variants(variants, tmp_path, "crafted"))


@pytest.mark.slow
def test_header_matrix(recordings: dict[str, Recording], tmp_path: Path) -> None:
    try:
        variants = header_variants(recordings["echo"])
    except UnknownFormat as exc:
        pytest.fail(f"the header matrix needs adapting to the new format: {exc}", pytrace=False)
    assert_clean(run_variants(variants, tmp_path, "header"))


# -- the execution index chunk (format version 4) -------------------------------------------------------------
INDEX_SCHEDULE = [(16_800, b"ab\n"), (30_000, b"hello\n"), (45_000, b"q")]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    """echo saved as ``monitor record save`` saves a live history: version 4, with its execution index."""
    from machine.inputs import ScriptedInputs
    from machine.loader import load_image
    from machine.machine import Machine
    from replay.history import HistoryInputs
    from replay.recording import make_header
    from replay.saver import save_timeline
    from replay.store import SnapshotStore
    from replay.timeline import Timeline

    elf = GUESTS / "build" / "rv32" / "echo.elf"
    inputs = HistoryInputs([], 0, ScriptedInputs(0, list(INDEX_SCHEDULE)))
    machine = Machine(load_image(elf), inputs, lambda byte: None)
    timeline = Timeline(machine, inputs, SnapshotStore(), 1024)
    timeline.run_forward()
    header = make_header(machine.image, machine.arch.name, machine.config.ram_size, 3, "off", {})
    path = save_timeline(timeline, header, tmp_path_factory.mktemp("indexed"), "echo.chrec")
    return Recording("echo+index", elf, path.read_bytes())


def index_variants(recording: Recording, count: int) -> list[Variant]:
    """Handcrafted and mutated index chunks (right lengths and CRCs), so the index decoder meets them."""
    container = Container.parse(recording.data)
    position = container.index_of(CODE_INDEX)
    chunk = container.chunks[position]
    raw = chunk.raw()
    prefix, body = read_prefix(raw, container.version)
    end = chunk.last
    out = [make_variant(f"{recording.name}: intact", recording.data, recording)]

    def add(description: str, new_raw: bytes, first: int | None = None, duplicate: bool = False) -> None:
        at = chunk.last if first is None else first
        crafted = Chunk.of_raw(CODE_INDEX, at, at, new_raw)
        chunks = list(container.chunks)
        chunks[position : position + 1] = [crafted, crafted] if duplicate else [crafted]
        built = Container(container.version, container.header, chunks, container.tail)
        out.append(make_variant(f"{recording.name}: index chunk {description}", built.build(), recording))

    entries = raw[body:]
    add("truncated", raw[: body + len(entries) // 2])
    add("with a count of 2**40 ranges", varint(0) + varint(5) + varint(1 << 40) + b"\x01\x02")
    add("past the end", varint(0) + varint(end + 1) + b"\x00")
    add("starting past its stamp", varint(end + 1) + varint(1) + b"\x00")
    add("with a varint of 1 MiB", varint(0) + b"\xff" * (1 << 20))
    add("with a range past 2**64", varint(0) + varint(5) + b"\x02" + varint((1 << 64) - 1) + b"\x05")
    add("of 4 MiB of tiny entries", varint(0) + b"\x01\x00" * (2 << 20))
    add("of one entry with 1M ranges", varint(0) + varint(5) + varint(1 << 20) + b"\x01\x01" * (1 << 20))
    add("with no prefix", b"\x80")
    add("twice", raw, duplicate=True)
    add("stamped past the end", raw, first=end + 1)
    add("in a version 3 file", raw)
    out[-1] = replace(out[-1], data=out[-1].data[: len(MAGIC)] + struct.pack("<I", 3) + out[-1].data[len(MAGIC) + 4 :],
                      header_changed=True)  # fmt: skip
    rng = RandomChooser(random.Random(f"{SEED}:index"))
    for _ in range(count):
        mutated, description, _ = mutate(rng, raw, (0, body), [("events", container.chunks[-1].raw())])
        add(f"payload: {description}", mutated or b"\x00")
    return out


@pytest.mark.slow
def test_index_chunks(indexed: Recording, tmp_path: Path) -> None:
    """Crafted execution index chunks: ignored (or damage, for the chunk's own framing), never worse."""
    assert_clean(run_variants(index_variants(indexed, 12), tmp_path, "index"))


# -- bookmarks and named snapshot chunks (format version 6) -----------------------------------------------------
@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    return names_recording(tmp_path_factory.mktemp("named"))


def names_variants(recording: Recording, count: int) -> list[Variant]:
    """Handcrafted and mutated bookmarks and named snapshot chunks (right lengths and CRCs), so their decoders
    (and ``info``'s decoding of the states) meet them."""
    container = Container.parse(recording.data)
    names_at = container.index_of(BOOKMARKS)
    state_at = container.index_of(NAMED_SNAPSHOT)
    end = container.chunks[names_at].last
    ram_size = container.header_json()["ram_size"]
    assert isinstance(ram_size, int)
    out = [make_variant(f"{recording.name}: intact", recording.data, recording)]

    def add(description: str, kind: int, new_raw: bytes | None, first: int | None = None, twice: bool = False,
            chunks: list[Chunk] | None = None, version: int | None = None) -> None:  # fmt: skip
        at = end if first is None else first
        position = names_at if kind == BOOKMARKS else state_at
        edited = list(container.chunks) if chunks is None else chunks
        if new_raw is not None:
            crafted = Chunk.of_raw(kind, at, at, new_raw)
            edited[position : position + 1] = [crafted, crafted] if twice else [crafted]
        built = Container(version or container.version, container.header, edited, container.tail).build()
        out.append(make_variant(f"{recording.name}: {description}", built, recording))

    def entry(name: bytes, kind: int = 0, icount: int = 5, pc: int = 0) -> bytes:
        return varint(len(name)) + name + varint(kind) + varint(icount) + (varint(pc) if kind == 0 else b"")

    names_raw = container.chunks[names_at].raw()
    add("bookmarks truncated", BOOKMARKS, names_raw[: len(names_raw) // 2])
    add("bookmarks counting 2**40 entries", BOOKMARKS, varint(1 << 40) + entry(b"a"))
    add("bookmarks with bytes after the entries", BOOKMARKS, varint(0) + b"junk")
    add("a bookmark name of 2**40 bytes", BOOKMARKS, varint(1) + varint(1 << 40) + b"abc")
    add("a bookmark name of 0 bytes", BOOKMARKS, varint(1) + entry(b""))
    add("a bookmark name of 129 bytes", BOOKMARKS, varint(1) + entry(b"n" * 129))
    add("a bookmark name not UTF-8", BOOKMARKS, varint(1) + entry(b"\xff\xfe"))
    add("a bookmark name with a space and a bell", BOOKMARKS, varint(1) + entry(b"a b\x07"))
    add("a bookmark name twice", BOOKMARKS, varint(2) + entry(b"a") + entry(b"a"))
    add("a name of kind 7", BOOKMARKS, varint(1) + entry(b"a", 7))
    add("a bookmark past the end", BOOKMARKS, varint(1) + entry(b"a", 0, end + 1))
    add("a bookmark at a pc past 2**64", BOOKMARKS, varint(1) + entry(b"a", 0, 5, (1 << 64) + 5))
    add("bookmarks with a varint of 1 MiB", BOOKMARKS, varint(1) + b"\xff" * (1 << 20))
    add("1 MiB of bookmarks", BOOKMARKS, varint(200_000) + entry(b"a")[:5] * 200_000)
    add("every name a snapshot without a state", BOOKMARKS,
        varint(3) + entry(b"x", 1, 10) + entry(b"y", 1, 20) + entry(b"late", 1, end))  # fmt: skip
    add("bookmarks with no prefix", BOOKMARKS, b"\x80")
    add("bookmarks twice", BOOKMARKS, names_raw, twice=True)
    add("bookmarks stamped past the end", BOOKMARKS, names_raw, first=end + 1)
    add("bookmarks dropped", BOOKMARKS, None, chunks=[c for c in container.chunks if c.kind != BOOKMARKS])
    moved = [c for c in container.chunks if c.kind != BOOKMARKS]
    moved.insert(len(moved) - 1, container.chunks[names_at])
    add("bookmarks after the named snapshots", BOOKMARKS, None, chunks=moved)
    add("bookmarks in a version 5 file", BOOKMARKS, names_raw, version=5)
    out[-1] = replace(out[-1], header_changed=True)

    state_raw = container.chunks[state_at].raw()
    position, p = read_prefix(state_raw, container.version)
    length, q = read_varint(state_raw, p)
    name = state_raw[q : q + length]
    icount, start = read_varint(state_raw, q + length)
    state = state_raw[start:]

    def named_raw(state: bytes = state, log_position: int = position, name: bytes = name, at: int = icount) -> bytes:
        return varint(log_position) + varint(len(name)) + name + varint(at) + state

    add("a named state truncated", NAMED_SNAPSHOT, named_raw(state[: len(state) // 2]))
    add("a named state 3 bytes short", NAMED_SNAPSHOT, named_raw(state[:-3]))
    add("a named state with 3 bytes more", NAMED_SNAPSHOT, named_raw(state + b"\x00\x01\x02"))
    add("a named state of 0 bytes", NAMED_SNAPSHOT, named_raw(b""))
    add("a named state with a name of 2**40 bytes", NAMED_SNAPSHOT, varint(position) + varint(1 << 40) + b"ab")
    add("a named state at icount 2**62", NAMED_SNAPSHOT, named_raw(at=1 << 62))
    add("a named state at another icount than listed", NAMED_SNAPSHOT, named_raw(at=icount + 1))
    add("a named state at log position 2**40", NAMED_SNAPSHOT, named_raw(log_position=1 << 40))
    add("a named state under a bookmark's name", NAMED_SNAPSHOT, named_raw(name=b"early"))
    add("a named state under a name not listed", NAMED_SNAPSHOT, named_raw(name=b"unlisted"))
    add("a named state claiming a RAM's worth", NAMED_SNAPSHOT, named_raw(state + bytes(ram_size)))
    add("a named state's CPU claiming 0 registers", NAMED_SNAPSHOT,
        with_cpu_length(state_raw, container.version, lambda n, top: 0, NAMED_SNAPSHOT))  # fmt: skip
    add("a named state's CPU claiming 65535 registers", NAMED_SNAPSHOT,
        with_cpu_length(state_raw, container.version, lambda n, top: top, NAMED_SNAPSHOT))  # fmt: skip
    add("a named state with no prefix", NAMED_SNAPSHOT, b"\x80")
    add("a named state twice", NAMED_SNAPSHOT, state_raw, twice=True)
    add("a named state stamped past the end", NAMED_SNAPSHOT, state_raw, first=end + 1)
    rng = RandomChooser(random.Random(f"{SEED}:names"))
    donors = [("events", container.chunks[-1].raw()), ("state", state_raw)]
    for _ in range(count):
        mutated, description, _ = mutate(rng, names_raw, (0, read_prefix(names_raw, container.version)[1]), donors)
        add(f"bookmarks payload: {description}", BOOKMARKS, mutated or b"\x00")
        marks = snapshot_marks(state_raw, container.version, NAMED_SNAPSHOT)
        mutated, description, _ = mutate(rng, state_raw, (*marks, p, q, start), donors)
        add(f"named state payload: {description}", NAMED_SNAPSHOT, mutated or b"\x00")
    return out


@pytest.mark.slow
def test_names_chunks(named: Recording, tmp_path: Path) -> None:
    """Crafted bookmarks and named snapshot chunks: names left out or made bookmarks (or damage, for a chunk's
    own framing), never worse."""
    assert_clean(run_variants(names_variants(named, 12), tmp_path, "names"))
