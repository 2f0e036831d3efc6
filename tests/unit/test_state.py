"""machine/state.py: explicit device and board state, and the one file encoding of a MachineState."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
from dataclasses import fields
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unicorn import riscv_const as rc
from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH

from machine.arch.riscv_cpu import CPU_STATE_VERSION, cpu_registers, read_cpu
from machine.arm_virt import ArmBoardState, ArmVirtMachine
from machine.clock import VirtualClock
from machine.devices.armv7m_scs import ScsState
from machine.devices.clint import ClintState
from machine.devices.cmsdk_timer import CmsdkTimerState
from machine.devices.cmsdk_uart import CmsdkUartState
from machine.devices.fw_cfg import FwCfgState
from machine.devices.gicv2 import GicCpuInterfaceState, GicV2State
from machine.devices.gpex import GpexEcamState
from machine.devices.pflash_cfi01 import PflashCfi01State
from machine.devices.pl011 import Pl011State
from machine.devices.pl031 import Pl031State
from machine.devices.pl061 import Pl061State
from machine.devices.plic import PlicState
from machine.devices.rtc import RtcState
from machine.devices.test_finisher import FinisherState
from machine.devices.uart import UartState
from machine.devices.virtio_blk import VirtioBlkState
from machine.devices.virtio_mmio import VirtioMmioState
from machine.devices.virtio_snd import VirtioSndState
from machine.fields import fingerprint
from machine.inputs import ScriptedInputs
from machine.loader import load_image
from machine.machine import Machine
from machine.mps2 import Mps2BoardState, Mps2Machine
from machine.state import BOARD_ATTRIBUTES, BoardState, MachineState, StateError, decode_state, encode_state
from tests.conftest import GUESTS, ROOT, guest, make_machine

PROBES = GUESTS / "build" / "rv32" / "probes"

# -- every attribute is state or wiring ----------------------------------------------------------------

# Machine attributes that are not state: parts, configuration, per-run bookkeeping. Adding an attribute to
# Machine means deciding: state (a BoardState field and BOARD_ATTRIBUTES) or not (this list, with a reason).
MACHINE_NOT_STATE = {
    "arch", "image", "config", "inputs", "fdt_addr", "regions", "ram_base", "ram_windows",  # what it was built from
    "clock", "uc", "hart", "counter", "engine", "ram", "_ram_ptr", "ram_pages", "registers", "memory",  # parts
    "plic", "uart", "clint", "rtc", "finisher", "devices",  # the devices (their own state: below)
    "slots",  # the virtio slots: transports (devices too), drives (their state: MachineState.disks), network
    "frame_tap", "audio_sink",  # a capture of network frames (--pcap), a WAV of what it plays: not the guest's
    "trap_tap",  # who is told of each trap entered (the query engine): an observer, not the guest's
    "kernel", "initrd",  # --kernel and --initrd files (configuration: placed in RAM at reset, in the initial state)
    "_trace_hook",  # a debugging hook, not the guest's
    "timer_sites",  # native timer reads: a mirror of the clock taken before each run, and hooks (no state of its own)
    "_resumed_at",  # set at the start of every run
    "_trap_icount",  # where verification points may be taken; a restore sets it to "unknown" (the safe answer)
    "_trap_entry",  # spots a handler that faults on itself for ever; a restore forgets it (it re-detects)
}  # fmt: skip
HART_NOT_STATE = {"uc", "arch", "_run_csrs"}  # (a cache of three CSRs, forgotten at every restore)
CLOCK_NOT_STATE = {"shift"}  # configuration


def fresh_machine() -> Machine:
    return make_machine(guest("rv32", "timer"))


def test_every_device_attribute_is_in_its_saved_state() -> None:
    """Public attributes are exactly the state's fields; private ones are wiring (callbacks), never state."""
    machine = fresh_machine()
    for name, device in machine.devices.items():
        public = {k for k in vars(device) if not k.startswith("_")}
        assert public == {f.name for f in fields(device.state_type)}, name
        for key, value in vars(device).items():
            if key.startswith("_"):
                assert callable(value), f"{name}.{key} is private but not wiring: make it a state field"
        assert type(device.save()) is device.state_type


def test_every_board_attribute_is_in_the_board_state() -> None:
    machine = fresh_machine()
    assert set(BOARD_ATTRIBUTES) == {f.name for f in fields(BoardState)}
    owned = {owner: {attr for o, attr in BOARD_ATTRIBUTES.values() if o == owner} for owner in ("machine", "hart")}
    assert set(vars(machine)) - MACHINE_NOT_STATE == owned["machine"]
    assert set(vars(machine.hart)) - HART_NOT_STATE == owned["hart"]
    assert {f.name for f in fields(VirtualClock)} - CLOCK_NOT_STATE == {"bias_ns"}


def test_board_state_round_trips_every_field() -> None:
    """Each BoardState field is captured from and restored to the attribute BOARD_ATTRIBUTES names."""
    source = fresh_machine()
    source.run(2000)
    values = {
        "halted": True, "exit_code": 7, "reset_requested": True, "plic_out": (True, False), "msip": True,
        "last_watch_stop": (5, 0x8000_0010), "mip_soft": 1 << 9, "mcycle_offset": -3, "minstret_offset": 11,
        "bias_ns": 1234, "tx_digest": 0x0123_4567_89AB_CDEF << 64,
    }  # fmt: skip
    owners = {"machine": source, "hart": source.hart, "clock": source.clock}
    for name, value in values.items():
        owner, attr = BOARD_ATTRIBUTES[name]
        setattr(owners[owner], attr, list(value) if attr == "_plic_out" else value)
    state = source.save_state()
    assert {f.name: getattr(state.board, f.name) for f in fields(BoardState)} == values
    target = fresh_machine()
    target.restore_state(state)
    target_owners = {"machine": target, "hart": target.hart, "clock": target.clock}
    for name, value in values.items():
        owner, attr = BOARD_ATTRIBUTES[name]
        got = getattr(target_owners[owner], attr)
        assert (tuple(got) if attr == "_plic_out" else got) == value, name


def test_restore_refuses_an_invalid_state_and_changes_nothing() -> None:
    machine = fresh_machine()
    machine.run(3000)
    good = machine.save_state()
    digest = machine.digest()
    plic = dict(good.devices)["plic"]
    bad_devices = tuple((n, s if n != "plic" else PlicState(*(f[:-1] for f in fields_of(plic)))) for n, s in
                        good.devices)  # fmt: skip
    bad = MachineState(good.icount, good.context, good.ram, bad_devices, good.board)
    machine.run(4000)
    later = machine.digest()
    with pytest.raises(ValueError, match="PlicState"):
        machine.restore_state(bad)
    assert machine.digest() == later
    machine.restore_state(good)
    assert machine.digest() == digest


def fields_of(state: object) -> list[tuple[object, ...]]:
    return [getattr(state, f.name) for f in fields(state)]  # type: ignore[arg-type]


# -- versions -------------------------------------------------------------------------------------------

# The layout of each state as it was at each VERSION. Changing a state's fields changes its fingerprint:
# give it a new VERSION and add a line here (files with the old one are then refused, never misread).
LAYOUTS = {
    UartState: {1: "6d867f91152783a6"},
    PlicState: {1: "0144554bccf3d01d"},
    ClintState: {1: "8d2537c2d6ff3c4a"},
    RtcState: {1: "b0561f46d4e3c5a6"},
    FinisherState: {1: "e3b0c44298fc1c14"},
    BoardState: {1: "ced466a090f1b20b", 2: "0081dc1a80c0076c"},
    VirtioMmioState: {1: "17079c9e8540c899"},
    VirtioBlkState: {1: "d3652035a55527e5"},
    VirtioSndState: {1: "f2243c061f12919a"},
    Pl011State: {1: "0865938f0d9a0cb5"},
    Pl031State: {1: "db7f05bb35da6f4f"},
    GicV2State: {1: "3a4330c70993539f"},
    GicCpuInterfaceState: {1: "e3b0c44298fc1c14"},
    ArmBoardState: {1: "d7cd29c14efad996"},
    CmsdkUartState: {1: "8100fdc8eb3c8ee4"},
    CmsdkTimerState: {1: "e0cac7e505ad4ef8"},
    ScsState: {1: "683eaa539c7674d9"},
    Mps2BoardState: {1: "a6052041986e6153"},
    Pl061State: {1: "5bfea3cba96cf0fe"},
    PflashCfi01State: {1: "08d11a93dee63009"},
    GpexEcamState: {1: "9a3f3d3efc7ff1f7"},
    FwCfgState: {1: "4bab752719e2a82a"},
}

ARM_MACHINE_NOT_STATE = {
    "arch", "image", "config", "inputs", "regions", "ram_base", "ram_windows", "clock", "uc", "counter", "engine",
    "ram", "_ram_ptr", "ram_pages", "registers", "memory", "_gprs",  # what it was built from, its parts
    "gic", "uart", "rtc", "devices", "slots", "_timer_lines",  # the devices (their own state) and their wiring
    "timer",  # the generic timer: its fields are in ArmBoardState (test below)
    "gpio", "flash", "pcie", "fw_cfg", "_flash_windows", "_timer_mirror",  # devices (own state), their mappings
    "kernel",  # --kernel's file (configuration: fw_cfg's constant items)
    "frame_tap", "audio_sink", "trap_tap", "_trace_hook", "_resumed_at", "_trap_icount", "_trap_entry",  # as on RISC-V
}


def test_every_arm_board_attribute_is_in_its_board_state() -> None:
    elf = ROOT / "tests" / "guests" / "aarch64" / "build" / "timer.elf"
    machine = ArmVirtMachine(load_image(elf), ScriptedInputs(), lambda b: None)
    board = {f.name for f in fields(ArmBoardState)}
    assert set(vars(machine)) - ARM_MACHINE_NOT_STATE <= {"halted", "exit_code", "reset_requested",
                                                          "_last_watch_stop", "tx_digest"}  # fmt: skip
    assert {"halted", "exit_code", "reset_requested", "last_watch_stop", "bias_ns", "tx_digest"} <= board
    timer = machine.timer.save()
    assert {f"{t}_{k}" for t in ("phys", "virt") for k in ("ctl", "cval")} == {f.name for f in fields(timer)}
    assert board - {f.name for f in fields(timer)} == {"halted", "exit_code", "reset_requested",
                                                       "last_watch_stop", "bias_ns", "tx_digest"}  # fmt: skip
    assert {type(d).state_type for d in machine.devices.values()} <= set(LAYOUTS)


def test_every_saved_state_type_has_a_pinned_layout() -> None:
    machine = fresh_machine()
    assert {type(device).state_type for device in machine.devices.values()} <= set(LAYOUTS)


@pytest.mark.parametrize("cls", list(LAYOUTS), ids=lambda cls: cls.__name__)
def test_a_changed_layout_has_a_new_version(cls: type) -> None:
    digest = hashlib.sha256(fingerprint(cls).encode()).hexdigest()[:16]
    assert LAYOUTS[cls].get(cls.VERSION) == digest, (
        f"{cls.__name__}'s fields changed ({fingerprint(cls)}): bump its VERSION and record {digest}"
    )


@cache
def encoded_timer_state() -> bytes:
    machine = fresh_machine()
    machine.run(5000)
    return encode_state(machine.save_state(), machine.arch)


@pytest.mark.parametrize("cls", [UartState, PlicState, ClintState, RtcState, FinisherState, BoardState,
                                 VirtioMmioState])  # fmt: skip
def test_decode_refuses_a_state_of_another_version(cls: type, monkeypatch: pytest.MonkeyPatch) -> None:
    data = encoded_timer_state()
    machine = fresh_machine()
    decode_state(data, machine)
    monkeypatch.setattr(cls, "VERSION", cls.VERSION + 1)
    with pytest.raises(StateError, match="version"):
        decode_state(data, machine)


def test_decode_refuses_another_cpu_register_list_or_format(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encoded_timer_state()
    machine = fresh_machine()
    monkeypatch.setattr("machine.state.CPU_STATE_VERSION", CPU_STATE_VERSION + 1)
    with pytest.raises(StateError, match="CPU register list version"):
        decode_state(data, machine)
    monkeypatch.undo()
    monkeypatch.setattr("machine.state.READABLE_VERSIONS", (99,))
    with pytest.raises(StateError, match="format version 2, this chronicorn reads 99"):
        decode_state(data, machine)


def test_decode_refuses_another_machine() -> None:
    data = encoded_timer_state()
    with pytest.raises(StateError, match="32-bit hart"):
        decode_state(data, make_machine(guest("rv64", "timer")))
    with pytest.raises(StateError, match="bad magic"):
        decode_state(b"X" + data[1:], fresh_machine())


# -- round trips ----------------------------------------------------------------------------------------

GUEST_RUNS = [
    pytest.param("rv32", PROBES / "q_mmu.elf", marks=pytest.mark.slow),  # S-mode with Sv32 paging, PMP
    pytest.param("rv32", PROBES / "q_smode.elf", marks=pytest.mark.slow),  # S-mode, delegated traps
    ("rv32", PROBES / "q_umode_mret.elf"),  # U-mode
    pytest.param("rv64", guest("rv64", "traps"), marks=pytest.mark.slow),  # exceptions and their handlers
    pytest.param("rv32", guest("rv32", "traps"), marks=pytest.mark.slow),
    pytest.param("rv64", guest("rv64", "timer"), marks=pytest.mark.slow),  # timer interrupts, wfi
    pytest.param("rv32", guest("rv32", "rtc"), marks=pytest.mark.slow),  # the host clock through the RTC
]


@cache
def run_length(path: Path) -> int:
    return make_machine(path).run().icount


@pytest.mark.parametrize(("xlen", "path"), GUEST_RUNS, ids=lambda p: p if isinstance(p, str) else p.stem)
def test_decoded_state_continues_exactly_like_the_original(xlen: str, path: Path) -> None:
    total = run_length(path)
    for point in sorted({total // 7, total // 3, total // 2, 2 * total // 3, total - 3}):
        original = make_machine(path)
        original.run(point)
        data = encode_state(original.save_state(), original.arch)
        copy = make_machine(path)
        state = decode_state(data, copy)
        assert encode_state(state, copy.arch) == data  # one canonical encoding
        assert_same_cpu(original.uc.context_save(), state.context, original)
        copy.restore_state(state)
        assert copy.digest() == original.digest(), point
        assert copy.run() == original.run(), point
        assert copy.digest() == original.digest(), point


def assert_same_cpu(original: object, decoded: object, machine: Machine) -> None:
    """The decoded context is Unicorn's own byte for byte, except what the encoding leaves out.

    Left out (machine/arch/riscv_cpu.py): the LR/SC reservation and the address of a fault being raised,
    the words after pc in Unicorn 2.1's CPURISCVState (load_res, load_val, frm (carried in fcsr), badaddr).
    """
    word = machine.arch.xlen // 8
    pc_at = offset_of(machine, rc.UC_RISCV_REG_PC)
    left_out = set(range(pc_at + word, pc_at + 5 * word))
    a, b = bytes(original), bytes(decoded)  # type: ignore[call-overload]
    header = offset_of(machine, rc.UC_RISCV_REG_X1) - word  # x0 starts Unicorn's copy of the hart
    differ = [i for i in range(header, len(a)) if a[i] != b[i] and i not in left_out]
    assert not differ, f"context bytes differ at {[hex(i) for i in differ[:8]]}"


def offset_of(machine: Machine, uc_reg: int) -> int:
    scratch = machine.arch.new_uc()
    before = bytes(scratch.context_save())
    scratch.reg_write(uc_reg, 0x5A)
    after = bytes(scratch.context_save())
    return max(i for i in range(len(before)) if before[i] != after[i])  # (the header's first bytes change too)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["rv32", "rv64"]), st.data())
def test_any_cpu_values_a_hart_holds_round_trip(xlen: str, data: st.DataObject) -> None:
    """Random values written through Unicorn (it keeps what the hart can hold) encode and decode exactly."""
    machine = make_machine(guest(xlen, "hello"))
    hart = machine.hart
    for reg in cpu_registers(machine.arch):
        value = data.draw(st.integers(0, (1 << reg.bits) - 1), reg.name)
        if reg.access.value == "reg":
            hart.set_reg(reg.ident, value)
        elif reg.access.value == "csr" and reg.name != "satp":  # satp: a bad root would fault the next run
            hart.set_csr(reg.ident, value)
    hart.set_csr(rc.UC_RISCV_REG_MSTATUS, data.draw(st.integers(0, machine.arch.mask), "mstatus"))
    machine.uc.reg_write(rc.UC_RISCV_REG_PRIV, data.draw(st.sampled_from([0, 1, 3]), "priv"))
    state = machine.save_state()
    encoded = encode_state(state, machine.arch)
    decoded = decode_state(encoded, make_machine(guest(xlen, "hello")))
    assert read_cpu(machine.arch, decoded.context) == read_cpu(machine.arch, state.context)
    assert_same_cpu(state.context, decoded.context, machine)


# -- hostile input -------------------------------------------------------------------------------------


def landmarks(data: bytes, registers: int) -> list[int]:
    """Offsets of every count, length and version in an encoding (where a mutation hurts most)."""
    marks = [0, 8, 10, 11, 12, 20, 22]
    pos = 24 + 8 * registers
    marks.append(pos)
    (pages,) = struct.unpack_from("<I", data, pos)
    pos += 4
    marks += [pos + i * (8 + 4096) for i in range(pages)]
    pos += pages * (8 + 4096)
    marks.append(pos)
    (devices,) = struct.unpack_from("<H", data, pos)
    pos += 2
    for _ in range(devices):
        name = data[pos]
        marks += [pos, pos + 1 + name, pos + 3 + name]
        (length,) = struct.unpack_from("<I", data, pos + 3 + name)
        pos += 7 + name + length
    marks += [pos, pos + 2, len(data)]
    return marks


MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "byte", "u16", "u32", "u64", "cut", "insert", "delete"]),
        st.integers(0, 1 << 20),  # an index into the landmarks, or a position anywhere
        st.booleans(),  # at a landmark
        st.sampled_from([0, 1, 2, 0x7F, 0xFF, 0xFFFF, 0x1_0000, 0xFFFF_FFFF, 1 << 32, (1 << 64) - 1, 4096, 4097]),
    ),
    min_size=1,
    max_size=4,
)


def mutate(data: bytes, mutations: list[tuple[str, int, bool, int]], marks: list[int]) -> bytes:
    out = bytearray(data)
    for kind, where, at_mark, value in mutations:
        pos = (marks[where % len(marks)] if at_mark else where) % (len(out) + 1)
        if kind == "flip" and pos < len(out):
            out[pos] ^= 1 << (value % 8)
        elif kind == "byte" and pos < len(out):
            out[pos] = value & 0xFF
        elif kind in ("u16", "u32", "u64"):
            size = {"u16": 2, "u32": 4, "u64": 8}[kind]
            out[pos : pos + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        elif kind == "cut":
            del out[pos:]
        elif kind == "insert":
            out[pos:pos] = bytes([value & 0xFF]) * (value % 9)
        elif kind == "delete":
            del out[pos : pos + 1 + value % 16]
    return bytes(out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MUTATIONS)
def test_mutated_encodings_raise_only_state_errors(mutations: list[tuple[str, int, bool, int]]) -> None:
    data = encoded_timer_state()
    machine = fuzz_machine()
    registers = len(cpu_registers(machine.arch))
    bad = mutate(data, mutations, landmarks(data, registers))
    try:
        state = decode_state(memoryview(bad), machine)
    except StateError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    machine.restore_state(state)  # whatever decodes is a state the machine takes


@cache
def fuzz_machine() -> Machine:
    return fresh_machine()


def test_huge_counts_are_refused_before_allocating() -> None:
    data = bytearray(encoded_timer_state())
    registers = len(cpu_registers(fuzz_machine().arch))
    pages_at = 24 + 8 * registers
    data[pages_at : pages_at + 4] = (0xFFFF_FFFF).to_bytes(4, "little")
    with pytest.raises(StateError, match="4294967295 RAM pages"):
        decode_state(bytes(data), fuzz_machine())
    data = bytearray(encoded_timer_state())
    data[22:24] = (0xFFFF).to_bytes(2, "little")
    with pytest.raises(StateError, match="65535 CPU registers"):
        decode_state(bytes(data), fuzz_machine())


def test_a_page_outside_ram_or_twice_is_refused() -> None:
    machine = fresh_machine()
    machine.run(5000)
    state = machine.save_state()
    data = bytearray(encode_state(state, machine.arch))
    registers = len(cpu_registers(machine.arch))
    first = 24 + 8 * registers + 4
    for offset, message in ((machine.config.ram_size, "outside RAM"), (1, "page-aligned"), (0, "out of order")):
        bad = bytearray(data)
        if message == "out of order":  # the second page at the first one's offset
            bad[first + 8 + 4096 : first + 16 + 4096] = bad[first : first + 8]
        else:
            bad[first : first + 8] = offset.to_bytes(8, "little")
        with pytest.raises(StateError, match=message):
            decode_state(bytes(bad), fresh_machine())


def test_unknown_or_missing_devices_are_refused() -> None:
    data = encoded_timer_state()
    renamed = data.replace(b"\x05uart0", b"\x05uartX")
    with pytest.raises(StateError, match="'uartX' is unknown"):
        decode_state(renamed, fresh_machine())
    twice = data.replace(b"\x05uart0", b"\x05clint")
    with pytest.raises(StateError, match="'clint' is unknown to this machine or appears twice"):
        decode_state(twice, fresh_machine())


@pytest.mark.parametrize(("name", "value"), [("mtvec", 0x8000_0003), ("misa", 0), ("priv", 2), ("x5", 1 << 32)])
def test_values_no_hart_holds_are_refused(name: str, value: int) -> None:
    data = bytearray(encoded_timer_state())
    index = [r.name for r in cpu_registers(fuzz_machine().arch)].index(name)
    data[24 + 8 * index : 32 + 8 * index] = value.to_bytes(8, "little")
    with pytest.raises(StateError, match=f"(register {name}|privilege level {value})"):
        decode_state(bytes(data), fuzz_machine())


def test_restore_forgets_translations_of_the_state_left() -> None:
    """Unicorn keeps its TLB across context_restore: a restore must flush it (else, stale code runs).

    q_mmu runs its S-mode loop through an alias megapage. After the snapshot, the alias is pointed at a
    copy of RAM whose loop count differs (with a TLB flush, as a guest's sfence.vma would do) and run, so
    the TLB holds the copy's translation. Restoring the snapshot must run the original loop again.
    """
    path = PROBES / "q_mmu.elf"
    reference = make_machine(path)
    end = reference.run()
    machine = make_machine(path)
    while machine.hart.priv != 1:
        machine.run(machine.icount + 1)
    saved = machine.save_state()
    li_100, li_50 = (0x0640_0B13).to_bytes(4, "little"), (0x0320_0B13).to_bytes(4, "little")  # li s6, 100/50
    code = machine.ram.find(li_100)
    assert 0 <= code < 0x20000
    copy = 0x40_0000
    machine.ram[copy : copy + 0x20000] = machine.ram[0:0x20000]
    machine.ram[copy + code : copy + code + 4] = li_50
    root = (machine.hart.csr(rc.UC_RISCV_REG_SATP) & 0x3F_FFFF) << 12
    alias_pte = root - 0x8000_0000 + 0x100 * 4
    machine.ram[alias_pte : alias_pte + 4] = ((0x8040_0000 >> 12 << 10) | 0xCF).to_bytes(4, "little")
    machine.uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)
    machine.run(machine.icount + 30)
    machine.restore_state(saved)
    assert machine.run() == end and machine.digest() == reference.digest()


def test_encoding_needs_no_second_full_unicorn() -> None:
    """Under a 2 GiB address-space limit a second default Unicorn (1 GiB of translation buffer) would not fit
    next to the machine's, and Unicorn exits the process: the scratch hart must stay small."""
    code = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "from machine.state import decode_state, encode_state\n"
        "from tests.conftest import guest, make_machine\n"
        "m = make_machine(guest('rv32', 'timer'))\n"
        "m.run(1000)\n"
        "for _ in range(3):\n"
        "    m.restore_state(decode_state(encode_state(m.save_state(), m.arch), m))\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.stdout == "ok\n", done.stderr[-500:]


def test_after_forget_reservation_a_file_carries_the_whole_cpu() -> None:
    """Where a live state goes to a file, dropping the reservation first makes the live run and a replay
    from the file identical: the decoded context is then Unicorn's own, byte for byte."""
    path = PROBES / "q_mmu.elf"
    reference = make_machine(path)
    end = reference.run()
    machine = make_machine(path)
    machine.run(300)
    machine.forget_reservation()
    decoded = decode_state(encode_state(machine.save_state(), machine.arch), machine)
    word = machine.arch.xlen // 8
    header = offset_of(machine, rc.UC_RISCV_REG_X1) - word
    assert bytes(decoded.context)[header:] == bytes(machine.uc.context_save())[header:]
    assert machine.run() == end and machine.digest() == reference.digest()


@pytest.mark.parametrize("spill_after", [64 << 20, 0], ids=["in-memory", "spilled"])
def test_a_disk_round_trips_through_the_state_encoding(spill_after: int, tmp_path: Path) -> None:
    """The virtioblk guest reads and writes its disk; its state (overlay pages, spilled or not, and the virtio
    slots) encodes, decodes and restores to the same digest; another image under the drive is refused."""
    from machine.dma import DriveConfig
    from machine.inputs import ScriptedInputs
    from machine.loader import load_image
    from machine.machine import MachineConfig

    image = GUESTS / "inputs" / "disk.img"

    def machine(path: Path = image) -> Machine:
        config = MachineConfig(drives=(DriveConfig(str(path), spill_after=spill_after),))
        return Machine(load_image(guest("rv64", "virtioblk")), ScriptedInputs(), bytearray().append, config)

    original = machine()
    original.run(200_000)  # past the first write
    state = original.save_state()
    assert state.disks and state.disks[0].slot == 7 and state.disks[0].overlay.written_bytes > 0
    data = encode_state(state, original.arch)
    copy = machine()
    copy.restore_state(decode_state(data, copy))
    assert copy.digest() == original.digest()
    assert encode_state(copy.save_state(), copy.arch) == data
    other = tmp_path / "other.img"
    other.write_bytes(image.read_bytes()[:-1] + b"\x01")
    with pytest.raises(StateError, match="written over image sha256"):
        decode_state(data, machine(other))


def test_a_device_write_fires_a_watchpoint_where_the_completion_lands() -> None:
    """The first read fills ``sector_buf`` from the disk: a write watchpoint on it stops the run at the completion
    boundary (the data already there, the next instruction not run), saying which device wrote it."""
    from machine.dma import DriveConfig
    from machine.inputs import ScriptedInputs
    from machine.loader import load_image
    from machine.machine import MachineConfig
    from machine.results import RunKind
    from machine.watch import WatchKind

    image = load_image(guest("rv64", "virtioblk"))
    config = MachineConfig(drives=(DriveConfig(str(GUESTS / "inputs" / "disk.img")),))
    machine = Machine(image, ScriptedInputs(), bytearray().append, config)
    buf = image.symbols["sector_buf"]
    machine.add_watchpoint(WatchKind.WRITE, buf, 4)
    result = machine.run(10_000_000)
    stores = 0
    while result.kind == RunKind.WATCHPOINT and result.written_by is None:  # the start-up code clearing .bss
        stores += 1
        result = machine.run(10_000_000)
    assert 0 < stores < 10 and result.kind == RunKind.WATCHPOINT and result.fault_addr == buf
    assert result.written_by == f"the virtio-blk device in slot 7 completing its requests at icount {result.icount}"
    sector0 = (GUESTS / "inputs" / "disk.img").read_bytes()[:4]
    assert machine.memory.read(buf, 4) == sector0 and machine.icount == result.icount


def test_a_state_of_format_1_from_before_the_virtio_slots_still_decodes() -> None:
    """Recordings of format versions 3 and 4 hold states of format 1: no virtio slots among the devices, a
    version 1 board (no tx_digest), no disks part. They decode with every slot as after reset."""
    import machine.state as ms
    from machine.fields import encode_fields

    original = fresh_machine()
    original.run(5000)
    state = original.save_state()
    out = bytearray(ms._HEADER.pack(ms.MAGIC, 1, original.arch.xlen, 0, state.icount))
    values = read_cpu(original.arch, state.context)
    out += struct.pack("<HH", CPU_STATE_VERSION, len(values)) + struct.pack(f"<{len(values)}Q", *values)
    ms._write_pages(out, state.ram)
    old_devices = [(name, s) for name, s in state.devices if not name.startswith("virtio")]
    out += struct.pack("<H", len(old_devices))
    for name, device_state in old_devices:
        body = encode_fields(device_state)
        out += bytes([len(name)]) + name.encode() + struct.pack("<HI", type(device_state).VERSION, len(body)) + body
    board = encode_fields(state.board)[:-16]  # version 1: no tx_digest
    out += struct.pack("<HI", 1, len(board)) + board
    copy = fresh_machine()
    copy.restore_state(decode_state(bytes(out), copy))
    assert copy.digest() == original.digest()


def test_what_the_network_sent_is_part_of_the_verification_digest_and_of_snapshots() -> None:
    """Two machines alike but for what their network devices sent: different verification digests (a replay
    whose guest sent another frame diverges even where its registers agree); a snapshot restores the digest."""
    from replay.verify import verify_digest

    machine = fresh_machine()
    machine.run(3000)
    plain = verify_digest(machine)
    snapshot = machine.save_state()
    machine._transmit(7, b"\xff" * 60)  # what the virtio-net device does with a frame the guest sent
    sent = machine.tx_digest
    assert sent != 0 and verify_digest(machine) != plain
    machine._transmit(7, b"\xff" * 60)
    assert machine.tx_digest != sent  # a running digest: the same frame twice is not once
    machine.restore_state(snapshot)
    assert machine.tx_digest == 0 and verify_digest(machine) == plain


def test_every_mps2_board_attribute_is_in_its_board_state() -> None:
    elf = ROOT / "tests" / "guests" / "cortexm" / "build" / "systick.elf"
    machine = Mps2Machine(load_image(elf), ScriptedInputs(), lambda b: None)
    not_state = (ARM_MACHINE_NOT_STATE - {"gic", "_timer_lines", "timer", "_gprs", "gpio", "flash", "pcie", "fw_cfg",
                                          "_flash_windows", "_timer_mirror", "kernel"}) | {
        "scs", "timers", "_special"}  # the NVIC/SysTick/SCB and the APB timers: devices with their own state
    kept = {"halted", "exit_code", "reset_requested", "_last_watch_stop", "tx_digest"}
    assert set(vars(machine)) - not_state == kept
    assert {f.name for f in fields(Mps2BoardState)} == {"halted", "exit_code", "reset_requested", "last_watch_stop",
                                                        "bias_ns", "tx_digest"}  # fmt: skip
    assert {type(d).state_type for d in machine.devices.values()} <= set(LAYOUTS)
