"""Split virtqueues (virtio 1.1 §2.6): descriptor table, available ring, used ring, as a device sees them.

Guest memory is reached only through :class:`GuestMemory`; every address the guest hands over (ring
addresses, descriptor buffers, indirect tables) is checked against it before use, so a hostile guest can
make a queue fail (:class:`VirtqueueError`, which the transport turns into DEVICE_NEEDS_RESET) but never
make the emulator raise anything else or touch host memory outside the guest's RAM.

A :class:`Virtqueue` is a short-lived view: the transport builds one per notification from the queue's
saved configuration (:class:`RingLayout`, ``last_avail_idx``, ``used_idx``) and reads the indices back
afterwards, so all queue state lives in the transport's saved state.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

VIRTQ_DESC_F_NEXT = 1
VIRTQ_DESC_F_WRITE = 2
VIRTQ_DESC_F_INDIRECT = 4
VIRTQ_AVAIL_F_NO_INTERRUPT = 1
VIRTIO_F_NOTIFY_ON_EMPTY = 1 << 24
VIRTIO_F_ANY_LAYOUT = 1 << 27
VIRTIO_RING_F_INDIRECT_DESC = 1 << 28
VIRTIO_RING_F_EVENT_IDX = 1 << 29
VIRTIO_F_VERSION_1 = 1 << 32
QEMU_COMMON_FEATURES = (
    VIRTIO_F_NOTIFY_ON_EMPTY | VIRTIO_F_ANY_LAYOUT | VIRTIO_RING_F_INDIRECT_DESC | VIRTIO_RING_F_EVENT_IDX
)
"""The ring features QEMU 7.2 offers on every virtio device by default (``DEFINE_VIRTIO_COMMON_FEATURES``)."""
VIRTIO_F_RING_RESET = 1 << 40


def offered_features(device: int, *, legacy: bool) -> int:
    """What QEMU 7.2 offers for a device with these features of its own: the common ring features too; on the
    modern interface without the legacy-only ones (NOTIFY_ON_EMPTY, ANY_LAYOUT) and with VERSION_1 and
    RING_RESET."""
    if legacy:
        return QEMU_COMMON_FEATURES | device
    legacy_only = VIRTIO_F_ANY_LAYOUT | VIRTIO_F_NOTIFY_ON_EMPTY
    return (QEMU_COMMON_FEATURES & ~legacy_only) | device | VIRTIO_F_VERSION_1 | VIRTIO_F_RING_RESET

QUEUE_SIZE_MAX = 1024  # QEMU's VIRTQUEUE_MAX_SIZE: what QueueNumMax reads for an existing queue
INDIRECT_MAX = 1024  # entries in one indirect table (Linux never uses more than the queue size)
MAX_CHAIN_BYTES = 1 << 28  # sum of a chain's buffer lengths; a longer chain is malformed
DESC_SIZE = 16
_DESC = struct.Struct("<QIHH")
_U16 = struct.Struct("<H")
_USED_ELEM = struct.Struct("<II")


class GuestMemoryError(Exception):
    """An access outside guest RAM."""


class VirtqueueError(Exception):
    """The guest's ring or descriptor chain is malformed (the device then needs a reset)."""


class GuestMemory(Protocol):
    """Guest physical memory (RAM only): every method raises GuestMemoryError outside it."""

    def read(self, addr: int, size: int) -> bytes: ...

    def write(self, addr: int, data: bytes) -> None: ...

    def check(self, addr: int, size: int) -> None:
        """Raise GuestMemoryError unless ``[addr, addr + size)`` lies in RAM."""
        ...


class BufferMemory:
    """GuestMemory over one writable buffer (a bytearray in tests, the machine's RAM) mapped at ``base``."""

    def __init__(self, buffer: bytearray | memoryview, base: int) -> None:
        self._view = memoryview(buffer).cast("B")
        self._base = base

    def check(self, addr: int, size: int) -> None:
        if size < 0 or addr < self._base or addr + size > self._base + len(self._view):
            raise GuestMemoryError(f"{size} bytes at {addr:#x} are outside RAM")

    def read(self, addr: int, size: int) -> bytes:
        self.check(addr, size)
        return bytes(self._view[addr - self._base : addr - self._base + size])

    def write(self, addr: int, data: bytes) -> None:
        self.check(addr, len(data))
        self._view[addr - self._base : addr - self._base + len(data)] = data


@dataclass(frozen=True, slots=True)
class RingLayout:
    """Where a queue of ``num`` entries lives: descriptor table, available (driver) and used (device) rings."""

    num: int
    desc: int
    avail: int
    used: int

    @classmethod
    def legacy(cls, num: int, pfn: int, page_shift: int, align: int) -> RingLayout:
        """The legacy layout (virtio 1.1 §2.6.2, QueuePFN): one contiguous area at ``pfn << page_shift``,
        the used ring at the next ``align`` boundary after the available ring (and its used_event)."""
        desc = pfn << page_shift
        avail = desc + DESC_SIZE * num
        used = (avail + 2 * (3 + num) + align - 1) & ~(align - 1)
        return cls(num, desc, avail, used)


@dataclass(frozen=True, slots=True)
class Segment:
    """One guest buffer of a chain (already checked to lie in RAM)."""

    addr: int
    length: int


@dataclass(frozen=True, slots=True)
class DescriptorChain:
    """A validated chain: its head index, device-readable buffers, then device-writable ones."""

    head: int
    readable: tuple[Segment, ...]
    writable: tuple[Segment, ...]

    @property
    def readable_length(self) -> int:
        return sum(s.length for s in self.readable)

    @property
    def writable_length(self) -> int:
        return sum(s.length for s in self.writable)


class ChainIO:
    """What a backend sees of one request: gather from its readable buffers, scatter into its writable ones."""

    def __init__(self, chain: DescriptorChain, memory: GuestMemory) -> None:
        self.chain = chain
        self._memory = memory

    def read(self, offset: int = 0, size: int | None = None) -> bytes:
        """Up to ``size`` bytes (all by default) of the readable buffers from ``offset``."""
        return self._gather(self.chain.readable, offset, self.chain.readable_length if size is None else size)

    def write(self, data: bytes, offset: int = 0) -> int:
        """Copy ``data`` into the writable buffers from ``offset``; returns how many bytes fitted."""
        done = 0
        for seg in self.chain.writable:
            if offset >= seg.length:
                offset -= seg.length
                continue
            part = data[done : done + seg.length - offset]
            if not part:
                break
            self._memory.write(seg.addr + offset, part)
            done += len(part)
            offset = 0
        return done

    def _gather(self, segments: tuple[Segment, ...], offset: int, size: int) -> bytes:
        out = bytearray()
        for seg in segments:
            if len(out) >= size:
                break
            if offset >= seg.length:
                offset -= seg.length
                continue
            take = min(seg.length - offset, size - len(out))
            out += self._memory.read(seg.addr + offset, take)
            offset = 0
        return bytes(out)


def need_event(event_idx: int, new_idx: int, old_idx: int) -> bool:
    """virtio 1.1 §2.6.7.2 ``vring_need_event``: did the index pass ``event_idx`` moving from old to new?"""
    return (new_idx - event_idx - 1) & 0xFFFF < (new_idx - old_idx) & 0xFFFF


class Virtqueue:
    """Device-side operations on one split virtqueue; raises only VirtqueueError for a malformed queue."""

    def __init__(
        self,
        memory: GuestMemory,
        layout: RingLayout,
        last_avail_idx: int,
        used_idx: int,
        *,
        indirect: bool = False,
        event_idx: bool = False,
    ) -> None:
        self.memory = memory
        self.layout = layout
        self.last_avail_idx = last_avail_idx
        self.used_idx = used_idx
        self.indirect = indirect
        self.event_idx = event_idx
        num = layout.num
        self._check(layout.desc, DESC_SIZE * num, "descriptor table")
        self._check(layout.avail, 6 + 2 * num, "available ring")
        self._check(layout.used, 6 + 8 * num, "used ring")

    def _check(self, addr: int, size: int, what: str) -> None:
        try:
            self.memory.check(addr, size)
        except GuestMemoryError as exc:
            raise VirtqueueError(f"{what}: {exc}") from None

    def _u16(self, addr: int) -> int:
        return _U16.unpack(self.memory.read(addr, 2))[0]

    def pending(self) -> int:
        """Buffers the driver made available that the device has not taken (VirtqueueError past ``num``)."""
        avail_idx = self._u16(self.layout.avail + 2)
        count = (avail_idx - self.last_avail_idx) & 0xFFFF
        if count > self.layout.num:
            raise VirtqueueError(f"available index moved from {self.last_avail_idx} to {avail_idx}")
        return count

    def pop(self) -> DescriptorChain | None:
        """Take the next available chain, validated, or None when the ring is empty."""
        if not self.pending():
            return None
        num = self.layout.num
        head = self._u16(self.layout.avail + 4 + 2 * (self.last_avail_idx % num))
        self.last_avail_idx = (self.last_avail_idx + 1) & 0xFFFF
        return self._walk(head)

    def unpop(self) -> None:
        """Give back the chain :meth:`pop` returned last (the backend cannot take it yet)."""
        self.last_avail_idx = (self.last_avail_idx - 1) & 0xFFFF

    def _walk(self, head: int) -> DescriptorChain:
        table, size, index, nested = self.layout.desc, self.layout.num, head, False
        if head >= size:
            raise VirtqueueError(f"head {head} outside a queue of {size}")
        readable: list[Segment] = []
        writable: list[Segment] = []
        count = total = 0
        while True:
            addr, length, flags, next_index = _DESC.unpack(self.memory.read(table + DESC_SIZE * index, DESC_SIZE))
            if flags & VIRTQ_DESC_F_INDIRECT:
                table, size = self._indirect_table(addr, length, nested or count > 0)
                index, nested, count = 0, True, 0
                continue
            count += 1
            if count > size:
                raise VirtqueueError(f"chain from {head} loops (more than {size} descriptors)")
            if length == 0:
                raise VirtqueueError(f"zero-length buffer in the chain from {head}")
            total += length
            if total > MAX_CHAIN_BYTES:
                raise VirtqueueError(f"chain from {head} longer than {MAX_CHAIN_BYTES} bytes")
            self._check(addr, length, f"buffer of the chain from {head}")
            if flags & VIRTQ_DESC_F_WRITE:
                writable.append(Segment(addr, length))
            elif writable:
                raise VirtqueueError(f"readable buffer after a writable one in the chain from {head}")
            else:
                readable.append(Segment(addr, length))
            if not flags & VIRTQ_DESC_F_NEXT:
                return DescriptorChain(head, tuple(readable), tuple(writable))
            if next_index >= size:
                raise VirtqueueError(f"next {next_index} outside a table of {size}")
            index = next_index

    def _indirect_table(self, addr: int, length: int, misplaced: bool) -> tuple[int, int]:
        # As QEMU's virtqueue_split_pop, an indirect descriptor is taken only as a chain's head (Linux and
        # U-Boot never put one elsewhere); spec §2.6.5.3.1 forbids one inside an indirect table.
        if not self.indirect:
            raise VirtqueueError("indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC")
        if misplaced:
            raise VirtqueueError("indirect descriptor inside a chain or an indirect table")
        if length == 0 or length % DESC_SIZE or length // DESC_SIZE > INDIRECT_MAX:
            raise VirtqueueError(f"indirect table of {length} bytes")
        self._check(addr, length, "indirect table")
        return addr, length // DESC_SIZE

    def push(self, chain: DescriptorChain, written: int) -> None:
        """Return a chain to the driver: a used element ``(head, written)``, then the used index."""
        written = max(0, min(written, chain.writable_length))
        slot = self.layout.used + 4 + 8 * (self.used_idx % self.layout.num)
        self.memory.write(slot, _USED_ELEM.pack(chain.head, written))
        self.used_idx = (self.used_idx + 1) & 0xFFFF
        self.memory.write(self.layout.used + 2, _U16.pack(self.used_idx))

    def publish_avail_event(self) -> None:
        """With VIRTIO_RING_F_EVENT_IDX: ask to be notified as soon as the driver adds past what was taken."""
        if self.event_idx:
            self.memory.write(self.layout.used + 4 + 8 * self.layout.num, _U16.pack(self.last_avail_idx))

    def should_interrupt(self, old_used_idx: int) -> bool:
        """Whether the driver wants an interrupt for the used entries added since ``old_used_idx``
        (its used_event with VIRTIO_RING_F_EVENT_IDX, else the available ring's NO_INTERRUPT flag)."""
        if self.used_idx == old_used_idx:
            return False
        if self.event_idx:
            return need_event(self._u16(self.layout.avail + 4 + 2 * self.layout.num), self.used_idx, old_used_idx)
        return not self._u16(self.layout.avail) & VIRTQ_AVAIL_F_NO_INTERRUPT
