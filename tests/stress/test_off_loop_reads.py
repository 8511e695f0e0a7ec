"""Stress: OffLoop's hand-over (models/offloop.py), from many threads at once.

Threads submit reads (some raise) while the main loop applies them and a closer closes
midway. Afterwards: every read that started ended in exactly one apply/fail or one drop,
none was applied after close() returned, nothing is left in flight, within a bound.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from ipyvirt.models.offloop import OffLoop

from hammering import BOUND, MainLoop, hammer, jitter

pytestmark = pytest.mark.stress

THREADS = 8
ROUNDS = 300


@pytest.mark.parametrize("limit", [1, 3, None])
def test_every_read_ends_in_one_apply_none_after_close(main: MainLoop, limit: int | None) -> None:
    off = OffLoop(main.loop, workers=3, limit=limit)
    lock = threading.Lock()
    outcomes: dict[int, int] = {}  # read number -> applies seen
    after_close: list[int] = []
    closed_at: list[float] = []

    def ended(n: int) -> None:
        assert main.loop.is_running() and threading.current_thread() is main.thread
        if closed_at:
            after_close.append(n)
        with lock:
            outcomes[n] = outcomes.get(n, 0) + 1

    def read(n: int) -> int:
        jitter()
        if n % 7 == 0:
            raise RuntimeError(f"read {n} broke")
        return n

    counter = iter(range(10**9))

    def work(i: int) -> None:
        if i == 0:  # the closer: at a random moment once reads are under way
            # A fixed sleep first could end before the main loop, short of the GIL among
            # the submitting threads on a busy machine, had started a single read (the
            # test would then fail on started > 0). off.started only grows: read racily.
            deadline = time.monotonic() + BOUND
            while off.started < 10 and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(random.uniform(0, 0.04))
            off.close()
            closed_at.append(time.monotonic())
            return
        for _ in range(ROUNDS):
            n = next(counter)
            off.submit(lambda n=n: read(n), lambda v: ended(v), lambda err, n=n: ended(n))
            jitter()

    hammer(THREADS, work)

    async def counts() -> tuple[int, int, int, bool]:
        return off.started, off.applied, off.dropped, off.busy

    deadline = time.monotonic() + BOUND
    while True:
        started, applied, dropped, busy = main.run(counts())
        if (started == applied + dropped and not busy) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert started > 0 and started == applied + dropped, (started, applied, dropped)
    assert not busy
    assert after_close == []
    assert all(v == 1 for v in outcomes.values())
    assert len(outcomes) == applied
