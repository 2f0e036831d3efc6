"""Audio sources and sinks for the virtio-snd device: what the guest hears and where what it plays goes.

Samples are S16_LE, interleaved by channel, as the device's only format. A source is asked for exactly the bytes
a capture buffer needs at the stream's rate and channel count (the device paces captures by virtual time, so a
source is never asked for audio ahead of it); a sink receives what a playback buffer held when it finished
playing. Sources are live inputs: what they give is logged (``replay/``), so a replay needs none of them.
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path
from typing import Protocol

SAMPLE_BYTES = 2  # S16_LE
SINE_AMPLITUDE = 16384  # half of full scale: the RMS of the sine is 16384 / sqrt(2) = 11585


class AudioError(ValueError):
    """An audio option or file that cannot be used (one line)."""


class AudioSource(Protocol):
    """The microphone: ``nbytes`` of S16_LE samples (``nbytes`` a multiple of 2 * channels) at ``rate``."""

    def capture(self, nbytes: int, rate: int, channels: int) -> bytes: ...


class AudioSink(Protocol):
    """The speaker: what the guest played, in order."""

    def play(self, data: bytes, rate: int, channels: int) -> None: ...

    def close(self) -> None: ...


class Silence:
    """``none``: zeros."""

    def capture(self, nbytes: int, rate: int, channels: int) -> bytes:
        return bytes(nbytes)


class Sine:
    """``sine:FREQ``: a sine of FREQ Hz at half of full scale, the same on every channel, phase-continuous."""

    def __init__(self, frequency: float) -> None:
        if not 0 < frequency < 1e6:
            raise AudioError(f"sine:{frequency}: a frequency in Hz above 0")
        self._frequency = frequency
        self._frames = 0  # frames produced so far (the phase)

    def capture(self, nbytes: int, rate: int, channels: int) -> bytes:
        frames = nbytes // (SAMPLE_BYTES * channels)
        out = bytearray()
        step = 2 * math.pi * self._frequency / rate
        for i in range(self._frames, self._frames + frames):
            sample = round(SINE_AMPLITUDE * math.sin(step * i))
            out += struct.pack("<h", sample) * channels
        self._frames += frames
        return bytes(out).ljust(nbytes, b"\0")


class WavSource:
    """``wav:FILE``: a 16-bit PCM WAV file fed as the microphone, then silence (it is read whole at start; its
    rate and channels are converted: nearest sample in time, channels averaged or duplicated)."""

    def __init__(self, path: str | Path) -> None:
        try:
            with wave.open(str(path), "rb") as wav:
                if wav.getsampwidth() != SAMPLE_BYTES or wav.getcomptype() != "NONE":
                    raise AudioError(f"{path}: only 16-bit PCM WAV files can be fed as the microphone")
                self._rate, self._channels = wav.getframerate(), wav.getnchannels()
                raw = wav.readframes(wav.getnframes())
        except (OSError, wave.Error, EOFError) as exc:
            raise AudioError(f"cannot read WAV file {path}: {exc}") from None
        count = len(raw) // SAMPLE_BYTES
        samples = struct.unpack(f"<{count}h", raw[: count * SAMPLE_BYTES])
        self._mono = [sum(samples[i : i + self._channels]) // self._channels
                      for i in range(0, count - count % self._channels, self._channels)]  # fmt: skip
        self._time_frames = 0  # frames given so far, at the rate asked

    def capture(self, nbytes: int, rate: int, channels: int) -> bytes:
        frames = nbytes // (SAMPLE_BYTES * channels)
        out = bytearray()
        for i in range(self._time_frames, self._time_frames + frames):
            index = i * self._rate // rate
            sample = self._mono[index] if index < len(self._mono) else 0
            out += struct.pack("<h", sample) * channels
        self._time_frames += frames
        return bytes(out).ljust(nbytes, b"\0")


class WavSink:
    """``wav:FILE``: what the guest plays, as a 16-bit PCM WAV file at the stream's first rate and channels (a
    later buffer in another format ends the file there: one file holds one format)."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._wav: wave.Wave_write | None = None
        self._format: tuple[int, int] | None = None
        try:
            self._stream = open(self._path, "wb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise AudioError(f"cannot write {path}: {exc.strerror or exc}") from None

    def play(self, data: bytes, rate: int, channels: int) -> None:
        if self._format is None:
            self._format = (rate, channels)
            self._wav = wave.open(self._stream, "wb")  # noqa: SIM115 - closed by close()
            self._wav.setnchannels(channels)
            self._wav.setsampwidth(SAMPLE_BYTES)
            self._wav.setframerate(rate)
        if self._wav is not None and self._format == (rate, channels):
            self._wav.writeframes(data)

    def close(self) -> None:
        if self._wav is None:  # nothing played: an empty mono 16 kHz file
            self.play(b"", 16000, 1)
        assert self._wav is not None
        self._wav.close()
        self._stream.close()


def audio_source(spec: str) -> AudioSource:
    """``none``, ``sine:FREQ`` or ``wav:FILE``."""
    kind, _, value = spec.partition(":")
    if kind == "none" and not value:
        return Silence()
    if kind == "sine":
        try:
            return Sine(float(value))
        except ValueError:
            raise AudioError(f"{spec}: sine:FREQ with FREQ in Hz") from None
    if kind == "wav" and value:
        return WavSource(value)
    raise AudioError(f"{spec!r}: the audio input is none, sine:FREQ or wav:FILE")
