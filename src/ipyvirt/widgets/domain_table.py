"""A live table of a hypervisor's domains.

The table keeps every domain's row in the kernel and shows one page of them through a fixed
pool of row widgets. An event marks its domain dirty; a coalesced refresh (at most 20 a
second) re-reads the dirty domains and sets only the row widgets whose text changed, so one
event costs one small comm message whatever the number of domains.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import ipywidgets as widgets
import libvirt

from ipyvirt.connection import Connection
from ipyvirt.domains import (
    COLUMNS,
    DomainRow,
    query_all_with_handles,
    query_domain,
    shown_reason,
)
from ipyvirt.hub import Event
from ipyvirt.models.domain_table import ALL_STATES, SORT_KEYS, DomainTableModel
from ipyvirt.models.offloop import OffLoop
from ipyvirt.names import DOMAIN_STATES, state_name
from ipyvirt.tables import Table
from ipyvirt.widgets.actions import ActionBar
from ipyvirt.widgets.base import LIVE, Coalescer, OnMain, Repeater, as_connection, need_runtime

__all__ = ["DomainTable"]

# lifecycle events after which only a domain's state and reason differ
_STATE_ONLY = frozenset({"suspended", "resumed", "pmsuspended"})

log = logging.getLogger("ipyvirt")

# Rows carry a class, the header carries the style: a row update stays a few hundred bytes.
_STYLE = (
    "<style>.ipyvirt-row{display:grid;"
    "grid-template-columns:14em 3em 7em 9em 4em 8em 6em 6em;gap:0 0.8em}</style>"
)

#: (state, reason) by domain name from the bulk call; whole rows (None: gone) by name
_Read = tuple[dict[str, tuple[int, int]], dict[str, "tuple[DomainRow, libvirt.virDomain] | None"]]


def _row_html(row: DomainRow | None) -> str:
    if row is None:
        return ""
    cells = "".join(f"<span>{html.escape(str(c))}</span>" for c in row.cells())
    return f'<div class="ipyvirt-row" data-state="{row.state}">{cells}</div>'


_HEADER = (
    _STYLE
    + '<div class="ipyvirt-row" style="font-weight:bold">'
    + "".join(f"<span>{html.escape(c)}</span>" for c in COLUMNS)
    + "</div>"
)


class DomainTable(widgets.VBox):  # type: ignore[misc]
    """A row per domain of *conn* (a libvirt connection or an :class:`ipyvirt.Connection`),
    kept current by libvirt's events; sortable, filterable by name and state, paged.

    With ``actions=True`` (default) rows can be selected and started, shut down, rebooted,
    suspended, resumed or destroyed, on read-write connections. What it shows lives in
    ``model`` (a :class:`~ipyvirt.models.domain_table.DomainTableModel`); the widget
    reads libvirt off the loop and draws the model.
    """

    def __init__(
        self,
        conn: Connection | libvirt.virConnect,
        *,
        page_size: int = 25,
        interval: float = 0.05,
        resync: float = 30.0,
        actions: bool = True,
    ) -> None:
        rt = need_runtime()
        self._conn, self._owns_conn = as_connection(conn)
        self._on_main = OnMain(rt)
        self.model = DomainTableModel(page_size)
        # libvirt keeps a connection open while any of its domain handles lives: the widget,
        # not the model, holds them (the model holds plain data only)
        self._handles: dict[str, libvirt.virDomain] = {}
        try:
            self._load(query_all_with_handles(self._conn.reader))
        except BaseException:
            if self._owns_conn:  # a Connection made for this table alone
                self._conn.close()
            raise
        #: domain name -> whether it needs a full re-read (False: its state alone)
        self._dirty: dict[str, bool] = {}
        #: why the table is stale ("connection closed (eof)"), "" while it is live
        self._closed = ""
        self._rt = rt
        self._reads = OffLoop(rt.main_loop, name="ipyvirt-table")
        self._want_all = False
        self._shut = False
        self._page_size = page_size
        self._coalescer = Coalescer(rt.main_loop, interval, self._flush)
        # libvirt sends no event for some changes (autostart): re-read everything now and then
        self._resync = Repeater(rt.main_loop, resync, self._resync_all)

        self._name_filter = widgets.Text(placeholder="filter by name", layout={"width": "14em"})
        self._state_filter = widgets.Dropdown(
            options=[ALL_STATES, *DOMAIN_STATES], layout={"width": "10em"}
        )
        self._sort = widgets.Dropdown(
            options=list(SORT_KEYS), description="sort by", layout={"width": "14em"}
        )
        self._descending = widgets.ToggleButton(value=False, description="descending")
        self._summary = widgets.HTML()
        self._empty = widgets.HTML(layout={"display": "none"})
        self._prev = widgets.Button(description="◀", layout={"width": "3em"})
        self._next = widgets.Button(description="▶", layout={"width": "3em"})
        self._page_label = widgets.Label()
        self._checks = [
            widgets.Checkbox(indent=False, layout={"width": "2em"}) for _ in range(page_size)
        ]
        self._cells = [widgets.HTML() for _ in range(page_size)]
        self._slots = [
            widgets.HBox([check, cell], layout={"display": "none"})
            for check, cell in zip(self._checks, self._cells, strict=True)
        ]
        self.actions = ActionBar(
            self._conn, self._selected_domains, rt, enabled=actions, why_not=self.model.why_not
        )
        for control in (self._name_filter, self._state_filter, self._sort, self._descending):
            control.observe(lambda change: self._on_main(self._look), "value")
        self._prev.on_click(lambda _: self._on_main(self.model.turn, -1))
        self._next.on_click(lambda _: self._on_main(self.model.turn, 1))
        for i, check in enumerate(self._checks):
            check.observe(lambda change, i=i: self._on_main(self._check, i, change["new"]), "value")

        super().__init__(
            [
                widgets.HBox([self._name_filter, self._state_filter, self._sort, self._descending]),
                self._summary,
                widgets.HTML(_HEADER),
                *self._slots,
                self._empty,
                widgets.HBox([self._prev, self._page_label, self._next]),
                self.actions,
            ]
        )
        self.model.listen(lambda change: self._show())
        self._subscription = self._conn.subscribe(self._on_event, families=["domain", "connection"])
        self._resync.start()
        self._show()
        LIVE.add(self)
        self._conn.depend(self)

    # -- events ---------------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if event.kind == "close":
            self._closed = f"connection closed ({event.detail})"
            self._show()
            return
        if event.kind == "reconnect":
            # registrations are back already: what changed while we were away shows now
            self._closed = ""
            self._dirty.clear()
            self._resync_all()
            return
        # a pause or a resume changes the state alone: one bulk stats call re-reads those
        state_only = event.kind == "lifecycle" and event.name in _STATE_ONLY
        self._dirty[event.subject] = self._dirty.get(event.subject, False) or not state_only
        self._coalescer.poke()

    def _load(self, rows: dict[str, tuple[DomainRow, libvirt.virDomain]]) -> None:
        self._handles = {u: dom for u, (_, dom) in rows.items()}
        self.model.load(row for row, _ in rows.values())

    # Reading libvirt blocks (an RPC per call; behind thousands of queued events on a busy
    # daemon socket, for a while): self._reads (an OffLoop, its invariants beside it) runs
    # one read at a time on a worker and applies it on the main loop, also when the read
    # raises. What became dirty meanwhile is read next; a failed read is logged and its
    # domains are read again at their next event or the next full re-read (resync), not
    # at once: a read that fails for good must not spin.

    def _flush(self) -> None:
        if self._reads.busy:
            return  # the read under way pokes again when it is applied
        dirty, self._dirty = self._dirty, {}
        states = {}
        for name, whole in dirty.items():
            uuid = self.model.uuid_of(name)
            if not whole and uuid is not None and uuid in self._handles:
                states[name] = self._handles[uuid]
        full = [n for n in dirty if n not in states]
        reader = self._conn.reader
        self._reads.submit(
            lambda: _read(reader, states, full),
            self._apply,
            self._failed,
        )

    def _apply(self, read: _Read) -> None:
        states, rows = read
        with self.model.batch():  # one redraw for the whole read
            for name, (state, reason) in states.items():
                self.model.set_state(name, state_name(state), shown_reason(state, reason))
            for name, found in rows.items():
                self._put(name, found)
        self._after_read()

    def _failed(self, err: BaseException) -> None:
        log.error("ipyvirt: re-reading domains failed", exc_info=err)
        self._after_read()

    def _after_read(self) -> None:
        """After a read: the full re-read asked for meanwhile, else what became dirty."""
        if self._want_all:
            self._resync_all()
        elif self._dirty:
            self._coalescer.poke()

    def _put(self, name: str, found: tuple[DomainRow, libvirt.virDomain] | None) -> None:
        old = self.model.uuid_of(name)
        if old is not None:
            self._handles.pop(old, None)
        if found is not None:
            self._handles[found[0].uuid] = found[1]
        self.model.put(name, None if found is None else found[0])

    def _resync_all(self) -> None:
        if self._closed:
            return  # nothing to read until the connection is back
        if self._reads.busy:
            self._want_all = True  # after the read under way
            return
        self._want_all = False
        reader = self._conn.reader
        self._reads.submit(lambda: _read_all(reader), self._apply_all, self._failed_all)

    def _apply_all(self, rows: dict[str, tuple[DomainRow, libvirt.virDomain]] | None) -> None:
        if rows is not None:
            self._load(rows)
        self._after_read()

    def _failed_all(self, err: BaseException) -> None:
        log.error("ipyvirt: re-reading every domain failed", exc_info=err)
        self._after_read()

    # -- the view -------------------------------------------------------------------------------

    def _look(self) -> None:
        self.model.look(
            name_filter=self._name_filter.value,
            state_filter=self._state_filter.value,
            sort=self._sort.value,
            descending=self._descending.value,
        )

    def _show(self) -> None:
        """Set the widgets whose text changed (on the main thread)."""
        if self._shut:
            return
        shown = self.model.shown()
        for i, slot in enumerate(self._slots):
            row = shown[i] if i < len(shown) else None
            _set(self._cells[i], "value", _row_html(row))
            _set(self._checks[i], "value", row is not None and row.uuid in self.model.selected)
            _set(slot.layout, "display", "flex" if row is not None else "none")
        empty = self.model.empty_text()
        _set(self._empty, "value", html.escape(empty))
        _set(self._empty.layout, "display", "block" if empty else "none")
        _set(self._page_label, "value", self.model.page_label())
        _set(self._summary, "value", html.escape(self._summary_text()))
        self.actions.refresh(len(self.model.targets()))

    def _summary_text(self) -> str:
        return self.model.summary(self._conn.name, self._closed)

    def _check(self, slot: int, value: bool) -> None:
        shown = self.model.shown()
        if slot < len(shown):
            self.model.select(shown[slot].uuid, value)

    def _selected_domains(self) -> list[tuple[str, str]]:
        """(uuid, name) of the selected domains the filter shows, in table order."""
        return [(r.uuid, r.name) for r in self.model.targets()]

    # -- what callers and tests read ------------------------------------------------------------

    @property
    def selected(self) -> set[str]:
        """The UUIDs of the selected domains."""
        return self.model.selected

    def rows(self) -> list[DomainRow]:
        """Every domain's row as the table holds it now, sorted by name."""
        return self.model.by_name()

    @property
    def settled(self) -> bool:
        """No event is waiting to be shown."""
        return (
            not self._dirty
            and not self._coalescer.pending
            and not self._reads.busy
            and not self._want_all
        )

    def __repr__(self) -> str:
        shown = self.model.shown()
        table = Table(
            COLUMNS, tuple(r.cells() for r in shown), f"DomainTable: {self._summary_text()}"
        )
        more = len(self.model.view()) - len(shown)
        return repr(table) + (f"\n{self.model.page_label()} shown" if more else "")

    def close(self) -> None:
        if self._shut:
            return  # closing its connection closes it too
        self._shut = True
        # a read under way uses the connection: let it end before anyone may close that
        self._reads.close()
        # libvirt keeps a connection open while any of its domain handles lives
        self._handles.clear()
        self._coalescer.cancel()
        self._resync.cancel()
        self._subscription.cancel()
        self.actions.close()
        if self._owns_conn:
            self._conn.close()
        for child in (*self._cells, *self._checks, *self._slots):
            child.close()
        super().close()


def _read(
    reader: libvirt.virConnect, states: dict[str, libvirt.virDomain], full: list[str]
) -> _Read:
    """On the worker: the states of *states* in one call, whole rows for the rest."""
    found: dict[str, tuple[int, int]] = {}
    if states:
        try:
            for dom, values in reader.domainListGetStats(
                list(states.values()), libvirt.VIR_DOMAIN_STATS_STATE
            ):
                if "state.state" in values:
                    found[dom.name()] = (values["state.state"], values.get("state.reason", 0))
        except libvirt.libvirtError:
            pass  # one of them is gone: the rest are read one by one below
    rows: dict[str, tuple[DomainRow, libvirt.virDomain] | None] = {}
    for name in [*full, *(n for n in states if n not in found)]:
        try:
            dom = reader.lookupByName(name)
            rows[name] = (query_domain(dom), dom)
        except libvirt.libvirtError:
            rows[name] = None  # undefined, or a transient domain that stopped: gone
    return found, rows


def _read_all(reader: libvirt.virConnect) -> dict[str, tuple[DomainRow, libvirt.virDomain]] | None:
    try:
        return query_all_with_handles(reader)
    except libvirt.libvirtError:
        return None  # closed meanwhile: its close event tells


def _set(obj: Any, name: str, value: object) -> None:
    # Only a changed trait sends a comm message; comparing first keeps it so even where a
    # trait would resend an equal value.
    if getattr(obj, name) != value:
        setattr(obj, name, value)
