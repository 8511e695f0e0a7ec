"""Virtual networks: their state, bridge, forward mode, addresses and DHCP leases."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import libvirt

from ipyvirt.errors import NoSuchNetwork, known_names
from ipyvirt.explore.listing import Listing, Record, cell, libvirt_connection, optional, xml

__all__ = ["Lease", "Network", "network", "networks"]


@dataclass(frozen=True)
class Lease(Record):
    """One DHCP lease a network's server handed out."""

    COLUMNS = ("network", "mac", "address", "hostname", "expires")

    network: str
    mac: str
    #: "192.168.122.5/24"
    address: str
    hostname: str | None
    #: seconds since the epoch
    expiry: int | None

    def cells(self) -> tuple[object, ...]:
        return (self.network, self.mac, self.address, cell(self.hostname), cell(self.expiry))


@dataclass(frozen=True)
class Network(Record):
    """One virtual network. ``forward_mode`` is libvirt's ``<forward mode>`` ("nat",
    "route", "bridge", ...), "isolated" when it has none."""

    COLUMNS = (
        "name",
        "active",
        "autostart",
        "persistent",
        "bridge",
        "forward",
        "addresses",
        "leases",
    )

    name: str
    uuid: str
    active: bool
    autostart: bool
    persistent: bool
    bridge: str | None
    forward_mode: str
    #: the host's addresses on it, "192.168.122.1/24"
    addresses: tuple[str, ...]
    #: None where the driver has no DHCP leases to tell
    leases: Listing[Lease] | None

    def cells(self) -> tuple[object, ...]:
        return (
            self.name,
            cell(self.active),
            cell(self.autostart),
            cell(self.persistent),
            cell(self.bridge),
            self.forward_mode,
            cell(self.addresses),
            cell(None if self.leases is None else len(self.leases)),
        )

    def to_record(self) -> dict[str, Any]:
        out = super().to_record()
        out["leases"] = None if self.leases is None else len(self.leases)
        return out


def networks(conn: object) -> Listing[Network]:
    """Every network of *conn* (a ``libvirt.virConnect`` or an :class:`ipyvirt.Connection`),
    sorted by name."""
    c = libvirt_connection(conn)
    found = optional(c.listAllNetworks)
    if found is None:
        return Listing(Network.COLUMNS, (), "networks", supported=False)
    rows = []
    for net in sorted(found, key=lambda n: n.name()):
        try:
            rows.append(read_network(net))
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_NETWORK:
                raise  # one undefined meanwhile is left out
    return Listing(Network.COLUMNS, tuple(rows), "networks")


def network(conn: object, name: str) -> Network:
    """The network called *name*; :class:`ipyvirt.NoSuchNetwork` names the ones there are."""
    c = libvirt_connection(conn)
    try:
        net = c.networkLookupByName(name)
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_NO_NETWORK:
            raise
        known = known_names(n.name() for n in optional(c.listAllNetworks) or [])
        raise NoSuchNetwork(f"no network named {name!r} on {c.getURI()} ({known})") from None
    return read_network(net)


def read_network(net: libvirt.virNetwork) -> Network:
    """One network, fresh from libvirt."""
    desc = xml(net.XMLDesc())
    forward = desc.find("forward")
    bridge = desc.find("bridge")
    name = net.name()
    leases = optional(net.DHCPLeases)
    return Network(
        name=name,
        uuid=net.UUIDString(),
        active=bool(net.isActive()),
        autostart=bool(net.autostart()),
        persistent=bool(net.isPersistent()),
        bridge=bridge.get("name") if bridge is not None else None,
        forward_mode="isolated" if forward is None else forward.get("mode", "nat"),
        addresses=tuple(_address(ip) for ip in desc.findall("ip") if ip.get("address")),
        leases=None
        if leases is None
        else Listing(Lease.COLUMNS, tuple(_lease(name, x) for x in leases), f"leases on {name}"),
    )


def _address(ip: Any) -> str:
    address = ip.get("address")
    prefix = ip.get("prefix")
    if prefix is None and ip.get("netmask"):
        prefix = ipaddress.ip_network(f"0.0.0.0/{ip.get('netmask')}").prefixlen
    return f"{address}/{prefix}" if prefix is not None else str(address)


def _lease(network: str, lease: dict[str, Any]) -> Lease:
    prefix = lease.get("prefix")
    return Lease(
        network=network,
        mac=str(lease.get("mac") or ""),
        address=f"{lease.get('ipaddr')}/{prefix}" if prefix else str(lease.get("ipaddr")),
        hostname=lease.get("hostname") or None,
        expiry=lease.get("expirytime"),
    )
