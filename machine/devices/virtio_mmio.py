"""One virtio-mmio transport slot (QEMU's ``virtio-mmio``, virtio 1.1 §4.2), legacy or modern.

QEMU 7.2's ``virt`` board has eight slots at ``0x10001000 + i * 0x1000`` on PLIC sources 1..8. It presents
the legacy interface (Version 1: GuestPageSize, QueuePFN, QueueAlign) unless run with
``-global virtio-mmio.force-legacy=false`` (Version 2: QueueDesc/Driver/Device Low/High, QueueReady,
ConfigGeneration; the device then offers VIRTIO_F_VERSION_1). :class:`LegacyVirtioMmio` is the first,
:class:`VirtioMmio` the second. A slot without a backend is QEMU's empty slot: Magic, Version and VendorID
read as usual, DeviceID and everything else 0, writes ignored.

The device behind the transport is a :class:`VirtioBackend`. Queue notifications are processed at once,
synchronously (the write to QueueNotify happens at an exact icount): every available chain is handed to
the backend and returned on the used ring. A malformed ring or chain sets DEVICE_NEEDS_RESET and raises a
configuration-change interrupt (§2.1.2), and the queues stay idle until the driver resets the device.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

from ..fields import Bool, Int, Tuple, spec
from .base import IrqLine, checked
from .virtqueue import (
    QUEUE_SIZE_MAX,
    VIRTIO_F_VERSION_1,
    VIRTIO_RING_F_EVENT_IDX,
    VIRTIO_RING_F_INDIRECT_DESC,
    ChainIO,
    GuestMemory,
    GuestMemoryError,
    RingLayout,
    Virtqueue,
    VirtqueueError,
)

log = logging.getLogger(__name__)

MAGIC = 0x74726976  # "virt"
VENDOR_QEMU = 0x554D4551  # "QEMU"
MAX_QUEUES = 8  # queues one slot keeps state for (virtio-blk uses 1, virtio-net 2 or 3)
QUEUE_SEL_MAX = 1023  # QEMU ignores QueueSel writes of VIRTIO_QUEUE_MAX (1024) and more
LEGACY_ALIGN = 4096  # QEMU's default QueueAlign (VIRTIO_PCI_VRING_ALIGN)

# Register offsets (Linux include/uapi/linux/virtio_mmio.h)
MAGIC_VALUE, VERSION, DEVICE_ID, VENDOR_ID = 0x000, 0x004, 0x008, 0x00C
DEVICE_FEATURES, DEVICE_FEATURES_SEL = 0x010, 0x014
DRIVER_FEATURES, DRIVER_FEATURES_SEL = 0x020, 0x024
GUEST_PAGE_SIZE = 0x028  # legacy
QUEUE_SEL, QUEUE_NUM_MAX, QUEUE_NUM = 0x030, 0x034, 0x038
QUEUE_ALIGN, QUEUE_PFN = 0x03C, 0x040  # legacy
QUEUE_READY = 0x044  # modern
QUEUE_NOTIFY = 0x050
INTERRUPT_STATUS, INTERRUPT_ACK = 0x060, 0x064
STATUS = 0x070
QUEUE_DESC_LOW, QUEUE_DESC_HIGH = 0x080, 0x084
QUEUE_AVAIL_LOW, QUEUE_AVAIL_HIGH = 0x090, 0x094  # "QueueDriver"
QUEUE_USED_LOW, QUEUE_USED_HIGH = 0x0A0, 0x0A4  # "QueueDevice"
SHM_LEN_LOW, SHM_LEN_HIGH = 0x0B0, 0x0B4
CONFIG_GENERATION = 0x0FC
CONFIG = 0x100

# Status bits (§2.1) and InterruptStatus bits (§4.2.2)
STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_DRIVER_OK, STATUS_FEATURES_OK = 1, 2, 4, 8
STATUS_NEEDS_RESET, STATUS_FAILED = 0x40, 0x80
INT_USED_BUFFER, INT_CONFIG_CHANGE = 1, 2

_U64 = Int(64)


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """What a virtio device is, fixed for its lifetime.

    ``features``: the device's feature bits (ring features included: QEMU offers
    ``virtqueue.QEMU_COMMON_FEATURES``; the modern transport adds VIRTIO_F_VERSION_1 itself, as QEMU does).
    ``queue_sizes``: the default QueueNum of each queue (QEMU's ``queue-size``, 256 for virtio-blk); their
    count is the number of queues (at most MAX_QUEUES). ``config_size``: bytes of device configuration space.
    """

    device_id: int
    features: int
    queue_sizes: tuple[int, ...]
    config_size: int


class VirtioBackend(Protocol):
    """The device behind a transport (virtio-blk, virtio-net, ...): its identity, configuration space and
    requests. It keeps no queue state (the transport saves that); any state of its own (a disk's written
    sectors) it saves itself."""

    def info(self) -> BackendInfo: ...

    def read_config(self, offset: int, size: int) -> int:
        """Read configuration space (``offset + size <= config_size``); must not change any state."""
        ...

    def write_config(self, offset: int, size: int, value: int) -> None: ...

    def process(self, queue: int, request: ChainIO) -> int | None:
        """Carry out one request from ``queue``; return the bytes written into its writable buffers (the used
        element's ``len``), or None to leave it available for later (e.g. a receive queue with nothing to
        deliver: :meth:`VirtioMmio.service` retries). Raise VirtqueueError for a malformed request."""
        ...

    def reset(self) -> None:
        """The driver reset the device (Status 0)."""
        ...


@dataclass(frozen=True, slots=True)
class VirtioMmioState:
    """Every transport register and, per queue, its configuration and ring indices.

    ``driver_features`` holds what the driver wrote (both 32-bit words); ``features`` what was accepted
    (legacy: on write; modern: when FEATURES_OK was set). Queue addresses: ``queue_desc``/``avail``/``used``
    (modern) or ``queue_pfn``/``queue_align`` with ``guest_page_shift`` (legacy).
    """

    VERSION: ClassVar[int] = 1
    status: int = spec(Int(8))
    device_features_sel: int = spec(Int(32))
    driver_features_sel: int = spec(Int(32))
    driver_features: int = spec(_U64)
    features: int = spec(_U64)
    guest_page_shift: int = spec(Int(8, maximum=31))
    queue_sel: int = spec(Int(16, maximum=QUEUE_SEL_MAX))
    interrupt_status: int = spec(Int(8, mask=INT_USED_BUFFER | INT_CONFIG_CHANGE))
    config_generation: int = spec(Int(32))
    notified: int = spec(Int(MAX_QUEUES))  # queues notified and not yet serviced (deferred completion)
    queue_num: tuple[int, ...] = spec(Tuple(MAX_QUEUES, Int(16, maximum=QUEUE_SIZE_MAX)))
    queue_ready: tuple[bool, ...] = spec(Tuple(MAX_QUEUES, Bool()))
    queue_desc: tuple[int, ...] = spec(Tuple(MAX_QUEUES, _U64))
    queue_avail: tuple[int, ...] = spec(Tuple(MAX_QUEUES, _U64))
    queue_used: tuple[int, ...] = spec(Tuple(MAX_QUEUES, _U64))
    queue_pfn: tuple[int, ...] = spec(Tuple(MAX_QUEUES, Int(32)))
    queue_align: tuple[int, ...] = spec(Tuple(MAX_QUEUES, Int(32)))
    last_avail_idx: tuple[int, ...] = spec(Tuple(MAX_QUEUES, Int(16)))
    used_idx: tuple[int, ...] = spec(Tuple(MAX_QUEUES, Int(16)))


_EMPTY_INFO = BackendInfo(device_id=0, features=0, queue_sizes=(), config_size=0)
_QUEUE_FIELDS = ("queue_num", "queue_ready", "queue_desc", "queue_avail", "queue_used", "queue_pfn",
                 "queue_align", "last_avail_idx", "used_idx")  # fmt: skip
_SCALAR_FIELDS = ("status", "device_features_sel", "driver_features_sel", "driver_features", "features",
                  "guest_page_shift", "queue_sel", "interrupt_status", "config_generation", "notified")  # fmt: skip


class VirtioMmio:
    """A modern (Version 2) virtio-mmio slot; ``backend`` None is an empty slot.

    ``memory`` is guest RAM as the device reaches it (DMA); ``irq`` the slot's interrupt line, asserted
    while InterruptStatus is not 0. Only bound methods of ``memory`` and ``backend`` are kept (wiring).

    With ``on_notify`` a QueueNotify only marks its queue (``notified``) and calls ``on_notify()``: the
    requests are carried out, and their used entries and interrupt appear, when the board calls
    :meth:`complete` (QEMU's blkreplay: completion is an event at a logged icount). Without it a notify
    services the queue at once.
    """

    name = "virtio-mmio"
    size = 0x200
    access_size = 4
    state_type = VirtioMmioState
    version: ClassVar[int] = 2

    def __init__(self, irq: IrqLine, memory: GuestMemory, backend: VirtioBackend | None = None,
                 on_notify: Callable[[], None] | None = None) -> None:  # fmt: skip
        self._irq = irq
        self._notify: Callable[[int], None] = self.service if on_notify is None else self._deferring(on_notify)
        self._read_memory = memory.read
        self._write_memory = memory.write
        self._check_memory = memory.check
        if backend is None:
            self._info: Callable[[], BackendInfo] = lambda: _EMPTY_INFO
            self._backend: Callable[[], VirtioBackend | None] = lambda: None
        else:
            info = backend.info()
            if len(info.queue_sizes) > MAX_QUEUES or not all(0 < n <= QUEUE_SIZE_MAX for n in info.queue_sizes):
                raise ValueError(f"queue sizes {info.queue_sizes}: at most {MAX_QUEUES} of 1..{QUEUE_SIZE_MAX}")
            self._info = backend.info
            self._backend = lambda: backend
        self._init_registers()

    def _init_registers(self) -> None:
        self.status = 0
        self.device_features_sel = 0
        self.driver_features_sel = 0
        self.driver_features = 0
        self.features = 0
        self.guest_page_shift = 0
        self.queue_sel = 0
        self.interrupt_status = 0
        self.config_generation = 0
        self.notified = 0
        sizes = self._info().queue_sizes
        self.queue_num = [sizes[i] if i < len(sizes) else 0 for i in range(MAX_QUEUES)]
        self.queue_ready = [False] * MAX_QUEUES
        self.queue_desc = [0] * MAX_QUEUES
        self.queue_avail = [0] * MAX_QUEUES
        self.queue_used = [0] * MAX_QUEUES
        self.queue_pfn = [0] * MAX_QUEUES
        self.queue_align = [LEGACY_ALIGN] * MAX_QUEUES
        self.last_avail_idx = [0] * MAX_QUEUES
        self.used_idx = [0] * MAX_QUEUES

    # -- identity ----------------------------------------------------------------------------------------
    @property
    def is_legacy(self) -> bool:
        return self.version == 1

    def device_features(self) -> int:
        """The feature bits offered (modern: with VIRTIO_F_VERSION_1; legacy: the low 32 only)."""
        features = self._info().features
        if self.is_legacy:
            return features & 0xFFFF_FFFF
        return features | VIRTIO_F_VERSION_1

    # -- registers ---------------------------------------------------------------------------------------
    def peek(self, offset: int, size: int) -> int | None:
        return self.read(offset, size)  # no read has a side effect (backends' config reads are pure)

    def read(self, offset: int, size: int) -> int:
        if size == 8:  # as QEMU's memory core: two 4-byte accesses
            return self.read(offset, 4) | self.read(offset + 4, 4) << 32
        if offset >= CONFIG:
            return self._read_config(offset - CONFIG, size)
        if size != 4 or offset & 3:
            log.debug("virtio-mmio: %d-byte read of register %#x ignored", size, offset)
            return 0
        backend = self._backend()
        if offset == MAGIC_VALUE:
            return MAGIC
        if offset == VERSION:
            return self.version
        if offset == VENDOR_ID:
            return VENDOR_QEMU
        if backend is None:
            return 0
        return self._read_register(offset)

    def _read_register(self, offset: int) -> int:
        sel = self.queue_sel
        exists = sel < MAX_QUEUES and self.queue_num[sel] != 0
        if offset == DEVICE_ID:
            return self._info().device_id
        if offset == DEVICE_FEATURES:
            if self.is_legacy:
                return 0 if self.device_features_sel else self.device_features()
            return self.device_features() >> 32 if self.device_features_sel == 1 else (
                self.device_features() & 0xFFFF_FFFF if self.device_features_sel == 0 else 0)  # fmt: skip
        if offset == QUEUE_NUM_MAX:
            return QUEUE_SIZE_MAX if exists else 0
        if offset == QUEUE_PFN and self.is_legacy:
            return self.queue_pfn[sel] if exists else 0
        if offset == QUEUE_READY and not self.is_legacy:
            return int(exists and self.queue_ready[sel])
        if offset == INTERRUPT_STATUS:
            return self.interrupt_status
        if offset == STATUS:
            return self.status
        if offset == CONFIG_GENERATION and not self.is_legacy:
            return self.config_generation
        if offset in (SHM_LEN_LOW, SHM_LEN_HIGH) and not self.is_legacy:
            return 0xFFFF_FFFF  # no shared memory region (QEMU 7.2 returns -1)
        log.debug("virtio-mmio: read of write-only or unknown register %#x", offset)
        return 0

    def _read_config(self, offset: int, size: int) -> int:
        backend = self._backend()
        if backend is None or offset + size > self._info().config_size:
            return (1 << (8 * size)) - 1  # QEMU's virtio_config_read*: all ones past the end
        return backend.read_config(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if size == 8:
            self.write(offset, 4, value & 0xFFFF_FFFF)
            self.write(offset + 4, 4, value >> 32)
            return
        backend = self._backend()
        if backend is None:
            return
        if offset >= CONFIG:
            if offset - CONFIG + size <= self._info().config_size:
                backend.write_config(offset - CONFIG, size, value & ((1 << (8 * size)) - 1))
            return
        if size != 4 or offset & 3:
            log.debug("virtio-mmio: %d-byte write of register %#x ignored", size, offset)
            return
        handler = _WRITES.get(offset)
        if handler is None or (offset in _LEGACY_ONLY and not self.is_legacy):
            log.debug("virtio-mmio: write of read-only or unknown register %#x", offset)
            return
        if offset in _MODERN_ONLY and self.is_legacy:
            log.debug("virtio-mmio: write of modern register %#x on a legacy slot", offset)
            return
        handler(self, value & 0xFFFF_FFFF)

    def _write_device_features_sel(self, value: int) -> None:
        self.device_features_sel = value

    def _write_driver_features_sel(self, value: int) -> None:
        self.driver_features_sel = value

    def _write_driver_features(self, value: int) -> None:
        if self.is_legacy:
            if self.driver_features_sel == 0:  # as QEMU: legacy drivers have 32 feature bits
                self.driver_features = value
                self.features = value & self.device_features()
        elif self.driver_features_sel < 2:
            shift = 32 * self.driver_features_sel
            self.driver_features = (self.driver_features & ~(0xFFFF_FFFF << shift)) | value << shift

    def _write_guest_page_size(self, value: int) -> None:
        shift = (value & -value).bit_length() - 1  # ctz, as QEMU; 0 gives shift 0
        self.guest_page_shift = shift if 0 <= shift <= 31 else 0

    def _write_queue_sel(self, value: int) -> None:
        if value <= QUEUE_SEL_MAX:
            self.queue_sel = value

    def _selected(self) -> int | None:
        sel = self.queue_sel
        return sel if sel < MAX_QUEUES and self.queue_num[sel] else None

    def _write_queue_num(self, value: int) -> None:
        sel = self._selected()
        if sel is not None and 0 < value <= QUEUE_SIZE_MAX:  # QEMU: an existing queue stays existing
            self.queue_num[sel] = value

    def _write_queue_align(self, value: int) -> None:
        sel = self._selected()
        if sel is not None and value and not value & (value - 1):
            self.queue_align[sel] = value

    def _write_queue_pfn(self, value: int) -> None:
        if value == 0:  # as QEMU 7.2: a legacy driver releasing a queue resets the device
            self._reset()
            return
        sel = self._selected()
        if sel is not None:
            self.queue_pfn[sel] = value

    def _write_queue_ready(self, value: int) -> None:
        sel = self._selected()
        if sel is not None:
            self.queue_ready[sel] = bool(value & 1)

    def _write_queue_address(self, offset: int, value: int) -> None:
        sel = self._selected()
        if sel is None:
            return
        base = offset & ~7
        table = {QUEUE_DESC_LOW: self.queue_desc, QUEUE_AVAIL_LOW: self.queue_avail, QUEUE_USED_LOW: self.queue_used}
        shift = 32 if offset & 4 else 0
        table[base][sel] = (table[base][sel] & ~(0xFFFF_FFFF << shift)) | value << shift

    def _write_queue_notify(self, value: int) -> None:
        if value < MAX_QUEUES:
            self._notify(value)

    def _deferring(self, on_notify: Callable[[], None]) -> Callable[[int], None]:
        def defer(queue: int) -> None:
            if self._backend() is not None and self._is_live(queue):
                self.notified |= 1 << queue
                on_notify()

        return defer

    def available(self, queue: int) -> int:
        """Chains the driver has made available on ``queue`` and the device not taken (0: none, or the queue is
        not live or is malformed: servicing it will say so)."""
        if self._backend() is None or not 0 <= queue < MAX_QUEUES or not self._is_live(queue):
            return 0
        memory = _Memory(self._read_memory, self._write_memory, self._check_memory)
        try:
            return Virtqueue(memory, self._layout(queue), self.last_avail_idx[queue], self.used_idx[queue]).pending()
        except (VirtqueueError, GuestMemoryError):
            return 0

    def complete(self) -> None:
        """Carry out every notified queue's requests now (the completion event of deferred notifies)."""
        notified, self.notified = self.notified, 0
        for queue in range(MAX_QUEUES):
            if notified >> queue & 1:
                self.service(queue)

    def _write_interrupt_ack(self, value: int) -> None:
        self.interrupt_status &= ~value & 0xFF
        self._update_irq()

    def _write_status(self, value: int) -> None:
        value &= 0xFF
        if value == 0:
            self._reset()
            return
        if not self.is_legacy and value & STATUS_FEATURES_OK and not self.status & STATUS_FEATURES_OK:
            accepted = self.driver_features & self.device_features()
            if not accepted & VIRTIO_F_VERSION_1:
                value &= ~STATUS_FEATURES_OK  # refused: the driver reads FEATURES_OK back clear (§3.1.1)
            else:
                self.features = accepted
        # DEVICE_NEEDS_RESET is the device's to set and stays until a reset, whatever the driver writes.
        self.status = (value & ~STATUS_NEEDS_RESET) | (self.status & STATUS_NEEDS_RESET)

    # -- queues ------------------------------------------------------------------------------------------
    def _is_live(self, queue: int) -> bool:
        if self.status & STATUS_NEEDS_RESET or not self.status & STATUS_DRIVER_OK or not self.queue_num[queue]:
            return False
        return self.queue_pfn[queue] != 0 if self.is_legacy else self.queue_ready[queue]

    def _layout(self, queue: int) -> RingLayout:
        num = self.queue_num[queue]
        if self.is_legacy:
            return RingLayout.legacy(num, self.queue_pfn[queue], self.guest_page_shift, self.queue_align[queue])
        return RingLayout(num, self.queue_desc[queue], self.queue_avail[queue], self.queue_used[queue])

    def service(self, queue: int) -> None:
        """Process every available chain of ``queue`` (QueueNotify; also for a backend that now can take a
        request it left, e.g. a frame arrived for the receive queue). Does nothing unless the queue is live."""
        backend = self._backend()
        if backend is None or not 0 <= queue < MAX_QUEUES or not self._is_live(queue):
            return
        memory = _Memory(self._read_memory, self._write_memory, self._check_memory)
        old_used = self.used_idx[queue]
        vq: Virtqueue | None = None
        try:
            vq = Virtqueue(memory, self._layout(queue), self.last_avail_idx[queue], old_used,
                           indirect=bool(self.features & VIRTIO_RING_F_INDIRECT_DESC),
                           event_idx=bool(self.features & VIRTIO_RING_F_EVENT_IDX))  # fmt: skip
            while (chain := vq.pop()) is not None:
                written = backend.process(queue, ChainIO(chain, memory))
                if written is None:
                    vq.unpop()
                    break
                vq.push(chain, written)
            vq.publish_avail_event()
            notify = vq.should_interrupt(old_used)
        except (VirtqueueError, GuestMemoryError) as exc:
            log.warning("virtio-mmio: queue %d is malformed: %s", queue, exc)
            self._needs_reset()
            notify = vq is not None and vq.used_idx != old_used
        if vq is not None:
            self.last_avail_idx[queue], self.used_idx[queue] = vq.last_avail_idx, vq.used_idx
        if notify:
            self.interrupt_status |= INT_USED_BUFFER
            self._update_irq()

    # -- interrupts, reset -------------------------------------------------------------------------------
    def _update_irq(self) -> None:
        self._irq(self.interrupt_status != 0)

    def _needs_reset(self) -> None:
        """§2.1.2: the device entered an error state; the driver learns it by a configuration interrupt."""
        self.status |= STATUS_NEEDS_RESET
        self.interrupt_status |= INT_CONFIG_CHANGE
        self._update_irq()

    def config_changed(self) -> None:
        """The backend changed its configuration space (ConfigGeneration moves; configuration interrupt)."""
        self.config_generation = (self.config_generation + 1) & 0xFFFF_FFFF
        self.interrupt_status |= INT_CONFIG_CHANGE
        self._update_irq()

    def _reset(self) -> None:
        selectors = self.device_features_sel, self.driver_features_sel, self.guest_page_shift, self.config_generation
        self._init_registers()
        self.device_features_sel, self.driver_features_sel, self.guest_page_shift, self.config_generation = selectors
        backend = self._backend()
        if backend is not None:
            backend.reset()
        self._update_irq()

    # -- state -------------------------------------------------------------------------------------------
    def save(self) -> VirtioMmioState:
        scalars = {name: getattr(self, name) for name in _SCALAR_FIELDS}
        queues = {name: tuple(getattr(self, name)) for name in _QUEUE_FIELDS}
        return VirtioMmioState(**scalars, **queues)

    def load(self, state: VirtioMmioState, check: bool = True) -> None:
        state = checked(state, VirtioMmioState) if check else state
        for name in _SCALAR_FIELDS:
            setattr(self, name, getattr(state, name))
        for name in _QUEUE_FIELDS:
            setattr(self, name, list(getattr(state, name)))


class LegacyVirtioMmio(VirtioMmio):
    """A legacy (Version 1) slot, what QEMU 7.2 presents by default."""

    version: ClassVar[int] = 1


@dataclass(frozen=True, slots=True)
class _Memory:
    """GuestMemory from the three bound methods a transport keeps."""

    read: Callable[[int, int], bytes]
    write: Callable[[int, bytes], None]
    check: Callable[[int, int], None]


_WRITES: dict[int, Callable[[VirtioMmio, int], None]] = {
    DEVICE_FEATURES_SEL: VirtioMmio._write_device_features_sel,
    DRIVER_FEATURES: VirtioMmio._write_driver_features,
    DRIVER_FEATURES_SEL: VirtioMmio._write_driver_features_sel,
    GUEST_PAGE_SIZE: VirtioMmio._write_guest_page_size,
    QUEUE_SEL: VirtioMmio._write_queue_sel,
    QUEUE_NUM: VirtioMmio._write_queue_num,
    QUEUE_ALIGN: VirtioMmio._write_queue_align,
    QUEUE_PFN: VirtioMmio._write_queue_pfn,
    QUEUE_READY: VirtioMmio._write_queue_ready,
    QUEUE_NOTIFY: VirtioMmio._write_queue_notify,
    INTERRUPT_ACK: VirtioMmio._write_interrupt_ack,
    STATUS: VirtioMmio._write_status,
    **{
        reg: lambda self, value, reg=reg: self._write_queue_address(reg, value)
        for reg in (QUEUE_DESC_LOW, QUEUE_DESC_HIGH, QUEUE_AVAIL_LOW, QUEUE_AVAIL_HIGH, QUEUE_USED_LOW, QUEUE_USED_HIGH)
    },
}
_LEGACY_ONLY = frozenset({GUEST_PAGE_SIZE, QUEUE_ALIGN, QUEUE_PFN})
_MODERN_ONLY = frozenset({QUEUE_READY, QUEUE_DESC_LOW, QUEUE_DESC_HIGH, QUEUE_AVAIL_LOW, QUEUE_AVAIL_HIGH,
                          QUEUE_USED_LOW, QUEUE_USED_HIGH})  # fmt: skip
