"""chronicorn record / replay / info / events through the real command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, XLENS_RV64_SLOW, expected_output, guest, guest_input, run_cli, wait_for_growth


@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
@pytest.mark.parametrize(
    "name", ["hello", "timer", "echo", "traps", "fault", pytest.param("compute", marks=pytest.mark.slow), "rtc"]
)
def test_every_guest_records_and_replays_identically(xlen: str, name: str, tmp_path: Path) -> None:
    rec = tmp_path / "g.chrec"
    uart = tmp_path / "in.txt"
    uart.write_bytes(guest_input(name))
    recorded = run_cli("record", str(guest(xlen, name)), "-o", str(rec), "--uart-input", str(uart))
    if name == "rtc":  # the host clock: different at every run, the same on replay
        assert b"rtc plausible" in recorded.stdout
    else:
        assert recorded.stdout == expected_output(xlen, name)
    replayed = run_cli("replay", str(rec))
    assert replayed.stdout == recorded.stdout
    assert replayed.returncode == recorded.returncode == (3 if name == "fault" else 0)
    assert b"Traceback" not in replayed.stderr + recorded.stderr


def test_info_and_events(tmp_path: Path) -> None:
    from replay.events import UartInput
    from replay.recording import load_recording

    rec = tmp_path / "e.chrec"
    uart = tmp_path / "in.txt"
    uart.write_bytes(b"ab\nq")
    run_cli("record", str(guest("rv32", "echo")), "-o", str(rec), "--uart-input", str(uart))
    with open(rec, "rb") as stream:
        inputs = load_recording(stream).inputs  # (the input thread may hand over the bytes in fewer reads)
    assert b"".join(e.data for e in inputs if isinstance(e, UartInput)) == b"ab\nq"
    info = run_cli("info", str(rec)).stdout.decode()
    assert "arch                 riscv32" in info and f"events UartInput     {len(inputs)}" in info
    assert "exited (code 0)" in info
    lines = run_cli("events", str(rec)).stdout.decode().splitlines()
    assert len(lines) == len(inputs) + 1 and "End" in lines[-1]
    icounts = [int(line.split()[0]) for line in lines]
    window = run_cli("events", str(rec), "--from", str(icounts[0] + 1), "--to", str(icounts[-1] - 1)).stdout.decode()
    assert len(window.splitlines()) == sum(1 for i in icounts if icounts[0] < i < icounts[-1])


def _record(tmp_path: Path, name: str = "echo") -> Path:
    rec = tmp_path / "r.chrec"
    uart = tmp_path / "in.txt"
    uart.write_bytes(b"xyz\nq")
    run_cli("record", str(guest("rv32", name)), "-o", str(rec), "--uart-input", str(uart))
    return rec


def test_replay_refuses_a_different_image(tmp_path: Path) -> None:
    rec = _record(tmp_path)
    proc = run_cli("replay", str(rec), "--guest", str(guest("rv32", "hello")))
    assert proc.returncode == 2 and b"not the image that was recorded" in proc.stderr


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda data: b"not a recording at all", b"not a chronicorn recording"),
        (lambda data: data[:10], b"truncated inside its header"),
        (lambda data: data[:8] + b"\x09\x00\x00\x00" + data[12:], b"format version 9"),
    ],
)
def test_refusals_are_one_line_exit_2(tmp_path: Path, mangle, message: bytes) -> None:  # noqa: ANN001
    rec = _record(tmp_path)
    rec.write_bytes(mangle(rec.read_bytes()))
    for command in ("replay", "info", "events"):
        proc = run_cli(command, str(rec))
        assert proc.returncode == 2 and message in proc.stderr, command
        assert len(proc.stderr.strip().splitlines()) == 1 and b"Traceback" not in proc.stderr


def test_a_corrupt_chunk_replays_up_to_it_and_says_so(tmp_path: Path) -> None:
    rec = _record(tmp_path)
    data = bytearray(rec.read_bytes())
    data[-5] ^= 0xFF  # inside the last chunk
    rec.write_bytes(bytes(data))
    proc = run_cli("replay", str(rec))
    assert b"damaged at byte" in proc.stderr and b"Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_recorder_killed_with_sigkill_leaves_a_replayable_prefix(tmp_path: Path) -> None:
    """QEMU leaves a 0-byte log; ours keeps every chunk written (flushed at least every second)."""
    rec = tmp_path / "killed.chrec"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gdbstub.cli", "record", str(guest("rv32", "echo")), "-o", str(rec)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    assert proc.stdout.readline() == b"echo ready\n"
    proc.stdin.write(b"abc\n")
    proc.stdin.flush()
    wait_for_growth(rec, rec.stat().st_size)  # the chunk with the input (flushed within ~1 s)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    info = run_cli("info", str(rec)).stdout.decode()
    assert "events UartInput" in info and "end                  none" in info
    replayed = run_cli("replay", str(rec))
    assert replayed.stdout.startswith(b"echo ready\nABC\n")
    assert b"no end record" in replayed.stderr


def test_replay_refuses_other_machine_options(tmp_path: Path) -> None:
    rec = _record(tmp_path)
    proc = run_cli("replay", str(rec), "--ram", "64M")
    assert proc.returncode == 2 and b"RAM" in proc.stderr
    proc = run_cli("replay", str(rec), "--icount-shift", "4")
    assert proc.returncode == 2 and b"icount shift 3, not 4" in proc.stderr


def test_a_divergence_names_icount_pc_and_the_digests(tmp_path: Path) -> None:
    """A recording whose verification point does not match what the guest does."""
    import json

    from machine.loader import load_image
    from machine.results import RunKind
    from machine.state import encode_state
    from replay.events import End, Verify
    from replay.log import LogWriter
    from replay.recording import make_header
    from tests.conftest import make_machine

    image = load_image(guest("rv32", "compute"))
    header = make_header(image, "riscv32", 128 << 20, 3, "off", {})
    rec = tmp_path / "forged.chrec"
    with open(rec, "wb") as f:
        writer = LogWriter(f, header.to_json())
        machine = make_machine(guest("rv32", "compute"))
        writer.write_snapshot(0, 0, encode_state(machine.save_state(), machine.arch))
        writer.write_events([Verify(1 << 20, b"\x00" * 16), End(2 << 20, RunKind.LIMIT)])
    proc = run_cli("replay", str(rec))
    assert proc.returncode == 5
    err = proc.stderr.decode()
    assert "diverged at icount 1048576" in err and "differs from the recorded 000000" in err and "pc 0x" in err
    assert json.loads(json.dumps(header.to_json()))["arch"] == "riscv32"


def test_replay_starts_from_the_initial_snapshot(tmp_path: Path) -> None:
    """The recording carries the state at icount 0 (QEMU's rrsnapshot); without it replay refuses."""
    from replay.log import ChunkKind, read_all

    rec = _record(tmp_path)
    data = rec.read_bytes()
    _, chunks, _ = read_all(data)
    assert chunks[0].kind == ChunkKind.SNAPSHOT and chunks[0].first_icount == 0
    stripped = tmp_path / "no-snapshot.chrec"
    stripped.write_bytes(data[: chunks[0].offset] + data[chunks[1].offset :])
    proc = run_cli("replay", str(stripped))
    assert proc.returncode == 2 and b"initial snapshot" in proc.stderr


def test_replay_refuses_another_board(tmp_path: Path) -> None:
    import io
    import json

    from replay.log import LogReader, LogWriter

    rec = _record(tmp_path)
    reader = LogReader(io.BytesIO(rec.read_bytes()))
    header = dict(reader.header, board="sifive_u")
    chunks = list(reader.chunks())
    forged = tmp_path / "board.chrec"
    with open(forged, "wb") as f:
        LogWriter(f, header)
        for chunk in chunks:  # copy the chunks verbatim after the new header
            f.write(
                rec.read_bytes()[
                    chunk.offset : (chunks[chunks.index(chunk) + 1].offset if chunk is not chunks[-1] else None)
                ]
            )
    proc = run_cli("replay", str(forged))
    assert proc.returncode == 2 and b"'board' is 'sifive_u'" in proc.stderr
    assert json.loads(json.dumps(header))["board"] == "sifive_u"


def test_a_divergence_inside_a_device_read_is_reported_cleanly(tmp_path: Path) -> None:
    """The rtc guest reads the host clock inside a Unicorn MMIO callback: with the reads gone from the
    recording, replay diverges there; the error crosses Unicorn's C frames and ends the run (exit 5)."""
    from replay.events import HostClock
    from replay.recording import load_recording
    from tests.recordings import rewrite

    rec = _record(tmp_path, "rtc")
    with open(rec, "rb") as stream:
        loaded = load_recording(stream)
    tampered = tmp_path / "no-clock.chrec"
    rewrite(tampered, loaded, inputs=[e for e in loaded.inputs if not isinstance(e, HostClock)])
    proc = run_cli("replay", str(tampered))
    err = proc.stderr.decode()
    assert proc.returncode == 5 and "read the host clock" in err
    assert "Traceback" not in err and "Exception ignored" not in err and len(err.splitlines()) == 1


def test_a_raw_binary_records_and_replays(tmp_path: Path) -> None:
    """The load address of a raw binary is part of the recording (replay needs it to load the image)."""
    from elftools.elf.elffile import ELFFile

    with open(guest("rv64", "hello"), "rb") as f:  # the one loadable segment of hello, as a flat binary
        segment = next(s for s in ELFFile(f).iter_segments() if s["p_type"] == "PT_LOAD")
        raw, addr = segment.data(), segment["p_paddr"]
    binary = tmp_path / "hello.bin"
    binary.write_bytes(raw)
    rec = tmp_path / "raw.chrec"
    recorded = run_cli("record", str(binary), "--load-addr", hex(addr), "--arch", "riscv64", "-o", str(rec))
    replayed = run_cli("replay", str(rec))
    assert replayed.returncode == recorded.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout and b"hello" in replayed.stdout.lower()


def test_record_refuses_to_write_over_its_guest_and_reports_a_full_disk(tmp_path: Path) -> None:
    elf = tmp_path / "hello.elf"
    elf.write_bytes(guest("rv32", "hello").read_bytes())
    proc = run_cli("record", str(elf), "-o", str(elf))
    assert proc.returncode == 2 and b"is the guest image" in proc.stderr
    assert elf.read_bytes() == guest("rv32", "hello").read_bytes()
    bad = tmp_path / "bad.elf"
    bad.write_bytes(b"\x7fELF" + bytes(60))
    existing = tmp_path / "keep.chrec"
    existing.write_bytes(b"precious")
    proc = run_cli("record", str(bad), "-o", str(existing))  # a bad image: the output is never opened
    assert proc.returncode == 2 and existing.read_bytes() == b"precious"
    if Path("/dev/full").exists():
        proc = run_cli("record", str(elf), "-o", "/dev/full")
        err = proc.stderr.decode()
        assert proc.returncode == 2 and "No space left" in err and "Traceback" not in err
