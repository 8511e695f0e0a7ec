"""Who runs what: ipyvirt's event loop in a kernel, a script or someone's asyncio program.

- **fd watches** (libvirt's sockets; the daemon's keepalive pings are answered there) run on
  a helper thread, ``ipyvirt-io``, that waits on the watches' epoll set itself
  (:class:`~ipyvirt.io_thread.IoThread`): a cell that blocks the main loop for
  minutes does not make the daemon drop the connection.
- **timers** run on the *main* loop. libvirt delivers every event to its callbacks from a
  timer, so every event callback runs there: in a kernel, the main thread, between cells.
- free functions run on the loop that owned the watch or timer.
- :meth:`ipyvirt.Runtime.deliver_queued` runs, on the main loop, what the loop owes before it takes
  its next turn: a kernel calls it before each cell (see :data:`~ipyvirt.runtime.DELIVER_ROUNDS`).

:func:`start` sets this up once per process (libvirt takes one event loop registration for
the life of the process) and moves it to another main loop when called again from one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from ipyvirt.asyncio_impl import AsyncioEventImpl
from ipyvirt.errors import EventLoopAlreadyRegistered
from ipyvirt.eventimpl import registered_impl
from ipyvirt.io_thread import IoThread
from ipyvirt.lanes import running_loop

__all__ = ["Delivery", "Runtime", "current", "start", "stop"]

log = logging.getLogger("ipyvirt")

# start() and stop() may come from any thread (a cell on a subshell, a script's threads).
# Invariant: they run one at a time under _lock, and _current changes only there; readers
# (current()) see the old runtime or the new one, never a half-built one, because _current
# is assigned last.
_lock = threading.RLock()
_current: Runtime | None = None

# The budget of deliver_queued(), so that a storm of events cannot stall a cell: the first
# round always runs whole (it holds the guarantee: every event libvirt has queued is
# delivered); rounds after it deliver what callbacks caused and what arrived meanwhile, and
# stop at DELIVER_ROUNDS, or once DELIVER_SECONDS have passed, or when nothing is due. What
# is left waits for the loop's next turn, as it would without the hook.
#: at most this many rounds of firing the due timers
DELIVER_ROUNDS: Final = 4
#: no round starts after this long
DELIVER_SECONDS: Final = 0.02
#: timer fires in one round at most (libvirt has one event timer per connection and driver)
DELIVER_FIRES: Final = 1000


@dataclass(frozen=True)
class Delivery:
    """What one :meth:`ipyvirt.Runtime.deliver_queued` did."""

    #: rounds of firing the due timers (the last one may have found none due)
    rounds: int
    #: timer callbacks run, all rounds together
    fires: int
    #: calls handed over to the main loop that ran (a connection's close, for one)
    handed_over: int
    #: stopped by the budget after a round that fired timers (more may be due)
    budget_spent: bool


class _LoopThread:
    """An asyncio loop running forever in a daemon thread of its own."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        ready = threading.Event()
        self.loop.call_soon(ready.set)
        self.thread.start()
        ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        self.loop.close()


@dataclass
class Runtime:
    """ipyvirt's loops and its registered :class:`AsyncioEventImpl`."""

    impl: AsyncioEventImpl
    #: where timers, and so every libvirt event callback, run
    main_loop: asyncio.AbstractEventLoop
    #: where fd watches run (thread ``ipyvirt-io``)
    io: IoThread
    #: set when ipyvirt runs the main loop itself (no running loop when started)
    _own_main: _LoopThread | None = None
    #: what the latest :meth:`deliver_queued` did
    last_delivery: Delivery | None = None
    # calls of deliver_soon() not run yet: appended on any thread, run on the main loop's
    _handed_over: deque[tuple[Callable[..., object], tuple[Any, ...]]] = field(
        default_factory=deque
    )

    @property
    def main_thread_name(self) -> str:
        return self._own_main.thread.name if self._own_main else threading.main_thread().name

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on the main loop, from any thread: later if called on it."""
        try:
            self.main_loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # closed: nobody is there to run it
            log.error("ipyvirt: the main loop is closed; %r was not run", fn)

    def deliver_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Like :meth:`call_soon`, for an event's delivery: also run by
        :meth:`deliver_queued`, so it is never left behind a cell that is about to run."""
        self._handed_over.append((fn, args))
        self.call_soon(self._run_handed_over, 1)

    def _run_handed_over(self, most: int) -> int:
        ran = 0
        while ran < most:
            try:
                fn, args = self._handed_over.popleft()
            except IndexError:  # deliver_queued() ran it already
                break
            ran += 1
            try:
                fn(*args)
            except Exception:
                log.exception("ipyvirt: delivering %r failed", fn)
        return ran

    def deliver_queued(self) -> Delivery:
        """On the main loop's thread: deliver now what the loop would deliver on its next
        turns. Fires libvirt's due timers (and so every event libvirt has queued, to every
        callback) and runs the deliveries handed over with :meth:`deliver_soon`, within the
        budget :data:`~ipyvirt.runtime.DELIVER_ROUNDS` and
        :data:`~ipyvirt.runtime.DELIVER_SECONDS` set."""
        start = time.monotonic()
        rounds = fires = 0
        spent = False
        while True:
            rounds += 1
            fired = self.impl.fire_due_timers(DELIVER_FIRES)
            fires += fired
            if not fired:
                break
            if rounds == DELIVER_ROUNDS or time.monotonic() - start >= DELIVER_SECONDS:
                spent = True
                break
        # those queued now; a delivery that hands over another one leaves it to the loop
        handed = self._run_handed_over(len(self._handed_over))
        self.last_delivery = Delivery(rounds, fires, handed, spent)
        return self.last_delivery

    def on_main_loop(self) -> bool:
        return running_loop() is self.main_loop


def current() -> Runtime | None:
    """The running :class:`Runtime`, if :func:`start` was called."""
    return _current


def start(loop: asyncio.AbstractEventLoop | None = None) -> Runtime:
    """Run libvirt's events with ipyvirt: on *loop*, the running loop, or a loop of its own.

    Call it before opening libvirt connections. In a kernel ``%load_ext ipyvirt`` calls it;
    in an asyncio program, call it from the running loop; in a plain script, call it anywhere
    and a background thread ``ipyvirt-main`` runs the loop. Calling it again with the same
    loop returns the same runtime; with another loop, moves everything to that loop.
    """
    global _current
    with _lock:
        own_main = None
        if loop is None:
            loop = running_loop()
        if loop is None and _current is not None:
            return _current
        if loop is None:
            own_main = _LoopThread("ipyvirt-main")
            loop = own_main.loop
        if _current is not None and _current.main_loop is loop:
            return _current
        old = _current
        if old is not None:
            _retire(old)
        impl = registered_impl()
        if impl is None:
            try:
                impl = AsyncioEventImpl(loop, io_loop=loop).register()
            except EventLoopAlreadyRegistered:
                if own_main is not None:
                    own_main.stop()
                raise
        elif not isinstance(impl, AsyncioEventImpl):
            raise EventLoopAlreadyRegistered(
                f"{impl!r} is libvirt's event loop in this process, not ipyvirt's: restart "
                "the process and start ipyvirt first."
            )
        io = impl.io_thread("ipyvirt-io")
        impl.bind(loop, io_loop=io)
        _current = Runtime(impl, loop, io, own_main)
        return _current


def stop() -> None:
    """Stop ipyvirt's threads. libvirt keeps the registration: until :func:`start` runs again,
    watches and timers move to the main loop if it still runs, and wait otherwise."""
    global _current
    with _lock:
        if _current is not None:
            _retire(_current)
            _current = None


def _retire(rt: Runtime) -> None:
    """Stop *rt*'s threads; its watches and timers go to its main loop (if it still runs)."""
    rt.io.stop()
    if rt._own_main is not None:
        rt._own_main.loop.call_soon_threadsafe(rt._own_main.loop.stop)
        rt._own_main.thread.join(10)
    if not rt.main_loop.is_closed():
        rt.impl.bind(rt.main_loop, io_loop=rt.main_loop)
    rt.io.close()
