"""IoThread: fd watches served straight from the epoll set, on a thread of their own."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import ipyvirt
from ipyvirt import AsyncioEventImpl
from ipyvirt.io_thread import IoThread


@pytest.fixture
def split() -> Iterator[tuple[asyncio.AbstractEventLoop, AsyncioEventImpl]]:
    loop = asyncio.new_event_loop()
    impl = AsyncioEventImpl(loop)
    impl.bind(loop, io_loop=impl.io_thread("test-io"))
    yield loop, impl
    impl.close()
    loop.close()


def test_watches_run_on_the_thread_and_show_it(
    split: tuple[asyncio.AbstractEventLoop, AsyncioEventImpl],
) -> None:
    _, impl = split
    a, b = socket.socketpair()
    where: list[tuple[str, int]] = []
    seen = threading.Event()

    def on_fd(watch: int, fd: int, events: int, opaque: Any) -> None:
        where.append((threading.current_thread().name, events))
        a.recv(16)
        seen.set()

    w = impl.add_handle(a.fileno(), ipyvirt.HANDLE_READABLE, on_fd, None, None)
    b.send(b"x")
    assert seen.wait(2)
    assert where == [("test-io", ipyvirt.HANDLE_READABLE)]
    stats = impl.statistics()
    assert [(x.id, x.loop, x.thread) for x in stats.watches] == [(w, "io", "test-io")]
    b.close()  # the peer hangs up: reported though only READABLE was asked
    seen.clear()
    assert seen.wait(2)
    assert where[-1][1] & ipyvirt.HANDLE_HANGUP
    impl.remove_handle(w)
    a.close()


def test_frees_run_on_the_thread_outside_callbacks(
    split: tuple[asyncio.AbstractEventLoop, AsyncioEventImpl],
) -> None:
    loop, impl = split
    a, b = socket.socketpair()
    inside = threading.local()
    freed: list[tuple[str, bool]] = []
    done = threading.Event()

    def ff(opaque: Any) -> None:
        freed.append((threading.current_thread().name, getattr(inside, "yes", False)))
        done.set()

    def on_fd(watch: int, fd: int, events: int, opaque: Any) -> None:
        inside.yes = True
        impl.remove_handle(watch)  # removes itself: the free must wait for the callback's end
        inside.yes = False

    w = impl.add_handle(a.fileno(), 0, on_fd, None, ff)
    impl.update_handle(w, ipyvirt.HANDLE_WRITABLE)
    assert done.wait(2)
    assert freed == [("test-io", False)]
    loop.run_until_complete(impl.drain(timeout=2))
    a.close()
    b.close()


def test_hand_overs_from_many_threads_all_run() -> None:
    loop = asyncio.new_event_loop()
    impl = AsyncioEventImpl(loop)
    thread = impl.io_thread("test-io").start()
    ran: list[int] = []
    total = 4 * 5000

    def hammer(base: int) -> None:
        for i in range(5000):
            thread.call_soon_threadsafe(ran.append, base + i)

    workers = [threading.Thread(target=hammer, args=(n * 5000,)) for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    deadline = threading.Event()
    for _ in range(200):
        if len(ran) == total:
            break
        deadline.wait(0.01)
    assert sorted(ran) == list(range(total))
    thread.close()
    with pytest.raises(RuntimeError, match="closed"):
        thread.call_soon_threadsafe(ran.append, -1)
    impl.close()
    loop.close()


def test_owed_frees_survive_a_stopped_thread_and_run_on_the_next_lane() -> None:
    loop = asyncio.new_event_loop()
    impl = AsyncioEventImpl(loop)
    thread = impl.io_thread("test-io")
    impl.bind(loop, io_loop=thread)
    a, b = socket.socketpair()
    freed: list[str] = []
    w = impl.add_handle(a.fileno(), 0, lambda *args: None, "w", freed.append)
    thread.stop()
    impl.remove_handle(w)  # owed to a lane that no longer runs
    assert impl.statistics().pending_frees == 1
    impl.bind(loop, io_loop=loop)
    loop.run_until_complete(impl.drain(timeout=2))
    assert freed == ["w"]
    thread.close()
    impl.close()
    loop.close()
    a.close()
    b.close()


def test_a_later_bind_wins_over_an_earlier_switch_still_queued() -> None:
    """bind() to an io thread from another thread hands the switch to the running main loop;
    a bind back to the main loop that runs there first must win, and the watches must stay
    served by the main loop (the stale switch must not detach them)."""
    loop = asyncio.new_event_loop()
    impl = AsyncioEventImpl(loop, io_loop=loop)
    runner = threading.Thread(target=loop.run_forever)
    runner.start()
    a, b = socket.socketpair()
    seen = threading.Event()

    def on_fd(*args: Any) -> None:
        a.recv(16)
        seen.set()

    try:
        impl.add_handle(a.fileno(), ipyvirt.HANDLE_READABLE, on_fd, None, None)
        blocked, go = threading.Event(), threading.Event()

        def block() -> None:
            blocked.set()
            go.wait(5)

        loop.call_soon_threadsafe(block)
        loop.call_soon_threadsafe(lambda: impl.bind(loop, io_loop=loop))  # queued first...
        assert blocked.wait(5)
        thread = impl.io_thread("test-io")
        impl.bind(loop, io_loop=thread)  # ...runs after this bind, whose switch is queued
        thread.stop()
        go.set()
        for _ in range(3):
            seen.clear()
            b.send(b"x")
            assert seen.wait(5), "the watches lost their runner"
        assert "io" not in dict(impl.statistics().loops)  # the main loop serves the watches
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        impl.close()
        loop.close()
        a.close()
        b.close()


@pytest.mark.parametrize("first", ["stop", "close"])
def test_a_thread_stopped_before_it_started_never_starts(first: str) -> None:
    """bind() may start a thread (on the main loop) after its binder stopped or closed it:
    the late start must not register the wake pipe's fd (closed, perhaps reused by now)."""
    import select

    poller = select.epoll()
    thread = IoThread(poller, lambda ready: None, "late")
    getattr(thread, first)()
    assert thread.start() is thread
    assert not thread.is_running() and thread.ident is None
    assert poller.poll(0) == []
    other_r, other_w = os.pipe()  # takes the numbers close() released, if it did
    poller.register(other_r, select.EPOLLIN)  # no EEXIST: the late start registered nothing
    thread.close()
    poller.close()
    os.close(other_r)
    os.close(other_w)


def test_starting_twice_starts_once() -> None:
    import select

    poller = select.epoll()
    thread = IoThread(poller, lambda ready: None, "twice")
    thread.attach(-1, lambda: None)
    thread.attach(-1, lambda: None)
    assert thread.is_running()
    thread.close()
    poller.close()
