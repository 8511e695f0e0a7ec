"""The explorer's models read from code (ipyvirt.explore): test:///default in process, through
a bare libvirt.virConnect and through an ipyvirt.Connection.

test:///default is one hypervisor shared by every connection in the process: each test makes
its own objects under the ``explore-`` prefix and removes them after.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import libvirt
import pytest

import ipyvirt
from ipyvirt import explore

from inproc import Run, until

PREFIX = "explore-"


@pytest.fixture
def virconn() -> Iterator[libvirt.virConnect]:
    libvirt.registerErrorHandler(lambda *a: None, None)
    c = libvirt.open("test:///default")
    yield c
    c.close()


def domain_xml(name: str) -> str:
    return f"""<domain type='test'><name>{name}</name><memory unit='MiB'>64</memory>
      <vcpu>1</vcpu><os><type>hvm</type></os><devices>
        <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>
        <interface type='bridge'><mac address='52:54:00:aa:bb:01'/><source bridge='br9'/>
          <model type='virtio'/></interface>
        <graphics type='vnc' port='5901' autoport='no' listen='127.0.0.1'/>
        <serial type='pty'><target port='0'/></serial>
        <console type='pty'><target type='serial' port='0'/></console>
      </devices></domain>"""


@pytest.fixture
def guest(virconn: libvirt.virConnect) -> Iterator[libvirt.virDomain]:
    dom = virconn.defineXML(domain_xml(PREFIX + "guest"))
    yield dom
    if dom.isActive():
        dom.destroy()
    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)


def test_host_from_the_capabilities(virconn: libvirt.virConnect) -> None:
    host = explore.host(virconn)
    assert (host.uri, host.hostname, host.hypervisor) == ("test:///default", "vm", "TEST")
    assert host.readonly is None  # a bare virConnect cannot tell
    assert host.cpus == 16 and host.memory == 3 * 1024**3
    assert host.libvirt_version is not None and host.libvirt_version.count(".") == 2
    assert host.cpu_model is None  # the test driver's capabilities name no model
    assert [(c.id, c.cpus, c.memory) for c in host.numa_cells] == [
        (0, 8, 2 * 1024**3),
        (1, 8, 4 * 1024**3),
    ]
    text = repr(host)
    assert "cpu model    n/a" in text and "read-only    n/a" in text and "NUMA cells" in text
    [record] = host.to_records()
    assert record["hostname"] == "vm" and "numa_cells" not in record
    json.dumps(record)  # plain values only
    assert host.numa_cells.to_records()[1] == {
        "id": 1,
        "cpus": 8,
        "memory": 4 * 1024**3,
        "free_memory": host.numa_cells[1].free_memory,
    }


def test_networks_without_dhcp_leases_say_na(virconn: libvirt.virConnect) -> None:
    nets = explore.networks(virconn)
    default = nets["default"]
    assert (default.active, default.persistent, default.bridge) == (True, True, "virbr0")
    assert default.forward_mode == "nat"
    assert default.addresses == ("192.168.122.1/24",)
    assert default.leases is None  # virNetworkGetDHCPLeases: not supported by the test driver
    line = next(x for x in repr(nets).splitlines() if x.startswith("default "))
    assert line.split() == [
        "default",
        "yes",
        "no",
        "yes",
        "virbr0",
        "nat",
        "192.168.122.1/24",
        "n/a",
    ]
    record = next(r for r in nets.to_records() if r["name"] == "default")
    assert record["addresses"] == ["192.168.122.1/24"] and record["leases"] is None
    assert explore.network(virconn, "default") == default


def test_an_isolated_network(virconn: libvirt.virConnect) -> None:
    net = virconn.networkDefineXML(
        f"<network><name>{PREFIX}iso</name><ip address='10.9.0.1' prefix='16'/></network>"
    )
    try:
        iso = explore.network(virconn, PREFIX + "iso")
        assert (iso.active, iso.forward_mode, iso.addresses) == (
            False,
            "isolated",
            ("10.9.0.1/16",),
        )
    finally:
        net.undefine()


def test_pools_and_their_volumes(virconn: libvirt.virConnect) -> None:
    pool = virconn.storagePoolLookupByName("default-pool")
    vol = pool.createXML(
        f"<volume><name>{PREFIX}vol.img</name><capacity unit='MiB'>5</capacity>"
        "<allocation unit='MiB'>1</allocation></volume>"
    )
    try:
        found = explore.pools(virconn)["default-pool"]
        assert (found.state, found.type, found.path) == ("running", "dir", "/default-pool")
        assert found.capacity == found.allocation + found.available
        assert found.volumes is not None
        v = found.volumes[PREFIX + "vol.img"]
        assert (v.pool, v.capacity, v.type) == ("default-pool", 5 * 1024**2, "file")
        assert v.path == f"/default-pool/{PREFIX}vol.img"
        assert "5.0 MiB" in repr(found.volumes)
        record = next(r for r in explore.pools(virconn).to_records() if r["name"] == "default-pool")
        assert record["volumes"] == len(found.volumes)
    finally:
        vol.delete()


def test_a_pools_first_volumes_only(virconn: libvirt.virConnect) -> None:
    pool = virconn.storagePoolLookupByName("default-pool")
    made = [
        pool.createXML(f"<volume><name>{PREFIX}{i}.img</name><capacity>1024</capacity></volume>")
        for i in range(3)
    ]
    try:
        found = explore.storage.read_pool(pool, first=2)
        assert found.volumes is not None
        assert [v.name for v in found.volumes] == [f"{PREFIX}0.img", f"{PREFIX}1.img"]
        assert found.volume_count == 3  # all of them, read or not
        assert found.to_record()["volumes"] == 3
        assert explore.storage.read_pool(pool).volume_count == 3
        # none read, all counted (what a closed pool in the explorer costs: one call)
        closed = explore.storage.read_pool(pool, first=0)
        assert closed.volumes is not None and len(closed.volumes) == 0
        assert closed.volume_count == 3
        # a dir pool's volume path is its key (no call): the same as libvirt's path
        assert [v.path for v in found.volumes] == [vol.path() for vol in made[:2]]
    finally:
        for vol in made:
            vol.delete()


def test_an_inactive_pools_volumes_are_na(virconn: libvirt.virConnect) -> None:
    p = virconn.storagePoolDefineXML(
        f"<pool type='dir'><name>{PREFIX}pool</name><target><path>/{PREFIX}pool</path>"
        "</target></pool>"
    )
    try:
        found = explore.pool(virconn, PREFIX + "pool")
        assert (found.state, found.volumes, found.volume_count) == ("inactive", None, None)
        line = next(x for x in repr(explore.pools(virconn)).splitlines() if x.startswith(PREFIX))
        assert "n/a" in line
    finally:
        p.undefine()


def test_devices_as_a_tree(virconn: libvirt.virConnect) -> None:
    devs = explore.devices(virconn)
    assert [(d.name, d.parent, d.depth) for d in devs][:3] == [
        ("computer", None, 0),
        ("scsi_host1", "computer", 1),
        ("scsi_host11", "scsi_host1", 2),
    ]
    assert devs["scsi_host2"].capability == "scsi_host"
    assert devs["scsi_host2"].capabilities == ("scsi_host",)
    assert devs["computer"].driver is None
    lines = repr(devs).splitlines()
    assert lines[4].startswith("  scsi_host1 ") and lines[5].startswith("    scsi_host11 ")
    assert devs.to_records()[0] == {
        "name": "computer",
        "parent": None,
        "capability": "system",
        "capabilities": ["system"],
        "driver": None,
        "depth": 0,
    }


def test_a_driver_without_secrets(virconn: libvirt.virConnect) -> None:
    found = explore.secrets(virconn)
    assert (found.supported, len(found), found.to_records()) == (False, 0, [])
    assert repr(found).splitlines()[-1] == "n/a: the driver has no such call"


def test_a_domain_in_depth(virconn: libvirt.virConnect, guest: libvirt.virDomain) -> None:
    guest.create()
    guest.snapshotCreateXML("<domainsnapshot><name>base</name></domainsnapshot>")
    guest.snapshotCreateXML("<domainsnapshot><name>one</name></domainsnapshot>")
    base = guest.snapshotLookupByName("base")
    guest.revertToSnapshot(base)
    guest.snapshotCreateXML("<domainsnapshot><name>two</name></domainsnapshot>")
    details = explore.domain_details(guest)
    assert (details.name, details.state, details.vcpus, details.memory) == (
        PREFIX + "guest",
        "running",
        1,
        64 * 1024**2,
    )
    assert details.uptime is None  # libvirt cannot say; no started event given
    [cdrom] = details.disks
    assert (cdrom.target, cdrom.device, cdrom.source, cdrom.capacity) == (
        "hdc",
        "cdrom",
        None,
        None,
    )
    [nic] = details.nics
    assert (nic.mac, nic.type, nic.source, nic.model) == (
        "52:54:00:aa:bb:01",
        "bridge",
        "br9",
        "virtio",
    )
    [vnc] = details.graphics
    assert (vnc.type, vnc.listen, vnc.port, vnc.autoport) == ("vnc", "127.0.0.1", 5901, False)
    assert [(c.device, c.target, c.port) for c in details.consoles] == [
        ("console", "serial", 0),
        ("serial", None, 0),
    ]
    assert details.snapshots is not None
    assert [(s.name, s.parent, s.depth, s.current) for s in details.snapshots] == [
        ("base", None, 0, False),
        ("one", "base", 1, False),
        ("two", "base", 1, True),
    ]
    created = details.snapshots["base"].created
    assert created is not None and abs(created - time.time()) < 3600
    text = repr(details)
    for title in ("disks", "network interfaces", "graphics", "consoles", "snapshots"):
        assert f"\n\n{title}\n" in text
    assert "\n  two " in text  # a child is indented under its parent
    [overview] = details.to_records()
    assert overview["state"] == "running" and "disks" not in overview
    json.dumps([overview, details.snapshots.to_records(), details.nics.to_records()])


def test_the_test_domain_has_sizes_and_addresses(virconn: libvirt.virConnect) -> None:
    details = explore.domain_details(virconn.lookupByName("test"))
    [vda] = details.disks
    assert vda.source == "/guest/diskimage1" and vda.capacity and vda.allocation
    [nic] = details.nics
    # the test driver answers interfaceAddresses as a lease would
    assert nic.addresses == ("192.168.122.3/24",)


def test_through_a_connection(run: Run) -> None:
    conn = ipyvirt.Connection(uri="test:///default", readonly=False)
    dom = conn.conn.defineXML(domain_xml(PREFIX + "conn"))
    try:
        assert conn.host().readonly is False
        assert "default" in [n.name for n in conn.networks()]
        assert conn.network("default").bridge == "virbr0"
        assert conn.pool("default-pool").state == "running"
        assert "default-pool" in [p.name for p in conn.pools()]
        assert conn.devices()["computer"].depth == 0
        assert not conn.secrets().supported
        handle = conn.domain(PREFIX + "conn")
        assert isinstance(handle, libvirt.virDomain) and isinstance(handle, ipyvirt.Domain)
        assert handle.details().uptime is None  # shut off
        handle.create()  # every libvirt call works on it

        async def started() -> None:
            await until(
                lambda: any(
                    e.subject == PREFIX + "conn" and e.name == "started" for e in conn.history
                ),
                "the started event",
            )

        run(started())
        uptime = conn.domain(PREFIX + "conn").details().uptime
        assert uptime is not None and uptime >= 0
        handle.destroy()
    finally:
        if dom.isActive():
            dom.destroy()
        dom.undefine()
        conn.close()


@pytest.mark.parametrize(
    ("read", "error", "message"),
    [
        (
            lambda c: c.domain("nope"),
            ipyvirt.NoSuchDomain,
            "no domain named 'nope' on test:///default (there are: ",
        ),
        (
            lambda c: c.network("nope"),
            ipyvirt.NoSuchNetwork,
            "no network named 'nope' on test:///default (there are: default",
        ),
        (
            lambda c: c.pool("nope"),
            ipyvirt.NoSuchPool,
            "no storage pool named 'nope' on test:///default (there are: default-pool",
        ),
    ],
)
def test_an_unknown_name_is_one_line_naming_those_there_are(
    run: Run, read: object, error: type[Exception], message: str
) -> None:
    conn = ipyvirt.Connection(uri="test:///default")
    try:
        with pytest.raises(error) as caught:
            read(conn)  # type: ignore[operator]
    finally:
        conn.close()
    assert isinstance(caught.value, ipyvirt.IpyvirtError)
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text


def test_many_names_are_cut_with_a_count(virconn: libvirt.virConnect) -> None:
    nets = [
        virconn.networkDefineXML(f"<network><name>{PREFIX}n{i:02d}</name></network>")
        for i in range(12)
    ]
    try:
        with pytest.raises(ipyvirt.NoSuchNetwork) as caught:
            explore.network(virconn, "nope")
    finally:
        for net in nets:
            net.undefine()
    assert str(caught.value).endswith(", ... (13 in all))")


def test_something_else_than_a_connection() -> None:
    with pytest.raises(TypeError, match=r"give a libvirt\.virConnect or an ipyvirt\.Connection"):
        explore.networks("test:///default")


def test_notebooks_get_html_and_lookups_by_name_say_what_there_is(
    virconn: libvirt.virConnect,
) -> None:
    assert "<td>uri</td><td>test:///default</td>" in explore.host(virconn)._repr_html_()
    html = explore.domain_details(virconn.lookupByName("test"))._repr_html_()
    assert html.count("<table>") == 6 and "<caption>snapshots</caption>" in html
    assert '6">n/a: the driver has no such call</td>' in explore.secrets(virconn)._repr_html_()
    with pytest.raises(KeyError, match="no 'nope' in storage pools"):
        explore.pools(virconn)["nope"]


def test_free_memory_is_what_a_view_re_reads(virconn: libvirt.virConnect) -> None:
    host = explore.host(virconn)
    free, cells = explore.host_free_memory(virconn, len(host.numa_cells))
    assert free == host.free_memory
    assert cells == [c.free_memory for c in host.numa_cells]


def test_create_and_delete_a_volume(virconn: libvirt.virConnect) -> None:
    pool = virconn.storagePoolLookupByName("default-pool")
    explore.create_volume(pool, f" {PREFIX}made.img ", 3 * 1024**2)
    made = explore.pool(virconn, "default-pool").volumes
    assert made is not None and made[PREFIX + "made.img"].capacity == 3 * 1024**2
    explore.delete_volume(pool, PREFIX + "made.img")
    left = explore.pool(virconn, "default-pool").volumes
    assert left is not None and PREFIX + "made.img" not in [v.name for v in left]


@pytest.mark.parametrize(
    ("name", "capacity", "message"),
    [
        ("", 1, "a volume name without '/', not ''"),
        ("a/b", 1, "a volume name without '/', not 'a/b'"),
        ("v", 0, "a size in bytes above 0, not 0"),
        ("v", True, "a size in bytes above 0, not True"),
    ],
)
def test_a_bad_volume_is_one_line_saying_what_to_give(
    virconn: libvirt.virConnect, name: str, capacity: int, message: str
) -> None:
    pool = virconn.storagePoolLookupByName("default-pool")
    with pytest.raises(ValueError) as err:
        explore.create_volume(pool, name, capacity)
    assert str(err.value) == message
