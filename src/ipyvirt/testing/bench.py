"""What a conformance clause works with: a driver for the six hooks, a loop, helpers."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
import time
from asyncio import _get_running_loop as asyncio_running_loop
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import libvirt

from ipyvirt.eventimpl import EventImpl, FreeCallback, HandleCallback, TimeoutCallback

__all__ = ["Bench", "ClauseFailed", "DirectDriver", "Driver", "LibvirtDriver"]

#: builds an implementation served by the given loop
ImplFactory = Callable[[asyncio.AbstractEventLoop], EventImpl]


class ClauseFailed(AssertionError):
    """An implementation broke a clause of the contract; the message says how."""


class Driver:
    """Calls the six hooks one way or another, and notes when a hook is running."""

    #: whether free functions can be passed (libvirt's Python API passes none)
    supports_ff = True

    def __init__(self) -> None:
        self._in_hook = threading.local()

    def in_hook(self) -> bool:
        return bool(getattr(self._in_hook, "depth", 0))

    @contextmanager
    def _hook(self) -> Iterator[None]:
        self._in_hook.depth = getattr(self._in_hook, "depth", 0) + 1
        try:
            yield
        finally:
            self._in_hook.depth -= 1

    def add_handle(
        self, fd: int, events: int, cb: HandleCallback, opaque: Any, ff: FreeCallback | None = None
    ) -> int:
        raise NotImplementedError

    def update_handle(self, watch: int, events: int) -> None:
        raise NotImplementedError

    def remove_handle(self, watch: int) -> int:
        raise NotImplementedError

    def add_timeout(
        self, ms: int, cb: TimeoutCallback, opaque: Any, ff: FreeCallback | None = None
    ) -> int:
        raise NotImplementedError

    def update_timeout(self, timer: int, ms: int) -> None:
        raise NotImplementedError

    def remove_timeout(self, timer: int) -> int:
        raise NotImplementedError


class DirectDriver(Driver):
    """The hooks called straight on an :class:`EventImpl`, with Python callables."""

    def __init__(self, impl: EventImpl) -> None:
        super().__init__()
        self.impl = impl

    def add_handle(
        self, fd: int, events: int, cb: HandleCallback, opaque: Any, ff: FreeCallback | None = None
    ) -> int:
        with self._hook():
            return self.impl.add_handle(fd, events, cb, opaque, ff)

    def update_handle(self, watch: int, events: int) -> None:
        with self._hook():
            self.impl.update_handle(watch, events)

    def remove_handle(self, watch: int) -> int:
        with self._hook():
            return self.impl.remove_handle(watch)

    def add_timeout(
        self, ms: int, cb: TimeoutCallback, opaque: Any, ff: FreeCallback | None = None
    ) -> int:
        with self._hook():
            return self.impl.add_timeout(ms, cb, opaque, ff)

    def update_timeout(self, timer: int, ms: int) -> None:
        with self._hook():
            self.impl.update_timeout(timer, ms)

    def remove_timeout(self, timer: int) -> int:
        with self._hook():
            return self.impl.remove_timeout(timer)


class LibvirtDriver(Driver):
    """The hooks reached through libvirt (``libvirt.virEventAddHandle`` and friends), so the
    registered implementation is called from libvirt's C code, as in real use."""

    supports_ff = False

    def add_handle(
        self, fd: int, events: int, cb: HandleCallback, opaque: Any, ff: FreeCallback | None = None
    ) -> int:
        assert ff is None, "libvirt's Python API passes no free function"
        with self._hook():
            try:
                return int(libvirt.virEventAddHandle(fd, events, cb, opaque))
            except libvirt.libvirtError:
                return -1

    def update_handle(self, watch: int, events: int) -> None:
        with self._hook():
            libvirt.virEventUpdateHandle(watch, events)

    def remove_handle(self, watch: int) -> int:
        with self._hook():
            try:
                return int(libvirt.virEventRemoveHandle(watch))
            except libvirt.libvirtError:
                return -1

    def add_timeout(
        self, ms: int, cb: TimeoutCallback, opaque: Any, ff: FreeCallback | None = None
    ) -> int:
        assert ff is None, "libvirt's Python API passes no free function"
        with self._hook():
            try:
                return int(libvirt.virEventAddTimeout(ms, cb, opaque))
            except libvirt.libvirtError:
                return -1

    def update_timeout(self, timer: int, ms: int) -> None:
        with self._hook():
            libvirt.virEventUpdateTimeout(timer, ms)

    def remove_timeout(self, timer: int) -> int:
        with self._hook():
            try:
                return int(libvirt.virEventRemoveTimeout(timer))
            except libvirt.libvirtError:
                return -1


@dataclass
class Bench:
    """One clause's world: the loop the implementation serves, and a driver for its hooks."""

    loop: asyncio.AbstractEventLoop
    driver: Driver
    impl: EventImpl | None
    factory: ImplFactory | None
    daemon_uri: str | None = None
    #: the ``guest`` mode's domain: (a QEMU URI, a running domain whose serial console
    #: runs a shell)
    guest: tuple[str, str] | None = None
    #: exceptions libvirt-python reported after a hook raised into it (via sys.excepthook)
    escaped: list[str] = field(default_factory=list)
    _closers: list[Callable[[], object]] = field(default_factory=list)
    #: per thread: how many of the bench's callbacks are on this thread's stack. A free
    #: function is "inside a callback" only when one is on its own stack: one run on another
    #: lane's thread while a callback runs here is not nested in it (libvirt's own loop runs
    #: frees on its loop thread while the thread that removed the entry goes on)
    _depth: threading.local = field(default_factory=threading.local)
    _joiners: list[Callable[[], None]] = field(default_factory=list)
    _live_watches: set[int] = field(default_factory=set)
    _live_timers: set[int] = field(default_factory=set)

    # -- watches and timers removed after the clause, if it did not --------------------------

    def watch(
        self,
        fd: int,
        events: int,
        cb: HandleCallback,
        opaque: Any = None,
        ff: FreeCallback | None = None,
    ) -> int:
        watch = self.driver.add_handle(fd, events, cb, opaque, ff)
        if watch >= 0:
            self._live_watches.add(watch)
        return watch

    def unwatch(self, watch: int) -> int:
        self._live_watches.discard(watch)
        return self.driver.remove_handle(watch)

    def timer(
        self, ms: int, cb: TimeoutCallback, opaque: Any = None, ff: FreeCallback | None = None
    ) -> int:
        timer = self.driver.add_timeout(ms, cb, opaque, ff)
        if timer >= 0:
            self._live_timers.add(timer)
        return timer

    def untimer(self, timer: int) -> int:
        self._live_timers.discard(timer)
        return self.driver.remove_timeout(timer)

    def remove_leftovers(self) -> None:
        for watch in sorted(self._live_watches):
            self.unwatch(watch)
        for timer in sorted(self._live_timers):
            self.untimer(timer)

    # -- resources closed after the clause --------------------------------------------------

    def socketpair(self) -> tuple[socket.socket, socket.socket]:
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        self._closers += [a.close, b.close]
        return a, b

    def pipe(self) -> tuple[int, int]:
        r, w = os.pipe()
        self._closers += [lambda: _close_fd(r), lambda: _close_fd(w)]
        return r, w

    def on_exit(self, fn: Callable[[], object]) -> None:
        self._closers.append(fn)

    def close(self) -> None:
        for fn in reversed(self._closers):
            fn()
        self._closers.clear()

    # -- helpers ----------------------------------------------------------------------------

    def in_callback(self) -> bool:
        """Whether one of the bench's callbacks is on the calling thread's stack."""
        return bool(getattr(self._depth, "n", 0))

    def _enter_callback(self) -> None:
        self._depth.n = getattr(self._depth, "n", 0) + 1

    def _leave_callback(self) -> None:
        self._depth.n -= 1

    def handle_cb(self, record: list[Any], then: Callable[[], object] | None = None) -> Any:
        """A handle callback that appends ``(watch, fd, events, opaque)`` to *record*."""

        def cb(watch: int, fd: int, events: int, opaque: Any) -> None:
            self._enter_callback()
            try:
                record.append((watch, fd, events, opaque))
                if then is not None:
                    then()
            finally:
                self._leave_callback()

        return cb

    def timeout_cb(self, record: list[Any], then: Callable[[], object] | None = None) -> Any:
        """A timeout callback that appends ``(timer, opaque)`` to *record*."""

        def cb(timer: int, opaque: Any) -> None:
            self._enter_callback()
            try:
                record.append((timer, opaque))
                if then is not None:
                    then()
            finally:
                self._leave_callback()

        return cb

    async def until(self, predicate: Callable[[], object], timeout: float, what: str) -> None:
        """Wait until *predicate* holds, checking every 5 ms (this keeps the loop awake: use
        :meth:`signal` where waking the loop is what is being tested)."""
        deadline = self.loop.time() + timeout
        while not predicate():
            if self.loop.time() >= deadline:
                raise ClauseFailed(f"{what}: not within {timeout:g} s")
            await asyncio.sleep(0.005)

    def signal(self) -> tuple[asyncio.Future[float], Callable[[], None]]:
        """A future and a setter for callbacks: the future gets the loop time of the first
        call. Awaiting it (:meth:`wait`) leaves the loop asleep until something wakes it."""
        fut: asyncio.Future[float] = self.loop.create_future()

        def fire() -> None:
            when = self.loop.time()

            def resolve() -> None:
                if not fut.done():
                    fut.set_result(when)

            # an implementation may run fd watches on a thread of their own
            if asyncio_running_loop() is self.loop:
                resolve()
            else:
                self.loop.call_soon_threadsafe(resolve)

        return fut, fire

    async def wait(self, fut: asyncio.Future[float], timeout: float, what: str) -> float:
        """Await a :meth:`signal` future; the loop time at which it was set."""
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            raise ClauseFailed(f"{what}: not within {timeout:g} s") from None

    async def idle(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def from_thread(self, fn: Callable[[], object], delay: float = 0.0) -> None:
        """Run *fn* on a new thread after *delay* seconds, without waiting for it.

        With a delay, the loop is asleep in its selector when *fn* runs: what *fn* changes
        reaches the loop only if the implementation wakes it. The thread is joined (and its
        exception raised) when the clause ends."""
        errors: list[BaseException] = []

        def run() -> None:
            time.sleep(delay)
            try:
                fn()
            except BaseException as err:
                errors.append(err)

        def join() -> None:
            thread.join()
            if errors:
                raise errors[0]

        thread = threading.Thread(target=run, name="bench-worker")
        thread.start()
        if not delay:
            join()
        else:
            self._joiners.append(join)


def _close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


class EscapeRecorder:
    """Records exceptions that libvirt-python's C code prints after a Python hook raised.

    libvirt-python reports such an exception with ``PyErr_Print``, which calls
    ``sys.excepthook``: an exception that escaped from a hook into libvirt."""

    def __init__(self, sink: list[str]) -> None:
        self.sink = sink
        self.previous = sys.excepthook

    def __enter__(self) -> EscapeRecorder:
        sys.excepthook = self._hook
        return self

    def __exit__(self, *exc: object) -> None:
        sys.excepthook = self.previous

    def _hook(
        self, kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        self.sink.append(f"{kind.__name__}: {value}")


def run_bench(
    loop: asyncio.AbstractEventLoop, bench: Bench, check: Callable[[Bench], Awaitable[None]]
) -> None:
    async def body() -> None:
        try:
            await check(bench)
        finally:
            for join in bench._joiners:
                join()
            bench.remove_leftovers()
            await asyncio.sleep(0.01)  # let owed frees run before the fds close

    with EscapeRecorder(bench.escaped):
        try:
            loop.run_until_complete(body())
        except ClauseFailed as err:
            if bench.escaped:
                raise ClauseFailed(
                    f"{err} (earlier, an exception escaped from a hook into libvirt: "
                    f"{bench.escaped[0]})"
                ) from None
            raise
        finally:
            bench.close()
    if bench.escaped:
        raise ClauseFailed(f"an exception escaped from a hook into libvirt: {bench.escaped[0]}")
