"""AsyncioEventImpl beyond the contract: statistics, drain, errors, loops coming and going."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import ipyvirt
from ipyvirt import AsyncioEventImpl

from conftest import Registered


async def until(done: Callable[[], object], what: str, bound: float = 5.0) -> None:
    """Let the loop run until *done()*; a bound on a hang, never a speed check."""
    for _ in range(int(bound / 0.005)):
        if done():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"waited {bound} s for {what}")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_statistics_and_drain(loop: asyncio.AbstractEventLoop) -> None:
    impl = AsyncioEventImpl(loop, io_loop=loop)
    a, b = socket.socketpair()
    freed: list[str] = []
    fired: list[int] = []

    async def scenario() -> None:
        w = impl.add_handle(
            a.fileno(), ipyvirt.HANDLE_WRITABLE, lambda *x: None, None, freed.append
        )
        t = impl.add_timeout(1, lambda timer, o: fired.append(timer), "t", freed.append)
        await until(lambda: fired and impl.statistics().dispatches, "a fire and a dispatch")
        stats = impl.statistics()
        assert [(x.id, x.fd, x.event_names, x.loop) for x in stats.watches] == [
            (w, a.fileno(), "WRITABLE", "main")
        ]
        assert stats.watches[0].dispatches > 0
        assert stats.watches[0].thread == threading.current_thread().name
        assert [(x.id, x.interval_ms, x.loop) for x in stats.timers] == [(t, 1, "main")]
        assert stats.timers[0].fires == len(fired) > 0
        assert impl.remove_handle(w) == 0
        assert impl.remove_timeout(t) == 0
        stats = impl.statistics()
        assert (stats.watches, stats.timers, stats.pending_frees) == ((), (), 2)
        await impl.drain(timeout=1)
        stats = impl.statistics()
        assert stats.pending_frees == 0 and stats.frees_run == 2 and impl.is_idle()
        assert (stats.handles_added, stats.handles_removed) == (1, 1)
        assert (stats.timeouts_added, stats.timeouts_removed) == (1, 1)
        assert stats.fires == len(fired) and stats.dispatches > 0  # totals outlive the entries

    loop.run_until_complete(scenario())
    assert sorted(freed, key=str) == [None, "t"]
    impl.close()
    a.close()
    b.close()


def test_drain_times_out_with_a_count(loop: asyncio.AbstractEventLoop) -> None:
    impl = AsyncioEventImpl(loop, io_loop=loop)
    other = asyncio.new_event_loop()  # owns the timer's free, never runs
    impl.bind(other)
    impl.remove_timeout(impl.add_timeout(-1, lambda *a: None, None, None))
    impl.bind(other)

    async def wait() -> None:
        with pytest.raises(TimeoutError, match="1 free functions still owed"):
            await impl.drain(timeout=0.05)

    loop.run_until_complete(wait())
    impl.close()
    other.close()


def test_callback_errors_are_logged_and_counted(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    impl = AsyncioEventImpl(loop, io_loop=loop)

    def boom(timer: int, opaque: Any) -> None:
        raise ValueError("on purpose")

    t = impl.add_timeout(1, boom, None, None)
    with caplog.at_level(logging.ERROR, "ipyvirt"):
        loop.run_until_complete(
            until(lambda: impl.statistics().callback_errors >= 3, "three raising fires")
        )
    record = caplog.records[0]
    assert f"timer {t} raised" in record.getMessage()
    assert record.exc_info and record.exc_info[0] is ValueError
    impl.close()


def test_unknown_ids_are_logged_not_raised(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    impl = AsyncioEventImpl(loop, io_loop=loop)
    with caplog.at_level(logging.WARNING, "ipyvirt"):
        impl.update_handle(41, 1)
        impl.update_timeout(42, 1)
        assert impl.remove_handle(43) == -1
        assert impl.remove_timeout(44) == -1
    assert [r.getMessage() for r in caplog.records] == [
        "ipyvirt: update_handle(41): no such watch; ignored",
        "ipyvirt: update_timeout(42): no such timer; ignored",
        "ipyvirt: remove_handle(43): no such watch",
        "ipyvirt: remove_timeout(44): no such timer",
    ]
    impl.close()


def test_bad_fd_is_refused_with_a_log_line(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    impl = AsyncioEventImpl(loop, io_loop=loop)
    fd = os.open(os.devnull, os.O_RDONLY)  # regular files cannot be polled
    with caplog.at_level(logging.ERROR, "ipyvirt"):
        assert impl.add_handle(fd, ipyvirt.HANDLE_READABLE, lambda *a: None, None, None) == -1
        assert impl.add_handle(987, ipyvirt.HANDLE_READABLE, lambda *a: None, None, None) == -1
    os.close(fd)
    assert [r.getMessage().split(":")[1].strip() for r in caplog.records] == [
        f"cannot watch fd {fd}",
        "cannot watch fd 987",
    ]
    assert impl.statistics().watches == ()
    impl.close()


def test_closed_loop_is_reported_once_and_nothing_is_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = asyncio.new_event_loop()
    impl = AsyncioEventImpl(first, io_loop=first)
    first.close()
    fired: list[int] = []
    done = threading.Event()

    def add() -> None:  # from another thread, the way libvirt calls hooks
        impl.add_timeout(0, lambda timer, o: fired.append(timer), None, None)
        impl.add_timeout(0, lambda timer, o: fired.append(timer), None, None)
        done.set()

    with caplog.at_level(logging.ERROR, "ipyvirt"):
        threading.Thread(target=add).start()
        assert done.wait(5)
    assert len(caplog.records) == 1
    assert "loop serving libvirt's timers is closed" in caplog.records[0].getMessage()
    assert "impl.bind(loop)" in caplog.records[0].getMessage()
    second = asyncio.new_event_loop()
    impl.bind(second)
    second.run_until_complete(until(lambda: len(set(fired)) == 2, "both timers firing"))
    impl.close()
    second.close()


def test_no_loop_is_a_clear_error() -> None:
    with pytest.raises(ipyvirt.LoopNotRunning, match=r"pass loop=\.\.\., or call ipyvirt\.start"):
        AsyncioEventImpl()


def test_binding_away_from_a_loop_running_elsewhere_is_refused() -> None:
    busy = asyncio.new_event_loop()
    thread = threading.Thread(target=busy.run_forever)
    thread.start()
    try:
        impl = AsyncioEventImpl(busy, io_loop=busy)
        other = asyncio.new_event_loop()
        with pytest.raises(ipyvirt.LoopBusy, match="still runs in another thread: stop it"):
            impl.bind(other)
        other.close()
    finally:
        busy.call_soon_threadsafe(busy.stop)
        thread.join()
        impl.close()
        busy.close()


def test_a_second_registration_is_refused(registered: Registered) -> None:
    loop = asyncio.new_event_loop()
    with pytest.raises(ipyvirt.EventLoopAlreadyRegistered, match="reuse it"):
        AsyncioEventImpl(loop, io_loop=loop).register()
    loop.close()


def test_watches_on_a_io_loop_run_on_its_thread(loop: asyncio.AbstractEventLoop) -> None:
    """The split the kernel extension uses: timers on the main loop, fds on a helper thread."""
    io = asyncio.new_event_loop()
    io_thread = threading.Thread(target=io.run_forever, name="io-thread")
    io_thread.start()
    impl = AsyncioEventImpl(loop, io_loop=io)
    a, b = socket.socketpair()
    where: dict[str, str] = {}
    seen = threading.Event()

    def on_fd(*args: Any) -> None:
        where["watch"] = threading.current_thread().name
        seen.set()

    async def scenario() -> None:
        w = impl.add_handle(a.fileno(), ipyvirt.HANDLE_READABLE, on_fd, None, None)
        t = impl.add_timeout(
            0, lambda *x: where.setdefault("timer", threading.current_thread().name), None, None
        )
        b.send(b"x")
        await asyncio.sleep(0.05)
        assert seen.wait(2)
        stats = impl.statistics()
        assert [(x.id, x.loop, x.thread) for x in stats.watches] == [(w, "io", "io-thread")]
        assert [(x.id, x.loop) for x in stats.timers] == [(t, "main")]
        assert dict(stats.loops) == {"main": threading.current_thread().name, "io": "io-thread"}
        impl.remove_handle(w)
        impl.remove_timeout(t)
        await impl.drain(timeout=2)

    try:
        loop.run_until_complete(scenario())
        assert where == {"watch": "io-thread", "timer": threading.current_thread().name}
    finally:
        io.call_soon_threadsafe(io.stop)
        io_thread.join()
        impl.close()
        io.close()
        a.close()
        b.close()


def test_by_default_watches_run_on_an_io_thread_of_its_own(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """The fast path is the default: AsyncioEventImpl(loop) serves fd watches from a thread
    that waits on their epoll set, and close() ends that thread."""
    before = {t.name for t in threading.enumerate()}
    impl = AsyncioEventImpl(loop)
    a, b = socket.socketpair()
    seen = threading.Event()
    where: list[str] = []

    def on_fd(*args: Any) -> None:
        where.append(threading.current_thread().name)
        a.recv(16)
        seen.set()

    w = impl.add_handle(a.fileno(), ipyvirt.HANDLE_READABLE, on_fd, None, None)
    b.send(b"x")
    assert seen.wait(5)
    assert where == ["ipyvirt-io"]
    assert dict(impl.statistics().loops)["io"] == "ipyvirt-io"
    impl.remove_handle(w)
    impl.close()
    assert {t.name for t in threading.enumerate()} - before == set()
    a.close()
    b.close()
