"""The daemon dies under a live dashboard: reported, reconnected, or quietly given up on."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from kernel import Kernel
from libvirtd import Libvirtd

pytestmark = [pytest.mark.kernel, pytest.mark.daemon]

SETUP = """
%load_ext ipyvirt
import os, time, ipyvirt
from ipyvirt.domains import query_all
get_ipython().run_line_magic("config", "VirtMagics.default_uri = {uri!r}")
c = get_ipython().run_line_magic("virt", "connect --rw --name d")
dash = get_ipython().run_line_magic("virt", "dashboard")
display(dash)
closes = []
c.subscribe(lambda e: closes.append((e.name, e.detail, time.monotonic())), families=["connection"])
"""


@pytest.fixture
def daemon() -> Iterator[Libvirtd]:
    """A libvirtd of this test's own: it gets killed."""
    with Libvirtd() as d:
        yield d


@pytest.fixture
def kernel(daemon: Libvirtd) -> Iterator[Kernel]:
    k = Kernel()
    k.execute(SETUP.format(uri=daemon.test_uri)).ok()
    yield k
    k.shutdown()


def _kernel_cpu_seconds(kernel: Kernel) -> float:
    pid = kernel.value("os.getpid()")
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def _stderr(kernel: Kernel) -> str:
    return "".join(
        m["content"].get("text", "")
        for m in kernel.between
        if m["msg_type"] == "stream" and m["content"]["name"] == "stderr"
    )


def test_sigkill_and_restart_reconnects_with_the_right_state(
    daemon: Libvirtd, kernel: Kernel
) -> None:
    kernel.execute("c.conn.lookupByName('test').suspend()").ok()
    kernel.drain(0.3)
    assert kernel.value("[r.state for r in dash.table.rows()]") == ["paused"]
    killed = time.monotonic()
    daemon.kill()
    kernel.drain(1.0)
    closes = kernel.value("[(n, d) for n, d, _ in closes]")
    assert closes and closes[0][0] == "closed", closes
    assert kernel.value("closes[0][2]") - killed < 1.0 + 0.5  # reported within a second
    assert "connection closed" in kernel.value("repr(dash.table)").splitlines()[0]
    daemon.start()  # a fresh test driver: 'test' runs again
    kernel.drain(4.0)  # retries at 0.5, 1.5, 3.5 s
    assert kernel.value("c.reconnects") == 1
    assert kernel.value("[n for n, _, _ in closes]") == ["closed", "reconnected"]
    # after the reconnect the table is what the hypervisor says, not what it was before
    assert kernel.value(
        "dash.table.rows() == sorted(query_all(c.conn).values(), key=lambda r: r.name)"
    )
    assert kernel.value("[r.state for r in dash.table.rows()]") == ["running"]
    assert kernel.value("repr(c)").endswith("read-write open>")
    # and events flow again, through the new connection
    kernel.execute("c.conn.lookupByName('test').suspend()").ok()
    kernel.drain(0.3)
    assert kernel.value("[r.state for r in dash.table.rows()]") == ["paused"]
    logged = [e for e in kernel.value("[(e.family, e.name) for e in dash.event_log.events]")]
    assert ("connection", "closed") in logged and ("connection", "reconnected") in logged
    assert "Traceback" not in _stderr(kernel)


def test_a_daemon_gone_for_good_leaves_a_quiet_kernel(daemon: Libvirtd, kernel: Kernel) -> None:
    daemon.kill()
    kernel.drain(1.0)
    assert kernel.value("c.closed_reason") in ("eof", "error")
    # the socket's watch hung up and was removed: nothing left to dispatch in a loop
    assert kernel.value("len(ipyvirt.runtime.current().impl.statistics().watches)") == 0
    dispatches = kernel.value("ipyvirt.runtime.current().impl.statistics().dispatches")
    before = _kernel_cpu_seconds(kernel)
    kernel.drain(5.0)  # retries back off: 0.5, 1, 2 s ... up to 30 s between tries
    used = _kernel_cpu_seconds(kernel) - before
    assert used < 0.05 * 5.0, f"the kernel used {used:.2f} s of CPU in 5 s while disconnected"
    assert kernel.value("ipyvirt.runtime.current().impl.statistics().dispatches") == dispatches
    assert "reconnecting" in kernel.value("repr(c)")
    assert "connection closed" in kernel.value("repr(dash.table)").splitlines()[0]
    assert "Traceback" not in _stderr(kernel)
