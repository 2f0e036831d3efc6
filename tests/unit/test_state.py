"""machine/state.py: explicit device and board state."""

from __future__ import annotations

import hashlib
from dataclasses import fields

import pytest
from unicorn import riscv_const as rc
from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH

from machine.clock import VirtualClock
from machine.devices.clint import ClintState
from machine.devices.plic import PlicState
from machine.devices.rtc import RtcState
from machine.devices.test_finisher import FinisherState
from machine.devices.uart import UartState
from machine.fields import fingerprint
from machine.machine import Machine
from machine.state import BOARD_ATTRIBUTES, BoardState, MachineState
from tests.conftest import GUESTS, guest, make_machine

PROBES = GUESTS / "build" / "rv32" / "probes"

# -- every attribute is state or wiring ----------------------------------------------------------------

# Machine attributes that are not state: parts, configuration, per-run bookkeeping. Adding an attribute to
# Machine means deciding: state (a BoardState field and BOARD_ATTRIBUTES) or not (this list, with a reason).
MACHINE_NOT_STATE = {
    "arch", "image", "config", "inputs", "fdt_addr", "regions",  # what the machine was built from
    "clock", "uc", "hart", "counter", "engine", "ram", "_ram_ptr", "ram_pages", "registers", "memory",  # parts
    "plic", "uart", "clint", "rtc", "finisher", "devices",  # the devices (their own state: below)
    "_trace_hook",  # a debugging hook, not the guest's
    "_last_traced", "_resumed_at",  # set at the start of every run
}  # fmt: skip
HART_NOT_STATE = {"uc", "arch"}
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
        "bias_ns": 1234,
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
    BoardState: {1: "ced466a090f1b20b"},
}


@pytest.mark.parametrize("cls", list(LAYOUTS), ids=lambda cls: cls.__name__)
def test_a_changed_layout_has_a_new_version(cls: type) -> None:
    digest = hashlib.sha256(fingerprint(cls).encode()).hexdigest()[:16]
    assert LAYOUTS[cls].get(cls.VERSION) == digest, (
        f"{cls.__name__}'s fields changed ({fingerprint(cls)}): bump its VERSION and record {digest}"
    )


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
