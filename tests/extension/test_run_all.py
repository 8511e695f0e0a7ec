"""Run All: execute requests sent back to back, each queued in the kernel before the one
before it ends. Every event libvirt had queued when a cell ended must reach the callbacks,
ipyvirt's subscribers and live widgets before the next cell's code runs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipyvirt.runtime import DELIVER_ROUNDS

from kernel import Kernel, Reply
from libvirtd import Libvirtd

pytestmark = pytest.mark.kernel

ROUNDS = 50

# Each round is two cells: `act()` has a worker thread suspend and resume the domain and
# joins it; `delivered()` prints how many events each listener got since `act()` began:
# libvirt's own callback, an ipyvirt subscriber, an EventLog widget, the history that
# `%virt events` shows; and how many of the EventLog's events its status line does not count.
SETUP = """
import threading, libvirt, ipyvirt
from ipyvirt.widgets import EventLog
c = get_ipython().run_line_magic("virt", f"connect --rw {URI}")
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
    unshown = len(log.events) - int(log.status.split()[0])
    print(*(n - b for n, b in zip(counts(), before)), unshown)
"""


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = Kernel()
    yield k
    k.shutdown()


def _run_all_rounds(kernel: Kernel, uri: str) -> None:
    kernel.execute("%load_ext ipyvirt").ok()
    kernel.execute(f"URI = {uri!r}\n{SETUP}").ok()
    follow = kernel.execute(f"%virt events --follow --last {3 * ROUNDS}").ok()
    display_id = follow.messages[-2]["content"]["transient"]["display_id"]
    arrived: list[dict[str, Any]] = []
    replies = kernel.run_all(["act()", "delivered()"] * ROUNDS, arrived=arrived)
    for reply in replies:
        reply.ok()
    got = [r.stdout for r in replies[1::2]]
    missed = [(i, out.strip()) for i, out in enumerate(got) if out != "2 2 2 2 0\n"]
    assert not missed, f"{len(missed)} of {ROUNDS} cells missed events (round, counts): {missed}"
    # `%virt events --follow` showed every event before the cell after them ran: the last
    # update of its table before each `delivered()` printed has 2 rows a round
    reads = {r.messages[0]["parent_header"]["msg_id"] for r in replies[1::2]}
    rows = 0
    shown = []
    for msg in arrived:
        content = msg["content"]
        if msg["msg_type"] == "update_display_data":
            if content["transient"]["display_id"] == display_id:
                table = content["data"]["text/plain"].splitlines()
                rows = sum(1 for line in table if line.split()[1:2] == ["domain"])
        elif msg["msg_type"] == "stream" and msg["parent_header"]["msg_id"] in reads:
            reads.discard(msg["parent_header"]["msg_id"])  # its first output: its code runs
            shown.append(rows)
    assert shown == [2 * (i + 1) for i in range(ROUNDS)]


def test_run_all_delivers_every_event_before_the_next_cell(kernel: Kernel) -> None:
    _run_all_rounds(kernel, "test:///default")


@pytest.mark.daemon
def test_run_all_delivers_every_event_before_the_next_cell_over_a_daemon(
    kernel: Kernel, libvirtd: Libvirtd
) -> None:
    _run_all_rounds(kernel, libvirtd.test_uri)


LAST_DELIVERY = (
    "d = ipyvirt.runtime.current().last_delivery\n"
    "print(d.rounds, d.budget_spent, len(log.events) + log.dropped if 'log' in dir() else 0)"
)


def _deliveries(replies: list[Reply]) -> list[tuple[int, bool, int]]:
    rows = []
    for reply in replies:
        rounds, spent, received = reply.ok().stdout.split()
        rows.append((int(rounds), spent == "True", int(received)))
    return rows


def test_a_timer_due_on_every_turn_cannot_stall_a_cell(kernel: Kernel) -> None:
    """A libvirt timer of interval 0 is due on every loop turn: delivering "until nothing
    is due" would never let the cell run. The hook stops after its rounds."""
    kernel.execute("%load_ext ipyvirt\nimport libvirt, ipyvirt").ok()
    kernel.execute("spin = libvirt.virEventAddTimeout(0, lambda timer, opaque: None, None)").ok()
    rows = _deliveries(kernel.run_all([LAST_DELIVERY] * 10))
    kernel.execute("libvirt.virEventRemoveTimeout(spin)").ok()
    # DELIVER_ROUNDS unless DELIVER_SECONDS ran out first (a busy machine)
    assert all(spent and 1 <= rounds <= DELIVER_ROUNDS for rounds, spent, _ in rows), rows


# Suspends and resumes the domain as fast as the daemon answers (thousands of events a
# second) until the file *stop* exists; exits 3 if no one stopped it in 120 s or 200,000 rounds.
PRODUCER = """
import os, sys, time, libvirt
uri, stop = sys.argv[1:]
dom = libvirt.open(uri).lookupByName("test")
give_up = time.monotonic() + 120
for _ in range(200_000):
    if os.path.exists(stop):
        sys.exit(0)
    if time.monotonic() > give_up:
        break
    dom.suspend()
    dom.resume()
sys.exit(3)
"""


@pytest.mark.daemon
def test_cells_run_during_an_event_storm(
    kernel: Kernel, libvirtd: Libvirtd, tmp_path: Path
) -> None:
    """Run All while another process storms the daemon with events: every cell runs while
    the storm goes on (the last one ends it), each after a bounded delivery."""
    stop = tmp_path / "stop"
    kernel.execute("%load_ext ipyvirt").ok()
    kernel.execute(f"URI = {libvirtd.test_uri!r}\n{SETUP}").ok()
    producer = subprocess.Popen([sys.executable, "-c", PRODUCER, libvirtd.test_uri, str(stop)])
    try:
        kernel.execute(  # the storm has begun
            "import asyncio\nwhile len(log.events) + log.dropped < 1000:\n"
            "    await asyncio.sleep(0.01)"
        ).ok()
        cells = [LAST_DELIVERY] * 30 + [f"open({str(stop)!r}, 'w').close()"]
        rows = _deliveries(kernel.run_all(cells)[:-1])
        assert producer.wait(60) == 0, "the storm ended before the cells ran"
    finally:
        stop.touch()
        producer.wait(60)
    assert all(1 <= rounds <= DELIVER_ROUNDS for rounds, _, _ in rows), rows
    received = [n for *_, n in rows]
    assert received[-1] > received[0], rows  # the cells ran while the events came in
