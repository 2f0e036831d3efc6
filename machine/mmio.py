"""Devices on the bus: every access that must happen at an exact icount is deferred to the engine."""

from __future__ import annotations

from unicorn import Uc

from .devices.base import Device
from .engine import Engine


def map_device(uc: Uc, engine: Engine, base: int, size: int, device: Device) -> None:
    """Map ``device`` at ``base``: reads it can answer now (``peek``) are answered, every other access
    stops the engine before the instruction and happens when :meth:`Engine.step_mmio` executes it."""

    def read(uc: Uc, offset: int, size: int, _data: object) -> int:
        if not engine.is_applying_mmio:
            value = device.peek(offset, size)
            if value is not None:
                return value
            engine.defer_mmio()
            return 0
        return device.read(offset, size)

    def write(uc: Uc, offset: int, size: int, value: int, _data: object) -> None:
        if engine.is_applying_mmio:
            device.write(offset, size, value)
        else:
            engine.defer_mmio()

    uc.mmio_map(base, size, read, None, write, None)
