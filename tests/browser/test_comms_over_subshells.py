"""ipyvirt's views under each of JupyterLab's ``commsOverSubshells`` settings.

JupyterLab 4.6 may send widget comm messages to kernel subshells (ipykernel 7): each on a
subshell thread of its own with ``perComm``, one per comm target with ``perCommTarget`` (the
default), none with ``disabled`` (ipykernel 7.4 then routes a kernel-opened comm's messages
back to where the comm last published from: the main shell, for ours). Whatever thread a
view's request arrives on, it is handled on the main thread (widgets/view.py) and its answer
reaches the screen; with ``perComm`` the kernel has a subshell thread per comm, not more.
"""

from __future__ import annotations

import ast
import re

import pytest
from playwright.sync_api import expect

from .lab import Lab, LabPage

pytestmark = pytest.mark.browser

SETUP = """
import threading, libvirt, ipyvirt
from ipyvirt.widgets import DomainTable, Timeline, Usage
c = libvirt.open("test:///default")
if c.lookupByName("test").state()[0] != libvirt.VIR_DOMAIN_RUNNING:
    c.lookupByName("test").resume()
arrived, handled = set(), set()
def note(view):
    view.on_msg(lambda w, content, buffers: arrived.add(threading.current_thread().name))
    handle = view._handle
    def on_main(do, content):
        handled.add(threading.current_thread().name)
        handle(do, content)
    view._handle = on_main
u = Usage(c, interval=0.5)
t = Timeline(c, minutes=1)
table = DomainTable(c)
note(u), note(t), note(table)
display(u, t, table)
""".strip()

REPORT = (
    "import comm; print(repr((sorted(arrived), sorted(handled), "
    "sum(th.name.startswith('subshell-') for th in threading.enumerate()), "
    "sorted(c.target_name for c in comm.get_comm_manager().comms.values()))))"
)


@pytest.mark.parametrize("setting", ["disabled", "perCommTarget", "perComm"])
def test_views_answer_over_every_routing(lab: Lab, jupyter: LabPage, setting: str) -> None:
    lab.set_user_setting(
        "@jupyterlab/apputils-extension:kernels-settings", {"commsOverSubshells": setting}
    )
    try:
        jupyter.open(lab.write_notebook(f"subshells-{setting}.ipynb", ["%load_ext ipyvirt", SETUP]))
        jupyter.run_all()
        # each view asked the kernel for its picture when it rendered, and got it
        usage = jupyter.panel.locator(".ipyvirt-usage-row[data-domain='test'] td.mem")
        usage.filter(has_text=re.compile(r"GiB|MiB")).wait_for(timeout=30_000)
        jupyter.panel.locator(".ipyvirt-timeline").get_by_text("test", exact=True).first.wait_for()
        # a comm's first message reaches the kernel before its subshell exists (it runs on
        # the main thread): second views of both widgets send theirs over the subshells
        jupyter.run_new_cell("display(u, t); print('again')")
        views = jupyter.panel.locator(".ipyvirt-usage-row[data-domain='test'] td.mem")
        views.nth(1).filter(has_text=re.compile(r"GiB|MiB")).wait_for(timeout=30_000)
        # the table's action: select the domain, suspend it, see its badge; then resume it
        rows = jupyter.panel.locator(".ipyvirt-table tr.ipyvirt-row")
        row = rows.filter(has=jupyter.page.locator("td", has_text=re.compile("^test$"))).first
        row.locator("input[type=checkbox]").click()
        jupyter.panel.locator(".ipyvirt-table button.ipyvirt-do-suspend").first.click()
        expect(row.locator(".ipyvirt-badge")).to_have_text("paused")
        jupyter.panel.locator(".ipyvirt-table button.ipyvirt-do-resume").first.click()
        expect(row.locator(".ipyvirt-badge")).to_have_text("running")
        arrived, handled, subshells, comms = ast.literal_eval(jupyter.run_new_cell(REPORT))
    finally:
        lab.set_user_setting("@jupyterlab/apputils-extension:kernels-settings", {})
    print(f"{setting}: {subshells} subshell threads for {len(comms)} views")
    assert handled == ["MainThread"], (setting, arrived, handled)
    assert comms == ["jupyter.widget"] * 3, comms  # one comm per view
    if setting == "disabled":
        assert (arrived, subshells) == (["MainThread"], 0)
    elif setting == "perComm":
        # one subshell per comm the page routes: the views', and one comm the page opens for
        # itself (4 for three views); nothing like one per widget part, as the old composite
        # widgets had (251 threads for one dashboard)
        assert 1 <= subshells <= len(comms) + 1, subshells
