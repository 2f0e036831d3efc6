"""machine/devices/virtio_blk.py: virtio-blk over a disk overlay, as QEMU 7.2's virtio-blk-device, driven
through the virtio-mmio transport by the driver-side helpers of the transport's and virtqueue's tests."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machine.devices import virtio_blk as vb
from machine.devices import virtio_mmio as vm
from machine.devices.virtio_blk import VirtioBlk, VirtioBlkState, guess_geometry
from machine.devices.virtio_mmio import LegacyVirtioMmio, VirtioMmio
from machine.devices.virtqueue import VIRTIO_F_VERSION_1, VIRTIO_RING_F_INDIRECT_DESC
from machine.fields import FieldError
from machine.overlay import DiskImage, DiskOverlay
from tests.unit.test_virtio_mmio import BOTH, Line, probe, r, setup_queue, w
from tests.unit.test_virtqueue import RAM_SIZE, Driver, TracedMemory

IMAGE = Path(__file__).resolve().parents[1] / "guests" / "riscv" / "inputs" / "disk.img"  # 64 KiB, 128 sectors
SECTOR = 512
SECTORS = 128

# What QEMU 7.2 presents for this image (tests/guests/riscv/README.md, "virtioblk"): 32-bit config words.
QEMU_CONFIG_WORDS = [
    0x80, 0,  # capacity
    0,  # size_max
    254,  # seg_max
    0x3F100002,  # geometry: 2 cylinders, 16 heads, 63 sectors
    512,  # blk_size
    0, 0,  # topology
    0x00010001,  # writeback 1, num_queues 1
    0x3FFFFF, 1, 1,  # max_discard_sectors, max_discard_seg, discard_sector_alignment
    0x3FFFFF, 1, 1,  # max_write_zeroes_sectors, max_write_zeroes_seg, write_zeroes_may_unmap
]  # fmt: skip


def sector_pattern(i: int) -> bytes:
    """inputs/make-disk.py's sectors (sector 0 starts with a text header)."""
    data = bytearray((i * 37 + j * 13 + (j >> 7)) & 0xFF for j in range(SECTOR))
    if i == 0:
        header = b"CHRONICORN VIRTIO-BLK TEST DISK\nsectors=128 sector_size=512\n\0"
        data[: len(header)] = header
    return bytes(data)


def image_digest() -> str:
    return hashlib.sha256(IMAGE.read_bytes()).hexdigest()


IMAGE_SHA256 = image_digest()


class Blk:
    """A transport slot with a VirtioBlk over the committed image, and a driver (Linux-like) for queue 0."""

    def __init__(self, legacy: bool, readonly: bool = False, features: int | None = None, num: int = 8) -> None:
        self.ram = bytearray(RAM_SIZE)
        self.memory = TracedMemory(self.ram)
        self.line = Line()
        self.image = DiskImage(IMAGE)
        self.disk = DiskOverlay(self.image, readonly=readonly)
        self.blk = VirtioBlk(self.disk, legacy=legacy)
        cls = LegacyVirtioMmio if legacy else VirtioMmio
        self.dev = cls(self.line, self.memory, self.blk)
        self.driver: Driver | None = None
        if features is not None:
            self.start(features, num)

    def start(self, features: int, num: int = 8) -> Driver:
        probe(self.dev, features | (0 if self.dev.is_legacy else VIRTIO_F_VERSION_1))
        self.driver = setup_queue(self.dev, self.ram, num=num)
        w(self.dev, vm.STATUS, r(self.dev, vm.STATUS) | vm.STATUS_DRIVER_OK)
        return self.driver

    def request(self, type_: int, sector: int = 0, data: bytes = b"", in_len: int = 0,
                indirect: bool = False) -> tuple[int, int, bytes]:  # fmt: skip
        """One request (header, data out, data in of ``in_len``, status): (status, used len, data in)."""
        assert self.driver is not None
        header = struct.pack("<IIQ", type_, 0, sector)
        out = [header, data] if data else [header]
        in_lens = [in_len, 1] if in_len else [1]
        head, ins = self.driver.add(out, in_lens, indirect=indirect)
        for addr, n in zip(ins, in_lens, strict=True):  # the driver's buffers hold junk before the device writes
            self.driver.poke(addr, b"\xee" * n)
        w(self.dev, vm.QUEUE_NOTIFY, 0)
        used = self.driver.used()
        assert [h for h, _ in used] == [head]
        status = self.driver.peek(ins[-1], 1)[0]
        return status, used[0][1], self.driver.peek(ins[0], in_len) if in_len else b""

    def close(self) -> None:
        self.image.close()


@pytest.fixture
def blk_factory():  # noqa: ANN201
    made: list[Blk] = []

    def build(*args, **kwargs) -> Blk:  # noqa: ANN002, ANN003
        made.append(Blk(*args, **kwargs))
        return made[-1]

    yield build
    for b in made:
        b.close()
    assert image_digest() == IMAGE_SHA256  # the image file is never written


# -- identity ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("readonly", [False, True], ids=["rw", "ro"])
@BOTH
def test_feature_words_are_qemus(blk_factory, legacy: bool, readonly: bool) -> None:  # noqa: ANN001
    dev = blk_factory(legacy, readonly).dev
    ro = vb.VIRTIO_BLK_F_RO if readonly else 0
    assert r(dev, vm.DEVICE_ID) == 2
    w(dev, vm.DEVICE_FEATURES_SEL, 0)
    assert r(dev, vm.DEVICE_FEATURES) == (0x31006ED4 if legacy else 0x30006E54) | ro
    w(dev, vm.DEVICE_FEATURES_SEL, 1)
    assert r(dev, vm.DEVICE_FEATURES) == (0 if legacy else 0x101)
    w(dev, vm.QUEUE_SEL, 0)
    assert r(dev, vm.QUEUE_NUM_MAX) == 1024  # VIRTQUEUE_MAX_SIZE, not queue-size
    assert dev.queue_num[0] == 256 and r(dev, vm.QUEUE_NUM_MAX) == 1024
    w(dev, vm.QUEUE_SEL, 1)
    assert r(dev, vm.QUEUE_NUM_MAX) == 0  # one queue


@BOTH
def test_config_space_is_qemus(blk_factory, legacy: bool) -> None:  # noqa: ANN001
    dev = blk_factory(legacy).dev
    words = [dev.read(vm.CONFIG + 4 * i, 4) for i in range(len(QEMU_CONFIG_WORDS))]
    assert [hex(x) for x in words] == [hex(x) for x in QEMU_CONFIG_WORDS]
    assert dev.read(vm.CONFIG + 0x13C - 0x100, 4) == 0xFFFF_FFFF  # past the config: all ones
    assert dev.read(vm.CONFIG + 0x13A, 4) == 0xFFFF_FFFF  # straddling the end
    assert dev.read(vm.CONFIG + 0x10, 2) == 2 and dev.read(vm.CONFIG + 0x12, 1) == 16  # cylinders, heads
    assert dev.read(vm.CONFIG + 0x13, 1) == 63 and dev.read(vm.CONFIG + 0x22, 2) == 1  # sectors, num_queues
    assert dev.read(vm.CONFIG, 8) == SECTORS


def test_the_driver_may_turn_the_write_cache_off(blk_factory) -> None:  # noqa: ANN001
    b = blk_factory(False)
    b.dev.write(vm.CONFIG + vb.CONFIG_WRITEBACK, 1, 0)
    assert b.dev.read(vm.CONFIG + 0x20, 4) == 0x00010000
    assert b.blk.save_config() == VirtioBlkState(False)
    b.dev.write(vm.CONFIG + 0x20, 4, 0xFFFF_FF01)  # only writeback is taken (num_queues stays 1)
    assert b.dev.read(vm.CONFIG + 0x20, 4) == 0x00010001
    b.dev.write(vm.CONFIG + 0x1C, 4, 0)  # not covering writeback
    w(b.dev, vm.STATUS, 0)  # a reset keeps it, as QEMU
    assert b.blk.writeback
    b.blk.load_config(VirtioBlkState(False))
    assert b.dev.read(vm.CONFIG + 0x20, 1) == 0
    with pytest.raises(FieldError):
        b.blk.load_config(VirtioBlkState(2))  # type: ignore[arg-type]


def test_geometry_follows_qemus_guess() -> None:
    blank = bytes(SECTOR)
    assert guess_geometry(blank, 128) == vb.Geometry(2, 16, 63)  # small disks: at least 2 cylinders
    assert guess_geometry(blank, 1008 * 100 + 5) == vb.Geometry(100, 16, 63)
    assert guess_geometry(blank, 1 << 40) == vb.Geometry(16383, 16, 63)
    mbr = bytearray(SECTOR)
    mbr[510:512] = b"\x55\xaa"
    entry = 0x1BE + 16  # the second entry: the first is empty
    mbr[entry + 5], mbr[entry + 6] = 3, 32  # end head 3 (4 heads), end sector 32
    mbr[entry + 12 : entry + 16] = (1000).to_bytes(4, "little")
    assert guess_geometry(bytes(mbr), 4 * 32 * 50) == vb.Geometry(50, 4, 32)
    mbr[entry + 5] = 254  # 255 heads: a translated BIOS geometry; the standard one is used
    assert guess_geometry(bytes(mbr), 4 * 32 * 50) == vb.Geometry(6, 16, 63)


# -- requests ---------------------------------------------------------------------------------------------

FEATURES = vb.VIRTIO_BLK_F_FLUSH


@BOTH
def test_the_virtioblk_guest_transcript(blk_factory, legacy: bool) -> None:  # noqa: ANN001
    """What tests/guests/riscv/virtioblk.c does and prints (expected/virtioblk.out), on both interfaces."""
    b = blk_factory(legacy)
    w(b.dev, vm.DEVICE_FEATURES_SEL, 0)
    assert r(b.dev, vm.DEVICE_FEATURES) & vb.VIRTIO_BLK_F_FLUSH  # "flush offered"
    b.start(FEATURES)
    assert b.dev.read(vm.CONFIG, 4) | b.dev.read(vm.CONFIG + 4, 4) << 32 == SECTORS
    status, used, data = b.request(vb.VIRTIO_BLK_T_IN, 0, in_len=SECTOR)
    assert (status, used) == (0, 513)
    assert f"{zlib.crc32(data):08x}" == "50387ae0"
    assert data[:16].hex(" ") == "43 48 52 4f 4e 49 43 4f 52 4e 20 56 49 52 54 49"
    pattern = bytes(((j * 7 + 0x42) ^ (j >> 8)) & 0xFF for j in range(SECTOR))
    assert b.request(vb.VIRTIO_BLK_T_OUT, 1, pattern)[:2] == (0, 1)
    assert b.request(vb.VIRTIO_BLK_T_FLUSH)[:2] == (0, 1)
    assert b.request(vb.VIRTIO_BLK_T_IN, 1, in_len=SECTOR) == (0, 513, pattern)
    status, used, data = b.request(vb.VIRTIO_BLK_T_IN, 2, in_len=8 * SECTOR)
    assert (status, used, f"{zlib.crc32(data):08x}") == (0, 4097, "678f383e")
    assert b.disk.read(0, SECTORS * SECTOR) == sector_pattern(0) + pattern + b"".join(
        sector_pattern(i) for i in range(2, SECTORS)
    )


@BOTH
def test_statuses_and_used_lengths(blk_factory, legacy: bool) -> None:  # noqa: ANN001
    b = blk_factory(legacy, features=FEATURES)
    IN, OUT = vb.VIRTIO_BLK_T_IN, vb.VIRTIO_BLK_T_OUT  # noqa: N806
    assert b.request(IN, SECTORS - 1, in_len=SECTOR)[:2] == (0, 513)  # the last sector
    assert b.request(IN, SECTORS - 1, in_len=2 * SECTOR)[:2] == (1, 1025)  # past the end: IOERR, len all the same
    assert b.request(IN, SECTORS, in_len=SECTOR)[:2] == (1, 513)
    assert b.request(IN, 1 << 63, in_len=SECTOR)[:2] == (1, 513)
    assert b.request(IN, 0, in_len=100)[:2] == (1, 101)  # not whole blocks
    assert b.request(OUT, 0, b"x" * 100)[:2] == (1, 1)
    assert b.request(OUT, SECTORS, b"x" * SECTOR)[:2] == (1, 1)
    status, used, data = b.request(IN, 3, in_len=SECTOR)
    assert (status, data) == (0, sector_pattern(3))
    status, used, data = b.request(IN | vb.VIRTIO_BLK_T_BARRIER, 3, in_len=SECTOR)  # the barrier bit is ignored
    assert (status, data) == (0, sector_pattern(3))
    assert b.request(5)[:2] == (0, 1)  # FLUSH with the OUT bit: still a FLUSH (QEMU masks OUT)
    # GET_ID: QEMU's empty serial gives one NUL byte; the rest of the buffer is left as it was.
    status, used, data = b.request(vb.VIRTIO_BLK_T_GET_ID, in_len=20)
    assert (status, used, data) == (0, 21, b"\0" + b"\xee" * 19)
    for unknown in (6, 7, 10, 12, 16, 0x7FFF_FFFF):  # 10, 12: discard / write zeroes without OUT
        assert b.request(unknown, in_len=8)[:2] == (2, 9), unknown
    assert b.request(vb.VIRTIO_BLK_T_SCSI_CMD)[:2] == (1, 1)  # not shaped as a SCSI request
    assert b.disk.read(0, SECTORS * SECTOR) == b"".join(sector_pattern(i) for i in range(SECTORS))  # all refused


def dwz(sector: int, num: int, flags: int = 0) -> bytes:
    return struct.pack("<QII", sector, num, flags)


@BOTH
def test_discard_and_write_zeroes(blk_factory, legacy: bool) -> None:  # noqa: ANN001
    b = blk_factory(legacy, features=FEATURES)
    D, Z = vb.VIRTIO_BLK_T_DISCARD, vb.VIRTIO_BLK_T_WRITE_ZEROES  # noqa: N806
    assert b.request(D, data=dwz(4, 2))[:2] == (0, 1)
    assert b.disk.read(4 * SECTOR, SECTOR) == sector_pattern(4)  # discard=ignore: nothing changes
    assert b.request(D, data=dwz(4, 2, 1))[:2] == (2, 1)  # discard with UNMAP: UNSUPP
    assert b.request(Z, data=dwz(5, 3))[:2] == (0, 1)
    assert b.request(Z, data=dwz(10, 1, vb.VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))[:2] == (0, 1)
    assert b.request(vb.VIRTIO_BLK_T_IN, 4, in_len=8 * SECTOR)[2] == (
        sector_pattern(4) + bytes(3 * SECTOR) + sector_pattern(8) + sector_pattern(9) + bytes(SECTOR)
        + sector_pattern(11)
    )  # fmt: skip
    assert b.request(Z, data=dwz(SECTORS - 1, 2))[:2] == (1, 1)  # past the end
    assert b.request(Z, data=dwz(0, 0x40_0000))[:2] == (1, 1)  # more than max_write_zeroes_sectors
    assert b.request(Z, data=dwz(0, 1, 2))[:2] == (2, 1)  # an unknown flag
    assert b.request(Z, data=dwz(0, 1) + b"\0")[:2] == (2, 1)  # more than one segment's worth
    assert b.request(Z, data=dwz(0, 0))[:2] == (0, 1)
    assert b.request(vb.VIRTIO_BLK_T_IN, 0, in_len=SECTOR)[2] == sector_pattern(0)


@BOTH
def test_a_read_only_drive_refuses_writes(blk_factory, legacy: bool) -> None:  # noqa: ANN001
    b = blk_factory(legacy, readonly=True, features=FEATURES | vb.VIRTIO_BLK_F_RO)
    assert b.request(vb.VIRTIO_BLK_T_OUT, 1, b"\0" * SECTOR)[:2] == (1, 1)
    assert b.request(vb.VIRTIO_BLK_T_WRITE_ZEROES, data=dwz(1, 1))[:2] == (1, 1)
    assert b.request(vb.VIRTIO_BLK_T_DISCARD, data=dwz(1, 1))[:2] == (0, 1)  # discard=ignore: nothing to refuse
    assert b.request(vb.VIRTIO_BLK_T_FLUSH)[:2] == (0, 1)
    assert b.request(vb.VIRTIO_BLK_T_IN, 1, in_len=SECTOR) == (0, 513, sector_pattern(1))


@BOTH
def test_indirect_requests_and_any_layout(blk_factory, legacy: bool) -> None:  # noqa: ANN001
    b = blk_factory(legacy, features=FEATURES | VIRTIO_RING_F_INDIRECT_DESC)
    assert b.request(vb.VIRTIO_BLK_T_IN, 7, in_len=2 * SECTOR, indirect=True) == (
        0, 1025, sector_pattern(7) + sector_pattern(8))  # fmt: skip
    # Header and data in one buffer, data and status in one buffer: decoded by offsets, as QEMU does.
    assert b.driver is not None
    head, ins = b.driver.add([struct.pack("<IIQ", 1, 0, 20) + b"\x5a" * SECTOR], [1])
    w(b.dev, vm.QUEUE_NOTIFY, 0)
    assert b.driver.used() == [(head, 1)] and b.driver.peek(ins[0], 1) == b"\0"
    head, ins = b.driver.add([struct.pack("<IIQ", 0, 0, 20)], [SECTOR + 1])
    w(b.dev, vm.QUEUE_NOTIFY, 0)
    assert b.driver.used() == [(head, SECTOR + 1)]
    assert b.driver.peek(ins[0], SECTOR + 1) == b"\x5a" * SECTOR + b"\0"


@pytest.mark.parametrize(
    "out, in_lens",
    [
        ([b"\0" * 15], [1]),  # header too short
        ([struct.pack("<IIQ", 0, 0, 0)], []),  # no status byte
        ([struct.pack("<IIQ", vb.VIRTIO_BLK_T_WRITE_ZEROES, 0, 0), b"\0" * 8], [1]),  # short discard header
    ],
    ids=["short-header", "no-status", "short-dwz"],
)
def test_malformed_requests_need_a_reset(blk_factory, out: list[bytes], in_lens: list[int]) -> None:  # noqa: ANN001
    b = blk_factory(False, features=FEATURES)
    assert b.driver is not None
    b.driver.add(out, in_lens)
    w(b.dev, vm.QUEUE_NOTIFY, 0)
    assert r(b.dev, vm.STATUS) & vm.STATUS_NEEDS_RESET
    assert r(b.dev, vm.INTERRUPT_STATUS) & vm.INT_CONFIG_CHANGE


# -- state ------------------------------------------------------------------------------------------------


def test_save_and_load_restore_the_disk(blk_factory) -> None:  # noqa: ANN001
    b = blk_factory(True, features=FEATURES)
    start = b.blk.save()
    assert start.written_bytes == 0
    b.request(vb.VIRTIO_BLK_T_OUT, 9, b"\x11" * SECTOR)
    after_one = b.blk.save()
    b.request(vb.VIRTIO_BLK_T_OUT, 100, b"\x22" * 2 * SECTOR)
    b.request(vb.VIRTIO_BLK_T_WRITE_ZEROES, data=dwz(9, 1))
    after_three = b.blk.save()
    assert after_three.table.nodes != after_one.table.nodes
    b.blk.load(after_one)
    assert b.request(vb.VIRTIO_BLK_T_IN, 9, in_len=SECTOR)[2] == b"\x11" * SECTOR
    assert b.request(vb.VIRTIO_BLK_T_IN, 100, in_len=SECTOR)[2] == sector_pattern(100)
    b.blk.load(after_three)
    assert b.request(vb.VIRTIO_BLK_T_IN, 9, in_len=SECTOR)[2] == bytes(SECTOR)
    assert b.request(vb.VIRTIO_BLK_T_IN, 101, in_len=SECTOR)[2] == b"\x22" * SECTOR
    b.blk.load(start)
    assert b.disk.read(0, SECTORS * SECTOR) == IMAGE.read_bytes()
    w(b.dev, vm.STATUS, 0)  # a device reset does not touch the disk
    b.blk.load(after_one)
    w(b.dev, vm.STATUS, 0)
    assert b.disk.read(9 * SECTOR, SECTOR) == b"\x11" * SECTOR


# -- a model --------------------------------------------------------------------------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("in"), st.integers(0, SECTORS + 2), st.integers(0, 9), st.sampled_from([0, 0, 0, 100])),
        st.tuples(st.just("out"), st.integers(0, SECTORS + 2), st.integers(0, 9), st.integers(0, 255)),
        st.tuples(st.just("zeroes"), st.integers(0, SECTORS + 2), st.integers(0, 9), st.integers(0, 1)),
        st.tuples(st.just("discard"), st.integers(0, SECTORS + 2), st.integers(0, 9), st.integers(0, 1)),
        st.tuples(st.just("flush"), st.just(0), st.just(0), st.just(0)),
        st.tuples(st.just("save"), st.just(0), st.just(0), st.just(0)),
        st.tuples(st.just("load"), st.integers(0, 5), st.just(0), st.just(0)),
    ),
    max_size=30,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, legacy=st.booleans(), readonly=st.booleans())
def test_random_requests_agree_with_a_bytearray_model(blk_factory, ops: list, legacy: bool, readonly: bool) -> None:  # noqa: ANN001
    b = blk_factory(legacy, readonly, features=FEATURES, num=16)
    model = bytearray(IMAGE.read_bytes())
    saved: list[tuple[object, bytes]] = []
    for op, sector, count, extra in ops:
        inside = sector + count <= SECTORS
        start, size = sector * SECTOR, count * SECTOR
        if op == "in":
            length = size + extra  # extra: not whole blocks
            status, used, data = b.request(vb.VIRTIO_BLK_T_IN, sector, in_len=length)
            ok = inside and not extra
            assert (status, used) == (0 if ok else 1, length + 1)
            if ok and length:
                assert data == model[start : start + size]
        elif op == "out":
            payload = bytes([extra]) * size
            status, used, _ = b.request(vb.VIRTIO_BLK_T_OUT, sector, payload)
            ok = inside and not readonly
            assert (status, used) == (0 if ok else 1, 1)
            if ok:
                model[start : start + size] = payload
        elif op == "zeroes":
            status, used, _ = b.request(vb.VIRTIO_BLK_T_WRITE_ZEROES, data=dwz(sector, count, extra))
            ok = inside and not readonly
            assert (status, used) == (0 if ok else 1, 1)
            if ok:
                model[start : start + size] = bytes(size)
        elif op == "discard":
            status, used, _ = b.request(vb.VIRTIO_BLK_T_DISCARD, data=dwz(sector, count, extra))
            assert (status, used) == ((2 if extra else 0) if inside else 1, 1)
        elif op == "flush":
            assert b.request(vb.VIRTIO_BLK_T_FLUSH)[:2] == (0, 1)
        elif op == "save":
            saved.append((b.blk.save(), bytes(model)))
        elif saved:
            state, contents = saved[sector % len(saved)]
            b.blk.load(state)  # type: ignore[arg-type]
            model[:] = contents
    assert b.disk.read(0, SECTORS * SECTOR) == model
    assert not r(b.dev, vm.STATUS) & vm.STATUS_NEEDS_RESET
    assert not b.memory.outside
