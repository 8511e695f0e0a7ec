"""Every event libvirt offers, decoded, timestamped, filterable, in bounded memory."""

from __future__ import annotations

import html

import ipywidgets as widgets
import libvirt

from ipyvirt.connection import Connection
from ipyvirt.hub import Event
from ipyvirt.models.event_history import COLUMNS, FILTER_FAMILIES, EventHistory, event_row
from ipyvirt.models.ring import Ring
from ipyvirt.tables import Table
from ipyvirt.widgets.base import LIVE, Coalescer, OnMain, as_connection, need_runtime

__all__ = ["EventLog"]


class EventLog(widgets.VBox):  # type: ignore[misc]
    """The newest events of every family on *conn*: domain (every event ID the binding has),
    network, pool, node device, secret, and the connection's close.

    Keeps at most *capacity* events (a ring buffer; the count of dropped ones is shown) and
    shows the newest *visible* that pass the filters, refreshed at most 20 times a second.
    With ``history=True`` it starts from the events *conn* recorded before it was made
    (:attr:`ipyvirt.Connection.history`). What it shows lives in ``model``
    (:class:`~ipyvirt.models.event_history.EventHistory`).
    """

    def __init__(
        self,
        conn: Connection | libvirt.virConnect,
        *,
        capacity: int = 10_000,
        visible: int = 50,
        families: list[str] | None = None,
        interval: float = 0.05,
        history: bool = False,
    ) -> None:
        rt = need_runtime()
        self._conn, self._owns_conn = as_connection(conn)
        self._on_main = OnMain(rt)
        wanted = None if families is None else set(families)
        earlier = [
            e
            for e in (self._conn.history if history else ())
            if wanted is None or e.family in wanted
        ]
        self.model = EventHistory(capacity, earlier)
        self._visible = visible
        self._coalescer = Coalescer(rt.main_loop, interval, self._show)
        self._family = widgets.Dropdown(options=list(FILTER_FAMILIES), layout={"width": "12em"})
        self._subject = widgets.Text(
            placeholder="filter by domain / object", layout={"width": "16em"}
        )
        self._status = widgets.Label()
        self._lines = widgets.HTML()
        for control in (self._family, self._subject):
            control.observe(lambda change: self._on_main(self._look), "value")
        super().__init__([widgets.HBox([self._family, self._subject, self._status]), self._lines])
        self._subscription = self._conn.subscribe(self._on_event, families=families)
        self._show()
        self._shut = False
        LIVE.add(self)
        self._conn.depend(self)

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

    def _look(self) -> None:
        self.model.look(family=self._family.value, subject=self._subject.value)
        self._show()

    def matching(self) -> list[Event]:
        """The kept events that pass the filters, oldest first."""
        return self.model.matching()

    def newest(self) -> list[Event]:
        """The newest *visible* events that pass the filters, newest first."""
        return self.model.newest(self._visible)

    def _show(self) -> None:
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in event_row(e)) + "</tr>"
            for e in self.newest()
        )
        value = f'<table class="ipyvirt-log">{rows}</table>'
        if self._lines.value != value:
            self._lines.value = value
        status = self.model.status()
        if self._status.value != status:
            self._status.value = status

    def __repr__(self) -> str:
        shown = self.newest()
        # the text form leaves the clock out: it would make every printed log differ
        rows = tuple(event_row(e)[1:] for e in shown)
        title = f"EventLog on {self._conn.name}: {self.model.status()}"
        return repr(Table(COLUMNS[1:], rows, title))

    def close(self) -> None:
        if self._shut:
            return  # closing its connection closes it too
        self._shut = True
        self._coalescer.cancel()
        self._subscription.cancel()
        if self._owns_conn:
            self._conn.close()
        super().close()
