"""One domain in depth, as the domain view draws it: plain data read off the loop, and the
pure rules of its actions (what define checks first, a snapshot's XML, libvirt's reason in
one line). No widget here: :class:`ipyvirt.widgets.DomainView` draws it.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Final
from xml.sax.saxutils import escape

import libvirt

from ipyvirt.explore.domain_details import Domain, DomainDetails
from ipyvirt.explore.listing import NA, cell, optional, size
from ipyvirt.models.usage import Sample, read_domain_usage

__all__ = [
    "DomainReading",
    "PollReading",
    "check_name",
    "completed_text",
    "devices",
    "job_progress",
    "one_line",
    "overview",
    "poll_domain",
    "read_domain",
    "snapshot_rows",
    "snapshot_xml",
]

#: the job types of virDomainGetJobStats' "type", by value
_JOB_TYPES: Final = {0: "none", 1: "bounded", 2: "unbounded", 3: "completed", 4: "failed"}
_JOB_OPS: Final = {
    0: "",
    1: "start",
    2: "save",
    3: "restore",
    4: "incoming migration",
    5: "outgoing migration",
    6: "snapshot",
    7: "snapshot revert",
    8: "dump",
    9: "backup",
}


@dataclass(frozen=True)
class DomainReading:
    """What one read of the domain found; ``details`` None: there is no such domain (any
    more)."""

    details: DomainDetails | None
    #: the XML as it is now (live, for a running domain)
    xml: str
    #: the persistent definition, what define replaces ("" for a transient domain)
    definition: str


@dataclass(frozen=True)
class PollReading:
    """One poll of a running domain: its counters, and its job (None: the driver has no
    ``virDomainGetJobStats``)."""

    sample: Sample | None
    job: dict[str, Any] | None


def read_domain(reader: libvirt.virConnect, name: str, history: Any = None) -> DomainReading:
    """*name* in depth, fresh from *reader* (blocks: call it off the loop)."""
    try:
        dom = Domain(reader.lookupByName(name), history)
        details = dom.details()
        live = dom.XMLDesc()
        definition = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) if details.persistent else ""
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise
        return DomainReading(None, "", "")
    return DomainReading(details, live, definition)


def poll_domain(reader: libvirt.virConnect, name: str) -> PollReading:
    """The counters and the job of *name* while it runs (blocks: off the loop)."""
    try:
        dom = reader.lookupByName(name)
        if not dom.isActive():
            return PollReading(None, {})
        return PollReading(read_domain_usage(dom), optional(dom.jobStats))
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise
        return PollReading(None, {})


def overview(d: DomainDetails) -> dict[str, Any]:
    """The overview's fields as the view shows them (text), and the uptime in seconds."""
    return {
        "state": d.state,
        # libvirt's "unknown" tells a reader nothing (the domain table shows none either)
        "reason": "" if d.reason == "unknown" else d.reason,
        "id": d.id if d.id >= 0 else "-",
        "uptime": d.uptime,
        "vcpus": str(d.vcpus) if d.max_vcpus is None else f"{d.vcpus} of {d.max_vcpus}",
        "memory": f"{size(d.memory)} of {size(d.max_memory)}",
        "autostart": "yes" if d.autostart else "no",
        "persistent": "yes" if d.persistent else "no (transient)",
        "uuid": d.uuid,
    }


def _nic_cells(nic: Any) -> list[str]:
    cells = [str(cell(v)) for v in nic.cells()]
    if nic.addresses is None or not nic.addresses:
        cells[-1] = "no address known"  # neither a lease nor an agent told one
    return cells


def devices(d: DomainDetails) -> dict[str, Any]:
    """Disks, NICs, graphics and consoles: each ``{"columns", "rows"}``, cells as text."""

    def part(listing: Any, rows: list[list[str]] | None = None) -> dict[str, Any]:
        return {
            "columns": list(listing.columns),
            "rows": rows if rows is not None else [[str(c) for c in r.cells()] for r in listing],
        }

    return {
        "disks": part(d.disks),
        "nics": part(d.nics, [_nic_cells(n) for n in d.nics]),
        "graphics": part(d.graphics),
        "consoles": part(d.consoles),
    }


def snapshot_rows(d: DomainDetails) -> list[dict[str, Any]] | None:
    """The snapshot tree, depth first, as the view draws it; None where the driver has
    no snapshots."""
    if d.snapshots is None:
        return None
    rows = []
    for s in d.snapshots:
        created = None
        if s.created is not None:
            created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.created))
        rows.append(
            {
                "name": s.name,
                "depth": s.depth,
                "parent": s.parent,
                "created": created or NA,
                "state": s.state or NA,
                "current": s.current,
                "description": s.description or "",
            }
        )
    return rows


def job_progress(stats: dict[str, Any] | None) -> dict[str, Any]:
    """A job as the view shows it: ``{"text", "percent", "processed", "remaining",
    "total"}`` (percent None: unbounded or unknown; the byte counts libvirt's ``data_*``,
    None where it gives none); ``{"text": ...}`` alone for no job or no way to know."""
    if stats is None:
        return {"text": f"{NA}: this driver has no virDomainGetJobStats"}
    kind = _JOB_TYPES.get(int(stats.get("type", 0)), "unknown")
    if kind in ("none", "completed", "failed"):
        return {"text": "no job running"}
    op = _JOB_OPS.get(int(stats.get("operation", 0)), "")
    total, done = stats.get("data_total"), stats.get("data_processed")
    percent = None
    if kind == "bounded" and total:
        percent = round(100.0 * (done or 0) / total, 1)
    parts = [f"{op or 'a'} job running"]
    if total:
        parts.append(f"{size(done or 0)} of {size(total)}")
    if stats.get("time_elapsed") is not None:
        parts.append(f"{stats['time_elapsed'] / 1000:.1f} s elapsed")
    if stats.get("time_remaining"):
        parts.append(f"about {stats['time_remaining'] / 1000:.0f} s left")
    return {
        "text": ", ".join(parts),
        "percent": percent,
        "processed": done,
        "remaining": stats.get("data_remaining"),
        "total": total,
    }


def completed_text(params: dict[str, Any], at: float) -> str:
    """The job-completed event's one line: when, how long, how much."""
    clock = time.strftime("%H:%M:%S", time.localtime(at))
    op = _JOB_OPS.get(int(params.get("operation", 0)), "")
    parts = [f"{op + ' ' if op else ''}job completed at {clock}"]
    if params.get("time_elapsed") is not None:
        parts.append(f"after {params['time_elapsed'] / 1000:.1f} s")
    if params.get("data_total"):
        parts.append(f"{size(params['data_total'])} moved")
    return ", ".join(parts)


def one_line(message: str | None) -> str:
    """libvirt's reason in one line. A schema error is several: what failed, the schema's
    path (left out: it says nothing to fix), and what the schema found wrong."""
    text = re.sub(r"\s*Unable to validate doc against \S+", "", message or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "libvirt gave no reason"
    head, rest = lines[0], lines[1:]
    if not rest:
        return head
    return f"{head}{'' if head.endswith(':') else ':'} {'; '.join(rest)}"


def check_name(xml: str, name: str) -> str:
    """Why *xml* may not be defined from the view of domain *name*, in one line ("" if it
    may): defining it under another name would make a new domain. XML that does not parse is
    left to libvirt, which says where."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return ""
    named = (root.findtext("name") or "").strip()
    if root.tag == "domain" and named and named != name:
        return (
            f"the XML names domain {named!r}, this view is of {name!r}: keep "
            f"<name>{name}</name> (rename with dom.rename(), or define a new domain from code)"
        )
    return ""


def snapshot_xml(name: str, description: str) -> str:
    """The ``<domainsnapshot>`` to create; an empty *name* lets libvirt pick one (the time)."""
    parts = ["<domainsnapshot>"]
    if name.strip():
        parts.append(f"<name>{escape(name.strip())}</name>")
    if description.strip():
        parts.append(f"<description>{escape(description.strip())}</description>")
    parts.append("</domainsnapshot>")
    return "".join(parts)
