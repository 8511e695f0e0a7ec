"""Frozen records describing an event loop implementation's live state."""

from __future__ import annotations

from dataclasses import dataclass

from ipyvirt.eventimpl import event_names

__all__ = ["LoopStatistics", "TimerInfo", "WatchInfo"]


@dataclass(frozen=True)
class WatchInfo:
    """A live fd watch."""

    id: int
    fd: int
    #: the events asked for (``HANDLE_*`` bits); 0 means disabled
    events: int
    #: how often its callback ran
    dispatches: int
    #: the name of the loop that runs its callback ("main", "io")
    loop: str
    #: the thread that loop last ran it on, "" before its first dispatch
    thread: str

    @property
    def event_names(self) -> str:
        return event_names(self.events)


@dataclass(frozen=True)
class TimerInfo:
    """A live timer."""

    id: int
    #: milliseconds between fires; -1 disabled, 0 every loop iteration
    interval_ms: int
    fires: int
    loop: str
    thread: str


@dataclass(frozen=True)
class LoopStatistics:
    """A snapshot of an :class:`~ipyvirt.AsyncioEventImpl`, taken at once under its lock."""

    watches: tuple[WatchInfo, ...]
    timers: tuple[TimerInfo, ...]
    #: free functions owed: removed entries whose ``ff`` has not run yet
    pending_frees: int
    handles_added: int
    handles_removed: int
    timeouts_added: int
    timeouts_removed: int
    frees_run: int
    dispatches: int
    fires: int
    callback_errors: int
    #: loop name -> the thread it last ran on ("" until it ran one of ours)
    loops: tuple[tuple[str, str], ...]
