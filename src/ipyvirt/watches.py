"""fd watches: an epoll set of their own, and the dispatch of its ready fds.

Why an epoll set of our own rather than the loop's ``add_reader``:

- epoll_ctl is thread-safe, and the kernel wakes whoever waits on the set when a newly
  watched fd is ready, so a watch added, changed or removed from any thread takes effect at
  once, with no hand-over to the thread that dispatches.
- epoll reports each fd's real condition: ERROR and HANGUP as they happen, which libvirt
  wants even when it did not ask (asyncio's selectors fold them into "readable").
- Several watches may share one fd (libvirt does that), beyond asyncio's one reader per fd.

Facts about epoll this relies on:

- It is level-triggered: fds not taken in one round (more than ``maxevents``) are reported
  again in the next.
- Closing an fd removes it from the set, so an fd closed and reopened under the same number
  is new to the set: ``modify`` fails with ENOENT and ``register`` is the right call (and the
  other way round with EEXIST).
- EPOLLERR and EPOLLHUP are always reported; asking for them explicitly keeps a mask of 0
  (which would mean "nothing") from ever being registered.

Locking: :class:`WatchSet` has no lock of its own. Its owner calls :meth:`add`,
:meth:`update` and :meth:`remove` under the owner's registry lock; :meth:`dispatch` runs on
the io lane's thread without it, reading the per-fd tuples, which are replaced whole.
"""

from __future__ import annotations

import select
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ipyvirt.eventimpl import (
    HANDLE_ERROR,
    HANDLE_HANGUP,
    HANDLE_READABLE,
    HANDLE_WRITABLE,
    FreeCallback,
    HandleCallback,
)
from ipyvirt.io_thread import MAX_EVENTS

__all__ = ["Watch", "WatchSet"]

_ALWAYS: Final = HANDLE_ERROR | HANDLE_HANGUP

# epoll's bits -> libvirt's, indexed by (revents & 0x1F): IN 1, PRI 2, OUT 4, ERR 8, HUP 16.
_FROM_EPOLL: Final = tuple(
    (HANDLE_READABLE if ev & select.EPOLLIN else 0)
    | (HANDLE_WRITABLE if ev & select.EPOLLOUT else 0)
    | (HANDLE_ERROR if ev & select.EPOLLERR else 0)
    | (HANDLE_HANGUP if ev & select.EPOLLHUP else 0)
    for ev in range(32)
)


@dataclass(eq=False, slots=True)
class Watch:
    id: int
    fd: int
    events: int
    cb: HandleCallback
    opaque: Any
    ff: FreeCallback | None
    dispatches: int = 0
    removed: bool = False


#: ``run(watch, fd, events, cb, opaque)``: EventImpl._run_handle_callback
RunWatch = Callable[[int, int, int, HandleCallback, Any], object]


class WatchSet:
    """The live watches, by id and by fd, mirrored into an epoll set."""

    def __init__(self, run: RunWatch, failed: Callable[[int], object]) -> None:
        self._run = run
        self._failed = failed
        self.epoll = select.epoll()
        self.by_id: dict[int, Watch] = {}
        # fd -> its watches in id order; tuples, replaced whole, so dispatch reads them bare
        self._by_fd: dict[int, tuple[Watch, ...]] = {}
        self._masks: dict[int, int] = {}
        #: dispatches of watches already removed, so the total never goes down
        self.retired_dispatches = 0

    def fileno(self) -> int:
        return self.epoll.fileno()

    def close(self) -> None:
        self.epoll.close()

    # -- changes (under the owner's lock) --------------------------------------------------------

    def add(self, watch: Watch) -> None:
        """Watch ``watch.fd``; OSError (and nothing added) if the fd cannot be watched."""
        self.by_id[watch.id] = watch
        self._by_fd[watch.fd] = (*self._by_fd.get(watch.fd, ()), watch)
        try:
            self._sync(watch.fd)
        except OSError:
            del self.by_id[watch.id]
            self._drop_from_fd(watch)
            raise

    def update(self, ident: int, events: int) -> Watch | None:
        """Ask for *events* on watch *ident*; None if there is no such watch. OSError if the
        epoll set refuses (the watch keeps its new events, as libvirt asked)."""
        watch = self.by_id.get(ident)
        if watch is not None:
            watch.events = events
            self._sync(watch.fd)
        return watch

    def remove(self, ident: int) -> Watch | None:
        """Stop watch *ident* and return it, or None if there is no such watch."""
        watch = self.by_id.pop(ident, None)
        if watch is None:
            return None
        watch.removed = True  # a dispatch round that holds it already skips it from now on
        self._drop_from_fd(watch)
        try:
            self._sync(watch.fd)
        except OSError:  # the fd was closed first: the kernel left the set already
            pass
        self.retired_dispatches += watch.dispatches
        return watch

    def _drop_from_fd(self, watch: Watch) -> None:
        rest = tuple(w for w in self._by_fd[watch.fd] if w is not watch)
        if rest:
            self._by_fd[watch.fd] = rest
        else:
            del self._by_fd[watch.fd]

    def _sync(self, fd: int) -> None:
        """Make the epoll set ask for what *fd*'s watches want."""
        wanted = 0
        for w in self._by_fd.get(fd, ()):
            wanted |= w.events
        want = 0
        if wanted:
            want = select.EPOLLERR | select.EPOLLHUP
            if wanted & HANDLE_READABLE:
                want |= select.EPOLLIN
            if wanted & HANDLE_WRITABLE:
                want |= select.EPOLLOUT
        have = self._masks.get(fd, 0)
        if want == have:
            return
        if not want:
            del self._masks[fd]
            self.epoll.unregister(fd)
            return
        try:
            if have:
                self.epoll.modify(fd, want)
            else:
                self.epoll.register(fd, want)
        except (FileNotFoundError, FileExistsError):  # closed and reopened: see the facts
            if have:
                self.epoll.register(fd, want)
            else:
                self.epoll.modify(fd, want)
        self._masks[fd] = want

    # -- dispatch (on the io lane's thread, without the lock) -----------------------------------

    def dispatch_ready(self) -> None:
        """What an asyncio loop calls when the epoll set's fd is readable."""
        self.dispatch(self.epoll.poll(0, MAX_EVENTS))

    def dispatch(self, ready: list[tuple[int, int]]) -> None:
        """Run the callbacks of the watches on the *ready* fds: ``(fd, epoll events)``."""
        # The hot path: every libvirt socket read starts here.
        by_fd = self._by_fd
        run = self._run
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
                        self._failed(w.id)
