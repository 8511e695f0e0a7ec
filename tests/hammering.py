"""What the stress tests share: many threads at once, and a nudge to interleave."""

from __future__ import annotations

import asyncio
import os
import random
import threading
from collections.abc import Callable
from typing import Any

#: how long a hand-over may take before it counts as lost (a pass takes microseconds)
BOUND = 5.0


def hammer(n: int, work: Callable[[int], object]) -> None:
    """Run ``work(i)`` on *n* threads at once; re-raise the first failure."""
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as err:
            errors.append(err)

    workers = [threading.Thread(target=run, args=(i,), name=f"hammer-{i}") for i in range(n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert not [w for w in workers if w.is_alive()], "a worker hung"
    if errors:
        raise errors[0]


def jitter() -> None:
    """Now and then give the other side the CPU, so that it goes idle between bursts."""
    if random.random() < 0.05:
        os.sched_yield()


class MainLoop:
    """An asyncio loop running in a thread of its own, as the kernel's main loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="stress-main")
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(BOUND * 2)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(BOUND)
        self.loop.close()
