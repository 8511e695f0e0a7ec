"""A live table of a hypervisor's domains.

The table keeps every domain's row in the kernel and shows one page of them through a fixed
pool of row widgets. An event marks its domain dirty; a coalesced refresh (at most 20 a
second) re-reads the dirty domains and sets only the row widgets whose text changed, so one
event costs one small comm message whatever the number of domains.
"""

from __future__ import annotations

import html
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import ipywidgets as widgets
import libvirt

from ipyvirt.connection import Connection
from ipyvirt.domains import (
    COLUMNS,
    STATE_ORDER,
    DomainRow,
    query_all_with_handles,
    query_domain,
)
from ipyvirt.hub import Event
from ipyvirt.names import state_name, state_reason_name
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
_SORT_KEYS = {
    "name": lambda r: (r.name,),
    "state": lambda r: (STATE_ORDER.index(r.state) if r.state in STATE_ORDER else 99, r.name),
    "id": lambda r: (r.id < 0, r.id, r.name),
    "vcpus": lambda r: (r.vcpus, r.name),
    "memory": lambda r: (r.memory_mib, r.name),
}


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
    suspended, resumed or destroyed, on read-write connections.
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
        self._model: dict[str, DomainRow] = {}
        self._handles: dict[str, libvirt.virDomain] = {}
        self._by_name: dict[str, str] = {}
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
        self._reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ipyvirt-table")
        self._reading = False
        self._want_all = False
        self._shut = False
        self._view: list[DomainRow] = []
        self._page = 0
        self._page_size = page_size
        self.selected: set[str] = set()
        self._coalescer = Coalescer(rt.main_loop, interval, self._flush)
        # libvirt sends no event for some changes (autostart): re-read everything now and then
        self._resync = Repeater(rt.main_loop, resync, self._resync_all)

        self._name_filter = widgets.Text(placeholder="filter by name", layout={"width": "14em"})
        self._state_filter = widgets.Dropdown(
            options=["all states", *STATE_ORDER], layout={"width": "10em"}
        )
        self._sort = widgets.Dropdown(
            options=list(_SORT_KEYS), description="sort by", layout={"width": "14em"}
        )
        self._descending = widgets.ToggleButton(value=False, description="descending")
        self._summary = widgets.HTML()
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
        self.actions = ActionBar(self._conn, self._selected_domains, rt, enabled=actions)
        for control in (self._name_filter, self._state_filter, self._sort, self._descending):
            control.observe(lambda change: self._on_main(self._show), "value")
        self._prev.on_click(lambda _: self._on_main(self._turn, -1))
        self._next.on_click(lambda _: self._on_main(self._turn, 1))
        for i, check in enumerate(self._checks):
            check.observe(lambda change, i=i: self._on_main(self._check, i, change["new"]), "value")

        super().__init__(
            [
                widgets.HBox([self._name_filter, self._state_filter, self._sort, self._descending]),
                self._summary,
                widgets.HTML(_HEADER),
                *self._slots,
                widgets.HBox([self._prev, self._page_label, self._next]),
                self.actions,
            ]
        )
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
        self._model = {u: row for u, (row, _) in rows.items()}
        self._handles = {u: dom for u, (_, dom) in rows.items()}
        self._by_name = {r.name: u for u, r in self._model.items()}

    # Reading libvirt blocks (an RPC per call; behind thousands of queued events on a busy
    # daemon socket, for a while): a worker thread reads, the main loop applies.
    # Invariant: at most one read is in flight (_reading, set and cleared on the main loop
    # only); the worker touches no widget state and hands its result back with
    # call_soon_threadsafe; every read ends in exactly one _apply*, which clears _reading
    # and drops the result after close(); what became dirty meanwhile is read next.

    def _flush(self) -> None:
        if self._reading:
            return  # the read under way pokes again when it is applied
        dirty, self._dirty = self._dirty, {}
        states = {
            n: self._handles[self._by_name[n]]
            for n, whole in dirty.items()
            if not whole and n in self._by_name
        }
        full = [n for n in dirty if n not in states]
        self._reading = True
        self._reads.submit(self._read, self._conn.reader, states, full)

    def _read(
        self, reader: libvirt.virConnect, states: dict[str, libvirt.virDomain], full: list[str]
    ) -> None:
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
        self._rt.call_soon(self._apply, found, rows)

    def _apply(
        self,
        states: dict[str, tuple[int, int]],
        rows: dict[str, tuple[DomainRow, libvirt.virDomain] | None],
    ) -> None:
        self._reading = False
        if self._shut:
            return
        for name, (state, reason) in states.items():
            uuid = self._by_name.get(name)
            if uuid is not None:
                self._model[uuid] = replace(
                    self._model[uuid],
                    state=state_name(state),
                    reason=state_reason_name(state, reason),
                )
        for name, found in rows.items():
            self._put(name, found)
        self.selected &= self._model.keys()
        self._show()
        self._after_read()

    def _after_read(self) -> None:
        """After a read: the full re-read asked for meanwhile, else what became dirty."""
        if self._want_all:
            self._resync_all()
        elif self._dirty:
            self._coalescer.poke()

    def _put(self, name: str, found: tuple[DomainRow, libvirt.virDomain] | None) -> None:
        old = self._by_name.pop(name, None)
        if old is not None:
            del self._model[old]
            self._handles.pop(old, None)
        if found is None:
            return
        row, dom = found
        stale = self._model.get(row.uuid)
        if stale is not None and stale.name != row.name:  # renamed
            self._by_name.pop(stale.name, None)
        self._model[row.uuid] = row
        self._handles[row.uuid] = dom
        self._by_name[row.name] = row.uuid

    def _resync_all(self) -> None:
        if self._closed:
            return  # nothing to read until the connection is back
        if self._reading:
            self._want_all = True  # after the read under way
            return
        self._want_all = False
        self._reading = True
        self._reads.submit(self._read_all, self._conn.reader)

    def _read_all(self, reader: libvirt.virConnect) -> None:
        try:
            rows = query_all_with_handles(reader)
        except libvirt.libvirtError:
            rows = None  # closed meanwhile: its close event tells
        self._rt.call_soon(self._apply_all, rows)

    def _apply_all(self, rows: dict[str, tuple[DomainRow, libvirt.virDomain]] | None) -> None:
        self._reading = False
        if self._shut:
            return
        if rows is not None:
            self._load(rows)
            self.selected &= self._model.keys()
            self._show()
        self._after_read()

    # -- the view -------------------------------------------------------------------------------

    def _show(self) -> None:
        """Filter, sort, page; set the widgets whose text changed (on the main thread)."""
        text = self._name_filter.value.strip().lower()
        state = self._state_filter.value
        rows = [
            r
            for r in self._model.values()
            if text in r.name.lower() and (state == "all states" or r.state == state)
        ]
        rows.sort(key=_SORT_KEYS[self._sort.value], reverse=self._descending.value)
        self._view = rows
        pages = max(1, -(-len(rows) // self._page_size))
        self._page = min(self._page, pages - 1)
        first = self._page * self._page_size
        shown = rows[first : first + self._page_size]
        for i, slot in enumerate(self._slots):
            row = shown[i] if i < len(shown) else None
            _set(self._cells[i], "value", _row_html(row))
            _set(self._checks[i], "value", row is not None and row.uuid in self.selected)
            _set(slot.layout, "display", "flex" if row is not None else "none")
        _set(
            self._page_label,
            "value",
            f"{first + 1 if shown else 0}-{first + len(shown)} of {len(rows)}",
        )
        _set(self._summary, "value", html.escape(self._summary_text()))
        self.actions.refresh(len(self.selected))

    def _summary_text(self) -> str:
        counts: dict[str, int] = {}
        for r in self._model.values():
            counts[r.state] = counts.get(r.state, 0) + 1
        states = ", ".join(f"{counts[s]} {s}" for s in STATE_ORDER if s in counts)
        n = len(self._model)
        text = f"{n} domain{'s' * (n != 1)} on {self._conn.name}"
        text += f" ({states})" if states else ""
        return text + (f" - {self._closed}" if self._closed else "")

    def _turn(self, step: int) -> None:
        self._page = max(0, self._page + step)
        self._show()

    def _check(self, slot: int, value: bool) -> None:
        first = self._page * self._page_size
        if first + slot >= len(self._view):
            return
        uuid = self._view[first + slot].uuid
        if value:
            self.selected.add(uuid)
        else:
            self.selected.discard(uuid)
        self.actions.refresh(len(self.selected))

    def _selected_domains(self) -> list[tuple[str, str]]:
        """(uuid, name) of the selected domains, in table order."""
        return [(r.uuid, r.name) for r in self._view if r.uuid in self.selected]

    # -- what callers and tests read ------------------------------------------------------------

    def rows(self) -> list[DomainRow]:
        """Every domain's row as the table holds it now, sorted by name."""
        return sorted(self._model.values(), key=lambda r: r.name)

    @property
    def settled(self) -> bool:
        """No event is waiting to be shown."""
        return (
            not self._dirty
            and not self._coalescer.pending
            and not self._reading
            and not self._want_all
        )

    def __repr__(self) -> str:
        first = self._page * self._page_size
        shown = self._view[first : first + self._page_size]
        table = Table(
            COLUMNS, tuple(r.cells() for r in shown), f"DomainTable: {self._summary_text()}"
        )
        more = len(self._view) - len(shown)
        return repr(table) + (f"\n{self._page_label.value} shown" if more else "")

    def close(self) -> None:
        if self._shut:
            return  # closing its connection closes it too
        self._shut = True
        # a read under way uses the connection: let it end before anyone may close that
        self._reads.shutdown(wait=True)
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


def _set(obj: Any, name: str, value: object) -> None:
    # Only a changed trait sends a comm message; comparing first keeps it so even where a
    # trait would resend an equal value.
    if getattr(obj, name) != value:
        setattr(obj, name, value)
