"""machine/audio.py: the microphone sources (none, sine, WAV) and the WAV sink."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import pytest

from machine.audio import SINE_AMPLITUDE, AudioError, Silence, Sine, WavSink, WavSource, audio_source


def samples(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 2}h", data))


def write_wav(path: Path, values: list[int], rate: int, channels: int, width: int = 2) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(struct.pack(f"<{len(values)}h", *values) if width == 2 else bytes(len(values)))


def test_silence_and_the_sine_give_exactly_what_is_asked() -> None:
    assert Silence().capture(64, 16000, 2) == bytes(64)
    sine = Sine(440)
    first, second = sine.capture(1600, 16000, 1), sine.capture(1600, 16000, 1)
    values = samples(first + second)
    assert len(values) == 1600 and max(values) <= SINE_AMPLITUDE and min(values) >= -SINE_AMPLITUDE
    rms = math.sqrt(sum(v * v for v in values) / len(values))
    assert abs(rms - SINE_AMPLITUDE / math.sqrt(2)) < 50  # 0.1 s of 440 Hz: 44 whole periods
    assert values == samples(Sine(440).capture(3200, 16000, 1))  # phase-continuous across buffers
    stereo = samples(Sine(440).capture(8, 16000, 2))
    assert stereo[0::2] == stereo[1::2]  # the same on both channels


def test_a_wav_file_is_fed_converted_then_silence(tmp_path: Path) -> None:
    path = tmp_path / "in.wav"
    write_wav(path, [100, 300, -100, -300, 7, 9], rate=8000, channels=2)  # 3 stereo frames at 8 kHz
    source = WavSource(path)
    # At 16 kHz mono: each frame twice (nearest in time), channels averaged; then zeros.
    assert samples(source.capture(16, 16000, 1)) == [200, 200, -200, -200, 8, 8, 0, 0]
    with pytest.raises(AudioError, match="16-bit"):
        write_wav(tmp_path / "8bit.wav", [0, 0], rate=8000, channels=1, width=1)
        WavSource(tmp_path / "8bit.wav")
    with pytest.raises(AudioError, match="cannot read"):
        WavSource(tmp_path / "missing.wav")


def test_the_sink_writes_the_first_format_it_plays(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    sink = WavSink(path)
    sink.play(struct.pack("<2h", 1, -1), 16000, 1)
    sink.play(struct.pack("<2h", 2, -2), 16000, 1)
    sink.play(struct.pack("<4h", 9, 9, 9, 9), 48000, 2)  # another format: not in this file
    sink.close()
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getnframes()) == (1, 16000, 4)
        assert samples(wav.readframes(4)) == [1, -1, 2, -2]


def test_sources_by_name() -> None:
    assert isinstance(audio_source("none"), Silence) and isinstance(audio_source("sine:1000"), Sine)
    for bad in ("sine:x", "sine:0", "beep", "wav:", "none:1"):
        with pytest.raises(AudioError):
            audio_source(bad)
