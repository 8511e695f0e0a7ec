"""Node devices (PCI, USB, net, storage, ...) as a tree by parent."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import libvirt

from ipyvirt.explore.listing import Listing, Record, cell, libvirt_connection, optional, xml

__all__ = ["Device", "devices"]


@dataclass(frozen=True)
class Device(Record):
    """One node device. ``depth`` is its distance from a root of the tree (a device whose
    parent is not listed): the listing has each device right after its parent."""

    COLUMNS = ("name", "capability", "driver", "parent")

    name: str
    parent: str | None
    #: the first capability ("pci", "usb_device", "net", "scsi_host", ...)
    capability: str | None
    capabilities: tuple[str, ...]
    #: None: no driver bound, or the driver does not say
    driver: str | None
    depth: int

    def cells(self) -> tuple[object, ...]:
        return (
            "  " * self.depth + self.name,
            cell(self.capability),
            cell(self.driver),
            cell(self.parent),
        )


def devices(conn: object) -> Listing[Device]:
    """Every node device of *conn* (a ``libvirt.virConnect`` or an
    :class:`ipyvirt.Connection`), depth first from the roots, siblings by name."""
    c = libvirt_connection(conn)
    found = optional(c.listAllDevices)
    if found is None:
        return Listing(Device.COLUMNS, (), "node devices", supported=False)
    read: dict[str, tuple[str | None, tuple[str, ...], str | None]] = {}
    for dev in found:
        try:
            desc = xml(dev.XMLDesc())
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_NODE_DEVICE:
                raise
            continue  # unplugged meanwhile
        caps = tuple(e.get("type", "") for e in desc.findall("capability"))
        read[dev.name()] = (desc.findtext("parent"), caps, desc.findtext("driver/name"))
    children: dict[str | None, list[str]] = defaultdict(list)
    for name, (parent, _, _) in read.items():
        children[parent if parent in read else None].append(name)
    rows: list[Device] = []

    def walk(parent: str | None, depth: int) -> None:
        for name in sorted(children.get(parent, [])):
            up, caps, driver = read[name]
            rows.append(Device(name, up, caps[0] if caps else None, caps, driver, depth))
            walk(name, depth + 1)

    walk(None, 0)
    return Listing(Device.COLUMNS, tuple(rows), "node devices")
