"""Reads that block (libvirt RPCs) on worker threads, their results applied on the main loop.

Written once for every widget: the domain table's re-reads, the usage poll, the actions.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ipyvirt.lanes import running_loop

__all__ = ["OffLoop"]

log = logging.getLogger("ipyvirt")

R = TypeVar("R")


def _log_failure(err: BaseException) -> None:
    log.error("ipyvirt: a read off the loop failed", exc_info=err)


class OffLoop:
    """Runs ``read()`` on a worker thread and ``apply(result)`` on *loop*'s thread.

    Invariants (the stress test in tests/stress/test_off_loop_reads.py attacks each):

    - at most *limit* reads are in flight (``None``: no limit, queued for *workers*);
      :meth:`submit` beyond it does nothing and says so (False);
    - the in-flight count is read and written on *loop*'s thread only: :meth:`submit` from
      another thread hands itself over with ``call_soon_threadsafe`` first;
    - every read that starts ends in exactly one call on *loop*'s thread, ``apply(result)``,
      or ``fail(error)`` when the read raised, *any* exception: the in-flight count goes
      down before it, so a failing read never leaves the owner busy for ever;
    - nothing is applied once :meth:`close` has returned: the closed flag is set, and each
      apply/fail runs, under one lock, so a close from another thread waits for an apply
      under way and every later one is dropped (still counted down);
    - :meth:`close` waits for the reads under way (they use a connection that whoever
      closes us may close next; unless told not to, for reads under a lease) and after it
      no read starts.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        name: str = "ipyvirt-read",
        workers: int = 1,
        limit: int | None = 1,
    ) -> None:
        self.loop = loop
        self.limit = limit
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._lock = threading.RLock()
        self._closed = False
        self._inflight = 0
        #: reads started, applied (or failed) on the loop, dropped after close: tests read these
        self.started = 0
        self.applied = 0
        self.dropped = 0

    @property
    def busy(self) -> bool:
        """A read is in flight (read it on the loop's thread)."""
        return self._inflight > 0

    @property
    def full(self) -> bool:
        return self.limit is not None and self._inflight >= self.limit

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(
        self,
        read: Callable[[], R],
        apply: Callable[[R], object],
        fail: Callable[[BaseException], object] = _log_failure,
    ) -> bool:
        """Start ``read`` unless closed or full; True if it started (or was handed over to
        the loop's thread, where it starts unless closed or full by then)."""
        if running_loop() is not self.loop:
            try:
                self.loop.call_soon_threadsafe(self.submit, read, apply, fail)
            except RuntimeError:  # the loop is closed: nobody would apply it
                return False
            return True
        with self._lock:
            if self._closed or self.full:
                return False
            self._inflight += 1
            self.started += 1
            self._pool.submit(self._run, read, apply, fail)
        return True

    def _run(
        self,
        read: Callable[[], R],
        apply: Callable[[R], object],
        fail: Callable[[BaseException], object],
    ) -> None:
        """On a worker: the read, then exactly one hand-over to the loop, whatever happens."""
        try:
            result = read()
        except BaseException as err:
            self._hand_over(self._done, None, err, apply, fail)
        else:
            self._hand_over(self._done, result, None, apply, fail)

    def _hand_over(self, fn: Callable[..., None], *args: object) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: nobody is left to apply it
            log.error("ipyvirt: the main loop is closed; a read's result was dropped")

    def _done(
        self,
        result: R | None,
        error: BaseException | None,
        apply: Callable[[R], object],
        fail: Callable[[BaseException], object],
    ) -> None:
        """On the loop's thread: count the read down, then apply it unless closed."""
        self._inflight -= 1
        with self._lock:
            if self._closed:
                self.dropped += 1
                return
            self.applied += 1
            try:
                if error is not None:
                    fail(error)
                else:
                    apply(result)  # type: ignore[arg-type]  # no error: the read's result
            except Exception:
                log.exception("ipyvirt: applying a read failed")

    def close(self, wait: bool = True) -> None:
        """Apply nothing more; wait for the reads under way (*wait* false: let them end on
        their own, for reads that hold a :class:`~ipyvirt.leases.Leases` lease, which the
        connection's close waits for). Idempotent, from any thread."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=wait)
