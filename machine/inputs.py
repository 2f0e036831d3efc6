"""The one seam through which non-determinism enters the machine.

Devices pull synchronous inputs (the host clock for the RTC); the machine
asks for asynchronous ones (UART input) at instruction boundaries and asks
what happens when the guest idles in ``wfi``. A later recorder implements the
same protocol by asking a live source and logging the answers.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .audio import AudioSource


class NetBackend(Protocol):
    """Where the guest's Ethernet frames go and where frames for it come from (``machine.net``'s backends)."""

    def send(self, frame: bytes) -> None:
        """A frame the guest transmitted (without the virtio header)."""
        ...

    def receive(self) -> bytes | None:
        """The next frame for the guest, or None when none is ready now."""
        ...


@dataclass(frozen=True, slots=True)
class IdleOutcome:
    """What ends an idle period: virtual time that passes, input that arrives, or neither ever."""

    warp_ns: int = 0
    data: bytes = b""
    forever: bool = False


class InputSource(Protocol):
    """Everything the machine cannot compute from the image and the icount."""

    def host_clock_ns(self, icount: int) -> int:
        """The host's real-time clock (read by the RTC)."""
        ...

    def poll_input(self, icount: int, space: int) -> bytes:
        """UART input available now, at most ``space`` bytes (never blocks)."""
        ...

    def next_input_icount(self, icount: int) -> int | None:
        """The icount at which more input becomes available, when known in advance.

        The machine stops exactly there, so input arrives at the same instruction
        however the caller stops and resumes. None: unknown (live input, which
        is taken at the next stop) or nothing more to come.
        """
        ...

    def idle(self, icount: int, deadline_ns: int | None) -> IdleOutcome:
        """The guest waits in ``wfi``; ``deadline_ns`` is the virtual time until the next timer."""
        ...

    def complete_io(self, icount: int, pending: int) -> int:
        """Which devices complete their pending requests now: ``pending`` and the answer are bit masks of
        virtio slots. A live source completes everything at once (the I/O is done when it is delivered);
        a replay answers what the log says for this icount (QEMU's blkreplay)."""
        ...

    def frames_due(self, icount: int, slot: int) -> bool:
        """Whether the network of the virtio-net device in ``slot`` has a frame for the guest now."""
        ...

    def poll_frames(self, icount: int, slot: int, space: int) -> list[bytes]:
        """Frames for the guest from the network of ``slot`` now, at most ``space`` (never blocks). A replay
        gives the logged ones (QEMU's filter-replay: only what enters the guest is logged)."""
        ...

    def send_frame(self, icount: int, slot: int, frame: bytes) -> None:
        """A frame the guest transmitted (a replay drops it: the network is not there)."""
        ...

    def capture_audio(self, icount: int, slot: int, nbytes: int, rate: int, channels: int) -> bytes:
        """``nbytes`` of S16_LE samples from the microphone of the virtio-snd device in ``slot`` (a replay gives
        the logged ones)."""
        ...

    def audio_played(self, icount: int, slot: int, nbytes: int, rate: int, channels: int) -> None:
        """The virtio-snd device in ``slot`` finished playing ``nbytes`` (logged; a replay checks it)."""
        ...


class NetworkPort:
    """The live side of the network devices: each slot's backend (``send``, ``receive``), one frame of look-ahead
    each so that :meth:`frames_due` can answer without taking it.

    A backend with host sockets behind it (``machine.net.LiveBackend``: ``listening``, ``wait(timeout)``) can
    bring frames while the guest sends nothing: :meth:`wait_network` blocks on those for an idle guest.
    """

    NETWORK_SLICE_S = 0.02  # how long each live backend is waited on in turn when there are several

    def __init__(self, backends: dict[int, NetBackend] | None = None) -> None:
        self._backends = dict(backends or {})
        self._ahead: dict[int, bytes] = {}

    def frames_due(self, icount: int, slot: int) -> bool:
        if slot not in self._ahead:
            backend = self._backends.get(slot)
            frame = backend.receive() if backend is not None else None
            if frame is None:
                return False
            self._ahead[slot] = frame
        return True

    def poll_frames(self, icount: int, slot: int, space: int) -> list[bytes]:
        frames: list[bytes] = []
        while len(frames) < space and self.frames_due(icount, slot):
            frames.append(self._ahead.pop(slot))
        return frames

    def send_frame(self, icount: int, slot: int, frame: bytes) -> None:
        backend = self._backends.get(slot)
        if backend is not None:
            backend.send(frame)

    def _live_networks(self) -> list[Callable[[float], bool]]:
        """The ``wait`` of every backend with an open host socket."""
        waits = []
        for backend in self._backends.values():
            wait = getattr(backend, "wait", None)
            if wait is not None and getattr(backend, "listening", False):
                waits.append(wait)
        return waits

    def is_network_live(self) -> bool:
        """Whether a backend may still bring frames on its own (a host socket is open)."""
        return bool(self._live_networks())

    def wait_network(self, timeout: float, other: Callable[[], bool] | None = None) -> bool:
        """Block up to ``timeout`` seconds until a live backend has something (True), without a busy loop;
        False at once when none is live. ``other``: a non-blocking check of another input (True: it came),
        tried between turns of ``NETWORK_SLICE_S`` on the backends; it ends the wait too (False)."""
        waits = self._live_networks()
        if not waits:
            return False
        if other is None and len(waits) == 1:
            return waits[0](timeout)
        deadline = time.monotonic() + timeout
        while True:
            for wait in waits:
                if wait(min(self.NETWORK_SLICE_S, max(deadline - time.monotonic(), 0.0))):
                    return True
            if (other is not None and other()) or time.monotonic() >= deadline:
                return False


class AudioPort:
    """The live side of the sound devices: each slot's microphone (silence where none is given)."""

    def __init__(self, sources: dict[int, AudioSource] | None = None) -> None:
        self._sources = dict(sources or {})

    def capture_audio(self, icount: int, slot: int, nbytes: int, rate: int, channels: int) -> bytes:
        source = self._sources.get(slot)
        return bytes(nbytes) if source is None else source.capture(nbytes, rate, channels)

    def audio_played(self, icount: int, slot: int, nbytes: int, rate: int, channels: int) -> None:
        """Nothing to do live (the board's sink has the samples; the history logs the amount)."""


class PromptGate:
    """``--expect``: UART input from a file, held back until the guest asks for it.

    All of a file's bytes would otherwise arrive at once, at icount 0, and firmware that clears its receive
    FIFO while it initialises its console (U-Boot) loses them. Here each line of input (through its newline)
    is released only when the guest's output since the previous release contains one of ``prompts``; the
    last line, without a newline, once the input has ended. What is released is logged as UART input at the
    icount the guest takes it, as any live input, so a replay needs neither the file nor the prompts.
    """

    def __init__(self, prompts: list[bytes]) -> None:
        if not prompts or not all(prompts):
            raise ValueError("--expect needs a non-empty prompt")
        self._prompts = prompts
        self._longest = max(len(p) for p in prompts)
        self._seen = bytearray()  # output since the last release (its last bytes: enough to hold a prompt)
        self._open = 0  # lines released but not yet taken

    def saw_output(self, byte: int) -> None:
        """The guest wrote ``byte`` to its UART (live, in order)."""
        self._seen.append(byte)
        if any(self._seen.endswith(p) for p in self._prompts):
            self._open += 1
            self._seen.clear()
        elif len(self._seen) > self._longest:
            del self._seen[: len(self._seen) - self._longest]

    def allowed(self, pending: bytes, ended: bool) -> int:
        """How many bytes at the start of ``pending`` may go to the guest now."""
        end = 0
        for _ in range(self._open):
            newline = pending.find(b"\n", end)
            if newline < 0:
                return len(pending) if ended else end
            end = newline + 1
        return end

    def took(self, data: bytes) -> None:
        """The guest took ``data`` (released bytes): the lines it completes are no longer open."""
        self._open = max(0, self._open - data.count(b"\n"))


class HostInputs(NetworkPort, AudioPort):
    """Live inputs: the host clock and a file descriptor (stdin) read by a helper thread.

    The thread uses ``os.read`` on the raw descriptor: a daemon thread blocked
    inside a buffered reader aborts the interpreter at exit.

    With ``sleep`` off an idle guest with a timer armed jumps straight to its
    deadline; with ``sleep`` on the virtual clock advances with real time while
    it waits (at most 0.1 s per call, so Ctrl-C is polled). With no timer it
    blocks until input arrives, or idles forever once the stream has ended.
    """

    def __init__(self, fd: int | None, sleep: bool = False, networks: dict[int, NetBackend] | None = None,
                 audio: dict[int, AudioSource] | None = None, gate: PromptGate | None = None) -> None:  # fmt: skip
        NetworkPort.__init__(self, networks)
        AudioPort.__init__(self, audio)
        self._sleep = sleep
        self.gate = gate  # --expect: input waits for the guest's prompt
        self._queue: queue.Queue[bytes] = queue.Queue()
        self._pending = b""
        self._eof = fd is None
        if fd is not None:
            threading.Thread(target=self._reader, args=(fd,), daemon=True, name="uart-input").start()

    def _reader(self, fd: int) -> None:
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            self._queue.put(chunk)
            if not chunk:
                return

    def host_clock_ns(self, icount: int) -> int:
        return time.time_ns()

    def _take(self, block: bool, timeout: float = 0.1) -> None:
        """Move one chunk from the reader thread to ``_pending`` (waiting at most ``timeout`` if ``block``)."""
        if self._eof:
            return
        try:
            chunk = self._queue.get(block=block, timeout=timeout if block else None)
        except queue.Empty:
            return
        if chunk:
            self._pending += chunk
        else:
            self._eof = True

    def _available(self) -> int:
        """Bytes of ``_pending`` the guest may have now (all of them, unless a gate holds some back)."""
        if self.gate is None:
            return len(self._pending)
        return self.gate.allowed(self._pending, self._eof)

    def poll_input(self, icount: int, space: int) -> bytes:
        if not self._available():
            self._take(block=False)
        count = min(space, self._available())
        data, self._pending = self._pending[:count], self._pending[count:]
        if self.gate is not None and data:
            self.gate.took(data)
        return data

    def next_input_icount(self, icount: int) -> int | None:
        return None

    def complete_io(self, icount: int, pending: int) -> int:
        return pending

    def idle(self, icount: int, deadline_ns: int | None) -> IdleOutcome:
        # The machine offered pending input before idling: if some is still here the UART
        # is full (or the input waits for a prompt the idle guest cannot print), so it cannot wake the
        # guest; only the timer can.
        if self._pending:
            return IdleOutcome(warp_ns=deadline_ns) if deadline_ns is not None else IdleOutcome(forever=True)
        self._take(block=False)
        if self._available():
            return IdleOutcome()
        if self._pending:  # all held back for a prompt
            return IdleOutcome(warp_ns=deadline_ns) if deadline_ns is not None else IdleOutcome(forever=True)

        def uart_arrived() -> bool:
            self._take(block=False)
            return bool(self._pending) or self._eof

        def wait(timeout: float) -> None:
            # UART input comes through the reader thread's queue, which cannot share a select() with the
            # network's host sockets (a forwarded connection, a datagram): with both, they take turns.
            if self.is_network_live():
                self.wait_network(timeout, None if self._eof else uart_arrived)
            else:
                self._take(block=True, timeout=timeout)

        if deadline_ns is not None:
            if not self._sleep:
                return IdleOutcome(warp_ns=deadline_ns)
            # --sleep on: the virtual clock follows real time while idle, up to the deadline;
            # input that arrives first ends the idle period early (QEMU's warp timer).
            start = time.monotonic_ns()
            wait(min(deadline_ns / 1e9, 0.1))
            elapsed = time.monotonic_ns() - start
            return IdleOutcome(warp_ns=min(deadline_ns, max(elapsed, 1)))
        # Wait briefly and return even if nothing came, so the caller can poll Ctrl-C.
        wait(0.1)
        return IdleOutcome(forever=self._eof and not self._pending and not self.is_network_live())


class ScriptedInputs(NetworkPort, AudioPort):
    """Deterministic inputs for tests: a fixed clock and UART bytes offered from given icounts."""

    def __init__(self, clock_ns: int = 0, schedule: list[tuple[int, bytes]] | None = None,
                 networks: dict[int, NetBackend] | None = None,
                 audio: dict[int, AudioSource] | None = None) -> None:  # fmt: skip
        NetworkPort.__init__(self, networks)
        AudioPort.__init__(self, audio)
        self._clock_ns = clock_ns
        self._schedule = sorted(schedule or [], key=lambda item: item[0])
        self._pending = b""

    def host_clock_ns(self, icount: int) -> int:
        return self._clock_ns

    def _due(self, icount: int) -> None:
        while self._schedule and self._schedule[0][0] <= icount:
            self._pending += self._schedule.pop(0)[1]

    def poll_input(self, icount: int, space: int) -> bytes:
        self._due(icount)
        data, self._pending = self._pending[:space], self._pending[space:]
        return data

    def complete_io(self, icount: int, pending: int) -> int:
        return pending

    def next_input_icount(self, icount: int) -> int | None:
        # Input that did not fit waits for the guest to read the UART (a stop anyway).
        if self._pending or not self._schedule:
            return None
        return self._schedule[0][0]

    def idle(self, icount: int, deadline_ns: int | None) -> IdleOutcome:
        if self._pending:  # offered already and not taken: the UART is full (see HostInputs.idle)
            return IdleOutcome(warp_ns=deadline_ns) if deadline_ns is not None else IdleOutcome(forever=True)
        self._due(icount)
        if self._pending:
            return IdleOutcome()
        if deadline_ns is not None:
            return IdleOutcome(warp_ns=deadline_ns)
        if self._schedule:
            self._pending += self._schedule.pop(0)[1]
            return IdleOutcome()
        return IdleOutcome(forever=True)
