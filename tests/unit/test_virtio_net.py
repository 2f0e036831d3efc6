"""machine/devices/virtio_net.py: virtio-net as QEMU 7.2's virtio-net-device on a user network, driven through
the virtio-mmio transport by the driver-side helpers of the transport's and virtqueue's tests."""

from __future__ import annotations

import struct

import pytest

from machine.devices import virtio_mmio as vm
from machine.devices import virtio_net as vn
from machine.devices.virtio_mmio import LegacyVirtioMmio, VirtioMmio
from machine.devices.virtio_net import VirtioNet
from machine.devices.virtqueue import VIRTIO_F_VERSION_1
from tests.unit.test_virtio_mmio import BOTH, Line, probe, r, setup_queue, w
from tests.unit.test_virtqueue import RAM_SIZE, Driver, TracedMemory

FRAME = bytes.fromhex("ffffffffffff525400123456" "0806") + bytes(range(46))  # a 60-byte broadcast frame


class Net:
    """A transport slot with a VirtioNet; frames it transmits are collected in ``sent``."""

    def __init__(self, legacy: bool, features: int) -> None:
        self.ram = bytearray(RAM_SIZE)
        self.line = Line()
        self.sent: list[bytes] = []
        self.net = VirtioNet(self.sent.append, legacy=legacy)
        cls = LegacyVirtioMmio if legacy else VirtioMmio
        self.dev = cls(self.line, TracedMemory(self.ram), self.net)
        self.net.accepted_features(lambda: self.dev.features)
        probe(self.dev, features | (0 if legacy else VIRTIO_F_VERSION_1))
        self.rx: Driver = setup_queue(self.dev, self.ram, queue=vn.RX_QUEUE)
        self.tx: Driver = setup_queue(self.dev, self.ram, queue=vn.TX_QUEUE)
        self.ctrl: Driver = setup_queue(self.dev, self.ram, queue=vn.CTRL_QUEUE)
        w(self.dev, vm.STATUS, r(self.dev, vm.STATUS) | vm.STATUS_DRIVER_OK)

    def header(self) -> bytes:
        return bytes(self.net.header_size)


@BOTH
def test_identity_features_and_config(legacy: bool) -> None:
    net = Net(legacy, vn.VIRTIO_NET_F_MAC)
    assert r(net.dev, vm.DEVICE_ID) == vn.VIRTIO_ID_NET
    words = []
    for sel in (0, 1):
        w(net.dev, vm.DEVICE_FEATURES_SEL, sel)
        words.append(r(net.dev, vm.DEVICE_FEATURES))
    assert words == ([0x39BF8064, 0] if legacy else [0x30BF8024, 0x101])  # QEMU 7.2 (netping.c)
    config = bytes(net.dev.read(vm.CONFIG + i, 1) for i in range(8))
    assert config[:6] == vn.DEFAULT_MAC and struct.unpack("<H", config[6:])[0] == vn.VIRTIO_NET_S_LINK_UP
    assert net.dev.read(vm.CONFIG + 8, 1) == 0xFF  # past the config space QEMU sizes for MAC and STATUS


@pytest.mark.parametrize(("legacy", "features", "size"), [
    (True, vn.VIRTIO_NET_F_MAC, 10), (True, vn.VIRTIO_NET_F_MAC | vn.VIRTIO_NET_F_MRG_RXBUF, 12),
    (False, vn.VIRTIO_NET_F_MAC, 12),
])  # fmt: skip
def test_transmit_and_receive_with_the_header_of_the_features(legacy: bool, features: int, size: int) -> None:
    net = Net(legacy, features)
    assert net.net.header_size == size
    head, _ = net.tx.add([bytes(size) + FRAME], [])
    w(net.dev, vm.QUEUE_NOTIFY, vn.TX_QUEUE)
    assert net.sent == [FRAME] and net.tx.used() == [(head, 0)]
    heads = [net.rx.add([], [1526 + size])[0] for _ in range(2)]
    assert net.dev.available(vn.RX_QUEUE) == 2
    net.net.deliver([FRAME, FRAME[::-1]])
    net.dev.service(vn.RX_QUEUE)
    assert net.net.pending_frames() == 0 and net.dev.available(vn.RX_QUEUE) == 0
    used = net.rx.used()
    assert used == [(heads[0], size + len(FRAME)), (heads[1], size + len(FRAME))]
    assert net.line.level  # the guest is told


@BOTH
def test_received_frames_say_one_buffer_and_a_frame_too_large_is_dropped(legacy: bool) -> None:
    net = Net(legacy, vn.VIRTIO_NET_F_MAC | vn.VIRTIO_NET_F_MRG_RXBUF)
    _, (big,) = net.rx.add([], [2048])
    _, (small,) = net.rx.add([], [32])
    net.rx.poke(small, b"\xee" * 32)
    net.net.deliver([FRAME, FRAME])
    net.dev.service(vn.RX_QUEUE)
    assert net.rx.peek(big, 12 + len(FRAME)) == bytes(10) + struct.pack("<H", 1) + FRAME
    assert [length for _, length in net.rx.used()] == [12 + len(FRAME), 12]  # the second: header only
    assert net.rx.peek(small, 12) == bytes(10) + struct.pack("<H", 1)


@BOTH
def test_control_commands_are_acknowledged(legacy: bool) -> None:
    net = Net(legacy, vn.VIRTIO_NET_F_MAC | vn.VIRTIO_NET_F_CTRL_VQ | vn.VIRTIO_NET_F_CTRL_RX)
    head, (ack,) = net.ctrl.add([bytes([0, 0]), bytes([1])], [1])  # VIRTIO_NET_CTRL_RX_PROMISC on
    net.ctrl.poke(ack, b"\xee")
    w(net.dev, vm.QUEUE_NOTIFY, vn.CTRL_QUEUE)
    assert net.ctrl.used() == [(head, 1)] and net.ctrl.peek(ack, 1) == bytes([vn.VIRTIO_NET_OK])


@BOTH
def test_a_malformed_transmit_chain_needs_reset_and_sends_nothing(legacy: bool) -> None:
    net = Net(legacy, vn.VIRTIO_NET_F_MAC)
    net.tx.add([bytes(vn.MAX_FRAME + 64)], [])
    w(net.dev, vm.QUEUE_NOTIFY, vn.TX_QUEUE)
    assert net.sent == [] and r(net.dev, vm.STATUS) & vm.STATUS_NEEDS_RESET


def test_a_deferred_slot_transmits_only_when_completed() -> None:
    """On the board notifies wait for their completion event (blkreplay's and filter-replay's icount)."""
    ram = bytearray(RAM_SIZE)
    sent: list[bytes] = []
    notified: list[int] = []
    net = VirtioNet(sent.append, legacy=True)
    dev = LegacyVirtioMmio(Line(), TracedMemory(ram), net, on_notify=lambda: notified.append(1))
    net.accepted_features(lambda: dev.features)
    probe(dev, vn.VIRTIO_NET_F_MAC)
    setup_queue(dev, ram, queue=vn.RX_QUEUE)
    tx = setup_queue(dev, ram, queue=vn.TX_QUEUE)
    w(dev, vm.STATUS, r(dev, vm.STATUS) | vm.STATUS_DRIVER_OK)
    tx.add([bytes(10) + FRAME], [])
    w(dev, vm.QUEUE_NOTIFY, vn.TX_QUEUE)
    assert notified == [1] and sent == [] and dev.notified == 1 << vn.TX_QUEUE
    dev.complete()
    assert sent == [FRAME] and dev.notified == 0


def test_ram_size_is_enough_for_the_queues() -> None:
    assert RAM_SIZE >= 0x1000 + 0x4000 * 3 + 0x20000


def test_without_mergeable_buffers_the_modern_header_keeps_the_guests_last_two_bytes() -> None:
    """QEMU writes num_buffers only with MRG_RXBUF: a modern driver without it finds its own bytes there."""
    net = Net(False, vn.VIRTIO_NET_F_MAC)
    _, (buf,) = net.rx.add([], [1526 + 12])
    net.rx.poke(buf, b"\xee" * 16)
    net.net.deliver([FRAME])
    net.dev.service(vn.RX_QUEUE)
    assert net.rx.peek(buf, 12 + len(FRAME)) == bytes(10) + b"\xee\xee" + FRAME
    assert [length for _, length in net.rx.used()] == [12 + len(FRAME)]
