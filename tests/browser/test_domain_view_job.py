"""A real QEMU guest's running job in the domain view, in JupyterLab: a core dump, paced by
this test (:class:`guest.PacedDump`), shows its progress on the overview and then libvirt's
job-completed event, with no cell running."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from guest import PacedDump, QemuGuest

from .lab import Lab, LabPage

pytestmark = [pytest.mark.browser, pytest.mark.qemu]

UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
RUNNING = re.compile(r"dump job running, ([\d.]+) (B|KiB|MiB|GiB) of [\d.]+ [KMG]iB, .*elapsed")


def processed(text: str) -> float:
    """The bytes done that the job line says ("dump job running, 2.0 MiB of ...")."""
    found = RUNNING.match(text)
    assert found, text
    return float(found[1]) * UNITS[found[2]]


def test_a_running_jobs_progress_then_its_completion(
    qemu_guest: QemuGuest, lab: Lab, jupyter: LabPage, tmp_path: Path
) -> None:
    cells = [
        "%load_ext ipyvirt",
        f"%virt connect {qemu_guest.uri} --name qemu",
        f"%virt show {qemu_guest.name} --name qemu",
    ]
    jupyter.open(lab.write_notebook("domain-view-job.ipynb", cells))
    jupyter.run_all()
    view = jupyter.panel.locator(".ipyvirt-dv").first
    view.wait_for()
    job = view.locator(".ipyvirt-dv-job")
    expect(job).to_have_text("no job running")
    counts = jupyter.execution_counts()
    dump = PacedDump(qemu_guest.uri, qemu_guest.name, tmp_path)
    try:
        dump.start()
        dump.take(256 * 1024)  # QEMU blocks once the pipe is full: the job waits for the view
        expect(job).to_have_text(RUNNING, timeout=30_000)
        first = processed(job.inner_text())
        dump.take(2 * 1024 * 1024)
        # more done: a later poll says more bytes (the 2 s polls go on while the job waits)
        for _ in range(300):
            if processed(job.inner_text()) > first:
                break
            view.page.wait_for_timeout(100)
        assert processed(job.inner_text()) > first, job.inner_text()
        dump.finish()
    finally:
        dump.close()
    done = view.locator(".ipyvirt-dv-completed")
    expect(done).to_have_text(
        re.compile(r"dump job completed at \d\d:\d\d:\d\d, after \d+\.\d s, [\d.]+ [KMG]iB moved"),
        timeout=30_000,
    )
    expect(job).to_have_text("no job running", timeout=30_000)
    assert jupyter.execution_counts() == counts, "a cell ran while the job went on"
