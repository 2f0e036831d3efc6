"""The board's eight virtio-mmio slots and the devices in them: drives (virtio-blk), then the network (virtio-net).

QEMU 7.2's ``virt`` board fills its slots from the highest down (:func:`~machine.boards.virt.virtio_slot`): the
drives in the order given, then the network device. Every slot is a transport (an empty one reads DeviceID 0);
a device's notifies wait for their completion event (the transport's ``notified``, QEMU's blkreplay), which the
machine delivers at an instruction boundary through the input source, as it delivers frames for the guest.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable

from .boards import virt
from .devices.plic import Plic
from .devices.virtio_blk import VirtioBlk
from .devices.virtio_mmio import LegacyVirtioMmio, VirtioBackend, VirtioMmio
from .devices.virtio_net import RX_QUEUE, VirtioNet
from .dma import DmaMemory, DriveConfig
from .inputs import InputSource
from .loader import ImageError
from .overlay import DiskImage, DiskOverlay


class VirtioSlots:
    """The slots' transports (``transports[slot]``), ``disks`` and ``nets`` by slot, and RAM as they reach it."""

    def __init__(self, plic: Plic, ram: mmap.mmap, drives: tuple[DriveConfig, ...], network: bool, legacy: bool,
                 transmit: Callable[[int, bytes], None]) -> None:  # fmt: skip
        if len(drives) + network > virt.VIRTIO_COUNT:
            raise ImageError(f"{len(drives) + network} virtio devices: the board has {virt.VIRTIO_COUNT} slots")
        self.dma = DmaMemory(ram, virt.RAM_BASE)
        self.disks: dict[int, VirtioBlk] = {}
        images: list[DiskImage] = []
        try:
            for i, drive in enumerate(drives):
                images.append(DiskImage(drive.path))
                overlay = DiskOverlay(images[-1], readonly=drive.readonly, spill_after=drive.spill_after)
                self.disks[virt.virtio_slot(i)] = VirtioBlk(overlay, legacy=legacy)
        except BaseException:
            for image in images:
                image.close()
            raise
        self.nets: dict[int, VirtioNet] = {}
        if network:
            slot = virt.virtio_slot(len(drives))
            self.nets[slot] = VirtioNet(lambda frame, slot=slot: transmit(slot, frame), legacy=legacy)
        backends: dict[int, VirtioBackend] = {**self.disks, **self.nets}
        transport = LegacyVirtioMmio if legacy else VirtioMmio
        self.transports: list[VirtioMmio] = [
            transport(plic.line(virt.VIRTIO_IRQ + slot), self.dma, backends.get(slot),
                      (lambda: None) if slot in backends else None)  # fmt: skip
            for slot in range(virt.VIRTIO_COUNT)
        ]
        for slot, net in self.nets.items():
            net.accepted_features(lambda device=self.transports[slot]: device.features)
        self._used = [(slot, self.transports[slot]) for slot in sorted(backends)]
        self._net = [(slot, self.transports[slot], net) for slot, net in sorted(self.nets.items())]
        # What a state from before the board had virtio slots (state format 1) gives them.
        self.reset_states = {f"virtio{slot}": device.save() for slot, device in enumerate(self.transports)}

    @property
    def in_use(self) -> bool:
        """Whether any slot holds a device."""
        return bool(self._used)

    @property
    def pending(self) -> int:
        """Slots (a bit each) whose notified requests wait for their completion event."""
        pending = 0
        for slot, transport in self._used:
            if transport.notified:
                pending |= 1 << slot
        return pending

    def frames_due(self, inputs: InputSource, icount: int) -> bool:
        """Whether a network device has both a frame for it and a buffer to put it in."""
        return any(inputs.frames_due(icount, slot) and transport.available(RX_QUEUE)
                   for slot, transport, _ in self._net)  # fmt: skip

    def complete(self, done: int) -> None:
        """Carry out the notified requests of these slots (their completion event)."""
        for slot in range(virt.VIRTIO_COUNT):
            if done >> slot & 1:
                self.transports[slot].complete()

    def receive_frames(self, inputs: InputSource, icount: int, tap: Callable[[bytes], None] | None) -> int:
        """Frames the input source has for each network device now, at most one per posted receive buffer, each
        shown to ``tap`` first; returns the slots that received some (bit per slot)."""
        received = 0
        for slot, transport, net in self._net:
            space = transport.available(RX_QUEUE)
            if space:
                frames = inputs.poll_frames(icount, slot, space)
                if frames:
                    if tap is not None:
                        for frame in frames:
                            tap(frame)
                    net.deliver(frames)
                    transport.service(RX_QUEUE)
                    received |= 1 << slot
        return received

    def kinds(self, slots: int) -> str:
        """What the devices of these slots are, for messages: ``virtio-blk``, ``virtio-net``, or both."""
        names = {"virtio-blk" if slot in self.disks else "virtio-net" for slot in range(8) if slots >> slot & 1}
        return "/".join(sorted(names))

    def close(self) -> None:
        """Release the disk images' file descriptors."""
        for disk in self.disks.values():
            disk.disk.image.close()
