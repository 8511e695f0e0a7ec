"""The io thread: fd watches served straight from their epoll set, on a thread of their own.

On an asyncio loop the watches' epoll set is one more fd for the loop's own selector to
watch: every dispatch costs the loop's epoll_wait *and* ours. A thread with nothing else to
do waits on the watches' epoll set itself: one epoll_wait a round, which also hands over each
fd's real condition (ERROR, HANGUP). The io thread is handed what it serves, a *poller* (the
epoll set) and a *dispatch* callable, and knows nothing else of the implementation.

It offers the few loop methods a :class:`~ipyvirt.lanes.Lane` needs (``call_soon``,
``call_soon_threadsafe``, ``is_running``, ``is_closed``, ``on_thread``): free functions and
other hand-overs are queued and run after the current round of callbacks, never inside one.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["IoThread", "Poller"]

log = logging.getLogger("ipyvirt")

#: ready fds taken per round; more wait for the next one (epoll is level-triggered)
MAX_EVENTS = 64


class Poller(Protocol):
    """What the io thread needs of an epoll set."""

    def register(self, fd: int, eventmask: int = ..., /) -> None: ...
    def unregister(self, fd: int, /) -> None: ...
    def poll(self, timeout: float = ..., maxevents: int = ..., /) -> list[tuple[int, int]]: ...


class IoThread:
    """Waits on *poller* and calls ``dispatch(ready)`` on a thread named *name*, until
    :meth:`close`.

    Its life: new, then running (:meth:`start`), then stopped (:meth:`stop`: hand-overs are
    still accepted and wait), then closed (:meth:`close`: hand-overs raise RuntimeError).
    """

    def __init__(
        self,
        poller: Poller,
        dispatch: Callable[[list[tuple[int, int]]], object],
        name: str = "ipyvirt-io",
    ) -> None:
        self._poller = poller
        self._dispatch = dispatch
        self.name = name
        #: the thread it runs on, for statistics (a lane's runner has one)
        self.thread = name
        self._calls: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._woken = False
        # Guards the life changes (start, stop, close) and the wake pipe's fds. A producer
        # that passed the closed check must not write to an fd that close() released (or that
        # a new file reuses); a start() that races stop() or close() must not register the
        # wake pipe's fd (perhaps already another file's number) nor run the thread.
        self._fds = threading.Lock()
        self._stopping = False
        self._closed = False
        self.ident: int | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self.is_running() else "stopped"
        return f"<IoThread {self.name} {state}>"

    def start(self) -> IoThread:
        """Start waiting and dispatching; returns the thread, for chaining. A thread stopped
        (or closed) before it started never starts: it would find nothing to serve."""
        # Invariant: once stop() has set _stopping (under the lock), no start() registers the
        # wake pipe or starts the thread; a start() that got the lock first has started the
        # thread (is_alive() is True when Thread.start() returns), so stop() joins it.
        with self._fds:
            if self._stopping or self._closed or self._thread.ident is not None:
                return self  # stopped or closed first, or started already
            # The wake pipe sits in the same epoll set; dispatch finds no watch on it.
            self._poller.register(self._wake_r, select.EPOLLIN)
            self._thread.start()
        return self

    # -- what a lane calls, like an asyncio loop's ----------------------------------------------

    def is_running(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def is_closed(self) -> bool:
        return self._closed

    def on_thread(self) -> bool:
        return self.ident == threading.get_ident()

    def attach(self, fd: int, ready: Callable[[], object]) -> None:
        """Start dispatching (a lane's runner starts serving the watches here): the thread
        waits on the poller it was built with, so *fd* and *ready* are not needed."""
        self.start()  # once: start() does nothing the second time

    def detach(self, fd: int) -> None:
        """Nothing to do: whoever bound the thread stops it (:meth:`stop`) before binding
        the watches elsewhere."""

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Queue ``fn(*args)`` from this thread: it runs after the current round."""
        self._calls.append((fn, args))

    # The wake-up protocol. Invariant: a call appended to _calls runs in a later round,
    # because either the producer writes a byte that no drain has swallowed yet, or the
    # thread has yet to clear the flag and so has yet to take the round's calls.
    # - A producer appends first, then reads _woken.
    # - The thread drains the pipe first, then clears _woken, then takes len(_calls) calls.
    # A producer that reads True either read it before the clear, so its call was appended
    # before the thread counts the calls of this round, or after another producer set it
    # again and wrote a byte that stays in the pipe. One that reads False writes a byte after
    # the drain: the next epoll_wait returns at once.
    # (Clearing before draining lost wake-ups: the drain swallowed the byte of a producer
    # that saw the cleared flag, the flag stayed True, and the thread slept with calls queued.)

    def call_soon_threadsafe(self, fn: Callable[..., object], *args: Any) -> None:
        """Queue ``fn(*args)`` from any thread and wake the thread."""
        if self._closed:
            raise RuntimeError("the io thread is closed")
        self._calls.append((fn, args))
        if not self._woken:
            self._woken = True
            self._wake()

    def _wake(self) -> None:
        with self._fds:
            if self._closed:  # closed meanwhile: no thread to wake, no fd to write to
                return
            try:
                os.write(self._wake_w, b"\0")
            except BlockingIOError:  # the pipe is full of wake-ups already
                pass

    # -- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        self.ident = threading.get_ident()
        poll, dispatch, wake, calls = self._poller.poll, self._dispatch, self._wake_r, self._calls
        while not self._stopping:
            ready = poll(0 if calls else -1, MAX_EVENTS)
            for fd, _ in ready:
                if fd == wake:
                    try:
                        while os.read(wake, 512):
                            pass
                    except BlockingIOError:
                        pass
                    self._woken = False  # after the drain: see the wake-up protocol
            dispatch(ready)
            for _ in range(len(calls)):  # what is queued meanwhile waits for the next round
                fn, args = calls.popleft()
                try:
                    fn(*args)
                except Exception:
                    log.exception("ipyvirt: %r failed on %s", fn, self.name)

    def stop(self) -> None:
        """Stop the thread after its current round; queued calls stay for the next lane."""
        with self._fds:  # see start()
            self._stopping = True
        if self._thread.is_alive():
            self._wake()
            self._thread.join(10)

    def close(self) -> None:
        """Stop, and release the wake pipe: hand-overs raise RuntimeError from now on (one
        racing the close may be queued and never run: close a thread once its lane was
        bound elsewhere, as runtime.stop and bind() do)."""
        self.stop()
        with self._fds:
            if self._closed:
                return
            self._closed = True
            try:
                self._poller.unregister(self._wake_r)
            except (OSError, ValueError):  # the poller was closed first
                pass
            os.close(self._wake_r)
            os.close(self._wake_w)
