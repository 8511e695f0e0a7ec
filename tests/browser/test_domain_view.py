"""The domain view in a real JupyterLab, used with the mouse: ``%virt show test`` draws the
overview with live charts, the devices, the snapshot tree; the XML is edited, a definition
libvirt rejects says why and keeps the text, a valid one is defined; a snapshot is reverted
after a confirmation; a click on a name in the dashboard's table opens the domain under it.
The screenshots in docs/images/domain-view-*.png come from here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, expect

from .lab import Lab, LabPage

pytestmark = pytest.mark.browser

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

DEVICES = (
    "<serial type='pty'><target port='0'/></serial>"
    "<console type='pty'><target type='serial' port='0'/></console>"
    "<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/></devices>"
)

# test:///default's domain with a console and a display, restarted once the connection
# watches it (its uptime is then known), two snapshots in a line
SETUP = f"""\
import libvirt
c = %virt connect --rw
dom = c.domain("test")
c.conn.defineXML(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).replace("</devices>", {DEVICES!r}))
dom.destroy(); dom.create()
dom.snapshotCreateXML("<domainsnapshot><name>installed</name>"
                      "<description>fresh from the installer</description></domainsnapshot>")
dom.snapshotCreateXML("<domainsnapshot><name>configured</name></domainsnapshot>")
"""


def tab(view: Locator, name: str) -> None:
    view.locator(f"button.ipyvirt-dv-tab[data-tab='{name}']").click()
    expect(view.locator(f".ipyvirt-dv-pane[data-pane='{name}']")).to_be_visible()


def test_domain_view_edit_define_snapshots_and_open_from_a_table(
    lab: Lab, jupyter: LabPage
) -> None:
    readonly = "_ = %virt connect --name ro\n%virt show test --name ro"
    cells = ["%load_ext ipyvirt", SETUP, "%virt show test", "%virt dashboard", readonly]
    jupyter.open(lab.write_notebook("domain-view.ipynb", cells))
    jupyter.run_all()
    outputs = jupyter.panel.locator(".jp-CodeCell").nth(2)
    view = outputs.locator(".ipyvirt-dv").first
    view.wait_for()
    expect(view.locator(".ipyvirt-dv-name")).to_have_text("test")
    expect(view.locator(".ipyvirt-dv-head .ipyvirt-state-running")).to_have_text("running")
    fields = view.locator(".ipyvirt-dv-fields")
    expect(fields.locator("tr", has_text="vCPUs")).to_have_text("vCPUs2 of 2")
    expect(fields.locator("tr", has_text="uptime")).to_have_text(re.compile(r"uptime00:00:\d\d"))
    # the charts fill from the polls (per-domain calls: the test driver's bulk stats lack them)
    expect(view.locator("figcaption", has_text="memory")).to_have_text("memory 1024 MiB")
    expect(view.locator("path.ipyvirt-dv-cpu")).to_have_attribute("d", re.compile(r"^M.*L"))
    view.page.wait_for_timeout(4000)  # a few more points on the lines for the picture
    IMAGES.mkdir(parents=True, exist_ok=True)
    jupyter.shoot(view, IMAGES / "domain-view-light.png")

    tab(view, "devices")
    devices = view.locator(".ipyvirt-dv-pane[data-pane='devices']")
    expect(devices.locator("tr", has_text="vda")).to_contain_text("/guest/diskimage1")
    expect(devices.locator("tr", has_text="aa:bb:cc:dd:ee:ff")).to_contain_text("192.168.122.")
    expect(devices.locator("tr", has_text="vnc")).to_contain_text("127.0.0.1")
    expect(devices.locator("tr", has_text="console")).to_contain_text("pty")

    tab(view, "snapshots")
    snaps = view.locator(".ipyvirt-dv-snapshots tbody tr")
    expect(snaps).to_have_count(2)
    expect(snaps.nth(1)).to_contain_text("└ configured")
    expect(snaps.nth(1).locator(".ipyvirt-dv-current")).to_have_text("current")
    snaps.nth(0).locator("button.ipyvirt-dv-revert").click()
    confirm = view.locator(".ipyvirt-dv-confirm")
    expect(confirm).to_contain_text("revert test to snapshot 'installed'?")
    confirm.locator("button", has_text="confirm").click()
    expect(view.locator(".ipyvirt-dv-outcome")).to_have_text("revert test to 'installed': done")
    expect(snaps.nth(0).locator(".ipyvirt-dv-current")).to_have_text("current")
    jupyter.shoot(view, IMAGES / "domain-view-snapshots-light.png")

    tab(view, "XML")
    code = view.locator("pre.ipyvirt-dv-code")
    expect(code.locator(".x-tag", has_text="on_crash").first).to_be_visible()
    view.locator("button", has_text="edit").click()
    area = view.locator("textarea.ipyvirt-dv-edit")
    expect(area).to_be_visible()
    text = area.input_value()
    bad = text.replace("<on_crash>destroy</on_crash>", "<on_crash>explode</on_crash>")
    assert bad != text
    area.fill(bad)
    view.locator("button.ipyvirt-dv-define").click()
    error = view.locator(".ipyvirt-dv-error")
    expect(error).to_contain_text("libvirt refused it, nothing changed: XML document failed")
    assert area.input_value() == bad, "the edited text was lost"
    # the highlighted copy under the textarea follows the typing
    expect(code).to_contain_text("<on_crash>explode</on_crash>")
    code.locator(".x-tag", has_text="on_crash").first.scroll_into_view_if_needed()
    jupyter.shoot(view, IMAGES / "domain-view-xml-light.png")
    jupyter.set_theme("JupyterLab Dark")
    try:
        tag = code.locator(".x-tag").first.evaluate("el => getComputedStyle(el).color")
        assert tag == "rgb(108, 182, 255)", tag  # domain_view.css's dark tag colour
        jupyter.shoot(view, IMAGES / "domain-view-xml-dark.png")
        tab(view, "overview")
        jupyter.shoot(view, IMAGES / "domain-view-dark.png")
        tab(view, "XML")
    finally:  # the other tests' pages open light
        jupyter.set_theme("JupyterLab Light")
    area.fill(bad.replace("<on_crash>explode</on_crash>", "<on_crash>restart</on_crash>"))
    view.locator("button.ipyvirt-dv-define").click()
    expect(view.locator(".ipyvirt-dv-outcome")).to_have_text("define test: done")
    expect(area).to_be_hidden()
    expect(error).to_be_hidden()

    # the dashboard: a click on a name opens the domain under the table, one at a time
    dashboard = jupyter.panel.locator(".jp-CodeCell").nth(3)
    name = dashboard.locator("button.ipyvirt-open", has_text="test")
    name.click()
    opened = dashboard.locator(".ipyvirt-dv")
    expect(opened).to_have_count(1)
    expect(opened.locator(".ipyvirt-dv-name")).to_have_text("test")
    # the definition changed above: the view opened now shows it
    tab(opened, "XML")
    expect(opened.locator("pre.ipyvirt-dv-code")).to_contain_text("<on_crash>restart</on_crash>")
    name.click()
    expect(opened).to_have_count(1)
    # the checkboxes still select
    box = dashboard.locator("tr.ipyvirt-row input[type='checkbox']").first
    box.click()
    expect(box).to_be_checked()
    jupyter.shoot(
        dashboard.locator(".jp-OutputArea-output").first, IMAGES / "domain-view-dashboard-light.png"
    )

    # on a read-only connection: one line says what to do, and nothing offers to change
    ro = jupyter.panel.locator(".jp-CodeCell").nth(4).locator(".ipyvirt-dv")
    line = "read-only connection: %virt connect --rw (or libvirt.open) to change the domain"
    expect(ro.locator(".ipyvirt-dv-readonly")).to_have_text(line)
    tab(ro, "XML")
    expect(ro.locator("button", has_text="edit")).to_be_disabled()
    expect(ro.locator("button", has_text="edit")).to_have_attribute("title", line)
    tab(ro, "snapshots")
    expect(ro.locator("button.ipyvirt-dv-create")).to_be_disabled()
    expect(ro.locator("button.ipyvirt-dv-revert").first).to_be_disabled()
