"""A live table of a hypervisor's domains, in one comm.

The kernel keeps every domain's row (:class:`~ipyvirt.models.domain_table.DomainTableModel`)
and sends the browser only what one page shows: a few synced traits, drawn by
``static/domain_table.js`` as a real HTML table. An event marks its domain dirty; a coalesced
re-read (at most 1/*interval* a second, off the loop) updates the model, and one redraw sets
the traits that changed, in one comm message: a change on another page costs the summary
line, one on this page a page of rows, whatever the number of domains.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import libvirt
import traitlets

from ipyvirt.connection import Connection
from ipyvirt.domains import COLUMNS, DomainRow
from ipyvirt.models.actions import ACTIONS
from ipyvirt.models.domain_table import ALL_STATES, DomainTableModel
from ipyvirt.models.host_groups import Group
from ipyvirt.models.thumbnails import THUMB_STATES
from ipyvirt.names import DOMAIN_STATES
from ipyvirt.tables import Table
from ipyvirt.widgets.actions import ActionBar
from ipyvirt.widgets.host_rows import HostRows
from ipyvirt.widgets.lean import lean as _lean
from ipyvirt.widgets.thumbnails import TableThumbs
from ipyvirt.widgets.view import STATIC, View, css, esm

__all__ = ["DomainTable"]

log = logging.getLogger("ipyvirt")


#: seconds between a row's thumbnails with ``thumbnails=True``: a booting or crashed guest
#: shows within 5 s, which is what a picture this small tells; a page of 25 guests is then 5
#: screenshots a second on the connection the table reads its events' rows through
THUMBNAIL_INTERVAL = 5.0


def _thumbnail_interval(thumbnails: bool | float) -> float:
    """``thumbnails=`` as seconds between a row's pictures (0: no column)."""
    if thumbnails is True:
        return THUMBNAIL_INTERVAL
    if thumbnails is False:
        return 0.0
    if isinstance(thumbnails, int | float) and thumbnails >= 1:
        return float(thumbnails)
    raise ValueError(
        f"thumbnails={thumbnails!r}: give True (every {THUMBNAIL_INTERVAL:g} s), False, "
        "or the seconds between pictures (>= 1)"
    )


def _cells(row: DomainRow, selected: bool) -> list[object]:
    """A row as the view gets it: a list, not a dict (a page of 50 rows is ~5 KiB, not 10).
    The order is the one domain_table.js reads (see its SELECTED); a fleet's row has its
    host last. libvirt's reason "unknown" tells a reader nothing: the view shows no reason
    instead."""
    reason = "" if row.reason == "unknown" else row.reason
    return [
        row.key,
        row.name,
        row.id,
        row.state,
        reason,
        row.vcpus,
        row.memory_mib,
        int(row.autostart),  # 1 and 0: four bytes fewer than true and false, 50 times over
        int(row.persistent),
        int(selected),
        *([row.host] if row.host else []),
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

    With ``thumbnails=True`` a first column shows each running or paused domain's screen,
    small, read again every 5 s (or every *thumbnails* seconds, a number >= 1) while the
    table is on screen and its browser tab visible, for the shown page's rows only; "no
    screen" where a domain has none. Off by default: each picture is a screenshot RPC on
    the connection the table reads through.
    """

    _esm = _lean(esm("domain_table"))
    _css = _lean(css("domain_table"), css=True)
    #: the module of a table with thumbnails: their code and style too (a table without has
    #: none of it; the style rides in the module, as a view's style is its class's)
    _THUMBS_ESM = _lean(
        "const THUMBS_CSS = "
        f"{json.dumps(_lean((STATIC / 'domain_table_thumbs.css').read_text(), css=True))};\n"
        + esm("domain_table", "domain_table_thumbs")
    )

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
    #: seconds between a row's thumbnails; 0: no thumbnail column
    thumbnails = traitlets.Float(0.0).tag(sync=True)

    #: the thumbnail column's reads (None: no column; a FleetTable has none)
    _thumbs: TableThumbs | None = None

    def __init__(
        self,
        conn: Connection | libvirt.virConnect,
        *,
        page_size: int = 25,
        interval: float = 0.05,
        resync: float = 30.0,
        actions: bool = True,
        thumbnails: bool | float = False,
    ) -> None:
        self.model = DomainTableModel(page_size)  # first: a bad page_size opens no comm
        every = _thumbnail_interval(thumbnails)
        if every and isinstance(conn, Connection) and conn.readonly:
            raise ValueError(
                "thumbnails need a read-write connection (libvirt refuses a read-only one a "
                "screenshot): %virt connect --rw, or libvirt.open"
            )
        extra = {"_esm": self._THUMBS_ESM} if every else {}
        super().__init__(states=[ALL_STATES, *DOMAIN_STATES], thumbnails=every, **extra)
        self._live(conn)
        self._interval, self._resync_every = interval, resync
        #: the rows of each connection shown, by host ("" alone in a one-host table)
        self._sources: dict[str, HostRows] = {}
        try:
            self._add_source(self.conn, "").load_now()
        except BaseException:
            self.close()  # and the Connection made for this table alone
            raise
        self._sources[""].start()
        self.actions = ActionBar(
            self.conn,
            self._selected_domains,
            self._rt,
            enabled=actions,
            why_not=self._why_not,
            changed=self._show,
        )
        self._openers: list[Callable[[str], object]] = []
        if every:
            self._thumbs = TableThumbs(
                self._rt, every, lambda: self.conn.conn, self._uuid_of, self.send
            )
        self.model.listen(lambda change: self._show())
        self._show()

    def _why_not(self, action: str, targets: list[DomainRow] | None = None) -> str:
        """Why *action* does not apply to the selection shown, one line ("" if it does)."""
        return self.model.why_not(action, targets)

    def _look(self) -> dict[str, object]:
        """The ``look`` trait: the filters and sort in force."""
        model = self.model
        return {
            "name_filter": model.name_filter,
            "state_filter": model.state_filter,
            "sort": model.sort,
            "descending": model.descending,
        }

    def _add_source(self, conn: Connection, host: str) -> HostRows:
        source = HostRows(
            conn,
            self.model,
            self._rt,
            host=host,
            interval=self._interval,
            resync=self._resync_every,
            changed=self._show,
        )
        self._sources[host] = source
        return source

    @property
    def _closed(self) -> str:
        """Why the table is stale ("connection closed (eof)"), "" while it is live."""
        source = self._sources.get("")
        return source.closed if source is not None else ""

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
                host_filter=self._host_filter(content.get("host_filter")),
                group=self._group(content.get("group")),
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
        elif do == "thumbs":  # a table without the column has no view that asks
            if self._thumbs is not None:
                self._thumbs.ask(bool(content.get("fresh")))
        elif do == "confirm":
            actions.confirm()
        elif do == "cancel":
            actions.cancel()
        else:
            raise ValueError(f"unknown request {do!r}")

    def _host_filter(self, value: object) -> str | None:
        """A host filter the view asked for, checked (a one-host table has none)."""
        if value is not None:
            raise ValueError("this table shows one host")
        return None

    def _group(self, value: object) -> bool | None:
        """Grouping by host, as the view asked (a one-host table has no hosts to group)."""
        if value is not None:
            raise ValueError("this table shows one host")
        return None

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
        lines = model.page_lines(view)
        targets = model.targets(view)
        with self.hold_sync():
            self.page_rows = self._page_rows(lines)
            self.pager = {
                "label": model.page_label(view) if lines else "",  # no "0 of 0": see empty
                "page": model.page,
                "pages": model.pages_of(view),
            }
            self.look = self._look()
            self.summary = self._summary_text()
            self.empty = self._empty_text() if not view else ""
            self.selection = {"selected": len(targets), "shown": model.open_rows(view)}
            self.buttons = (
                {a: self.actions.reason(a, lambda a: self._why_not(a, targets)) for a in ACTIONS}
                if self.actions.enabled
                else {}
            )
            self.question = self.actions.question
            self.outcome = self.actions.status
        if self._thumbs is not None:
            self._thumbs.page(
                {r.key for r in lines if isinstance(r, DomainRow) and r.state in THUMB_STATES}
            )

    def _uuid_of(self, key: str) -> str | None:
        """The domain UUID of row *key* (None: no such row any more)."""
        row = self.model.rows.get(key)
        return row.uuid if row is not None else None

    def _page_rows(self, lines: list[Group | DomainRow]) -> list[list[object]]:
        """The ``page_rows`` trait: the page's rows as lists (a fleet's headers too)."""
        selected = self.model.selected
        return [_cells(r, r.key in selected) for r in lines if isinstance(r, DomainRow)]

    def _summary_text(self) -> str:
        return self.model.summary(self.conn.name, self._closed)

    def _empty_text(self) -> str:
        """What the view shows instead of rows ("" when a row or a header shows)."""
        return self.model.empty_text()

    def _selected_domains(self) -> list[tuple[str, str]]:
        """(key, name) of the selected domains the filter shows, in table order."""
        return [(r.key, r.name) for r in self.model.targets()]

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
        """No event is waiting to be shown, no action is running, no thumbnail is read."""
        return (
            all(s.settled for s in self._sources.values())
            and not self.actions.busy
            and (self._thumbs is None or self._thumbs.settled)
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
        # a read or an action under way uses the connection: let it end before anyone may
        # close that; libvirt keeps a connection open while any of its domain handles lives
        for source in getattr(self, "_sources", {}).values():
            source.close()
        if hasattr(self, "actions"):  # a table whose first read failed has none
            self.actions.close()
        if self._thumbs is not None:
            self._thumbs.close()
