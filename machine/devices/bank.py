"""Devices packed closer than a page, on one MMIO mapping (Unicorn maps whole 4 KiB pages).

QEMU's Arm ``virt`` board places its 32 virtio-mmio transports 0x200 apart; each stays a device of its own (its
own state in the machine's ``devices``), and the bank only routes an access to the one at its offset.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import Device


class DeviceBank:
    """``devices[i]`` at ``i * stride``; accesses between them read 0 and are ignored."""

    access_size = 4

    def __init__(self, name: str, stride: int, devices: Sequence[Device]) -> None:
        self.name = name
        self.size = stride * len(devices)
        self._stride = stride
        self._devices = tuple(devices)

    def _route(self, offset: int, size: int) -> tuple[Device, int] | None:
        device = self._devices[offset // self._stride]
        inner = offset % self._stride
        return (device, inner) if inner + size <= device.size else None

    def read(self, offset: int, size: int) -> int:
        routed = self._route(offset, size)
        return 0 if routed is None else routed[0].read(routed[1], size)

    def write(self, offset: int, size: int, value: int) -> None:
        routed = self._route(offset, size)
        if routed is not None:
            routed[0].write(routed[1], size, value)

    def peek(self, offset: int, size: int) -> int | None:
        routed = self._route(offset, size)
        return 0 if routed is None else routed[0].peek(routed[1], size)
