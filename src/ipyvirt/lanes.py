"""Where an implementation's entries run, and the free functions they owe.

A *lane* is a loop (an asyncio loop, or a :class:`~ipyvirt.handle_thread.HandleThread`)
serving part of an :class:`~ipyvirt.AsyncioEventImpl`: its timers, or its fd watches. Free
functions are owed to the lane whose entry was removed, and run there.
"""

from __future__ import annotations

import asyncio
import threading
from asyncio import events as _asyncio_events
from dataclasses import dataclass, field
from typing import Any

from ipyvirt.eventimpl import FreeCallback
from ipyvirt.handle_thread import HandleThread

__all__ = ["Lane", "Loop", "Owed", "on", "rebind", "running_loop"]

Loop = asyncio.AbstractEventLoop | HandleThread


@dataclass(eq=False)
class Lane:
    name: str
    loop: Loop | None = None
    #: the thread the loop ran one of ours on ("" until then; a HandleThread's from the start)
    thread: str = ""
    frees: list[tuple[FreeCallback | None, Any]] = field(default_factory=list)
    free_scheduled: bool = False
    closed_reported: bool = False


def rebind(lane: Lane, loop: Loop) -> None:
    if lane.loop is not loop:
        lane.loop = loop
        lane.thread = loop.name if isinstance(loop, HandleThread) else ""
    lane.closed_reported = False


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio loop running in this thread, if any."""
    # the C accelerated getter: no exception when none runs, unlike get_running_loop()
    return _asyncio_events._get_running_loop()


def on(loop: Loop | None) -> bool:
    """Whether we run on *loop*'s thread, inside it."""
    if isinstance(loop, HandleThread):
        return loop.on_thread()
    return loop is not None and loop is running_loop()


class Owed:
    """How many free functions are owed, and coroutines waiting for that to reach 0."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.count += n

    def paid(self, n: int) -> None:
        with self._lock:
            self.count -= n
            waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
            if self.count == 0:
                waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, fut)
            except RuntimeError:  # that waiter's loop is closed: nobody waits any more
                pass

    async def settled(self, timeout: float | None) -> None:
        """Return once nothing is owed; :class:`TimeoutError` after *timeout* seconds."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.count == 0:
                return
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, fut))
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"{self.count} free functions still owed after {timeout} s: is the loop that "
                "owns them running?"
            ) from None


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
