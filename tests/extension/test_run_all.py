"""Run All: execute requests sent back to back, each queued in the kernel before the one
before it ends. Every event libvirt had queued when a cell ended must reach the callbacks,
ipyvirt's subscribers and live widgets before the next cell's code runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernel import Kernel
from libvirtd import Libvirtd

pytestmark = pytest.mark.kernel

ROUNDS = 50

# Each round is two cells: `act()` has a worker thread suspend and resume the domain and
# joins it; `delivered()` prints how many events each listener got since `act()` began:
# libvirt's own callback, an ipyvirt subscriber, an EventLog widget, the history that
# `%virt events` shows.
SETUP = """
import threading, libvirt, ipyvirt
from ipyvirt.widgets import EventLog
c = ipyvirt.Connection(uri=URI, readonly=False)
dom = c.conn.lookupByName("test")
raw, subscribed = [], []
c.conn.domainEventRegisterAny(
    None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lambda _c, _d, ev, _x, _o: raw.append(ev), None
)
c.subscribe(lambda e: subscribed.append(e.name), families=["domain"], kinds=["lifecycle"])
log = EventLog(c, families=["domain"])

def counts():
    return len(raw), len(subscribed), len(log.events), len(c.history)

def act():
    global before
    before = counts()
    def worker():
        dom.suspend()
        dom.resume()
        # Over a daemon an event is queued in this process when its message is read off
        # the socket. libvirtd relays an event before it reads a later request, so once a
        # later call on each connection returns, both events are queued on both: ours
        # (c.conn) and the one ipyvirt watches with (c.reader).
        c.conn.getLibVersion()
        c.reader.getLibVersion()
    t = threading.Thread(target=worker, name="worker")
    t.start()
    t.join()

def delivered():
    print(*(n - b for n, b in zip(counts(), before)))
"""


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = Kernel()
    yield k
    k.shutdown()


def _run_all_rounds(kernel: Kernel, uri: str) -> None:
    kernel.execute("%load_ext ipyvirt").ok()
    kernel.execute(f"URI = {uri!r}\n{SETUP}").ok()
    replies = kernel.run_all(["act()", "delivered()"] * ROUNDS)
    for reply in replies:
        reply.ok()
    got = [r.stdout for r in replies[1::2]]
    missed = [(i, out.strip()) for i, out in enumerate(got) if out != "2 2 2 2\n"]
    assert not missed, f"{len(missed)} of {ROUNDS} cells missed events (round, counts): {missed}"


def test_run_all_delivers_every_event_before_the_next_cell(kernel: Kernel) -> None:
    _run_all_rounds(kernel, "test:///default")


@pytest.mark.daemon
def test_run_all_delivers_every_event_before_the_next_cell_over_a_daemon(
    kernel: Kernel, libvirtd: Libvirtd
) -> None:
    _run_all_rounds(kernel, libvirtd.test_uri)
