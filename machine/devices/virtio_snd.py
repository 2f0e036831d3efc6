"""virtio-snd (virtio 1.2 §5.14, device ID 25) behind a modern virtio-mmio slot, paced by virtual time.

A :class:`VirtioSnd` is the :class:`~.virtio_mmio.VirtioBackend` of one :class:`~.virtio_mmio.VirtioMmio`
slot (modern only: the transport refuses a driver without VIRTIO_F_VERSION_1; :meth:`VirtioSnd.attach`
refuses a legacy slot). No device-specific feature bits. Two PCM streams: 0 is an output (queue 2, tx),
1 an input (queue 3, rx); S16_LE only, 1 or 2 channels, 8000, 16000, 44100 or 48000 Hz; no jacks, no channel
maps (configuration space: le32 jacks 0, streams 2, chmaps 0). Queue 0 carries control requests, queue 1
(events) is never used: there are no jack events and no PCM event features.

Control requests (``struct virtio_snd_hdr`` code, then the request; the response is a le32 status, then any
payload): JACK_INFO, CHMAP_INFO, PCM_INFO (``struct virtio_snd_query_info``: items ``start_id`` ..
``start_id + count - 1``, each ``size`` bytes in the response: our structure cut to ``size``, bytes past it
left as they were), PCM_SET_PARAMS, PREPARE, START, STOP, RELEASE (``struct virtio_snd_pcm_hdr``). Statuses as
"Device Operation" defines them: BAD_MSG for a message too short or with invalid parameters (an unknown stream,
a range past the items, a response buffer too small, undefined format/rate/feature values, sizes that are not
whole periods and frames, a command the stream's state does not allow), NOT_SUPP for an unknown request code
or valid parameters this device does not offer. The "PCM Command Lifecycle" is :data:`TRANSITIONS`.

Pacing: the device never reads a clock; the board tells it the virtual time (:meth:`VirtioSnd.set_time`)
before anything reaches it. START puts the stream's play clock at that time; from then on each I/O message
lasts its frames at the stream's rate, and completes, returned on its queue, only when the virtual time has
reached its end (its last frame played, or captured): ``start_ns + ceil(frames * 10**9 / rate)``, counted in
frames since START so rounding never drifts. Until then :meth:`~VirtioSnd.process` returns None (the transport
leaves it on the available ring) and remembers when it will be due: :meth:`~VirtioSnd.next_deadline_ns`.
A message first seen after the stream ran dry (the queue was empty when the previous one completed: the
guest was late, an underrun or overrun) starts when it is seen: the clock is put there, as a real device
plays silence (or drops captured frames) meanwhile. Output data goes to ``play(stream_id, data)`` when its
message completes; input data comes from ``capture(stream_id, nbytes)`` (exactly ``nbytes`` of S16_LE, an
input the board logs for replay) when its message completes. Both are called only from within the slot's
``service``, with :attr:`~VirtioSnd.now_ns` the completion's time.

The board's contract (a step is a sequence of calls with no guest instruction in between):

1. ``snd = VirtioSnd(play, capture)``; ``slot = VirtioMmio(irq, memory, snd, ...)``; ``snd.attach(slot)``
   (START and RELEASE service the stream's queue themselves, through it).
2. ``snd.set_time(now_ns)`` before every call that may reach the device: the slot's ``service`` or
   ``complete``, a QueueNotify write when the slot services notifies at once, a Status write (reset). With
   ``on_notify`` the notify callback can do it: ``set_time(now)`` then ``slot.complete()``.
3. When the virtual time reaches ``snd.next_deadline_ns()``: ``set_time(t)``, then ``slot.service(2)`` and
   ``slot.service(3)`` (servicing a queue with nothing due changes nothing).
4. Read ``next_deadline_ns()`` again after every step: it changes only in ``process`` (so in a slot's service),
   ``reset`` and ``load``. It is always after ``now_ns``.

Spec points followed: RELEASE "MUST complete all pending I/O messages" of the stream and "MUST NOT complete
the control request while there are pending I/O messages": it services the stream's queue before answering,
and a released stream's messages are returned at once, status OK, nothing played or captured (used length 8:
Linux's driver takes a capture message with no frames as a whole period). Output messages are not completed
"until the buffer is totally consumed", input ones "until the buffer is full". An I/O message's status is OK
or IO_ERR ("PCM I/O Messages"): IO_ERR, at once, for a message that names no stream of its queue's direction,
has device-writable data on the tx queue or device-readable data on the rx queue, or is not whole frames
(QEMU's virtio-snd writes BAD_MSG there: recalled from its source, not measured). Messages wait while their
stream is not running. ``latency_bytes`` is always 0. A chain with no room for its status (4 bytes on the
control queue, 8 on tx/rx) is malformed: VirtqueueError (the transport sets DEVICE_NEEDS_RESET).

State: :class:`VirtioSndState`: the time last given and, per stream, its lifecycle state, parameters and play
clock. The queues' state is the transport's.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Protocol

from ..fields import Bool, FieldError, Int, Tuple, spec
from .base import checked
from .virtio_mmio import BackendInfo
from .virtqueue import ChainIO, VirtqueueError, offered_features

VIRTIO_ID_SOUND = 25
CONTROL_QUEUE, EVENT_QUEUE, TX_QUEUE, RX_QUEUE = 0, 1, 2, 3
QUEUE_SIZE = 64
FEATURES = offered_features(0, legacy=False)
"""No sound feature bits (VIRTIO_SND_F_CTLS is virtio 1.3's); the ring features QEMU offers everywhere."""
JACKS, STREAMS, CHMAPS = 0, 2, 0
CONFIG = struct.pack("<III", JACKS, STREAMS, CHMAPS)  # struct virtio_snd_config (1.2: no controls)
NS_PER_S = 1_000_000_000


class Code(IntEnum):
    """Request types (``VIRTIO_SND_R_*``)."""

    JACK_INFO = 1
    JACK_REMAP = 2
    PCM_INFO = 0x0100
    PCM_SET_PARAMS = 0x0101
    PCM_PREPARE = 0x0102
    PCM_RELEASE = 0x0103
    PCM_START = 0x0104
    PCM_STOP = 0x0105
    CHMAP_INFO = 0x0200


class Status(IntEnum):
    """``VIRTIO_SND_S_*``."""

    OK = 0x8000
    BAD_MSG = 0x8001
    NOT_SUPP = 0x8002
    IO_ERR = 0x8003


class Direction(IntEnum):
    OUTPUT = 0  # VIRTIO_SND_D_OUTPUT
    INPUT = 1


class PcmState(IntEnum):
    """Where a stream is in the PCM command lifecycle (the last command that succeeded)."""

    INITIAL = 0  # no parameters yet
    PARAMS_SET = 1
    PREPARED = 2
    RUNNING = 3  # started
    STOPPED = 4
    RELEASED = 5


TRANSITIONS: dict[Code, tuple[frozenset[PcmState], PcmState]] = {
    Code.PCM_SET_PARAMS: (frozenset({PcmState.INITIAL, PcmState.PARAMS_SET, PcmState.PREPARED,
                                     PcmState.RELEASED}), PcmState.PARAMS_SET),
    Code.PCM_PREPARE: (frozenset({PcmState.PARAMS_SET, PcmState.PREPARED, PcmState.RELEASED}), PcmState.PREPARED),
    Code.PCM_START: (frozenset({PcmState.PREPARED, PcmState.STOPPED}), PcmState.RUNNING),
    Code.PCM_STOP: (frozenset({PcmState.RUNNING}), PcmState.STOPPED),
    Code.PCM_RELEASE: (frozenset({PcmState.PREPARED, PcmState.STOPPED}), PcmState.RELEASED),
}  # fmt: skip
"""The spec's "PCM Command Lifecycle": command -> (the states it is allowed in, the state it leaves); a command
in any other state is BAD_MSG and changes nothing."""

PCM_FMT_S16 = 5  # VIRTIO_SND_PCM_FMT_S16
PCM_FMT_LAST = 24  # VIRTIO_SND_PCM_FMT_IEC958_SUBFRAME: higher values are undefined
PCM_RATE_LAST = 13  # VIRTIO_SND_PCM_RATE_384000 (1.2's last)
PCM_F_LAST = 4  # VIRTIO_SND_PCM_F_EVT_XRUNS
RATES = {1: 8000, 3: 16000, 6: 44100, 7: 48000}
"""The rates offered: VIRTIO_SND_PCM_RATE_8000, _16000, _44100, _48000 -> frames per second."""
CHANNELS_MIN, CHANNELS_MAX = 1, 2
SAMPLE_BYTES = 2  # S16_LE
DIRECTIONS = (Direction.OUTPUT, Direction.INPUT)  # stream id -> direction
STREAM_QUEUES = (TX_QUEUE, RX_QUEUE)  # stream id -> its I/O queue

_HDR = struct.Struct("<I")  # struct virtio_snd_hdr
_QUERY = struct.Struct("<IIII")  # struct virtio_snd_query_info: hdr, start_id, count, size
_PCM_HDR = struct.Struct("<II")  # struct virtio_snd_pcm_hdr: hdr, stream_id
_SET_PARAMS = struct.Struct("<IIIIIBBBB")  # pcm_hdr, buffer_bytes, period_bytes, features, channels, format,
#                                            rate, padding
_PCM_INFO = struct.Struct("<IIQQBBB5x")  # hda_fn_nid, features, formats, rates, direction, channels min/max
_XFER = struct.Struct("<I")  # struct virtio_snd_pcm_xfer: stream_id
_STATUS = struct.Struct("<II")  # struct virtio_snd_pcm_status: status, latency_bytes
_PER_STREAM = Tuple(STREAMS, Int(64))


def _ceil_ns(frames: int, rate: int) -> int:
    return -(-frames * NS_PER_S // rate)


@dataclass(frozen=True, slots=True)
class VirtioSndState:
    """The time last given (``now_ns``) and, per stream (tuples indexed by stream id): the lifecycle state,
    the parameters of the last SET_PARAMS that succeeded (0 before: ``rate`` is a VIRTIO_SND_PCM_RATE_ index),
    and the play clock: ``start_ns`` is frame 0's time (START, or the end of an underrun), ``frames`` the
    frames completed since, ``last_ns`` when the stream last started or completed a message (a message first
    seen later found the queue run dry), ``due_ns`` the end of the head message the device is waiting for
    (``waiting``; 0 otherwise)."""

    VERSION: ClassVar[int] = 1
    now_ns: int = spec(Int(64))
    pcm_state: tuple[int, ...] = spec(Tuple(STREAMS, Int(8, maximum=max(PcmState))))
    buffer_bytes: tuple[int, ...] = spec(Tuple(STREAMS, Int(32)))
    period_bytes: tuple[int, ...] = spec(Tuple(STREAMS, Int(32)))
    channels: tuple[int, ...] = spec(Tuple(STREAMS, Int(8, maximum=CHANNELS_MAX)))
    format: tuple[int, ...] = spec(Tuple(STREAMS, Int(8, maximum=PCM_FMT_LAST)))
    rate: tuple[int, ...] = spec(Tuple(STREAMS, Int(8, maximum=PCM_RATE_LAST)))
    start_ns: tuple[int, ...] = spec(_PER_STREAM)
    frames: tuple[int, ...] = spec(_PER_STREAM)
    last_ns: tuple[int, ...] = spec(_PER_STREAM)
    waiting: tuple[bool, ...] = spec(Tuple(STREAMS, Bool()))
    due_ns: tuple[int, ...] = spec(_PER_STREAM)

    def check_invariants(self) -> None:
        for i in range(STREAMS):
            has_params = self.pcm_state[i] != PcmState.INITIAL
            if has_params and _params_status(self.buffer_bytes[i], self.period_bytes[i], 0, self.channels[i],
                                             self.format[i], self.rate[i]) != Status.OK:  # fmt: skip
                raise FieldError(f"VirtioSndState: stream {i} has invalid parameters")
            if not has_params and (self.buffer_bytes[i], self.period_bytes[i], self.channels[i], self.format[i],
                                   self.rate[i]) != (0, 0, 0, 0, 0):  # fmt: skip
                raise FieldError(f"VirtioSndState: stream {i} has parameters in its initial state")
            if self.waiting[i] and self.pcm_state[i] != PcmState.RUNNING:
                raise FieldError(f"VirtioSndState: stream {i} waits for a message while not running")
            if not self.waiting[i] and self.due_ns[i]:
                raise FieldError(f"VirtioSndState: stream {i} has a deadline without a message")


def _params_status(buffer_bytes: int, period_bytes: int, features: int, channels: int, fmt: int, rate: int) -> Status:
    """PCM_SET_PARAMS's answer to these parameters: BAD_MSG for values undefined or inconsistent, NOT_SUPP for
    values defined but not offered in PCM_INFO, else OK."""
    if fmt > PCM_FMT_LAST or rate > PCM_RATE_LAST or features >> (PCM_F_LAST + 1) or channels == 0:
        return Status.BAD_MSG
    if fmt != PCM_FMT_S16 or rate not in RATES or features or not CHANNELS_MIN <= channels <= CHANNELS_MAX:
        return Status.NOT_SUPP
    frame_bytes = SAMPLE_BYTES * channels
    # The driver requirements of SET_PARAMS: whole periods in the buffer (and whole frames in a period).
    if period_bytes == 0 or period_bytes % frame_bytes or buffer_bytes % period_bytes:
        return Status.BAD_MSG
    return Status.OK


class Slot(Protocol):
    """What :meth:`VirtioSnd.attach` needs of a transport (a :class:`~.virtio_mmio.VirtioMmio`)."""

    @property
    def is_legacy(self) -> bool: ...

    def service(self, queue: int) -> None: ...


INFO = BackendInfo(VIRTIO_ID_SOUND, FEATURES, (QUEUE_SIZE,) * 4, len(CONFIG))


class VirtioSnd:
    """virtio-snd; output frames go to ``play(stream_id, data)``, input frames come from
    ``capture(stream_id, nbytes)`` (see the module docstring for the board's contract)."""

    def __init__(self, play: Callable[[int, bytes], None], capture: Callable[[int, int], bytes]) -> None:
        self._play = play
        self._capture = capture
        self._service: Callable[[int], None] = lambda queue: None  # the slot's, once attached
        self.now_ns = 0
        self._init_streams()

    def _init_streams(self) -> None:
        self.pcm_state = [int(PcmState.INITIAL)] * STREAMS
        self.buffer_bytes = [0] * STREAMS
        self.period_bytes = [0] * STREAMS
        self.channels = [0] * STREAMS
        self.format = [0] * STREAMS
        self.rate = [0] * STREAMS
        self.start_ns = [0] * STREAMS
        self.frames = [0] * STREAMS
        self.last_ns = [0] * STREAMS
        self.waiting = [False] * STREAMS
        self.due_ns = [0] * STREAMS

    def attach(self, slot: Slot) -> None:
        """The slot this device is behind (modern only): START and RELEASE service a stream's queue through it."""
        if slot.is_legacy:
            raise ValueError("virtio-snd needs a modern virtio-mmio slot (VIRTIO_F_VERSION_1)")
        self._service = slot.service

    # -- time --------------------------------------------------------------------------------------------
    def set_time(self, now_ns: int) -> None:
        """The virtual time now; the board calls it before anything that may reach the device."""
        if not 0 <= now_ns < 1 << 64:
            raise ValueError(f"virtual time {now_ns} outside 0..2**64-1")
        self.now_ns = now_ns

    def next_deadline_ns(self) -> int | None:
        """When a running stream's head message will be due (the earliest), None if none is waiting.

        Only deadlines after ``now_ns`` count: one the board has reached and serviced is still remembered only
        if its queue could not be serviced (not live: the device needs a reset, or the driver disabled it);
        reporting it would make the board service it again at once, for ever."""
        due = [self.due_ns[i] for i in range(STREAMS) if self.waiting[i] and self.due_ns[i] > self.now_ns]
        return min(due) if due else None

    def position_ns(self, stream_id: int) -> int:
        """The end of the stream's last completed frame (its START time before any); 0 without a rate."""
        rate = RATES.get(self.rate[stream_id])
        return self.start_ns[stream_id] + (_ceil_ns(self.frames[stream_id], rate) if rate else 0)

    # -- VirtioBackend -----------------------------------------------------------------------------------
    def info(self) -> BackendInfo:
        return INFO

    def read_config(self, offset: int, size: int) -> int:
        return int.from_bytes(CONFIG[offset : offset + size], "little")

    def write_config(self, offset: int, size: int, value: int) -> None:
        """Every field is driver-read-only: writes are ignored."""

    def reset(self) -> None:
        """Every stream back to its initial state (the transport forgets the queues and their messages)."""
        self._init_streams()

    def process(self, queue: int, request: ChainIO) -> int | None:
        if queue == CONTROL_QUEUE:
            return self._control(request)
        if queue in STREAM_QUEUES:
            return self._transfer(queue, request)
        if queue == EVENT_QUEUE:
            return None  # no events ever: the driver's buffers stay available
        raise VirtqueueError(f"virtio-snd has no queue {queue}")

    # -- control requests ----------------------------------------------------------------------------------
    def _control(self, io: ChainIO) -> int:
        if io.chain.writable_length < _HDR.size:
            raise VirtqueueError("a virtio-snd control request without room for its status")
        request = io.read(0, _SET_PARAMS.size)  # the longest request this device reads
        if len(request) < _HDR.size:
            status, payload = Status.BAD_MSG, 0
        else:
            handler = _CONTROLS.get(_HDR.unpack_from(request)[0], VirtioSnd._not_supported)
            status, payload = handler(self, request, io)
        io.write(_HDR.pack(status))
        return _HDR.size + (payload if status == Status.OK else 0)

    def _not_supported(self, request: bytes, io: ChainIO) -> tuple[Status, int]:
        return Status.NOT_SUPP, 0

    def _bad_message(self, request: bytes, io: ChainIO) -> tuple[Status, int]:
        return Status.BAD_MSG, 0  # JACK_REMAP: there is no jack to remap

    def _query(self, request: bytes, io: ChainIO, total: int, item: Callable[[int], bytes]) -> tuple[Status, int]:
        """An "Item Information Request": ``count`` items from ``start_id``, each ``size`` bytes."""
        if len(request) < _QUERY.size:
            return Status.BAD_MSG, 0
        _, start_id, count, size = _QUERY.unpack_from(request)
        if start_id + count > total or _HDR.size + count * size > io.chain.writable_length:
            return Status.BAD_MSG, 0
        for i in range(count):
            io.write(item(start_id + i)[:size], _HDR.size + i * size)
        return Status.OK, count * size

    def _jack_info(self, request: bytes, io: ChainIO) -> tuple[Status, int]:
        return self._query(request, io, JACKS, lambda jack: b"")

    def _chmap_info(self, request: bytes, io: ChainIO) -> tuple[Status, int]:
        return self._query(request, io, CHMAPS, lambda chmap: b"")

    def _pcm_info(self, request: bytes, io: ChainIO) -> tuple[Status, int]:
        return self._query(request, io, STREAMS, pcm_info)

    def _pcm_command(self, request: bytes, io: ChainIO) -> tuple[Status, int]:
        """SET_PARAMS, PREPARE, START, STOP, RELEASE: the stream, the lifecycle, then the command's effect."""
        code = Code(_HDR.unpack_from(request)[0])
        if len(request) < (_SET_PARAMS if code == Code.PCM_SET_PARAMS else _PCM_HDR).size:
            return Status.BAD_MSG, 0
        stream = _PCM_HDR.unpack_from(request)[1]
        allowed, after = TRANSITIONS[code]
        if stream >= STREAMS or self.pcm_state[stream] not in allowed:
            return Status.BAD_MSG, 0
        if code == Code.PCM_SET_PARAMS:
            _, _, buffer_bytes, period_bytes, features, channels, fmt, rate, _ = _SET_PARAMS.unpack_from(request)
            status = _params_status(buffer_bytes, period_bytes, features, channels, fmt, rate)
            if status != Status.OK:
                return status, 0
            self.buffer_bytes[stream], self.period_bytes[stream] = buffer_bytes, period_bytes
            self.channels[stream], self.format[stream], self.rate[stream] = channels, fmt, rate
        self.pcm_state[stream] = int(after)
        self.waiting[stream], self.due_ns[stream] = False, 0
        if code == Code.PCM_START:
            self.start_ns[stream] = self.last_ns[stream] = self.now_ns
            self.frames[stream] = 0
        if code in (Code.PCM_START, Code.PCM_RELEASE):
            # START: see the head message now, to know when it is due. RELEASE: return every pending message
            # before this answer ("Stream Release" device requirements); a released stream's messages complete at once.
            self._service(STREAM_QUEUES[stream])
        return Status.OK, 0

    # -- I/O messages --------------------------------------------------------------------------------------
    def _transfer(self, queue: int, io: ChainIO) -> int | None:
        """One tx or rx message: the xfer header, the frames (readable on tx, writable on rx), the status."""
        chain = io.chain
        if chain.writable_length < _STATUS.size:
            raise VirtqueueError("a virtio-snd I/O message without room for its status")
        output = queue == TX_QUEUE
        status_at = chain.writable_length - _STATUS.size
        stream = self._stream_of(io, output)
        if stream is None:
            owner = STREAM_QUEUES.index(queue)  # the head it may have waited for is gone (a guest rewrote it)
            self.waiting[owner], self.due_ns[owner] = False, 0
            return self._finish(io, Status.IO_ERR)
        state = self.pcm_state[stream]
        if state == PcmState.RELEASED:
            return self._finish(io, Status.OK)
        if state != PcmState.RUNNING:
            return None
        data_bytes = chain.readable_length - _XFER.size if output else status_at
        frame_bytes = SAMPLE_BYTES * self.channels[stream]
        if data_bytes % frame_bytes:
            return self._finish(io, Status.IO_ERR)
        if not self.waiting[stream] and self.now_ns > self.last_ns[stream]:
            # A new head after the queue ran dry: it starts now (the gap was silence, or frames dropped).
            self.start_ns[stream], self.frames[stream] = self.now_ns, 0
        frames = self.frames[stream] + data_bytes // frame_bytes
        due = self.start_ns[stream] + _ceil_ns(frames, RATES[self.rate[stream]])
        if self.now_ns < due:
            self.waiting[stream], self.due_ns[stream] = True, due
            return None
        self.waiting[stream], self.due_ns[stream] = False, 0
        self.frames[stream], self.last_ns[stream] = frames, self.now_ns
        if output:
            self._play(stream, io.read(_XFER.size, data_bytes))
            return self._finish(io, Status.OK)
        data = self._capture(stream, data_bytes)
        if len(data) != data_bytes:
            raise ValueError(f"capture gave {len(data)} bytes for {data_bytes}")
        io.write(data)
        return self._finish(io, Status.OK, data_bytes)

    def _stream_of(self, io: ChainIO, output: bool) -> int | None:
        """The stream a well-formed message names, if it is one of its queue's direction."""
        chain = io.chain
        if chain.readable_length < _XFER.size:
            return None
        if (chain.writable_length != _STATUS.size) if output else (chain.readable_length != _XFER.size):
            return None  # frames on the wrong side (the output and input streams' driver requirements)
        stream = _XFER.unpack(io.read(0, _XFER.size))[0]
        wanted = Direction.OUTPUT if output else Direction.INPUT
        return stream if stream < STREAMS and DIRECTIONS[stream] == wanted else None

    def _finish(self, io: ChainIO, status: Status, data_bytes: int = 0) -> int:
        """Write the status in the last 8 writable bytes; the used length: the frames written and the status."""
        io.write(_STATUS.pack(status, 0), io.chain.writable_length - _STATUS.size)
        return data_bytes + _STATUS.size

    # -- state -------------------------------------------------------------------------------------------
    def save(self) -> VirtioSndState:
        return VirtioSndState(now_ns=self.now_ns, **{name: tuple(getattr(self, name)) for name in _STREAM_FIELDS})

    def load(self, state: VirtioSndState, check: bool = True) -> None:
        state = checked(state, VirtioSndState) if check else state
        self.now_ns = state.now_ns
        for name in _STREAM_FIELDS:
            setattr(self, name, list(getattr(state, name)))


def pcm_info(stream_id: int) -> bytes:
    """``struct virtio_snd_pcm_info`` of a stream: hda_fn_nid 0, no features, S16, the four rates."""
    rates = sum(1 << index for index in RATES)
    return _PCM_INFO.pack(0, 0, 1 << PCM_FMT_S16, rates, DIRECTIONS[stream_id], CHANNELS_MIN, CHANNELS_MAX)


_STREAM_FIELDS = ("pcm_state", "buffer_bytes", "period_bytes", "channels", "format", "rate", "start_ns", "frames",
                  "last_ns", "waiting", "due_ns")  # fmt: skip
_CONTROLS: dict[int, Callable[[VirtioSnd, bytes, ChainIO], tuple[Status, int]]] = {
    Code.JACK_INFO: VirtioSnd._jack_info,
    Code.JACK_REMAP: VirtioSnd._bad_message,
    Code.PCM_INFO: VirtioSnd._pcm_info,
    Code.CHMAP_INFO: VirtioSnd._chmap_info,
    **{code: VirtioSnd._pcm_command for code in TRANSITIONS},
}
"""Request code -> handler; any other code is NOT_SUPP."""
