"""Capture and restore the whole machine at an instruction boundary (the basis of snapshots).

A :class:`MachineState` holds the CPU as Unicorn's context (fast to take and put
back: snapshots cost ~0.2 ms), the non-zero RAM pages, each device's own frozen
state dataclass and the board's bookkeeping (:class:`BoardState`). Restoring one
and running forward gives the same states as the original run did (a test
proves it). Nothing is saved by attribute name: every field is declared.

Files hold a MachineState in one binary encoding (:func:`encode_state`,
:func:`decode_state`), little-endian, versioned as a whole and per part::

    magic "CHRNSTAT" | u16 format version | u8 xlen | u8 0 | u64 icount
    CPU      u16 register-list version | u16 count N | N x u64 (machine.arch.riscv_cpu.cpu_registers order)
    RAM      u32 count P | P x (u64 offset, 4096 bytes): the non-zero pages, offsets increasing
    devices  u16 count D | D x (u8 name length, name, u16 VERSION, u32 length, fields)
    board    u16 VERSION | u32 length | fields
    disks    u8 count K | K x (u8 virtio slot, 32-byte SHA-256 of the image, u64 disk size,
             u16 VERSION | u32 length | VirtioBlkState fields, u32 count W | W x (u64 offset, 4096 bytes))
    sounds   u8 count S | S x (u8 virtio slot, u16 VERSION | u32 length | VirtioSndState fields)
    (nothing after)

Format version 2 added the disks part and the eight virtio-mmio slots to the devices; a version 1 state
(before the board had virtio slots) is read with every slot empty and as after reset, on a machine with no
drives.

Fields are each state dataclass's declared kinds (:mod:`machine.fields`). The
CPU is saved as register values read through Unicorn's public register API,
not as Unicorn's private context bytes. What that leaves out (the LR/SC
reservation, the TLB, the address of a fault being raised) is listed in
:mod:`machine.arch.riscv_cpu`: none of it outlives the instruction boundary a
state is taken at in a way a correct guest can see. Decoding treats the bytes
as hostile: every count, length, offset and value is checked before use and
any malformed input raises :class:`StateError` with a one-line reason.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from unicorn import Uc
from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH
from unicorn.unicorn_py3.unicorn import UcContext

from .arch.common import CpuStateError
from .arch.riscv import SOFTWARE_WRITABLE_MIP
from .arch.riscv_cpu import CPU_STATE_VERSION
from .devices.base import checked
from .devices.plic import NUM_CONTEXTS
from .devices.virtio_blk import VirtioBlkState
from .devices.virtio_snd import VirtioSndState
from .fields import Bool, FieldError, Int, Optional, Reader, Tuple, check_fields, decode_fields, encode_fields, spec
from .overlay import OverlayState, overlay_table
from .ram import PAGE, PageTable

if TYPE_CHECKING:
    from .arch.registry import Arch
    from .machine import Machine

DIGEST_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class BoardState:
    """The board's bookkeeping outside Unicorn and the devices: machine, hart and clock fields.

    Field by field, where it lives: :data:`BOARD_ATTRIBUTES`.
    """

    VERSION: ClassVar[int] = 2  # 2: tx_digest
    halted: bool = spec(Bool())  # in wfi
    exit_code: int | None = spec(Optional(Int(16)))  # the guest wrote to the test finisher
    reset_requested: bool = spec(Bool())
    plic_out: tuple[bool, ...] = spec(Tuple(NUM_CONTEXTS, Bool()))  # the PLIC's outputs, per context
    msip: bool = spec(Bool())  # the CLINT's software interrupt line
    last_watch_stop: tuple[int, int] | None = spec(Optional(Tuple(2, Int(64))))  # (icount, pc) reported
    mip_soft: int = spec(Int(64, mask=SOFTWARE_WRITABLE_MIP))
    mcycle_offset: int = spec(Int(128, signed=True))
    minstret_offset: int = spec(Int(128, signed=True))
    bias_ns: int = spec(Int(64))  # the virtual clock's idle warps
    tx_digest: int = spec(Int(128))  # what the network devices sent so far (a running hash: verification points)


BOARD_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "halted": ("machine", "halted"),
    "exit_code": ("machine", "exit_code"),
    "reset_requested": ("machine", "reset_requested"),
    "plic_out": ("machine", "_plic_out"),
    "msip": ("machine", "_msip"),
    "last_watch_stop": ("machine", "_last_watch_stop"),
    "mip_soft": ("hart", "mip_soft"),
    "mcycle_offset": ("hart", "mcycle_offset"),
    "minstret_offset": ("hart", "minstret_offset"),
    "bias_ns": ("clock", "bias_ns"),
    "tx_digest": ("machine", "tx_digest"),
}
"""BoardState field -> (owner, attribute): the test that every board attribute is saved reads this."""


@dataclass(frozen=True, slots=True)
class DiskState:
    """One virtio-blk drive: its written pages (sharing unwritten ones with earlier states) and its config."""

    slot: int
    image_sha256: str  # the image underneath (a file's state names it; decoding checks it is the drive's)
    size: int  # bytes
    overlay: OverlayState
    config: VirtioBlkState


@dataclass(frozen=True, slots=True)
class MachineState:
    """Everything needed to resume the machine exactly where it was."""

    icount: int
    context: UcContext  # Unicorn's own (uc.context_save()): fast; files hold register values instead
    ram: PageTable  # shares unchanged pages with the states captured before it
    devices: tuple[tuple[str, Any], ...]  # (name, the device's frozen state), by name
    board: BoardState
    disks: tuple[DiskState, ...] = ()  # by slot, one per drive
    sounds: tuple[tuple[int, VirtioSndState], ...] = ()  # (slot, state) of each sound device, by slot
    # Made by capture() from a live machine: valid by construction, so restore() skips checking it again.
    trusted: bool = field(default=False, compare=False, repr=False)

    @property
    def ram_bytes(self) -> int:
        return self.ram.ram_bytes


def capture(machine: Machine) -> MachineState:
    """The whole machine now (between instructions)."""
    devices = tuple((name, device.save()) for name, device in sorted(machine.devices.items()))
    disks = tuple(DiskState(slot, disk.disk.image.sha256, disk.disk.size, disk.save(), disk.save_config())
                  for slot, disk in sorted(machine.disks.items()))  # fmt: skip
    sounds = tuple((slot, sound.save()) for slot, sound in sorted(machine.slots.sounds.items()))
    return MachineState(machine.icount, machine.uc.context_save(), machine.ram_pages.capture(), devices,
                        machine.capture_board(), disks, sounds, trusted=True)  # fmt: skip


def restore(machine: Machine, state: MachineState) -> None:
    """Put a captured state back; breakpoints and watchpoints stay as they are.

    An invalid state (FieldError, TypeError, KeyError: only ever built by hand, :func:`capture` and
    :func:`decode_state` give valid ones) is refused with the machine unchanged. A state :func:`capture`
    made (``trusted``) is not checked again: that cost ~50 us of every step back.
    """
    if state.trusted:
        for name, saved in state.devices:
            machine.devices[name].load(saved, check=False)
    else:
        if {name for name, _ in state.devices} != machine.devices.keys():
            raise KeyError(f"devices {sorted(n for n, _ in state.devices)}, the machine has {sorted(machine.devices)}")
        if type(state.board) is not machine.board_state_type:
            raise TypeError(f"{machine.board_state_type.__name__} expected, got {type(state.board).__name__}")
        check_fields(state.board)
        _check_disks(machine, state.disks)
        if [slot for slot, _ in state.sounds] != sorted(machine.slots.sounds):
            raise KeyError(f"sound devices in slots {[s for s, _ in state.sounds]}, the machine has "
                           f"{sorted(machine.slots.sounds)}")  # fmt: skip
        for _, sound_state in state.sounds:
            checked(sound_state, VirtioSndState)
        _load_devices(machine, state.devices)
    for slot, sound_state in state.sounds:
        machine.slots.sounds[slot].load(sound_state, check=False)
    for disk in state.disks:
        machine.disks[disk.slot].load(disk.overlay)
        machine.disks[disk.slot].load_config(disk.config, check=False)
    rewritten = machine.ram_pages.restore(state.ram)
    machine.uc.context_restore(state.context)
    # Unicorn keeps its TLB across context_restore and TB flushes: entries of the state we leave would
    # translate addresses for the restored one (its page tables may differ). Flushing costs ~3 us.
    machine.uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)
    machine.engine.icount = state.icount
    machine.restore_board(state.board)
    # RAM (and so code) may have changed under Unicorn's translations and our block counts.
    machine.forget_translations(rewritten)


def _check_disks(machine: Machine, disks: tuple[DiskState, ...]) -> None:
    """TypeError/KeyError/FieldError unless ``disks`` fit the machine's drives one for one."""
    if [d.slot for d in disks] != sorted(machine.disks):
        raise KeyError(f"disks in slots {[d.slot for d in disks]}, the machine has {sorted(machine.disks)}")
    for disk in disks:
        if type(disk.overlay) is not OverlayState or type(disk.config) is not VirtioBlkState:
            raise TypeError("a disk state of the wrong type")
        check_fields(disk.config)
        drive = machine.disks[disk.slot].disk
        if disk.size != drive.size or len(disk.overlay.table.nodes) != len(PageTable.empty(drive.size).nodes):
            raise FieldError(f"the disk in slot {disk.slot} has another size than the state's")


def _load_devices(machine: Machine, states: tuple[tuple[str, Any], ...]) -> None:
    """Each device takes its state (each validates it), or, if one refuses, all keep their own."""
    previous = [(device, device.save()) for device in machine.devices.values()]
    try:
        for name, saved in states:
            machine.devices[name].load(saved)
    except Exception:
        for device, own in previous:
            device.load(own)
        raise


def forget_reservation(machine: Machine) -> None:
    """Drop what a state file cannot carry from the live CPU: the LR/SC reservation (and a stale fault address).

    A later SC fails, as the ISA allows at any time (a context switch does the same). Call it where a state
    that goes to a file is taken from a live run (a debugger write's keyframe): the live run then goes on
    exactly as a replay from the file will. Costs ~2 ms.
    """
    arch = machine.arch
    machine.uc.context_restore(arch.build_context(arch.read_cpu(machine.uc.context_save(), machine.uc), machine.uc))


def state_digest(machine: Machine) -> str:
    """SHA-256 of everything guest-visible: registers, CSRs, RAM, devices, clock."""
    h = hashlib.sha256()
    values = (*machine.cpu_digest_values(), machine.icount, machine.clock.bias_ns, int(machine.halted),
              machine.tx_digest)  # fmt: skip
    for value in values:
        h.update(value.to_bytes(16, "little", signed=True))
    ram, zero = machine.ram, bytes(DIGEST_CHUNK)
    for offset in range(0, len(ram), DIGEST_CHUNK):
        data = ram[offset : offset + DIGEST_CHUNK]  # a copy; comparing bytes is a memcmp
        if data != zero[: len(data)]:
            h.update(offset.to_bytes(8, "little"))
            h.update(data)
    for name, device in sorted(machine.devices.items()):
        h.update(name.encode())
        h.update(encode_fields(device.save()))
    for slot, sound in sorted(machine.slots.sounds.items()):
        h.update(bytes((slot,)) + encode_fields(sound.save()))
    for slot, disk in sorted(machine.disks.items()):  # what the guest wrote (the image is the same every run)
        h.update(bytes((slot,)) + encode_fields(disk.save_config()))
        for offset, page in disk.save().table.chunks():
            h.update(offset.to_bytes(8, "little"))
            h.update(page)  # (a spilled page is a view of the spill file)
    return h.hexdigest()


# -- files ------------------------------------------------------------------------------------------
MAGIC = b"CHRNSTAT"
FORMAT_VERSION = 2  # 2: the virtio-mmio slots and the disks
READABLE_VERSIONS = (1, 2)
_HEADER = struct.Struct("<8sHBBQ")
_U8, _U16, _U32, _U64 = (struct.Struct(f"<{c}") for c in "BHIQ")


class StateError(ValueError):
    """Bytes that do not hold a machine state this machine can take (the message says why, in one line)."""


def encode_state(state: MachineState, arch: Arch, uc: Uc | None = None) -> bytes:
    """A machine state as bytes (layout in the module docstring); ``arch`` is the machine's, ``uc`` its Unicorn
    (the CPU's registers are read through it: Arm M-profile contexts cannot move between Unicorn instances)."""
    out = bytearray(_HEADER.pack(MAGIC, FORMAT_VERSION, arch.state_code, 0, state.icount))
    values = arch.read_cpu(state.context, uc)
    out += _U16.pack(CPU_STATE_VERSION) + _U16.pack(len(values))
    out += struct.pack(f"<{len(values)}Q", *values)
    _write_pages(out, state.ram)
    out += _U16.pack(len(state.devices))
    for name, device_state in state.devices:
        raw = name.encode("ascii")
        body = encode_fields(device_state)
        out += _U8.pack(len(raw)) + raw + _U16.pack(type(device_state).VERSION) + _U32.pack(len(body)) + body
    body = encode_fields(state.board)
    out += _U16.pack(type(state.board).VERSION) + _U32.pack(len(body)) + body
    out += _U8.pack(len(state.disks))
    for disk in state.disks:
        body = encode_fields(disk.config)
        out += _U8.pack(disk.slot) + bytes.fromhex(disk.image_sha256) + _U64.pack(disk.size)
        out += _U16.pack(VirtioBlkState.VERSION) + _U32.pack(len(body)) + body
        _write_pages(out, disk.overlay.table)
    out += _U8.pack(len(state.sounds))
    for slot, sound_state in state.sounds:
        body = encode_fields(sound_state)
        out += _U8.pack(slot) + _U16.pack(VirtioSndState.VERSION) + _U32.pack(len(body)) + body
    return bytes(out)


def _write_pages(out: bytearray, table: PageTable) -> None:
    """u32 count, then (u64 offset, 4096 bytes) per page the table holds, offsets increasing."""
    pages = list(table.chunks())
    out += _U32.pack(len(pages))
    for offset, page in pages:
        out += _U64.pack(offset)
        out += page  # (a spilled disk page is a view of the spill file: no bytes + memoryview)


DiskShape = tuple[int, int, str]
"""A drive as a state must hold it: (virtio slot, size in bytes, the image's SHA-256)."""


def disk_shapes(machine: Machine) -> tuple[DiskShape, ...]:
    return tuple((slot, d.disk.size, d.disk.image.sha256) for slot, d in sorted(machine.disks.items()))


def decode_state(
    data: bytes | memoryview, machine: Machine, disks: tuple[DiskShape, ...] | None = None
) -> MachineState:
    """Inverse of :func:`encode_state`: a state restorable into ``machine`` (same arch, RAM size, devices, drives).

    ``disks``: check the disks against these instead of the machine's drives (the state is then only checked,
    e.g. by ``info`` without the images). Raises StateError for anything but a well-formed state for this machine.
    """
    try:
        return _decode(Reader(data), machine, disk_shapes(machine) if disks is None else disks)
    except FieldError as exc:
        raise StateError(f"malformed machine state: {exc}") from None
    except CpuStateError as exc:
        raise StateError(f"machine state has a bad CPU: {exc}") from None


def _decode(reader: Reader, machine: Machine, shapes: tuple[DiskShape, ...]) -> MachineState:
    magic, version, code, _, icount = reader.unpack(_HEADER, "header")
    if magic != MAGIC:
        raise StateError("not a chronicorn machine state (bad magic)")
    if version not in READABLE_VERSIONS:
        raise StateError(f"machine state format version {version}, this chronicorn reads "
                         f"{', '.join(map(str, READABLE_VERSIONS))}")  # fmt: skip
    if version == 1 and shapes:
        raise StateError("a machine state from before virtio slots (version 1) cannot have drives")
    if code != machine.arch.state_code:
        what = f"a {code}-bit hart" if code in (32, 64) else "another architecture"
        raise StateError(f"machine state of {what}, the machine is {machine.arch.name}")
    context = _decode_cpu(reader, machine.arch, machine.uc)
    ram = _decode_ram(reader, machine.config.ram_size)
    devices = _decode_devices(reader, machine, version)
    board = _decode_board(reader, machine.board_state_type)
    disks = _decode_disks(reader, shapes) if version >= 2 else ()
    sounds = _decode_sounds(reader, machine) if version >= 2 else ()
    reader.expect_end("the machine state")
    return MachineState(icount, context, ram, devices, board, disks, sounds)


def _decode_board(reader: Reader, board_type: type) -> Any:
    (board_version,) = reader.unpack(_U16, "board version")
    known = (1, BoardState.VERSION) if board_type is BoardState else (board_type.VERSION,)
    if board_version not in known:
        raise StateError(f"board state version {board_version}, this chronicorn has {board_type.VERSION}")
    body = bytes(_body(reader, "board"))
    # RISC-V virt's version 1 had every field but tx_digest, the last one (16 bytes): nothing was ever sent.
    return decode_fields(board_type, body + bytes(16) if board_version == 1 and board_type is BoardState else body)


def _decode_sounds(reader: Reader, machine: Machine) -> tuple[tuple[int, VirtioSndState], ...]:
    (count,) = reader.unpack(_U8, "sound device count")
    if count != len(machine.slots.sounds):
        raise StateError(f"{count} sound devices in the state, the machine has {len(machine.slots.sounds)}")
    sounds = []
    for slot in sorted(machine.slots.sounds):
        (found,) = reader.unpack(_U8, "sound device slot")
        (version,) = reader.unpack(_U16, "sound device version")
        if found != slot or version != VirtioSndState.VERSION:
            raise StateError(f"a sound device state of version {version} in slot {found}: this machine has "
                             f"version {VirtioSndState.VERSION} in slot {slot}")  # fmt: skip
        sounds.append((slot, decode_fields(VirtioSndState, _body(reader, "sound device"))))
    return tuple(sounds)


def _decode_disks(reader: Reader, shapes: tuple[DiskShape, ...]) -> tuple[DiskState, ...]:
    (count,) = reader.unpack(_U8, "disk count")
    if count != len(shapes):
        raise StateError(f"{count} disks in the state, the machine has {len(shapes)} drives")
    disks = []
    for slot, drive_size, drive_sha256 in shapes:
        (found,) = reader.unpack(_U8, "disk slot")
        sha256 = bytes(reader.take(32, "disk image digest")).hex()
        (size,) = reader.unpack(_U64, "disk size")
        if found != slot or size != drive_size:
            raise StateError(f"a disk of {size} bytes in slot {found}: the machine has {drive_size} in slot {slot}")
        if sha256 != drive_sha256:
            raise StateError(f"the disk in slot {slot} was written over image sha256 {sha256[:16]}..., the drive's "
                             f"image is sha256 {drive_sha256[:16]}...")  # fmt: skip
        (config_version,) = reader.unpack(_U16, "disk config version")
        if config_version != VirtioBlkState.VERSION:
            raise StateError(f"disk config version {config_version}, this chronicorn has {VirtioBlkState.VERSION}")
        config = decode_fields(VirtioBlkState, _body(reader, "disk config"))
        written = _read_pages(reader, size, f"disk (slot {slot})")
        disks.append(DiskState(slot, sha256, size, OverlayState(overlay_table(size, written)), config))
    return tuple(disks)


def _decode_cpu(reader: Reader, arch: Arch, uc: Uc) -> UcContext:
    version, count = reader.unpack(_U16, "CPU version")[0], reader.unpack(_U16, "CPU count")[0]
    if version != CPU_STATE_VERSION:
        raise StateError(f"CPU register list version {version}, this chronicorn has {CPU_STATE_VERSION}")
    expected = arch.cpu_register_count()
    if count != expected:
        raise StateError(f"{count} CPU registers, {arch.name} has {expected}")
    values = struct.unpack(f"<{count}Q", reader.take(8 * count, "CPU registers"))
    return arch.build_context(values, uc)


def _decode_ram(reader: Reader, ram_size: int) -> PageTable:
    return PageTable.from_chunks(ram_size, _read_pages(reader, ram_size, "RAM"))


def _read_pages(reader: Reader, size: int, what: str) -> list[tuple[int, bytes]]:
    """u32 count, then (u64 offset, 4096 bytes) pages of a ``size``-byte space, offsets increasing."""
    (count,) = reader.unpack(_U32, f"{what}: page count")
    limit = -(-size // PAGE)
    if count > limit or count * (8 + PAGE) > reader.remaining:
        raise StateError(f"{count} {what} pages: more than {what} has ({limit}) or than the bytes left hold")
    pages, previous = [], -1
    for _ in range(count):
        (offset,) = reader.unpack(_U64)
        if offset % PAGE or offset >= size or offset <= previous:
            raise StateError(f"{what} page at {offset:#x}: not page-aligned, outside {what}, or out of order")
        pages.append((offset, bytes(reader.take(PAGE))))
        previous = offset
    return pages


def _decode_devices(reader: Reader, machine: Machine, version: int) -> tuple[tuple[str, Any], ...]:
    (count,) = reader.unpack(_U16, "device count")
    # Version 1 states come from a board without virtio slots: those are as after reset.
    devices: dict[str, Any] = {} if version >= 2 else dict(machine.slots.reset_states)
    if count + len(devices) != len(machine.devices):
        raise StateError(f"{count} devices in the state, the machine has {len(machine.devices) - len(devices)}")
    for _ in range(count):
        (length,) = reader.unpack(_U8, "device name length")
        try:
            name = bytes(reader.take(length, "device name")).decode("ascii")
        except UnicodeDecodeError:
            raise StateError("a device name is not ASCII") from None
        device = machine.devices.get(name)
        if device is None or name in devices:
            raise StateError(f"device {name!r} is unknown to this machine or appears twice")
        (version,) = reader.unpack(_U16, "device version")
        if version != device.state_type.VERSION:
            raise StateError(f"device {name} state version {version}, this chronicorn has {device.state_type.VERSION}")
        devices[name] = decode_fields(device.state_type, _body(reader, name))
    return tuple(sorted(devices.items()))


def _body(reader: Reader, what: str) -> memoryview:
    (length,) = reader.unpack(_U32, f"{what} length")
    return reader.take(length, f"{what} state")
