"""A domain's devices as its XML describes them: disks, NICs, graphics, consoles."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import libvirt

from ipyvirt.explore.listing import Listing, Record, cell, size

__all__ = ["Console", "Disk", "Graphics", "Nic", "consoles", "disks", "graphics", "nics"]


@dataclass(frozen=True)
class Disk(Record):
    """One disk; sizes in bytes, None where libvirt cannot read them (no source, a
    network disk of an inactive domain, a driver without ``virDomainGetBlockInfo``)."""

    COLUMNS = ("target", "device", "bus", "source", "capacity", "allocation")

    target: str
    #: "disk", "cdrom", "floppy", "lun"
    device: str
    bus: str | None
    #: a path, a volume ("pool/volume"), a network name ("rbd:pool/image"), or None
    source: str | None
    capacity: int | None
    allocation: int | None

    def cells(self) -> tuple[object, ...]:
        return (
            self.target,
            self.device,
            cell(self.bus),
            cell(self.source),
            size(self.capacity),
            size(self.allocation),
        )


@dataclass(frozen=True)
class Nic(Record):
    """One network interface. ``addresses`` is None where neither a DHCP lease nor a guest
    agent tells them (an inactive domain, a driver without ``interfaceAddresses``)."""

    COLUMNS = ("mac", "type", "source", "model", "target", "addresses")

    mac: str | None
    #: "network", "bridge", "direct", "user", ...
    type: str
    #: the network, bridge or host device it is on
    source: str | None
    model: str | None
    #: the host side's device name ("vnet0") while it runs
    target: str | None
    addresses: tuple[str, ...] | None

    def cells(self) -> tuple[object, ...]:
        return (
            cell(self.mac),
            self.type,
            cell(self.source),
            cell(self.model),
            cell(self.target),
            cell(self.addresses),
        )


@dataclass(frozen=True)
class Graphics(Record):
    """One graphical display. ``port`` is None while libvirt has not allocated one."""

    COLUMNS = ("type", "listen", "port", "autoport")

    type: str
    listen: str | None
    port: int | None
    autoport: bool

    def cells(self) -> tuple[object, ...]:
        return (self.type, cell(self.listen), cell(self.port), cell(self.autoport))


@dataclass(frozen=True)
class Console(Record):
    """One character device a user may attach to: a console, serial or parallel port, or a
    channel."""

    COLUMNS = ("device", "type", "target", "port", "path")

    #: "console", "serial", "parallel", "channel"
    device: str
    #: the host side: "pty", "file", "unix", "tcp", ...
    type: str
    #: the guest side: "serial", "virtio", "isa-serial", a channel's name, ...
    target: str | None
    port: int | None
    #: the host side's path (a pty's /dev/pts/N while it runs)
    path: str | None

    def cells(self) -> tuple[object, ...]:
        return (self.device, self.type, cell(self.target), cell(self.port), cell(self.path))


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _disk_source(disk: ET.Element) -> str | None:
    source = disk.find("source")
    if source is None:
        return None
    if source.get("pool") and source.get("volume"):
        return f"{source.get('pool')}/{source.get('volume')}"
    if source.get("protocol"):
        return f"{source.get('protocol')}:{source.get('name', '')}"
    return source.get("file") or source.get("dev") or source.get("dir") or source.get("name")


def disks(dom: libvirt.virDomain, desc: ET.Element) -> Listing[Disk]:
    """The disks of *dom*, whose XML *desc* is, in the XML's order."""
    rows = []
    for disk in desc.findall("devices/disk"):
        target = disk.find("target")
        dev = target.get("dev", "") if target is not None else ""
        source = _disk_source(disk)
        info = None
        if source is not None and dev:
            try:
                info = dom.blockInfo(dev)
            except libvirt.libvirtError:
                info = None  # "size where readable": an absent file, a driver without it
        rows.append(
            Disk(
                target=dev,
                device=disk.get("device", "disk"),
                bus=target.get("bus") if target is not None else None,
                source=source,
                capacity=info[0] if info else None,
                allocation=info[1] if info else None,
            )
        )
    return Listing(Disk.COLUMNS, tuple(rows), "disks")


def _addresses(dom: libvirt.virDomain) -> dict[str, tuple[str, ...]] | None:
    """The guest's addresses by MAC: from DHCP leases, else from a guest agent."""
    if not dom.isActive():
        return None
    for source in (
        libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
        libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
    ):
        try:
            found = dom.interfaceAddresses(source)
        except libvirt.libvirtError:
            continue  # no agent, no lease database: try the next source
        by_mac = {}
        for iface in (found or {}).values():
            addrs = tuple(f"{a['addr']}/{a['prefix']}" for a in iface.get("addrs") or ())
            if iface.get("hwaddr"):
                by_mac[str(iface["hwaddr"]).lower()] = addrs
        if by_mac:
            return by_mac
    return None


def nics(dom: libvirt.virDomain, desc: ET.Element) -> Listing[Nic]:
    """The network interfaces of *dom*, whose XML *desc* is, with their addresses."""
    known = _addresses(dom)
    rows = []
    for nic in desc.findall("devices/interface"):
        mac = nic.find("mac")
        address = mac.get("address") if mac is not None else None
        source = nic.find("source")
        model = nic.find("model")
        target = nic.find("target")
        src = None
        if source is not None:
            src = source.get("network") or source.get("bridge") or source.get("dev")
        addresses = None
        if known is not None and address is not None:
            addresses = known.get(address.lower())
        rows.append(
            Nic(
                mac=address,
                type=nic.get("type", ""),
                source=src,
                model=model.get("type") if model is not None else None,
                target=target.get("dev") if target is not None else None,
                addresses=addresses,
            )
        )
    return Listing(Nic.COLUMNS, tuple(rows), "network interfaces")


def graphics(desc: ET.Element) -> Listing[Graphics]:
    """The graphical displays in the domain's XML *desc*."""
    rows = []
    for g in desc.findall("devices/graphics"):
        listen = g.get("listen")
        element = g.find("listen")
        if listen is None and element is not None:
            listen = element.get("address") or element.get("socket") or element.get("network")
        port = _int(g.get("port"))
        rows.append(
            Graphics(
                type=g.get("type", ""),
                listen=listen,
                port=port if port is not None and port > 0 else None,
                autoport=g.get("autoport") == "yes",
            )
        )
    return Listing(Graphics.COLUMNS, tuple(rows), "graphics")


def consoles(desc: ET.Element) -> Listing[Console]:
    """The consoles, serial and parallel ports and channels in the domain's XML *desc*."""
    rows = []
    for kind in ("console", "serial", "parallel", "channel"):
        for dev in desc.findall(f"devices/{kind}"):
            target = dev.find("target")
            source = dev.find("source")
            path = dev.get("tty") or (source.get("path") if source is not None else None)
            rows.append(
                Console(
                    device=kind,
                    type=dev.get("type", ""),
                    target=None if target is None else target.get("name") or target.get("type"),
                    port=_int(target.get("port")) if target is not None else None,
                    path=path,
                )
            )
    return Listing(Console.COLUMNS, tuple(rows), "consoles")
