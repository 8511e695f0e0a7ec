"""A real job on a real QEMU guest, as a DomainView sees it through the ipyvirt loop: its
progress (virDomainGetJobStats, polled while shown) and libvirt's job-completed event.

The job is a core dump into a FIFO this test reads (:class:`guest.PacedDump`): QEMU writes
only as fast as the test reads, so the job waits for the view to see each step. libvirt
emits VIR_DOMAIN_EVENT_ID_JOB_COMPLETED for it (``qemuMigrationSrcToFile`` calls
``qemuDomainEventEmitJobCompleted``); a ``dom.save()`` would too, but the saved domain stops.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from guest import PacedDump, QemuGuest

from kernel import Kernel

pytestmark = [pytest.mark.qemu, pytest.mark.kernel]


def wait_in_kernel(k: Kernel, condition: str, what: str) -> None:
    """Await *condition* (an expression) in the kernel; its main loop runs meanwhile."""
    done = k.execute(
        "import asyncio\n"
        "for _ in range(2000):\n"
        f"    if {condition}: break\n"
        "    await asyncio.sleep(0.02)\n"
        f"_ok = bool({condition})\n"
    ).ok()
    assert k.value("_ok"), f"not seen in 40 s: {what} ({done.stderr})"


def test_a_dumps_progress_and_its_completion_event(qemu_guest: QemuGuest, tmp_path: Path) -> None:
    k = Kernel()
    dump = PacedDump(qemu_guest.uri, qemu_guest.name, tmp_path)
    try:
        k.execute(
            "%load_ext ipyvirt\n"
            "import ipyvirt\n"
            "from ipyvirt.widgets import DomainView\n"
            f"conn = ipyvirt.Connection(uri={qemu_guest.uri!r})\n"
            f"v = DomainView(conn, {qemu_guest.name!r}, interval=0.05)\n"
            "jobs = []\n"
            "v.observe(lambda change: jobs.append(change.new), 'job')\n"
            "running = lambda: [j for j in jobs if j.get('processed')]\n"
        ).ok()
        k.send_custom(k.value("v.model_id"), {"do": "hello"})  # shown: it polls its job
        wait_in_kernel(k, "v.job.get('text') == 'no job running'", "no job before the dump")

        dump.start()
        dump.take(256 * 1024)  # QEMU blocks once the pipe is full
        wait_in_kernel(k, "running()", "the dump's progress")
        first = k.value("running()[-1]")
        dump.take(2 * 1024 * 1024)
        wait_in_kernel(
            k, f"running() and running()[-1]['processed'] > {first['processed']}", "more progress"
        )
        dump.finish()
        wait_in_kernel(k, "v.completed", "the job-completed event")

        seen = k.value("running()")
        completed = k.value("v.completed")
        k.execute("v.close(); conn.close()").ok()
    finally:
        dump.close()
        k.shutdown()

    assert first["text"].startswith("dump job running, ")
    processed = [j["processed"] for j in seen]
    assert processed == sorted(processed) and processed[-1] > processed[0]
    assert all(j["total"] and j["remaining"] is not None for j in seen)
    # what libvirt's event said: the operation, how long, how much
    assert re.fullmatch(
        r"dump job completed at \d\d:\d\d:\d\d, after \d+\.\d s, \d+\.\d [KMG]iB moved", completed
    ), completed
    assert dump.total > 2 * 1024 * 1024
