"""Threads calling on a libvirt connection, and the close that waits for them.

libvirt-python's ``virConnect.close()`` drops the reference that a call under way on another
thread does not hold: the connection is freed under that call (SIGSEGV, or a hang; with plain
libvirt-python, closing during another thread's loop of ``getAllDomainStats`` did one or the
other in 3 runs of 3). So the threads ipyvirt starts to call on a connection hold a lease for
the time of their calls, and the connection is closed only once none is held.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from ipyvirt.errors import IpyvirtError

__all__ = ["Closing", "Leases"]

R = TypeVar("R")


class Closing(IpyvirtError):
    """The connection is closing: no call may start on it."""


class Leases:
    """Leases on one connection: :meth:`hold` around calls, :meth:`close` before closing it.

    Invariant (the stress test in tests/stress/test_leases.py attacks it): once :meth:`close`
    has returned, no lease is held and none can be taken (:meth:`hold` raises
    :class:`Closing`). The count and the closing flag change under one condition's lock;
    :meth:`close` sets the flag first, then waits for the count to reach zero.
    """

    def __init__(self, what: str) -> None:
        self._what = what
        self._cond = threading.Condition()
        self._held = 0
        self._closing = False

    @property
    def held(self) -> int:
        with self._cond:
            return self._held

    @property
    def closing(self) -> bool:
        with self._cond:
            return self._closing

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold a lease for the calls made inside; :class:`Closing` once the close began."""
        with self._cond:
            if self._closing:
                raise Closing(f"{self._what} is closing")
            self._held += 1
        try:
            yield
        finally:
            with self._cond:
                self._held -= 1
                if not self._held:
                    self._cond.notify_all()

    def holding(self, call: Callable[[], R]) -> Callable[[], R]:
        """*call* made under a lease: what a worker thread runs."""

        def leased() -> R:
            with self.hold():
                return call()

        return leased

    def close(self, timeout: float | None = None) -> bool:
        """Let no lease start, then wait until none is held (at most *timeout* seconds);
        True when none is. Idempotent, from any thread but one that holds a lease."""
        with self._cond:
            self._closing = True
            return self._cond.wait_for(lambda: not self._held, timeout)
