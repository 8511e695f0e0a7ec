"""``%virt explore`` in a real JupyterLab, on the tests' libvirtd: every tab walked, a
network made by another process shown with no cell running, a network stopped and started
and a volume made and deleted from the view, light and dark. The README's screenshots come
from here (docs/images/explorer-*.png)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from playwright.sync_api import Locator

from .lab import Lab, LabPage
from libvirtd import Libvirtd

pytestmark = [pytest.mark.browser, pytest.mark.daemon]

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
PREFIX = "explorer-"
NET = PREFIX + "lab"
VOLUME = PREFIX + "scratch.img"


@pytest.fixture
def elsewhere(libvirtd: Libvirtd) -> Iterator[libvirt.virConnect]:
    """A connection of this process to the daemon: the kernel learns of what it does from
    libvirt's events only. What the test made is gone after it."""
    libvirt.registerErrorHandler(lambda *a: None, None)
    c = libvirt.open(libvirtd.test_uri)
    yield c
    for net in c.listAllNetworks():
        if net.name().startswith(PREFIX):
            if net.isActive():
                net.destroy()
            net.undefine()
    pool = c.storagePoolLookupByName("default-pool")
    for vol in pool.listAllVolumes():
        if vol.name().startswith(PREFIX):
            vol.delete()
    c.close()


def tab(jupyter: LabPage, title: str) -> None:
    jupyter.panel.locator(".jp-OutputArea .lm-TabBar-tab").filter(
        has_text=re.compile(rf"^\s*{title}\s*$")
    ).click()


def part(explorer: Locator, kind: str) -> Locator:
    return explorer.locator(f".ipyvirt-x-{kind}")


def shoot_both(jupyter: LabPage, explorer: Locator, kind: str) -> None:
    jupyter.shoot(explorer, IMAGES / f"explorer-{kind}-light.png")
    jupyter.set_theme("JupyterLab Dark")
    try:
        jupyter.shoot(explorer, IMAGES / f"explorer-{kind}-dark.png")
    finally:  # the other tests' pages open light
        jupyter.set_theme("JupyterLab Light")


def row(table: Locator, first: str) -> Locator:
    return table.locator("tr").filter(
        has=table.page.locator(
            "td:first-child", has_text=re.compile(rf"^\s*{re.escape(first)}\s*$")
        )
    )


def test_explore_every_tab_and_act(
    libvirtd: Libvirtd, lab: Lab, jupyter: LabPage, elsewhere: libvirt.virConnect
) -> None:
    uri = libvirtd.test_uri
    cells = ["%load_ext ipyvirt", f"%virt connect {uri} --rw --name daemon", "%virt explore"]
    jupyter.open(lab.write_notebook("explorer.ipynb", cells))
    jupyter.run_all()
    explorer = jupyter.panel.locator(".jp-OutputArea .widget-tab").first
    explorer.wait_for()
    counts = jupyter.execution_counts()

    # host: the first tab, read when shown
    host = part(explorer, "host")
    host.locator("tr[data-field='hypervisor'] td").filter(has_text="TEST").wait_for()
    assert host.locator("tr[data-field='connection'] td").inner_text() == "read-write"
    assert host.locator("tr[data-field='uri'] td").inner_text() == uri
    assert "free memory re-read every 5 s" in host.locator(".ipyvirt-x-live").inner_text()
    assert host.locator(".ipyvirt-x-numa tbody tr").count() == 2
    shoot_both(jupyter, explorer, "host")

    # domains: the domain table
    tab(jupyter, "domains")
    explorer.locator(".ipyvirt-row").filter(has_text="test").first.wait_for()

    # networks: one made by another process appears with no cell running, then stopped and
    # started from the view
    tab(jupyter, "networks")
    networks = part(explorer, "networks")
    table = networks.locator("table.ipyvirt-x-networks")
    row(table, "default").wait_for()
    assert networks.locator(".ipyvirt-x-live").inner_text() == "live: libvirt's network events"
    net = elsewhere.networkDefineXML(
        f"<network><name>{NET}</name><bridge name='virbr-xl'/><forward mode='nat'/>"
        "<ip address='10.77.0.1' prefix='24'/></network>"
    )
    net.create()
    mine = row(table, NET)
    mine.locator(".ipyvirt-state-running").wait_for()
    assert "10.77.0.1/24" in mine.inner_text()
    assert networks.get_by_text("the driver keeps no leases").count() >= 2
    mine.locator("button[data-do='stop']").click()
    mine.locator(".ipyvirt-state-shutoff").wait_for()
    networks.locator(".ipyvirt-outcome").filter(has_text=f"done: stop network {NET}").wait_for()
    assert not net.isActive()
    mine.locator("button[data-do='start']").click()
    mine.locator(".ipyvirt-state-running").wait_for()
    shoot_both(jupyter, explorer, "networks")

    # storage: a volume made and deleted from the view; deleting asks first
    tab(jupyter, "storage")
    storage = part(explorer, "storage")
    pool = storage.locator(".ipyvirt-x-pool").filter(
        has=jupyter.page.locator("[data-pool='default-pool']")
    )
    pool.locator(".ipyvirt-x-meter").wait_for()
    # a volume made elsewhere shows on the pool's refresh event; what is typed meanwhile stays
    name = pool.locator(".ipyvirt-x-volname")
    name.fill("half-typed")
    elsewhere_pool = elsewhere.storagePoolLookupByName("default-pool")
    elsewhere_pool.createXML(
        f"<volume><name>{PREFIX}other.img</name><capacity unit='MiB'>1</capacity></volume>"
    )
    elsewhere_pool.refresh()
    row(pool.locator("table.ipyvirt-x-volumes"), PREFIX + "other.img").wait_for()
    assert name.input_value() == "half-typed"
    elsewhere_pool.storageVolLookupByName(PREFIX + "other.img").delete()
    elsewhere_pool.refresh()
    row(pool.locator("table.ipyvirt-x-volumes"), PREFIX + "other.img").wait_for(state="detached")
    name.fill(VOLUME)
    pool.locator(".ipyvirt-x-volsize").fill("8")
    pool.locator("button[data-do='create_volume']").click()
    volumes = pool.locator("table.ipyvirt-x-volumes")
    made = row(volumes, VOLUME)
    made.wait_for()
    assert name.input_value() == ""  # asked for: the form is ready for the next one
    assert "8.0 MiB" in made.inner_text()
    shoot_both(jupyter, explorer, "storage")
    made.locator("button[data-do='delete_volume']").click()
    question = storage.locator(".ipyvirt-x-question")
    assert question.inner_text().startswith(f"delete volume {VOLUME} in pool default-pool?")
    question.locator("[data-answer='yes']").click()
    made.wait_for(state="detached")
    storage.locator(".ipyvirt-outcome").filter(has_text=f"done: delete volume {VOLUME}").wait_for()

    # devices: the tree by parent
    tab(jupyter, "devices")
    devices = part(explorer, "devices")
    devices.locator("[data-device='computer']").wait_for()
    assert devices.locator(".ipyvirt-x-tree").count() > 1
    shoot_both(jupyter, explorer, "devices")

    # secrets: the test driver has none, and says so
    tab(jupyter, "secrets")
    secrets = part(explorer, "secrets")
    secrets.locator(".ipyvirt-empty").filter(has_text="the driver has no secrets").wait_for()
    assert secrets.locator(".ipyvirt-x-live").inner_text() == "nothing to follow"
    assert jupyter.execution_counts() == counts, "a cell ran while the explorer changed"


def test_many_pools_are_closed_until_opened_then_show_their_first_volumes(
    lab: Lab, jupyter: LabPage
) -> None:
    cells = [
        "%load_ext ipyvirt",
        "import ipyvirt\n"
        "c = %virt connect --rw\n"
        'pool = c.conn.storagePoolLookupByName("default-pool")\n'
        "for i in range(60):\n"
        "    ipyvirt.explore.create_volume(pool, f'v{i:02}.img', 2**20)\n"
        "for i in range(4):  # 5 pools: more than StorageSection.OPEN_POOLS\n"
        "    c.conn.storagePoolCreateXML(f\"<pool type='dir'><name>p{i}</name>\"\n"
        '        f"<target><path>/p{i}</path></target></pool>")',
        "%virt explore",
    ]
    jupyter.open(lab.write_notebook("explorer-big-pool.ipynb", cells))
    jupyter.run_all()
    explorer = jupyter.panel.locator(".jp-OutputArea .widget-tab").first
    explorer.wait_for()
    tab(jupyter, "storage")
    storage = part(explorer, "storage")
    pool = storage.locator(".ipyvirt-x-pool").filter(
        has=jupyter.page.locator("[data-pool='default-pool']")
    )
    volumes = pool.locator("table.ipyvirt-x-volumes tbody tr")
    more = pool.locator(".ipyvirt-x-more")
    # closed: its sizes and how many volumes, none read
    opener = more.locator("button[data-do='open']")
    opener.filter(has_text="▸ 60 volumes").wait_for()
    assert opener.get_attribute("aria-expanded") == "false"
    assert storage.locator("button[data-do='open']").count() == 5
    assert storage.locator("table.ipyvirt-x-volumes").count() == 0
    opener.click()
    more.filter(has_text="20 of 60 volumes shown").wait_for()
    assert volumes.count() == 20
    assert more.locator("button[data-do='close']").get_attribute("aria-expanded") == "true"
    more.locator("button[data-do='expand']").click()
    more.locator("button[data-do='collapse']").filter(has_text="show the first 20").wait_for()
    assert volumes.count() == 60
    more.locator("button[data-do='collapse']").click()
    more.filter(has_text="20 of 60 volumes shown").wait_for()
    assert volumes.count() == 20
    more.locator("button[data-do='close']").click()
    opener.wait_for()
    assert volumes.count() == 0
    assert storage.locator("button[data-do='open']").count() == 5


def test_a_pool_event_redraws_that_pool_only(
    libvirtd: Libvirtd, lab: Lab, jupyter: LabPage, elsewhere: libvirt.virConnect
) -> None:
    cells = [
        "%load_ext ipyvirt",
        f"%virt connect {libvirtd.test_uri} --name daemon",
        "%virt explore",
    ]
    jupyter.open(lab.write_notebook("explorer-pools.ipynb", cells))
    jupyter.run_all()
    explorer = jupyter.panel.locator(".jp-OutputArea .widget-tab").first
    explorer.wait_for()
    tab(jupyter, "storage")
    storage = part(explorer, "storage")

    def section(name: str) -> Locator:
        return storage.locator(".ipyvirt-x-pool").filter(
            has=jupyter.page.locator(f"[data-pool='{name}']")
        )

    section("default-pool").locator(".ipyvirt-x-meter").wait_for()
    other = elsewhere.storagePoolDefineXML(
        f"<pool type='dir'><name>{PREFIX}other</name><target><path>/{PREFIX}other</path>"
        "</target></pool>"
    )
    try:
        other.create()
        section(PREFIX + "other").locator(".ipyvirt-state-running").wait_for()
        # the element drawn for default-pool, marked: a redraw that rebuilt it would lose it
        section("default-pool").evaluate("el => { el.dataset.kept = 'yes'; }")
        other.destroy()  # another process: the pool event reaches the view
        section(PREFIX + "other").locator(".ipyvirt-state-shutoff").wait_for()
        assert section("default-pool").get_attribute("data-kept") == "yes"
    finally:
        if other.isActive():
            other.destroy()
        other.undefine()
