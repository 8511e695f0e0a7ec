"""Stress: a console's stream hand-over (models/console.py), from libvirt's io thread.

In process, libvirt serves a stream from an fd watch, so ipyvirt calls the stream callback
on ``ipyvirt-io``; the session reads there and hands each batch to the main loop. Many
streams at once (the test driver's screenshot, read a few bytes a recv and a few recvs a
callback: hundreds of hand-overs each), started from several threads: every session must
end with exactly the bytes of the picture, in order, and none is lost or applied twice.
"""

from __future__ import annotations

import asyncio
import threading

import libvirt
import pytest

from ipyvirt.models.console import ConsoleSession
from ipyvirt.models.screen import screenshot

from hammering import BOUND
from inproc import Run

pytestmark = pytest.mark.stress

STREAMS = 8
ROUNDS = 10


def test_every_byte_of_many_streams_arrives_once_in_order(run: Run) -> None:
    async def rounds() -> None:
        loop = asyncio.get_running_loop()
        conn = libvirt.open("test:///default")
        dom = conn.lookupByName("test")
        reference = screenshot(dom).png
        try:
            for _ in range(ROUNDS):
                sessions: list[tuple[ConsoleSession, asyncio.Future[None]]] = []

                def ended(status: str, done: asyncio.Future[None]) -> None:
                    if status.startswith("disconnected") and not done.done():
                        done.set_result(None)

                for _ in range(STREAMS):
                    done: asyncio.Future[None] = loop.create_future()
                    session = ConsoleSession(
                        dom,
                        loop,
                        scrollback=len(reference) + 1,
                        read_size=97,
                        per_callback=3 * 97,
                        on_state=lambda status, done=done: ended(status, done),
                    )
                    sessions.append((session, done))

                def start(session: ConsoleSession) -> None:
                    stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
                    dom.screenshot(stream, 0)
                    # attach on the main loop (the session's state lives there); the
                    # callbacks come from ipyvirt-io at once
                    loop.call_soon_threadsafe(session.attach, stream)

                threads = [threading.Thread(target=start, args=(s,)) for s, _ in sessions]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(BOUND)
                await asyncio.wait_for(asyncio.gather(*(d for _, d in sessions)), BOUND)
                for session, _ in sessions:
                    assert bytes(session.raw) == reference
                    assert session.chunks > 100  # many reads, handed over in many batches
                    assert session.handed_over > 30, session.handed_over
                    session.close()
                    assert session.stream is None
        finally:
            conn.close()

    run(rounds())
