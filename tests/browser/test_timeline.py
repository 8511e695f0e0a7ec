"""The timeline in a real JupyterLab, light and dark: lanes, spans in the badges' colours,
ticks that say what and when, the empty states. The README's screenshots come from here
(docs/images/timeline-light.png, timeline-dark.png)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator

from .lab import Lab, LabPage

pytestmark = pytest.mark.browser

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

# a few domains on the demo hypervisor, and a worker that changes them for a while: what
# the timeline draws happens while it is on screen (no cell runs meanwhile)
SETUP = """\
import re, threading, time, libvirt, ipyvirt
from ipyvirt.widgets import Timeline
c = libvirt.open("test:///default")
xml = re.sub(r"<uuid>.*</uuid>", "", c.lookupByName("test").XMLDesc())
for name in ("web-1", "web-2", "db", "build-9", "build-10"):
    c.defineXML(re.sub(r"<name>.*</name>", f"<name>{name}</name>", xml))
for name in ("web-1", "web-2", "db"):
    c.lookupByName(name).create()
conn = ipyvirt.Connection(c)
c.lookupByName("test").suspend()  # in the connection's history: the timeline starts from it
"""

OPS = """\
ops = [("web-1", "suspend"), ("build-9", "create"), ("db", "suspend"), ("web-1", "resume"),
       ("build-10", "create"), ("test", "resume"), ("db", "resume"), ("build-9", "destroy"),
       ("web-2", "suspend"), ("build-10", "suspend"), ("web-2", "resume"),
       ("build-10", "resume"), ("build-9", "create"), ("db", "destroy")]
def work():
    for name, op in ops:
        time.sleep(1.2)
        getattr(c.lookupByName(name), op)()
threading.Thread(target=work, daemon=True).start()
tl = Timeline(conn, minutes=1)
tl
"""

EMPTY = """\
open("/tmp/ipyvirt-timeline-empty.xml", "w").write("<node/>")
Timeline(libvirt.open("test:///tmp/ipyvirt-timeline-empty.xml"))
"""

QUIET = """\
Timeline(libvirt.open("test:///default"), history=False, minutes=2)
"""


def ticks(timeline: Locator) -> int:
    return timeline.locator(".ipyvirt-tl-tick").count()


def wait_for_ticks(jupyter: LabPage, timeline: Locator, n: int, timeout: float = 60) -> None:
    deadline = jupyter.page.evaluate("Date.now()") + timeout * 1000
    while ticks(timeline) < n:
        assert jupyter.page.evaluate("Date.now()") < deadline, (
            f"{ticks(timeline)} ticks on the timeline, not {n}: {timeline.inner_text()}"
        )
        jupyter.page.wait_for_timeout(200)


def test_timeline_light_and_dark(lab: Lab, jupyter: LabPage) -> None:
    jupyter.open(lab.write_notebook("timeline.ipynb", ["%load_ext ipyvirt", SETUP, OPS]))
    jupyter.run_all()
    timeline = jupyter.panel.locator(".ipyvirt-timeline").first
    timeline.wait_for()
    lanes = timeline.locator(".ipyvirt-tl-row[data-domain]")
    names = [lanes.nth(i).get_attribute("data-domain") for i in range(lanes.count())]
    assert names == ["build-9", "build-10", "db", "test", "web-1", "web-2"]
    # history: test was suspended before the timeline existed
    test_lane = timeline.locator(".ipyvirt-tl-row[data-domain='test']")
    assert test_lane.locator(".ipyvirt-tl-span.ipyvirt-state-paused").count() == 1
    wait_for_ticks(jupyter, timeline, 15)  # the history's one, then the worker's 14
    shutoff = timeline.locator(".ipyvirt-tl-row[data-domain='db'] .ipyvirt-tl-badge")
    shutoff.locator(".ipyvirt-state-shutoff").wait_for()
    title = timeline.locator(".ipyvirt-tl-row[data-domain='web-1'] .ipyvirt-tl-tick").first
    assert re.fullmatch(
        r"web-1: suspended \(paused\) at \d\d:\d\d:\d\d", title.get_attribute("title") or ""
    )
    head = timeline.locator(".ipyvirt-tl-title").inner_text()
    assert head == "6 domains on test:///default, last 1 minute"
    assert timeline.locator(".ipyvirt-tl-note").is_hidden()
    # a span has the badge's colour (common.css), not a colour of its own
    colours = timeline.evaluate(
        """el => {
          const span = el.querySelector('.ipyvirt-tl-span.ipyvirt-state-paused');
          const badge = el.querySelector('.ipyvirt-badge.ipyvirt-state-paused')
            || document.body.appendChild(stateBadgeProbe());
          function stateBadgeProbe() {
            const b = document.createElement('span');
            b.className = 'ipyvirt-badge ipyvirt-state-paused';
            el.appendChild(b);
            return b;
          }
          return [getComputedStyle(span).backgroundColor, getComputedStyle(badge).backgroundColor];
        }"""
    )
    assert colours[0] == colours[1], colours
    IMAGES.mkdir(parents=True, exist_ok=True)
    jupyter.shoot(timeline, IMAGES / "timeline-light.png")
    jupyter.set_theme("JupyterLab Dark")
    try:
        dark = timeline.evaluate(
            "el => getComputedStyle(el.querySelector('.ipyvirt-tl-span.ipyvirt-state-running'))"
            ".backgroundColor"
        )
        assert dark == "rgb(18, 61, 30)", dark  # common.css's dark running
        jupyter.shoot(timeline, IMAGES / "timeline-dark.png")
        jupyter.screenshot("timeline-dark-page")
    finally:  # the other tests' pages open light
        jupyter.set_theme("JupyterLab Light")


def test_timeline_says_when_there_is_nothing_to_show(lab: Lab, jupyter: LabPage) -> None:
    jupyter.open(
        lab.write_notebook("timeline-empty.ipynb", ["%load_ext ipyvirt", SETUP, EMPTY, QUIET])
    )
    jupyter.run_all()
    jupyter.wait_for_output(
        "No domain on test:///tmp/ipyvirt-timeline-empty.xml yet", selector=".ipyvirt-tl-note"
    )
    jupyter.wait_for_output("No events in the last 2 minutes", selector=".ipyvirt-tl-note")
    jupyter.screenshot("timeline-empty")
