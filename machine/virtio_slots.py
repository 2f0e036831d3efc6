"""The board's eight virtio-mmio slots and the devices in them: drives (virtio-blk), then the network (virtio-net).

QEMU 7.2's ``virt`` board fills its slots from the highest down (:func:`~machine.boards.virt.virtio_slot`): the
drives in the order given, then the network device. Every slot is a transport (an empty one reads DeviceID 0);
a device's notifies wait for their completion event (the transport's ``notified``, QEMU's blkreplay), which the
machine delivers at an instruction boundary through the input source, as it delivers frames for the guest.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from dataclasses import dataclass

from .devices.base import IrqLine
from .devices.virtio_blk import VirtioBlk
from .devices.virtio_mmio import LegacyVirtioMmio, VirtioBackend, VirtioMmio
from .devices.virtio_net import RX_QUEUE, VirtioNet
from .devices.virtio_snd import RATES, STREAM_QUEUES, VirtioSnd
from .dma import DmaMemory, DriveConfig
from .inputs import InputSource
from .loader import ImageError
from .overlay import DiskImage, DiskOverlay


@dataclass(frozen=True, slots=True)
class VirtioLayout:
    """A board's virtio-mmio slots: how many, the interrupt of slot 0 (slot i has ``first_irq + i``), where RAM
    starts (device DMA reaches RAM only). Devices fill the slots from the highest down, as QEMU's boards do."""

    count: int
    first_irq: int
    ram_base: int

    def slot(self, device: int) -> int:
        """The slot of the ``device``-th virtio device given (QEMU fills the highest slot first)."""
        if not 0 <= device < self.count:
            raise ValueError(f"at most {self.count} virtio devices")
        return self.count - 1 - device


class VirtioSlots:
    """The slots' transports (``transports[slot]``), ``disks`` and ``nets`` by slot, and RAM as they reach it."""

    def __init__(self, layout: VirtioLayout, irq_line: Callable[[int], IrqLine], ram: mmap.mmap,
                 drives: tuple[DriveConfig, ...], network: bool, legacy: bool,
                 transmit: Callable[[int, bytes], None], audio: bool = False,
                 play: Callable[[int, int, bytes], None] | None = None,
                 capture: Callable[[int, int, int], bytes] | None = None) -> None:  # fmt: skip
        if len(drives) + network + audio > layout.count:
            raise ImageError(f"{len(drives) + network + audio} virtio devices: the board has {layout.count} slots")
        self.count = layout.count
        self.layout = layout
        self.dma = DmaMemory(ram, layout.ram_base)
        self.disks: dict[int, VirtioBlk] = {}
        images: list[DiskImage] = []
        try:
            for i, drive in enumerate(drives):
                images.append(DiskImage(drive.path))
                overlay = DiskOverlay(images[-1], readonly=drive.readonly, spill_after=drive.spill_after)
                self.disks[layout.slot(i)] = VirtioBlk(overlay, legacy=legacy)
        except BaseException:
            for image in images:
                image.close()
            raise
        self.nets: dict[int, VirtioNet] = {}
        if network:
            slot = layout.slot(len(drives))
            self.nets[slot] = VirtioNet(lambda frame, slot=slot: transmit(slot, frame), legacy=legacy)
        self.sounds: dict[int, VirtioSnd] = {}
        if audio:
            assert play is not None and capture is not None
            slot = layout.slot(len(drives) + network)
            self.sounds[slot] = VirtioSnd(lambda stream, data, slot=slot: play(slot, stream, data),
                                          lambda stream, size, slot=slot: capture(slot, stream, size))  # fmt: skip
        backends: dict[int, VirtioBackend] = {**self.disks, **self.nets, **self.sounds}
        # virtio-snd is a virtio 1.2 device: its slot is modern whatever the others are.
        kinds = {slot: VirtioMmio if slot in self.sounds or not legacy else LegacyVirtioMmio
                 for slot in range(layout.count)}  # fmt: skip
        self.transports: list[VirtioMmio] = [
            kinds[slot](irq_line(layout.first_irq + slot), self.dma, backends.get(slot),
                        (lambda: None) if slot in backends else None)  # fmt: skip
            for slot in range(layout.count)
        ]
        for slot, sound in self.sounds.items():
            sound.attach(self.transports[slot])
        self._sound = [(slot, self.transports[slot], sound) for slot, sound in sorted(self.sounds.items())]
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
        for slot in range(self.count):
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

    # -- devices paced by virtual time (virtio-snd) --------------------------------------------------------
    def set_time(self, now_ns: int) -> None:
        """Tell the sound devices the virtual time (before anything reaches them)."""
        for _, _, sound in self._sound:
            sound.set_time(now_ns)

    def next_deadline_ns(self) -> int | None:
        """When a sound device's next buffer is due (None: none waits)."""
        due = [d for _, _, sound in self._sound if (d := sound.next_deadline_ns()) is not None]
        return min(due) if due else None

    def stream_format(self, slot: int, stream: int) -> tuple[int, int]:
        """(rate in Hz, channels) of a stream of the sound device in ``slot`` (set by the driver)."""
        sound = self.sounds[slot]
        return RATES[sound.rate[stream]], sound.channels[stream]

    def service_sound(self) -> int:
        """Service every sound device's stream queues (told the time already: the buffers due complete);
        returns their slots."""
        done = 0
        for slot, transport, _ in self._sound:
            for queue in STREAM_QUEUES:
                transport.service(queue)
            done |= 1 << slot
        return done

    def kinds(self, slots: int) -> str:
        """What the devices of these slots are, for messages: ``virtio-blk``, ``virtio-net``, ``virtio-snd``."""
        names = {"virtio-blk" if slot in self.disks else "virtio-net" if slot in self.nets else "virtio-snd"
                 for slot in range(self.count) if slots >> slot & 1}  # fmt: skip
        return "/".join(sorted(names))

    def close(self) -> None:
        """Release the disk images' file descriptors."""
        for disk in self.disks.values():
            disk.disk.image.close()
