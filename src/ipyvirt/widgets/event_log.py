"""Every event libvirt offers, decoded, timestamped, filterable, in bounded memory."""

from __future__ import annotations

import html
import itertools
from collections import deque
from collections.abc import Callable

import ipywidgets as widgets
import libvirt

from ipyvirt.connection import Connection
from ipyvirt.hub import Event
from ipyvirt.names import FAMILIES
from ipyvirt.tables import Table
from ipyvirt.widgets.base import LIVE, Coalescer, OnMain, as_connection, need_runtime

__all__ = ["EventLog"]

_FAMILIES = ["all families", *FAMILIES, "connection"]


class EventLog(widgets.VBox):  # type: ignore[misc]
    """The newest events of every family on *conn*: domain (every event ID the binding has),
    network, pool, node device, secret, and the connection's close.

    Keeps at most *capacity* events (a ring buffer; the count of dropped ones is shown) and
    shows the newest *visible* that pass the filters, refreshed at most 20 times a second.
    """

    def __init__(
        self,
        conn: Connection | libvirt.virConnect,
        *,
        capacity: int = 10_000,
        visible: int = 50,
        families: list[str] | None = None,
        interval: float = 0.05,
    ) -> None:
        rt = need_runtime()
        self._conn, self._owns_conn = as_connection(conn)
        self._on_main = OnMain(rt)
        self.events: deque[Event] = deque(maxlen=capacity)
        #: events pushed out of the ring buffer
        self.dropped = 0
        self._visible = visible
        self._coalescer = Coalescer(rt.main_loop, interval, self._show)
        self._family = widgets.Dropdown(options=_FAMILIES, layout={"width": "12em"})
        self._subject = widgets.Text(
            placeholder="filter by domain / object", layout={"width": "16em"}
        )
        self._status = widgets.Label()
        self._lines = widgets.HTML()
        for control in (self._family, self._subject):
            control.observe(lambda change: self._on_main(self._show), "value")
        super().__init__([widgets.HBox([self._family, self._subject, self._status]), self._lines])
        self._subscription = self._conn.subscribe(self._on_event, families=families)
        self._show()
        self._shut = False
        LIVE.add(self)
        self._conn.depend(self)

    def _on_event(self, event: Event) -> None:
        if len(self.events) == self.events.maxlen:
            self.dropped += 1
        self.events.append(event)
        self._coalescer.poke()

    def _passes(self) -> Callable[[Event], bool]:
        family = self._family.value
        subject = self._subject.value.strip().lower()
        return lambda e: (
            (family == "all families" or e.family == family) and subject in e.subject.lower()
        )

    def matching(self) -> list[Event]:
        """The kept events that pass the filters, oldest first."""
        return list(filter(self._passes(), self.events))

    def newest(self) -> list[Event]:
        """The newest *visible* events that pass the filters, newest first."""
        # from the newest end, stopping early: a refresh costs what it shows, not what is kept
        return list(itertools.islice(filter(self._passes(), reversed(self.events)), self._visible))

    def _show(self) -> None:
        shown = self.newest()
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(c)}</td>"
                for c in (e.clock, e.family, e.subject, e.name, e.detail)
            )
            + "</tr>"
            for e in shown
        )
        value = f'<table class="ipyvirt-log">{rows}</table>'
        if self._lines.value != value:
            self._lines.value = value
        status = f"{len(self.events)} events kept, {self.dropped} dropped"
        if self._status.value != status:
            self._status.value = status

    def __repr__(self) -> str:
        shown = self.newest()
        rows = tuple((e.family, e.subject, e.name, e.detail) for e in shown)
        title = (
            f"EventLog on {self._conn.name}: {len(self.events)} events kept, {self.dropped} dropped"
        )
        return repr(Table(("family", "subject", "event", "detail"), rows, title))

    def close(self) -> None:
        if self._shut:
            return  # closing its connection closes it too
        self._shut = True
        self._coalescer.cancel()
        self._subscription.cancel()
        if self._owns_conn:
            self._conn.close()
        super().close()
