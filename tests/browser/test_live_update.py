"""An event that another process causes changes a widget on screen, in a real JupyterLab.

No cell runs after the notebook's first run: the label changes because ipyvirt delivers the
lifecycle event on the kernel's main loop between cells, and the widget syncs itself.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from .lab import Lab, LabPage
from libvirtd import Libvirtd

pytestmark = [pytest.mark.browser, pytest.mark.daemon]


def notebook(uri: str) -> list[str]:
    return [
        "%load_ext ipyvirt",
        "import ipywidgets, libvirt, ipyvirt\n"
        f"conn = ipyvirt.Connection(uri={uri!r})\n"
        "running = conn.conn.lookupByName('test').state()[0] == libvirt.VIR_DOMAIN_RUNNING",
        "state = ipywidgets.Label('running' if running else 'not running')\n"
        "state.add_class('domain-state')\n"
        "def show(event):\n"
        "    state.value = event.name\n"
        "conn.subscribe(show, families=['domain'], kinds=['lifecycle'], subject='test')\n"
        "state",
    ]


# Run in a process of its own: the kernel can only learn of it from the daemon.
ACT = """
import sys, libvirt
conn = libvirt.open(sys.argv[1])
dom = conn.lookupByName("test")
state = dom.state()[0]
if sys.argv[2] == "suspend":
    dom.suspend()
elif sys.argv[2] == "resume":
    dom.resume()
elif state == libvirt.VIR_DOMAIN_PAUSED:  # "ensure-running"
    dom.resume()
elif state != libvirt.VIR_DOMAIN_RUNNING:
    dom.create()
conn.close()
"""


def act_elsewhere(uri: str, action: str) -> None:
    """suspend, resume or ensure-running the domain "test", from another process."""
    done = subprocess.run(
        [sys.executable, "-c", ACT, uri, action], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{action} in another process failed:\n{done.stderr}"


def test_the_label_follows_the_domain_with_no_cell_running(
    libvirtd: Libvirtd, lab: Lab, jupyter: LabPage
) -> None:
    uri = libvirtd.test_uri
    act_elsewhere(uri, "ensure-running")  # the daemon's test driver is shared by every test
    jupyter.open(lab.write_notebook("live-update.ipynb", notebook(uri)))
    jupyter.run_all()
    jupyter.wait_for_output("running", selector=".domain-state", exact=True)
    jupyter.screenshot("live-update-1-running")
    counts = jupyter.execution_counts()
    try:
        act_elsewhere(uri, "suspend")
        jupyter.wait_for_output("suspended", selector=".domain-state", exact=True)
        jupyter.screenshot("live-update-2-suspended")
        act_elsewhere(uri, "resume")
        jupyter.wait_for_output("resumed", selector=".domain-state", exact=True)
        jupyter.screenshot("live-update-3-resumed")
    finally:
        act_elsewhere(uri, "ensure-running")
    assert jupyter.execution_counts() == counts, "a cell ran while the label changed"
    assert jupyter.kernel_status() == "idle"
