"""The explorer in a real kernel: seven comms, nothing read before a part is shown, actions
on read-write connections only, and another connection's changes reaching a shown part by
libvirt's events (the tests' libvirtd), without a cell running."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import libvirt
import pytest

from kernel import Kernel
from libvirtd import Libvirtd

pytestmark = pytest.mark.kernel

PREFIX = "explorer-"

SETUP = """
%load_ext ipyvirt
import libvirt, ipyvirt
from ipyvirt.widgets import Explorer
"""


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = Kernel()
    k.execute(SETUP).ok()
    yield k
    k.shutdown()


def states(messages: list[dict[str, Any]], comm_id: str, trait: str) -> list[Any]:
    """The values of *trait* the kernel sent the widget *comm_id*'s views, in order."""
    return [
        m["content"]["data"]["state"][trait]
        for m in messages
        if m["msg_type"] == "comm_msg"
        and m["content"]["comm_id"] == comm_id
        and m["content"]["data"].get("method") == "update"
        and trait in m["content"]["data"].get("state", {})
    ]


def wait_for(kernel: Kernel, comm_id: str, trait: str, ok: Any, what: str) -> Any:
    """The first value of *trait* sent to *comm_id* that *ok* accepts, waiting for the
    kernel to send it with no cell running (60 s: a failure, not a speed test)."""
    deadline = time.monotonic() + 60
    while True:
        for value in states(kernel.between, comm_id, trait):
            if ok(value):
                return value
        assert time.monotonic() < deadline, f"{what}: {states(kernel.between, comm_id, trait)}"
        kernel.drain(0.2)


def network(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((n for n in data.get("networks", []) if n["name"] == name), None)


def pool(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in data.get("pools", []) if p["name"] == name), None)


def test_seven_comms_and_nothing_read_before_a_part_is_shown(kernel: Kernel) -> None:
    shown = kernel.execute(
        'ex = Explorer(ipyvirt.Connection(uri="test:///default"))\ndisplay(ex)'
    ).ok()
    opens = [m for m in shown.messages if m["msg_type"] == "comm_open"]
    assert len(opens) == 7, [m["content"]["data"]["state"].get("_model_name") for m in opens]
    assert kernel.value("[s.reads for s in ex.sections]") == [0, 0, 0, 0, 0]
    assert kernel.value("[s.loaded for s in ex.sections]") == [False] * 5
    assert "not read yet" in kernel.value("repr(ex)")
    # the view of the networks tab says hello when first shown: that part alone is read
    net_id = kernel.value("ex.networks.model_id")
    kernel.send_custom(net_id, {"do": "hello"})
    data = wait_for(kernel, net_id, "data", lambda d: network(d, "default"), "the networks")
    default = network(data, "default")
    assert default is not None
    assert (default["active"], default["forward_mode"], default["bridge"]) == (
        True,
        "nat",
        "virbr0",
    )
    assert default["addresses"] == ["192.168.122.1/24"]
    assert default["leases"] is None  # the test driver keeps none: the view says so
    assert kernel.value("[s.loaded for s in ex.sections]") == [False, True, False, False, False]
    live = wait_for(kernel, net_id, "live", bool, "how the networks keep current")
    assert live == "live: libvirt's network events"


def test_every_part_reads_what_the_test_driver_has(kernel: Kernel) -> None:
    kernel.execute('ex = Explorer(ipyvirt.Connection(uri="test:///default"))\nex.load()').ok()
    # an awaiting cell lets the main loop apply the reads
    kernel.execute(
        "import asyncio\nwhile min(s.reads for s in ex.sections) < 1: await asyncio.sleep(0.05)"
    ).ok()
    host = kernel.value("ex.host.data['host']")
    assert (host["hypervisor"], host["readonly"], host["uri"]) == ("TEST", True, "test:///default")
    assert host["cpus"] == 16 and host["free_memory"] is not None
    assert len(kernel.value("ex.host.data['numa']")) == 2
    assert "free memory re-read every 5 s" in kernel.value("ex.host.live")
    storage = kernel.value("ex.storage.data")
    found = pool(storage, "default-pool")
    assert found is not None and found["state"] == "running" and found["volumes"] == []
    assert "no volume events" in kernel.value("ex.storage.live")
    devices = kernel.value("ex.devices.data['devices']")
    assert devices[0]["name"] == "computer" and devices[0]["depth"] == 0
    assert kernel.value("ex.secrets.data") == {"supported": False, "secrets": []}
    # the test driver sends no secret events either: nothing to re-read, and it says why
    assert kernel.value("ex.secrets.live") == "nothing to follow"
    assert kernel.value("ex.secrets._repeater.running") is False
    # the free memory is re-read with no cell running (libvirt has no event for it)
    # (the test driver's free memory never changes, so no message goes out: count the reads)
    before = kernel.value("ex.host.reads")
    kernel.execute("ex.host._repeater.cancel(); ex.host._repeater.interval = 0.1").ok()
    kernel.execute("ex.host._repeater.start()").ok()
    deadline = time.monotonic() + 60
    while kernel.value("ex.host.reads") < before + 3:
        assert time.monotonic() < deadline, "the host's free memory is not re-read"
        kernel.drain(0.3)


def test_read_only_actions_say_what_to_do(kernel: Kernel) -> None:
    kernel.execute('ex = Explorer(ipyvirt.Connection(uri="test:///default"))').ok()
    kernel.execute("ex.networks.act('stop', name='default')").ok()
    assert kernel.value("ex.networks.outcome") == (
        "error: read-only connection: %virt connect --rw (or "
        "ipyvirt.Connection(readonly=False)) to stop network default"
    )
    kernel.execute("ex.storage.act('create_volume', pool='default-pool', name='x', capacity=-1)")
    assert kernel.value("ex.storage.outcome") == (
        "error: create_volume: give the size as a number above 0, not -1"
    )
    kernel.execute("ex.storage.act('frobnicate', pool='default-pool')")
    assert kernel.value("ex.storage.outcome") == "error: storage pools cannot 'frobnicate'"


def test_actions_on_a_read_write_connection(kernel: Kernel) -> None:
    kernel.execute(
        'ex = Explorer(ipyvirt.Connection(uri="test:///default", readonly=False))\n'
        "ex.networks.load(); ex.storage.load()"
    ).ok()
    net_id = kernel.value("ex.networks.model_id")
    pool_id = kernel.value("ex.storage.model_id")
    kernel.between.clear()  # answers to what follows only
    kernel.send_custom(net_id, {"do": "stop", "name": "default"})
    wait_for(kernel, net_id, "outcome", lambda o: o == "done: stop network default", "stop")
    wait_for(
        kernel,
        net_id,
        "data",
        lambda d: (network(d, "default") or {}).get("active") is False,
        "off",
    )
    kernel.between.clear()  # answers to what follows only
    kernel.send_custom(net_id, {"do": "start", "name": "default"})
    wait_for(kernel, net_id, "data", lambda d: (network(d, "default") or {}).get("active"), "on")
    # libvirt sends no event for autostart: the action's own re-read shows it
    kernel.between.clear()  # answers to what follows only
    kernel.send_custom(net_id, {"do": "autostart", "name": "default", "on": True})
    wait_for(
        kernel, net_id, "data", lambda d: (network(d, "default") or {}).get("autostart"), "auto"
    )
    kernel.between.clear()  # answers to what follows only
    kernel.send_custom(net_id, {"do": "autostart", "name": "default", "on": False})
    wait_for(
        kernel,
        net_id,
        "data",
        lambda d: (network(d, "default") or {}).get("autostart") is False,
        "autostart off",
    )
    kernel.between.clear()  # answers to what follows only
    kernel.send_custom(net_id, {"do": "stop", "name": "nope"})
    refused = wait_for(kernel, net_id, "outcome", lambda o: "nope" in o and "..." not in o, "no")
    assert refused.startswith("error: stop network nope: ") and "\n" not in refused
    # a volume made and deleted from the view (the view asked the user first)
    made = {"do": "create_volume", "pool": "default-pool", "name": PREFIX + "v.img"}
    kernel.between.clear()  # answers to what follows only
    kernel.send_custom(pool_id, {**made, "capacity": 2 * 1024**2})
    wait_for(
        kernel,
        pool_id,
        "data",
        lambda d: any(v["name"] == PREFIX + "v.img" for v in pool(d, "default-pool")["volumes"]),
        "the volume made",
    )
    gone = {"do": "delete_volume", "pool": "default-pool", "name": PREFIX + "v.img"}
    kernel.between.clear()  # answers to what follows only
    kernel.send_custom(pool_id, gone)
    wait_for(
        kernel,
        pool_id,
        "outcome",
        lambda o: o == f"done: delete volume {PREFIX}v.img in pool default-pool",
        "the volume deleted",
    )


@pytest.fixture
def remote(libvirtd: Libvirtd) -> Iterator[libvirt.virConnect]:
    libvirt.registerErrorHandler(lambda *a: None, None)
    c = libvirt.open(libvirtd.test_uri)
    yield c
    for net in c.listAllNetworks():
        if net.name().startswith(PREFIX):
            if net.isActive():
                net.destroy()
            net.undefine()
    for p in c.listAllStoragePools():
        if p.name().startswith(PREFIX):
            if p.isActive():
                p.destroy()
            p.undefine()
    c.close()


def test_another_connections_changes_reach_a_shown_part(
    kernel: Kernel, libvirtd: Libvirtd, remote: libvirt.virConnect
) -> None:
    kernel.execute(f'ex = Explorer(ipyvirt.Connection(uri="{libvirtd.test_uri}"))').ok()
    net_id = kernel.value("ex.networks.model_id")
    pool_id = kernel.value("ex.storage.model_id")
    dev_id = kernel.value("ex.devices.model_id")
    for comm in (net_id, pool_id, dev_id):
        kernel.send_custom(comm, {"do": "hello"})
    wait_for(kernel, net_id, "data", lambda d: network(d, "default"), "the first read")
    wait_for(kernel, pool_id, "data", lambda d: pool(d, "default-pool"), "the first read")
    assert kernel.value("ex.storage.live").startswith("live: libvirt's storage pool events")
    # a network defined and started by another process: no cell runs meanwhile
    net = remote.networkDefineXML(
        f"<network><name>{PREFIX}net</name><bridge name='virbr-x9'/>"
        "<ip address='10.9.9.1' prefix='24'/></network>"
    )
    net.create()
    shown = wait_for(
        kernel,
        net_id,
        "data",
        lambda d: (network(d, PREFIX + "net") or {}).get("active"),
        "the other process's network",
    )
    assert network(shown, PREFIX + "net")["forward_mode"] == "isolated"  # type: ignore[index]
    net.destroy()
    wait_for(
        kernel,
        net_id,
        "data",
        lambda d: (network(d, PREFIX + "net") or {}).get("active") is False,
        "the network stopped elsewhere",
    )
    # a pool: defined, started, and a volume made behind the view's back shows on refresh
    p = remote.storagePoolDefineXML(
        f"<pool type='dir'><name>{PREFIX}pool</name><target><path>/{PREFIX}pool</path>"
        "</target></pool>"
    )
    p.create()
    wait_for(
        kernel,
        pool_id,
        "data",
        lambda d: (pool(d, PREFIX + "pool") or {}).get("state") == "running",
        "the other process's pool",
    )
    p.createXML("<volume><name>v</name><capacity unit='MiB'>1</capacity></volume>")
    p.refresh()  # libvirt's pool refresh event: the view re-reads the volumes
    wait_for(
        kernel,
        pool_id,
        "data",
        lambda d: (
            [v["name"] for v in (pool(d, PREFIX + "pool") or {}).get("volumes") or []] == ["v"]
        ),
        "the volume, after the refresh event",
    )
    p.storageVolLookupByName("v").delete()
    # a node device (a vHBA, which the test driver can make) created and destroyed elsewhere
    wait_for(kernel, dev_id, "data", lambda d: d.get("devices"), "the first read of devices")
    made = remote.nodeDeviceCreateXML(
        "<device><parent>scsi_host1</parent><capability type='scsi_host'>"
        "<capability type='fc_host'><wwnn>2000000012341234</wwnn><wwpn>1000000012341234</wwpn>"
        "</capability></capability></device>"
    )
    name = made.name()

    def device(d: dict[str, Any]) -> dict[str, Any] | None:
        return next((x for x in d.get("devices", []) if x["name"] == name), None)

    try:
        shown = wait_for(kernel, dev_id, "data", device, "the vHBA made elsewhere")
        assert device(shown) == {
            **(device(shown) or {}),
            "parent": "scsi_host1",
            "capability": "scsi_host",
            "depth": 2,
        }
    finally:
        kernel.between.clear()  # what follows is about the destroy
        made.destroy()
    wait_for(kernel, dev_id, "data", lambda d: d and not device(d), "the vHBA gone")


def test_a_click_on_a_name_shows_the_domain_view_below_the_table(kernel: Kernel) -> None:
    kernel.execute("ex = Explorer(ipyvirt.Connection(uri='test:///default'))").ok()
    uuid = kernel.value("ex.domains.model.uuid_of('test')")
    kernel.send_custom(kernel.value("ex.domains.model_id"), {"do": "open", "uuid": uuid})
    deadline = time.monotonic() + 30
    while not kernel.value("ex.domain is not None"):
        assert time.monotonic() < deadline, "the click opened no domain view"
        time.sleep(0.05)
    assert kernel.value("(type(ex.domain).__name__, ex.domain.name)") == ("DomainView", "test")
    assert kernel.value("ex.selected_index") == 1
    assert kernel.value("ex.children[1].children == (ex.domains, ex.domain)") is True
    kernel.execute("ex.close()").ok()


def test_an_event_reads_again_the_object_it_names_only(
    kernel: Kernel, libvirtd: Libvirtd, remote: libvirt.virConnect
) -> None:
    kernel.execute(f'ex = Explorer(ipyvirt.Connection(uri="{libvirtd.test_uri}"))').ok()
    net_id = kernel.value("ex.networks.model_id")
    kernel.send_custom(net_id, {"do": "hello"})
    wait_for(kernel, net_id, "data", lambda d: network(d, "default"), "the first read")
    made = remote.networkDefineXML(
        f"<network><name>{PREFIX}one</name><bridge name='virbr-x8'/></network>"
    )
    default = remote.networkLookupByName("default")
    try:
        made.create()
        wait_for(
            kernel, net_id, "data", lambda d: (network(d, PREFIX + "one") or {}).get("active"), "on"
        )
        # libvirt sends no event for autostart: another network's event leaves "default" as
        # it was read, and a refresh reads everything
        default.setAutostart(1)
        kernel.between.clear()
        made.destroy()
        shown = wait_for(
            kernel,
            net_id,
            "data",
            lambda d: (network(d, PREFIX + "one") or {}).get("active") is False,
            "the network stopped elsewhere",
        )
        assert (network(shown, "default") or {}).get("autostart") is False
        kernel.send_custom(net_id, {"do": "refresh"})
        wait_for(
            kernel,
            net_id,
            "data",
            lambda d: (network(d, "default") or {}).get("autostart") is True,
            "the refresh",
        )
    finally:
        default.setAutostart(0)


def test_a_slot_below_the_domain_table_for_a_domain_view(kernel: Kernel) -> None:
    kernel.execute(
        "import ipywidgets\n"
        "ex = Explorer(ipyvirt.Connection(uri='test:///default'))\n"
        "ex.domain_view = None\n"
        "try:\n"
        "    ex.show_domain('test')\n"
        "except ValueError as err:\n"
        "    print(err)"
    ).ok()
    assert kernel.execute("print(ex.selected_index)").ok().stdout.strip() == "0"
    out = kernel.execute("ex.show_domain('test')", timeout=60)
    assert "this explorer has no domain view: give Explorer(conn, domain_view=...)" in str(
        out.messages
    )
    kernel.execute(
        "ex.domain_view = lambda conn, name: ipywidgets.Label(f'{name} on {conn.uri}')\n"
        "view = ex.show_domain('test')"
    ).ok()
    assert kernel.value("view.value") == "test on test:///default"
    assert kernel.value("ex.selected_index") == 1
    assert kernel.value("ex.children[1].children == (ex.domains, view)") is True
    kernel.execute("ex.close_domain()").ok()
    assert kernel.value("ex.children[1] is ex.domains and ex.domain is None") is True
    assert kernel.value("view.comm is None") is True  # closed with its slot


def test_the_explore_command(kernel: Kernel) -> None:
    kernel.execute("c = %virt connect --name here\nex = %virt explore").ok()
    assert kernel.value("(type(ex).__name__, ex._conn is c)") == ("Explorer", True)
    out = kernel.execute("%virt explore nope")
    assert "UsageError: %virt: no connection named 'nope' (open: here)" in str(out.messages)
    help_text = kernel.execute("%virt explore --help").ok().stdout
    assert help_text.startswith("usage: %virt explore [-h] [NAME]")
    assert "walk a hypervisor: host, domains, networks, storage" in help_text


def test_a_pools_first_volumes_until_the_view_asks_for_all(kernel: Kernel) -> None:
    kernel.execute(
        'conn = ipyvirt.Connection(uri="test:///default", readonly=False)\n'
        'pool = conn.conn.storagePoolLookupByName("default-pool")\n'
        "for i in range(60):\n"
        "    ipyvirt.explore.create_volume(pool, f'v{i:02}', 1024)\n"
        "ex = Explorer(conn)\n"
        "ex.storage.load()"
    ).ok()
    pool_id = kernel.value("ex.storage.model_id")

    def shown(d: dict[str, Any]) -> tuple[int, int] | None:
        found = pool(d, "default-pool")
        return None if found is None else (len(found["volumes"]), found["volume_count"])

    wait_for(kernel, pool_id, "data", lambda d: shown(d) == (20, 60), "the first 20")
    kernel.send_custom(pool_id, {"do": "expand", "pool": "default-pool"})
    wait_for(kernel, pool_id, "data", lambda d: shown(d) == (60, 60), "all 60")
    kernel.send_custom(pool_id, {"do": "collapse", "pool": "default-pool"})
    kernel.between.clear()
    wait_for(kernel, pool_id, "data", lambda d: shown(d) == (20, 60), "the first 20 again")
    kernel.send_custom(pool_id, {"do": "close", "pool": "default-pool"})
    kernel.between.clear()
    wait_for(kernel, pool_id, "data", lambda d: shown(d) == (0, 60), "none, 60 counted")
    assert pool(kernel.value("ex.storage.data"), "default-pool")["shown"] == "closed"


def test_many_pools_are_closed_until_the_view_opens_one(kernel: Kernel) -> None:
    # more pools than OPEN_POOLS: each shows its sizes and volume count; no volume is read
    kernel.execute(
        'conn = ipyvirt.Connection(uri="test:///default", readonly=False)\n'
        "for i in range(ipyvirt.widgets.explorer_sections.StorageSection.OPEN_POOLS):\n"
        "    p = conn.conn.storagePoolCreateXML(f\"<pool type='dir'><name>p{i}</name>\"\n"
        '        f"<target><path>/p{i}</path></target></pool>")\n'
        "    ipyvirt.explore.create_volume(p, 'v.img', 1024)\n"
        "ex = Explorer(conn)\n"
        "ex.storage.load()"
    ).ok()
    pool_id = kernel.value("ex.storage.model_id")

    def shown(d: dict[str, Any], name: str) -> tuple[str, int, int] | None:
        found = pool(d, name)
        if found is None:
            return None
        return found["shown"], len(found["volumes"] or []), found["volume_count"]

    wait_for(kernel, pool_id, "data", lambda d: shown(d, "p0") == ("closed", 0, 1), "p0 closed")
    data = kernel.value("ex.storage.data")
    assert [p["shown"] for p in data["pools"]] == ["closed"] * 5
    assert all(p["volumes"] == [] and p["capacity"] > 0 for p in data["pools"])
    kernel.send_custom(pool_id, {"do": "open", "pool": "p1"})
    wait_for(kernel, pool_id, "data", lambda d: shown(d, "p1") == ("first", 1, 1), "p1 open")
    opened = pool(kernel.value("ex.storage.data"), "p1")
    assert [(v["name"], v["path"]) for v in opened["volumes"]] == [("v.img", "/p1/v.img")]
    assert shown(kernel.value("ex.storage.data"), "p0") == ("closed", 0, 1)
