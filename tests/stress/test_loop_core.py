"""Stress: every cross-thread protocol of the loop core, hammered from many threads.

Each test names the protocol and the invariant (written beside the code) it attacks, runs
many rounds while the loops dispatch, and checks that every hand-over ran, no callback ran
after its free function, and no free stays owed, within a generous bound (a lost wake-up
shows as a count short after the bound, never as a slow pass).
"""

from __future__ import annotations

import asyncio
import random
import select
import socket
import threading
from typing import Any

import pytest

import ipyvirt
from ipyvirt import AsyncioEventImpl
from ipyvirt.io_thread import IoThread

from hammering import BOUND, MainLoop, hammer, jitter

pytestmark = pytest.mark.stress

THREADS = 8


class Opaque:
    """A callback's opaque: libvirt frees it with the free function, exactly once."""

    def __init__(self) -> None:
        self.freed = 0
        self.late = 0  # callbacks that ran after the free: must stay 0

    def free(self, _: Any) -> None:
        self.freed += 1


def watch_until_dispatched(
    impl: AsyncioEventImpl, a: socket.socket, b: socket.socket, opaques: list[Opaque]
) -> int:
    """Watch *a* for reading with a fresh opaque (kept in *opaques*), make it readable from
    *b*, and wait for the dispatch; the watch's id. Its callback counts in ``late`` any run
    after its free function."""
    seen = threading.Event()
    opaque = Opaque()
    opaques.append(opaque)

    def on_fd(watch: int, fd: int, events: int, o: Opaque) -> None:
        if o.freed:
            o.late += 1
        try:
            a.recv(64)
        except BlockingIOError:
            pass
        seen.set()

    w = impl.add_handle(a.fileno(), ipyvirt.HANDLE_READABLE, on_fd, opaque, opaque.free)
    assert w > 0
    b.send(b"x")
    assert seen.wait(BOUND), "a readable fd was never dispatched (lost across a bind?)"
    return w


def test_io_thread_wake_up_from_many_threads() -> None:
    """IoThread.call_soon_threadsafe: every queued call runs, rounds after round, however the
    producers interleave with the thread's drain-then-clear (the lost wake-up)."""
    thread = IoThread(select.epoll(), lambda ready: None, "stress-io").start()
    ran = [0] * THREADS
    for round_ in range(40):
        done = threading.Semaphore(0)
        per_thread = 300

        def produce(
            i: int, round_: int = round_, per_thread: int = per_thread, done: Any = done
        ) -> None:
            def one() -> None:
                ran[i] += 1

            for _ in range(per_thread):
                thread.call_soon_threadsafe(one)
                jitter()
            thread.call_soon_threadsafe(done.release)

        hammer(THREADS, produce)
        # each producer's last call releases once; all must run without any other wake-up
        for k in range(THREADS):
            assert done.acquire(timeout=BOUND), (
                f"round {round_}: {THREADS - k} producers' calls never ran "
                f"({sum(ran)} of {(round_ + 1) * THREADS * per_thread} ran)"
            )
    assert ran == [40 * 300] * THREADS
    thread.close()


def test_watches_from_many_threads_while_the_io_thread_dispatches(main: MainLoop) -> None:
    """add/update/remove_handle from any thread take effect at once (epoll_ctl, no
    hand-over); frees are owed to the io lane and paid after its round: never while a
    callback holds the opaque, exactly once, and none stay owed."""
    impl = AsyncioEventImpl(main.loop)  # watches on an io thread of its own
    opaques: list[Opaque] = []

    def work(i: int) -> None:
        a, b = socket.socketpair()
        a.setblocking(False)
        for _ in range(150):
            w = watch_until_dispatched(impl, a, b, opaques)
            impl.update_handle(w, 0)
            jitter()
            impl.update_handle(w, ipyvirt.HANDLE_READABLE)
            assert impl.remove_handle(w) == 0
        a.close()
        b.close()

    hammer(THREADS, work)
    main.run(impl.drain(BOUND))
    assert [o.freed for o in opaques] == [1] * len(opaques)
    assert sum(o.late for o in opaques) == 0
    stats = impl.statistics()
    assert stats.handles_added == stats.handles_removed == len(opaques)
    assert stats.pending_frees == 0 and impl.is_idle()
    impl.close()


def test_timers_from_many_threads_wake_the_main_loop(main: MainLoop) -> None:
    """add/update/remove_timeout from other threads hand the arming to the main loop and wake
    it: a timer enabled off the loop fires at once, the last change wins, frees run once."""
    impl = AsyncioEventImpl(main.loop, io_loop=main.loop)
    opaques: list[Opaque] = []
    timers: list[int] = []

    def work(i: int) -> None:
        for n in range(200):
            fired = threading.Event()
            opaque = Opaque()
            opaques.append(opaque)

            def on_timer(timer: int, o: Opaque, fired: threading.Event = fired) -> None:
                if o.freed:
                    o.late += 1
                fired.set()

            t = impl.add_timeout(-1, on_timer, opaque, opaque.free)
            jitter()
            impl.update_timeout(t, n % 3)  # enabled from this thread: 0, 1 or 2 ms
            assert fired.wait(BOUND), "a timer enabled from another thread never fired"
            for interval in random.choices([-1, 0, 5, 1000], k=3):
                impl.update_timeout(t, interval)
            impl.update_timeout(t, -1)  # the last change: disabled
            if n % 2:
                assert impl.remove_timeout(t) == 0
            else:
                timers.append(t)  # stays, disabled

    hammer(THREADS, work)
    # every queued arm has run once the main loop got round to this; from then on a
    # disabled timer must not fire
    main.run(asyncio.sleep(0))
    fires = impl.statistics().fires
    main.run(asyncio.sleep(0.05))
    assert impl.statistics().fires == fires, "a timer whose last change disabled it fired"
    for t in timers:
        assert impl.remove_timeout(t) == 0
    main.run(impl.drain(BOUND))
    assert [o.freed for o in opaques] == [1] * len(opaques)
    assert sum(o.late for o in opaques) == 0
    stats = impl.statistics()
    assert stats.timeouts_added == stats.timeouts_removed == len(opaques)
    assert impl.is_idle()
    impl.close()


def test_binding_back_and_forth_while_threads_use_the_watches(main: MainLoop) -> None:
    """bind(): the io lane moves between io threads and the main loop (what runtime.start
    and stop do) while other threads add, use and remove watches. Frees owed to a stopped
    io thread move with the lane; nothing is lost, nothing runs twice."""
    impl = AsyncioEventImpl(main.loop, io_loop=main.loop)
    opaques: list[Opaque] = []
    stop = threading.Event()

    def work(i: int) -> None:
        if i == 0:  # the binder

            def served() -> None:
                # after each bind the watches keep dispatching, on whichever runner
                seen = impl.statistics().dispatches
                for _ in range(int(BOUND / 0.001)):
                    if impl.statistics().dispatches > seen + 2:
                        return
                    threading.Event().wait(0.001)
                raise AssertionError("the watches stopped dispatching after a bind")

            try:
                for k in range(150):
                    thread = impl.io_thread(f"stress-io-{k}")
                    impl.bind(main.loop, io_loop=thread)
                    if k % 2:
                        served()
                    thread.stop()
                    impl.bind(main.loop, io_loop=main.loop)
                    if k % 3:
                        served()
                    thread.close()
            finally:
                stop.set()
            return
        a, b = socket.socketpair()
        a.setblocking(False)
        while not stop.is_set():
            w = watch_until_dispatched(impl, a, b, opaques)
            assert impl.remove_handle(w) == 0
        a.close()
        b.close()

    hammer(4, work)
    main.run(impl.drain(BOUND))
    assert len(opaques) > 0
    assert [o.freed for o in opaques] == [1] * len(opaques)
    assert sum(o.late for o in opaques) == 0
    assert impl.is_idle()
    impl.close()


def test_drain_waiters_on_many_loops(main: MainLoop) -> None:
    """Frees.settled: a waiter is added only while something is owed, and the run that pays
    the last free wakes every waiter, on its own loop."""
    impl = AsyncioEventImpl(main.loop, io_loop=main.loop)
    for _ in range(30):
        ids = [impl.add_timeout(-1, lambda *a: None, None, None) for _ in range(50)]

        def wait(i: int, ids: list[int] = ids) -> None:
            if i < THREADS // 2:
                for t in ids[i :: THREADS // 2]:
                    impl.remove_timeout(t)
            else:
                asyncio.run(impl.drain(BOUND))  # a loop of its own, on this thread

        hammer(THREADS, wait)
        main.run(impl.drain(BOUND))
        assert impl.statistics().pending_frees == 0
    impl.close()
