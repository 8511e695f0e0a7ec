"""The conformance kit against libvirt-python's libvirtaio: exactly these clauses fail.

This pins the comparison table in the README, and keeps the kit honest: each clause that
ipyvirt passes must be one an implementation can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from libvirtd import Libvirtd

LIBVIRTAIO_FAILS = {
    # ids count from 0: the first watch of a process gets id 0, which libvirt reads as none
    "ids-positive[direct]",
    "ids-positive[libvirt]",
    # ... and a stream's fd watch that gets id 0 is "no callback" to libvirt's fd stream:
    # removing the stream's callback fails (with a watch of id 0 taken before, it works)
    "stream-read[libvirt]",
    # asyncio's add_reader reports readable, never the fd's ERROR or HANGUP condition
    "handle-hangup[direct]",
    "handle-hangup[libvirt]",
    "handle-error[direct]",
    "handle-error[libvirt]",
    # self.callbacks[watch] raises KeyError for an unknown id, out of the hook
    "update-unknown[direct]",
    "update-unknown[libvirt]",
    # remove_timeout(watch id) pops the watch before asserting its type
    "slots[libvirt]",
    # the running sleep() keeps its old interval
    "timeout-update[direct]",
    "timeout-update[libvirt]",
    # an exception in a timer callback ends the timer's task: it never fires again
    "callback-raises[direct]",
    # ensure_future() from another thread queues without waking the loop
    "thread-add-timeout[direct]",
    "thread-add-timeout[libvirt]",
    "thread-update-timeout[direct]",
    "thread-update-timeout[libvirt]",
    "thread-callback-thread[direct]",
    "thread-callback-thread[libvirt]",
    "libvirt-events-thread[libvirt]",
    # bound to one loop for life
    "loop-replaceable[direct]",
}

# Through the daemon, a worker thread's RPC sometimes reads the event off the socket itself
# (then the event timer is armed from that thread and libvirtaio does not wake: the clause
# fails) and sometimes leaves it to the loop's own fd watch (then it passes): a race.
LIBVIRTAIO_SOMETIMES_FAILS = {"daemon-events-thread[daemon]"}


def _kit(factory: str, *args: str) -> dict[str, dict[str, object]]:
    cmd = [sys.executable, "-m", "ipyvirt.testing", factory, "--isolate", "--json", *args]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    results = json.loads(run.stdout)
    return {f"{r['clause']}[{r['mode']}]": r for r in results}


@pytest.fixture(scope="module")
def libvirtaio_results(libvirtd: Libvirtd) -> dict[str, dict[str, object]]:
    return _kit(
        "ipyvirt.testing.libvirtaio_adapter:LibvirtaioImpl",
        *("--mode", "direct", "--mode", "libvirt", "--mode", "daemon"),
        *("--daemon-uri", libvirtd.test_uri),
    )


@pytest.mark.daemon
def test_libvirtaio_fails_exactly_these(libvirtaio_results: dict[str, dict[str, object]]) -> None:
    failed = {k for k, r in libvirtaio_results.items() if not r["passed"]}
    failed -= LIBVIRTAIO_SOMETIMES_FAILS
    unexpected = {k: libvirtaio_results[k]["detail"] for k in failed - LIBVIRTAIO_FAILS}
    assert failed == LIBVIRTAIO_FAILS, unexpected


@pytest.mark.daemon
def test_same_clauses_for_both(
    libvirtaio_results: dict[str, dict[str, object]], libvirtd: Libvirtd
) -> None:
    """ipyvirt, run the same way (one process per clause), passes every clause."""
    ours = _kit(
        "ipyvirt:AsyncioEventImpl",
        *("--mode", "direct", "--mode", "libvirt", "--mode", "daemon"),
        *("--daemon-uri", libvirtd.test_uri),
    )
    assert ours.keys() == libvirtaio_results.keys()
    assert [k for k, r in ours.items() if not r["passed"]] == []
