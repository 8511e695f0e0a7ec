"""What every ipyvirt widget shares: the main-thread rule, coalesced refreshes, closing."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from typing import Any

import libvirt

from ipyvirt import runtime
from ipyvirt.connection import Connection
from ipyvirt.errors import IpyvirtError
from ipyvirt.lanes import running_loop

log = logging.getLogger("ipyvirt")

#: every ipyvirt widget alive, so %unload_ext ipyvirt can close them
LIVE: weakref.WeakSet[Any] = weakref.WeakSet()

# the Coalescers whose refresh waits for the loop: flush_pending() runs them before a cell
_WAITING: weakref.WeakSet[Coalescer] = weakref.WeakSet()


def need_runtime() -> runtime.Runtime:
    rt = runtime.current()
    if rt is None:
        raise IpyvirtError(
            "ipyvirt's event loop is not running: %load_ext ipyvirt (or ipyvirt.start()) first."
        )
    return rt


def as_connection(conn: Connection | libvirt.virConnect) -> tuple[Connection, bool]:
    """An ipyvirt Connection for *conn*, and whether the caller must close it."""
    if isinstance(conn, Connection):
        return conn, False
    if isinstance(conn, libvirt.virConnect):
        return Connection(conn), True
    raise TypeError(
        f"expected a libvirt connection or an ipyvirt.Connection, got {type(conn).__name__}"
    )


class OnMain:
    """Runs widget work on the main loop's thread, the only one that touches widget state.

    Handlers of widget events may run on another thread (ipykernel 7 can route comms to
    subshells): they hand over here. Invariant: a widget's state (its model, its traits,
    its flags) is read and written on the main loop's thread only; from any other thread
    work reaches it through ``call_soon_threadsafe``, in the order it was handed over.
    """

    def __init__(self, rt: runtime.Runtime) -> None:
        self.rt = rt

    def __call__(self, fn: Callable[..., object], *args: Any) -> None:
        if self.rt.on_main_loop():
            fn(*args)
        else:
            self.rt.call_soon(fn, *args)


class Coalescer:
    """Calls *flush* at most once per *interval* seconds, soon after :meth:`poke`.

    A burst of events becomes one refresh: at most 1/interval updates a second, the latest
    state on screen within *interval* plus the refresh itself. Used on the main loop only.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, interval: float, flush: Callable[[], object]
    ):
        self.loop = loop
        self.interval = interval
        self.flush = flush
        self._handle: asyncio.TimerHandle | None = None
        self._last = float("-inf")
        self.flushes = 0

    def poke(self) -> None:
        if self._handle is None:
            when = max(self.loop.time(), self._last + self.interval)
            self._handle = self.loop.call_at(when, self._run)
            _WAITING.add(self)

    def flush_now(self) -> None:
        """Run a waiting refresh now instead of later."""
        if self._handle is not None:
            self._handle.cancel()
            self._run()

    def _run(self) -> None:
        self._handle = None
        _WAITING.discard(self)
        self._last = self.loop.time()
        self.flushes += 1
        try:
            self.flush()
        except Exception:
            log.exception("ipyvirt: a widget refresh failed")

    @property
    def pending(self) -> bool:
        return self._handle is not None

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        _WAITING.discard(self)


def flush_pending() -> int:
    """Run every waiting widget refresh now, on the main loop's thread; how many ran.

    A kernel calls it before each cell, after delivering the queued events: the event log,
    ``%virt events --follow`` and the domain table's re-read then start from them.
    """
    waiting = list(_WAITING)
    for coalescer in waiting:
        coalescer.flush_now()
    return len(waiting)


class Repeater:
    """Calls *fn* every *interval* seconds on the main loop until :meth:`cancel`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float, fn: Callable[[], object]):
        self.loop = loop
        self.interval = interval
        self.fn = fn
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start repeating; from any thread (a widget may be built in a subshell)."""
        if running_loop() is not self.loop:
            self.loop.call_soon_threadsafe(self.start)
            return
        if self._handle is None:
            self._handle = self.loop.call_later(self.interval, self._run)

    def _run(self) -> None:
        self._handle = self.loop.call_later(self.interval, self._run)
        try:
            self.fn()
        except Exception:
            log.exception("ipyvirt: a periodic widget refresh failed")

    @property
    def running(self) -> bool:
        return self._handle is not None

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
