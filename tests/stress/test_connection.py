"""Stress: Connections opened, used and closed from many threads while events flow.

A cell on a kernel subshell may open or close a Connection while the main loop delivers its
events. The invariant: a Connection's state changes on the main loop only; close() from
another thread hands over, and once the main loop has run the close, the connection is
closed exactly once, deregistered, and nothing of it runs again.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import libvirt
import pytest

import ipyvirt
from ipyvirt.hub import Event

from hammering import hammer
from inproc import Run

pytestmark = pytest.mark.stress


def test_open_use_and_close_from_many_threads(run: Run, caplog: pytest.LogCaptureFixture) -> None:
    opened: list[ipyvirt.Connection] = []
    late: list[Event] = []
    main = threading.current_thread().name

    setup = libvirt.open("test:///default")
    xml = setup.lookupByName("test").XMLDesc()
    xml = "\n".join(line for line in xml.splitlines() if "<uuid>" not in line)
    doms = [
        setup.createXML(xml.replace("<name>test</name>", f"<name>sc{i}</name>")) for i in range(6)
    ]

    class Dependent:  # a widget's part: its state belongs to the main thread
        def __init__(self) -> None:
            self.closed_on: list[str] = []

        def close(self) -> None:
            self.closed_on.append(threading.current_thread().name)

    dependents: list[Dependent] = []

    def work(i: int) -> None:
        for _ in range(25):
            c = ipyvirt.Connection(uri="test:///default", readonly=False, name=f"s{i}")
            opened.append(c)
            closer = Dependent()
            dependents.append(closer)
            seen = threading.Event()

            def on_event(event: Event, c: ipyvirt.Connection = c, seen: threading.Event = seen):
                if c.closed_reason is not None:
                    late.append(event)  # a closed connection's subscriber must not run
                assert threading.current_thread().name == main
                seen.set()

            c.subscribe(on_event, families=["domain"])
            c.depend(closer)  # as a widget does: closed on the main thread, first
            dom = c.conn.lookupByName(f"sc{i}")  # its own: states do not race
            dom.suspend()
            dom.resume()
            assert seen.wait(5), "an event never reached a subscriber"
            c.close()  # from this thread: handed over to the main loop

    async def go() -> None:
        await asyncio.get_running_loop().run_in_executor(None, hammer, 6, work)
        for _ in range(500):  # the closes handed over; a bound on a hang
            if all(c.closed_reason is not None for c in opened):
                break
            await asyncio.sleep(0.01)

    with caplog.at_level(logging.WARNING, "ipyvirt"):
        run(go())
    assert [r.getMessage() for r in caplog.records] == []
    assert {c.closed_reason for c in opened} == {"client"}
    assert all(c.hub.registrations() == {} for c in opened)
    assert late == []
    assert {tuple(d.closed_on) for d in dependents} == {(main,)}
    for dom in doms:
        dom.destroy()
    setup.close()
