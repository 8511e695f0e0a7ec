"""What a domain table shows about each domain, queried from libvirt."""

from __future__ import annotations

from dataclasses import dataclass

import libvirt

from ipyvirt.names import DOMAIN_STATES, state_name, state_reason_name

__all__ = [
    "COLUMNS",
    "STATE_ORDER",
    "DomainRow",
    "query_all",
    "query_all_with_handles",
    "query_domain",
    "shown_reason",
]

COLUMNS = ("name", "id", "state", "reason", "vcpus", "memory MiB", "autostart", "persistent")

#: the order ``sort by state`` uses: the interesting states first (names.DOMAIN_STATES)
STATE_ORDER = DOMAIN_STATES


def shown_reason(state: int, reason: int) -> str:
    """Why a domain is in *state*, when that says something: a shut-off domain that was
    never started (or was defined on a daemon that restarted) has libvirt's reason
    "unknown", which tells a reader nothing, so it shows as ""."""
    name = state_reason_name(state, reason)
    if state == libvirt.VIR_DOMAIN_SHUTOFF and name == "unknown":
        return ""
    return name


@dataclass(frozen=True)
class DomainRow:
    """One domain as ``%virt list`` and :class:`~ipyvirt.widgets.DomainTable` show it."""

    uuid: str
    name: str
    #: -1 when not running
    id: int
    state: str
    reason: str
    vcpus: int
    memory_mib: int
    autostart: bool
    persistent: bool
    #: the fleet host it is on; "" in a one-host table
    host: str = ""

    @property
    def key(self) -> str:
        """What tells it from every other row of a table: its UUID, after its host in a
        fleet (libvirt's test driver gives "test" the same UUID on every daemon)."""
        return f"{self.host}/{self.uuid}" if self.host else self.uuid

    def cells(self) -> tuple[object, ...]:
        """The row as ``%virt list`` shows it."""
        return (
            self.name,
            self.id if self.id >= 0 else "-",
            self.state,
            self.reason,
            self.vcpus,
            self.memory_mib,
            "yes" if self.autostart else "no",
            "yes" if self.persistent else "no",
        )


def query_domain(dom: libvirt.virDomain) -> DomainRow:
    """One domain's row, fresh from libvirt (raises libvirtError if it is gone)."""
    state, reason = dom.state()
    _, max_kib, mem_kib, vcpus, _ = dom.info()
    return DomainRow(
        uuid=dom.UUIDString(),
        name=dom.name(),
        id=dom.ID(),
        state=state_name(state),
        reason=shown_reason(state, reason),
        vcpus=vcpus,
        memory_mib=(mem_kib or max_kib) // 1024,
        autostart=bool(dom.autostart()),
        persistent=bool(dom.isPersistent()),
    )


def query_all_with_handles(
    conn: libvirt.virConnect,
) -> dict[str, tuple[DomainRow, libvirt.virDomain]]:
    """Every domain's row and libvirt handle by UUID; one that vanishes meanwhile is left out."""
    rows = {}
    for dom in conn.listAllDomains():
        try:
            row = query_domain(dom)
        except libvirt.libvirtError:
            continue
        rows[row.uuid] = (row, dom)
    return rows


def query_all(conn: libvirt.virConnect) -> dict[str, DomainRow]:
    """Every domain's row by UUID; a domain that vanishes meanwhile is left out."""
    return {uuid: row for uuid, (row, _) in query_all_with_handles(conn).items()}
