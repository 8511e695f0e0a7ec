"""A hypervisor explored from code: the host, networks, storage, node devices, secrets and
each domain in depth, as small frozen records.

Every function takes a ``libvirt.virConnect`` or an :class:`ipyvirt.Connection` (whose
``host()``, ``networks()`` ... call them). Each result shows as aligned text tables in a
terminal (HTML in a notebook) and gives plain dicts for a DataFrame: ``to_records()``.
A value the driver cannot give (libvirt's "not supported") is None, shown as "n/a".
"""

from __future__ import annotations

from ipyvirt.explore.devices import Device, devices
from ipyvirt.explore.devices_xml import Console, Disk, Graphics, Nic
from ipyvirt.explore.domain_details import Domain, DomainDetails, domain_details
from ipyvirt.explore.host import Host, NumaCell, host
from ipyvirt.explore.host import free_memory as host_free_memory
from ipyvirt.explore.listing import NA, Listing, Record
from ipyvirt.explore.networks import Lease, Network, network, networks
from ipyvirt.explore.secrets import Secret, secrets
from ipyvirt.explore.snapshots import Snapshot
from ipyvirt.explore.storage import Pool, Volume, create_volume, delete_volume, pool, pools

__all__ = [
    "NA",
    "Console",
    "Device",
    "Disk",
    "Domain",
    "DomainDetails",
    "Graphics",
    "Host",
    "Lease",
    "Listing",
    "Network",
    "Nic",
    "NumaCell",
    "Pool",
    "Record",
    "Secret",
    "Snapshot",
    "Volume",
    "create_volume",
    "delete_volume",
    "devices",
    "domain_details",
    "host",
    "host_free_memory",
    "network",
    "networks",
    "pool",
    "pools",
    "secrets",
]
