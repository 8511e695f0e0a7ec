"""A domain's snapshots, as a tree."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import libvirt

from ipyvirt.explore.listing import Listing, Record, cell, optional, xml

__all__ = ["Snapshot", "snapshots"]


@dataclass(frozen=True)
class Snapshot(Record):
    """One snapshot. ``depth`` is its distance from a root (a snapshot without a parent):
    the listing has each right after its parent, siblings oldest first."""

    COLUMNS = ("name", "created", "state", "current", "parent")

    name: str
    parent: str | None
    #: seconds since the epoch
    created: int | None
    #: the domain's state when it was taken: "running", "shutoff", "disk-snapshot", ...
    state: str | None
    current: bool
    description: str | None
    depth: int

    def cells(self) -> tuple[object, ...]:
        created = None
        if self.created is not None:
            created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.created))
        return (
            "  " * self.depth + self.name,
            cell(created),
            cell(self.state),
            cell(self.current),
            cell(self.parent),
        )


def snapshots(dom: libvirt.virDomain) -> Listing[Snapshot] | None:
    """The snapshots of *dom* depth first from the roots; None where the driver has none."""
    found = optional(dom.listAllSnapshots)
    if found is None:
        return None
    read: dict[str, tuple[str | None, int | None, str | None, bool, str | None]] = {}
    for snap in found:
        try:
            desc = xml(snap.getXMLDesc())
            current = bool(snap.isCurrent())
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
                raise
            continue  # deleted meanwhile
        created = desc.findtext("creationTime")
        read[snap.getName()] = (
            desc.findtext("parent/name"),
            int(created) if created and created.isdigit() else None,
            desc.findtext("state"),
            current,
            desc.findtext("description"),
        )
    children: dict[str | None, list[str]] = defaultdict(list)
    for name, (parent, *_) in read.items():
        children[parent if parent in read else None].append(name)
    rows: list[Snapshot] = []

    def walk(parent: str | None, depth: int) -> None:
        for name in sorted(children.get(parent, []), key=lambda n: (read[n][1] or 0, n)):
            up, created, state, current, description = read[name]
            rows.append(Snapshot(name, up, created, state, current, description, depth))
            walk(name, depth + 1)

    walk(None, 0)
    return Listing(Snapshot.COLUMNS, tuple(rows), "snapshots")
