"""``chronicorn demo``: it finds the culprit, it never speaks for a program, and its firmware is the built one.

The transcript test replays every command the demo shows (``$ cat``, ``$ chronicorn ...``, ``(gdb) ...``) on
its own (a new recording of the same firmware and input, a new server, a new gdb) and requires the lines the
demo shows after each prompt to be exactly what that command printed; everything else must be ``#``
commentary.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gdbstub.client import GdbClient, ServerProcess
from gdbstub.demo import ELF, INPUT, RECORDING, firmware
from tests.conftest import GUESTS, ROOT, guest
from tests.e2e.gdb import require_gdb

FIRMWARE = ROOT / "gdbstub" / "demo" / "firmware"


def packaged_copies() -> dict[str, Path]:
    """Each file of the demo's firmware (relative to firmware/) and the file under tests/guests it copies."""
    copies = {f"{arch}/{ELF}": guest(arch, "cmdint") for arch in ("rv32", "rv64")}
    copies["src/cmdint.c"] = GUESTS / "cmdint.c"
    copies.update({f"src/common/{p.name}": p for p in sorted((GUESTS / "common").iterdir())})
    copies[INPUT] = GUESTS / "inputs" / INPUT
    return copies


def test_packaged_firmware_is_byte_identical_to_the_built_one() -> None:
    """tests/guests/riscv (``make -C tests/guests/riscv``) is the source of truth; the package ships copies."""
    copies = packaged_copies()
    shipped = {str(p.relative_to(FIRMWARE)) for p in FIRMWARE.rglob("*") if p.is_file()} - {"README.md"}
    assert shipped == set(copies), "gdbstub/demo/firmware/ ships other files than tests/guests/riscv has"
    stale = [name for name, source in copies.items() if (FIRMWARE / name).read_bytes() != source.read_bytes()]
    assert not stale, f"gdbstub/demo/firmware/ differs from tests/guests/riscv (see its README.md): {stale}"
    assert (firmware() / "rv32" / ELF).read_bytes() == guest("rv32", "cmdint").read_bytes()  # what the demo loads


@dataclass
class Block:
    """One prompt of the transcript (``$`` or ``(gdb)``), its command and the lines shown after it."""

    prompt: str
    command: str
    lines: list[str] = field(default_factory=list)


def parse_transcript(text: str) -> list[Block]:
    """The prompts and their output; fails on a line that is neither output, a prompt nor ``#`` commentary."""
    blocks: list[Block] = []
    current: Block | None = None
    for line in text.splitlines():
        if line == "#" or line.startswith("# "):
            current = None
        elif line.startswith(("$ ", "(gdb) ")):
            prompt, command = line.split(" ", 1)
            current = Block(prompt, command)
            blocks.append(current)
        else:
            assert current is not None, f"narration not marked as commentary: {line!r}"
            current.lines.append(line)
    return blocks


def line_of(source: str, marker: str) -> int:
    lines = (GUESTS / source).read_text().splitlines()
    return next(n for n, text in enumerate(lines, 1) if marker in text)


def chronicorn(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command line of this tree (PYTHONPATH), run from ``cwd``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "gdbstub.cli", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.gdb
@pytest.mark.slow
@pytest.mark.parametrize("arch", ["rv32", "rv64"])
def test_demo_shows_only_what_the_programs_printed(arch: str, tmp_path: Path) -> None:
    require_gdb()
    elsewhere = tmp_path / "cwd"  # not the repository: the demo needs only the package
    elsewhere.mkdir()
    demo = chronicorn(elsewhere, "demo", "--arch", arch)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    blocks = parse_transcript(demo.stdout)
    shown = [(b.prompt, b.command) for b in blocks]
    assert ("(gdb)", "reverse-continue") in shown and ("(gdb)", "watch probe.scale") in shown
    copy_line = line_of("cmdint.c", "*dst++ = *text++;")
    locate = next(b for b in blocks if b.command.startswith("chronicorn locate"))
    assert any(f"set_name  ./cmdint.c:{copy_line}" in line for line in locate.lines)  # the culprit

    work = tmp_path / "again"
    work.mkdir()
    shutil.copy(guest(arch, "cmdint"), work / ELF)
    shutil.copy(GUESTS / "inputs" / INPUT, work / INPUT)
    shutil.copy(GUESTS / "cmdint.c", work)  # the sources beside the ELF, as the demo unpacks them
    shutil.copytree(GUESTS / "common", work / "common")
    with ExitStack() as stack:
        gdb: GdbClient | None = None
        for block in blocks:
            if block.prompt == "$":
                program, *args = shlex.split(block.command)
                if program == "cat":
                    printed = (work / args[0]).read_text()
                else:
                    assert program == "chronicorn", block.command
                    proc = chronicorn(work, *args)
                    printed = proc.stdout + proc.stderr
            else:
                if gdb is None:
                    server = stack.enter_context(ServerProcess(work / RECORDING, command="replay"))
                    gdb = stack.enter_context(GdbClient(work / ELF, source_dirs=(work,)))
                    gdb.connect(server.port)
                printed = gdb.cli(block.command).text
            assert block.lines == printed.splitlines(), f"{block.prompt} {block.command}"
