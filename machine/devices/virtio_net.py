"""virtio-net (virtio 1.1 §5.1) behind a virtio-mmio slot: QEMU 7.2's ``virtio-net-device`` on a user network.

A :class:`VirtioNet` is the :class:`~.virtio_mmio.VirtioBackend` of one slot. Queue 0 receives, queue 1
transmits, queue 2 is the control queue. What it offers follows QEMU 7.2 with a ``-netdev user`` peer (no
vnet-header offloads: QEMU drops every checksum and segmentation feature when the peer has no vnet header):
the MAC address (QEMU's default 52:54:00:12:34:56), link status (always up), mergeable receive buffers, and
the control queue with its receive-mode, VLAN and MAC-table commands (all acknowledged, nothing filtered:
the user network only ever sends the guest frames meant for it).

The header before every frame is 10 bytes (``struct virtio_net_hdr``), or 12 with ``num_buffers`` when the
driver accepted VIRTIO_F_VERSION_1 or VIRTIO_NET_F_MRG_RXBUF. Transmitted frames go to ``transmit`` (the
board hands them to the network backend, live, or drops them, in a replay). Frames for the guest are given to
:meth:`VirtioNet.deliver` one per available receive chain (the board asks the input source for at most as
many as the guest has posted buffers, so none waits inside the device between instructions): each is
written with its header into one chain (``num_buffers`` 1); a frame too large for its chain is dropped, as
QEMU drops what it cannot place.

State: none of its own besides the transport's (the MAC is configuration, the link is always up, the control
queue's settings filter nothing): :meth:`save` returns :class:`VirtioNetState` (empty, versioned) so the
board saves every backend alike.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from .virtio_mmio import BackendInfo
from .virtqueue import VIRTIO_F_VERSION_1, ChainIO, VirtqueueError, offered_features

log = logging.getLogger(__name__)

VIRTIO_ID_NET = 1
VIRTIO_NET_F_CTRL_GUEST_OFFLOADS = 1 << 2
VIRTIO_NET_F_GSO = 1 << 6  # (legacy only)
VIRTIO_NET_F_MAC = 1 << 5
VIRTIO_NET_F_MRG_RXBUF = 1 << 15
VIRTIO_NET_F_STATUS = 1 << 16
VIRTIO_NET_F_CTRL_VQ = 1 << 17
VIRTIO_NET_F_CTRL_RX = 1 << 18
VIRTIO_NET_F_CTRL_VLAN = 1 << 19
VIRTIO_NET_F_CTRL_RX_EXTRA = 1 << 20
VIRTIO_NET_F_GUEST_ANNOUNCE = 1 << 21
VIRTIO_NET_F_CTRL_MAC_ADDR = 1 << 23
NET_FEATURES = (
    VIRTIO_NET_F_CTRL_GUEST_OFFLOADS | VIRTIO_NET_F_MAC | VIRTIO_NET_F_MRG_RXBUF | VIRTIO_NET_F_STATUS
    | VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_CTRL_RX | VIRTIO_NET_F_CTRL_VLAN | VIRTIO_NET_F_CTRL_RX_EXTRA
    | VIRTIO_NET_F_GUEST_ANNOUNCE | VIRTIO_NET_F_CTRL_MAC_ADDR
)  # fmt: skip
"""QEMU 7.2's virtio-net features with a ``-netdev user`` peer, on both interfaces (measured with
tests/guests/riscv/netping.c: legacy 0x39bf8064, modern 0x30bf8024 and 0x101)."""
LEGACY_FEATURES = offered_features(NET_FEATURES | VIRTIO_NET_F_GSO, legacy=True)
MODERN_FEATURES = offered_features(NET_FEATURES, legacy=False)
VIRTIO_NET_S_LINK_UP = 1
DEFAULT_MAC = bytes.fromhex("525400123456")
RX_QUEUE, TX_QUEUE, CTRL_QUEUE = 0, 1, 2
QUEUE_SIZE = 256  # QEMU's rx_queue_size and tx_queue_size
CTRL_QUEUE_SIZE = 64
CONFIG_SIZE = 8  # mac[6], status: QEMU sizes the config space by the features offered (MAC, STATUS)
MAX_FRAME = 65535 + 14  # a transmitted frame longer than this is malformed (QEMU: VIRTIO_NET_MAX_BUFSIZE)
VIRTIO_NET_OK, VIRTIO_NET_ERR = 0, 1
_HDR = struct.Struct("<BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
_NUM_BUFFERS = struct.Struct("<H")


@dataclass(frozen=True, slots=True)
class VirtioNetState:
    """Nothing: virtio-net's state lives in its transport (see the module docstring)."""

    VERSION: ClassVar[int] = 1


class VirtioNet:
    """virtio-net; ``legacy`` says which interface the transport presents (the features differ, as on QEMU);
    frames the guest sends go to ``transmit``."""

    def __init__(self, transmit: Callable[[bytes], None], *, legacy: bool, mac: bytes = DEFAULT_MAC) -> None:
        if len(mac) != 6:
            raise ValueError("a MAC address has 6 bytes")
        self._transmit = transmit
        self.mac = mac
        self._features: Callable[[], int] = lambda: 0  # what the driver accepted (set by the board)
        self._rx: list[bytes] = []  # frames being delivered (empty between instructions)
        features = LEGACY_FEATURES if legacy else MODERN_FEATURES
        self._info = BackendInfo(VIRTIO_ID_NET, features, (QUEUE_SIZE, QUEUE_SIZE, CTRL_QUEUE_SIZE), CONFIG_SIZE)

    def accepted_features(self, features: Callable[[], int]) -> None:
        """Where to read the features the driver accepted (the transport's register)."""
        self._features = features

    # -- VirtioBackend -----------------------------------------------------------------------------------
    def info(self) -> BackendInfo:
        return self._info

    def read_config(self, offset: int, size: int) -> int:
        config = self.mac + struct.pack("<H", VIRTIO_NET_S_LINK_UP)
        return int.from_bytes(config[offset : offset + size], "little")

    def write_config(self, offset: int, size: int, value: int) -> None:
        """Legacy drivers may write the MAC; QEMU ignores it without CTRL_MAC_ADDR's command (so do we)."""

    def reset(self) -> None:
        self._rx.clear()

    def process(self, queue: int, request: ChainIO) -> int | None:
        if queue == TX_QUEUE:
            return self._send(request)
        if queue == RX_QUEUE:
            return self._receive(request)
        if queue == CTRL_QUEUE:
            return self._control(request)
        raise VirtqueueError(f"virtio-net has no queue {queue}")

    # -- frames ------------------------------------------------------------------------------------------
    @property
    def header_size(self) -> int:
        """10 bytes, or 12 with ``num_buffers`` (VERSION_1 or MRG_RXBUF accepted)."""
        features = self._features()
        return _HDR.size + (2 if features & (VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MRG_RXBUF) else 0)

    def _send(self, request: ChainIO) -> int:
        length = request.chain.readable_length
        if length > MAX_FRAME + self.header_size:
            raise VirtqueueError(f"a transmitted frame of {length} bytes")
        frame = request.read(self.header_size)
        if frame:
            self._transmit(frame)
        return 0

    def deliver(self, frames: list[bytes]) -> None:
        """Frames for the guest, to be written into the next available receive chains (see the module)."""
        self._rx.extend(frames)

    def _receive(self, request: ChainIO) -> int | None:
        if not self._rx:
            return None
        frame = self._rx.pop(0)
        size = self.header_size
        # As QEMU: an all-zero header; num_buffers (1) only with mergeable buffers, else those 2 bytes of a
        # 12-byte header are left as the guest had them.
        header = _HDR.pack(0, 0, 0, 0, 0, 0)
        if self._features() & VIRTIO_NET_F_MRG_RXBUF:
            header += _NUM_BUFFERS.pack(1)
        if size + len(frame) > request.chain.writable_length:
            log.info("virtio-net: a %d-byte frame does not fit a %d-byte receive buffer: dropped", len(frame),
                     request.chain.writable_length)  # fmt: skip
            request.write(header)
            return size  # the chain is used (QEMU: the buffer is consumed) with no frame
        request.write(header)
        request.write(frame, size)
        return size + len(frame)

    def _control(self, request: ChainIO) -> int:
        """Every command is acknowledged (``VIRTIO_NET_OK`` in the last writable byte)."""
        if request.chain.readable_length < 2 or request.chain.writable_length < 1:
            raise VirtqueueError("a control request without its class/command or its ack byte")
        request.write(bytes([VIRTIO_NET_OK]), request.chain.writable_length - 1)
        return 1

    def pending_frames(self) -> int:
        """Frames given to :meth:`deliver` not yet written (0 between instructions)."""
        return len(self._rx)

    def save(self) -> VirtioNetState:
        return VirtioNetState()
