"""machine/devices/virtqueue.py: split virtqueues as a device sees them, driven by a Linux-like driver."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machine.devices.virtqueue import (
    DESC_SIZE,
    VIRTQ_AVAIL_F_NO_INTERRUPT,
    VIRTQ_DESC_F_INDIRECT,
    VIRTQ_DESC_F_NEXT,
    VIRTQ_DESC_F_WRITE,
    BufferMemory,
    ChainIO,
    GuestMemoryError,
    RingLayout,
    Virtqueue,
    VirtqueueError,
    need_event,
)

RAM_BASE = 0x8000_0000
RAM_SIZE = 0x4_0000


class TracedMemory(BufferMemory):
    """RAM that remembers every access attempted and fails the test if one falls outside RAM."""

    def __init__(self, ram: bytearray, base: int = RAM_BASE) -> None:
        super().__init__(ram, base)
        self.outside: list[tuple[int, int]] = []
        self.writes: list[tuple[int, int]] = []

    def _note(self, addr: int, size: int) -> None:
        if not (addr >= RAM_BASE and addr + size <= RAM_BASE + RAM_SIZE):
            self.outside.append((addr, size))

    def read(self, addr: int, size: int) -> bytes:
        self._note(addr, size)
        return super().read(addr, size)

    def write(self, addr: int, data: bytes) -> None:
        self._note(addr, len(data))
        self.writes.append((addr, len(data)))
        super().write(addr, data)


@dataclass
class Driver:
    """The driver side of one split virtqueue, laid out as Linux's vring_init / virtio_ring.c do.

    ``legacy``: one area at a page (desc, avail, used at the next 4096 boundary: QueuePFN); else the three
    parts at separate addresses (QueueDesc/Driver/Device). Buffers are carved from a data area after them.
    """

    ram: bytearray
    num: int = 8
    legacy: bool = True
    ring_base: int = RAM_BASE + 0x1000
    event_idx: bool = False
    layout: RingLayout = field(init=False)
    avail_idx: int = 0
    last_used: int = 0
    free: list[int] = field(init=False)
    data_next: int = RAM_BASE + 0x2_0000

    def __post_init__(self) -> None:
        if self.legacy:
            self.layout = RingLayout.legacy(self.num, self.ring_base >> 12, 12, 4096)
        else:
            desc = self.ring_base
            avail = desc + DESC_SIZE * self.num + 0x40  # not contiguous, as a modern driver may place them
            used = (avail + 6 + 2 * self.num + 0x100) & ~3
            self.layout = RingLayout(self.num, desc, avail, used)
        self.free = list(range(self.num))

    @property
    def pfn(self) -> int:
        return self.ring_base >> 12

    def poke(self, addr: int, data: bytes) -> None:
        self.ram[addr - RAM_BASE : addr - RAM_BASE + len(data)] = data

    def peek(self, addr: int, size: int) -> bytes:
        return bytes(self.ram[addr - RAM_BASE : addr - RAM_BASE + size])

    def u16(self, addr: int) -> int:
        return struct.unpack("<H", self.peek(addr, 2))[0]

    def alloc(self, data: bytes | int) -> int:
        size = data if isinstance(data, int) else len(data)
        addr = self.data_next
        self.data_next += (size + 15) & ~15
        if not isinstance(data, int):
            self.poke(addr, data)
        return addr

    def write_desc(self, table: int, index: int, addr: int, length: int, flags: int, next_index: int) -> None:
        self.poke(table + DESC_SIZE * index, struct.pack("<QIHH", addr, length, flags, next_index))

    def add(self, out: list[bytes], in_lens: list[int], indirect: bool = False) -> tuple[int, list[int]]:
        """Post one request (virtqueue_add_sgs): readable ``out`` buffers then writable ones of ``in_lens``;
        returns the head and the writable buffers' addresses."""
        bufs = [(self.alloc(b), len(b), 0) for b in out]
        ins = [self.alloc(n) for n in in_lens]
        bufs += [(a, n, VIRTQ_DESC_F_WRITE) for a, n in zip(ins, in_lens, strict=True)]
        if indirect:
            table = self.alloc(DESC_SIZE * len(bufs))
            for i, (addr, length, flags) in enumerate(bufs):
                more = VIRTQ_DESC_F_NEXT if i + 1 < len(bufs) else 0
                self.write_desc(table, i, addr, length, flags | more, i + 1 if more else 0)
            head = self.free.pop(0)
            self.write_desc(self.layout.desc, head, table, DESC_SIZE * len(bufs), VIRTQ_DESC_F_INDIRECT, 0)
        else:
            slots = [self.free.pop(0) for _ in bufs]
            head = slots[0]
            for i, (addr, length, flags) in enumerate(bufs):
                more = VIRTQ_DESC_F_NEXT if i + 1 < len(bufs) else 0
                self.write_desc(self.layout.desc, slots[i], addr, length, flags | more, slots[i + 1] if more else 0)
        self.publish(head)
        return head, ins

    def publish(self, head: int) -> None:
        self.poke(self.layout.avail + 4 + 2 * (self.avail_idx % self.num), struct.pack("<H", head))
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        self.poke(self.layout.avail + 2, struct.pack("<H", self.avail_idx))

    def set_avail_flags(self, flags: int) -> None:
        self.poke(self.layout.avail, struct.pack("<H", flags))

    def set_used_event(self, value: int) -> None:
        self.poke(self.layout.avail + 4 + 2 * self.num, struct.pack("<H", value))

    def avail_event(self) -> int:
        return self.u16(self.layout.used + 4 + 8 * self.num)

    def used(self) -> list[tuple[int, int]]:
        """New used elements since the last call (virtqueue_get_buf); frees their descriptors."""
        out = []
        used_idx = self.u16(self.layout.used + 2)
        while self.last_used != used_idx:
            slot = self.layout.used + 4 + 8 * (self.last_used % self.num)
            elem = struct.unpack("<II", self.peek(slot, 8))
            out.append(elem)
            self.last_used = (self.last_used + 1) & 0xFFFF
        for head, _ in out:
            self.release(head)
        return out

    def release(self, head: int) -> None:
        index = head
        while True:
            self.free.append(index)
            _, _, flags, nxt = struct.unpack("<QIHH", self.peek(self.layout.desc + DESC_SIZE * index, DESC_SIZE))
            if not flags & VIRTQ_DESC_F_NEXT or flags & VIRTQ_DESC_F_INDIRECT:
                return
            index = nxt


def echo(io: ChainIO) -> int:
    """The test device's request: write the readable bytes back reversed."""
    return io.write(io.read()[::-1])


def make(legacy: bool = True, num: int = 8, **flags: bool) -> tuple[Driver, TracedMemory, dict[str, bool]]:
    ram = bytearray(RAM_SIZE)
    return Driver(ram, num=num, legacy=legacy), TracedMemory(ram), flags


def queue(driver: Driver, memory: TracedMemory, last_avail: int = 0, used: int = 0, **flags: bool) -> Virtqueue:
    return Virtqueue(memory, driver.layout, last_avail, used, **flags)


# -- layouts --------------------------------------------------------------------------------------------


def test_legacy_layout_matches_linux_vring_init() -> None:
    layout = RingLayout.legacy(256, 0x80001, 12, 4096)
    assert layout.desc == 0x8000_1000
    assert layout.avail == layout.desc + 16 * 256
    assert layout.used == 0x8000_1000 + 0x2000  # 4096 + 6 + 512 rounds up to 8192 after the descriptors
    assert RingLayout.legacy(8, 1, 12, 16).used == 0x1000 + 128 + 32  # 128 + 2 * (3 + 8) aligned to 16


# -- requests -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("legacy", [True, False])
@pytest.mark.parametrize("indirect", [False, True])
def test_requests_come_back_on_the_used_ring(legacy: bool, indirect: bool) -> None:
    driver, memory, _ = make(legacy)
    vq = queue(driver, memory, indirect=indirect)
    head, (reply,) = driver.add([b"abc", b"def"], [6], indirect=indirect)
    chain = vq.pop()
    assert chain is not None and chain.head == head
    assert chain.readable_length == 6 and chain.writable_length == 6
    vq.push(chain, echo(ChainIO(chain, memory)))
    assert vq.pop() is None
    assert driver.used() == [(head, 6)]
    assert driver.peek(reply, 6) == b"fedcba"
    assert vq.should_interrupt(0)
    assert not memory.outside


def test_many_requests_wrap_the_rings() -> None:
    driver, memory, _ = make(num=4)
    vq = queue(driver, memory)
    for round_ in range(40):  # the 16-bit indices wrap the 4-entry rings many times
        heads = [driver.add([bytes([round_, i])], [2])[0] for i in range(2)]
        while (chain := vq.pop()) is not None:
            vq.push(chain, echo(ChainIO(chain, memory)))
        assert [h for h, n in driver.used()] == heads
    assert vq.last_avail_idx == vq.used_idx == 80


def test_chain_io_reads_and_writes_across_buffers() -> None:
    driver, memory, _ = make()
    driver.add([b"0123", b"4567"], [3, 5])
    chain = queue(driver, memory).pop()
    assert chain is not None
    io = ChainIO(chain, memory)
    assert io.read(2, 4) == b"2345" and io.read(7) == b"7" and io.read(9) == b""
    assert io.write(b"ABCDEFGHIJ", 1) == 7  # 8 writable bytes, from offset 1
    out = [s.addr for s in chain.writable]
    assert driver.peek(out[0], 3) == b"\0AB" and driver.peek(out[1], 5) == b"CDEFG"


def test_unpop_leaves_the_chain_available() -> None:
    driver, memory, _ = make()
    head, _ = driver.add([b"x"], [1])
    vq = queue(driver, memory)
    assert vq.pop() is not None
    vq.unpop()
    chain = vq.pop()
    assert chain is not None and chain.head == head


# -- notifications --------------------------------------------------------------------------------------


def test_no_interrupt_flag_suppresses_interrupts_without_event_idx() -> None:
    driver, memory, _ = make()
    driver.set_avail_flags(VIRTQ_AVAIL_F_NO_INTERRUPT)
    driver.add([b"x"], [1])
    vq = queue(driver, memory)
    chain = vq.pop()
    assert chain is not None
    vq.push(chain, 1)
    assert not vq.should_interrupt(0)
    driver.set_avail_flags(0)
    assert vq.should_interrupt(0)
    assert not vq.should_interrupt(vq.used_idx)  # nothing new: no interrupt


def test_event_index_interrupts_only_when_used_event_is_passed() -> None:
    driver, memory, _ = make()
    vq = queue(driver, memory, event_idx=True)
    for _ in range(3):
        driver.add([b"x"], [1])
    driver.set_used_event(2)  # "interrupt me when the third buffer is used"
    chain = vq.pop()
    assert chain is not None
    vq.push(chain, 1)
    assert not vq.should_interrupt(0)  # used idx 1 has not passed 2
    old = vq.used_idx
    for _ in range(2):
        chain = vq.pop()
        assert chain is not None
        vq.push(chain, 1)
    assert vq.should_interrupt(old)  # 1 -> 3 passes 2
    vq.publish_avail_event()
    assert driver.avail_event() == 3  # the driver will kick for its next buffer
    assert need_event(0xFFFF, 1, 0xFFFE) and not need_event(5, 1, 0xFFFE)  # wraps


def test_avail_flags_ignored_with_event_idx() -> None:
    driver, memory, _ = make()
    driver.set_avail_flags(VIRTQ_AVAIL_F_NO_INTERRUPT)
    driver.add([b"x"], [1])
    vq = queue(driver, memory, event_idx=True)
    chain = vq.pop()
    assert chain is not None
    vq.push(chain, 1)
    assert vq.should_interrupt(0)  # used_event 0 is passed by 0 -> 1


# -- malformed queues -----------------------------------------------------------------------------------


def loop_chain(driver: Driver) -> None:
    driver.write_desc(driver.layout.desc, 0, RAM_BASE + 0x3_0000, 4, VIRTQ_DESC_F_NEXT, 1)
    driver.write_desc(driver.layout.desc, 1, RAM_BASE + 0x3_0000, 4, VIRTQ_DESC_F_NEXT, 0)
    driver.publish(0)


def single(driver: Driver, addr: int, length: int, flags: int = 0, next_index: int = 0) -> None:
    driver.write_desc(driver.layout.desc, 0, addr, length, flags, next_index)
    driver.publish(0)


def indirect_to(driver: Driver, table: int, length: int) -> None:
    single(driver, table, length, VIRTQ_DESC_F_INDIRECT)


def nested_indirect(driver: Driver) -> None:
    table = RAM_BASE + 0x3_0000
    driver.write_desc(table, 0, table + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0)
    indirect_to(driver, table, 16)


def indirect_loop(driver: Driver) -> None:
    table = RAM_BASE + 0x3_0000
    driver.write_desc(table, 0, RAM_BASE, 4, VIRTQ_DESC_F_NEXT, 1)
    driver.write_desc(table, 1, RAM_BASE, 4, VIRTQ_DESC_F_NEXT, 0)
    indirect_to(driver, table, 32)


def readable_after_writable(driver: Driver) -> None:
    driver.write_desc(driver.layout.desc, 0, RAM_BASE, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1)
    driver.write_desc(driver.layout.desc, 1, RAM_BASE, 4, 0, 0)
    driver.publish(0)


def avail_jump(driver: Driver) -> None:
    driver.poke(driver.layout.avail + 2, struct.pack("<H", driver.num + 1))


MALFORMED = {
    "loop": loop_chain,
    "buffer outside RAM": lambda d: single(d, RAM_BASE + RAM_SIZE - 2, 4),
    "buffer below RAM": lambda d: single(d, 0x1000, 4),
    "huge buffer": lambda d: single(d, RAM_BASE, 0xFFFF_FFFF),
    "zero-length buffer": lambda d: single(d, RAM_BASE, 0),
    "next outside the table": lambda d: single(d, RAM_BASE, 4, VIRTQ_DESC_F_NEXT, 8),
    "head outside the table": lambda d: d.publish(9),
    "available index jump": avail_jump,
    "indirect table not a multiple of 16": lambda d: indirect_to(d, RAM_BASE + 0x3_0000, 24),
    "empty indirect table": lambda d: indirect_to(d, RAM_BASE + 0x3_0000, 0),
    "indirect table outside RAM": lambda d: indirect_to(d, RAM_BASE + RAM_SIZE - 16, 32),
    "nested indirect": nested_indirect,
    "loop in an indirect table": indirect_loop,
    "readable after writable": readable_after_writable,
}


@pytest.mark.parametrize("build", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_chains_raise_only_virtqueue_errors(build: object) -> None:
    driver, memory, _ = make()
    build(driver)  # type: ignore[operator]
    vq = queue(driver, memory, indirect=True)
    with pytest.raises(VirtqueueError):
        vq.pop()
    assert not memory.outside


def test_indirect_descriptors_need_the_feature() -> None:
    driver, memory, _ = make()
    driver.add([b"x"], [1], indirect=True)
    with pytest.raises(VirtqueueError, match="INDIRECT_DESC"):
        queue(driver, memory).pop()


def test_rings_outside_ram_are_refused() -> None:
    _, memory, _ = make()
    with pytest.raises(VirtqueueError, match="used ring"):
        Virtqueue(memory, RingLayout(8, RAM_BASE, RAM_BASE + 0x100, RAM_BASE + RAM_SIZE - 8), 0, 0)
    with pytest.raises(VirtqueueError, match="descriptor table"):
        Virtqueue(memory, RingLayout.legacy(1024, 0x1234, 12, 4096), 0, 0)
    assert not memory.outside


def test_buffer_memory_refuses_outside_ram() -> None:
    memory = BufferMemory(bytearray(16), 0x100)
    memory.write(0x10F, b"a")
    assert memory.read(0x100, 16)[-1:] == b"a"
    for addr, size in ((0xFF, 1), (0x10F, 2), (0x111, 0), (0x100, -1)):
        with pytest.raises(GuestMemoryError):
            memory.check(addr, size)


# -- hostile guests -------------------------------------------------------------------------------------

DESCRIPTOR = st.tuples(
    st.one_of(st.integers(RAM_BASE, RAM_BASE + RAM_SIZE), st.integers(0, (1 << 64) - 1)),
    st.one_of(st.integers(0, 64), st.integers(0, (1 << 32) - 1), st.sampled_from([16, 32, 48, 0x100])),
    st.integers(0, 7),  # NEXT | WRITE | INDIRECT in any combination
    st.one_of(st.integers(0, 9), st.integers(0, 0xFFFF)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([1, 2, 4, 8]),
    st.booleans(),
    st.booleans(),
    st.lists(DESCRIPTOR, min_size=8, max_size=8),
    st.lists(st.integers(0, 12), min_size=8, max_size=8),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.lists(DESCRIPTOR, min_size=4, max_size=4),
)
def test_random_rings_never_escape_ram_or_raise_anything_else(
    num: int,
    indirect: bool,
    event_idx: bool,
    descs: list[tuple[int, int, int, int]],
    heads: list[int],
    avail_idx: int,
    last_avail: int,
    table: list[tuple[int, int, int, int]],
) -> None:
    driver, memory, _ = make(num=num)
    for i, (addr, length, flags, nxt) in enumerate(descs[:num]):
        driver.write_desc(driver.layout.desc, i, addr, length, flags, nxt)
    for i, (addr, length, flags, nxt) in enumerate(table):  # an indirect table some descriptors may hit
        driver.write_desc(RAM_BASE + 0x3_0000, i, addr, length, flags, nxt)
    for i, head in enumerate(heads[:num]):
        driver.poke(driver.layout.avail + 4 + 2 * i, struct.pack("<H", head))
    driver.poke(driver.layout.avail + 2, struct.pack("<H", avail_idx))
    vq = queue(driver, memory, last_avail, 0, indirect=indirect, event_idx=event_idx)
    taken = 0
    try:
        while (chain := vq.pop()) is not None:
            assert chain.head < num
            for seg in chain.readable + chain.writable:
                assert seg.addr >= RAM_BASE and seg.addr + seg.length <= RAM_BASE + RAM_SIZE
            vq.push(chain, echo(ChainIO(chain, memory)))
            taken += 1
            assert taken <= num
        vq.publish_avail_event()
        vq.should_interrupt(0)
    except VirtqueueError:
        pass
    assert not memory.outside
