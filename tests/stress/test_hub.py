"""Stress: subscriptions made and cancelled from many threads while events flow.

With ipykernel 7 a cell (or a widget handler) may run on a subshell thread while the main
thread dispatches events, so EventHub.subscribe and Subscription.cancel come from any
thread. The invariant: the libvirt registrations always equal what the live subscriptions
want (one per event ID, never a second that libvirt refuses as "already tracked"), and a
subscriber that stays receives every event, on the main loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import libvirt
import pytest

from ipyvirt.hub import Event, EventHub

from hammering import hammer
from inproc import Run

pytestmark = pytest.mark.stress


def test_subscribe_and_cancel_from_many_threads(run: Run, caplog: pytest.LogCaptureFixture) -> None:
    # a hub of its own (a Connection's history subscribes to everything, so registrations
    # would never come and go)
    lv = libvirt.open("test:///default")
    hub = EventHub(lv, "stress")
    dom = lv.lookupByName("test")
    kept: list[Event] = []
    where: set[str] = set()

    def keep(event: Event) -> None:
        kept.append(event)
        where.add(threading.current_thread().name)

    hub.subscribe(keep, families=["domain"], kinds=["lifecycle"])
    rounds = 100

    def work(i: int) -> None:
        if i == 0:  # events flow meanwhile
            for _ in range(rounds):
                dom.suspend()
                dom.resume()
            return
        families = [["domain"], ["network"], ["pool"], ["domain", "network"]][i % 4]
        for _ in range(rounds):
            sub = hub.subscribe(lambda e: None, families=families)
            sub.cancel()

    async def go() -> None:
        done = asyncio.get_running_loop().run_in_executor(None, hammer, 8, work)
        await done
        for _ in range(1000):  # the events queued meanwhile, then a bound on a hang
            if len(kept) >= 2 * rounds:
                break
            await asyncio.sleep(0.01)

    with caplog.at_level(logging.WARNING, "ipyvirt"):
        run(go())
    assert [r.getMessage() for r in caplog.records] == []
    assert {k for k in hub.unsupported if k[0] != "secret"} == set()  # no secrets: NO_SUPPORT
    assert set(hub.registrations()) == {("domain", "lifecycle")}
    assert [e.kind for e in kept] == ["lifecycle"] * (2 * rounds)
    assert where == {threading.current_thread().name}
    hub.close()
    lv.close()
