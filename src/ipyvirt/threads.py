"""A blocking call (a libvirt open, an RPC to a host that may not answer) on a thread of its
own, its outcome handed to an asyncio loop as a future.

Why not an executor: a call to a frozen daemon blocks until it answers again or dies (ipyvirt
sets no client keepalive: see :mod:`ipyvirt.credentials`), and an executor's few workers, all
held by frozen hosts, would stall every other host's reconnection. A thread per
call costs ~0.1 ms; callers keep at most one call per host in flight.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["in_thread"]

log = logging.getLogger("ipyvirt")

R = TypeVar("R")


def in_thread(
    loop: asyncio.AbstractEventLoop,
    call: Callable[[], R],
    *,
    name: str = "ipyvirt-call",
    orphan: Callable[[R], object] | None = None,
) -> asyncio.Future[R]:
    """Run ``call()`` on a new daemon thread; the future it returns (made on *loop*'s thread,
    so call this there) gets its result or exception.

    Invariant (tests/stress/test_threads.py): the future is settled on *loop*'s thread only,
    exactly once, unless cancelled first; a result nobody will take (the future was cancelled,
    or *loop* closed before the call returned) goes to ``orphan(result)`` instead, on
    whichever thread finds it so, exactly once: a connection opened for a host removed
    meanwhile is closed, not leaked.
    """
    future: asyncio.Future[R] = loop.create_future()

    def settle(result: R | None, error: BaseException | None) -> None:  # on loop's thread
        if future.cancelled():
            if error is None and orphan is not None:
                orphan(result)  # type: ignore[arg-type]  # no error: call's result
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]  # no error: call's result

    def run() -> None:
        try:
            result: R | None = call()
            error: BaseException | None = None
        except BaseException as err:  # handed over whole: the caller decides
            result, error = None, err
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: nobody takes it
            if error is None and orphan is not None:
                orphan(result)  # type: ignore[arg-type]  # no error: call's result

    threading.Thread(target=run, name=name, daemon=True).start()
    return future
