"""Bad command lines: every one exits 2 at once with one line naming the problem, never a traceback or a hang.

The table covers every option of every command (run, serve, record, replay, locate, demo, info, events) with
out-of-range, wrong-type, missing, directory, unwritable and same-as-input values. argparse's own refusals
print the usage and then ``chronicorn CMD: error: ...`` (the last line); chronicorn's print exactly one line,
``chronicorn: ...``. Nothing on the table may listen on a port or change a file it reads. One row in twelve
runs in the fast subset; CI runs them all.
"""

from __future__ import annotations

import os
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, guest, wait_for_growth

TIMEOUT_S = 20  # a refusal is immediate; this only turns a hang into a failure
HELLO = guest("rv32", "hello")


@dataclass(frozen=True)
class Bad:
    """One bad command line: ``argv`` with ``{PLACEHOLDERS}`` (see :func:`files`), what its error must say."""

    argv: str
    expect: str  # in the last line of stderr (case-insensitive)
    by_argparse: bool = False  # argparse's refusal: a usage line first, then "chronicorn CMD: error: ..."
    stdin: str | None = None  # a placeholder: this file is the command's stdin


def bad(argv: str, expect: str, stdin: str | None = None) -> object:
    """A row refused by chronicorn itself: exactly one line, ``chronicorn: ...``."""
    return pytest.param(Bad(argv, expect, False, stdin), id=argv.strip())


def usage(argv: str, expect: str) -> object:
    """A row refused by argparse while parsing the command line."""
    return pytest.param(Bad(argv, expect, True), id=argv.strip())


def machine_rows(cmd: str, tail: str = "", slow: bool = False) -> list[object]:
    """The guest and machine options ``run``, ``serve`` and ``record`` share; ``tail`` completes the line.

    ``slow``: the same options and code as ``run``'s rows (each row costs an interpreter start), so only in
    the full run.
    """
    g = f"{cmd} {{G}}"
    rows = [
        bad(f"{cmd} {tail}", "no guest image: give GUEST or --bios FILE"),
        bad(f"{g} --bios {{G}} {tail}", "not both"),
        bad(f"{cmd} --bios {{TXT}} {tail}", "--bios with a raw firmware needs --arch"),
        bad(f"{g} --machine mps2-an385 {tail}", "runs on the virt board, not mps2-an385"),
        bad(f"{g} --kernel {{G}} {tail}", "would overlap the firmware"),
        bad(f"{cmd} {{MISSING}} {tail}", "No such file"),
        bad(f"{cmd} {{DIR}} {tail}", "not a regular file"),
        bad(f"{cmd} {{FIFO}} {tail}", "not a regular file"),
        bad(f"{cmd} {{TXT}} {tail}", "not an ELF"),
        bad(f"{cmd} {{EMPTY}} {tail}", "ELF"),
        usage(f"{g} --arch riscv128 {tail}", "argument --arch: invalid choice"),
        usage(f"{g} --machine sifive_u {tail}", "argument --machine: invalid choice"),
        usage(f"{g} --ram 0 {tail}", "argument --ram: 0 is out of range"),
        usage(f"{g} --ram=-4K {tail}", "argument --ram: -4k is out of range"),
        usage(f"{g} --ram 5000 {tail}", "argument --ram: 5000 is out of range (a multiple of 4K"),
        usage(f"{g} --ram 3G {tail}", "argument --ram: 3g is out of range"),
        usage(f"{g} --ram 1.5M {tail}", "argument --ram: not a number"),
        usage(f"{g} --ram lots {tail}", "argument --ram: not a number"),
        usage(f"{g} --ram= {tail}", "argument --ram: not a number"),
        usage(f"{g} --icount-shift -1 {tail}", "argument --icount-shift: -1 is out of range (0..10)"),
        usage(f"{g} --icount-shift 11 {tail}", "argument --icount-shift: 11 is out of range (0..10)"),
        usage(f"{g} --icount-shift three {tail}", "argument --icount-shift: not a number"),
        usage(f"{g} --load-addr -1 {tail}", "argument --load-addr: -1 is out of range"),
        usage(f"{g} --load-addr 0x10000000000000000 {tail}", "argument --load-addr: 0x10000000000000000 is out"),
        usage(f"{g} --load-addr here {tail}", "argument --load-addr: not a number"),
        bad(f"{cmd} {{TXT}} --load-addr 0x100 {tail}", "--arch"),  # a raw binary needs its core
        usage(f"{g} --no-native=yes {tail}", "ignored explicit argument"),
        usage(f"{g} --bogus {tail}", "unrecognized arguments: --bogus"),
    ]
    if slow:
        return [pytest.param(*row.values, id=row.id, marks=pytest.mark.slow) for row in rows]  # type: ignore[attr-defined]
    return rows


RUN = [
    *machine_rows("run"),
    usage("run {G} --max-insns -1", "argument --max-insns: -1 is out of range (at least 1"),
    usage("run {G} --max-insns 0", "argument --max-insns: 0 is out of range"),
    usage("run {G} --max-insns 0x8000000000000000", "argument --max-insns: 0x8000000000000000 is out of range"),
    usage("run {G} --max-insns ten", "argument --max-insns: not a number"),
    usage("run {G} --max-insns", "argument --max-insns: expected one argument"),
    usage("run {G} --trace=1", "ignored explicit argument"),
    usage("run {G} {G}", "unrecognized arguments"),
]

RECORD = [
    *machine_rows("record", "-o {OUT}", slow=True),
    usage("record {G}", "required: -o"),
    usage("record {G} -o", "argument -o/--output: expected one argument"),
    bad("record {G} -o {DIR}", "cannot write"),
    bad("record {G} -o {MISSING_DIR}/x.chrec", "No such file or directory"),
    bad("record {G} -o {TXT}/x.chrec", "Not a directory"),
    bad("record {G} -o /dev/full", "No space left on device"),
    bad("record {G} -o /proc/version", "cannot write /proc/version"),
    bad("record {G} -o {G}", "is the guest image"),
    bad("record {LINK} -o {G}", "is the guest image"),  # the guest through a symlink
    bad("record {G} -o {LINK}", "is the guest image"),  # the output a symlink to the guest
    bad("record {G} -o {HARD}", "is the guest image"),  # a hard link: same inode, other name
    bad("record {G} -o {IN} --uart-input {IN}", "is the UART input"),
    bad("record {G} -o {IN}", "is the UART input (stdin)", stdin="IN"),
    bad("record {G} -o {OUT} --uart-input {MISSING}", "No such file"),
    bad("record {G} -o {OUT} --uart-input {DIR}", "Is a directory"),
    usage("record {G} -o {OUT} --sleep maybe", "argument --sleep: invalid choice"),
    usage("record {G} -o {OUT} --max-insns -1", "argument --max-insns: -1 is out of range"),
    usage("record {G} -o {OUT} --max-insns 0", "argument --max-insns: 0 is out of range"),
    usage("record {G} -o {OUT} --max-insns 1e6", "argument --max-insns: not a number"),
]

SERVE = [
    *machine_rows("serve", "--port 0", slow=True),
    usage("serve {G} --port 70000", "argument --port: 70000 is out of range (a TCP port 0..65535"),
    usage("serve {G} --port 65536", "argument --port: 65536 is out of range"),
    usage("serve {G} --port -1", "argument --port: -1 is out of range"),
    usage("serve {G} --port http", "argument --port: not a number"),
    usage("serve {G} --port 12.5", "argument --port: not a number"),
    bad("serve {G} --port {BUSY}", "Address already in use"),
    bad("serve {G} --port 0 --host 192.0.2.1", "cannot listen on 192.0.2.1:0"),  # not one of ours (TEST-NET-1)
    bad("serve {G} --port 0 --log-packets {MISSING_DIR}/p.log", "No such file or directory"),
    bad("serve {G} --port 0 --log-packets {DIR}", "Is a directory"),
    bad("serve {G} --port 0 --log-packets {TXT}/p.log", "Not a directory"),
    bad("serve {G} --port 0 --log-packets {G}", "is the guest image"),
    bad("serve {G} --port 0 --log-packets {LINK}", "is the guest image"),
    bad("serve {G} --port 0 --log-packets {HARD}", "is the guest image"),
    bad("serve {G} --port 0 --uart-input {IN} --log-packets {IN}", "is the UART input"),
    bad("serve {G} --port 0 --log-packets {IN}", "is the UART input (stdin)", stdin="IN"),
    usage("serve {G} --port 0 --snapshot-budget -1", "argument --snapshot-budget: -1 is out of range (at least 1M"),
    usage("serve {G} --port 0 --snapshot-budget 0", "argument --snapshot-budget: 0 is out of range"),
    usage("serve {G} --port 0 --snapshot-budget 1023K", "argument --snapshot-budget: 1023k is out of range"),
    usage("serve {G} --port 0 --snapshot-budget plenty", "argument --snapshot-budget: not a number"),
    usage("serve {G} --port 0 --save-dir {MISSING}", "argument --save-dir: "),
    usage("serve {G} --port 0 --save-dir {TXT}", "is not a directory"),
    bad("serve {G} --port 0 --uart-input {MISSING}", "No such file"),
    bad("serve {G} --port 0 --uart-input {DIR}", "Is a directory"),
]

REPLAY = [
    usage("replay", "required: FILE.chrec"),
    bad("replay {MISSING}", "No such file"),
    bad("replay {DIR}", "not a regular file"),
    bad("replay {FIFO}", "not a regular file"),
    bad("replay {EMPTY}", "recording"),
    bad("replay {TXT}", "recording"),
    bad("replay {G}", "recording"),
    bad("replay {REC} --guest {MISSING}", "No such file"),
    bad("replay {REC} --guest {DIR}", "not a regular file"),
    bad("replay {REC} --guest {TXT}", "not an ELF"),
    bad("replay {REC} --guest {OTHER}", "image"),  # another guest than the one recorded
    usage("replay {REC} --ram 0", "argument --ram: 0 is out of range"),
    usage("replay {REC} --ram 5000", "argument --ram: 5000 is out of range"),
    usage("replay {REC} --ram big", "argument --ram: not a number"),
    bad("replay {REC} --ram 64M", "RAM"),  # in range, but not the recording's
    usage("replay {REC} --icount-shift 11", "argument --icount-shift: 11 is out of range"),
    usage("replay {REC} --icount-shift -3", "argument --icount-shift: -3 is out of range"),
    usage("replay {REC} --port 70000", "argument --port: 70000 is out of range"),
    usage("replay {REC} --port -1", "argument --port: -1 is out of range"),
    usage("replay {REC} --port gdb", "argument --port: not a number"),
    bad("replay {REC} --port {BUSY}", "Address already in use"),
    bad("replay {REC} --log-packets {OUT}", "--log-packets only applies with --port"),
    bad("replay {REC} --host 127.0.0.1", "--host only applies with --port"),
    bad("replay {REC} --snapshot-budget 64M", "--snapshot-budget only applies with --port"),
    bad("replay {REC} --save-dir {DIR}", "--save-dir only applies with --port"),
    bad("replay {REC} --port 0 --log-packets {REC}", "is the recording"),
    bad("replay {REC} --port 0 --log-packets {RECLINK}", "is the recording"),
    bad("replay {REC} --port 0 --guest {G} --log-packets {G}", "is the guest image"),
    bad("replay {REC} --port 0 --log-packets {MISSING_DIR}/p.log", "No such file or directory"),
    bad("replay {REC} --port 0 --log-packets {DIR}", "Is a directory"),
    usage("replay {REC} --port 0 --snapshot-budget -1", "argument --snapshot-budget: -1 is out of range"),
    usage("replay {REC} --port 0 --save-dir {TXT}", "is not a directory"),
]

LOCATE = [
    usage("locate {REC}", "required: --watch"),
    usage("locate --watch x", "required: RECORDING.chrec|GUEST"),
    bad("locate {MISSING} --watch x", "No such file"),
    bad("locate {DIR} --watch x", "not a regular file"),
    bad("locate {FIFO} --watch x", "not a regular file"),
    usage("locate {REC} --watch x --at -1", "argument --at: -1 is out of range"),
    usage("locate {REC} --watch x --at soon", "argument --at: not a number"),
    usage("locate {REC} --watch x --at 5 --at-end", "not allowed with argument --at"),
    usage("locate {REC} --watch x --depth 0", "argument --depth: 0 is out of range (at least 1"),
    usage("locate {REC} --watch x --depth -2", "argument --depth: -2 is out of range"),
    usage("locate {REC} --watch x --depth deep", "argument --depth: not a number"),
    bad("locate {REC} --watch x --guest {MISSING}", "No such file"),
    bad("locate {REC} --watch x --guest {DIR}", "not a regular file"),
    bad("locate {G} --watch x --guest {G}", "--guest is for a recording"),
    bad("locate {G} --watch x --uart-input {MISSING}", "No such file"),
    bad("locate {G} --watch x --uart-input {DIR}", "not a regular file"),
    bad("locate {REC} --watch x --uart-input {IN}", "--uart-input is for a guest image"),
    usage("locate {REC} --watch x --json=yes", "ignored explicit argument"),
]

DEMO = [
    usage("demo --arch rv128", "argument --arch: invalid choice"),
    usage("demo --arch", "argument --arch: expected one argument"),
    usage("demo extra", "unrecognized arguments: extra"),
]

INFO_EVENTS = [
    *(
        row
        for cmd in ("info", "events")
        for row in (
            usage(cmd, "required: FILE.chrec"),
            bad(f"{cmd} {{MISSING}}", "No such file"),
            bad(f"{cmd} {{DIR}}", "not a regular file"),
            bad(f"{cmd} {{FIFO}}", "not a regular file"),
            bad(f"{cmd} /dev/zero", "not a regular file"),
            bad(f"{cmd} {{EMPTY}}", "recording"),
            bad(f"{cmd} {{TXT}}", "recording"),
            bad(f"{cmd} {{G}}", "recording"),
            usage(f"{cmd} {{REC}} {{REC}}", "unrecognized arguments"),
        )
    ),
    usage("events {REC} --from -1", "argument --from: -1 is out of range"),
    usage("events {REC} --to -1", "argument --to: -1 is out of range"),
    usage("events {REC} --from start", "argument --from: not a number"),
    usage("events {REC} --to end", "argument --to: not a number"),
    bad("events {REC} --from 10 --to 5", "--from 10 is after --to 5"),
]

GLOBAL = [
    usage("", "required: command"),
    usage("rewind {G}", "argument command: invalid choice: 'rewind'"),
    usage("-v -v --quiet run {G}", "unrecognized arguments: --quiet"),
]

FAST_EVERY = 12  # each row costs an interpreter start (~0.4 s): one in twelve is in the fast subset, all in CI


def _sampled(rows: list[object]) -> list[object]:
    """Every FAST_EVERY-th row unmarked (the fast subset ``-m "not slow"`` stays under 2 minutes); the rest slow."""
    out = []
    for i, row in enumerate(rows):
        marks = list(row.marks)  # type: ignore[attr-defined]
        if i % FAST_EVERY and pytest.mark.slow not in marks:
            marks.append(pytest.mark.slow)
        out.append(pytest.param(*row.values, id=row.id, marks=marks))  # type: ignore[attr-defined]
    return out


TABLE = _sampled([*RUN, *RECORD, *SERVE, *REPLAY, *LOCATE, *DEMO, *INFO_EVENTS, *GLOBAL])


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A guest and its recording, made once (each test gets copies: a row that failed would clobber them)."""
    where = tmp_path_factory.mktemp("originals")
    elf = where / "hello.elf"
    shutil.copyfile(HELLO, elf)
    rec = where / "hello.chrec"
    proc = run(["record", str(elf), "-o", str(rec)])
    assert proc.returncode == 0, proc.stderr
    return {"G": elf, "REC": rec}


@pytest.fixture
def files(tmp_path: Path, originals: dict[str, Path]) -> Iterator[dict[str, Path | str]]:
    """The placeholders of the table: files of every kind, and a port that is in use."""
    paths: dict[str, Path | str] = {}
    for name, original in originals.items():
        paths[name] = tmp_path / original.name
        shutil.copyfile(original, paths[name])
    (tmp_path / "link.elf").symlink_to(paths["G"])
    os.link(paths["G"], tmp_path / "hard.elf")
    (tmp_path / "link.chrec").symlink_to(paths["REC"])
    (tmp_path / "dir").mkdir()
    (tmp_path / "notes.txt").write_text("not a guest, not a recording\n")
    (tmp_path / "in.txt").write_text("uart input\n")
    (tmp_path / "empty").write_bytes(b"")
    os.mkfifo(tmp_path / "fifo")  # nobody ever writes it: opening it to read would block forever
    other = tmp_path / "timer.elf"
    shutil.copyfile(guest("rv32", "timer"), other)
    paths.update(
        LINK=tmp_path / "link.elf", HARD=tmp_path / "hard.elf", RECLINK=tmp_path / "link.chrec",
        DIR=tmp_path / "dir", TXT=tmp_path / "notes.txt", IN=tmp_path / "in.txt", EMPTY=tmp_path / "empty",
        FIFO=tmp_path / "fifo", OTHER=other, MISSING=tmp_path / "missing", MISSING_DIR=tmp_path / "no" / "such",
        OUT=tmp_path / "out.chrec",
    )  # fmt: skip
    with socket.socket() as busy:  # a port in use: a server on it must say so and exit at once
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        paths["BUSY"] = str(busy.getsockname()[1])
        yield paths


def run(argv: list[str], stdin: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """The real command line, cut off after TIMEOUT_S (a hang fails the test)."""
    with open(stdin if stdin is not None else os.devnull, "rb") as source:
        return subprocess.run([sys.executable, "-m", "gdbstub.cli", *argv], stdin=source, capture_output=True,
                              timeout=TIMEOUT_S, cwd=ROOT)  # fmt: skip


def contents(paths: dict[str, Path | str]) -> dict[str, bytes]:
    """What every input file holds (none may change)."""
    names = ("G", "REC", "TXT", "IN", "EMPTY", "OTHER")
    return {name: Path(paths[name]).read_bytes() for name in names}


@pytest.mark.parametrize("row", TABLE)
def test_a_bad_command_line_exits_2_with_one_line(row: Bad, files: dict[str, Path | str]) -> None:
    argv = [token.format(**files) for token in shlex.split(row.argv)]
    before = contents(files)
    proc = run(argv, Path(files[row.stdin]) if row.stdin else None)
    err = proc.stderr.decode(errors="replace")
    lines = err.splitlines()
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert proc.returncode == 2, f"exit {proc.returncode}: {err}"
    assert lines, "nothing on stderr"
    if row.by_argparse:
        assert lines[0].startswith("usage: chronicorn"), err
        assert re.match(r"chronicorn( [a-z]+)?: error: ", lines[-1]), err
    else:
        assert len(lines) == 1 and lines[0].startswith("chronicorn: "), err
    assert row.expect.lower() in lines[-1].lower(), err
    assert b"listening on" not in proc.stdout  # a refused server never listens
    assert contents(files) == before, "an input file changed"
    assert not Path(files["OUT"]).exists(), "a refused command created its output"


def test_the_table_is_big_enough() -> None:
    assert len(TABLE) >= 100
    options = " ".join(p.values[0].argv for p in TABLE)  # type: ignore[attr-defined]
    for option in ("--ram", "--icount-shift", "--load-addr", "--arch", "--machine", "--max-insns", "--port",
                   "--host", "--log-packets", "--snapshot-budget", "--save-dir", "--uart-input", "--sleep",
                   "--guest", "--at", "--depth", "--json", "--from", "--to", "--trace", "--no-native"):  # fmt: skip
        assert option in options, option


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "{G}", "--max-insns", "1"],
        ["run", "{G}", "--max-insns", "0x100", "--icount-shift", "10", "--ram", "64M"],
        ["run", "{G}", "--max-insns", "1k", "--icount-shift", "0"],
        ["events", "{REC}", "--from", "0", "--to", "0"],
        ["info", "{RECLINK}"],
    ],
    ids=" ".join,
)
def test_the_edges_of_the_ranges_are_accepted(argv: list[str], files: dict[str, Path | str]) -> None:
    proc = run([token.format(**files) for token in argv])
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_a_full_disk_mid_recording_keeps_the_complete_chunks(tmp_path: Path) -> None:
    """A write that fails mid-recording (here the file size limit; a full disk alike) is one line naming the
    file and the error, and the file is cut at its last complete chunk: it still replays that far."""
    rec = tmp_path / "cut.chrec"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gdbstub.cli", "record", str(guest("rv32", "echo")), "-o", str(rec)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        assert proc.stdout.readline() == b"echo ready\n"
        proc.stdin.write(b"abc\n")
        proc.stdin.flush()
        complete = wait_for_growth(rec, rec.stat().st_size)  # the chunk with the input is on disk
        # From now on the file cannot grow past a few more bytes: the next chunk is cut short.
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (complete + 10, complete + 10))
        proc.stdin.write(b"def\n")
        proc.stdin.close()  # the guest then waits forever: the recording ends, its last chunks fail
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=TIMEOUT_S) == 2, err
    finally:
        proc.kill()
        proc.wait()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith(f"chronicorn: cannot write {rec}: File too large; the file keeps the recording up to")
    assert rec.stat().st_size == complete  # the partial chunk is gone
    replayed = run(["replay", str(rec)])
    assert replayed.returncode == 0 and replayed.stdout == b"echo ready\nABC\n", replayed.stderr
    assert b"no end record" in replayed.stderr and b"damaged" not in replayed.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_packet_log_on_a_full_disk_is_said_once_and_the_server_goes_on() -> None:
    from gdbstub.client import ServerProcess
    from gdbstub.rsp.codec import Decoder, Packet, encode

    server = ServerProcess(HELLO, "--log-packets", "/dev/full")
    try:
        for _ in range(2):  # a second connection: the log failed once, the server still answers
            with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S) as sock:
                sock.sendall(encode(b"?"))
                decoder, packets = Decoder(), []
                while not packets and (chunk := sock.recv(4096)):
                    packets += [e.payload for e in decoder.feed(chunk) if isinstance(e, Packet)]
                assert packets == [b"T05thread:1;"]
        server.proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop, the broken log closed quietly
        assert server.proc.wait(timeout=TIMEOUT_S) == 0
    finally:
        _, err = server.stop()
    text = err.decode()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    assert text.count("cannot write /dev/full: No space left on device; packets are no longer logged") == 1, text
