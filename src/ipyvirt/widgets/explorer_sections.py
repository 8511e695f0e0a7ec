"""The explorer's parts: the host, networks, storage, node devices and secrets, each a
:class:`~ipyvirt.widgets.section.Section` (one comm) drawn by ``static/explorer.js``.

What each shows comes from :mod:`ipyvirt.explore` (the same records as ``conn.networks()``
...), as plain dicts: the view gets the data once per change, never a libvirt object.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import libvirt

from ipyvirt import explore
from ipyvirt.explore import create_volume, delete_volume
from ipyvirt.explore import host_free_memory as free_memory
from ipyvirt.explore.listing import optional
from ipyvirt.explore.networks import read_network
from ipyvirt.explore.storage import read_pool
from ipyvirt.widgets.section import Section

__all__ = ["DevicesSection", "HostSection", "NetworksSection", "SecretsSection", "StorageSection"]

_Action = tuple[str, Callable[[libvirt.virConnect], object], bool] | None


_Object = TypeVar("_Object", libvirt.virNetwork, libvirt.virStoragePool)


def _merged(
    listed: Sequence[_Object],
    last: list[dict[str, Any]],
    changed: set[str],
    read: Callable[[_Object], dict[str, Any]],
    gone: int,
) -> list[dict[str, Any]]:
    """The rows of the objects *listed* now, by name: those *changed* names and new ones
    read by *read*, the others as they were in *last*. An object whose read fails with
    libvirt's error code *gone* was undefined meanwhile and is left out."""
    before = {row["name"]: row for row in last}
    rows = []
    for obj in sorted(listed, key=lambda o: o.name()):
        name = obj.name()  # no call to libvirt: the listing brought the names
        if name in before and name not in changed:
            rows.append(before[name])
            continue
        try:
            rows.append(read(obj))
        except libvirt.libvirtError as err:
            if err.get_error_code() != gone:
                raise
    return rows


def _name(fields: dict[str, Any], key: str = "name") -> str:
    value = fields.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"give the {key} as text")
    return value


class HostSection(Section):
    """The host: versions, CPUs, memory, CPU model, NUMA cells, URI, read-only. Free memory
    has no libvirt event: it is re-read every *every* seconds (default 5) while shown."""

    KIND = "host"
    WHAT = "host"

    def __init__(self, conn: Any, *, every: float = 5.0, **kwargs: Any) -> None:
        super().__init__(conn, every=every, **kwargs)

    def _how_live(self) -> str:
        return f"free memory re-read every {self._every:g} s: libvirt sends no event for it"

    def _snapshot(self, reader: libvirt.virConnect) -> dict[str, Any]:
        if self.data.get("host"):  # the rest of a host does not change while it runs
            free, cells = free_memory(reader, len(self.data["numa"]))
            numa = [
                {**cell, "free_memory": cells[i] if cells and i < len(cells) else None}
                for i, cell in enumerate(self.data["numa"])
            ]
            return {**self.data, "host": {**self.data["host"], "free_memory": free}, "numa": numa}
        found = explore.host(reader, readonly=self.conn.readonly)
        record = found.to_record()
        record["uri"] = self.conn.uri  # the one the user opened, not the watch's
        return {"host": record, "numa": found.numa_cells.to_records()}


class NetworksSection(Section):
    """Every virtual network and its DHCP leases; start, stop and autostart on read-write
    connections."""

    KIND = "networks"
    FAMILY = "network"
    WHAT = "networks"

    def _snapshot(self, reader: libvirt.virConnect) -> dict[str, Any]:
        found = explore.networks(reader)
        return {"supported": found.supported, "networks": [self._row(n) for n in found]}

    def _update(
        self, reader: libvirt.virConnect, last: dict[str, Any], changed: set[str]
    ) -> dict[str, Any]:
        # one listing and the changed networks' reads: 100 networks are ~500 calls otherwise
        listed = optional(reader.listAllNetworks)
        if listed is None:
            return self._snapshot(reader)
        read = lambda net: self._row(read_network(net))  # noqa: E731
        rows = _merged(listed, last["networks"], changed, read, libvirt.VIR_ERR_NO_NETWORK)
        return {"supported": True, "networks": rows}

    @staticmethod
    def _row(net: explore.Network) -> dict[str, Any]:
        row = net.to_record()
        row["leases"] = None if net.leases is None else net.leases.to_records()
        return row

    def _action(self, what: str, fields: dict[str, Any]) -> _Action:
        name = _name(fields)
        if what == "start":
            return f"start network {name}", lambda c: c.networkLookupByName(name).create(), True
        if what == "stop":
            return f"stop network {name}", lambda c: c.networkLookupByName(name).destroy(), True
        if what == "autostart":
            on = bool(fields.get("on"))
            return (
                f"{'set' if on else 'unset'} autostart of network {name}",
                lambda c: c.networkLookupByName(name).setAutostart(int(on)),
                True,
            )
        return None


class StorageSection(Section):
    """Every storage pool with its sizes and volume count, and the volumes of the pools
    open in the view (up to ``OPEN_POOLS`` pools, each is open until closed; above, each
    is closed until opened: ``{"do": "open" | "close" | "expand" | "collapse", "pool"}``);
    on read-write connections start, stop and refresh a pool, create and delete a volume.
    libvirt sends pool events (lifecycle and refresh) but none for volumes: a volume made
    elsewhere shows after a pool's refresh."""

    KIND = "storage"
    FAMILY = "pool"
    WHAT = "storage pools"

    def _how_live(self) -> str:
        live = super()._how_live()
        return (
            f"{live}; libvirt sends no volume events: refresh a pool to see volumes made elsewhere"
        )

    #: a pool's first volumes the view gets until it asks for all ("show all N volumes"):
    #: 50 pools of 100 volumes are 530 KiB of JSON and 5,000 rows otherwise (116 KiB at 20)
    VOLUMES_SHOWN = 20
    #: up to this many pools, each shows its first volumes until closed; above, each shows
    #: its sizes and volume count only until the user opens it: the volumes of 50 pools
    #: (1,000 reads for 20 each) are not read, nor sent, until someone looks at them
    OPEN_POOLS = 4

    def __init__(self, conn: Any, **kwargs: Any) -> None:
        super().__init__(conn, **kwargs)
        # what the user chose per pool: "closed", "first" (VOLUMES_SHOWN) or "all"; a pool
        # not in it has the default (see OPEN_POOLS). Replaced whole on the main loop, read
        # on the worker (one reference read: no lock)
        self._shown: dict[str, str] = {}

    def _snapshot(self, reader: libvirt.virConnect) -> dict[str, Any]:
        listed = optional(reader.listAllStoragePools)
        if listed is None:
            return {"supported": False, "pools": []}
        return self._update(reader, {"pools": []}, set(), listed)

    def _update(
        self,
        reader: libvirt.virConnect,
        last: dict[str, Any],
        changed: set[str],
        listed: Sequence[libvirt.virStoragePool] | None = None,
    ) -> dict[str, Any]:
        # one listing and the changed pools' reads, each open pool's shown volumes only
        listed = optional(reader.listAllStoragePools) if listed is None else listed
        if listed is None:
            return {"supported": False, "pools": []}
        chosen, default = self._shown, "first" if len(listed) <= self.OPEN_POOLS else "closed"
        shown = {p["name"]: p.get("shown") for p in last["pools"]}
        # a pool opened, closed or expanded since is read again, as if changed; so are all
        # when the default changed (a pool more or fewer across OPEN_POOLS)
        again = changed | {n for n, was in shown.items() if was != chosen.get(n, default)}

        def read(p: libvirt.virStoragePool) -> dict[str, Any]:
            mode = chosen.get(p.name(), default)
            first = {"closed": 0, "first": self.VOLUMES_SHOWN, "all": None}[mode]
            return {**self._row(read_pool(p, first=first)), "shown": mode}

        rows = _merged(listed, last["pools"], again, read, libvirt.VIR_ERR_NO_STORAGE_POOL)
        return {"supported": True, "pools": rows}

    @staticmethod
    def _row(p: explore.Pool) -> dict[str, Any]:
        row = p.to_record()
        row["volumes"] = None
        row["volume_count"] = p.volume_count
        if p.volumes is not None:
            row["volumes"] = [v.to_record() for v in p.volumes]
        return row

    #: what the view may ask of a pool's volumes, and what the pool shows then
    _SHOW: ClassVar[dict[str, str]] = {
        "open": "first",
        "close": "closed",
        "expand": "all",
        "collapse": "first",
    }

    def _handle(self, do: str, content: dict[str, Any]) -> None:
        if do in self._SHOW:  # what the view shows, not a libvirt action
            self._shown = {**self._shown, str(content.get("pool", "")): self._SHOW[do]}
            self._coalescer.poke()  # that pool's read alone (see _update)
        else:
            super()._handle(do, content)

    def _action(self, what: str, fields: dict[str, Any]) -> _Action:
        pool = _name(fields, "pool")

        def on_pool(call: Callable[[libvirt.virStoragePool], object]) -> Callable[..., object]:
            return lambda c: call(c.storagePoolLookupByName(pool))

        if what == "pool_start":
            return f"start pool {pool}", on_pool(lambda p: p.create(0)), True
        if what == "pool_stop":
            return f"stop pool {pool}", on_pool(lambda p: p.destroy()), True
        if what == "pool_refresh":
            return f"refresh pool {pool}", on_pool(lambda p: p.refresh(0)), True
        if what == "create_volume":
            name = _name(fields)
            capacity = fields.get("capacity")
            if isinstance(capacity, float) and capacity.is_integer():
                capacity = int(capacity)  # JSON numbers may come as floats
            if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity <= 0:
                raise ValueError(f"give the size as a number above 0, not {capacity!r}")
            size = explore.listing.size(capacity)
            return (
                f"create volume {name} ({size}) in pool {pool}",
                on_pool(lambda p: create_volume(p, name, capacity)),
                True,
            )
        if what == "delete_volume":
            name = _name(fields)
            return (
                f"delete volume {name} in pool {pool}",
                on_pool(lambda p: delete_volume(p, name)),
                True,
            )
        return None


class DevicesSection(Section):
    """The node devices as a tree by parent, each with its capability and driver."""

    KIND = "devices"
    FAMILY = "nodedev"
    WHAT = "node devices"

    def _snapshot(self, reader: libvirt.virConnect) -> dict[str, Any]:
        found = explore.devices(reader)
        return {"supported": found.supported, "devices": found.to_records()}


class SecretsSection(Section):
    """The secrets: usage type and id, never a value (none is ever read)."""

    KIND = "secrets"
    FAMILY = "secret"
    WHAT = "secrets"

    def _snapshot(self, reader: libvirt.virConnect) -> dict[str, Any]:
        found = explore.secrets(reader)
        return {"supported": found.supported, "secrets": found.to_records()}
