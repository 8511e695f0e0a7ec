"""Stress: ``in_thread``'s hand-over (threads.py), many calls at once, some cancelled, some
raising, and the loop closed while calls are still running.

Afterwards: every call's outcome reached exactly one place (its future, settled on the
loop's thread, or ``orphan`` when nobody would take it), within a bound.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time

import pytest

from ipyvirt.threads import in_thread

from hammering import BOUND, MainLoop, jitter

pytestmark = pytest.mark.stress

CALLS = 400


def test_every_outcome_reaches_one_place(main: MainLoop) -> None:
    lock = threading.Lock()
    orphans: list[int] = []
    settled: list[int] = []
    errors: list[int] = []

    def orphan(n: int) -> None:
        with lock:
            orphans.append(n)

    def call(n: int) -> int:
        jitter()
        time.sleep(random.random() * 0.002)
        if n % 5 == 0:
            raise RuntimeError(f"call {n} broke")
        return n

    def done(future: asyncio.Future[int], n: int) -> None:
        assert threading.current_thread() is main.thread  # settled on the loop's thread only
        if future.cancelled():
            return
        if future.exception() is not None:
            errors.append(n)
        else:
            settled.append(future.result())

    async def start_all() -> list[asyncio.Future[int]]:
        futures = []
        for n in range(CALLS):
            future = in_thread(main.loop, lambda n=n: call(n), orphan=orphan)
            future.add_done_callback(lambda f, n=n: done(f, n))
            if n % 3 == 0:
                future.cancel()  # nobody waits for it any more: its result is an orphan
            futures.append(future)
        return futures

    futures = main.run(start_all())
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        with lock:
            total = len(orphans) + len(settled) + len(errors) + _cancelled_errors(futures)
        if total == CALLS:
            break
        time.sleep(0.01)
    with lock:
        ended = sorted(orphans + settled + errors)
    cancelled_raising = [n for n in range(CALLS) if n % 3 == 0 and n % 5 == 0]
    # each call's outcome in one place: raising calls that were cancelled have none to give
    assert ended == sorted(set(range(CALLS)) - set(cancelled_raising))
    assert sorted(orphans) == [n for n in range(CALLS) if n % 3 == 0 and n % 5 != 0]


def _cancelled_errors(futures: list[asyncio.Future[int]]) -> int:
    return sum(1 for n, _ in enumerate(futures) if n % 3 == 0 and n % 5 == 0)


def test_results_after_the_loop_closed_are_orphans() -> None:
    main = MainLoop()
    orphans: list[int] = []
    lock = threading.Lock()
    release = threading.Event()

    def orphan(n: int) -> None:
        with lock:
            orphans.append(n)

    def call(n: int) -> int:
        release.wait(BOUND)
        return n

    async def start_all() -> None:
        for n in range(50):
            in_thread(main.loop, lambda n=n: call(n), orphan=orphan)

    main.run(start_all())
    main.stop()  # closed while every call still runs
    release.set()
    deadline = time.monotonic() + BOUND
    while len(orphans) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(orphans) == list(range(50))
