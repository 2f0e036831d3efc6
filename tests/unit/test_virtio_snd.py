"""machine/devices/virtio_snd.py: virtio-snd paced by virtual time, driven through a modern virtio-mmio slot by
the driver-side helpers of the transport's and virtqueue's tests."""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machine.devices import virtio_mmio as vm
from machine.devices import virtio_snd as vs
from machine.devices.virtio_mmio import LegacyVirtioMmio, VirtioMmio
from machine.devices.virtio_snd import Code, PcmState, Status, VirtioSnd, VirtioSndState
from machine.devices.virtqueue import (
    VIRTIO_F_VERSION_1,
    BufferMemory,
    ChainIO,
    DescriptorChain,
    Segment,
    VirtqueueError,
)
from machine.fields import FieldError, check_fields, decode_fields, encode_fields, fingerprint
from tests.unit.test_virtio_mmio import Line, probe, r, setup_queue, w
from tests.unit.test_virtqueue import RAM_BASE, Driver

RAM_BYTES = 0x10_0000
DATA_REGION = 0x3_0000  # each queue's buffers: RAM_BASE + 0x20000 + queue * DATA_REGION
OUT, IN = 0, 1  # the stream ids
T0 = 1_000_000_007  # an arbitrary START time


class LoggedMemory(BufferMemory):
    """Guest RAM that remembers the address of every write, in order."""

    def __init__(self, ram: bytearray) -> None:
        super().__init__(ram, RAM_BASE)
        self.writes: list[int] = []

    def write(self, addr: int, data: bytes) -> None:
        self.writes.append(addr)
        super().write(addr, data)


class Sound:
    """A modern slot with a VirtioSnd and its four queues set up as Linux's driver does; ``played`` collects
    ``(stream, data, now_ns)`` and ``captured`` ``(stream, nbytes, now_ns)``."""

    def __init__(self, features: int = VIRTIO_F_VERSION_1) -> None:
        self.ram = bytearray(RAM_BYTES)
        self.memory = LoggedMemory(self.ram)
        self.line = Line()
        self.played: list[tuple[int, bytes, int]] = []
        self.captured: list[tuple[int, int, int]] = []
        self.snd = VirtioSnd(self._play, self._capture)
        self.dev = VirtioMmio(self.line, self.memory, self.snd)
        self.snd.attach(self.dev)
        probe(self.dev, features)
        self.queues: list[Driver] = []
        for queue in range(4):
            driver = setup_queue(self.dev, self.ram, queue=queue, num=vs.QUEUE_SIZE)
            driver.data_next = RAM_BASE + 0x2_0000 + queue * DATA_REGION
            self.queues.append(driver)
        self.ctrl, self.event, self.tx, self.rx = self.queues
        w(self.dev, vm.STATUS, r(self.dev, vm.STATUS) | vm.STATUS_DRIVER_OK)

    def _play(self, stream: int, data: bytes) -> None:
        self.played.append((stream, data, self.snd.now_ns))

    def _capture(self, stream: int, nbytes: int) -> bytes:
        self.captured.append((stream, nbytes, self.snd.now_ns))
        return bytes((len(self.captured) + i) & 0xFF for i in range(nbytes))

    def at(self, now_ns: int) -> None:
        """The board at a deadline: the time, then the tx and rx queues."""
        self.snd.set_time(now_ns)
        self.dev.service(vs.TX_QUEUE)
        self.dev.service(vs.RX_QUEUE)

    def control(self, request: bytes, response: int = 4) -> tuple[int, bytes, int]:
        """One control request; its status, the response bytes after the status, the used length."""
        head, (buf,) = self.ctrl.add([request], [response])
        self.ctrl.poke(buf, b"\xee" * response)
        w(self.dev, vm.QUEUE_NOTIFY, vs.CONTROL_QUEUE)
        ((found, used),) = self.ctrl.used()
        assert found == head
        data = self.ctrl.peek(buf, response)
        return struct.unpack_from("<I", data)[0], data[4:], used

    def ok(self, request: bytes) -> None:
        status, _, used = self.control(request)
        assert (Status(status), used) == (Status.OK, 4)

    def start(self, stream: int, now_ns: int = T0, rate: int = 7, channels: int = 2, period: int = 4800) -> None:
        self.snd.set_time(now_ns)
        self.ok(set_params(stream, 4 * period, period, channels=channels, rate=rate))
        self.ok(pcm(Code.PCM_PREPARE, stream))
        self.ok(pcm(Code.PCM_START, stream))

    def post_tx(self, data: bytes, stream: int = OUT, slot: int | None = None) -> tuple[int, int]:
        """A playback message (header and frames in one buffer, as allowed); returns its head and status
        address. ``slot`` reuses one of 16 fixed places (long runs)."""
        if slot is not None:
            self.tx.data_next = RAM_BASE + 0x2_0000 + vs.TX_QUEUE * DATA_REGION + (slot % 16) * 0x2000
        head, (status,) = self.tx.add([struct.pack("<I", stream) + data], [8])
        self.tx.poke(status, b"\xee" * 8)
        w(self.dev, vm.QUEUE_NOTIFY, vs.TX_QUEUE)
        return head, status

    def post_rx(self, nbytes: int, stream: int = IN) -> tuple[int, int, int]:
        """A capture message (frames and status in separate buffers, as Linux); head, data and status addresses."""
        head, ins = self.rx.add([struct.pack("<I", stream)], [nbytes, 8] if nbytes else [8])
        w(self.dev, vm.QUEUE_NOTIFY, vs.RX_QUEUE)
        return head, ins[0], ins[-1]

    def status_at(self, driver: Driver, addr: int) -> tuple[int, int]:
        return struct.unpack("<II", driver.peek(addr, 8))


def pcm(code: int, stream: int) -> bytes:
    return struct.pack("<II", code, stream)


def set_params(stream: int, buffer_bytes: int, period_bytes: int, *, channels: int = 2, fmt: int = vs.PCM_FMT_S16,
               rate: int = 7, features: int = 0) -> bytes:  # fmt: skip
    return struct.pack("<IIIIIBBBB", Code.PCM_SET_PARAMS, stream, buffer_bytes, period_bytes, features, channels, fmt,
                       rate, 0)  # fmt: skip


def query(code: int, start_id: int, count: int, size: int) -> bytes:
    return struct.pack("<IIII", code, start_id, count, size)


def ceil_ns(frames: int, rate: int) -> int:
    return -(-frames * 1_000_000_000 // rate)


# -- identity ---------------------------------------------------------------------------------------------


def test_identity_features_and_config() -> None:
    sound = Sound()
    dev = sound.dev
    assert r(dev, vm.DEVICE_ID) == vs.VIRTIO_ID_SOUND == 25
    words = []
    for sel in (0, 1):
        w(dev, vm.DEVICE_FEATURES_SEL, sel)
        words.append(r(dev, vm.DEVICE_FEATURES))
    assert words == [0x3000_0000, 0x101]  # INDIRECT_DESC, EVENT_IDX; VERSION_1, RING_RESET: no sound bits
    assert [dev.read(vm.CONFIG + 4 * i, 4) for i in range(3)] == [0, 2, 0]  # jacks, streams, chmaps
    assert dev.read(vm.CONFIG + 12, 4) == 0xFFFF_FFFF  # 1.2's config has no ``controls``
    dev.write(vm.CONFIG + 4, 4, 7)
    assert dev.read(vm.CONFIG + 4, 4) == 2  # driver-read-only
    for queue in range(4):
        w(dev, vm.QUEUE_SEL, queue)
        assert r(dev, vm.QUEUE_NUM_MAX) == 1024
    w(dev, vm.QUEUE_SEL, 4)
    assert r(dev, vm.QUEUE_NUM_MAX) == 0


def test_a_driver_without_version_1_is_refused_and_a_legacy_slot_too() -> None:
    dev = VirtioMmio(Line(), BufferMemory(bytearray(0x1000), RAM_BASE), VirtioSnd(lambda s, d: None, bytes))
    w(dev, vm.STATUS, vm.STATUS_ACKNOWLEDGE | vm.STATUS_DRIVER)
    w(dev, vm.DRIVER_FEATURES_SEL, 0)
    w(dev, vm.DRIVER_FEATURES, 0x3000_0000)  # ring features, no VERSION_1
    w(dev, vm.STATUS, vm.STATUS_ACKNOWLEDGE | vm.STATUS_DRIVER | vm.STATUS_FEATURES_OK)
    assert not r(dev, vm.STATUS) & vm.STATUS_FEATURES_OK
    snd = VirtioSnd(lambda s, d: None, bytes)
    legacy = LegacyVirtioMmio(Line(), BufferMemory(bytearray(0x1000), RAM_BASE), snd)
    with pytest.raises(ValueError, match="modern"):
        snd.attach(legacy)


# -- information requests --------------------------------------------------------------------------------


def test_pcm_info_describes_one_output_and_one_input() -> None:
    sound = Sound()
    status, data, used = sound.control(query(Code.PCM_INFO, 0, 2, 32), 4 + 64)
    assert (status, used) == (Status.OK, 4 + 64)
    rates = 1 << 1 | 1 << 3 | 1 << 6 | 1 << 7  # VIRTIO_SND_PCM_RATE_8000, _16000, _44100, _48000
    for stream, direction in ((0, vs.Direction.OUTPUT), (1, vs.Direction.INPUT)):
        info = struct.unpack("<IIQQBBB5s", data[32 * stream : 32 * stream + 32])
        assert info == (0, 0, 1 << 5, rates, direction, 1, 2, bytes(5))
    status, data, used = sound.control(query(Code.PCM_INFO, 1, 1, 16), 4 + 20)
    assert (status, used) == (Status.OK, 4 + 16)  # an older driver's smaller structure: ours cut to its size
    assert data[:16] == vs.pcm_info(1)[:16] and data[16:] == b"\xee" * 4
    status, data, used = sound.control(query(Code.PCM_INFO, 0, 1, 40), 4 + 40)
    assert (status, used) == (Status.OK, 44) and data[:32] == vs.pcm_info(0) and data[32:] == b"\xee" * 8


@pytest.mark.parametrize(("request_", "response", "status"), [
    (query(Code.PCM_INFO, 0, 3, 32), 4 + 96, Status.BAD_MSG),  # past the streams
    (query(Code.PCM_INFO, 2, 0, 32), 4, Status.OK),  # start_id + count is not greater than streams: allowed
    (query(Code.PCM_INFO, 3, 0, 32), 4, Status.BAD_MSG),
    (query(Code.PCM_INFO, 1, 1, 32), 4 + 31, Status.BAD_MSG),  # response buffer too small
    (query(Code.PCM_INFO, 0, 1, 32)[:12], 4 + 32, Status.BAD_MSG),  # short query
    (query(Code.PCM_INFO, 0, 0, 32), 4, Status.OK),
    (query(Code.PCM_INFO, 0xFFFF_FFFF, 2, 32), 4 + 64, Status.BAD_MSG),  # no wrap-around
    (query(Code.JACK_INFO, 0, 0, 24), 4, Status.OK),  # no jacks: nothing to say, and that is fine
    (query(Code.JACK_INFO, 0, 1, 24), 4 + 24, Status.BAD_MSG),
    (query(Code.JACK_INFO, 1, 0, 24), 4, Status.BAD_MSG),
    (query(Code.CHMAP_INFO, 0, 0, 24), 4, Status.OK),
    (query(Code.CHMAP_INFO, 0, 1, 24), 4 + 24, Status.BAD_MSG),
    (struct.pack("<IIII", Code.JACK_REMAP, 0, 1, 1), 4, Status.BAD_MSG),  # no jack 0
    (struct.pack("<I", 0x0300), 4, Status.NOT_SUPP),  # VIRTIO_SND_R_CTL_INFO: 1.3's, not offered
    (struct.pack("<I", 0x1000), 4, Status.NOT_SUPP),  # an event code is no request
    (struct.pack("<I", 0xDEAD_BEEF), 4, Status.NOT_SUPP),
    (b"\x00\x01", 4, Status.BAD_MSG),  # not even a header
])  # fmt: skip
def test_information_and_unknown_requests(request_: bytes, response: int, status: Status) -> None:
    sound = Sound()
    got, data, used = sound.control(request_, response)
    assert Status(got) == status
    assert used == (response if status == Status.OK else 4)
    if status != Status.OK:
        assert data == b"\xee" * (response - 4)  # nothing but the status written


# -- PCM commands ----------------------------------------------------------------------------------------

PATHS = {
    PcmState.INITIAL: (),
    PcmState.PARAMS_SET: (Code.PCM_SET_PARAMS,),
    PcmState.PREPARED: (Code.PCM_SET_PARAMS, Code.PCM_PREPARE),
    PcmState.RUNNING: (Code.PCM_SET_PARAMS, Code.PCM_PREPARE, Code.PCM_START),
    PcmState.STOPPED: (Code.PCM_SET_PARAMS, Code.PCM_PREPARE, Code.PCM_START, Code.PCM_STOP),
    PcmState.RELEASED: (Code.PCM_SET_PARAMS, Code.PCM_PREPARE, Code.PCM_RELEASE),
}
EXPECTED = {  # the spec's lifecycle, written out: (state, command) -> state after, for the allowed ones
    (PcmState.INITIAL, Code.PCM_SET_PARAMS): PcmState.PARAMS_SET,
    (PcmState.PARAMS_SET, Code.PCM_SET_PARAMS): PcmState.PARAMS_SET,
    (PcmState.PARAMS_SET, Code.PCM_PREPARE): PcmState.PREPARED,
    (PcmState.PREPARED, Code.PCM_SET_PARAMS): PcmState.PARAMS_SET,
    (PcmState.PREPARED, Code.PCM_PREPARE): PcmState.PREPARED,
    (PcmState.PREPARED, Code.PCM_START): PcmState.RUNNING,
    (PcmState.PREPARED, Code.PCM_RELEASE): PcmState.RELEASED,
    (PcmState.RUNNING, Code.PCM_STOP): PcmState.STOPPED,
    (PcmState.STOPPED, Code.PCM_START): PcmState.RUNNING,
    (PcmState.STOPPED, Code.PCM_RELEASE): PcmState.RELEASED,
    (PcmState.RELEASED, Code.PCM_SET_PARAMS): PcmState.PARAMS_SET,
    (PcmState.RELEASED, Code.PCM_PREPARE): PcmState.PREPARED,
}


def command(code: int, stream: int) -> bytes:
    return set_params(stream, 19200, 4800) if code == Code.PCM_SET_PARAMS else pcm(code, stream)


@pytest.mark.parametrize("stream", [OUT, IN])
@pytest.mark.parametrize("state", list(PcmState))
@pytest.mark.parametrize("code", list(vs.TRANSITIONS))
def test_every_command_in_every_state(stream: int, state: PcmState, code: Code) -> None:
    sound = Sound()
    for step in PATHS[state]:
        sound.ok(command(step, stream))
    assert sound.snd.pcm_state[stream] == state and sound.snd.pcm_state[1 - stream] == PcmState.INITIAL
    status, _, _ = sound.control(command(code, stream))
    after = EXPECTED.get((state, code))
    assert Status(status) == (Status.OK if after is not None else Status.BAD_MSG)
    assert sound.snd.pcm_state[stream] == (state if after is None else after)
    assert sound.snd.pcm_state[1 - stream] == PcmState.INITIAL


@pytest.mark.parametrize("code", list(vs.TRANSITIONS))
def test_commands_for_no_stream_or_too_short_are_bad_messages(code: Code) -> None:
    sound = Sound()
    assert Status(sound.control(command(code, 2))[0]) == Status.BAD_MSG
    assert Status(sound.control(command(code, 0)[:-1])[0]) == Status.BAD_MSG
    assert Status(sound.control(struct.pack("<I", code))[0]) == Status.BAD_MSG
    assert sound.snd.pcm_state == [PcmState.INITIAL] * 2


@pytest.mark.parametrize(("params", "status"), [
    (dict(buffer_bytes=19200, period_bytes=4800), Status.OK),
    (dict(buffer_bytes=4, period_bytes=4, channels=2, rate=1), Status.OK),
    (dict(buffer_bytes=6, period_bytes=2, channels=1, rate=3), Status.OK),
    (dict(buffer_bytes=19200, period_bytes=4801), Status.BAD_MSG),  # not whole periods
    (dict(buffer_bytes=4802, period_bytes=2401), Status.BAD_MSG),  # not whole stereo frames
    (dict(buffer_bytes=6, period_bytes=6), Status.BAD_MSG),  # 1.5 stereo frames
    (dict(buffer_bytes=0, period_bytes=0), Status.BAD_MSG),
    (dict(buffer_bytes=0, period_bytes=4), Status.OK),  # 0 is a multiple of anything (no intermediate buffer)
    (dict(buffer_bytes=16, period_bytes=4, channels=0), Status.BAD_MSG),
    (dict(buffer_bytes=24, period_bytes=6, channels=3), Status.NOT_SUPP),
    (dict(buffer_bytes=16, period_bytes=4, fmt=4), Status.NOT_SUPP),  # U8: defined, not offered
    (dict(buffer_bytes=16, period_bytes=4, fmt=25), Status.BAD_MSG),  # undefined
    (dict(buffer_bytes=16, period_bytes=4, rate=2), Status.NOT_SUPP),  # 11025
    (dict(buffer_bytes=16, period_bytes=4, rate=0), Status.NOT_SUPP),  # 5512
    (dict(buffer_bytes=16, period_bytes=4, rate=14), Status.BAD_MSG),  # undefined in 1.2
    (dict(buffer_bytes=16, period_bytes=4, features=1 << 2), Status.NOT_SUPP),  # MSG_POLLING: not offered
    (dict(buffer_bytes=16, period_bytes=4, features=1 << 5), Status.BAD_MSG),  # undefined
])  # fmt: skip
def test_set_params_validation(params: dict[str, int], status: Status) -> None:
    sound = Sound()
    sound.ok(set_params(IN, 32, 8, channels=1, rate=1))
    before = sound.snd.save()
    got, _, _ = sound.control(set_params(OUT, **params))
    assert Status(got) == status
    after = sound.snd.save()
    if status != Status.OK:
        assert after == before  # nothing changed
        return
    assert after.pcm_state == (PcmState.PARAMS_SET, PcmState.PARAMS_SET)
    assert (after.buffer_bytes[0], after.period_bytes[0]) == (params["buffer_bytes"], params["period_bytes"])
    assert (after.channels[0], after.format[0], after.rate[0]) == (params.get("channels", 2), 5, params.get("rate", 7))
    assert after.buffer_bytes[1] == 32  # the other stream untouched


# -- playback --------------------------------------------------------------------------------------------


def frames(count: int, seed: int, channels: int = 2) -> bytes:
    return bytes((seed * 7 + i) & 0xFF for i in range(2 * channels * count))


def test_playback_completes_each_message_when_its_last_frame_is_played() -> None:
    sound = Sound()
    sound.snd.set_time(5)
    sound.ok(set_params(OUT, 4 * 4800, 4800))
    sound.ok(pcm(Code.PCM_PREPARE, OUT))
    posted = [sound.post_tx(frames(1200, k)) for k in range(3)]  # pre-buffering: 25 ms each at 48 kHz
    sound.at(T0 - 1)
    assert sound.tx.used() == [] and sound.played == [] and sound.snd.next_deadline_ns() is None
    sound.snd.set_time(T0)
    sound.ok(pcm(Code.PCM_START, OUT))
    assert sound.snd.next_deadline_ns() == T0 + 25_000_000  # START saw the head message
    for k, (head, status) in enumerate(posted):
        due = T0 + 25_000_000 * (k + 1)
        sound.at(due - 1)
        assert sound.tx.used() == [] and len(sound.played) == k
        sound.at(due)
        assert sound.tx.used() == [(head, 8)]
        assert sound.status_at(sound.tx, status) == (Status.OK, 0)
        assert sound.played[-1] == (OUT, frames(1200, k), due)
        assert sound.line.level
        assert sound.snd.position_ns(OUT) == due
    assert sound.snd.next_deadline_ns() is None  # nothing left queued


def test_data_split_over_buffers_and_late_servicing_catches_up() -> None:
    sound = Sound()
    sound.start(OUT, rate=1, channels=1, period=160)  # 8 kHz mono: 80 frames, 10 ms
    heads = []
    for k in range(3):
        head, _ = sound.tx.add([struct.pack("<I", OUT), frames(80, k, 1)[:50], frames(80, k, 1)[50:]], [8])
        heads.append(head)
    w(sound.dev, vm.QUEUE_NOTIFY, vs.TX_QUEUE)
    sound.at(T0 + 25_000_000)  # the board comes late: both due messages complete, the third waits
    assert sound.tx.used() == [(heads[0], 8), (heads[1], 8)]
    assert [data for _, data, _ in sound.played] == [frames(80, 0, 1), frames(80, 1, 1)]
    assert sound.snd.next_deadline_ns() == T0 + 30_000_000  # from the clock, not from when it was serviced


@pytest.mark.parametrize("lateness", [0, 7, 999])
def test_positions_never_drift_at_44100(lateness: int) -> None:
    """441 messages of 100 mono frames (2.27 ms, not a whole number of ns) end exactly 1 s after START."""
    sound = Sound()
    sound.start(OUT, rate=6, channels=1, period=200)
    for k in range(4):
        sound.post_tx(frames(100, k, 1), slot=k)
    for k in range(441):
        due = sound.snd.next_deadline_ns()
        assert due == T0 + ceil_ns(100 * (k + 1), 44100)
        sound.at(due + lateness)
        assert [length for _, length in sound.tx.used()] == [8]
        assert sound.played[-1] == (OUT, frames(100, k, 1), due + lateness)
        if k + 4 < 441:
            sound.post_tx(frames(100, k + 4, 1), slot=k + 4)
    assert sound.snd.position_ns(OUT) == T0 + 1_000_000_000 and sound.snd.frames[OUT] == 44100
    assert sound.snd.next_deadline_ns() is None


def test_an_underrun_restarts_the_clock_when_the_next_message_is_seen() -> None:
    sound = Sound()
    sound.start(OUT)
    sound.post_tx(frames(480, 0))  # 10 ms
    sound.at(T0 + 10_000_000)
    assert len(sound.played) == 1 and sound.snd.next_deadline_ns() is None
    late = T0 + 17_000_000  # the guest comes back 7 ms after the stream ran dry
    sound.snd.set_time(late)
    sound.post_tx(frames(480, 1))
    assert sound.snd.next_deadline_ns() == late + 10_000_000
    sound.at(late + 10_000_000)
    assert sound.played[-1][2] == late + 10_000_000


def test_stop_keeps_messages_and_start_resumes_from_its_own_time() -> None:
    sound = Sound()
    sound.start(OUT)
    heads = [sound.post_tx(frames(480, k))[0] for k in range(3)]
    sound.at(T0 + 10_000_000)
    sound.snd.set_time(T0 + 15_000_000)
    sound.ok(pcm(Code.PCM_STOP, OUT))
    assert sound.snd.next_deadline_ns() is None
    sound.at(T0 + 10**10)
    assert sound.tx.used() == [(heads[0], 8)] and len(sound.played) == 1  # the rest stays queued
    restart = T0 + 20_000_000_000
    sound.snd.set_time(restart)
    sound.ok(pcm(Code.PCM_START, OUT))
    assert sound.snd.next_deadline_ns() == restart + 10_000_000  # the whole message, from the new START
    sound.at(restart + 20_000_000)
    assert sound.tx.used() == [(heads[1], 8), (heads[2], 8)]


def test_release_returns_pending_messages_before_it_answers() -> None:
    sound = Sound()
    sound.start(OUT)
    sound.post_tx(frames(480, 0))
    pending = [sound.post_tx(frames(480, k)) for k in (1, 2)]
    sound.at(T0 + 10_000_000)
    sound.ok(pcm(Code.PCM_STOP, OUT))
    sound.tx.used()
    sound.memory.writes.clear()
    sound.ok(pcm(Code.PCM_RELEASE, OUT))
    assert sound.tx.used() == [(head, 8) for head, _ in pending]
    assert [sound.status_at(sound.tx, status) for _, status in pending] == [(Status.OK, 0)] * 2
    assert len(sound.played) == 1  # returned, not played
    tx_used, ctrl_used = sound.tx.layout.used + 2, sound.ctrl.layout.used + 2
    assert sound.memory.writes.index(tx_used) < sound.memory.writes.index(ctrl_used)
    head, status = sound.post_tx(frames(480, 3))  # a released stream takes nothing: returned at once
    assert sound.tx.used() == [(head, 8)] and sound.status_at(sound.tx, status) == (Status.OK, 0)
    assert len(sound.played) == 1 and sound.snd.next_deadline_ns() is None


def test_a_head_rewritten_into_nonsense_ends_the_wait_and_a_dead_queue_reports_no_deadline() -> None:
    sound = Sound()
    sound.start(OUT)
    head, status = sound.post_tx(frames(480, 0))
    assert sound.snd.next_deadline_ns() == T0 + 10_000_000
    sound.tx.poke(status - ((4 + 1920 + 15) & ~15), struct.pack("<I", 7))  # its xfer header: no stream 7
    sound.at(T0 + 1)
    assert sound.tx.used() == [(head, 8)] and sound.snd.next_deadline_ns() is None and sound.played == []
    sound.post_tx(frames(480, 1))
    sound.rx.add([struct.pack("<I", IN)], [])  # malformed: the slot needs a reset, no queue is serviced
    w(sound.dev, vm.QUEUE_NOTIFY, vs.RX_QUEUE)
    assert r(sound.dev, vm.STATUS) & vm.STATUS_NEEDS_RESET
    assert sound.snd.next_deadline_ns() == T0 + 1 + 10_000_000  # the new head started when seen
    sound.at(T0 + 1 + 10_000_000)
    assert sound.played == [] and sound.snd.next_deadline_ns() is None  # stale: never reported for ever


@pytest.mark.parametrize(("readable", "writable", "why"), [
    ([struct.pack("<I", IN) + bytes(8)], [8], "an input stream on the tx queue"),
    ([struct.pack("<I", 2) + bytes(8)], [8], "no stream 2"),
    ([b"\x00\x00"], [8], "a short header"),
    ([struct.pack("<I", OUT) + bytes(6)], [8], "1.5 stereo frames"),
    ([struct.pack("<I", OUT) + bytes(8)], [4, 8], "device-writable frames on the tx queue"),
])  # fmt: skip
def test_malformed_playback_messages_fail_at_once(readable: list[bytes], writable: list[int], why: str) -> None:
    sound = Sound()
    sound.start(OUT)
    head, ins = sound.tx.add(readable, writable)
    w(sound.dev, vm.QUEUE_NOTIFY, vs.TX_QUEUE)
    assert sound.tx.used() == [(head, 8)], why
    assert sound.status_at(sound.tx, ins[-1] + writable[-1] - 8) == (Status.IO_ERR, 0)
    assert sound.played == [] and not r(sound.dev, vm.STATUS) & vm.STATUS_NEEDS_RESET


@pytest.mark.parametrize(("queue", "readable", "writable"), [
    (vs.TX_QUEUE, [struct.pack("<I", OUT) + bytes(8)], [4]),  # no room for the status
    (vs.TX_QUEUE, [struct.pack("<I", OUT) + bytes(8)], []),
    (vs.RX_QUEUE, [struct.pack("<I", IN)], [7]),
    (vs.CONTROL_QUEUE, [pcm(Code.PCM_PREPARE, OUT)], []),
    (vs.CONTROL_QUEUE, [pcm(Code.PCM_PREPARE, OUT)], [3]),
])  # fmt: skip
def test_chains_without_room_for_a_status_need_a_reset(queue: int, readable: list[bytes], writable: list[int]) -> None:
    sound = Sound()
    sound.start(OUT)
    sound.start(IN)
    sound.queues[queue].add(readable, writable)
    w(sound.dev, vm.QUEUE_NOTIFY, queue)
    assert r(sound.dev, vm.STATUS) & vm.STATUS_NEEDS_RESET
    assert r(sound.dev, vm.INTERRUPT_STATUS) & vm.INT_CONFIG_CHANGE


# -- capture ---------------------------------------------------------------------------------------------


def test_capture_fills_each_message_when_its_time_has_passed() -> None:
    sound = Sound()
    posted = [sound.post_rx(320) for _ in range(2)]  # Linux queues capture messages before START
    sound.start(IN, rate=3, channels=1, period=320)  # 16 kHz mono: 160 frames, 10 ms
    assert sound.snd.next_deadline_ns() == T0 + 10_000_000
    for k, (head, data, status) in enumerate(posted):
        due = T0 + 10_000_000 * (k + 1)
        sound.at(due - 1)
        assert sound.rx.used() == []
        sound.at(due)
        assert sound.rx.used() == [(head, 320 + 8)]
        assert sound.captured[-1] == (IN, 320, due)
        assert sound.rx.peek(data, 320) == bytes((k + 1 + i) & 0xFF for i in range(320))
        assert sound.status_at(sound.rx, status) == (Status.OK, 0)
    assert sound.played == []


def test_capture_sizes_follow_the_messages_and_release_returns_them_empty() -> None:
    sound = Sound()
    sound.start(IN, rate=7, channels=2, period=192)
    small, big = sound.post_rx(4), sound.post_rx(1920)  # one frame; 480 frames (10 ms)
    assert sound.snd.next_deadline_ns() == T0 + ceil_ns(1, 48000) == T0 + 20834
    sound.at(T0 + 20834)
    assert sound.rx.used() == [(small[0], 12)] and sound.snd.next_deadline_ns() == T0 + 10_020_834
    sound.at(T0 + 10_020_834)
    assert sound.rx.used() == [(big[0], 1928)]
    assert [(n, t) for _, n, t in sound.captured] == [(4, T0 + 20834), (1920, T0 + 10_020_834)]
    pending = sound.post_rx(1920)
    sound.ok(pcm(Code.PCM_STOP, IN))
    sound.ok(pcm(Code.PCM_RELEASE, IN))
    assert sound.rx.used() == [(pending[0], 8)]  # no frames: the status only
    assert sound.status_at(sound.rx, pending[2]) == (Status.OK, 0) and len(sound.captured) == 2


@pytest.mark.parametrize(("readable", "writable"), [
    ([struct.pack("<I", OUT)], [8, 8]),  # the output stream on the rx queue
    ([struct.pack("<I", IN), bytes(4)], [8, 8]),  # device-readable frames on the rx queue
    ([struct.pack("<I", IN)], [6, 8]),  # 1.5 stereo frames
])  # fmt: skip
def test_malformed_capture_messages_fail_at_once(readable: list[bytes], writable: list[int]) -> None:
    sound = Sound()
    sound.start(IN)
    head, ins = sound.rx.add(readable, writable)
    w(sound.dev, vm.QUEUE_NOTIFY, vs.RX_QUEUE)
    assert sound.rx.used() == [(head, 8)]
    assert sound.status_at(sound.rx, ins[-1]) == (Status.IO_ERR, 0) and sound.captured == []


def test_the_event_queue_is_never_used_and_reset_forgets_the_streams() -> None:
    sound = Sound()
    sound.event.add([], [8])
    w(sound.dev, vm.QUEUE_NOTIFY, vs.EVENT_QUEUE)
    sound.start(OUT)
    sound.post_tx(frames(480, 0))
    sound.at(T0 + 10**10)
    assert sound.event.used() == [] and sound.dev.available(vs.EVENT_QUEUE) == 1
    w(sound.dev, vm.STATUS, 0)
    assert sound.snd.save() == replace(VirtioSnd(print, bytes).save(), now_ns=T0 + 10**10)
    assert sound.snd.next_deadline_ns() is None


# -- state -----------------------------------------------------------------------------------------------


Snapshot = tuple[bytes, vm.VirtioMmioState, VirtioSndState, list[tuple[int, int, list[int], int]]]


def snapshot(sound: Sound) -> Snapshot:
    drivers = [(d.avail_idx, d.last_used, list(d.free), d.data_next) for d in sound.queues]
    return bytes(sound.ram), sound.dev.save(), sound.snd.save(), drivers


def restore(snap: Snapshot) -> Sound:
    sound = Sound()
    ram, dev, snd, drivers = snap
    sound.ram[:] = ram
    sound.dev.load(dev)
    sound.snd.load(decode_fields(VirtioSndState, encode_fields(snd)))
    for driver, (avail_idx, last_used, free, data_next) in zip(sound.queues, drivers, strict=True):
        driver.avail_idx, driver.last_used, driver.free, driver.data_next = avail_idx, last_used, list(free), data_next
    return sound


def future(sound: Sound) -> list[object]:
    """The same steps for any copy: more messages, deadlines, a STOP and START; what the guest sees."""
    seen: list[object] = []
    for k in range(12):
        deadline = sound.snd.next_deadline_ns()
        seen.append(deadline)
        if deadline is None:
            break
        sound.at(deadline)
        if k == 2:
            sound.post_tx(frames(441, 9), slot=9)
            sound.post_rx(882)
        if k == 5:
            sound.ok(pcm(Code.PCM_STOP, OUT))
            sound.snd.set_time(deadline + 12345)
            sound.ok(pcm(Code.PCM_START, OUT))
        seen += [sound.tx.used(), sound.rx.used(), sound.snd.save()]
    return [*seen, sound.played, sound.captured]


def test_save_and_load_mid_stream_give_the_same_future() -> None:
    sound = Sound()
    sound.start(OUT, rate=6, channels=2, period=1764)
    sound.start(IN, now_ns=T0 + 3, rate=6, channels=1, period=882)
    for k in range(5):
        sound.post_tx(frames(441, k), slot=k)
        sound.post_rx(882)
    sound.at(T0 + 15_000_000)  # one of each done, the second under way
    assert len(sound.played) == 1 and len(sound.captured) == 1
    snap = snapshot(sound)
    copy = restore(snap)
    copy.played, copy.captured = list(sound.played), list(sound.captured)
    assert copy.snd.save() == sound.snd.save() and copy.snd.next_deadline_ns() == sound.snd.next_deadline_ns()
    assert future(copy) == future(sound)


def test_state_encoding_and_validation() -> None:
    sound = Sound()
    sound.start(OUT)
    sound.post_tx(frames(480, 0))
    state = sound.snd.save()
    assert state.waiting == (True, False) and state.due_ns == (T0 + 10_000_000, 0)
    check_fields(state)
    assert decode_fields(VirtioSndState, encode_fields(state)) == state
    assert fingerprint(VirtioSndState) == (
        "now_ns:u64;pcm_state:(u8)*2;buffer_bytes:(u32)*2;period_bytes:(u32)*2;channels:(u8)*2;format:(u8)*2;"
        "rate:(u8)*2;start_ns:(u64)*2;frames:(u64)*2;last_ns:(u64)*2;waiting:(bool)*2;due_ns:(u64)*2"
    )  # a change here needs a new VERSION
    bad = [
        replace(state, rate=(2, 0)),  # a rate not offered
        replace(state, channels=(2, 1)),  # parameters before SET_PARAMS
        replace(state, pcm_state=(int(PcmState.STOPPED), 0)),  # waiting while stopped
        replace(state, waiting=(False, False)),  # a deadline for nothing
        replace(state, period_bytes=(4801, 0)),
        replace(state, pcm_state=(6, 0)),
    ]
    for wrong in bad:
        with pytest.raises(FieldError):
            sound.snd.load(wrong)
    assert sound.snd.save() == state


def test_misuse_by_the_board_is_an_error() -> None:
    sound = Sound()
    with pytest.raises(ValueError):
        sound.snd.set_time(-1)
    chain = ChainIO(DescriptorChain(0, (), (Segment(RAM_BASE, 8),)), sound.memory)
    with pytest.raises(VirtqueueError):
        sound.snd.process(4, chain)
    sound.snd._capture = lambda stream, nbytes: bytes(nbytes - 1)
    sound.start(IN)
    sound.post_rx(4)
    with pytest.raises(ValueError, match="capture gave 3 bytes for 4"):
        sound.at(T0 + 10**9)


# -- hostile drivers -------------------------------------------------------------------------------------

CODES = [*map(int, Code), 0, 3, 0x106, 0x201, 0x300, 0x1100, 0x8000, 0xFFFF_FFFF]
OPERATION = st.one_of(
    st.tuples(st.just("ctrl"), st.sampled_from(CODES), st.integers(0, 3), st.sampled_from([0, 4, 6, 8, 4800, 4801]),
              st.sampled_from([0, 2, 4, 1200]), st.integers(0, 3), st.sampled_from([5, 5, 4, 25]),
              st.sampled_from([1, 3, 6, 7, 2, 14]), st.sampled_from([0, 0, 0, 1, 20, 23, 32])),
    st.tuples(st.just("command"), st.sampled_from([*vs.TRANSITIONS, Code.PCM_STOP, Code.PCM_RELEASE] * 2),
              st.sampled_from([OUT, OUT, IN, IN, 2]),
              st.sampled_from(list(vs.RATES)), st.integers(1, 2)),
    st.tuples(st.just("start"), st.sampled_from([OUT, IN]), st.sampled_from(list(vs.RATES)), st.integers(1, 2)),
    st.tuples(st.just("release"), st.sampled_from([OUT, IN])),
    st.tuples(st.just("tx"), st.sampled_from([OUT, OUT, OUT, IN, 2]), st.sampled_from([0, 4, 6, 400, 1764]),
              st.sampled_from([8] * 12 + [12, 4, 0])),
    st.tuples(st.just("rx"), st.sampled_from([IN, IN, IN, OUT, 2]), st.sampled_from([0, 4, 6, 400, 1764]),
              st.sampled_from([8] * 12 + [4, 0])),
    st.tuples(st.just("time"), st.sampled_from([0, 1, 22676, 1_000_000, 10_000_000, 40_000_000, 200_000_000])),
)  # fmt: skip
QUEUE_OF = {"ctrl": 0, "command": 0, "start": 0, "release": 0, "tx": 2, "rx": 3}


def operate(sound: Sound, kind: object, args: list[int]) -> None:
    """One random driver action (with a notify), or nothing when its queue has no free descriptors."""
    if len(sound.queues[QUEUE_OF[str(kind)]].free) < 6:
        return
    if kind == "ctrl":
        code, stream, buffer_bytes, period_bytes, channels, fmt, rate, cut = args
        request = struct.pack("<IIIIIBBBB", code, stream, buffer_bytes, period_bytes, 0, channels, fmt, rate, 0)
        sound.ctrl.add([request[: 24 - cut] or b"\0"], [4 + 32 * (stream % 3)])
    elif kind == "command":
        code, stream, rate, channels = args
        request = command(code, stream)
        if code == Code.PCM_SET_PARAMS:
            request = set_params(stream, 8 * channels, 4 * channels, channels=channels, rate=rate)
        sound.ctrl.add([request], [4])
    elif kind == "start":
        stream, rate, channels = args
        sound.ctrl.add([set_params(stream, 8 * channels, 4 * channels, channels=channels, rate=rate)], [4])
        sound.ctrl.add([pcm(Code.PCM_PREPARE, stream)], [4])
        sound.ctrl.add([pcm(Code.PCM_START, stream)], [4])
    elif kind == "release":
        sound.ctrl.add([pcm(Code.PCM_STOP, args[0])], [4])
        sound.ctrl.add([pcm(Code.PCM_RELEASE, args[0])], [4])
    elif kind == "tx":
        stream, nbytes, status = args
        sound.tx.add([struct.pack("<I", stream) + bytes(nbytes)], [status] if status else [])
    else:
        stream, nbytes, status = args
        sound.rx.add([struct.pack("<I", stream)], [n for n in (nbytes, status) if n])
    w(sound.dev, vm.QUEUE_NOTIFY, QUEUE_OF[str(kind)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPERATION, max_size=40))
def test_random_requests_never_raise(operations: list[tuple[object, ...]]) -> None:
    """Whatever a driver sends, the device answers, waits or needs a reset; it never raises anything else, and its
    state stays valid."""
    sound = Sound()
    now = 0
    for op in operations:
        kind, *args = op
        if kind == "time":
            now += args[0]
            sound.at(now)
        else:
            operate(sound, kind, args)
        for driver in sound.queues:
            driver.used()
        state = sound.snd.save()
        check_fields(state)
        if not r(sound.dev, vm.STATUS) & vm.STATUS_NEEDS_RESET:
            assert all(due > now for due, waiting in zip(state.due_ns, state.waiting, strict=True) if waiting)
        deadline = sound.snd.next_deadline_ns()
        assert deadline is None or deadline > now
    assert decode_fields(VirtioSndState, encode_fields(sound.snd.save())) == sound.snd.save()
    w(sound.dev, vm.STATUS, 0)
    assert sound.snd.save() == replace(VirtioSnd(print, bytes).save(), now_ns=sound.snd.now_ns)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.lists(st.binary(min_size=1, max_size=30), max_size=3),
                  st.lists(st.integers(1, 40), max_size=3), st.integers(0, 10**7)),
        max_size=30,
    )
)  # fmt: skip
def test_process_raises_only_virtqueue_errors(requests: list[tuple[int, list[bytes], list[int], int]]) -> None:
    """Arbitrary chains straight to the backend (no transport): an answer, None or VirtqueueError."""
    ram = bytearray(0x1000)
    memory = BufferMemory(ram, RAM_BASE)
    snd = VirtioSnd(lambda stream, data: None, bytes)
    now = 0
    for queue, readable, writable, delta in requests:
        now += delta
        snd.set_time(now)
        addr, readable_segs, writable_segs = RAM_BASE, [], []
        for data in readable:
            ram[addr - RAM_BASE : addr - RAM_BASE + len(data)] = data
            readable_segs.append(Segment(addr, len(data)))
            addr += len(data)
        for length in writable:
            writable_segs.append(Segment(addr, length))
            addr += length
        chain = DescriptorChain(0, tuple(readable_segs), tuple(writable_segs))
        try:
            used = snd.process(queue, ChainIO(chain, memory))
        except VirtqueueError:
            continue
        assert used is None or 0 <= used <= chain.writable_length
        check_fields(snd.save())
