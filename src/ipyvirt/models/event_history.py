"""The event log's state: the newest events, the filter, and each event as one row."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any, Final

from ipyvirt.hub import Event
from ipyvirt.models.ring import Ring
from ipyvirt.names import FAMILIES

__all__ = ["ALL_FAMILIES", "COLUMNS", "EventHistory", "event_row"]

#: the family filter that lets every family through
ALL_FAMILIES: Final = "all families"
#: the families the filter offers
FILTER_FAMILIES: Final = (ALL_FAMILIES, *FAMILIES, "connection")

#: an event's row, the one way every view shows it
COLUMNS: Final = ("time", "family", "subject", "event", "detail")


def event_row(event: Event) -> tuple[str, str, str, str, str]:
    """*event* as its row: (clock, family, subject, name, detail)."""
    return (event.clock, event.family, event.subject, event.name, event.detail)


class EventHistory:
    """At most *capacity* events, oldest first, starting from *history* (a connection's
    :attr:`~ipyvirt.Connection.history`); filterable by family and subject.

    ``listen(fn)``: ``fn(event)`` after each new event. Used on one thread (the main loop's).
    """

    def __init__(self, capacity: int = 10_000, history: Iterable[Event] = ()) -> None:
        self.events: Ring[Event] = Ring(capacity, history)
        self.family = ALL_FAMILIES
        self.subject = ""
        self._listeners: list[Callable[[Event], object]] = []

    @property
    def dropped(self) -> int:
        """Events pushed out of the ring buffer."""
        return self.events.dropped

    def listen(self, fn: Callable[[Event], object]) -> None:
        self._listeners.append(fn)

    def add(self, event: Event) -> None:
        self.events.append(event)
        for fn in list(self._listeners):
            fn(event)

    def look(self, *, family: str | None = None, subject: str | None = None) -> None:
        if family is not None and family not in FILTER_FAMILIES:
            raise ValueError(f"unknown family {family!r}: use one of {', '.join(FILTER_FAMILIES)}")
        if family is not None:
            self.family = family
        if subject is not None:
            self.subject = subject

    def passes(self) -> Callable[[Event], bool]:
        family, subject = self.family, self.subject.strip().lower()
        return lambda e: (
            (family == ALL_FAMILIES or e.family == family) and subject in e.subject.lower()
        )

    def matching(self) -> list[Event]:
        """The kept events that pass the filters, oldest first."""
        return list(filter(self.passes(), self.events))

    def newest(self, n: int) -> list[Event]:
        """The newest *n* events that pass the filters, newest first."""
        # from the newest end, stopping early: a refresh costs what it shows, not what is kept
        return list(itertools.islice(filter(self.passes(), reversed(self.events)), n))

    def status(self) -> str:
        return f"{len(self.events)} events kept, {self.dropped} dropped"

    def records(self, n: int) -> list[dict[str, Any]]:
        """The newest *n* matching events as plain dicts, newest first."""
        return [dict(zip(COLUMNS, event_row(e), strict=True)) for e in self.newest(n)]
