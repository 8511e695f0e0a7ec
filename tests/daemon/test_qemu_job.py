"""A real job on a real QEMU guest, as a DomainView sees it: its progress (virDomainGetJobStats
polled while shown) and libvirt's job-completed event.

The job is a core dump (``virDomainCoreDump``, not memory-only): libvirt runs it as a
migration to a file (``doCoreDump`` -> ``qemuMigrationSrcToFile``), and that function emits
VIR_DOMAIN_EVENT_ID_JOB_COMPLETED once QEMU is done (``qemuDomainEventEmitJobCompleted`` in
libvirt's src/qemu/qemu_migration.c). libvirt lifts the migration bandwidth limit for a file
(``QEMU_DOMAIN_MIG_BANDWIDTH_MAX``), so ``migrateSetMaxSpeed`` cannot slow it down; the file
is a FIFO instead, read by this test: QEMU writes only as fast as the test reads, so the job
waits for the view to see each step, with no timing at all.
"""

from __future__ import annotations

import os
import re
import select
import threading
from pathlib import Path

import libvirt
import pytest

from guest import QemuGuest

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


class Fifo:
    """The read end of a FIFO, opened before libvirt opens its write end (so neither
    blocks); reads what the writer gave, up to a count, or to the end."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path, 0o600)
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.total = 0
        self.ended = False

    def take(self, count: int | None, job: threading.Thread) -> None:
        """Read *count* bytes more (None: to the end), while the job runs."""
        goal = None if count is None else self.total + count
        writer_seen = self.total > 0
        while goal is None or self.total < goal:
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if not ready:
                assert job.is_alive(), "the dump ended before its data was read"
                continue
            want = 64 * 1024 if goal is None else min(64 * 1024, goal - self.total)
            chunk = os.read(self.fd, want)
            if not chunk:
                # no writer yet (before libvirt opened it), or the end
                if writer_seen or not job.is_alive():
                    self.ended = True
                    return
                select.select([], [], [], 0.05)
                continue
            writer_seen = True
            self.total += len(chunk)

    def close(self) -> None:
        os.close(self.fd)


def test_a_dumps_progress_and_its_completion_event(qemu_guest: QemuGuest, tmp_path: Path) -> None:
    k = Kernel()
    conn = libvirt.open(qemu_guest.uri)
    fifo = Fifo(tmp_path / "core.fifo")
    failed: list[BaseException] = []

    def dump() -> None:
        try:
            conn.lookupByName(qemu_guest.name).coreDump(str(tmp_path / "core.fifo"), 0)
        except BaseException as err:  # reported by the test below
            failed.append(err)

    job = threading.Thread(target=dump, name="core-dump")
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

        job.start()
        fifo.take(256 * 1024, job)  # QEMU blocks on the full pipe after that
        wait_in_kernel(k, "running()", "the dump's progress")
        first = k.value("running()[-1]")
        fifo.take(2 * 1024 * 1024, job)
        wait_in_kernel(
            k, f"running() and running()[-1]['processed'] > {first['processed']}", "more progress"
        )
        fifo.take(None, job)
        job.join(120)
        assert not job.is_alive() and not failed, failed
        wait_in_kernel(k, "v.completed", "the job-completed event")

        seen = k.value("running()")
        completed = k.value("v.completed")
        k.execute("v.close(); conn.close()").ok()
    finally:
        fifo.close()
        if job.is_alive():  # a failed step: let libvirt finish writing, then stop waiting
            fifo.take(None, job)
            job.join(120)
        conn.close()
        k.shutdown()

    assert first["text"].startswith("dump job running, ")
    processed = [j["processed"] for j in seen]
    assert processed == sorted(processed) and processed[-1] > processed[0]
    assert all(j["total"] and j["remaining"] is not None for j in seen)
    # what libvirt's event said: the operation, how long, how much
    assert re.fullmatch(
        r"dump job completed at \d\d:\d\d:\d\d, after \d+\.\d s, \d+\.\d [KMG]iB moved", completed
    ), completed
    assert fifo.total > 2 * 1024 * 1024
