"""OffLoop: reads on a worker, exactly one apply (or fail) on the loop, none after close."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from ipyvirt.models.offloop import OffLoop


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


async def _settle(off: OffLoop) -> None:
    while off.busy:
        await asyncio.sleep(0.001)


def test_a_read_applies_on_the_loop_thread(loop: asyncio.AbstractEventLoop) -> None:
    off = OffLoop(loop)
    seen: list[tuple[int, str, str]] = []

    async def go() -> None:
        worker: list[str] = []

        def read() -> int:
            worker.append(threading.current_thread().name)
            return 7

        assert off.submit(
            read, lambda v: seen.append((v, threading.current_thread().name, worker[0]))
        )
        assert off.busy and off.full
        assert not off.submit(lambda: 8, seen.append)  # one at a time
        await _settle(off)

    loop.run_until_complete(go())
    off.close()
    assert seen == [(7, threading.current_thread().name, seen[0][2])]
    assert seen[0][2].startswith("ipyvirt-read")
    assert (off.started, off.applied, off.dropped) == (1, 1, 0)


def test_a_read_that_raises_anything_ends_in_one_fail_and_frees_the_slot(
    loop: asyncio.AbstractEventLoop,
) -> None:
    off = OffLoop(loop)
    failed: list[BaseException] = []
    applied: list[int] = []

    def broken() -> int:
        raise KeyError("not a libvirtError")

    async def go() -> None:
        off.submit(broken, applied.append, failed.append)
        await _settle(off)
        assert off.submit(lambda: 1, applied.append, failed.append)  # not stuck busy
        await _settle(off)

    loop.run_until_complete(go())
    off.close()
    assert [type(e) for e in failed] == [KeyError] and applied == [1]
    assert (off.started, off.applied) == (2, 2)


def test_nothing_applies_after_close_and_close_waits_for_the_read(
    loop: asyncio.AbstractEventLoop,
) -> None:
    off = OffLoop(loop)
    reading, release = threading.Event(), threading.Event()
    ended: list[str] = []
    applied: list[str] = []

    def slow() -> str:
        reading.set()
        release.wait(30)
        ended.append("read")
        return "late"

    async def go() -> None:
        off.submit(slow, applied.append)
        await asyncio.to_thread(reading.wait, 30)
        threading.Timer(0.05, release.set).start()
        off.close()  # waits for the read
        assert ended == ["read"]
        assert not off.submit(lambda: "after", applied.append)
        await _settle(off)

    loop.run_until_complete(go())
    assert applied == [] and (off.started, off.applied, off.dropped) == (1, 0, 1)


def test_submit_from_another_thread_hands_over_to_the_loop(
    loop: asyncio.AbstractEventLoop,
) -> None:
    off = OffLoop(loop, workers=2, limit=None)
    applied: list[str] = []

    async def go() -> None:
        await asyncio.to_thread(off.submit, lambda: "x", applied.append)
        while len(applied) < 1:
            await asyncio.sleep(0.001)

    loop.run_until_complete(go())
    off.close()
    assert applied == ["x"]
