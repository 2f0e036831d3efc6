"""``chronicorn demo``: the bug hunt on the bundled example firmware, shown as a transcript.

The firmware (``firmware/``: cmdint.elf for rv32 and rv64, its sources and the UART input that breaks it,
shipped as package data) is unpacked into a temporary directory and recorded with ``chronicorn record``;
the recording is replayed under gdb-multiarch, driven through :class:`gdbstub.client.GdbClient` from the
failure back to the instruction that caused it; ``chronicorn locate`` then does the same search on its own.

The transcript never speaks for a program: every line after a ``$ `` or ``(gdb) `` prompt is exactly what
that command printed (for gdb, its console stream: :meth:`~gdbstub.client.GdbClient.cli`). The narration is
commentary, on lines starting with ``#``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..cli.common import ExitCode
from ..client import CliOutput, GdbClient, GdbError, ServerError, ServerProcess, has_gdb

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

ELF = "cmdint.elf"
INPUT = "cmdint-bug.txt"
RECORDING = "cmdint.chrec"
SOURCES = "src"
WATCH = "probe.scale"
ARCHES = ("rv32", "rv64")
EXIT_FOUND, EXIT_NOT_FOUND, EXIT_CANNOT_RUN = ExitCode.OK, ExitCode.NOT_FOUND, ExitCode.BAD_INPUT
ASSERT_EXIT_CODE = 7  # what cmdint's failed assertion reports through the test finisher


class DemoError(Exception):
    """The demo could not run (recording failed, the server or gdb did not answer): exit code 2."""


def firmware() -> Traversable:
    """The packaged firmware directory (see firmware/README.md)."""
    return resources.files(__name__) / "firmware"


def unpack_firmware(arch: str, into: Path) -> None:
    """Write the ELF for ``arch``, the bug's UART input and the sources into the directory ``into``.

    The sources go beside the ELF: its DWARF names them relative to ``.``, so a gdb started there (as
    ``chronicorn locate`` is) finds them.
    """
    root = firmware()
    (into / ELF).write_bytes((root / arch / ELF).read_bytes())
    (into / INPUT).write_bytes((root / INPUT).read_bytes())
    _copy_tree(root / SOURCES, into)


def _copy_tree(source: Traversable, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.is_dir():
            _copy_tree(entry, target / entry.name)
        else:
            (target / entry.name).write_bytes(entry.read_bytes())


class Transcript:
    """The demo's output: prompts followed by what the program printed, and ``#`` commentary."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def _write(self, text: str) -> None:
        if text and not text.endswith("\n"):
            text += "\n"
        self.out.write(text)
        self.out.flush()

    def comment(self, *lines: str) -> None:
        self._write("".join(f"# {line}\n" if line else "#\n" for line in lines))

    def shell(self, command: str, printed: str) -> None:
        self._write(f"$ {command}\n{printed}")

    def gdb(self, gdb: GdbClient, command: str) -> CliOutput:
        """Run ``command`` at gdb's prompt and show it with what gdb printed."""
        printed = gdb.cli(command)
        self._write(f"(gdb) {command}\n{printed.text}")
        return printed


def run_demo(arch: str = "rv32", out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The whole demo; returns 0 when the culprit was found, 1 when not, 2 when the demo cannot run."""
    out = out or sys.stdout
    err = err or sys.stderr
    if arch not in ARCHES:
        err.write(f"chronicorn: the demo's firmware is built for {', '.join(ARCHES)}, not {arch}\n")
        return EXIT_CANNOT_RUN
    if not has_gdb():
        err.write("chronicorn: the demo needs gdb-multiarch (apt-get install gdb-multiarch)\n")
        return EXIT_CANNOT_RUN
    started = time.monotonic()
    show = Transcript(out)
    with tempfile.TemporaryDirectory(prefix="chronicorn-demo-") as tmp:
        work = Path(tmp)
        unpack_firmware(arch, work)
        try:
            found = _demo(show, work)
        except (DemoError, ServerError, GdbError, TimeoutError, ValueError) as exc:
            err.write(f"chronicorn: the demo failed: {exc}\n")
            return EXIT_CANNOT_RUN
    show.comment(f"demo done in {time.monotonic() - started:.1f} s")
    return EXIT_FOUND if found else EXIT_NOT_FOUND


def _chronicorn(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``chronicorn ARGS`` run in ``work`` (as ``python -m gdbstub.cli``, the same program)."""
    return subprocess.run([sys.executable, "-m", "gdbstub.cli", *args], cwd=work, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def _demo(show: Transcript, work: Path) -> bool:
    show.comment(
        "== chronicorn demo: a bug hunt with reverse debugging ==",
        f"The firmware: {ELF} (source cmdint.c), a UART command interpreter with an",
        "interrupt-driven receive ring and a 1 ms timer tick. The input that breaks it:",
    )
    show.shell(f"cat {INPUT}", (work / INPUT).read_text())
    show.comment("Record a run with that input (the firmware's UART output, then chronicorn's summary):")
    command = ("record", ELF, "-o", RECORDING, "--uart-input", INPUT)
    proc = _chronicorn(work, *command)
    show.shell(" ".join(("chronicorn", *command)), proc.stdout + proc.stderr)
    if proc.returncode != ASSERT_EXIT_CODE or not (work / RECORDING).exists():
        raise DemoError(f"chronicorn record {ELF} exited with {proc.returncode}, not with the failed assertion")
    show.comment(
        f"The firmware failed an assertion and reported it through the test finisher (exit code {proc.returncode}).",
        f"Which instruction broke {WATCH}? Replay the recording for gdb and go back in time:",
        f"`chronicorn replay {RECORDING} --port N` serves it, and `gdb-multiarch {ELF}` is connected to it",
        "with `target remote :N`. From here on, each (gdb) command is followed by what gdb printed.",
    )
    with ServerProcess(work / RECORDING, command="replay") as server, \
            GdbClient(work / ELF, source_dirs=(work,)) as gdb:  # fmt: skip
        gdb.connect(server.port)
        found = _hunt(show, gdb)
    show.comment("The same search, automated:")
    command = ("locate", RECORDING, "--watch", WATCH)
    proc = _chronicorn(work, *command)
    show.shell(" ".join(("chronicorn", *command)), proc.stdout + proc.stderr)
    return found and proc.returncode == 0


def _hunt(show: Transcript, gdb: GdbClient) -> bool:
    """From the failure back to the write that broke ``probe.scale``; True when it was found."""
    show.gdb(gdb, "continue")
    end = int(show.gdb(gdb, "monitor icount").text)
    show.comment("the icount (instructions executed since reset) at the end of the recording: the failure")
    show.gdb(gdb, "backtrace")
    frames = gdb.mi("-stack-list-frames")  # the same frames, as values: which one is report()?
    stack = next(r for r in frames if r["type"] == "result")["payload"]["stack"]
    level = next((f["level"] for f in stack if f.get("func") == "report"), None)
    if level is not None:
        show.gdb(gdb, f"frame {level}")
    show.gdb(gdb, f"print {WATCH}")
    show.comment("should be 1..100. Watch it, and run backwards to the last write:")
    show.gdb(gdb, f"watch {WATCH}")
    stop = show.gdb(gdb, "reverse-continue").stop
    if stop is None or not stop.is_watchpoint:
        show.comment("no write found: the hunt ends here")
        return False
    written = int(show.gdb(gdb, "monitor icount").text)
    show.comment(f"{end - written} instructions before the failure")
    show.gdb(gdb, "x/i $pc")
    show.gdb(gdb, "print dst - probe.name")
    show.gdb(gdb, "print sizeof(probe.name)")
    show.comment("the copy is writing past the end of probe.name. Which command was it copying?")
    show.gdb(gdb, "backtrace")
    show.gdb(gdb, "up")
    show.gdb(gdb, "print line")
    show.comment("How long ago was that? Count the interrupts taken between the overflow and the failure:")
    show.gdb(gdb, "delete")
    show.gdb(gdb, "break cmdint.c:trap_handler")
    show.gdb(gdb, "ignore $bpnum 1000")
    show.gdb(gdb, "continue")
    hits = re.search(r"already hit (\d+) time", show.gdb(gdb, "info breakpoints").text)
    show.comment(
        f"{hits.group(1) if hits else 'no'} interrupts between the overflow and the failure.",
        "Culprit: set_name() copies the name with no bound; a 19-character name ran over probe.name[16]",
        "into probe.scale. The assertion caught it only later, in report().",
    )
    return True
