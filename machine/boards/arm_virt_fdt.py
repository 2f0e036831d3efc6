"""The device tree of QEMU 7.2's Arm ``virt`` board (``hw/arm/virt.c``, ``hw/arm/boot.c``), byte for byte.

What ``qemu-system-aarch64 -M virt,dumpdtb=FILE -cpu cortex-a72 -m RAM -nic none`` writes: one Cortex-A72,
GICv2 with its v2m MSI frame, PL011, PL031, PL061 and its power key, fw_cfg, two flash banks, the PCIe host,
the platform bus, 32 virtio-mmio transports, the PMU, PSCI 1.0 over HVC.

QEMU builds the tree with libfdt's read-write functions (``qemu_fdt_add_subnode``, ``qemu_fdt_setprop*``) in
a 1 MiB buffer: a new property goes before its node's others and a new subnode before its siblings (so the
tree lists both newest first), a property name enters the strings block when first set, and the room for an
insertion is opened by moving the rest up without clearing it (so a value's padding keeps stale bytes).
:class:`_Qfdt` does the same to the same buffer, and the functions below make QEMU's calls in QEMU's order
(each named after QEMU's), so the blob is QEMU's: nodes, properties, phandles (from 0x8000), strings, padding,
layout (reservation map at 0x30, structure at 0x40, strings after it, ``totalsize`` 1 MiB, zeros beyond).

QEMU 7.2 also puts random numbers in ``/chosen`` (``kaslr-seed``, ``rng-seed``: ``create_randomness``) unless
``-M virt,dtb-randomness=off``; :func:`build_fdt` leaves them out unless given (a replayed guest must see the
same tree every time), which is QEMU's tree with ``dtb-randomness=off``.
"""

from __future__ import annotations

import re

FDT_SIZE = 0x10_0000  # create_device_tree's FDT_MAX_SIZE: the buffer, and the blob's totalsize
RAM_BASE = 0x4000_0000
MIN_RAM_SIZE, MAX_RAM_SIZE = 128 << 20, 2 << 30  # the -m values this module is checked against QEMU for
NUM_VIRTIO_TRANSPORTS = 32

# QEMU 7.2's base_memmap / extended_memmap (highmem on, RAM below 256 GiB) and a15irqmap: what the tree names.
MEMMAP: dict[str, tuple[int, int]] = {
    "flash": (0, 0x0800_0000),  # two 64 MiB banks
    "gic_dist": (0x0800_0000, 0x1_0000),
    "gic_cpu": (0x0801_0000, 0x1_0000),
    "gic_v2m": (0x0802_0000, 0x1000),
    "uart": (0x0900_0000, 0x1000),
    "rtc": (0x0901_0000, 0x1000),
    "fw_cfg": (0x0902_0000, 0x18),
    "gpio": (0x0903_0000, 0x1000),
    "mmio": (0x0A00_0000, 0x200),  # one virtio-mmio transport; transport i at base + i * size
    "platform_bus": (0x0C00_0000, 0x0200_0000),
    "pcie_mmio": (0x1000_0000, 0x2EFF_0000),
    "pcie_pio": (0x3EFF_0000, 0x1_0000),
    "pcie_ecam_high": (0x40_1000_0000, 0x1000_0000),
    "pcie_mmio_high": (0x80_0000_0000, 0x80_0000_0000),
}
IRQMAP = {"uart": 1, "rtc": 2, "pcie": 3, "gpio": 7, "mmio": 16, "platform_bus": 112}  # SPI numbers

GIC_FDT_IRQ_TYPE_SPI, GIC_FDT_IRQ_TYPE_PPI = 0, 1
GIC_FDT_IRQ_FLAGS_EDGE_LO_HI, GIC_FDT_IRQ_FLAGS_LEVEL_HI = 1, 4
PPI_FLAGS = 1 << 8 | GIC_FDT_IRQ_FLAGS_LEVEL_HI  # GICv2: the CPU mask (one CPU) in bits 8..15, level-high
ARCH_TIMER_S_EL1_IRQ, ARCH_TIMER_NS_EL1_IRQ, ARCH_TIMER_VIRT_IRQ, ARCH_TIMER_NS_EL2_IRQ = 13, 14, 11, 10
VIRTUAL_PMU_IRQ = 7
KEY_POWER = 116
PSCI_0_2_FN_CPU_OFF, PSCI_0_2_FN64_CPU_SUSPEND = 0x8400_0002, 0xC400_0001
PSCI_0_2_FN64_CPU_ON, PSCI_0_2_FN64_MIGRATE = 0xC400_0003, 0xC400_0005

FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9
OFF_MEM_RSVMAP, OFF_DT_STRUCT = 0x30, 0x40  # fdt_create: the 40-byte header rounded up to a reservation entry

Value = int | str | tuple[int, ...] | tuple[str, ...] | bytes | None


def _u32(v: int) -> bytes:
    return v.to_bytes(4, "big")


def _align(n: int) -> int:
    return (n + 3) & ~3  # FDT_TAGALIGN


def _encode(value: Value) -> bytes:
    """An int or tuple of ints as cells, a str or tuple of str as a string list, bytes as is, None empty."""
    if value is None or isinstance(value, bytes):
        return value or b""
    items: tuple[int | str, ...] = (value,) if isinstance(value, int | str) else value
    return b"".join(v.encode() + b"\0" if isinstance(v, str) else _u32(v) for v in items)


def _cells64(*values: int) -> tuple[int, ...]:
    """``qemu_fdt_setprop_sized_cells`` with every value two cells wide (all of QEMU's uses here)."""
    return tuple(c for v in values for c in (v >> 32, v & 0xFFFF_FFFF))


class _Qfdt:
    """QEMU's ``qemu_fdt_*`` helpers over libfdt's read-write functions (``fdt_rw.c``), byte for byte, on the
    buffer ``create_device_tree`` leaves (``fdt_create``, an empty root, ``fdt_finish``, ``fdt_open_into``)."""

    def __init__(self) -> None:
        self.buf = bytearray(FDT_SIZE)  # g_malloc0
        self.buf[OFF_DT_STRUCT : OFF_DT_STRUCT + 16] = b"".join(map(_u32, (FDT_BEGIN_NODE, 0, FDT_END_NODE, FDT_END)))
        self.size_struct, self.size_strings = 16, 0
        self.next_phandle = 0x8000  # qemu_fdt_alloc_phandle without -dtb

    @property
    def off_strings(self) -> int:
        return OFF_DT_STRUCT + self.size_struct

    def alloc_phandle(self) -> int:
        self.next_phandle += 1
        return self.next_phandle - 1

    def _word(self, off: int) -> int:
        return int.from_bytes(self.buf[off : off + 4], "big")

    def _cstr(self, off: int) -> str:
        return self.buf[off : self.buf.index(0, off)].decode()

    def _next_tag(self, off: int) -> tuple[int, int]:
        """``fdt_next_tag``: the tag at ``off`` and the offset after it."""
        tag = self._word(off)
        if tag == FDT_BEGIN_NODE:
            return tag, _align(self.buf.index(0, off + 4) + 1)
        return tag, _align(off + 12 + self._word(off + 4)) if tag == FDT_PROP else off + 4

    def _after_props(self, node: int) -> int:
        """Where a node's subnodes begin (or its end tag), past its properties."""
        off = self._next_tag(node)[1]
        while self._word(off) in (FDT_PROP, FDT_NOP):
            off = self._next_tag(off)[1]
        return off

    def _path(self, path: str) -> int:
        """``fdt_path_offset`` (full names only)."""
        node = OFF_DT_STRUCT
        for name in filter(None, path.split("/")):
            off = self._after_props(node)
            while self._word(off) != FDT_BEGIN_NODE or self._cstr(off + 4) != name:
                if self._word(off) == FDT_END_NODE:
                    raise KeyError(path)
                depth = 0
                while True:  # past this subnode
                    tag, off = self._next_tag(off)
                    depth += {FDT_BEGIN_NODE: 1, FDT_END_NODE: -1}.get(tag, 0)
                    if depth == 0:
                        break
            node = off
        return node

    def _splice(self, at: int, oldlen: int, newlen: int) -> None:
        """``fdt_splice_``: move the rest of the data (structure, strings) by ``newlen - oldlen``; the opened
        gap keeps its old bytes."""
        end = self.off_strings + self.size_strings
        if end - oldlen + newlen > FDT_SIZE:
            raise ValueError("device tree too large")
        self.buf[at + newlen : end - oldlen + newlen] = self.buf[at + oldlen : end]

    def _splice_struct(self, at: int, oldlen: int, newlen: int) -> None:
        self._splice(at, oldlen, newlen)
        self.size_struct += newlen - oldlen

    def _find_add_string(self, name: str) -> int:
        """``fdt_find_add_string_``: the first match in the strings block (the tail of a longer name will do)."""
        s, end = name.encode() + b"\0", self.off_strings + self.size_strings
        found = self.buf.find(s, self.off_strings, end)
        if found >= 0:
            return found - self.off_strings
        self._splice(end, 0, len(s))
        self.buf[end : end + len(s)] = s
        self.size_strings += len(s)
        return end - self.off_strings

    def _prop(self, node: int, name: str) -> int | None:
        off = self._next_tag(node)[1]
        while (tag := self._word(off)) in (FDT_PROP, FDT_NOP):
            if tag == FDT_PROP and self._cstr(self.off_strings + self._word(off + 8)) == name:
                return off
            off = self._next_tag(off)[1]
        return None

    def add_subnode(self, path: str) -> None:
        """``qemu_fdt_add_subnode`` (``fdt_add_subnode``): the new node goes first among its parent's subnodes."""
        parent, _, name = path.rpartition("/")
        at = self._after_props(self._path(parent))
        body = _align(len(name) + 1)
        self._splice_struct(at, 0, 8 + body)
        self.buf[at : at + 8 + body] = _u32(FDT_BEGIN_NODE) + name.encode().ljust(body, b"\0") + _u32(FDT_END_NODE)

    def add_path(self, path: str) -> None:
        """``qemu_fdt_add_path``: each missing node along ``path``, outermost first."""
        parts = path.strip("/").split("/")
        for sub in ("/" + "/".join(parts[: i + 1]) for i in range(len(parts))):
            try:
                self._path(sub)
            except KeyError:
                self.add_subnode(sub)

    def setprop(self, path: str, name: str, value: Value = None) -> None:
        """``qemu_fdt_setprop`` and kin (``fdt_setprop``): an existing property is resized in place
        (``fdt_resize_property_``), a new one goes first in its node (``fdt_add_property_``)."""
        data, node = _encode(value), self._path(path)
        prop = self._prop(node, name)
        if prop is not None:
            self._splice_struct(prop + 12, _align(self._word(prop + 4)), _align(len(data)))
        else:
            nameoff = self._find_add_string(name)
            prop = self._next_tag(node)[1]
            self._splice_struct(prop, 0, 12 + _align(len(data)))
            self.buf[prop : prop + 12] = _u32(FDT_PROP) + _u32(0) + _u32(nameoff)
        self.buf[prop + 4 : prop + 8] = _u32(len(data))
        self.buf[prop + 12 : prop + 12 + len(data)] = data  # the padding after it is left as it was

    def node(self, path: str, *props: tuple[str, Value]) -> None:
        """A new node and its properties, set in the order given."""
        self.add_subnode(path)
        for name, value in props:
            self.setprop(path, name, value)

    def get_phandle(self, path: str) -> int:
        """``qemu_fdt_get_phandle``."""
        prop = self._prop(self._path(path), "phandle")
        assert prop is not None, path
        return self._word(prop + 12)

    def to_dtb(self) -> bytes:
        """The whole buffer, as ``qemu_fdt_dumpdtb`` writes it, its header up to date."""
        fields = (0xD00DFEED, FDT_SIZE, OFF_DT_STRUCT, self.off_strings, OFF_MEM_RSVMAP, 17, 16, 0,
                  self.size_strings, self.size_struct)  # fmt: skip
        self.buf[:40] = b"".join(map(_u32, fields))
        return bytes(self.buf)


def _spi(device: str, flags: int = GIC_FDT_IRQ_FLAGS_LEVEL_HI) -> tuple[int, int, int]:
    return GIC_FDT_IRQ_TYPE_SPI, IRQMAP[device], flags


def _create_fdt(q: _Qfdt, kaslr_seed: int | None, rng_seed: bytes | None) -> int:
    """``create_fdt``: the root's properties, ``/chosen`` (``create_randomness``), ``/apb-pclk``; its phandle."""
    for name, value in (("compatible", "linux,dummy-virt"), ("#address-cells", 2), ("#size-cells", 2),
                        ("model", "linux,dummy-virt")):  # fmt: skip
        q.setprop("/", name, value)
    q.add_subnode("/chosen")
    if kaslr_seed is not None:
        q.setprop("/chosen", "kaslr-seed", _cells64(kaslr_seed))  # qemu_fdt_setprop_u64
    if rng_seed is not None:
        q.setprop("/chosen", "rng-seed", rng_seed)
    clock = q.alloc_phandle()
    q.node("/apb-pclk", ("compatible", "fixed-clock"), ("#clock-cells", 0), ("clock-frequency", 24_000_000),
           ("clock-output-names", "clk24mhz"), ("phandle", clock))  # fmt: skip
    return clock


def _fdt_add_timer_nodes(q: _Qfdt) -> None:
    """``fdt_add_timer_nodes``: the generic timer's PPIs (secure, non-secure, virtual, hypervisor), level-high."""
    irqs = (ARCH_TIMER_S_EL1_IRQ, ARCH_TIMER_NS_EL1_IRQ, ARCH_TIMER_VIRT_IRQ, ARCH_TIMER_NS_EL2_IRQ)
    q.node("/timer", ("compatible", ("arm,armv8-timer", "arm,armv7-timer")), ("always-on", None),
           ("interrupts", tuple(c for irq in irqs for c in (GIC_FDT_IRQ_TYPE_PPI, irq, PPI_FLAGS))))  # fmt: skip


def _fdt_add_cpu_nodes(q: _Qfdt) -> None:
    """``fdt_add_cpu_nodes``: ``/cpus/cpu@0`` (MPIDR affinity 0) and the ``cpu-map`` topology."""
    q.node("/cpus", ("#address-cells", 1), ("#size-cells", 0))
    q.node("/cpus/cpu@0", ("device_type", "cpu"), ("compatible", "arm,cortex-a72"), ("reg", 0),
           ("phandle", q.alloc_phandle()))  # fmt: skip
    q.add_subnode("/cpus/cpu-map")
    q.add_path("/cpus/cpu-map/socket0/cluster0/core0")
    q.setprop("/cpus/cpu-map/socket0/cluster0/core0", "cpu", q.get_phandle("/cpus/cpu@0"))  # qemu_fdt_setprop_phandle


def _virt_flash_fdt(q: _Qfdt) -> None:
    """``virt_flash_fdt`` (no secure memory): both pflash banks in one ``cfi-flash`` node."""
    base, size = MEMMAP["flash"]
    bank = size // 2
    q.node(f"/flash@{base:x}", ("compatible", "cfi-flash"), ("reg", _cells64(base, bank, base + bank, bank)),
           ("bank-width", 4))  # fmt: skip


def _create_gic(q: _Qfdt) -> tuple[int, int]:
    """``create_gic``: ``fdt_add_gic_node`` (GICv2's distributor and CPU interface), then ``create_v2m``'s
    ``fdt_add_v2m_gic_node``; the phandles of the GIC and its MSI frame."""
    gic = q.alloc_phandle()
    q.setprop("/", "interrupt-parent", gic)
    intc = f"/intc@{MEMMAP['gic_dist'][0]:x}"
    q.node(intc, ("#interrupt-cells", 3), ("interrupt-controller", None), ("#address-cells", 2), ("#size-cells", 2),
           ("ranges", None), ("compatible", "arm,cortex-a15-gic"),
           ("reg", _cells64(*MEMMAP["gic_dist"], *MEMMAP["gic_cpu"])), ("phandle", gic))  # fmt: skip
    msi = q.alloc_phandle()
    q.node(f"{intc}/v2m@{MEMMAP['gic_v2m'][0]:x}", ("compatible", "arm,gic-v2m-frame"), ("msi-controller", None),
           ("reg", _cells64(*MEMMAP["gic_v2m"])), ("phandle", msi))  # fmt: skip
    return gic, msi


def _fdt_add_pmu_nodes(q: _Qfdt) -> None:
    """``fdt_add_pmu_nodes``: the PMUv3's PPI."""
    q.node("/pmu", ("compatible", "arm,armv8-pmuv3"),
           ("interrupts", (GIC_FDT_IRQ_TYPE_PPI, VIRTUAL_PMU_IRQ, PPI_FLAGS)))  # fmt: skip


def _create_uart(q: _Qfdt, clock: int) -> None:
    """``create_uart`` (VIRT_UART): the PL011, and ``/chosen``'s ``stdout-path`` to it."""
    path = f"/pl011@{MEMMAP['uart'][0]:x}"
    q.node(path, ("compatible", ("arm,pl011", "arm,primecell")), ("reg", _cells64(*MEMMAP["uart"])),
           ("interrupts", _spi("uart")), ("clocks", (clock, clock)),
           ("clock-names", ("uartclk", "apb_pclk")))  # fmt: skip
    q.setprop("/chosen", "stdout-path", path)


def _create_rtc(q: _Qfdt, clock: int) -> None:
    """``create_rtc``: the PL031."""
    q.node(f"/pl031@{MEMMAP['rtc'][0]:x}", ("compatible", ("arm,pl031", "arm,primecell")),
           ("reg", _cells64(*MEMMAP["rtc"])), ("interrupts", _spi("rtc")), ("clocks", clock),
           ("clock-names", "apb_pclk"))  # fmt: skip


def _create_pcie(q: _Qfdt, gic: int, msi: int) -> None:
    """``create_pcie`` (high ECAM, 64-bit MMIO window) and ``create_pcie_irq_map`` (INTx swizzled over 4 SPIs)."""
    path = f"/pcie@{MEMMAP['pcie_mmio'][0]:x}"
    ecam_base, ecam_size = MEMMAP["pcie_ecam_high"]
    pio, mmio, high = MEMMAP["pcie_pio"], MEMMAP["pcie_mmio"], MEMMAP["pcie_mmio_high"]
    # FDT_PCI_RANGE_IOPORT, _MMIO, _MMIO_64BIT: bus address, CPU address, size
    ranges = (1 << 24, *_cells64(0, *pio), 2 << 24, *_cells64(mmio[0], *mmio), 3 << 24, *_cells64(high[0], *high))
    irq_map = tuple(c for slot in range(4) for pin in range(4)
                    for c in (slot << 11, 0, 0, pin + 1, gic, 0, 0, GIC_FDT_IRQ_TYPE_SPI,
                              IRQMAP["pcie"] + (pin + slot) % 4, GIC_FDT_IRQ_FLAGS_LEVEL_HI))  # fmt: skip
    q.node(path, ("compatible", "pci-host-ecam-generic"), ("device_type", "pci"), ("#address-cells", 3),
           ("#size-cells", 2), ("linux,pci-domain", 0), ("bus-range", (0, ecam_size // 0x10_0000 - 1)),
           ("dma-coherent", None), ("msi-map", (0, msi, 0, 0x1_0000)),
           ("reg", _cells64(ecam_base, ecam_size)), ("ranges", ranges), ("#interrupt-cells", 1),
           ("interrupt-map", irq_map), ("interrupt-map-mask", (3 << 11, 0, 0, 7)))  # fmt: skip


def _create_gpio_devices(q: _Qfdt, clock: int) -> None:
    """``create_gpio_devices`` (VIRT_GPIO): the PL061, and ``/gpio-keys`` (its line 3 is the power button)."""
    phandle = q.alloc_phandle()
    q.node(f"/pl061@{MEMMAP['gpio'][0]:x}", ("reg", _cells64(*MEMMAP["gpio"])),
           ("compatible", ("arm,pl061", "arm,primecell")), ("#gpio-cells", 2), ("gpio-controller", None),
           ("interrupts", _spi("gpio")), ("clocks", clock), ("clock-names", "apb_pclk"),
           ("phandle", phandle))  # fmt: skip
    q.node("/gpio-keys", ("compatible", "gpio-keys"))
    q.node("/gpio-keys/poweroff", ("label", "GPIO Key Poweroff"), ("linux,code", KEY_POWER),
           ("gpios", (phandle, 3, 0)))  # fmt: skip


def _create_virtio_devices(q: _Qfdt, count: int) -> None:
    """``create_virtio_devices``: the transports' nodes, added highest first so they list lowest first; each
    interrupt is an edge-triggered SPI."""
    base, size = MEMMAP["mmio"]
    for i in reversed(range(count)):
        q.node(f"/virtio_mmio@{base + i * size:x}", ("compatible", "virtio,mmio"),
               ("reg", _cells64(base + i * size, size)),
               ("interrupts", (GIC_FDT_IRQ_TYPE_SPI, IRQMAP["mmio"] + i, GIC_FDT_IRQ_FLAGS_EDGE_LO_HI)),
               ("dma-coherent", None))  # fmt: skip


def _create_fw_cfg(q: _Qfdt) -> None:
    """``create_fw_cfg``: the fw_cfg MMIO interface."""
    q.node(f"/fw-cfg@{MEMMAP['fw_cfg'][0]:x}", ("compatible", "qemu,fw-cfg-mmio"),
           ("reg", _cells64(*MEMMAP["fw_cfg"])), ("dma-coherent", None))  # fmt: skip


def _platform_bus_add_all_fdt_nodes(q: _Qfdt) -> None:
    """``platform_bus_add_all_fdt_nodes`` (``hw/core/sysbus-fdt.c``, from ``virt_machine_done``): the empty bus."""
    base, size = MEMMAP["platform_bus"]
    q.node(f"/platform-bus@{base:x}", ("compatible", ("qemu,platform", "simple-bus")), ("#size-cells", 1),
           ("#address-cells", 1), ("ranges", (0, base >> 32, base & 0xFFFF_FFFF, size)),
           ("interrupt-parent", q.get_phandle(f"/intc@{MEMMAP['gic_dist'][0]:x}")))  # fmt: skip


def _load_dtb(q: _Qfdt, ram_size: int) -> None:
    """``load_dtb`` (``hw/arm/boot.c``): ``fdt_add_memory_node``, then ``fdt_add_psci_node`` (PSCI 1.0, HVC)."""
    q.node(f"/memory@{RAM_BASE:x}", ("device_type", "memory"), ("reg", _cells64(RAM_BASE, ram_size)))
    q.node("/psci", ("compatible", ("arm,psci-1.0", "arm,psci-0.2", "arm,psci")), ("method", "hvc"),
           ("cpu_suspend", PSCI_0_2_FN64_CPU_SUSPEND), ("cpu_off", PSCI_0_2_FN_CPU_OFF),
           ("cpu_on", PSCI_0_2_FN64_CPU_ON), ("migrate", PSCI_0_2_FN64_MIGRATE))  # fmt: skip


def check_ram_size(ram_size: int) -> int:
    """``ram_size`` if this board takes it (128 MiB to 2 GiB, whole 8 KiB pages as QEMU rounds ``-m``)."""
    if not MIN_RAM_SIZE <= ram_size <= MAX_RAM_SIZE or ram_size % 8192:
        raise ValueError(f"RAM size {ram_size:#x}: the Arm virt board takes 128M..2G")
    return ram_size


def parse_ram_size(value: str) -> int:
    """The bytes of a QEMU ``-m`` value in 128M..2G (``128M``, ``1G``, ``2g``, ``1.5G``, ``512``: a bare number
    is MiB, as ``qemu_strtosz_MiB``): the size in the ``/memory@40000000`` node's ``reg``."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)[bB]?\s*", value)
    if not m:
        raise ValueError(f"bad RAM size {value!r}")
    shift = {"": 20, "k": 10, "m": 20, "g": 30, "t": 40}[m.group(2).lower()]
    return check_ram_size(int(float(m.group(1)) * (1 << shift)))


def build_fdt(ram_size: int, virtio_count: int = NUM_VIRTIO_TRANSPORTS, *, kaslr_seed: int | None = None,
              rng_seed: bytes | None = None, firmware: bool = False) -> bytes:  # fmt: skip
    """The 1 MiB blob ``-M virt,dumpdtb=`` writes for ``-cpu cortex-a72 -m ram_size -nic none``, built by
    QEMU's calls in ``machvirt_init``'s order, then ``virt_machine_done``'s and ``arm_load_dtb``'s.

    ``virtio_count`` transports get nodes (QEMU: always 32; transport i at 0x0a000000 + 0x200 * i, SPI 16 + i).
    ``kaslr_seed`` (a u64) and ``rng_seed`` (32 bytes) are ``/chosen``'s random properties; without them the
    tree is that of ``-M virt,dtb-randomness=off``. ``firmware``: booted from flash (``-bios``): QEMU then gives
    the board an ACPI GED instead of the PL061 and its power key (``machvirt_init``), so neither node is there.
    """
    check_ram_size(ram_size)
    if not 0 <= virtio_count <= NUM_VIRTIO_TRANSPORTS:
        raise ValueError(f"virtio_count {virtio_count}: 0..{NUM_VIRTIO_TRANSPORTS}")
    if rng_seed is not None and len(rng_seed) != 32:
        raise ValueError("rng_seed: 32 bytes")
    if kaslr_seed is not None and not 0 <= kaslr_seed < 1 << 64:
        raise ValueError("kaslr_seed: a u64")
    q = _Qfdt()
    clock = _create_fdt(q, kaslr_seed, rng_seed)
    _fdt_add_timer_nodes(q)
    _fdt_add_cpu_nodes(q)
    _virt_flash_fdt(q)
    gic, msi = _create_gic(q)
    _fdt_add_pmu_nodes(q)
    _create_uart(q, clock)
    _create_rtc(q, clock)
    _create_pcie(q, gic, msi)
    if not firmware:
        _create_gpio_devices(q, clock)
    _create_virtio_devices(q, virtio_count)
    _create_fw_cfg(q)
    _platform_bus_add_all_fdt_nodes(q)
    _load_dtb(q, ram_size)
    return q.to_dtb()
