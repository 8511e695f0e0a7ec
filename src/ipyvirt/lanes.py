"""Lanes: where an implementation's entries run.

An :class:`~ipyvirt.AsyncioEventImpl` has two lanes: *main* runs its timers, *io* its fd
watches (in one-loop mode both are the same lane). A lane is served by a :class:`Runner`:
an asyncio loop (wrapped in :class:`LoopRunner`) or an :class:`~ipyvirt.io_thread.IoThread`.
Both offer the same few methods, so the implementation never asks which one it has.
"""

from __future__ import annotations

import asyncio
import threading
from asyncio import events as _asyncio_events
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ipyvirt.eventimpl import FreeCallback

__all__ = ["Lane", "LoopRunner", "Runner", "running_loop"]


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio loop running in this thread, if any."""
    # the C accelerated getter: no exception when none runs, unlike get_running_loop()
    return _asyncio_events._get_running_loop()


class Runner(Protocol):
    """What serves a lane: the methods of an asyncio loop that a lane uses, and the thread."""

    #: the name of the thread it runs on, "" until known
    thread: str

    def call_soon(self, fn: Callable[..., object], *args: Any) -> object: ...
    def call_soon_threadsafe(self, fn: Callable[..., object], *args: Any) -> object: ...
    def is_running(self) -> bool: ...
    def is_closed(self) -> bool: ...
    def on_thread(self) -> bool: ...
    def attach(self, fd: int, ready: Callable[[], object]) -> None: ...
    def detach(self, fd: int) -> None: ...


class LoopRunner:
    """An asyncio loop serving a lane. Watches reach it as one reader: the epoll set's fd."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.thread = ""
        self.call_soon = loop.call_soon
        self.call_soon_threadsafe = loop.call_soon_threadsafe
        self.is_running = loop.is_running
        self.is_closed = loop.is_closed

    def __repr__(self) -> str:
        return repr(self.loop)

    def on_thread(self) -> bool:
        return self.loop is running_loop()

    def attach(self, fd: int, ready: Callable[[], object]) -> None:
        """Call *ready* whenever *fd* is readable (on the loop's thread, or while it is not
        running)."""

        def first() -> None:
            # learn the loop's thread once, then hand the fd to *ready* itself: the hot path
            # pays nothing for the name
            self.thread = threading.current_thread().name
            self.loop.add_reader(fd, ready)
            ready()

        self.loop.add_reader(fd, first)

    def detach(self, fd: int) -> None:
        if self.loop.is_closed():
            return
        if self.loop.is_running() and not self.on_thread():
            self.loop.call_soon_threadsafe(self.loop.remove_reader, fd)
        else:
            self.loop.remove_reader(fd)


@dataclass(eq=False)
class Lane:
    """One of an implementation's two places to run things, and the frees owed there."""

    name: str
    runner: Runner | None = None
    #: free functions owed here: (ff, opaque) of removed entries, run by run_frees
    frees: list[tuple[FreeCallback | None, Any]] = field(default_factory=list)
    #: a run of the frees is queued on the runner
    free_scheduled: bool = False
    #: the closed runner was reported once (log line); reset when bound again
    closed_reported: bool = False

    @property
    def thread(self) -> str:
        return self.runner.thread if self.runner is not None else ""

    def bind(self, runner: Runner) -> None:
        self.runner = runner
        self.closed_reported = False
