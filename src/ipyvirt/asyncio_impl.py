"""The libvirt event loop contract on asyncio, safe to call from any thread.

The hooks sit on top of three mechanisms, one module each:

- :mod:`ipyvirt.watches`: fd watches in an epoll set of their own, dispatched by the *io*
  lane (an :class:`~ipyvirt.io_thread.IoThread`, or an asyncio loop that reads the set's fd);
- :mod:`ipyvirt.timers`: timers as asyncio handles on the *main* loop;
- :mod:`ipyvirt.frees`: the free functions removals owe, paid on the lane that owned the
  entry, after the current round of callbacks there.

One lock guards the registry (ids, watches, timers, counters, owed frees); it is never held
while a callback or free function runs, so a callback may call any hook (libvirt's do).

libvirt accepts one implementation per process, so the state outlives a loop:
:meth:`AsyncioEventImpl.bind` moves it to new loops. While a bound loop is closed, changes
are kept and reported in one log line, never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, Final

from ipyvirt.errors import LoopBusy, LoopNotRunning
from ipyvirt.eventimpl import EventImpl, FreeCallback, HandleCallback, TimeoutCallback
from ipyvirt.frees import Frees
from ipyvirt.io_thread import IoThread
from ipyvirt.lanes import Lane, LoopRunner, Runner, running_loop
from ipyvirt.statistics import LoopStatistics, TimerInfo, WatchInfo
from ipyvirt.timers import Timer, TimerSet
from ipyvirt.watches import Watch, WatchSet

__all__ = ["AsyncioEventImpl"]

log = logging.getLogger("ipyvirt")

_INT_MAX: Final = 2**31 - 1

#: what bind() accepts for a lane: an asyncio loop, or an io thread for the io lane
Loop = asyncio.AbstractEventLoop | IoThread


class AsyncioEventImpl(EventImpl):
    """libvirt's event loop on asyncio: timers on *loop*, fd watches on *io_loop*.

    *loop* defaults to the running loop. *io_loop* defaults to an io thread of the
    implementation's own (:meth:`io_thread`), the fastest way to serve fd watches and the
    one that keeps daemon connections alive while *loop* is blocked; ``io_loop=loop`` serves
    them on *loop* itself (one-loop mode: no thread, but about 1.5x the dispatch cost of a
    plain asyncio reader). Every hook may be called from any thread. Callbacks that raise
    are logged with their traceback and counted.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        io_loop: Loop | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._watches = WatchSet(self._run_handle_callback, self._watch_failed)
        self._timers = TimerSet(self._run_timeout_callback, self._timer_failed)
        self._frees = Frees(self._lock, self._free_callback_opaque, self._report_closed)
        self._main = Lane("main")
        self._io = self._main
        self._last_id = 0
        self._handles_added = self._handles_removed = 0
        self._timeouts_added = self._timeouts_removed = 0
        self._callback_errors = 0
        self._closed = False
        #: io threads made by io_thread(): close() closes them
        self._threads: list[IoThread] = []
        self.bind(loop, io_loop=self.io_thread() if io_loop is None else io_loop)

    def __repr__(self) -> str:
        lanes = self._main.name if self._io is self._main else f"main,{self._io.name}"
        return (
            f"<{type(self).__name__} watches={len(self._watches.by_id)} "
            f"timers={len(self._timers.by_id)} loops={lanes}>"
        )

    # -- binding to loops --------------------------------------------------------------------

    def bind(
        self, loop: asyncio.AbstractEventLoop | None = None, *, io_loop: Loop | None = None
    ) -> None:
        """Serve timers on *loop* (default: the running one) and watches on *io_loop*:
        another asyncio loop, or an io thread of this implementation's (:meth:`io_thread`).
        Without *io_loop*, watches stay on a separate io lane that still runs, and go to
        *loop* otherwise.

        Everything alive moves over: watches, timers (re-armed from now) and owed frees.
        A loop still running in another thread must be stopped first; an io thread made by
        :meth:`io_thread` is stopped here.
        """
        if self._closed:
            raise LoopNotRunning("this AsyncioEventImpl was closed: create a new one.")
        if loop is None:
            loop = running_loop()
            if loop is None:
                raise LoopNotRunning(
                    "AsyncioEventImpl needs an asyncio loop and none is running here: pass "
                    "loop=..., or call ipyvirt.start(), which runs one in a background thread."
                )
        main = self._runner_for(loop)
        assert isinstance(main, LoopRunner)  # invariant: timers need an asyncio loop
        if io_loop is None:
            current = self._io.runner if self._io is not self._main else None
            io = current if current is not None and current.is_running() else main
        else:
            io = main if io_loop is loop else self._runner_for(io_loop)
        for lane in (self._main, self._io):
            old = lane.runner
            # abandoning a loop that runs on elsewhere could race our callbacks queued there
            if old is None or old is main or old is io:
                continue
            if old.is_running() and not old.on_thread() and old in self._threads:
                old.stop()  # an io thread of ours: stopped here, it dispatches no more
            elif old.is_running() and not old.on_thread():
                raise LoopBusy(
                    f"the {lane.name} loop {old!r} still runs in another thread: stop it "
                    "before binding ipyvirt's event loop elsewhere."
                )
        old_io = self._io.runner
        with self._lock:
            self._main.bind(main)
            self._timers.bind(main)
            if io is main:
                if self._io is not self._main:  # the io lane's owed frees move with its watches
                    self._main.frees += self._io.frees
                    self._io.frees = []  # a late run of the old lane must find none
                self._io = self._main
            else:
                if self._io is self._main:
                    self._io = Lane("io")
                self._io.bind(io)
            timers = list(self._timers.by_id.values())
            lanes = [self._main] if self._io is self._main else [self._main, self._io]
        if old_io is None or old_io is io:
            self._call_soon(self._io, self._attach, io, direct_ok=True)
        elif old_io.is_running() and not old_io.on_thread():
            # only the main loop can still run elsewhere here (other runners were refused
            # above): it stops reading the watches on its own thread, then the new runner
            # starts (see _switch)
            old_io.call_soon_threadsafe(self._switch, old_io, io)
        else:
            self._switch(old_io, io)
        for timer in timers:
            self._call_soon(self._main, self._timers.arm, timer, direct_ok=True)
        self._frees.reschedule(lanes)

    def _runner_for(self, loop: Loop) -> Runner:
        """The runner serving *loop* now, or a new one for it."""
        for lane in (self._main, self._io):
            runner = lane.runner
            if runner is loop or (isinstance(runner, LoopRunner) and runner.loop is loop):
                return runner
        if isinstance(loop, asyncio.AbstractEventLoop):
            return LoopRunner(loop)
        return loop

    def io_thread(self, name: str = "ipyvirt-io") -> IoThread:
        """A thread to serve this implementation's fd watches straight from their epoll set:
        pass it to :meth:`bind` as *io_loop*, which starts it; :meth:`close` closes it."""
        thread = IoThread(self._watches.epoll, self._watches.dispatch, name)
        self._threads.append(thread)
        return thread

    # Invariant: at most one runner dispatches the watch set at any time. A new runner is
    # attached only after the old one was detached on its own thread (an asyncio loop's
    # reader removed there) or stopped by its owner (an io thread, which bind() requires);
    # an io thread starts dispatching only when attached, never when made.

    def _switch(self, old: Runner, new: Runner) -> None:
        io = self._io
        if io.runner is not new:  # a later bind() took the lane meanwhile, and switched it
            return
        old.detach(self._watches.fileno())
        self._call_soon(io, self._attach, new, direct_ok=True)

    def _attach(self, runner: Runner) -> None:
        if self._io.runner is runner and not self._closed:
            runner.attach(self._watches.fileno(), self._watches.dispatch_ready)

    def close(self) -> None:
        """Detach from the loops and release the epoll set.

        For implementations that were never registered: libvirt keeps calling a registered
        one for the rest of the process.
        """
        if self._io.runner is not None:
            self._io.runner.detach(self._watches.fileno())
        for thread in self._threads:
            thread.close()
        with self._lock:
            timers = list(self._timers.by_id.values())
            self._closed = self._timers.closed = True
        for timer in timers:
            self._call_soon(self._main, self._timers.arm, timer, direct_ok=True)
        self._watches.close()

    # -- running things on the right lane -----------------------------------------------------

    def _call_soon(
        self, lane: Lane, fn: Callable[..., object], *args: Any, direct_ok: bool = False
    ) -> None:
        """Run *fn* on *lane*'s runner: now if we are on it (or, with *direct_ok*, if it is not
        running), else handed over, waking it."""
        runner = lane.runner
        if runner is None:
            return
        if runner.on_thread() or (direct_ok and not runner.is_running() and not runner.is_closed()):
            fn(*args)
            return
        try:
            runner.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed
            self._report_closed(lane)

    def _report_closed(self, lane: Lane) -> None:
        if not lane.closed_reported:
            lane.closed_reported = True
            log.error(
                "ipyvirt: the asyncio loop serving libvirt's %s is closed; libvirt's events "
                "wait, none lost, until impl.bind(loop) or ipyvirt.start() gives it a new one.",
                "timers" if lane is self._main else "fd watches",
            )

    def _next_id(self) -> int:
        # libvirt ids are C ints and 0 means "none": count from 1, wrap past INT_MAX, and
        # skip ids still alive. Watches and timers share the count, so an id names one entry.
        while True:
            self._last_id = self._last_id % _INT_MAX + 1
            ident = self._last_id
            if ident not in self._watches.by_id and ident not in self._timers.by_id:
                return ident

    # -- fd watches -----------------------------------------------------------------------------

    def add_handle(
        self, fd: int, events: int, cb: HandleCallback, opaque: Any, ff: FreeCallback | None
    ) -> int:
        with self._lock:
            watch = Watch(self._next_id(), fd, events, cb, opaque, ff)
            try:
                self._watches.add(watch)
            except OSError as err:
                log.error("ipyvirt: cannot watch fd %d: %s", fd, err.strerror or err)
                return -1
            self._handles_added += 1
        return watch.id

    def update_handle(self, watch: int, events: int) -> None:
        with self._lock:
            try:
                entry = self._watches.update(watch, events)
            except OSError as err:
                log.error("ipyvirt: cannot watch fd for watch %d: %s", watch, err.strerror or err)
                return
            if entry is None:
                log.warning("ipyvirt: update_handle(%d): no such watch; ignored", watch)

    def remove_handle(self, watch: int) -> int:
        with self._lock:
            entry = self._watches.remove(watch)
            if entry is None:
                log.warning("ipyvirt: remove_handle(%d): no such watch", watch)
                return -1
            self._handles_removed += 1
            # owed to the io lane: a callback running there may still hold the opaque
            self._frees.owe(self._io, entry.ff, entry.opaque)
            io = self._io
        self._frees.schedule(io)
        return 0

    # -- timers ---------------------------------------------------------------------------------

    def add_timeout(
        self, interval_ms: int, cb: TimeoutCallback, opaque: Any, ff: FreeCallback | None
    ) -> int:
        with self._lock:
            timer = Timer(self._next_id(), interval_ms, cb, opaque, ff)
            self._timers.add(timer)
            self._timeouts_added += 1
        self._call_soon(self._main, self._timers.arm, timer)
        return timer.id

    def update_timeout(self, timer: int, interval_ms: int) -> None:
        with self._lock:
            entry = self._timers.update(timer, interval_ms)
            if entry is None:
                log.warning("ipyvirt: update_timeout(%d): no such timer; ignored", timer)
                return
        self._call_soon(self._main, self._timers.arm, entry)

    def remove_timeout(self, timer: int) -> int:
        with self._lock:
            entry = self._timers.remove(timer)
            if entry is None:
                log.warning("ipyvirt: remove_timeout(%d): no such timer", timer)
                return -1
            self._timeouts_removed += 1
            self._frees.owe(self._main, entry.ff, entry.opaque)
        self._call_soon(self._main, self._timers.arm, entry)
        self._frees.schedule(self._main)
        return 0

    def fire_due_timers(self, budget: int) -> int:
        """Fire now, on this thread, every enabled timer that is due: interval 0, or its
        deadline passed; one pass in id order, at most *budget*. Returns how many fired.

        Call it on the main loop's thread only (:class:`RuntimeError` elsewhere): it is how
        a kernel delivers, before a cell runs, the events libvirt queued while the loop had
        no turn (libvirt hands out every event from a timer it enables with interval 0). The
        lock is held only to copy the timer list, never while a callback runs.
        """
        main = self._main.runner
        if main is None or not main.on_thread():
            raise RuntimeError("fire_due_timers() runs on the loop that serves the timers")
        with self._lock:
            if self._closed:
                return 0
            timers = sorted(self._timers.by_id.values(), key=lambda t: t.id)
        return self._timers.fire_due(timers, budget)

    # -- frees ----------------------------------------------------------------------------------

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until every removed watch's and timer's free function has run.

        Raises :class:`TimeoutError` saying how many are still owed after *timeout* seconds.
        """
        await self._frees.settled(timeout)

    def is_idle(self) -> bool:
        """No live watch or timer, and no free function owed."""
        with self._lock:
            return not self._watches.by_id and not self._timers.by_id and not self._frees.owed

    # -- observability --------------------------------------------------------------------------

    def _watch_failed(self, ident: int) -> None:
        self._callback_failed("watch", ident)

    def _timer_failed(self, ident: int) -> None:
        self._callback_failed("timer", ident)

    def _callback_failed(self, kind: str, ident: int) -> None:
        with self._lock:
            self._callback_errors += 1
        log.exception("ipyvirt: the callback of libvirt %s %d raised; loop goes on", kind, ident)

    def statistics(self) -> LoopStatistics:
        """A consistent snapshot of the live watches and timers and of the counters."""
        with self._lock:
            io, main = self._io, self._main
            watches = tuple(
                WatchInfo(w.id, w.fd, w.events, w.dispatches, io.name, io.thread)
                for w in self._watches.by_id.values()
            )
            timers = tuple(
                TimerInfo(t.id, t.interval_ms, t.fires, main.name, main.thread)
                for t in self._timers.by_id.values()
            )
            lanes = ((main.name, main.thread),) + (() if io is main else ((io.name, io.thread),))
            return LoopStatistics(
                watches=watches,
                timers=timers,
                pending_frees=self._frees.owed,
                handles_added=self._handles_added,
                handles_removed=self._handles_removed,
                timeouts_added=self._timeouts_added,
                timeouts_removed=self._timeouts_removed,
                frees_run=self._frees.paid,
                dispatches=self._watches.retired_dispatches + sum(w.dispatches for w in watches),
                fires=self._timers.retired_fires + sum(t.fires for t in timers),
                callback_errors=self._callback_errors,
                loops=lanes,
            )
