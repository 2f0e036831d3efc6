"""machine/devices/virtio_mmio.py: one virtio-mmio slot, legacy (QEMU 7.2's default) and modern."""

from __future__ import annotations

import struct
from dataclasses import fields, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machine.devices import virtio_mmio as vm
from machine.devices.virtio_mmio import BackendInfo, LegacyVirtioMmio, VirtioMmio, VirtioMmioState
from machine.devices.virtqueue import (
    VIRTIO_F_VERSION_1,
    VIRTIO_RING_F_EVENT_IDX,
    VIRTIO_RING_F_INDIRECT_DESC,
    VIRTQ_DESC_F_NEXT,
    ChainIO,
    VirtqueueError,
)
from machine.fields import FieldError, check_fields, decode_fields, encode_fields
from tests.unit.test_virtqueue import DESCRIPTOR, RAM_BASE, RAM_SIZE, Driver, TracedMemory, echo

FEATURE_X = 1 << 3  # a device-specific feature bit
RING_FEATURES = VIRTIO_RING_F_INDIRECT_DESC | VIRTIO_RING_F_EVENT_IDX


class EchoBackend:
    """A test device (ID 42): answers each request with its bytes reversed; 8 bytes of config space.

    ``hold`` makes it leave requests on the ring (as a receive queue with nothing to deliver does);
    a request starting with b"BAD" is malformed (VirtqueueError, as a too-short virtio-blk header)."""

    def __init__(self, features: int = FEATURE_X | RING_FEATURES) -> None:
        self.features = features
        self.config = bytearray(b"\x11\x22\x33\x44\x55\x66\x77\x88")
        self.hold = False
        self.seen: list[tuple[int, bytes]] = []
        self.resets = 0

    def info(self) -> BackendInfo:
        return BackendInfo(device_id=42, features=self.features, queue_sizes=(256, 8), config_size=8)

    def read_config(self, offset: int, size: int) -> int:
        return int.from_bytes(self.config[offset : offset + size], "little")

    def write_config(self, offset: int, size: int, value: int) -> None:
        self.config[offset : offset + size] = value.to_bytes(size, "little")

    def process(self, queue: int, request: ChainIO) -> int | None:
        if self.hold:
            return None
        data = request.read()
        if data.startswith(b"BAD"):
            raise VirtqueueError("request too short")
        self.seen.append((queue, data))
        return echo(request)

    def reset(self) -> None:
        self.resets += 1


class Line:
    def __init__(self) -> None:
        self.level = False
        self.changes = 0

    def __call__(self, level: bool) -> None:
        self.level = level
        self.changes += 1


def make(legacy: bool, backend: EchoBackend | None = None) -> tuple[VirtioMmio, Line, TracedMemory, bytearray]:
    ram = bytearray(RAM_SIZE)
    memory = TracedMemory(ram)
    line = Line()
    cls = LegacyVirtioMmio if legacy else VirtioMmio
    return cls(line, memory, EchoBackend() if backend is None else backend), line, memory, ram


def r(dev: VirtioMmio, offset: int) -> int:
    return dev.read(offset, 4)


def w(dev: VirtioMmio, offset: int, value: int) -> None:
    dev.write(offset, 4, value)


def probe(dev: VirtioMmio, features: int) -> None:
    """The driver's handshake up to FEATURES_OK (virtio 1.1 §3.1.1), as Linux's virtio_mmio does."""
    w(dev, vm.STATUS, 0)
    w(dev, vm.STATUS, vm.STATUS_ACKNOWLEDGE)
    w(dev, vm.STATUS, vm.STATUS_ACKNOWLEDGE | vm.STATUS_DRIVER)
    if dev.is_legacy:
        w(dev, vm.GUEST_PAGE_SIZE, 4096)
        w(dev, vm.DRIVER_FEATURES_SEL, 0)
        w(dev, vm.DRIVER_FEATURES, features & 0xFFFF_FFFF)
    else:
        for sel in (0, 1):
            w(dev, vm.DRIVER_FEATURES_SEL, sel)
            w(dev, vm.DRIVER_FEATURES, features >> (32 * sel) & 0xFFFF_FFFF)
        w(dev, vm.STATUS, vm.STATUS_ACKNOWLEDGE | vm.STATUS_DRIVER | vm.STATUS_FEATURES_OK)
        assert r(dev, vm.STATUS) & vm.STATUS_FEATURES_OK


def setup_queue(dev: VirtioMmio, ram: bytearray, queue: int = 0, num: int = 8) -> Driver:
    """Linux's vm_setup_vq: select, check it is unused, size it, place the rings, enable it."""
    driver = Driver(ram, num=num, legacy=dev.is_legacy, ring_base=RAM_BASE + 0x1000 + 0x4000 * queue)
    driver.data_next += 0x4000 * queue
    w(dev, vm.QUEUE_SEL, queue)
    assert r(dev, vm.QUEUE_PFN if dev.is_legacy else vm.QUEUE_READY) == 0
    assert r(dev, vm.QUEUE_NUM_MAX) == 1024
    w(dev, vm.QUEUE_NUM, num)
    if dev.is_legacy:
        w(dev, vm.QUEUE_ALIGN, 4096)
        w(dev, vm.QUEUE_PFN, driver.pfn)
    else:
        lay = driver.layout
        for low, addr in (
            (vm.QUEUE_DESC_LOW, lay.desc),
            (vm.QUEUE_AVAIL_LOW, lay.avail),
            (vm.QUEUE_USED_LOW, lay.used),
        ):
            w(dev, low, addr & 0xFFFF_FFFF)
            w(dev, low + 4, addr >> 32)
        w(dev, vm.QUEUE_READY, 1)
    return driver


def start(dev: VirtioMmio, ram: bytearray, features: int = FEATURE_X) -> Driver:
    probe(dev, features | (0 if dev.is_legacy else VIRTIO_F_VERSION_1))
    driver = setup_queue(dev, ram)
    w(dev, vm.STATUS, r(dev, vm.STATUS) | vm.STATUS_DRIVER_OK)
    driver.event_idx = bool(features & VIRTIO_RING_F_EVENT_IDX)
    return driver


BOTH = pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "modern"])


# -- registers ------------------------------------------------------------------------------------------


@BOTH
def test_identity_registers(legacy: bool) -> None:
    dev, *_ = make(legacy)
    assert r(dev, vm.MAGIC_VALUE) == 0x74726976
    assert r(dev, vm.VERSION) == (1 if legacy else 2)
    assert r(dev, vm.DEVICE_ID) == 42
    assert r(dev, vm.VENDOR_ID) == 0x554D4551
    assert dev.read(vm.MAGIC_VALUE, 8) == 0x74726976 | (1 if legacy else 2) << 32  # two 4-byte accesses
    assert dev.read(vm.MAGIC_VALUE, 2) == 0  # registers are 32-bit only (QEMU: "wrong size access")
    assert dev.peek(vm.DEVICE_ID, 4) == 42


@BOTH
def test_an_empty_slot_reads_device_id_zero(legacy: bool) -> None:
    ram = bytearray(RAM_SIZE)
    cls = LegacyVirtioMmio if legacy else VirtioMmio
    dev = cls(Line(), TracedMemory(ram))
    assert (r(dev, vm.MAGIC_VALUE), r(dev, vm.VERSION), r(dev, vm.VENDOR_ID)) == (0x74726976, dev.version, 0x554D4551)
    assert r(dev, vm.DEVICE_ID) == 0 and r(dev, vm.QUEUE_NUM_MAX) == 0 and r(dev, vm.DEVICE_FEATURES) == 0
    before = dev.save()
    for offset in range(0, 0x100, 4):
        w(dev, offset, 0xFFFF_FFFF)
    assert dev.save() == before
    assert dev.read(vm.CONFIG, 4) == 0xFFFF_FFFF


def test_modern_feature_negotiation_with_selectors() -> None:
    dev, *_ = make(False)
    w(dev, vm.DEVICE_FEATURES_SEL, 0)
    assert r(dev, vm.DEVICE_FEATURES) == FEATURE_X | RING_FEATURES
    w(dev, vm.DEVICE_FEATURES_SEL, 1)
    assert r(dev, vm.DEVICE_FEATURES) == VIRTIO_F_VERSION_1 >> 32
    w(dev, vm.DEVICE_FEATURES_SEL, 2)
    assert r(dev, vm.DEVICE_FEATURES) == 0
    probe(dev, FEATURE_X | VIRTIO_F_VERSION_1 | 1 << 40)  # bit 40 is not offered: dropped
    assert dev.features == FEATURE_X | VIRTIO_F_VERSION_1
    w(dev, vm.DRIVER_FEATURES_SEL, 0)
    w(dev, vm.DRIVER_FEATURES, RING_FEATURES)  # after FEATURES_OK: no effect on the accepted set
    w(dev, vm.STATUS, r(dev, vm.STATUS) | vm.STATUS_DRIVER_OK)
    assert dev.features == FEATURE_X | VIRTIO_F_VERSION_1


def test_modern_device_refuses_features_without_version_1() -> None:
    dev, *_ = make(False)
    w(dev, vm.DRIVER_FEATURES, FEATURE_X)
    w(dev, vm.STATUS, vm.STATUS_ACKNOWLEDGE | vm.STATUS_DRIVER | vm.STATUS_FEATURES_OK)
    assert r(dev, vm.STATUS) == vm.STATUS_ACKNOWLEDGE | vm.STATUS_DRIVER  # FEATURES_OK reads back clear
    assert dev.features == 0


def test_legacy_features_are_32_bits() -> None:
    dev, *_ = make(True)
    assert r(dev, vm.DEVICE_FEATURES) == FEATURE_X | RING_FEATURES  # no VERSION_1
    w(dev, vm.DEVICE_FEATURES_SEL, 1)
    assert r(dev, vm.DEVICE_FEATURES) == 0
    w(dev, vm.DRIVER_FEATURES_SEL, 1)
    w(dev, vm.DRIVER_FEATURES, 0xFFFF_FFFF)  # ignored, as QEMU
    assert dev.features == 0
    w(dev, vm.DRIVER_FEATURES_SEL, 0)
    w(dev, vm.DRIVER_FEATURES, FEATURE_X | 1 << 30)
    assert dev.features == FEATURE_X


@BOTH
def test_version_specific_registers(legacy: bool) -> None:
    dev, _, _, ram = make(legacy)
    start(dev, ram)
    if legacy:
        assert r(dev, vm.QUEUE_PFN) == (RAM_BASE + 0x1000) >> 12
        assert r(dev, vm.QUEUE_READY) == 0 and r(dev, vm.CONFIG_GENERATION) == 0
        w(dev, vm.QUEUE_READY, 0)  # a modern register: ignored
        assert dev.queue_ready[0] is False
    else:
        assert r(dev, vm.QUEUE_READY) == 1 and r(dev, vm.QUEUE_PFN) == 0
        w(dev, vm.QUEUE_PFN, 5)  # a legacy register: ignored
        assert dev.queue_pfn[0] == 0
        assert r(dev, vm.QUEUE_DESC_LOW) == 0  # write-only, as QEMU
    w(dev, vm.QUEUE_SEL, 2)  # a queue the device does not have
    assert r(dev, vm.QUEUE_NUM_MAX) == 0
    w(dev, vm.QUEUE_NUM, 8)
    assert dev.queue_num[2] == 0


@BOTH
def test_config_space_reads_writes_and_generation(legacy: bool) -> None:
    backend = EchoBackend()
    dev, line, _, _ = make(legacy, backend)
    assert dev.read(vm.CONFIG, 4) == 0x44332211
    assert dev.read(vm.CONFIG + 6, 2) == 0x8877 and dev.read(vm.CONFIG + 1, 1) == 0x22
    assert dev.read(vm.CONFIG, 8) == 0x8877665544332211
    assert dev.read(vm.CONFIG + 6, 4) == 0xFFFF_FFFF  # past the end: all ones, as QEMU
    dev.write(vm.CONFIG + 2, 2, 0xBEEF)
    assert backend.config[2:4] == b"\xef\xbe"
    dev.write(vm.CONFIG + 7, 2, 0)  # past the end: ignored
    assert backend.config[7] == 0x88
    dev.config_changed()
    assert r(dev, vm.INTERRUPT_STATUS) == vm.INT_CONFIG_CHANGE and line.level
    assert r(dev, vm.CONFIG_GENERATION) == (0 if legacy else 1)
    w(dev, vm.INTERRUPT_ACK, vm.INT_CONFIG_CHANGE)
    assert not line.level


@BOTH
def test_status_zero_resets_the_device(legacy: bool) -> None:
    backend = EchoBackend()
    dev, line, _, ram = make(legacy, backend)
    driver = start(dev, ram)
    driver.add([b"hi"], [2])
    w(dev, vm.QUEUE_NOTIFY, 0)
    assert line.level
    w(dev, vm.STATUS, 0)
    assert r(dev, vm.STATUS) == 0 and r(dev, vm.INTERRUPT_STATUS) == 0 and not line.level
    assert dev.features == 0 and dev.queue_num[:2] == [256, 8] and dev.last_avail_idx[0] == 0
    assert r(dev, vm.QUEUE_PFN if legacy else vm.QUEUE_READY) == 0
    assert backend.resets == 2  # the probe's reset and this one


def test_legacy_queue_pfn_zero_resets_like_qemu() -> None:
    dev, _, _, ram = make(True)
    start(dev, ram)
    w(dev, vm.QUEUE_PFN, 0)
    assert r(dev, vm.STATUS) == 0


# -- requests -------------------------------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize("indirect", [False, True])
def test_requests_are_processed_on_notify(legacy: bool, indirect: bool) -> None:
    backend = EchoBackend()
    dev, line, memory, ram = make(legacy, backend)
    driver = start(dev, ram, FEATURE_X | (VIRTIO_RING_F_INDIRECT_DESC if indirect else 0))
    heads = [driver.add([b"hello", b" world"], [4, 7], indirect=indirect) for _ in range(2)]
    assert not line.level
    w(dev, vm.QUEUE_NOTIFY, 0)
    assert backend.seen == [(0, b"hello world")] * 2
    assert driver.used() == [(h, 11) for h, _ in heads]
    for _, (a, b) in heads:
        assert driver.peek(a, 4) + driver.peek(b, 7) == b"dlrow olleh"
    assert r(dev, vm.INTERRUPT_STATUS) == vm.INT_USED_BUFFER and line.level
    w(dev, vm.INTERRUPT_ACK, vm.INT_USED_BUFFER)
    assert r(dev, vm.INTERRUPT_STATUS) == 0 and not line.level
    assert not memory.outside


def test_nothing_is_processed_before_driver_ok() -> None:
    backend = EchoBackend()
    dev, line, _, ram = make(True, backend)
    probe(dev, FEATURE_X)
    driver = setup_queue(dev, ram)
    driver.add([b"x"], [1])
    w(dev, vm.QUEUE_NOTIFY, 0)
    assert backend.seen == [] and not line.level
    w(dev, vm.STATUS, r(dev, vm.STATUS) | vm.STATUS_DRIVER_OK)
    w(dev, vm.QUEUE_NOTIFY, 0)
    assert backend.seen == [(0, b"x")]


def test_second_queue_has_its_own_rings() -> None:
    backend = EchoBackend()
    dev, _, _, ram = make(False, backend)
    first = start(dev, ram)
    second = setup_queue(dev, ram, queue=1, num=4)
    second.add([b"q1"], [2])
    first.add([b"q0"], [2])
    w(dev, vm.QUEUE_NOTIFY, 1)
    assert backend.seen == [(1, b"q1")] and second.used() and not first.used()


def test_held_requests_stay_available_until_serviced() -> None:
    backend = EchoBackend()
    dev, line, _, ram = make(False, backend)
    driver = start(dev, ram)
    backend.hold = True
    head, _ = driver.add([b"rx"], [2])
    w(dev, vm.QUEUE_NOTIFY, 0)
    assert driver.used() == [] and not line.level
    backend.hold = False
    dev.service(0)  # e.g. a frame arrived
    assert driver.used() == [(head, 2)] and line.level


def test_event_index_suppresses_interrupts_and_asks_for_kicks() -> None:
    dev, line, _, ram = make(False)
    driver = start(dev, ram, FEATURE_X | VIRTIO_RING_F_EVENT_IDX)
    driver.set_used_event(5)  # interrupt only once the sixth buffer is used
    for round_ in range(3):
        for _ in range(2):
            driver.add([b"x"], [1])
        w(dev, vm.QUEUE_NOTIFY, 0)
        assert driver.avail_event() == driver.avail_idx  # "kick me for the next one"
        assert line.level == (round_ == 2), round_
        driver.used()


def test_no_interrupt_flag_without_event_index() -> None:
    dev, line, _, ram = make(True)
    driver = start(dev, ram)
    driver.set_avail_flags(1)
    driver.add([b"x"], [1])
    w(dev, vm.QUEUE_NOTIFY, 0)
    assert driver.used() and not line.level


# -- malformed queues -----------------------------------------------------------------------------------


def needs_reset(dev: VirtioMmio, line: Line) -> bool:
    status, isr = r(dev, vm.STATUS), r(dev, vm.INTERRUPT_STATUS)
    return bool(status & vm.STATUS_NEEDS_RESET) and bool(isr & vm.INT_CONFIG_CHANGE) and line.level


@BOTH
def test_a_malformed_chain_needs_a_reset(legacy: bool) -> None:
    backend = EchoBackend()
    dev, line, memory, ram = make(legacy, backend)
    driver = start(dev, ram)
    good, _ = driver.add([b"ok"], [2])
    driver.write_desc(driver.layout.desc, 7, RAM_BASE, 4, VIRTQ_DESC_F_NEXT, 7)  # a loop
    driver.publish(7)
    w(dev, vm.QUEUE_NOTIFY, 0)
    assert needs_reset(dev, line)
    assert driver.used() == [(good, 2)]  # what came before the bad chain was completed
    assert r(dev, vm.INTERRUPT_STATUS) == vm.INT_CONFIG_CHANGE | vm.INT_USED_BUFFER
    w(dev, vm.STATUS, r(dev, vm.STATUS) & ~vm.STATUS_NEEDS_RESET)  # the driver cannot clear it
    assert r(dev, vm.STATUS) & vm.STATUS_NEEDS_RESET
    driver.add([b"later"], [5])
    w(dev, vm.QUEUE_NOTIFY, 0)
    assert backend.seen == [(0, b"ok")]  # idle until reset
    w(dev, vm.STATUS, 0)
    assert r(dev, vm.STATUS) == 0 and not line.level
    assert not memory.outside


def test_a_request_the_backend_finds_malformed_needs_a_reset() -> None:
    dev, line, _, ram = make(False)
    driver = start(dev, ram)
    driver.add([b"BAD"], [1])
    w(dev, vm.QUEUE_NOTIFY, 0)
    assert needs_reset(dev, line) and driver.used() == []


def test_rings_outside_ram_need_a_reset() -> None:
    dev, line, memory, ram = make(True)
    probe(dev, 0)
    w(dev, vm.QUEUE_NUM, 1024)
    w(dev, vm.QUEUE_PFN, (RAM_BASE + RAM_SIZE - 0x1000) >> 12)
    w(dev, vm.STATUS, r(dev, vm.STATUS) | vm.STATUS_DRIVER_OK)
    w(dev, vm.QUEUE_NOTIFY, 0)
    assert needs_reset(dev, line) and not memory.outside


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.booleans(),
    st.lists(DESCRIPTOR, min_size=8, max_size=8),
    st.lists(st.integers(0, 12), min_size=8, max_size=8),
    st.integers(0, 0xFFFF),
    st.integers(0, 3),
    st.lists(st.tuples(st.integers(0, 0xFF) | st.just(0x100 - 4), st.integers(0, 0xFFFF_FFFF)), max_size=6),
)
def test_random_rings_and_register_writes_never_raise(
    legacy: bool,
    descs: list[tuple[int, int, int, int]],
    heads: list[int],
    avail_idx: int,
    features: int,
    writes: list[tuple[int, int]],
) -> None:
    """Whatever a guest writes in its rings and registers: no exception, no access outside RAM, and a
    notification either completes requests or leaves the device needing a reset."""
    dev, line, memory, ram = make(legacy)
    driver = start(
        dev, ram, FEATURE_X | [0, VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_RING_F_EVENT_IDX, RING_FEATURES][features]
    )
    for i, (addr, length, flags, nxt) in enumerate(descs):
        driver.write_desc(driver.layout.desc, i, addr, length, flags, nxt)
    for i, head in enumerate(heads):
        driver.poke(driver.layout.avail + 4 + 2 * i, struct.pack("<H", head))
    driver.poke(driver.layout.avail + 2, struct.pack("<H", avail_idx))
    for offset, value in writes:
        w(dev, offset & ~3, value)
    w(dev, vm.QUEUE_NOTIFY, 0)
    check_fields(dev.save())
    assert not memory.outside
    if dev.status & vm.STATUS_NEEDS_RESET:
        assert needs_reset(dev, line)


# -- state ----------------------------------------------------------------------------------------------


@BOTH
def test_public_attributes_are_the_saved_state(legacy: bool) -> None:
    """The generic rule of tests/unit/test_state.py: public attributes are state fields, private ones wiring."""
    for dev in (make(legacy)[0], (LegacyVirtioMmio if legacy else VirtioMmio)(Line(), TracedMemory(bytearray(16)))):
        assert {k for k in vars(dev) if not k.startswith("_")} == {f.name for f in fields(VirtioMmioState)}
        assert all(callable(v) for k, v in vars(dev).items() if k.startswith("_"))
        assert type(dev.save()) is dev.state_type


@BOTH
def test_save_load_mid_stream_continues_identically(legacy: bool) -> None:
    backend = EchoBackend()
    dev, line, _, ram = make(legacy, backend)
    driver = start(dev, ram, FEATURE_X | RING_FEATURES)
    for i in range(5):
        driver.add([bytes([i]) * 3], [3], indirect=i % 2 == 1)
    w(dev, vm.QUEUE_NOTIFY, 0)
    driver.used()
    driver.add([b"pending"], [7])
    saved, saved_ram, saved_level = dev.save(), bytes(ram), line.level
    state = decode_fields(VirtioMmioState, encode_fields(saved))
    assert state == saved

    def continue_from(target: VirtioMmio, target_line: Line) -> tuple[object, ...]:
        target_driver = Driver(target_ram, num=8, legacy=legacy)
        target_driver.avail_idx, target_driver.last_used = driver.avail_idx, driver.last_used
        target_driver.data_next = driver.data_next
        target_driver.free = list(driver.free)
        target_driver.add([b"after"], [5])
        w(target, vm.QUEUE_NOTIFY, 0)
        return target.save(), bytes(target_ram), target_line.level, target_driver.used()

    target_ram = ram
    expected = continue_from(dev, line)
    copy, copy_line, _, target_ram = make(legacy)
    target_ram[:] = saved_ram
    copy.load(state)
    copy_line.level = saved_level  # line levels are the board's state (Device.load does not drive them)
    assert copy.save() == saved
    assert continue_from(copy, copy_line) == expected


def test_load_refuses_invalid_states() -> None:
    dev, *_ = make(False)
    good = dev.save()
    for bad in (replace(good, interrupt_status=4), replace(good, queue_num=(2048,) * 8),
                replace(good, queue_ready=(True,) * 7), replace(good, queue_sel=1024)):  # fmt: skip
        with pytest.raises(FieldError):
            dev.load(bad)
    assert dev.save() == good
    with pytest.raises(FieldError):
        dev.load(object())  # type: ignore[arg-type]


def test_backends_with_too_many_queues_are_refused() -> None:
    class Wide(EchoBackend):
        def info(self) -> BackendInfo:
            return BackendInfo(1, 0, (8,) * 9, 0)

    with pytest.raises(ValueError, match="queue sizes"):
        VirtioMmio(Line(), TracedMemory(bytearray(16)), Wide())
