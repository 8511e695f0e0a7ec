"""notebooks/09-a-guest-console.ipynb with a real guest: the path its stored outputs do not show.

The stored outputs (compared by nbval in test_notebooks.py) are those of a machine without
QEMU, where each console cell prints the test driver's one line. Here the notebook runs in a
fresh kernel with ``$IPYVIRT_QEMU_URI`` set to the tests' QEMU libvirtd: it starts its guest,
types into its console, reconnects across a reboot, takes it over with force, frees it, and
removes the guest. No cell may raise, and each says what the guest answered.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import libvirt
import nbformat
import pytest

from guest import GuestImage
from ipyvirt.testing.libvirtd import Libvirtd

pytestmark = [pytest.mark.qemu, pytest.mark.kernel]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "09-a-guest-console.ipynb"


def _printed(notebook: nbformat.NotebookNode) -> list[str]:
    """Each code cell's printed text, its outputs joined."""
    texts = []
    for cell in notebook.cells:
        if cell.cell_type == "code":
            texts.append("".join(o.get("text", "") for o in cell.outputs))
    return texts


def test_the_console_tutorial_runs_on_a_real_guest(
    qemu_host: None, libvirtd_qemu: Libvirtd, guest_image: GuestImage, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env["IPYVIRT_QEMU_URI"] = libvirtd_qemu.qemu_uri
    out = tmp_path / "09.ipynb"
    run = subprocess.run(
        [
            *(sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute"),
            *("--ExecutePreprocessor.timeout=300", f"--output={out}", str(NOTEBOOK)),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-10_000:]
    printed = _printed(nbformat.read(out, as_version=4))
    setup, opened, hello, answer, lines = printed[:5]
    assert setup.startswith("a guest booting on QEMU: ipyvirt-guest-"), setup
    name = setup.split()[5]
    assert opened == ""  # the console widget, no error line
    assert hello == "hello from Linux\n"
    assert answer == "the answer: 42\n"
    assert "'42'" in lines
    held, taken, rebooted, freed, removed = printed[-5:]
    assert held == (
        f"another client holds the console of {name}: open it with --force "
        "(force=True) to take it over\n"
    )
    assert taken == (
        "the first console: disconnected: console closed (taken over by another client?)\n"
    )
    assert rebooted == f"disconnected: domain stopped\nconnected to {name}\n"
    # what came with the console (the stream's callback, its status events) went with it
    came, *rest = freed.splitlines()
    assert came.endswith("timers and watches came with it, 0 left"), freed
    assert int(came.split()[0]) > 0, freed
    assert rest == ["closed | its stream: None", "connected to the guest"], freed
    assert removed == f"{name} removed\n"
    conn = libvirt.open(libvirtd_qemu.qemu_uri)
    try:
        assert name not in [d.name() for d in conn.listAllDomains()]
    finally:
        conn.close()
