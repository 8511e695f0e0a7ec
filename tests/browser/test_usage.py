"""The usage view in JupyterLab, light and dark: charts with axes and a legend, a table of
the latest figures, the source of the figures. The README's screenshots come from here
(docs/images/usage-light.png and usage-dark.png)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .lab import Lab, LabPage

pytestmark = pytest.mark.browser

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

# test:///default runs one domain, "test"; six more of other sizes give the charts lines to
# tell apart, and two to sum as "others" beyond the five drawn. Its CPU time stands still (0 %);
# its memory in use is half the current memory, which setMemory changes: a thread does, so
# that the memory lines move as a guest's balloon would.
SETUP = """
import math, re, threading, libvirt, ipyvirt
from ipyvirt.widgets import Usage
c = libvirt.open("test:///default")
xml = re.sub(r"<uuid>.*</uuid>", "", c.lookupByName("test").XMLDesc())
sizes = {"web": 2048, "db": 6144, "build": 3072, "cache": 1024, "mail": 512, "dns": 384}
for name, mib in sizes.items():
    one = re.sub(r"<name>.*</name>", f"<name>{name}</name>", xml)
    one = re.sub(r"<(memory|currentMemory)( [^>]*)?>\\d+<", rf"<\\1\\2>{mib * 1024}<", one)
    c.createXML(one)
stop = threading.Event()
def balloon():
    turn = 0
    while not stop.wait(0.5):
        turn += 1
        for i, (name, mib) in enumerate(sizes.items()):
            share = 0.65 + 0.35 * math.sin(turn / 4 + i * 1.3)
            c.lookupByName(name).setMemory(int(mib * 1024 * share))
threading.Thread(target=balloon, daemon=True).start()
""".strip()


def test_usage_charts_and_table_in_light_and_dark(lab: Lab, jupyter: LabPage) -> None:
    cells = ["%load_ext ipyvirt", SETUP, "u = Usage(c, interval=0.5, history=30)\nu"]
    jupyter.open(lab.write_notebook("usage.ipynb", cells))
    jupyter.run_all()
    view = jupyter.panel.locator(".jp-OutputArea .ipyvirt-usage").first
    view.wait_for()
    # CPU % needs two samples: then the table shows figures for the running domain "test"
    cpu = view.locator(".ipyvirt-usage-row[data-domain='test'] td.cpu")
    cpu.filter(has_text=re.compile(r"^\d+(\.\d)? %$")).wait_for(timeout=30_000)
    memory = view.locator(".ipyvirt-usage-row[data-domain='test'] td.mem").inner_text()
    assert memory.strip() == "1.00 GiB", memory  # half its current memory, 2 GiB
    status = view.locator(".ipyvirt-usage-status").inner_text()
    assert "per-domain calls, bulk stats lack cpu/memory on this driver" in status, status
    # headers over their columns: each header cell spans what its column's cells span
    edges = view.evaluate(
        """view => [...view.querySelectorAll('.ipyvirt-usage-table tr')].map(tr =>
             [...tr.children].map(c => [Math.round(c.getBoundingClientRect().left),
                                        Math.round(c.getBoundingClientRect().right)]))"""
    )
    assert len(edges) == 8 and all(row == edges[0] for row in edges), edges  # 7 rows + header
    assert len(edges[0]) == 5
    # two charts, each with value ticks carrying units, time ticks, and one line per series
    charts = view.locator("svg.ipyvirt-chart")
    assert charts.count() == 2
    cpu_ticks = charts.nth(0).locator(".ipyvirt-tick").all_text_contents()
    mem_ticks = charts.nth(1).locator(".ipyvirt-tick").all_text_contents()
    assert "0 %" in cpu_ticks and "now" in cpu_ticks and any(t.endswith(" s") for t in cpu_ticks)
    assert any(t.endswith("GiB") for t in mem_ticks), mem_ticks
    legend = view.locator(".ipyvirt-legend-item").all_inner_texts()
    assert len(legend) == 6 and legend[-1].strip() == "2 others, summed", legend
    assert charts.nth(1).locator(".ipyvirt-line path").count() == 6
    # the pictures show a full window
    jupyter.page.wait_for_function(
        "() => +document.querySelector('.ipyvirt-usage')?.dataset.frames >= 30",
        timeout=60_000,
    )
    IMAGES.mkdir(parents=True, exist_ok=True)
    jupyter.shoot(view, IMAGES / "usage-light.png")
    try:
        jupyter.set_theme("JupyterLab Dark")
        jupyter.shoot(view, IMAGES / "usage-dark.png")
        # the dark theme's colours reach the chart: its ticks are light on dark
        # found and measured in one step: a redraw replaces the charts (and their ticks)
        fill = view.evaluate("v => getComputedStyle(v.querySelector('.ipyvirt-tick')).fill")
        assert _luminance(fill) > 0.5, fill
    finally:
        jupyter.set_theme("JupyterLab Light")  # the setting outlives the page


def _luminance(colour: str) -> float:
    r, g, b = (int(v) / 255 for v in re.findall(r"\d+", colour)[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_the_dashboards_usage_tab_and_its_empty_state(lab: Lab, jupyter: LabPage) -> None:
    flag = lab.root / "stop-the-domain"
    cells = [
        "%load_ext ipyvirt",
        "import os, threading\n"
        "c = %virt connect --rw\n"
        "def stop_when_told():  # the test says when: once it has seen the domain's figures\n"
        f"    while not os.path.exists({str(flag)!r}):\n"
        "        threading.Event().wait(0.1)\n"
        "    c.domain('test').destroy()\n"
        "threading.Thread(target=stop_when_told, daemon=True).start()",
        "%virt dashboard",
    ]
    jupyter.open(lab.write_notebook("dashboard-usage.ipynb", cells))
    jupyter.run_all()
    tabs = jupyter.panel.locator(".jp-OutputArea .lm-TabBar-tab")
    tabs.filter(has_text=re.compile(r"^\s*usage\s*$")).click()
    view = jupyter.panel.locator(".jp-OutputArea .ipyvirt-usage").first
    cpu = view.locator(".ipyvirt-usage-row[data-domain='test'] td.cpu")
    cpu.filter(has_text=re.compile(r"^\d+(\.\d)? %$")).wait_for(timeout=30_000)
    try:
        flag.touch()
        view.locator(".ipyvirt-empty").filter(
            has_text="No running domain on test:///default: start one to see its usage"
        ).wait_for(timeout=30_000)
        assert view.locator(".ipyvirt-usage-row").count() == 0
    finally:
        os.unlink(flag)
