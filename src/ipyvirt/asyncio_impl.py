"""The libvirt event loop contract on asyncio loops, safe to call from any thread.

How it works, and why:

- Timers run on the *main* loop as asyncio ``call_at``/``call_soon`` handles. A hook called on
  that loop's thread arms the handle at once; from any other thread it records the wanted
  state and hands the arming over with ``call_soon_threadsafe``, which wakes the loop (a plain
  ``call_soon`` from another thread would wait for whatever wakes the loop next).
- Watches live in an epoll set of our own, whose single fd the *handle* loop reads (by default
  the main loop; the kernel extension gives it a loop in a helper thread). epoll_ctl is
  thread-safe and the kernel wakes the outer loop when a newly watched fd is ready, so watch
  hooks never need a hand-over. epoll also tells the real condition of each fd, so ERROR and
  HANGUP are reported as they happen, and several watches share one fd without asyncio's
  one-reader-per-fd limit.
- A removed entry's free function is queued on the loop that owned the entry and run by a
  callback of its own: after the remove hook returned, outside any callback or hook, once.
- libvirt accepts one implementation per process, so the state (ids, watches, timers, owed
  frees) outlives a loop: :meth:`AsyncioEventImpl.bind` moves it to new loops. While the bound
  loop is closed, changes are kept and reported in one log line, never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ipyvirt.errors import LoopBusy, LoopNotRunning
from ipyvirt.eventimpl import (
    HANDLE_ERROR,
    HANDLE_HANGUP,
    HANDLE_READABLE,
    HANDLE_WRITABLE,
    EventImpl,
    FreeCallback,
    HandleCallback,
    TimeoutCallback,
)
from ipyvirt.handle_thread import HandleThread
from ipyvirt.lanes import Lane, Owed, on, rebind, running_loop
from ipyvirt.statistics import LoopStatistics, TimerInfo, WatchInfo

__all__ = ["AsyncioEventImpl"]

log = logging.getLogger("ipyvirt")

_INT_MAX: Final = 2**31 - 1
_ALWAYS: Final = HANDLE_ERROR | HANDLE_HANGUP
# ready fds taken per wakeup; more wait for the next iteration (epoll is level-triggered)
_MAX_EVENTS: Final = 64

# epoll's bits -> libvirt's, indexed by (revents & 0x1F): IN 1, PRI 2, OUT 4, ERR 8, HUP 16.
_FROM_EPOLL: Final = tuple(
    (HANDLE_READABLE if ev & select.EPOLLIN else 0)
    | (HANDLE_WRITABLE if ev & select.EPOLLOUT else 0)
    | (HANDLE_ERROR if ev & select.EPOLLERR else 0)
    | (HANDLE_HANGUP if ev & select.EPOLLHUP else 0)
    for ev in range(32)
)


@dataclass(eq=False, slots=True)
class _Watch:
    id: int
    fd: int
    events: int
    cb: HandleCallback
    opaque: Any
    ff: FreeCallback | None
    dispatches: int = 0
    removed: bool = False


@dataclass(eq=False, slots=True)
class _Timer:
    id: int
    interval: int
    cb: TimeoutCallback
    opaque: Any
    ff: FreeCallback | None
    fires: int = 0
    removed: bool = False
    # only touched on the main loop's thread
    handle: asyncio.Handle | None = None


class AsyncioEventImpl(EventImpl):
    """libvirt's event loop on asyncio: timers on *loop*, fd watches on *handle_loop*.

    *loop* defaults to the running loop; *handle_loop* to *loop*. Every hook may be called
    from any thread. Callbacks that raise are logged with their traceback and counted.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        handle_loop: asyncio.AbstractEventLoop | HandleThread | None = None,
    ) -> None:
        # Guards the registry below; never held while a callback or free function runs, so
        # a callback may call any hook (libvirt's callbacks do).
        self._lock = threading.Lock()
        self._watches: dict[int, _Watch] = {}
        self._timers: dict[int, _Timer] = {}
        # fd -> its watches in id order; tuples, replaced whole, so dispatch reads them bare
        self._by_fd: dict[int, tuple[_Watch, ...]] = {}
        self._epoll = select.epoll()
        self._epoll_masks: dict[int, int] = {}
        self._main = Lane("main")
        self._io = self._main
        self._last_id = 0
        self._owed = Owed()
        self._handles_added = self._handles_removed = 0
        self._timeouts_added = self._timeouts_removed = 0
        self._frees_run = self._callback_errors = 0
        # dispatches and fires of entries already removed, so the totals never go down
        self._retired_dispatches = self._retired_fires = 0
        self._closed = False
        self.bind(loop, handle_loop=handle_loop)

    def __repr__(self) -> str:
        loops = self._main.name if self._io is self._main else f"main,{self._io.name}"
        return (
            f"<{type(self).__name__} watches={len(self._watches)} "
            f"timers={len(self._timers)} loops={loops}>"
        )

    # -- binding to loops --------------------------------------------------------------------

    def bind(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        handle_loop: asyncio.AbstractEventLoop | HandleThread | None = None,
    ) -> None:
        """Serve timers on *loop* (default: the running one) and watches on *handle_loop*:
        another asyncio loop, or a :class:`~ipyvirt.handle_thread.HandleThread` of this
        implementation's (see :meth:`handle_thread`). Without *handle_loop*, watches stay
        on a separate handle loop that still runs, and go to *loop* otherwise.

        Everything alive moves over: watches, timers (re-armed from now) and owed frees.
        A loop still running in another thread must be stopped first.
        """
        if loop is None:
            loop = running_loop()
            if loop is None:
                raise LoopNotRunning(
                    "AsyncioEventImpl needs an asyncio loop and none is running here: pass "
                    "loop=..., or call ipyvirt.start(), which runs one in a background thread."
                )
        if handle_loop is None:
            # a separate handle loop that still runs keeps its watches
            current = self._io.loop if self._io is not self._main else None
            handle_loop = current if current is not None and current.is_running() else loop
        if self._closed:
            raise LoopNotRunning("this AsyncioEventImpl was closed: create a new one.")
        for lane in (self._main, self._io):
            old = lane.loop
            # abandoning a loop that runs on elsewhere could race our callbacks queued there
            if old is None or old is loop or old is handle_loop:
                continue
            if old.is_running() and not on(old):
                raise LoopBusy(
                    f"the {lane.name} loop {old!r} still runs in another thread: stop it "
                    "before binding ipyvirt's event loop elsewhere."
                )
        self._detach_epoll()
        self._timer_loop = loop
        with self._lock:
            rebind(self._main, loop)
            if handle_loop is loop:
                if self._io is not self._main:  # the io lane's owed frees move with its watches
                    self._main.frees += self._io.frees
                    self._io.frees = []  # a late _run_frees of the old lane must find none
                self._io = self._main
            else:
                if self._io is self._main:
                    self._io = Lane("io")
                rebind(self._io, handle_loop)
            timers = list(self._timers.values())
            lanes = [self._main] if self._io is self._main else [self._main, self._io]
            for lane in lanes:
                lane.free_scheduled = False
        self._call_soon(self._io, self._attach_epoll, handle_loop, direct_ok=True)
        for timer in timers:
            self._call_soon(self._main, self._arm, timer, direct_ok=True)
        for lane in lanes:
            self._schedule_frees(lane)

    def handle_thread(self, name: str = "ipyvirt-io") -> HandleThread:
        """A started thread that serves this implementation's fd watches straight from its
        epoll set; pass it to :meth:`bind` as *handle_loop*."""
        return HandleThread(self, name).start()

    def _attach_epoll(self, loop: asyncio.AbstractEventLoop | HandleThread) -> None:
        # a HandleThread waits on the epoll set itself
        if self._io.loop is loop and not self._closed and not isinstance(loop, HandleThread):
            loop.add_reader(self._epoll.fileno(), self._dispatch_ready)

    def _detach_epoll(self) -> None:
        old = self._io.loop
        if old is not None and not old.is_closed() and not isinstance(old, HandleThread):
            if old.is_running() and old is not running_loop():
                old.call_soon_threadsafe(old.remove_reader, self._epoll.fileno())
            else:
                old.remove_reader(self._epoll.fileno())

    def close(self) -> None:
        """Detach from the loops and release the epoll set.

        For implementations that were never registered: libvirt keeps calling a registered
        one for the rest of the process.
        """
        self._detach_epoll()
        if isinstance(self._io.loop, HandleThread):
            self._io.loop.close()
        with self._lock:
            timers = list(self._timers.values())
            self._closed = True
        for timer in timers:
            timer.removed = True
            self._call_soon(self._main, self._arm, timer, direct_ok=True)
        self._epoll.close()

    # -- running things on the right loop -----------------------------------------------------

    def _call_soon(
        self, lane: Lane, fn: Callable[..., object], *args: Any, direct_ok: bool = False
    ) -> bool:
        """Run *fn* on *lane*'s loop: now if we are on it (or, with *direct_ok*, if it is not
        running), else handed over, waking it. False if the loop is closed."""
        loop = lane.loop
        if loop is None:
            return False
        if on(loop) or (direct_ok and not loop.is_running() and not loop.is_closed()):
            fn(*args)
            return True
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed
            self._report_closed(lane)
            return False
        return True

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
        # skip ids still alive.
        while True:
            self._last_id = self._last_id % _INT_MAX + 1
            if self._last_id not in self._watches and self._last_id not in self._timers:
                return self._last_id

    # -- fd watches -----------------------------------------------------------------------------

    def add_handle(
        self, fd: int, events: int, cb: HandleCallback, opaque: Any, ff: FreeCallback | None
    ) -> int:
        with self._lock:
            watch = _Watch(self._next_id(), fd, events, cb, opaque, ff)
            self._watches[watch.id] = watch
            self._by_fd[fd] = (*self._by_fd.get(fd, ()), watch)
            try:
                self._sync_fd(fd)
            except OSError as err:
                del self._watches[watch.id]
                self._drop_from_fd(watch)
                log.error("ipyvirt: cannot watch fd %d: %s", fd, err.strerror or err)
                return -1
            self._handles_added += 1
        return watch.id

    def update_handle(self, watch: int, events: int) -> None:
        with self._lock:
            entry = self._watches.get(watch)
            if entry is None:
                log.warning("ipyvirt: update_handle(%d): no such watch; ignored", watch)
                return
            entry.events = events
            try:
                self._sync_fd(entry.fd)
            except OSError as err:
                log.error("ipyvirt: cannot watch fd %d: %s", entry.fd, err.strerror or err)

    def remove_handle(self, watch: int) -> int:
        with self._lock:
            entry = self._watches.pop(watch, None)
            if entry is None:
                log.warning("ipyvirt: remove_handle(%d): no such watch", watch)
                return -1
            entry.removed = True
            self._drop_from_fd(entry)
            try:
                self._sync_fd(entry.fd)
            except OSError:  # the fd was closed first: the kernel left the set already
                pass
            self._handles_removed += 1
            self._retired_dispatches += entry.dispatches
            self._owe_free(self._io, entry.ff, entry.opaque)
        self._schedule_frees(self._io)
        return 0

    def _drop_from_fd(self, watch: _Watch) -> None:
        rest = tuple(w for w in self._by_fd[watch.fd] if w is not watch)
        if rest:
            self._by_fd[watch.fd] = rest
        else:
            del self._by_fd[watch.fd]

    def _sync_fd(self, fd: int) -> None:
        """Make the epoll set ask for what *fd*'s watches want (called under the lock)."""
        wanted = 0
        for w in self._by_fd.get(fd, ()):
            wanted |= w.events
        want = 0
        if wanted:  # ERR and HUP are always reported: ask for them explicitly, never mask 0
            want = select.EPOLLERR | select.EPOLLHUP
            if wanted & HANDLE_READABLE:
                want |= select.EPOLLIN
            if wanted & HANDLE_WRITABLE:
                want |= select.EPOLLOUT
        have = self._epoll_masks.get(fd, 0)
        if want == have:
            return
        if not want:
            del self._epoll_masks[fd]
            self._epoll.unregister(fd)
            return
        # An fd closed and reopened under the same number left the set on close.
        try:
            if have:
                self._epoll.modify(fd, want)
            else:
                self._epoll.register(fd, want)
        except (FileNotFoundError, FileExistsError):
            if have:
                self._epoll.register(fd, want)
            else:
                self._epoll.modify(fd, want)
        self._epoll_masks[fd] = want

    def _dispatch_ready(self) -> None:
        """The reader callback of an asyncio handle loop: ask the epoll set, dispatch."""
        self._dispatch(self._epoll.poll(0, _MAX_EVENTS))

    def _dispatch(self, ready: list[tuple[int, int]]) -> None:
        """Run the callbacks of the watches on the ready fds (on the handle loop's thread)."""
        # The hot path. epoll tells each fd's real condition, ERROR and HANGUP included.
        if not self._io.thread:
            self._io.thread = threading.current_thread().name
        by_fd = self._by_fd
        run = self._run_handle_callback
        for fd, revents in ready:
            got = _FROM_EPOLL[revents & 0x1F]
            for w in by_fd.get(fd, ()):
                # a callback earlier in this round may have removed or changed w
                wanted = w.events
                if not wanted or w.removed:
                    continue
                events = got & (wanted | _ALWAYS)
                if events:
                    w.dispatches += 1
                    try:
                        run(w.id, fd, events, w.cb, w.opaque)
                    except Exception:
                        self._callback_failed("watch", w.id)

    # -- timers ---------------------------------------------------------------------------------

    def add_timeout(
        self, frequency_ms: int, cb: TimeoutCallback, opaque: Any, ff: FreeCallback | None
    ) -> int:
        with self._lock:
            timer = _Timer(self._next_id(), frequency_ms, cb, opaque, ff)
            self._timers[timer.id] = timer
            self._timeouts_added += 1
        self._call_soon(self._main, self._arm, timer)
        return timer.id

    def update_timeout(self, timer: int, frequency_ms: int) -> None:
        with self._lock:
            entry = self._timers.get(timer)
            if entry is None:
                log.warning("ipyvirt: update_timeout(%d): no such timer; ignored", timer)
                return
            entry.interval = frequency_ms
        self._call_soon(self._main, self._arm, entry)

    def remove_timeout(self, timer: int) -> int:
        with self._lock:
            entry = self._timers.pop(timer, None)
            if entry is None:
                log.warning("ipyvirt: remove_timeout(%d): no such timer", timer)
                return -1
            entry.removed = True
            self._timeouts_removed += 1
            self._retired_fires += entry.fires
            self._owe_free(self._main, entry.ff, entry.opaque)
        self._call_soon(self._main, self._arm, entry)
        self._schedule_frees(self._main)
        return 0

    def _arm(self, timer: _Timer) -> None:
        """Schedule *timer*'s next fire from its wanted state (on the main loop's thread)."""
        if timer.handle is not None:
            timer.handle.cancel()
            timer.handle = None
        loop = self._timer_loop
        if timer.removed or timer.interval < 0 or self._closed:
            return
        if timer.interval == 0:
            timer.handle = loop.call_soon(self._fire, timer)
        else:
            timer.handle = loop.call_at(loop.time() + timer.interval / 1000, self._fire, timer)

    def _fire(self, timer: _Timer) -> None:
        timer.handle = None
        if timer.removed or timer.interval < 0:
            return
        main = self._main
        if not main.thread:
            main.thread = threading.current_thread().name
        # Re-arm before the callback, as libvirt's own loop does: the callback may change or
        # remove the timer, and that must win.
        self._arm(timer)
        timer.fires += 1
        try:
            self._run_timeout_callback(timer.id, timer.cb, timer.opaque)
        except Exception:
            self._callback_failed("timer", timer.id)

    def fire_due_timers(self, budget: int) -> int:
        """Fire now, on this thread, every enabled timer that is due: interval 0, or its
        deadline passed. Returns how many fired.

        One pass: each timer due when the pass starts fires at most once, in id order, at
        most *budget* in all. A callback may change or remove a timer later in the pass, and
        that wins (each is looked at again just before it fires). Call it on the timer loop's
        thread only (:class:`RuntimeError` elsewhere): it is how a kernel delivers, before a
        cell runs, the events libvirt queued while the loop had no turn (libvirt hands out
        every event from a timer it enables with interval 0).

        Invariant: a timer has at most one armed handle. The one armed for a timer fired
        here is cancelled first; then it fires as from the loop (``_fire``: re-armed from its
        wanted state before the callback, counted, guarded); a hand-over of its arming still
        on its way only re-arms it. The registry lock is held only to copy the timer list,
        never while a callback runs.
        """
        loop = self._timer_loop
        if not on(loop):
            raise RuntimeError("fire_due_timers() runs on the loop that serves the timers")
        with self._lock:
            if self._closed:
                return 0
            timers = sorted(self._timers.values(), key=lambda t: t.id)
        fired = 0
        now = loop.time()
        for timer in timers:
            if fired >= budget:
                break
            if timer.removed or timer.interval < 0:
                continue
            handle = timer.handle  # armed by _arm on this thread; None while handed over
            due = timer.interval == 0 or (
                isinstance(handle, asyncio.TimerHandle)
                and not handle.cancelled()
                and handle.when() <= now
            )
            if due:
                if handle is not None:  # else the loop would fire it a second time
                    handle.cancel()
                    timer.handle = None
                self._fire(timer)
                fired += 1
        return fired

    # -- frees ----------------------------------------------------------------------------------

    def _owe_free(self, lane: Lane, ff: FreeCallback | None, opaque: Any) -> None:
        # under the lock
        lane.frees.append((ff, opaque))
        self._owed.add()

    def _schedule_frees(self, lane: Lane) -> None:
        with self._lock:
            if lane.free_scheduled or not lane.frees:
                return
            lane.free_scheduled = True
        loop = lane.loop
        # Never run here: we are inside a hook, perhaps inside a callback.
        if loop is not None and on(loop):
            loop.call_soon(self._run_frees, lane)
        elif not self._call_soon(lane, self._run_frees, lane):
            with self._lock:
                lane.free_scheduled = False  # bind() schedules them on the next loop

    def _run_frees(self, lane: Lane) -> None:
        with self._lock:
            frees, lane.frees = lane.frees, []
            lane.free_scheduled = False
        for ff, opaque in frees:
            try:
                self._free_callback_opaque(ff, opaque)
            except Exception:
                log.exception("ipyvirt: a libvirt free function raised")
        with self._lock:
            self._frees_run += len(frees)
        self._owed.paid(len(frees))

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until every removed watch's and timer's free function has run.

        Raises :class:`TimeoutError` saying how many are still owed after *timeout* seconds.
        """
        await self._owed.settled(timeout)

    def is_idle(self) -> bool:
        """No live watch or timer, and no free function owed."""
        with self._lock:
            return not self._watches and not self._timers and not self._owed.count

    # -- observability --------------------------------------------------------------------------

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
                for w in self._watches.values()
            )
            timers = tuple(
                TimerInfo(t.id, t.interval, t.fires, main.name, main.thread)
                for t in self._timers.values()
            )
            loops = ((main.name, main.thread),) + (() if io is main else ((io.name, io.thread),))
            dispatches = sum(w.dispatches for w in self._watches.values())
            fires = sum(t.fires for t in self._timers.values())
            return LoopStatistics(
                watches=watches,
                timers=timers,
                pending_frees=self._owed.count,
                handles_added=self._handles_added,
                handles_removed=self._handles_removed,
                timeouts_added=self._timeouts_added,
                timeouts_removed=self._timeouts_removed,
                frees_run=self._frees_run,
                dispatches=self._retired_dispatches + dispatches,
                fires=self._retired_fires + fires,
                callback_errors=self._callback_errors,
                loops=loops,
            )
