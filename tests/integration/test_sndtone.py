"""The sndtone guest (its own virtio-snd driver) with ``--audio``: capture 0.5 s from a 440 Hz sine, play 0.25 s of
a tone; recorded, replayed with no audio backend (same transcript, same output WAV byte for byte), and gdb going
back to where the device put a captured sample into the guest's buffer.

QEMU 7.2 has no virtio-snd on the riscv virt board, so the transcript is checked against itself and against
what the sine and the guest's own arithmetic give: RMS 11585 for a sine of amplitude 16384, 0.5 s and 0.25 s of
virtual time (5,000,000 and 2,500,000 ticks of the 10 MHz timer, to within one period of the first buffer).
"""

from __future__ import annotations

import re
import subprocess
import sys
import wave
import zlib
from pathlib import Path

import pytest

from replay.events import AudioInput, AudioOutput
from replay.recording import load_recording
from tests.conftest import ROOT, XLENS_RV64_SLOW, guest
from tests.e2e.gdb import Gdb, ServerProcess, require_gdb

TICKS_PER_PERIOD = 500_000  # 1600 bytes of 16 kHz mono: 50 ms


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gdbstub.cli", *args], cwd=ROOT, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def number(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not in the transcript:\n{text}"
    return int(found.group(1), 0)


@pytest.mark.parametrize("xlen", XLENS_RV64_SLOW)
def test_sndtone_records_and_replays_its_audio(xlen: str, tmp_path: Path) -> None:
    recording, recorded_wav, replayed_wav = tmp_path / "snd.chrec", tmp_path / "rec.wav", tmp_path / "rep.wav"
    elf = str(guest(xlen, "sndtone"))
    recorded = cli("record", elf, "--audio", f"in=sine:440,out=wav:{recorded_wav}", "-o", str(recording))
    assert recorded.returncode == 0, recorded.stderr
    out = recorded.stdout
    assert number(r"capture (\d+) samples rms", out) == 8000 and number(r"samples rms (\d+)", out) == 11585
    assert abs(number(r"capture elapsed (\d+) ticks", out) - 5_000_000) <= TICKS_PER_PERIOD
    assert abs(number(r"playback elapsed (\d+) ticks", out) - 2_500_000) <= TICKS_PER_PERIOD
    assert out.endswith("sndtone done\n")

    replayed = cli("replay", str(recording), "--audio", f"out=wav:{replayed_wav}")  # no microphone at all
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == out
    assert recorded_wav.read_bytes() == replayed_wav.read_bytes()
    with wave.open(str(replayed_wav), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
        played = wav.readframes(wav.getnframes())
    assert len(played) == 2 * 4000  # 0.25 s of 16 kHz mono
    assert f"playback sent 4000 samples crc32 {zlib.crc32(played):08x}" in out  # what the guest sent, played

    with recording.open("rb") as stream:
        loaded = load_recording(stream)
    captured = [e for e in loaded.inputs if isinstance(e, AudioInput)]
    played_events = [e for e in loaded.inputs if isinstance(e, AudioOutput)]
    assert len(captured) == 10 and sum(len(e.data) for e in captured) == 16000 and loaded.header.audio
    assert sum(e.nbytes for e in played_events) == 8000
    assert f"crc32 {zlib.crc32(b''.join(e.data for e in captured)):08x}" in out  # the guest got what was logged
    info = cli("info", str(recording))
    assert "0.500 s captured (logged), 0.250 s played" in info.stdout


@pytest.mark.slow
def test_reverse_continue_to_where_a_captured_sample_arrived(tmp_path: Path) -> None:
    """A watch on a word of the guest's capture buffer, from the end of the recording going back, stops where
    the sound device wrote it (gdb's console names the device), with the word's earlier value (0)."""
    require_gdb()
    recording = tmp_path / "snd.chrec"
    elf = guest("rv64", "sndtone")
    assert cli("record", str(elf), "--audio", "in=sine:440", "-o", str(recording)).returncode == 0
    with recording.open("rb") as stream:
        captured = [e for e in load_recording(stream).inputs if isinstance(e, AudioInput)]
    server = ServerProcess(recording, command="replay")
    gdb = Gdb(elf)
    try:
        gdb.connect(server.port)
        gdb.run("-exec-continue")  # to the end of the recording
        gdb.mi('-break-watch "*(int *)&capture[4000]"')  # samples 4000-4001: in the sixth buffer
        stopped = gdb.run("-exec-continue --reverse")
        assert stopped["reason"] == "watchpoint-trigger", stopped
        assert "written by the virtio-snd device in slot 7" in gdb.output
        assert int(stopped["value"]["new"], 0) == 0  # going back, "new" is the earlier value
        assert gdb.icount() == captured[5].icount  # the completion of the sixth capture buffer
    finally:
        gdb.close()
        server.stop()
