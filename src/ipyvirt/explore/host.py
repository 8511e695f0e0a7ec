"""The host a connection reaches: versions, CPUs, memory, NUMA cells."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ipyvirt.explore.listing import (
    Listing,
    Record,
    fields_table,
    libvirt_connection,
    optional,
    size,
    xml,
)
from ipyvirt.tables import Tables

__all__ = ["Host", "NumaCell", "free_memory", "host", "version_string"]

_KIB = 1024


def version_string(number: int | None) -> str | None:
    """libvirt's version number (major * 1,000,000 + minor * 1,000 + release) as "10.0.0"."""
    if number is None:
        return None
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


@dataclass(frozen=True)
class NumaCell(Record):
    """One NUMA cell of the host, from its capabilities."""

    COLUMNS = ("cell", "cpus", "memory", "free")

    id: int
    cpus: int
    #: bytes; None where the capabilities do not say
    memory: int | None
    #: bytes; None where the driver cannot say
    free_memory: int | None

    def cells(self) -> tuple[object, ...]:
        return (self.id, self.cpus, size(self.memory), size(self.free_memory))


@dataclass(frozen=True)
class Host(Record):
    """The host as :meth:`ipyvirt.Connection.host` reads it. Sizes are in bytes; a field is
    None where the driver lacks the call (shown as "n/a")."""

    uri: str
    #: None: not known (a bare ``libvirt.virConnect`` cannot tell)
    readonly: bool | None
    hostname: str | None
    #: the driver: "QEMU", "TEST", ...
    hypervisor: str
    hypervisor_version: str | None
    libvirt_version: str | None
    arch: str
    cpu_model: str | None
    cpus: int
    mhz: int
    memory: int
    free_memory: int | None
    numa_cells: Listing[NumaCell]

    def table(self) -> Tables:
        """The host as a table of its fields, then its NUMA cells."""
        fields = fields_table(
            f"host {self.hostname or self.uri}",
            {
                "uri": self.uri,
                "read-only": self.readonly,
                "hostname": self.hostname,
                "hypervisor": f"{self.hypervisor} {self.hypervisor_version or 'n/a'}",
                "libvirt": self.libvirt_version,
                "arch": self.arch,
                "cpu model": self.cpu_model,
                "cpus": f"{self.cpus} @ {self.mhz} MHz",
                "memory": size(self.memory),
                "free memory": size(self.free_memory),
            },
        )
        return Tables((fields, self.numa_cells.table()))

    def to_records(self) -> list[dict[str, Any]]:
        """The host as one plain dict, in a list (its NUMA cells: ``numa_cells.to_records()``)."""
        return [self.to_record()]

    def __repr__(self) -> str:
        return repr(self.table())

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()


def host(conn: object, *, readonly: bool | None = None) -> Host:
    """The host *conn* (a ``libvirt.virConnect`` or an :class:`ipyvirt.Connection`) reaches."""
    if readonly is None:
        readonly = getattr(conn, "readonly", None)
    c = libvirt_connection(conn)
    arch, memory_mib, cpus, mhz, *_ = c.getInfo()
    caps = xml(c.getCapabilities())
    model = caps.findtext("host/cpu/model")
    cells = caps.findall("host/topology/cells/cell")
    free = optional(lambda: c.getCellsFreeMemory(0, len(cells))) if cells else None
    numa = tuple(_numa_cell(e, n, free) for n, e in enumerate(cells))
    return Host(
        uri=c.getURI(),
        readonly=readonly,
        hostname=optional(c.getHostname),
        hypervisor=c.getType(),
        hypervisor_version=version_string(optional(c.getVersion)),
        libvirt_version=version_string(optional(c.getLibVersion)),
        arch=arch,
        cpu_model=model,
        cpus=cpus,
        mhz=mhz,
        memory=memory_mib * _KIB * _KIB,
        free_memory=optional(c.getFreeMemory),
        numa_cells=Listing(NumaCell.COLUMNS, numa, "NUMA cells"),
    )


def _numa_cell(cell: Any, n: int, free: list[int] | None) -> NumaCell:
    memory = cell.find("memory")
    kib = int(memory.text) if memory is not None and memory.text else None
    cpus = cell.find("cpus")
    return NumaCell(
        id=int(cell.get("id", n)),
        cpus=int(cpus.get("num", 0)) if cpus is not None else 0,
        memory=kib * _KIB if kib is not None else None,
        free_memory=free[n] if free is not None and n < len(free) else None,
    )


def free_memory(conn: object, cells: int) -> tuple[int | None, list[int] | None]:
    """The host's free memory and each of its first *cells* NUMA cells', in bytes (None
    where the driver cannot say): what changes on a host, and libvirt sends no event for it,
    so a view re-reads it now and then."""
    c = libvirt_connection(conn)
    per_cell = optional(lambda: list(c.getCellsFreeMemory(0, cells))) if cells else None
    return optional(c.getFreeMemory), per_cell
