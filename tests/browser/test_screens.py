"""Guests' screens in a real JupyterLab: the domain table's thumbnail column (a picture for
each running or paused row, a dash for a shut-off one, every row one height, the columns
under their headers) asks for pictures only while its page is visible; the domain view's
screen tab shows the picture full size only while that tab is chosen. The screenshots in
docs/images/domain-table-thumbnails-*.png and domain-view-screen-*.png come from here."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Locator, expect

from .lab import Lab, LabPage

pytestmark = pytest.mark.browser

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

# test:///default in the kernel (its driver's screen: a fixed 1120x832 PNG), with a guest
# running, one paused and one shut off beside "test"
SETUP = """\
import re, libvirt
from ipyvirt.widgets import DomainTable, DomainView
c = libvirt.open("test:///default")
xml = re.sub(r"<uuid>.*</uuid>", "", c.lookupByName("test").XMLDesc())
for name, state in (("web-1", "running"), ("web-2", "paused"), ("db-1", "shutoff")):
    dom = c.defineXML(xml.replace("<name>test</name>", f"<name>{name}</name>"))
    if state != "shutoff":
        dom.create()
    if state == "paused":
        dom.suspend()
"""

HIDE = """() => {
  Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}"""
SHOW = """() => {
  delete document.visibilityState;
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def shoot_both(jupyter: LabPage, view: Locator, name: str) -> None:
    """*view* as docs/images/<name>-light.png and -dark.png."""
    jupyter.shoot(view, IMAGES / f"{name}-light.png")
    jupyter.set_theme("JupyterLab Dark")
    try:
        view.page.wait_for_timeout(300)  # the theme's colours on the view's own elements
        jupyter.shoot(view, IMAGES / f"{name}-dark.png")
    finally:
        jupyter.set_theme("JupyterLab Light")


def test_thumbnails_in_the_table_and_the_screen_in_the_domain_view(
    lab: Lab, jupyter: LabPage
) -> None:
    cells = ["%load_ext ipyvirt", SETUP, "t = DomainTable(c, thumbnails=True)\nt"]
    jupyter.open(lab.write_notebook("screens.ipynb", cells))
    jupyter.run_all()
    table = jupyter.panel.locator(".ipyvirt-table")
    rows = table.locator("tr.ipyvirt-row")
    expect(rows).to_have_count(4)
    expect(table.locator("th.ipyvirt-thumb")).to_have_text("screen")
    pictures = table.locator("td.ipyvirt-thumb img")
    expect(pictures).to_have_count(3)  # test, web-1, web-2 (paused)
    db1 = rows.filter(has=table.page.locator("td", has_text="db-1"))
    expect(db1.locator("td.ipyvirt-thumb")).to_have_text("\u2013")  # a dash
    sizes = pictures.evaluate_all("imgs => imgs.map((i) => [i.naturalWidth, i.naturalHeight])")
    assert sizes == [[1120, 832]] * 3
    expect(pictures.first).to_have_attribute("alt", "screen of test")
    # one height for every row, picture or dash; each cell under its header
    # (a row's box also holds half of each border it shares: the first, half the header's)
    cells = table.locator("td.ipyvirt-thumb")
    heights = cells.evaluate_all("tds => tds.map((td) => td.clientHeight)")
    assert len(set(heights)) == 1, heights
    spans = rows.evaluate_all("rs => rs.map((r) => r.getBoundingClientRect().height)")
    assert max(spans) - min(spans) <= 1, spans
    lefts = table.evaluate(
        """t => [...t.querySelectorAll('thead th')].map((th, i) =>
             [th.getBoundingClientRect().left,
              t.querySelector(`tbody tr td:nth-child(${i + 1})`).getBoundingClientRect().left])"""
    )
    assert all(abs(a - b) < 1 for a, b in lefts), lefts
    # the test driver's picture is the same each time: sent once per row
    assert jupyter.run_new_cell("print(t._thumbs.sent)") == "3"
    shoot_both(jupyter, table, "domain-table-thumbnails")

    # a hidden page asks for nothing; shown again, it asks at once
    jupyter.page.evaluate(HIDE)
    jupyter.page.wait_for_timeout(500)  # an ask sent just before reaches the kernel
    before = jupyter.run_new_cell("print(t._thumbs.asks)")
    jupyter.page.wait_for_timeout(6000)  # more than the 5 s between asks
    assert jupyter.run_new_cell("print(t._thumbs.asks)") == before
    jupyter.page.evaluate(SHOW)
    jupyter.page.wait_for_timeout(500)
    assert int(jupyter.run_new_cell("print(t._thumbs.asks)")) > int(before)

    # the domain view: its screen tab, full size, read only while chosen
    jupyter.run_new_cell("v = DomainView(c, 'test'); v")
    view = jupyter.panel.locator(".ipyvirt-dv").last
    view.wait_for()
    view.locator("button.ipyvirt-dv-tab[data-tab='screen']").click()
    screen = view.locator("img.ipyvirt-dv-screen")
    expect(screen).to_be_visible()
    expect(screen).to_have_attribute("alt", "the screen of test, 1120x832")
    assert screen.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [1120, 832]
    assert jupyter.run_new_cell("print(v.screen.wanted)") == "True"
    view.locator("button.ipyvirt-dv-tab[data-tab='screen']").scroll_into_view_if_needed()
    shoot_both(jupyter, view, "domain-view-screen")
    view.locator("button.ipyvirt-dv-tab[data-tab='overview']").click()
    assert jupyter.run_new_cell("print(v.screen.wanted)") == "False"
    assert jupyter.errors() == []
