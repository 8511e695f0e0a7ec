"""The event log and the loop monitor as JupyterLab draws them, in the light and dark themes.

Each is one comm, drawn by its own module: a header over aligned columns, the empty states in
words, the filters as requests to the kernel. The screenshots in docs/images/ come from here
(event-log-{light,dark}.png, loop-monitor-{light,dark}.png).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator

from .lab import Lab, LabPage
from libvirtd import Libvirtd

pytestmark = [pytest.mark.browser, pytest.mark.daemon]

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}


def notebook(daemon_uri: str) -> list[str]:
    return [
        "%load_ext ipyvirt\nconn = %virt connect --rw\n"
        f"daemon = %virt connect {daemon_uri} --rw --name daemon",
        # the events come from cell 3, before the logs of cell 4 are made; this one misses
        # them (it does not start from the history) and says so
        "from ipyvirt.widgets import EventLog, LoopMonitor",
        # events before the log is made: it starts from the connection's history
        "XML = (\"<domain type='test'><name>{}</name><memory unit='MiB'>256</memory>\"\n"
        '       "<vcpu>1</vcpu><os><type>hvm</type></os></domain>")\n'
        "dom = conn.conn.lookupByName('test')\n"
        "dom.suspend(); dom.resume()\n"
        "for name in ('web-1', 'web-2', 'database'):\n"
        "    conn.conn.defineXML(XML.format(name))\n"
        "conn.conn.lookupByName('web-1').create()\n"
        "net = conn.conn.networkLookupByName('default')\n"
        "net.destroy(); net.create()\n"
        "conn.conn.lookupByName('web-1').destroy()\n"
        "import asyncio\nawait asyncio.sleep(0.2)  # the events reach the history",
        "log = EventLog(conn, history=True)\nempty = EventLog(conn)\ndisplay(log, empty)",
        # a domain of its own on the daemon paused and resumed over and over: the events
        # reach the kernel on its watched socket, the rates move (the test destroys it)
        "import threading, libvirt\n"
        "chatty = daemon.conn.createXML(XML.format('chatter'))\n"
        "def chatter():\n"
        "    try:\n"
        "        while True:\n"
        "            chatty.suspend(); chatty.resume()\n"
        "            time.sleep(0.05)\n"
        "    except libvirt.libvirtError:\n"
        "        pass  # destroyed: done\n"
        "import time\nthreading.Thread(target=chatter, daemon=True).start()\n"
        "monitor = LoopMonitor(interval=0.5)\nmonitor",
        "dash = %virt dashboard\ndash",
    ]


def destroy_elsewhere(uri: str, name: str) -> None:
    """Destroy the transient domain *name* on the daemon if it is there, from another
    process."""
    code = (
        "import sys, libvirt\n"
        "conn = libvirt.open(sys.argv[1])\n"
        "for dom in conn.listAllDomains():\n"
        "    if dom.name() == sys.argv[2]:\n"
        "        dom.destroy()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, uri, name], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"destroying {name} failed:\n{done.stderr}"


def view_of(jupyter: LabPage, cell: int, selector: str) -> Locator:
    """The view *selector* in the outputs of code cell *cell* (0-based)."""
    return jupyter.panel.locator(".jp-CodeCell").nth(cell).locator(selector)


def columns_line_up(table: Locator) -> list[tuple[str, float, float]]:
    """(header, its left edge, the first row's cell's left edge) for each column."""
    return [
        tuple(x)
        for x in table.evaluate(
            """t => [...t.tHead.rows[0].cells].map((th, i) => [th.innerText,
                 th.getBoundingClientRect().left,
                 t.tBodies[0].rows[0].cells[i]?.getBoundingClientRect().left ?? -1])"""
        )
    ]


def shoot(view: Locator, name: str) -> None:
    LabPage.shoot(view, IMAGES / f"{name}.png")


def texts(locator: Locator) -> list[str]:
    return [t.strip() for t in locator.all_inner_texts()]


HEADER = ["time", "family", "subject", "event", "detail"]


def check_logs(log: Locator, empty: Locator) -> None:
    """The empty log says why it is empty; the other starts from the history, aligned."""
    says = "No event yet on test:///default: start, stop or change a domain and it shows here."
    empty.locator(".ipyvirt-empty", has_text=says).wait_for()
    log.locator("tbody tr[data-family='network']").first.wait_for()
    assert texts(log.locator("thead th")) == HEADER
    assert "events kept, 0 dropped" in log.locator(".ipyvirt-status").inner_text()
    lined_up = columns_line_up(log.locator("table"))
    assert all(abs(head - cell) < 1 for _, head, cell in lined_up), lined_up


def check_monitor(monitor: Locator) -> None:
    """Rates once it has two readings, a styled header, the interval in words."""
    monitor.locator(".ipyvirt-lm-note", has_text="rates over the last").wait_for()
    watches = monitor.locator("table").first
    assert texts(watches.locator("thead th"))[:4] == ["watch", "fd", "events", "dispatches"]
    # looked up and measured in one step: the monitor redraws its tables every interval, and
    # a header found in one step is detached (no computed style: "") by the next (CI, 1 run)
    padding: Any = monitor.evaluate(
        "m => getComputedStyle(m.querySelector('table th')).paddingLeft"
    )
    assert padding == "8px", padding  # the view's style applies: headers do not run together
    assert watches.locator("tbody td.num").count() > 0, "no fd watch on a daemon connection"
    busy = monitor.locator(".ipyvirt-tile", has_text="dispatches/s")
    busy.locator(".ipyvirt-tile-value", has_text=re.compile("^[1-9]")).wait_for()
    intervals = texts(monitor.locator(".ipyvirt-interval"))
    words = ("disabled", "every iteration")
    assert intervals and all(i.endswith(" ms") or i in words for i in intervals), intervals


def check_filters(log: Locator) -> None:
    """The filters are requests: the kernel filters, the view shows its answer."""
    log.locator("select").select_option("network")
    log.locator("tbody tr[data-family='domain']").first.wait_for(state="detached")
    assert set(texts(log.locator("tbody td.ipyvirt-ev-family"))) == {"network"}
    log.locator("input").fill("nothing-is-called-this")
    nothing = 'No event matches family "network" and subject containing "nothing-is-'
    log.locator(".ipyvirt-empty", has_text=nothing).wait_for()
    log.locator("input").fill("")
    log.locator("select").select_option("all families")
    log.locator("tbody tr[data-family='domain']").first.wait_for()


def test_event_log_and_loop_monitor_in_both_themes(
    libvirtd: Libvirtd, lab: Lab, jupyter: LabPage
) -> None:
    jupyter.open(lab.write_notebook("log-and-monitor.ipynb", notebook(libvirtd.test_uri)))
    try:
        jupyter.run_all()
        log = view_of(jupyter, 3, ".ipyvirt-event-log").nth(0)
        empty = view_of(jupyter, 3, ".ipyvirt-event-log").nth(1)
        monitor = view_of(jupyter, 4, ".ipyvirt-loop-monitor")
        check_logs(log, empty)
        check_filters(log)
        check_monitor(monitor)
        try:
            for theme in ("light", "dark"):
                jupyter.set_theme(THEMES[theme])
                shoot(log, f"event-log-{theme}")
                shoot(monitor, f"loop-monitor-{theme}")
                shoot(empty, f"event-log-empty-{theme}")
        finally:
            jupyter.set_theme(THEMES["light"])  # the lab's settings outlive this test
        # in the dashboard's tabs too (views first drawn while their tab is hidden)
        tabs = view_of(jupyter, 5, ".lm-TabBar-tab")
        tabs.filter(has_text=re.compile("^events$")).click()
        assert texts(view_of(jupyter, 5, ".ipyvirt-event-log thead th")) == HEADER
        tabs.filter(has_text=re.compile("^event loop$")).click()
        view_of(jupyter, 5, ".ipyvirt-loop-monitor .ipyvirt-interval").first.wait_for()
        # the chatter's lane, paused and resumed 40 times a second: a pixel shows one span
        # and one tick, so the page draws a bounded picture (it drew every mark, 10 times a
        # second, and the page stopped answering clicks for seconds)
        strip = view_of(jupyter, 5, ".ipyvirt-tl-row[data-domain='chatter'] .ipyvirt-tl-strip")
        marks = strip.evaluate("s => s.children.length")
        assert 0 < marks <= 300, marks
        assert jupyter.errors() == []
    finally:
        destroy_elsewhere(libvirtd.test_uri, "chatter")
