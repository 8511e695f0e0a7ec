"""Secrets: what each is for, never its value."""

from __future__ import annotations

from dataclasses import dataclass

import libvirt

from ipyvirt.explore.listing import Listing, Record, cell, libvirt_connection, optional, xml

__all__ = ["Secret", "secrets"]


@dataclass(frozen=True)
class Secret(Record):
    """One secret, from its XML description. Its value is never read."""

    COLUMNS = ("uuid", "usage", "usage id", "ephemeral", "private", "description")

    uuid: str
    #: "volume", "ceph", "iscsi", "tls", "vtpm"; None for a secret without a usage
    usage_type: str | None
    #: what uses it: a volume's path, a ceph or tls name, an iSCSI target
    usage_id: str | None
    ephemeral: bool
    private: bool
    description: str | None

    def cells(self) -> tuple[object, ...]:
        return (
            self.uuid,
            cell(self.usage_type),
            cell(self.usage_id),
            cell(self.ephemeral),
            cell(self.private),
            cell(self.description),
        )


def secrets(conn: object) -> Listing[Secret]:
    """Every secret of *conn* (a ``libvirt.virConnect`` or an :class:`ipyvirt.Connection`),
    by UUID. A driver without secrets (the test driver) gives a listing whose ``supported``
    is false."""
    c = libvirt_connection(conn)
    found = optional(c.listAllSecrets)
    if found is None:
        return Listing(Secret.COLUMNS, (), "secrets", supported=False)
    rows = []
    for s in sorted(found, key=lambda s: s.UUIDString()):
        try:
            desc = xml(s.XMLDesc())
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_SECRET:
                raise
            continue  # undefined meanwhile
        usage = desc.find("usage")
        usage_id = None
        if usage is not None and len(usage):
            usage_id = (usage[0].text or "").strip() or None
        rows.append(
            Secret(
                uuid=s.UUIDString(),
                usage_type=usage.get("type") if usage is not None else None,
                usage_id=usage_id,
                ephemeral=desc.get("ephemeral") == "yes",
                private=desc.get("private") == "yes",
                description=desc.findtext("description"),
            )
        )
    return Listing(Secret.COLUMNS, tuple(rows), "secrets")
