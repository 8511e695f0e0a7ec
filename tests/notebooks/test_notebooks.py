"""The tutorial notebooks are tests: nbval runs each one in a fresh kernel and compares every
cell's outputs with the ones stored in it (not ``--nbval-lax``), after notebooks/sanitize.cfg
has blanked out times, addresses, UUIDs, thread numbers and durations.

To run them by hand, from the repository root::

    .venv/bin/python -m pytest --nbval notebooks --nbval-sanitize-with notebooks/sanitize.cfg

To refresh a notebook's stored outputs after changing it (without $IPYVIRT_DAEMON_URI or
$IPYVIRT_QEMU_URI: the stored outputs are those of a machine without a daemon; widget state
is not stored, as JupyterLab does not store it by default)::

    .venv/bin/jupyter nbconvert --to notebook --execute --inplace \
        --ExecutePreprocessor.store_widget_state=False notebooks/NAME.ipynb
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NBVAL = ["--nbval", "notebooks", "--nbval-sanitize-with", "notebooks/sanitize.cfg"]


def code_cells(notebook: Path) -> list[dict[str, object]]:
    cells = json.loads(notebook.read_text())["cells"]
    return [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_the_tutorials_are_there() -> None:
    names = [nb.name for nb in NOTEBOOKS]
    assert names == [
        "01-getting-started.ipynb",
        "02-live-dashboard.ipynb",
        "03-writing-your-own-eventimpl.ipynb",
        "04-async-events.ipynb",
        "05-real-hypervisors.ipynb",
        "06-recorded-events.ipynb",
        "07-explore-a-hypervisor.ipynb",
        "08-a-domain-in-depth.ipynb",
        "09-a-guest-console.ipynb",
        "10-a-fleet.ipynb",
    ]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda nb: nb.name)
def test_every_cell_has_stored_outputs_to_compare(notebook: Path) -> None:
    """nbval compares nothing for a cell that was never run: it passes silently."""
    unrun = [i for i, cell in enumerate(code_cells(notebook)) if cell["execution_count"] is None]
    assert not unrun, f"code cells {unrun} were never run: execute and save {notebook.name}"


@pytest.mark.kernel
def test_nbval_passes_on_every_notebook(tmp_path: Path) -> None:
    report = tmp_path / "nbval.xml"
    # The stored outputs are those of test:///default without a daemon (05 skips its daemon
    # cells when IPYVIRT_DAEMON_URI is unset, 09 shows the test driver's one line where its
    # guest's console would be without IPYVIRT_QEMU_URI; test_console_tutorial.py runs it
    # with the guest): the run must see the same.
    unset = ("IPYVIRT_DAEMON_URI", "IPYVIRT_QEMU_URI", "PYTEST_ADDOPTS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["LIBVIRT_DEFAULT_URI"] = "test:///default"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *NBVAL, f"--junitxml={report}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
    cases = ET.parse(report).getroot().iter("testcase")
    ran: dict[str, int] = {}
    for case in cases:
        outcome = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        assert not outcome, f"{case.get('classname')} {case.get('name')}: {outcome}"
        notebook = case.get("classname", "").removeprefix("notebooks.")
        ran[notebook] = ran.get(notebook, 0) + 1
    assert ran == {nb.name: len(code_cells(nb)) for nb in NOTEBOOKS}, run.stdout[-5_000:]
