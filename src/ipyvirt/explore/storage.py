"""Storage pools and their volumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import libvirt

from ipyvirt.errors import NoSuchPool, known_names
from ipyvirt.explore.listing import Listing, Record, cell, libvirt_connection, optional, size, xml

__all__ = ["Pool", "Volume", "create_volume", "delete_volume", "pool", "pools"]

#: libvirt's virStoragePoolState, by value
POOL_STATES = ("inactive", "building", "running", "degraded", "inaccessible")
#: libvirt's virStorageVolType, by value
VOLUME_TYPES = ("file", "block", "dir", "network", "netdir", "ploop")


def _named(names: tuple[str, ...], value: int) -> str:
    return names[value] if 0 <= value < len(names) else f"unknown ({value})"


@dataclass(frozen=True)
class Volume(Record):
    """One volume of a pool; sizes in bytes."""

    COLUMNS = ("pool", "name", "type", "capacity", "allocation", "path")

    pool: str
    name: str
    type: str
    capacity: int
    allocation: int
    path: str | None

    def cells(self) -> tuple[object, ...]:
        return (
            self.pool,
            self.name,
            self.type,
            size(self.capacity),
            size(self.allocation),
            cell(self.path),
        )


@dataclass(frozen=True)
class Pool(Record):
    """One storage pool; sizes in bytes. ``volumes`` is None while the pool is inactive
    (libvirt lists an active pool's volumes only); read with ``read_pool(p, first=N)`` it
    holds the first N by name (none for ``first=0``), and ``volume_count`` says how many
    there are."""

    COLUMNS = (
        "name",
        "state",
        "type",
        "capacity",
        "allocation",
        "available",
        "autostart",
        "volumes",
        "path",
    )

    name: str
    uuid: str
    state: str
    #: "dir", "fs", "logical", "disk", "iscsi", ...
    type: str
    path: str | None
    capacity: int
    allocation: int
    available: int
    autostart: bool
    persistent: bool
    volumes: Listing[Volume] | None
    #: the pool's volumes, all of them (None while inactive; by default, ``len(volumes)``)
    volume_count: int | None = None

    def __post_init__(self) -> None:
        if self.volume_count is None and self.volumes is not None:
            object.__setattr__(self, "volume_count", len(self.volumes))

    def cells(self) -> tuple[object, ...]:
        return (
            self.name,
            self.state,
            self.type,
            size(self.capacity),
            size(self.allocation),
            size(self.available),
            cell(self.autostart),
            cell(self.volume_count),
            cell(self.path),
        )

    def to_record(self) -> dict[str, Any]:
        out = super().to_record()
        out["volumes"] = out.pop("volume_count")
        return out


def pools(conn: object) -> Listing[Pool]:
    """Every storage pool of *conn* (a ``libvirt.virConnect`` or an
    :class:`ipyvirt.Connection`), sorted by name, with their volumes."""
    c = libvirt_connection(conn)
    found = optional(c.listAllStoragePools)
    if found is None:
        return Listing(Pool.COLUMNS, (), "storage pools", supported=False)
    rows = []
    for p in sorted(found, key=lambda p: p.name()):
        try:
            rows.append(read_pool(p))
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
                raise  # one undefined meanwhile is left out
    return Listing(Pool.COLUMNS, tuple(rows), "storage pools")


def pool(conn: object, name: str) -> Pool:
    """The pool called *name*; :class:`ipyvirt.NoSuchPool` names the ones there are."""
    c = libvirt_connection(conn)
    try:
        found = c.storagePoolLookupByName(name)
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
            raise
        known = known_names(p.name() for p in optional(c.listAllStoragePools) or [])
        raise NoSuchPool(f"no storage pool named {name!r} on {c.getURI()} ({known})") from None
    return read_pool(found)


def read_pool(p: libvirt.virStoragePool, *, first: int | None = None) -> Pool:
    """One pool and its volumes, fresh from libvirt (without a refresh: call the pool's
    ``refresh()`` first to see files added behind libvirt's back). With *first*, only the
    first *first* volumes by name are read and the rest counted; ``first=0`` reads none
    and counts them (one call): a volume costs a call or two, 10,000 for 50 pools of 100
    volumes, where a view shows a few pools open."""
    desc = xml(p.XMLDesc())
    state, capacity, allocation, available = p.info()
    name = p.name()
    kind = desc.get("type", "")
    volumes, count = None, None
    if state != libvirt.VIR_STORAGE_POOL_INACTIVE:
        volumes, count = _volumes(p, name, kind, first)
    return Pool(
        name=name,
        uuid=p.UUIDString(),
        state=_named(POOL_STATES, state),
        type=kind,
        path=desc.findtext("target/path"),
        capacity=capacity,
        allocation=allocation,
        available=available,
        autostart=bool(p.autostart()),
        persistent=bool(p.isPersistent()),
        volumes=volumes,
        volume_count=count,
    )


#: pool types whose volume key is the volume's path (libvirt's storage_backend_fs sets
#: both from the target path): no ``virStorageVolGetPath`` call needed
_KEY_IS_PATH = frozenset({"dir", "fs", "netfs"})


def _volumes(
    p: libvirt.virStoragePool, name: str, kind: str, first: int | None
) -> tuple[Listing[Volume] | None, int | None]:
    """The first *first* volumes of running pool *p* (all for None) and how many it has."""
    title = f"volumes in {name}"
    if first == 0:
        count = optional(p.numOfVolumes)
        return (None, None) if count is None else (Listing(Volume.COLUMNS, (), title), count)
    vols = optional(p.listAllVolumes)
    if vols is None:
        return None, None
    ordered = sorted(vols, key=lambda v: v.name())  # names came with the listing: no calls
    read = (_volume(name, v, kind in _KEY_IS_PATH) for v in ordered[:first])
    volumes = Listing(Volume.COLUMNS, tuple(v for v in read if v is not None), title)
    # volumes deleted while read are not counted, unless not read at all
    return volumes, len(volumes) if first is None else len(vols)


def _volume(pool_name: str, vol: libvirt.virStorageVol, key_is_path: bool) -> Volume | None:
    try:
        kind, capacity, allocation = vol.info()
        # the key came with the listing (no call); other pools' paths need one
        path = vol.key() if key_is_path else optional(vol.path)
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return None  # deleted meanwhile
        raise
    return Volume(pool_name, vol.name(), _named(VOLUME_TYPES, kind), capacity, allocation, path)


def create_volume(p: libvirt.virStoragePool, name: str, capacity: int) -> libvirt.virStorageVol:
    """A new volume *name* of *capacity* bytes in pool *p* (raw where the pool has formats).
    A bad name or size is a ``ValueError`` saying what to give; libvirt's refusal (a pool
    that is not running, a name in use) its ``libvirtError``."""
    name = name.strip()
    if not name or "/" in name:
        raise ValueError(f"a volume name without '/', not {name!r}")
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity <= 0:
        raise ValueError(f"a size in bytes above 0, not {capacity!r}")
    desc = (
        f"<volume><name>{escape(name)}</name><capacity unit='bytes'>{capacity}</capacity>"
        "<target><format type='raw'/></target></volume>"
    )
    return p.createXML(desc, 0)


def delete_volume(p: libvirt.virStoragePool, name: str) -> None:
    """Delete the volume *name* of pool *p* (its data too)."""
    p.storageVolLookupByName(name).delete(0)
