"""Devices on the bus: every access that must happen at an exact icount is deferred to the engine."""

from __future__ import annotations

from unicorn import Uc

from .devices.base import Device
from .engine import Engine


def map_device(uc: Uc, engine: Engine, base: int, size: int, device: Device) -> None:
    """Map ``device`` at ``base``: reads it can answer now (``peek``) are answered, every other access
    stops the engine before the instruction and happens when :meth:`Engine.step_mmio` executes it."""

    def read(uc: Uc, offset: int, size: int, _data: object) -> int:
        try:
            if not engine.is_applying_mmio:
                value = device.peek(offset, size)
                if value is not None:
                    return value
                engine.defer_mmio()
                return 0
            return device.read(offset, size)
        except Exception as exc:  # noqa: BLE001 - carried over Unicorn's C frames, raised from Engine.run
            engine.fail_from_hook(exc)
            return 0

    def write(uc: Uc, offset: int, size: int, value: int, _data: object) -> None:
        try:
            if engine.is_applying_mmio:
                device.write(offset, size, value)
            else:
                engine.defer_mmio()
        except Exception as exc:  # noqa: BLE001 - see read
            engine.fail_from_hook(exc)

    uc.mmio_map(base, size, read, None, write, None)
