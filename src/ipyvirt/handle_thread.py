"""A thread that serves an :class:`AsyncioEventImpl`'s fd watches straight from its epoll set.

On an asyncio loop, the implementation's epoll set is one more fd for the loop's own selector
to watch: every dispatch costs the loop's epoll_wait *and* ours. The helper thread that
serves fd watches in a kernel has nothing else to do, so it waits on the implementation's
epoll set itself: one epoll_wait a round, which also hands over each fd's real condition.

It offers the few loop methods the implementation uses for a lane (``call_soon``,
``call_soon_threadsafe``, ``is_running``, ``is_closed``): free functions and other hand-overs
are queued and run after the current round of callbacks, never inside one.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ipyvirt.asyncio_impl import AsyncioEventImpl

__all__ = ["HandleThread"]

log = logging.getLogger("ipyvirt")

_MAX_EVENTS = 64


class HandleThread:
    """Runs *impl*'s fd watch callbacks on a thread named *name* until :meth:`stop`."""

    def __init__(self, impl: AsyncioEventImpl, name: str = "ipyvirt-io") -> None:
        self._impl = impl
        self.name = name
        self._calls: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._woken = False
        self._stopping = False
        self._closed = False
        self.ident: int | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self.is_running() else "stopped"
        return f"<HandleThread {self.name} {state}>"

    def start(self) -> HandleThread:
        # the wake pipe sits in the same epoll set: the impl's dispatch finds no watch on it
        self._impl._epoll.register(self._wake_r, select.EPOLLIN)
        self._thread.start()
        return self

    # -- what the implementation calls, like an asyncio loop's --------------------------------

    def is_running(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def is_closed(self) -> bool:
        return self._closed

    def on_thread(self) -> bool:
        return self.ident == threading.get_ident()

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Queue ``fn(*args)`` from this thread: it runs after the current round."""
        self._calls.append((fn, args))

    def call_soon_threadsafe(self, fn: Callable[..., object], *args: Any) -> None:
        """Queue ``fn(*args)`` from any thread and wake the thread."""
        if self._closed:
            raise RuntimeError("the handle thread is closed")
        self._calls.append((fn, args))
        if not self._woken:
            self._woken = True
            try:
                os.write(self._wake_w, b"\0")
            except BlockingIOError:  # the pipe is full of wake-ups already
                pass

    # -- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        self.ident = threading.get_ident()
        impl, poll, wake = self._impl, self._impl._epoll.poll, self._wake_r
        while not self._stopping:
            ready = poll(0 if self._calls else -1, _MAX_EVENTS)
            for fd, _ in ready:
                if fd == wake:
                    # Drain first, then clear: a producer that saw _woken True before the
                    # clear has its call queued already (appended before it read the flag),
                    # and one that sees it False writes a byte that no drain swallows.
                    try:
                        while os.read(wake, 512):
                            pass
                    except BlockingIOError:
                        pass
                    self._woken = False
            impl._dispatch(ready)
            calls = self._calls
            for _ in range(len(calls)):  # what is queued meanwhile waits for the next round
                fn, args = calls.popleft()
                try:
                    fn(*args)
                except Exception:
                    log.exception("ipyvirt: %r failed on %s", fn, self.name)

    def stop(self) -> None:
        """Stop the thread after its current round; queued calls stay for the next lane."""
        self._stopping = True
        if self._thread.is_alive():
            os.write(self._wake_w, b"\0")
            self._thread.join(10)

    def close(self) -> None:
        self.stop()
        if not self._closed:
            self._closed = True
            try:
                self._impl._epoll.unregister(self._wake_r)
            except (OSError, ValueError):
                pass
            os.close(self._wake_r)
            os.close(self._wake_w)
