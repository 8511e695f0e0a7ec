"""Every event libvirt offers, decoded, timestamped, filterable, in bounded memory: one comm."""

from __future__ import annotations

from typing import Any

import libvirt
import traitlets

from ipyvirt.connection import Connection
from ipyvirt.fleet import Fleet
from ipyvirt.hub import Event
from ipyvirt.models.event_history import (
    ALL_FAMILIES,
    COLUMNS,
    FILTER_FAMILIES,
    EventHistory,
    event_row,
)
from ipyvirt.models.ring import Ring
from ipyvirt.tables import Table
from ipyvirt.widgets.base import Coalescer
from ipyvirt.widgets.view import View, css, esm

__all__ = ["EventLog"]


class EventLog(View):
    """The newest events of every family on *conn*: domain (every event ID the binding has),
    network, pool, node device, secret, and the connection's close.

    Keeps at most *capacity* events (a ring buffer; the count of dropped ones is shown) and
    shows the newest *visible* that pass the filters, refreshed at most 20 times a second
    (every *interval* seconds at most): only those rows cross to the browser. With
    ``history=True`` it starts from the events *conn* recorded before it was made
    (:attr:`ipyvirt.Connection.history`). What it shows lives in ``model``
    (:class:`~ipyvirt.models.event_history.EventHistory`); the view's filters reach it as
    requests (``{"do": "look", "family": ..., "subject": ...}``), as :meth:`look` does.

    *conn* may be an :class:`ipyvirt.Fleet`: then one log of every host's events, with a
    host column (hosts that connect later too).
    """

    _esm = esm("event_log")
    _css = css("event_log")

    #: the column names, in the order of each row's cells after its key
    columns = traitlets.List(traitlets.Unicode()).tag(sync=True)
    #: the newest *visible* rows that pass the filters, newest first: a key (the event's
    #: ``seq``), then the cells of ``event_row(event)``
    rows = traitlets.List(traitlets.List()).tag(sync=True)
    #: the families the family filter offers, "all families" first
    families = traitlets.List(traitlets.Unicode()).tag(sync=True)
    #: the filters in force (set by the kernel only: the view asks, see the module view.py)
    family = traitlets.Unicode(ALL_FAMILIES).tag(sync=True)
    subject = traitlets.Unicode("").tag(sync=True)
    #: events kept; the status line ("N events kept, M dropped")
    kept = traitlets.Int(0).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    #: the connection's URI, for the empty-state line
    uri = traitlets.Unicode("").tag(sync=True)
    #: a one-line answer to a request the kernel refused, "" when there is none
    notice = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        conn: Connection | libvirt.virConnect | Fleet,
        *,
        capacity: int = 10_000,
        visible: int = 50,
        families: list[str] | None = None,
        interval: float = 0.05,
        history: bool = False,
    ) -> None:
        wanted = None if families is None else set(families)
        offered = [ALL_FAMILIES, *(f for f in FILTER_FAMILIES[1:] if wanted is None or f in wanted)]
        fleet = conn if isinstance(conn, Fleet) else None
        columns = [COLUMNS[0], "host", *COLUMNS[1:]] if fleet else list(COLUMNS)
        super().__init__(columns=columns, families=offered)
        try:
            with self.hold_sync():  # what it starts with goes in one message
                self._live(None if fleet else conn)
                self._fleet = fleet
                earlier: list[Event] = []
                if history:
                    earlier = [e for e in self._history() if wanted is None or e.family in wanted]
                self.model = EventHistory(capacity, earlier)
                self._visible = visible
                self.uri = f"the fleet's {len(fleet)} hosts" if fleet else self.conn.uri
                self._coalescer = Coalescer(self._rt.main_loop, interval, self._show)
                source = fleet if fleet is not None else self.conn
                self._subscription = source.subscribe(self._on_event, families=families)
                self._show()
        except BaseException:  # a bad argument: no comm left open, no connection either
            self.close()
            raise

    def _history(self) -> list[Event]:
        """What the connection (every host's) recorded, oldest first."""
        if self._fleet is None:
            return list(self.conn.history)
        hosts = self._fleet.connections().values()
        return sorted((e for c in hosts for e in c.history), key=lambda e: e.seq)

    def _row(self, event: Event) -> list[object]:
        """*event* as the view's row: its key (``seq``), then its cells."""
        cells = event_row(event)
        if self._fleet is not None:
            return [event.seq, cells[0], event.connection, *cells[1:]]
        return [event.seq, *cells]

    @property
    def events(self) -> Ring[Event]:
        """The kept events, oldest first (a ring buffer of *capacity*)."""
        return self.model.events

    @property
    def dropped(self) -> int:
        """Events pushed out of the ring buffer."""
        return self.model.dropped

    def _on_event(self, event: Event) -> None:
        self.model.add(event)
        self._coalescer.poke()

    def look(self, *, family: str | None = None, subject: str | None = None) -> None:
        """Show only the events of *family* ("all families": every one) whose subject
        contains *subject* (any case); None leaves that filter as it is. On the main loop."""
        self.model.look(family=family, subject=subject)  # raises before changing anything
        with self.hold_sync():
            self.family, self.subject = self.model.family, self.model.subject
            self.notice = ""
            self._show()

    def _handle(self, do: str, content: dict[str, Any]) -> None:
        if do != "look":
            return
        family, subject = content.get("family"), content.get("subject")
        try:
            self.look(
                family=family if isinstance(family, str) else None,
                subject=subject if isinstance(subject, str) else None,
            )
        except ValueError as err:  # a family the view did not offer: say so, keep the rest
            self.notice = str(err)

    def matching(self) -> list[Event]:
        """The kept events that pass the filters, oldest first."""
        return self.model.matching()

    def newest(self) -> list[Event]:
        """The newest *visible* events that pass the filters, newest first."""
        return self.model.newest(self._visible)

    def _show(self) -> None:
        rows = [self._row(e) for e in self.newest()]
        # one message for what changed (traitlets sends nothing for an equal value)
        with self.hold_sync():
            self.rows = rows
            self.kept = len(self.model.events)
            self.status = self.model.status()

    def __repr__(self) -> str:
        shown = self.newest()
        # the text form leaves the clock out: it would make every printed log differ
        rows = tuple(tuple(self._row(e)[2:]) for e in shown)
        columns = tuple(self.columns[1:])
        where = "the fleet" if self._fleet is not None else self.conn.name
        title = f"EventLog on {where}: {self.model.status()}"
        return repr(Table(columns, rows, title))

    def _closing(self) -> None:
        # also after a failed __init__: only what was made
        for part in (getattr(self, "_coalescer", None), getattr(self, "_subscription", None)):
            if part is not None:
                part.cancel()
