"""A fleet's live views: one domain table over every host, the hosts' health, one event log,
together in :class:`FleetDashboard`.

Built on the one-host widgets, not beside them: :class:`FleetTable` is a
:class:`~ipyvirt.widgets.DomainTable` whose model holds every host's rows (with a host
column, a host filter and sort: :class:`~ipyvirt.models.domain_table.DomainTableModel`),
kept by one :class:`~ipyvirt.widgets.host_rows.HostRows` per connected host, its actions
routed to each row's host; the event log is an :class:`~ipyvirt.widgets.EventLog` of the
fleet (a host column). Each is one comm; the dashboard adds one for its tabs.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import libvirt
import traitlets

from ipyvirt.domains import COLUMNS, DomainRow
from ipyvirt.fleet import Fleet
from ipyvirt.fleet_host import HEALTH_COLUMNS, FleetHost
from ipyvirt.models.domain_table import ALL_HOSTS, ALL_STATES, DomainTableModel
from ipyvirt.models.host_groups import Group
from ipyvirt.names import DOMAIN_STATES
from ipyvirt.tables import Table
from ipyvirt.widgets.actions import ActionBar
from ipyvirt.widgets.base import LIVE, Coalescer, Repeater
from ipyvirt.widgets.domain_table import DomainTable, _cells
from ipyvirt.widgets.event_log import EventLog
from ipyvirt.widgets.lean import lean as _lean
from ipyvirt.widgets.view import View, css, esm

__all__ = ["FleetDashboard", "FleetHealth", "FleetTable"]


class FleetTable(DomainTable):
    """Every domain of every host of *fleet* in one table: with *group* (default) a header
    per host (its health, its domains and their states; click to fold its rows), else a
    sortable host column; a host filter, and actions each run on its row's host. Hosts that
    connect later join it; removed ones leave it. One comm."""

    # grouping by host and the hosts' health: a fleet's table's own, not every table's
    _esm = _lean(esm("domain_table", "health", "fleet_table"))
    _css = _lean(css("domain_table", "fleet_table"), css=True)

    #: the hosts, for the view's host filter and column (a one-host table has none)
    hosts: traitlets.List[str] = traitlets.List().tag(sync=True)

    def __init__(
        self,
        fleet: Fleet,
        *,
        page_size: int = 25,
        interval: float = 0.05,
        resync: float = 30.0,
        actions: bool = True,
        group: bool = True,
    ) -> None:
        self.model = DomainTableModel(page_size)  # first: a bad page_size opens no comm
        self.model.group = group
        View.__init__(self, states=[ALL_STATES, *DOMAIN_STATES])
        self._live(None)
        self.fleet = fleet
        self._interval, self._resync_every = interval, resync
        self._sources = {}
        self.actions = ActionBar(
            None,
            self._selected_domains,
            self._rt,
            enabled=actions,
            why_not=self._why_not,
            changed=self._show,
            route=self._route,
        )
        # Every host's reads change the model, each host at most 1/interval a second: 50
        # hosts would make 50 times as many redraws (and comm messages) as one. One redraw
        # for all of them instead, at most 1/interval a second; what the view asks for
        # still shows at once (_handle).
        self._redraw = Coalescer(self._rt.main_loop, interval, self._show)
        self.model.listen(lambda change: self._redraw.poke())
        # probes change a host every few seconds: what the table says of hosts, coalesced
        self._host_news = Coalescer(self._rt.main_loop, 0.5, self._follow_hosts)
        fleet.listen(self._host_changed)
        self._follow_hosts()

    def _host_changed(self, host: FleetHost) -> None:
        if self._shut:
            return
        if host.removed and host.name in self._sources:
            # a read under way holds a lease on the host's connection: the fleet's close of
            # it waits for the read, off the loop, so a frozen host holds no cell here
            self._sources.pop(host.name).close(forget=True, wait=False)
        self._host_news.poke()

    def _follow_hosts(self) -> None:
        """Rows for every connected host, none for removed ones; the view's host list."""
        hosts = self.fleet.hosts
        for name in [n for n in self._sources if n not in hosts]:
            self._sources.pop(name).close(forget=True, wait=False)
        for name, host in hosts.items():
            if host.connection is not None and name not in self._sources:
                source = self._add_source(host.connection, name)
                source.resync_all()  # off the loop: a slow host delays only its own rows
                source.start()
        if self.model.host_filter not in (ALL_HOSTS, *hosts):
            self.model.look(host_filter=ALL_HOSTS)
        self.hosts = sorted(hosts)
        self.model.set_group_hosts(hosts)
        self._show()  # a header's health changed too

    def _handle(self, do: str, content: dict[str, Any]) -> None:
        super()._handle(do, content)
        self._redraw.flush_now()

    @property
    def settled(self) -> bool:
        """No event is waiting to be shown, no action is running, no redraw is due."""
        return super().settled and not self._redraw.pending

    def _route(self, key: str) -> libvirt.virDomain:
        """On an action's worker: the domain *key* names, on its host's connection."""
        name, _, uuid = key.partition("/")
        host = self.fleet.hosts.get(name)
        if host is None or host.connection is None:
            raise libvirt.libvirtError(f"host {name} is not connected")
        conn = host.connection
        # under a lease: the host's close waits for the lookup; the domain it returns holds
        # its own reference to the connection, so the action's call needs none
        with conn.leases.hold():
            return conn.conn.lookupByUUIDString(uuid)

    def _why_not(self, action: str, targets: list[DomainRow] | None = None) -> str:
        targets = self.model.targets() if targets is None else targets
        readonly = sorted({r.host for r in targets if self._readonly(r.host)})
        if readonly:
            return f"read-only host {', '.join(readonly)}: %virt fleet add --rw to act"
        return self.model.why_not(action, targets)

    def _readonly(self, name: str) -> bool:
        host = self.fleet.hosts.get(name)
        return host is None or host.readonly

    def _look(self) -> dict[str, object]:
        model = self.model
        return {
            **super()._look(),
            "host_filter": model.host_filter,
            "group": model.group,
            "collapsed": sorted(model.collapsed) if model.group else [],
        }

    def _request(self, do: str, content: dict[str, Any]) -> None:
        if do == "collapse":  # a header clicked; no host: every header
            host = content.get("host")
            self.model.collapse(None if host is None else str(host), bool(content["on"]))
        else:
            super()._request(do, content)

    def _group(self, value: object) -> bool | None:
        return None if value is None else bool(value)

    def _page_rows(self, lines: list[Group | DomainRow]) -> list[list[object]]:
        """A host's header is ``[None, host, health, shown, total, [[state, n], ...],
        collapsed, continued]`` (domain_table.js's groupRow); a row as a one-host table's."""
        model = self.model
        grouping = model.grouping()
        first = model.page * model.page_size
        rows: list[list[object]] = []
        for i, line in enumerate(lines):
            if isinstance(line, DomainRow):  # under its host's header: no host cell
                rows.append(_cells(line, line.key in model.selected)[: -1 if grouping else None])
                continue
            host = self.fleet.hosts.get(line.host)
            counts = [[s, line.counts[s]] for s in DOMAIN_STATES if line.counts.get(s)]
            continued = i == 0 and grouping is not None and grouping.lines[first] is not line
            rows.append(
                [None, line.host, host.health if host is not None else "removed", line.shown,
                 line.total, counts, int(line.collapsed), int(continued)]
            )  # fmt: skip
        return rows

    def _host_filter(self, value: object) -> str | None:
        if value is None:
            return None
        if value != ALL_HOSTS and value not in self.fleet.hosts:
            raise ValueError(f"no host named {value!r}")
        return str(value)

    @property
    def _closed(self) -> str:
        stale = [n for n, s in sorted(self._sources.items()) if s.closed]
        return f"{', '.join(stale)} disconnected" if stale else ""

    def _summary_text(self) -> str:
        n = len(self.fleet.hosts)
        up = sum(not s.closed for s in self._sources.values())  # a closed one says so after
        where = f"{n} host{'s' * (n != 1)} ({up} connected)"
        return self.model.summary(where, self._closed)

    def _empty_text(self) -> str:
        if not self.fleet.hosts:
            return "No host in the fleet: %virt fleet add URI... adds some."
        return super()._empty_text()

    def __repr__(self) -> str:
        shown = self.model.shown()
        rows = tuple((r.host, *r.cells()) for r in shown)
        table = Table(("host", *COLUMNS), rows, f"FleetTable: {self._summary_text()}")
        more = len(self.model.view()) - len(shown)
        return repr(table) + (f"\n{self.model.page_label()} shown" if more else "")

    def _closing(self) -> None:
        if hasattr(self, "_host_news"):
            self._redraw.cancel()
            self._host_news.cancel()
            self.fleet.unlisten(self._host_changed)
        super()._closing()


class FleetHealth(View):
    """A row per host of *fleet*: ``%virt fleet list`` live, redrawn every *interval*
    seconds (traitlets sends nothing while nothing changed). One comm."""

    _esm = _lean(esm("fleet_health", "health"))
    _css = _lean(css("fleet_health"), css=True)

    columns: traitlets.List[str] = traitlets.List().tag(sync=True)
    rows: traitlets.List[list[object]] = traitlets.List().tag(sync=True)
    title = traitlets.Unicode().tag(sync=True)
    note = traitlets.Unicode().tag(sync=True)

    def __init__(self, fleet: Fleet, *, interval: float = 1.0) -> None:
        super().__init__(columns=list(HEALTH_COLUMNS))
        self._live(None)
        self.fleet = fleet
        self._repeater = Repeater(self._rt.main_loop, interval, self._show)
        self._repeater.start()
        self._show()

    def _show(self) -> None:
        if self._shut:
            return
        table = self.fleet.list()
        with self.hold_sync():
            self.rows = [[str(c) for c in row] for row in table.rows]
            self.title = table.title
            self.note = table.note

    def __repr__(self) -> str:
        return repr(self.fleet.list())

    def _closing(self) -> None:
        if hasattr(self, "_repeater"):
            self._repeater.cancel()


class FleetDashboard(widgets.Tab):  # type: ignore[misc]
    """Tabs: every host's domains (with actions), the hosts' health, the fleet's events."""

    # no Layout widget (a comm of its own) for the tabs either, as for every view
    layout = traitlets.Instance(widgets.Layout, allow_none=True, default_value=None).tag(
        sync=True, **widgets.widget_serialization
    )

    def __init__(self, fleet: Fleet, **table: Any) -> None:
        self.fleet = fleet
        self.table = FleetTable(fleet, **table)
        self.health = FleetHealth(fleet)
        self.event_log = EventLog(fleet, history=True)
        parts = [self.table, self.health, self.event_log]
        super().__init__(parts, titles=("domains", "hosts", "events"))
        self._shut = False
        LIVE.add(self)

    def __repr__(self) -> str:
        return "\n\n".join(repr(part) for part in (self.table, self.health, self.event_log))

    def close(self) -> None:
        if getattr(self, "_shut", True):
            return  # closed, or never made whole
        self._shut = True
        for part in (self.table, self.health, self.event_log):
            part.close()
        super().close()
