"""One domain in depth: its overview, disks, NICs, graphics, consoles and snapshots."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import libvirt

from ipyvirt.domains import shown_reason
from ipyvirt.explore.devices_xml import (
    Console,
    Disk,
    Graphics,
    Nic,
    consoles,
    disks,
    graphics,
    nics,
)
from ipyvirt.explore.listing import Listing, Record, fields_table, optional, size, xml
from ipyvirt.explore.snapshots import Snapshot, snapshots
from ipyvirt.names import state_name
from ipyvirt.tables import Tables

__all__ = ["Domain", "DomainDetails", "domain_details"]

_KIB = 1024


@dataclass(frozen=True)
class DomainDetails(Record):
    """A domain as :meth:`ipyvirt.explore.Domain.details` reads it; sizes in bytes, None (shown
    "n/a") where the driver cannot say."""

    name: str
    uuid: str
    #: -1 when not running
    id: int
    state: str
    #: why it is in that state ("booted", "user", ...); "" when libvirt says nothing useful
    reason: str
    #: seconds since it started, where known (see :func:`domain_details`)
    uptime: float | None
    vcpus: int
    max_vcpus: int | None
    memory: int
    max_memory: int
    autostart: bool
    persistent: bool
    disks: Listing[Disk]
    nics: Listing[Nic]
    graphics: Listing[Graphics]
    consoles: Listing[Console]
    #: depth first from the roots; None where the driver has no snapshots
    snapshots: Listing[Snapshot] | None

    def table(self) -> Tables:
        """The overview as a table of fields, then a table per part."""
        overview = fields_table(
            f"domain {self.name}",
            {
                "uuid": self.uuid,
                "id": self.id if self.id >= 0 else "-",
                "state": f"{self.state} ({self.reason})" if self.reason else self.state,
                "uptime": None if self.uptime is None else _duration(self.uptime),
                "vcpus": self.vcpus
                if self.max_vcpus is None
                else f"{self.vcpus} of {self.max_vcpus}",
                "memory": f"{size(self.memory)} of {size(self.max_memory)}",
                "autostart": self.autostart,
                "persistent": self.persistent,
            },
        )
        parts = [overview, self.disks.table(), self.nics.table(), self.graphics.table()]
        parts.append(self.consoles.table())
        if self.snapshots is not None:
            parts.append(self.snapshots.table())
        return Tables(tuple(parts))

    def to_records(self) -> list[dict[str, Any]]:
        """The overview as one plain dict, in a list; each part has its own ``to_records()``."""
        out = self.to_record()
        if self.snapshots is None:
            out.pop("snapshots", None)
        return [out]

    def __repr__(self) -> str:
        return repr(self.table())

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()


def _duration(seconds: float) -> str:
    s = int(seconds)
    days, s = divmod(s, 86400)
    text = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{days}d {text}" if days else text


def domain_details(dom: libvirt.virDomain, *, started: float | None = None) -> DomainDetails:
    """*dom* in depth, fresh from libvirt. libvirt has no call for a domain's uptime:
    *started* (seconds since the epoch: when its ``started`` event came, as
    :class:`Domain` finds in its connection's history) gives it, for a running domain."""
    desc = xml(dom.XMLDesc())
    state, reason = dom.state()
    _, max_kib, mem_kib, vcpus, _ = dom.info()
    running = dom.isActive()
    uptime = time.time() - started if running and started is not None else None
    return DomainDetails(
        name=dom.name(),
        uuid=dom.UUIDString(),
        id=dom.ID(),
        state=state_name(state),
        reason=shown_reason(state, reason),
        uptime=uptime,
        vcpus=vcpus,
        max_vcpus=optional(dom.maxVcpus) if running else _int(desc.findtext("vcpu")),
        memory=(mem_kib or max_kib) * _KIB,
        max_memory=max_kib * _KIB,
        autostart=bool(dom.autostart()),
        persistent=bool(dom.isPersistent()),
        disks=disks(dom, desc),
        nics=nics(dom, desc),
        graphics=graphics(desc),
        consoles=consoles(desc),
        snapshots=snapshots(dom),
    )


def _int(text: str | None) -> int | None:
    return int(text) if text and text.strip().isdigit() else None


class Domain(libvirt.virDomain):  # type: ignore[misc]  # libvirt ships no types
    """A ``libvirt.virDomain`` (every libvirt call works on it) that also reads itself in
    depth: what :meth:`ipyvirt.Connection.domain` gives."""

    # libvirt's __del__ frees _o: a Domain whose __init__ failed has nothing to free
    _o: Any = None

    def __init__(self, dom: libvirt.virDomain, history: Any = None) -> None:
        # the libvirt handle moves here: libvirt frees it once, when this object goes
        super().__init__(dom.connect(), dom._o)
        dom._o = None
        self._history = history

    def details(self) -> DomainDetails:
        """The domain in depth, fresh from libvirt: see :class:`~ipyvirt.explore.DomainDetails`."""
        return domain_details(self, started=self._started())

    def _started(self) -> float | None:
        """When the run it is in began: its latest ``started`` event, if the connection's
        history still holds it and no ``stopped`` came after."""
        name = self.name()
        for event in reversed(list(self._history or ())):
            if event.family != "domain" or event.subject != name or event.kind != "lifecycle":
                continue
            if event.name == "started":
                return float(event.time)
            if event.name in ("stopped", "crashed"):
                return None  # it is not the run the latest start began
        return None
