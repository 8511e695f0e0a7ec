"""The domain table on screen follows the hypervisor, with no cell running; the dashboard
screenshots in the README come from here (docs/images/dashboard-{light,dark}.png)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .lab import Lab, LabPage
from .test_live_update import act_elsewhere
from libvirtd import Libvirtd

pytestmark = [pytest.mark.browser, pytest.mark.daemon]

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def test_the_domain_table_follows_the_domain(
    libvirtd: Libvirtd, lab: Lab, jupyter: LabPage
) -> None:
    uri = libvirtd.test_uri
    act_elsewhere(uri, "ensure-running")
    cells = [
        "%load_ext ipyvirt",
        f"%virt connect {uri} --rw --name daemon",
        "%virt dashboard",
    ]
    jupyter.open(lab.write_notebook("dashboard.ipynb", cells))
    jupyter.run_all()
    row = '.ipyvirt-row[data-state="{}"]'
    jupyter.wait_for_output("test", selector=row.format("running"))
    jupyter.screenshot("dashboard")
    counts = jupyter.execution_counts()
    try:
        act_elsewhere(uri, "suspend")
        jupyter.wait_for_output("paused", selector=row.format("paused"), timeout=10)
        jupyter.screenshot("dashboard-paused")
        dashboard = jupyter.panel.locator(".jp-CodeCell").nth(2).locator(".jp-OutputArea-output")
        try:
            for theme in ("Light", "Dark"):
                jupyter.set_theme(f"JupyterLab {theme}")
                jupyter.shoot(dashboard, IMAGES / f"dashboard-{theme.lower()}.png")
        finally:
            jupyter.set_theme("JupyterLab Light")  # the lab's settings outlive this test
        act_elsewhere(uri, "resume")
        jupyter.wait_for_output("running", selector=row.format("running"), timeout=10)
    finally:
        act_elsewhere(uri, "ensure-running")
    assert jupyter.execution_counts() == counts, "a cell ran while the table changed"
