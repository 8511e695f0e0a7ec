"""Free functions owed by removed watches and timers, and who waits for them.

libvirt's rule: a removed entry's free function runs exactly once, after the remove hook
returned, outside any callback or hook. So a removal only *owes* the free, to the lane whose
entry was removed (a callback of that lane may still be running with the opaque in hand); a
run of the lane's owed frees is queued on the lane's runner and pays them after the current
round of callbacks there.

The protocol, and its invariant: every owed free is in its lane's list, and while that list
is not empty either a run is queued on the lane's runner (``free_scheduled``) or the runner
is gone (closed, or stopped and abandoned) and :meth:`Frees.reschedule` will queue one when
the lane is bound again. ``owe`` appends under the lock; a run takes the whole list and
clears ``free_scheduled`` in one critical section, so an ``owe`` that follows sees the flag
clear and queues a new run, and one that precedes it is taken by that run.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from ipyvirt.eventimpl import FreeCallback
from ipyvirt.lanes import Lane

__all__ = ["Frees"]

log = logging.getLogger("ipyvirt")


class Frees:
    """The owed frees of an implementation's lanes, counted so that :meth:`settled` can wait
    for none to be owed (what ``drain()`` and ``is_idle()`` report)."""

    def __init__(
        self,
        lock: threading.Lock,
        run_one: Callable[[FreeCallback | None, Any], object],
        closed: Callable[[Lane], object],
    ) -> None:
        self._lock = lock  # the owner's registry lock
        self._run_one = run_one
        self._closed = closed
        #: owed now, over all lanes
        self.owed = 0
        #: run so far
        self.paid = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def owe(self, lane: Lane, ff: FreeCallback | None, opaque: Any) -> None:
        """Owe a free to *lane* (under the lock); :meth:`schedule` it after the lock."""
        lane.frees.append((ff, opaque))
        self.owed += 1

    def schedule(self, lane: Lane) -> None:
        """Queue a run of *lane*'s owed frees on its runner, unless one is queued already."""
        with self._lock:
            if lane.free_scheduled or not lane.frees:
                return
            lane.free_scheduled = True
        runner = lane.runner
        try:
            if runner is None:
                raise RuntimeError("no runner")
            # never run them here: we are inside a hook, perhaps inside a callback
            if runner.on_thread():
                runner.call_soon(self.run, lane)
            else:
                runner.call_soon_threadsafe(self.run, lane)
        except RuntimeError:  # the runner is closed: bind() reschedules on the next one
            with self._lock:
                lane.free_scheduled = False
            self._closed(lane)

    def reschedule(self, lanes: list[Lane]) -> None:
        """After a bind: forget runs queued on old runners and queue new ones."""
        with self._lock:
            for lane in lanes:
                lane.free_scheduled = False
        for lane in lanes:
            self.schedule(lane)

    def run(self, lane: Lane) -> None:
        """Pay *lane*'s owed frees (on its runner's thread, outside any callback)."""
        with self._lock:
            frees, lane.frees = lane.frees, []
            lane.free_scheduled = False
        for ff, opaque in frees:
            try:
                self._run_one(ff, opaque)
            except Exception:
                log.exception("ipyvirt: a libvirt free function raised")
        if not frees:
            return
        with self._lock:
            self.owed -= len(frees)
            self.paid += len(frees)
            waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
            if self.owed == 0:
                waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, fut)
            except RuntimeError:  # that waiter's loop is closed: nobody waits any more
                pass

    async def settled(self, timeout: float | None) -> None:
        """Return once nothing is owed; :class:`TimeoutError` after *timeout* seconds."""
        # Invariant: a waiter is added under the lock only while something is owed, and the
        # run that brings the count to 0 takes every waiter in the same critical section.
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.owed == 0:
                return
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, fut))
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"{self.owed} free functions still owed after {timeout} s: is the loop that "
                "owns them running?"
            ) from None


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
