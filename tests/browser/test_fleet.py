"""The fleet dashboard in a real JupyterLab over three real test libvirtds (and a host that
is not there), light and dark: one table grouped by host (a header per host, folded by a
click) with a host filter, an action routed to its host, the hosts' health, one event log.
The README's screenshots come from here (docs/images/fleet-light.png, fleet-dark.png,
fleet-hosts-light.png, fleet-hosts-dark.png, fleet-folded-light.png, fleet-folded-dark.png).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from .lab import Lab, LabPage
from libvirtd import Libvirtd

pytestmark = [pytest.mark.browser, pytest.mark.daemon]

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
HOSTS = {"web": ["web-1", "web-2", "web-3"], "db": ["db-main", "db-replica"], "build": ["ci-9"]}


@pytest.fixture
def daemons() -> Iterator[dict[str, tuple[Libvirtd, libvirt.virConnect]]]:
    """A libvirtd per host, its domains defined over its socket; the connection kept open
    (the test driver forgets its default hypervisor once its last client left)."""
    started: dict[str, tuple[Libvirtd, libvirt.virConnect]] = {}
    try:
        for host, names in HOSTS.items():
            daemon = Libvirtd().start()
            conn = libvirt.open(daemon.test_uri)
            started[host] = (daemon, conn)
            for i, name in enumerate(names):
                dom = conn.defineXML(
                    f"<domain type='test'><name>{name}</name><memory>{(i + 1) * 262144}</memory>"
                    f"<vcpu>{i + 1}</vcpu><os><type>hvm</type></os></domain>"
                )
                if i != 1:
                    dom.create()
        yield started
    finally:
        for daemon, conn in started.values():
            conn.close()
            daemon.cleanup()


def test_fleet_dashboard_light_and_dark(
    lab: Lab,
    jupyter: LabPage,
    daemons: dict[str, tuple[Libvirtd, libvirt.virConnect]],
    tmp_path: Path,
) -> None:
    uris = " ".join(f"{host}={d.test_uri}" for host, (d, _) in daemons.items())
    gone = f"gone=test+unix:///default?socket={tmp_path}/gone/libvirt-sock"
    cells = [
        "%load_ext ipyvirt",
        f"%virt fleet add --rw {uris} {gone}",
        "import asyncio\n"
        "fleet = get_ipython().magics_manager.registry['VirtMagics'].fleet\n"
        "await fleet.settled()\n"
        "await asyncio.sleep(2.5)  # a probe: versions, domain counts, round trips",
        "%virt fleet dashboard",
    ]
    jupyter.open(lab.write_notebook("fleet.ipynb", cells))
    jupyter.run_all()
    table = jupyter.panel.locator(".ipyvirt-table").first
    table.wait_for()
    rows = table.locator("tr.ipyvirt-row")
    jupyter.page.wait_for_function(
        "el => el.querySelectorAll('tr.ipyvirt-row').length === 9", arg=table.element_handle()
    )
    # grouped by host: a header per host, the one that is not there too, no host column
    groups = table.locator("tr.ipyvirt-group")
    jupyter.page.wait_for_function(
        "el => el.querySelectorAll('tr.ipyvirt-group').length === 4", arg=table.element_handle()
    )
    heads = table.locator("thead th").all_inner_texts()
    assert [h.strip(" ▲▼") for h in heads][:3] == ["", "name", "id"]
    assert [t.split("\n")[0] for t in groups.locator("button").all_inner_texts()] == [
        "▾build", "▾db", "▾gone", "▾web"
    ]  # fmt: skip
    web = groups.filter(has_text="web")
    assert web.locator(".ipyvirt-badge").all_inner_texts() == [
        "connected",
        "3 running",
        "1 shutoff",
    ]
    assert web.locator(".ipyvirt-count").inner_text() == "4 domains"
    gone = groups.filter(has_text="gone")
    assert gone.locator(".ipyvirt-badge").all_inner_texts() == ["failed"]
    # the rows sit under their host's header, in the page's order
    order = table.locator("tbody tr").evaluate_all(
        "trs => trs.map(tr => tr.dataset.host || tr.querySelectorAll('td')[1].innerText)"
    )
    assert order == [
        "build", "ci-9", "test", "db", "db-main", "db-replica", "test", "gone",
        "web", "test", "web-1", "web-2", "web-3",
    ], order  # fmt: skip
    assert (
        table.locator(".ipyvirt-summary")
        .inner_text()
        .startswith("9 domains on 4 hosts (3 connected)")
    )
    # filter by host: the view asks, the kernel filters
    table.locator("select.ipyvirt-host").select_option("db")
    jupyter.page.wait_for_function(
        "el => el.querySelectorAll('tr.ipyvirt-row').length === 3", arg=table.element_handle()
    )
    names = [rows.nth(i).locator("td").nth(1).inner_text() for i in range(rows.count())]
    assert names == ["db-main", "db-replica", "test"]
    assert groups.count() == 1
    # an action on db's db-main reaches db's daemon, and no other
    table.get_by_label("select db-main").click()
    table.locator("button.ipyvirt-do-suspend").click()
    table.locator(".ipyvirt-outcome").filter(has_text="suspend db-main: done").wait_for()
    table.locator("tr[data-state='paused']").wait_for()
    assert daemons["db"][1].lookupByName("db-main").state()[0] == libvirt.VIR_DOMAIN_PAUSED
    table.locator("select.ipyvirt-host").select_option("")
    jupyter.page.wait_for_function(
        "el => el.querySelectorAll('tr.ipyvirt-row').length === 9", arg=table.element_handle()
    )
    dashboard = jupyter.panel.locator(".jp-OutputArea-output").last  # the last cell's
    IMAGES.mkdir(parents=True, exist_ok=True)
    jupyter.shoot(dashboard, IMAGES / "fleet-light.png")
    # a click on web's header folds its rows; "collapse all" folds every host's
    web.locator("button.ipyvirt-fold").click()
    jupyter.page.wait_for_function(
        "el => el.querySelectorAll('tr.ipyvirt-row').length === 5", arg=table.element_handle()
    )
    assert web.locator("button.ipyvirt-fold").get_attribute("aria-expanded") == "false"
    focused = web.locator("button.ipyvirt-fold").evaluate(
        "b => b === document.activeElement || document.activeElement.outerHTML.slice(0, 200)"
    )
    assert focused is True, f"the fold button lost the focus to {focused}"
    jupyter.shoot(dashboard, IMAGES / "fleet-folded-light.png")
    table.locator("button.ipyvirt-fold-all", has_text="collapse all").click()
    jupyter.page.wait_for_function(
        "el => el.querySelectorAll('tr.ipyvirt-row').length === 0", arg=table.element_handle()
    )
    assert table.locator(".ipyvirt-page").inner_text() == "hosts 1-4 of 4, 9 folded"
    table.locator("button.ipyvirt-fold-all", has_text="expand all").click()
    jupyter.page.wait_for_function(
        "el => el.querySelectorAll('tr.ipyvirt-row').length === 9", arg=table.element_handle()
    )
    web.locator("button.ipyvirt-fold").click()  # folded again, for the dark screenshot
    jupyter.page.wait_for_function(
        "el => el.querySelectorAll('tr.ipyvirt-row').length === 5", arg=table.element_handle()
    )
    # "group by host" off: the host column, sortable, instead of the headers
    table.get_by_label("group by host").uncheck()
    jupyter.page.wait_for_function(
        "el => !el.querySelector('tr.ipyvirt-group') && "
        "el.querySelectorAll('tr.ipyvirt-row').length === 9",
        arg=table.element_handle(),
    )
    heads = table.locator("thead th").all_inner_texts()
    assert [h.strip(" ▲▼") for h in heads][:3] == ["", "host", "name"]
    table.get_by_label("group by host").check()
    groups.first.wait_for()

    jupyter.page.get_by_role("tab", name="hosts").click()
    health = jupyter.panel.locator(".ipyvirt-fleet-health").first
    health.wait_for()
    health.locator("td", has_text="next try in").wait_for()
    host_rows = health.locator("tbody tr")
    assert host_rows.count() == 4
    hosts = host_rows.locator("th")
    assert hosts.all_inner_texts() == ["build", "db", "gone", "web"]
    assert hosts.nth(1).get_attribute("title") == daemons["db"][0].test_uri  # the URI
    assert health.locator(".ipyvirt-badge", has_text="connected").count() == 3
    assert health.locator(".ipyvirt-badge", has_text="failed").count() == 1
    jupyter.shoot(dashboard, IMAGES / "fleet-hosts-light.png")

    jupyter.page.get_by_role("tab", name="events").click()
    log = jupyter.panel.locator(".ipyvirt-event-log").first
    event = log.locator("tbody tr", has_text="db-main")
    event.wait_for()
    cells = event.locator("td").all_inner_texts()
    assert cells[1:] == ["db", "domain", "db-main", "suspended", "paused"], cells

    jupyter.set_theme("JupyterLab Dark")
    try:
        jupyter.page.get_by_role("tab", name="domains").click()
        table.locator("tr.ipyvirt-row").first.wait_for()
        jupyter.shoot(dashboard, IMAGES / "fleet-folded-dark.png")
        web.locator("button.ipyvirt-fold").click()
        jupyter.page.wait_for_function(
            "el => el.querySelectorAll('tr.ipyvirt-row').length === 9", arg=table.element_handle()
        )
        jupyter.shoot(dashboard, IMAGES / "fleet-dark.png")
        jupyter.page.get_by_role("tab", name="hosts").click()
        health.wait_for()
        jupyter.shoot(dashboard, IMAGES / "fleet-hosts-dark.png")
    finally:  # the other tests' pages open light
        jupyter.set_theme("JupyterLab Light")
