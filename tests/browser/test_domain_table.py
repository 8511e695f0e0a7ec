"""The domain table in a real JupyterLab, used with the mouse: a header sorts, a checkbox
selects, a button acts and the state badge changes; an empty filter says so. The light and
dark screenshots in docs/images/ (domain-table-light.png, domain-table-dark.png) come from
here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from playwright.sync_api import Locator, Page, expect

from .lab import Lab, LabPage
from .test_live_update import act_elsewhere
from libvirtd import Libvirtd

pytestmark = [pytest.mark.browser, pytest.mark.daemon]

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

# domains beside "test" for the table to show, and the state each is put in
EXTRA = {"web-1": "running", "web-2": "paused", "db-1": "shutoff", "db-2": "shutoff"}


@pytest.fixture
def domains(libvirtd: Libvirtd) -> Iterator[str]:
    """The daemon's test driver with EXTRA defined (undefined after the test); its URI."""
    uri = libvirtd.test_uri
    act_elsewhere(uri, "ensure-running")
    conn = libvirt.open(uri)
    xml = re.sub(r"<uuid>.*</uuid>", "", conn.lookupByName("test").XMLDesc())
    try:
        for name, state in EXTRA.items():
            dom = conn.defineXML(re.sub(r"<name>.*</name>", f"<name>{name}</name>", xml))
            if state != "shutoff":
                dom.create()
            if state == "paused":
                dom.suspend()
        yield uri
    finally:
        for name in EXTRA:
            try:
                dom = conn.lookupByName(name)
            except libvirt.libvirtError:
                continue
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        conn.close()
        act_elsewhere(uri, "ensure-running")


def _row(table: Locator, name: str) -> Locator:
    return table.locator("tr.ipyvirt-row").filter(
        has=table.page.locator("td", has_text=re.compile(rf"^{re.escape(name)}$"))
    )


def test_the_table_sorts_selects_acts_and_shows_the_badge(
    domains: str, lab: Lab, jupyter: LabPage, page: Page
) -> None:
    cells = [
        "%load_ext ipyvirt",
        f"import ipyvirt\nconn = ipyvirt.Connection(uri={domains!r}, readonly=False)",
        "from ipyvirt.widgets import DomainTable\nDomainTable(conn)",
    ]
    jupyter.open(lab.write_notebook("table.ipynb", cells))
    jupyter.run_all()
    table = jupyter.panel.locator(".ipyvirt-table")
    expect(table.locator("tr.ipyvirt-row")).to_have_count(5)
    names = table.locator("tr.ipyvirt-row td:nth-child(2)")
    expect(names).to_have_text(["db-1", "db-2", "test", "web-1", "web-2"])
    # every data cell starts where its header does (the checkbox column has a header too)
    lefts = table.evaluate(
        """t => [...t.querySelectorAll('thead th')].map((th, i) =>
             [th.getBoundingClientRect().left,
              t.querySelector(`tbody tr td:nth-child(${i + 1})`).getBoundingClientRect().left])"""
    )
    assert all(abs(head - data) < 1 for head, data in lefts), lefts

    # a click on a header sorts by it, again the other way
    state_header = table.locator("th", has_text="state")
    state_header.locator("button").click()
    expect(state_header).to_have_attribute("aria-sort", "ascending")
    expect(names.first).to_have_text("test")  # running first
    state_header.locator("button").click()
    expect(state_header).to_have_attribute("aria-sort", "descending")
    expect(state_header.locator(".ipyvirt-arrow")).to_have_text(" ▼")
    expect(names.first).to_have_text(re.compile("^db-"))  # shut off first

    # select web-1 (running): what applies to it is enabled, the rest says why not
    web1 = _row(table, "web-1")
    expect(web1.locator(".ipyvirt-badge")).to_have_text("running")
    expect(table.locator("button.ipyvirt-do-suspend")).to_be_disabled()
    web1.locator("input[type=checkbox]").click()
    expect(web1).to_have_class(re.compile(r"\bselected\b"))
    expect(table.locator("tbody input:checked")).to_have_count(1)
    suspend = table.locator("button.ipyvirt-do-suspend")
    expect(suspend).to_be_enabled()
    start = table.locator("button.ipyvirt-do-start")
    expect(start).to_be_disabled()
    expect(start).to_have_attribute(
        "title", "start applies to crashed or shutoff domains: web-1 is running"
    )
    suspend.click()
    expect(web1.locator(".ipyvirt-badge.ipyvirt-state-paused")).to_have_text("paused")
    expect(table.locator(".ipyvirt-outcome")).to_have_text("suspend web-1: done")
    jupyter.screenshot("domain-table-light-page")
    IMAGES.mkdir(parents=True, exist_ok=True)
    try:
        jupyter.shoot(table, IMAGES / "domain-table-light.png")
        jupyter.set_theme("JupyterLab Dark")
        jupyter.shoot(table, IMAGES / "domain-table-dark.png")
        jupyter.screenshot("domain-table-dark-page")
    finally:
        jupyter.set_theme("JupyterLab Light")  # the theme is a setting: the next test's too

    # the header's checkbox selects every row the filter shows, then none
    every = table.locator("thead input[type=checkbox]")
    expect(every).to_have_js_property("indeterminate", True)
    every.click()
    expect(table.locator("tr.ipyvirt-row.selected")).to_have_count(5)
    expect(table.locator("button.ipyvirt-do-suspend")).to_be_disabled()  # not all running
    every.click()
    expect(table.locator("tr.ipyvirt-row.selected")).to_have_count(0)
    web1.locator("input[type=checkbox]").click()
    expect(web1).to_have_class(re.compile(r"\bselected\b"))

    # destroy asks first; cancel leaves the domain be
    table.locator("button.ipyvirt-do-destroy").click()
    confirm = table.locator(".ipyvirt-confirm")
    expect(confirm).to_contain_text("destroy web-1?")
    confirm.get_by_role("button", name="cancel").click()
    expect(confirm).to_be_hidden()
    expect(web1.locator(".ipyvirt-badge")).to_have_text("paused")

    # resume it; then a filter that matches nothing says so, with no bare headers
    table.locator("button.ipyvirt-do-resume").click()
    expect(web1.locator(".ipyvirt-badge")).to_have_text("running")
    table.locator("input.ipyvirt-name").fill("zzz")
    expect(table.locator(".ipyvirt-empty")).to_have_text("No domain matches name containing 'zzz'.")
    expect(table.locator("table.ipyvirt-domains")).to_be_hidden()
    expect(table.locator(".ipyvirt-pager")).to_be_hidden()
    jupyter.screenshot("domain-table-empty")
