"""Stress: leases held from many threads while a close waits for them (``ipyvirt.leases``).

The invariant: once ``Leases.close()`` returned, no lease is held and none can be taken.
Threads take leases in a loop and mark a shared "in use" count inside; a closer closes at a
random moment and checks the count at once, and again after the threads ended: a lease that
slipped in after the close would show as a call on a closed connection.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from ipyvirt.leases import Closing, Leases

from hammering import hammer, jitter

pytestmark = pytest.mark.stress

THREADS = 6
ROUNDS = 200


def test_no_lease_is_held_or_taken_after_close() -> None:
    for _ in range(ROUNDS):
        one_round()


def one_round() -> None:
    """One close landing among 5 threads taking leases in a loop."""
    leases = Leases("a connection")
    lock = threading.Lock()
    in_use = 0
    closed = threading.Event()
    after_close: list[int] = []  # leases taken once close() had returned

    def work(i: int) -> None:
        nonlocal in_use
        if i == 0:  # the closer
            time.sleep(random.random() * 0.002)
            leases.close()
            with lock:
                after_close.append(in_use)  # must be 0: nobody inside
            closed.set()
            return
        while True:
            try:
                with leases.hold():
                    with lock:
                        in_use += 1
                        if closed.is_set():
                            after_close.append(-1)  # inside after close returned
                    jitter()
                    with lock:
                        in_use -= 1
            except Closing:
                return

    hammer(THREADS, work)
    assert after_close == [0]
    assert leases.held == 0 and leases.closing
    with pytest.raises(Closing), leases.hold():
        pass


def test_close_with_a_timeout_says_whether_leases_are_still_held() -> None:
    leases = Leases("a connection")
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with leases.hold():
            inside.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(30)
    assert leases.close(timeout=0.05) is False  # still held, and closing now
    with pytest.raises(Closing), leases.hold():
        pass
    release.set()
    holder.join(30)
    assert leases.close() is True and leases.held == 0
