"""A live table of a hypervisor's domains, in one comm.

The kernel keeps every domain's row (:class:`~ipyvirt.models.domain_table.DomainTableModel`)
and sends the browser only what one page shows: a few synced traits, drawn by
``static/domain_table.js`` as a real HTML table. An event marks its domain dirty; a coalesced
re-read (at most 1/*interval* a second, off the loop) updates the model, and one redraw sets
the traits that changed, in one comm message: a change on another page costs the summary
line, one on this page a page of rows, whatever the number of domains.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import libvirt
import traitlets

from ipyvirt.connection import Connection
from ipyvirt.domains import (
    COLUMNS,
    DomainRow,
    query_all_with_handles,
    query_domain,
    shown_reason,
)
from ipyvirt.hub import Event
from ipyvirt.models.actions import ACTIONS
from ipyvirt.models.domain_table import ALL_STATES, DomainTableModel
from ipyvirt.models.offloop import OffLoop
from ipyvirt.names import DOMAIN_STATES, state_name
from ipyvirt.tables import Table
from ipyvirt.widgets.actions import ActionBar
from ipyvirt.widgets.base import Coalescer, Repeater
from ipyvirt.widgets.view import View, css, esm

__all__ = ["DomainTable"]

# lifecycle events after which only a domain's state and reason differ
_STATE_ONLY = frozenset({"suspended", "resumed", "pmsuspended"})

log = logging.getLogger("ipyvirt")

#: (state, reason) by domain name from the bulk call; whole rows (None: gone) by name
_Read = tuple[dict[str, tuple[int, int]], dict[str, "tuple[DomainRow, libvirt.virDomain] | None"]]


def _lean(source: str, *, css: bool = False) -> str:
    """*source* (JavaScript, or CSS with *css*) without comments, indentation and blank
    lines: it travels in the comm_open of every table shown, and a 10,000-domain table's
    whole first render is held to 20 KiB. No line of ours spans a string or a template
    literal, and a JavaScript comment is a line of its own (``// ...`` or ``/** ... */``)."""
    if css:
        source = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and (css or not _js_comment(line)))


def _js_comment(line: str) -> bool:
    return line.startswith("//") or (line.startswith("/*") and line.endswith("*/"))


def _cells(row: DomainRow, selected: bool) -> list[object]:
    """A row as the view gets it: a list, not a dict (a page of 50 rows is ~5 KiB, not 10).
    The order is the one domain_table.js reads (see its SELECTED). libvirt's reason
    "unknown" tells a reader nothing: the view shows no reason instead."""
    reason = "" if row.reason == "unknown" else row.reason
    return [
        row.uuid,
        row.name,
        row.id,
        row.state,
        reason,
        row.vcpus,
        row.memory_mib,
        int(row.autostart),  # 1 and 0: four bytes fewer than true and false, 50 times over
        int(row.persistent),
        int(selected),
    ]


class DomainTable(View):
    """A row per domain of *conn* (a libvirt connection or an :class:`ipyvirt.Connection`),
    kept current by libvirt's events; sortable by its headers, filterable by name and state,
    paged by *page_size*.

    With ``actions=True`` (default) rows can be selected and started, shut down, rebooted,
    suspended, resumed or destroyed, on read-write connections: a button is enabled only when
    its action applies to every selected domain the filter shows (its tooltip says why not),
    and acts on those alone. What it shows lives in ``model`` (a
    :class:`~ipyvirt.models.domain_table.DomainTableModel`); the actions in ``actions`` (an
    :class:`~ipyvirt.widgets.ActionBar`). One comm: the browser gets the shown page only.
    """

    _esm = _lean(esm("domain_table"))
    _css = _lean(css("domain_table"), css=True)

    # What the view draws; the kernel alone writes them (view.py's rule). Each is small: the
    # page's rows, and a few lines of text.
    page_rows: traitlets.List[list[object]] = traitlets.List().tag(sync=True)
    pager = traitlets.Dict().tag(sync=True)
    look = traitlets.Dict().tag(sync=True)
    states: traitlets.List[str] = traitlets.List().tag(sync=True)
    summary = traitlets.Unicode().tag(sync=True)
    empty = traitlets.Unicode().tag(sync=True)
    selection = traitlets.Dict().tag(sync=True)
    buttons = traitlets.Dict().tag(sync=True)
    question = traitlets.Unicode().tag(sync=True)
    outcome = traitlets.Unicode().tag(sync=True)
    #: names are buttons that open the domain (someone called :meth:`on_open`)
    openable = traitlets.Bool(False).tag(sync=True)

    def __init__(
        self,
        conn: Connection | libvirt.virConnect,
        *,
        page_size: int = 25,
        interval: float = 0.05,
        resync: float = 30.0,
        actions: bool = True,
    ) -> None:
        self.model = DomainTableModel(page_size)  # first: a bad page_size opens no comm
        super().__init__(states=[ALL_STATES, *DOMAIN_STATES])
        self._live(conn)
        rt = self._rt
        # libvirt keeps a connection open while any of its domain handles lives: the widget,
        # not the model, holds them (the model holds plain data only)
        self._handles: dict[str, libvirt.virDomain] = {}
        try:
            self._load(query_all_with_handles(self.conn.reader))
        except BaseException:
            self.close()  # and the Connection made for this table alone
            raise
        #: domain name -> whether it needs a full re-read (False: its state alone)
        self._dirty: dict[str, bool] = {}
        #: why the table is stale ("connection closed (eof)"), "" while it is live
        self._closed = ""
        self._reads = OffLoop(rt.main_loop, name="ipyvirt-table")
        self._want_all = False
        self._coalescer = Coalescer(rt.main_loop, interval, self._flush)
        # libvirt sends no event for some changes (autostart): re-read everything now and then
        self._resync = Repeater(rt.main_loop, resync, self._resync_all)
        self.actions = ActionBar(
            self.conn,
            self._selected_domains,
            rt,
            enabled=actions,
            why_not=self.model.why_not,
            changed=self._show,
        )
        self._openers: list[Callable[[str], object]] = []
        self.model.listen(lambda change: self._show())
        self._subscription = self.conn.subscribe(self._on_event, families=["domain", "connection"])
        self._resync.start()
        self._show()

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
        reader = self.conn.reader
        self._reads.submit(lambda: _read(reader, states, full), self._apply, self._failed)

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
        reader = self.conn.reader
        self._reads.submit(lambda: _read_all(reader), self._apply_all, self._failed_all)

    def _apply_all(self, rows: dict[str, tuple[DomainRow, libvirt.virDomain]] | None) -> None:
        if rows is not None:
            self._load(rows)
        self._after_read()

    def _failed_all(self, err: BaseException) -> None:
        log.error("ipyvirt: re-reading every domain failed", exc_info=err)
        self._after_read()

    # -- what the view asks for (on the main loop) ----------------------------------------------

    def _handle(self, do: str, content: dict[str, Any]) -> None:
        try:
            self._request(do, content)
        except (ValueError, TypeError, KeyError) as err:
            # the view sends only what it offers: a bad request is a bug, not the user's doing
            log.warning("ipyvirt: the domain table's view asked %r: %s", content, err)

    def _request(self, do: str, content: dict[str, Any]) -> None:
        model, actions = self.model, self.actions
        if do == "look":
            model.look(
                name_filter=content.get("name_filter"),
                state_filter=content.get("state_filter"),
            )
        elif do == "sort":
            key = str(content["key"])
            model.look(sort=key, descending=not model.descending if key == model.sort else False)
        elif do == "turn":
            model.turn(int(content["step"]))
        elif do == "select":
            model.select(str(content["uuid"]), bool(content["on"]))
        elif do == "select_all":
            model.select_all(bool(content["on"]))
        elif do == "act" and actions.enabled:
            actions.click(str(content["action"]))
        elif do == "open":
            row = self.model.rows.get(str(content["uuid"]))
            if row is not None:
                for opener in list(self._openers):
                    opener(row.name)
        elif do == "confirm":
            actions.confirm()
        elif do == "cancel":
            actions.cancel()
        else:
            raise ValueError(f"unknown request {do!r}")

    # -- the view -------------------------------------------------------------------------------

    def _show(self) -> None:
        """Set the traits whose value changed, in one comm message (on the main thread).

        The view is filtered and sorted once here: at 10,000 domains that is most of a
        redraw's cost, and the model's own helpers would each do it again.
        """
        if self._shut:
            return
        model = self.model
        view = model.view()
        shown = model.shown(view)
        targets = [r for r in view if r.uuid in model.selected]
        with self.hold_sync():
            self.page_rows = [_cells(r, r.uuid in model.selected) for r in shown]
            self.pager = {
                "label": model.page_label(view) if view else "",  # no "0 of 0": see empty
                "page": model.page,
                "pages": max(1, -(-len(view) // model.page_size)),
            }
            self.look = {
                "name_filter": model.name_filter,
                "state_filter": model.state_filter,
                "sort": model.sort,
                "descending": model.descending,
            }
            self.summary = self._summary_text()
            self.empty = model.empty_text() if not view else ""
            self.selection = {"selected": len(targets), "shown": len(view)}
            self.buttons = (
                {a: self.actions.reason(a, lambda a: model.why_not(a, targets)) for a in ACTIONS}
                if self.actions.enabled
                else {}
            )
            self.question = self.actions.question
            self.outcome = self.actions.status

    def _summary_text(self) -> str:
        return self.model.summary(self.conn.name, self._closed)

    def _selected_domains(self) -> list[tuple[str, str]]:
        """(uuid, name) of the selected domains the filter shows, in table order."""
        return [(r.uuid, r.name) for r in self.model.targets()]

    def on_open(self, opener: Callable[[str], object]) -> None:
        """Call ``opener(name)`` when the user clicks a domain's name (on the main loop);
        names become buttons from then on. A :class:`~ipyvirt.widgets.Dashboard` opens a
        :class:`~ipyvirt.widgets.DomainView` under the table this way."""
        self._openers.append(opener)
        self.openable = True

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
        """No event is waiting to be shown, and no action is running."""
        return (
            not self._dirty
            and not self._coalescer.pending
            and not self._reads.busy
            and not self._want_all
            and not self.actions.busy
        )

    def __repr__(self) -> str:
        shown = self.model.shown()
        table = Table(
            COLUMNS, tuple(r.cells() for r in shown), f"DomainTable: {self._summary_text()}"
        )
        more = len(self.model.view()) - len(shown)
        return repr(table) + (f"\n{self.model.page_label()} shown" if more else "")

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        # The text stored beside the view, as ipywidgets' own widgets store it: repr()'s
        # first 110 characters. Whole, it would be a page of rows as they were at display
        # time, which a notebook's stored outputs (nbval) cannot hold still.
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            text = bundle[0]["text/plain"]
            bundle[0]["text/plain"] = text[:110] + "…" if len(text) > 110 else text
        return bundle

    def _closing(self) -> None:
        # a read under way uses the connection: let it end before anyone may close that
        for part in ("_reads", "actions"):
            if hasattr(self, part):  # a table whose first read failed has neither
                getattr(self, part).close()
        # libvirt keeps a connection open while any of its domain handles lives
        self._handles.clear()
        if hasattr(self, "_coalescer"):
            self._coalescer.cancel()
            self._resync.cancel()
        if hasattr(self, "_subscription"):
            self._subscription.cancel()


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
