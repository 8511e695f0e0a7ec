"""The domain table's state: every domain's row, the filter, the sort, the page, the selection.

Plain data in and out: rows go in as :class:`~ipyvirt.domains.DomainRow` records (read by
whoever owns the libvirt connection), come out as dicts; a listener hears which rows changed
and whether what the view shows changed. Used on one thread (the main loop's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Final

from ipyvirt.domains import DomainRow
from ipyvirt.models.actions import ACTIONS
from ipyvirt.models.host_groups import Group, Grouping, group
from ipyvirt.names import DOMAIN_STATES

__all__ = ["ALL_HOSTS", "ALL_STATES", "SORT_KEYS", "Change", "DomainTableModel"]

#: the state filter that lets every state through
ALL_STATES: Final = "all states"

# Each ends with the host: in a fleet, domains alike in the sorted column (libvirt's test
# driver names one "test" on every host) come in host order, whichever host was read last.
SORT_KEYS: Final[dict[str, Callable[[DomainRow], tuple[Any, ...]]]] = {
    "name": lambda r: (r.name, r.host),
    "state": lambda r: (
        DOMAIN_STATES.index(r.state) if r.state in DOMAIN_STATES else 99,
        r.name,
        r.host,
    ),
    "id": lambda r: (r.id < 0, r.id, r.name, r.host),
    "vcpus": lambda r: (r.vcpus, r.name, r.host),
    "memory": lambda r: (r.memory_mib, r.name, r.host),
    "reason": lambda r: (r.reason, r.name, r.host),
    "autostart": lambda r: (r.autostart, r.name, r.host),
    "persistent": lambda r: (r.persistent, r.name, r.host),
    "host": lambda r: (r.host, r.name),
}

#: the host filter that lets every host through
ALL_HOSTS: Final = ""


@dataclass(frozen=True)
class Change:
    """What one update changed: rows by key (``None``: gone), and whether the view did."""

    rows: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    view: bool = False


class DomainTableModel:
    """Every domain's row by key (``DomainRow.key``: its UUID, in a fleet after its
    host), and how the table is looked at. A one-host table's rows have host "", and the
    host filter and sort are never used."""

    def __init__(self, page_size: int = 25) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}: pass 25 or so")
        self.page_size = page_size
        self.rows: dict[str, DomainRow] = {}
        # (host, name) -> key, kept with self.rows: an event names its domain (and its host's
        # connection), the rows are by key
        self._by_name: dict[tuple[str, str], str] = {}
        self.name_filter = ""
        self.host_filter = ALL_HOSTS
        self.state_filter = ALL_STATES
        self.sort = "name"
        self.descending = False
        self.page = 0
        self.selected: set[str] = set()
        #: a fleet's table: rows grouped under a header per host (models/host_groups.py)
        self.group = False
        #: the hosts whose rows are folded under their header (grouped only)
        self.collapsed: set[str] = set()
        #: the hosts that get a header with no row (a fleet's hosts: one that failed too)
        self.group_hosts: tuple[str, ...] = ()
        self._listeners: list[Callable[[Change], object]] = []
        self._batch: Change | None = None
        # The filtered, sorted view, kept between redraws: a redraw of 10,000 rows for one
        # domain's pause must not filter, sort and count them all again. It is valid while
        # _view_key (the rows' version and how they are looked at) is what it was made for;
        # a state change a view's order and filter do not depend on patches it in place.
        self._version = 0
        self._view: list[DomainRow] = []
        self._view_at: dict[str, int] = {}
        self._view_key: tuple[Any, ...] | None = None
        self._counts: dict[str, int] | None = None
        # the view's lines when grouped, kept as the view is (its counts patched with it)
        self._grouping: Grouping | None = None
        self._grouping_key: tuple[Any, ...] | None = None

    # -- listening ------------------------------------------------------------------------------

    def listen(self, fn: Callable[[Change], object]) -> None:
        """Call ``fn(change)`` after each update."""
        self._listeners.append(fn)

    def _changed(self, change: Change) -> None:
        if self._batch is not None:
            self._batch.rows.update(change.rows)
            if change.view and not self._batch.view:
                self._batch = Change(self._batch.rows, view=True)
            return
        for fn in list(self._listeners):
            fn(change)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Updates inside are told to the listeners as one change, at the end."""
        if self._batch is not None:
            yield
            return
        self._batch = Change()
        try:
            yield
        finally:
            change, self._batch = self._batch, None
            if change.rows or change.view:
                self._changed(change)

    # -- the rows -------------------------------------------------------------------------------

    def load(self, rows: Iterable[DomainRow], host: str | None = None) -> None:
        """Replace every row (a full re-read); with *host*, every row of that host only.

        A host's load compares and replaces that host's rows only (the other rows are
        looked at for their host, never compared or copied): a fleet's 50 hosts load one
        after another and are read again every interval, 50 loads of the whole table each."""
        new = {r.key: r for r in rows}
        if host is None:
            delta: dict[str, dict[str, Any] | None] = {k: None for k in self.rows if k not in new}
            delta.update({k: r.as_dict() for k, r in new.items() if self.rows.get(k) != r})
            self.rows = new
            self._by_name = {(r.host, r.name): k for k, r in new.items()}
        else:
            gone = [k for k, r in self.rows.items() if r.host == host and k not in new]
            delta = dict.fromkeys(gone)
            for k in gone:
                del self.rows[k]
            for k, r in new.items():
                if self.rows.get(k) != r:
                    self.rows[k] = r
                    delta[k] = r.as_dict()
            if delta:  # names come and go with rows: that host's names again
                names = {name: k for name, k in self._by_name.items() if name[0] != host}
                self._by_name = names | {(r.host, r.name): k for k, r in new.items()}
        if delta:  # else the same rows: the kept view stays valid
            self._rows_changed()
            self.selected &= self.rows.keys()
        self._changed(Change(delta, view=True))

    def put(self, name: str, row: DomainRow | None, host: str = "") -> None:
        """The domain called *name* (on *host*) now reads *row* (``None``: it is gone)."""
        delta: dict[str, dict[str, Any] | None] = {}
        old = self._by_name.pop((host, name), None)
        if old is not None and (row is None or old != row.key):
            del self.rows[old]
            delta[old] = None
            self._rows_changed()
        if row is not None:
            stale = self.rows.get(row.key)
            if stale is not None and stale.name != row.name:  # renamed
                self._by_name.pop((stale.host, stale.name), None)
            if stale != row:
                self.rows[row.key] = row
                delta[row.key] = row.as_dict()
                self._rows_changed()
            self._by_name[(row.host, row.name)] = row.key
        self.selected &= self.rows.keys()
        self._changed(Change(delta, view=True))

    def set_state(self, name: str, state: str, reason: str, host: str = "") -> None:
        """The domain called *name* (on *host*) is now in *state* for *reason*."""
        key = self.key_of(name, host)
        if key is None:
            return
        old = self.rows[key]
        row = replace(old, state=state, reason=reason)
        if row != old:
            self.rows[key] = row
            self._patch(old, row)
            self._changed(Change({key: row.as_dict()}, view=True))

    def _rows_changed(self) -> None:
        self._version += 1
        self._counts = None

    def _patch(self, old: DomainRow, row: DomainRow) -> None:
        """*old* became *row*, which differs in state and reason only: patch the kept view
        and counts where they do not depend on those, else let them be made again."""
        if self._counts is not None:
            self._counts[old.state] -= 1
            self._counts[row.state] = self._counts.get(row.state, 0) + 1
        at = self._view_at.get(row.key)
        if (
            self._view_key == self._looks()
            and self.sort not in ("state", "reason")
            and self.state_filter == ALL_STATES
            and at is not None
        ):
            self._view[at] = row
            if self._grouping is not None and self._grouping_key == self._group_key():
                counts = self._grouping.groups[row.host].counts
                counts[old.state] -= 1
                counts[row.state] = counts.get(row.state, 0) + 1
            return
        if self._view_key == self._looks() and at is None and not self.shows(row):
            return  # not in the view before, nor now
        self._version += 1

    def key_of(self, name: str, host: str = "") -> str | None:
        """The key of the domain called *name* on *host* (its UUID in a one-host table)."""
        return self._by_name.get((host, name))

    uuid_of = key_of

    def by_name(self) -> list[DomainRow]:
        """Every row, sorted by name."""
        return sorted(self.rows.values(), key=lambda r: r.name)

    # -- how it is looked at --------------------------------------------------------------------

    def look(
        self,
        *,
        name_filter: str | None = None,
        state_filter: str | None = None,
        sort: str | None = None,
        descending: bool | None = None,
        host_filter: str | None = None,
        group: bool | None = None,
    ) -> None:
        """Change the filter or the sort; an unknown state or sort key is a ValueError.
        *host_filter*: one host's rows only (``ALL_HOSTS``: every host's); *group*: rows
        under a header per host (:meth:`grouping`)."""
        if state_filter is not None and state_filter not in (ALL_STATES, *DOMAIN_STATES):
            raise ValueError(
                f"unknown state filter {state_filter!r}: use {ALL_STATES!r} or one of "
                + ", ".join(DOMAIN_STATES)
            )
        if sort is not None and sort not in SORT_KEYS:
            raise ValueError(f"unknown sort key {sort!r}: use one of {', '.join(SORT_KEYS)}")
        if name_filter is not None:
            self.name_filter = name_filter
        if state_filter is not None:
            self.state_filter = state_filter
        if sort is not None:
            self.sort = sort
        if descending is not None:
            self.descending = descending
        if host_filter is not None:
            self.host_filter = host_filter
        if group is not None:
            self.group = group
        self.page = min(self.page, self.pages - 1)
        self._changed(Change(view=True))

    def shows(self, row: DomainRow) -> bool:
        """Whether *row* passes the filter."""
        text = self.name_filter.strip().lower()
        return (
            text in row.name.lower()
            and self.state_filter in (ALL_STATES, row.state)
            and self.host_filter in (ALL_HOSTS, row.host)
        )

    def _looks(self) -> tuple[Any, ...]:
        return (
            self._version,
            self.name_filter,
            self.state_filter,
            self.host_filter,
            self.sort,
            self.descending,
            self.group,
        )

    def view(self) -> list[DomainRow]:
        """The rows that pass the filter, sorted; kept until the rows or the way they are
        looked at change (do not change the list)."""
        looks = self._looks()
        if looks != self._view_key:
            text = self.name_filter.strip().lower()
            state, host = self.state_filter, self.host_filter
            rows = [
                r
                for r in self.rows.values()
                if text in r.name.lower()
                and state in (ALL_STATES, r.state)
                and host in (ALL_HOSTS, r.host)
            ]
            rows.sort(key=SORT_KEYS[self.sort], reverse=self.descending)
            if self.group:  # stable: the user's order within each host
                rows.sort(key=lambda r: r.host, reverse=self._hosts_descending)
            self._view = rows
            self._view_at = {r.key: i for i, r in enumerate(rows)}
            self._view_key = looks
        return self._view

    # -- grouped by host ------------------------------------------------------------------

    @property
    def _hosts_descending(self) -> bool:
        return self.sort == "host" and self.descending

    def _group_key(self) -> tuple[Any, ...]:
        return (self._view_key, frozenset(self.collapsed), self.group_hosts)

    def grouping(self, view: list[DomainRow] | None = None) -> Grouping | None:
        """The view as lines under a header per host (``None`` unless grouped); kept with
        the view, a state change patched into its counts."""
        if not self.group:
            return None
        view = self.view() if view is None else view
        key = self._group_key()
        if self._grouping is None or key != self._grouping_key:
            totals: dict[str, int] = {}
            for r in self.rows.values():
                totals[r.host] = totals.get(r.host, 0) + 1
            unfiltered = not self.name_filter.strip() and self.state_filter == ALL_STATES
            hosts = [
                h
                for h in (self.group_hosts if unfiltered else ())
                if self.host_filter in (ALL_HOSTS, h)
            ]
            self._grouping = group(
                view, totals, hosts, self.collapsed, descending=self._hosts_descending
            )
            self._grouping_key = key
        return self._grouping

    def collapse(self, host: str | None, on: bool = True) -> None:
        """Fold *host*'s rows under its header (unfold: *on* false); *host* ``None``: every
        host's. What is folded is neither shown nor acted on."""
        hosts = {r.host for r in self.rows.values()} | set(self.group_hosts)
        named = hosts if host is None else {host}
        self.collapsed = self.collapsed | named if on else self.collapsed - named
        self.page = min(self.page, self.pages - 1)
        self._changed(Change(view=True))

    def set_group_hosts(self, hosts: Iterable[str]) -> None:
        """The hosts that get a header even with no row (a fleet's, failed ones too)."""
        hosts = tuple(sorted(hosts))
        if hosts != self.group_hosts:
            self.group_hosts = hosts
            self.collapsed &= set(hosts) | {r.host for r in self.rows.values()}
            self._changed(Change(view=True))

    def open_rows(self, view: list[DomainRow] | None = None) -> int:
        """How many rows the filter shows, a collapsed host's not counted."""
        view = self.view() if view is None else view
        grouping = self.grouping(view)
        return len(view) if grouping is None else grouping.open

    # -- pages ----------------------------------------------------------------------------

    def _lines(self, view: list[DomainRow]) -> int:
        grouping = self.grouping(view)
        return len(view) if grouping is None else len(grouping.lines)

    @property
    def pages(self) -> int:
        return self.pages_of(self.view())

    def pages_of(self, view: list[DomainRow]) -> int:
        """How many pages *view* (:meth:`view`) takes, a header a line when grouped."""
        return max(1, -(-self._lines(view) // self.page_size))

    def turn(self, step: int) -> None:
        self.page = max(0, min(self.page + step, self.pages - 1))
        self._changed(Change(view=True))

    def page_lines(self, view: list[DomainRow] | None = None) -> list[Group | DomainRow]:
        """The current page (clamped to the last one): rows, and when grouped the headers
        among them (:meth:`~ipyvirt.models.host_groups.Grouping.page`)."""
        view = self.view() if view is None else view
        self.page = min(self.page, self.pages_of(view) - 1)
        grouping = self.grouping(view)
        if grouping is None:
            first = self.page * self.page_size
            return list(view[first : first + self.page_size])
        lines = grouping.page(self.page, self.page_size)
        return [line if isinstance(line, Group) else view[line] for line in lines]

    def shown(self, view: list[DomainRow] | None = None) -> list[DomainRow]:
        """The rows on the current page (the page clamped to the last one). *view*:
        :meth:`view`, when the caller has it already (sorting 10,000 rows once a redraw)."""
        return [r for r in self.page_lines(view) if isinstance(r, DomainRow)]

    def page_label(self, view: list[DomainRow] | None = None) -> str:
        """ "1-50 of 10,000"; "0 of 0" when the page is empty. Grouped: the lines, headers
        counted ("hosts 2-3 of 5" when the page has headers only)."""
        view = self.view() if view is None else view
        lines = self.page_lines(view)
        first = self.page * self.page_size
        grouping = self.grouping(view)
        if grouping is None:
            if not lines:
                return f"0 of {len(view):,}"
            return f"{first + 1:,}-{first + len(lines):,} of {len(view):,}"
        return grouping.label(self.page, self.page_size, len(view))

    def empty_text(self) -> str:
        """What to show instead of rows when none shows: "" when some do (or, grouped, a
        host's header does)."""
        grouping = self.grouping()
        if grouping is not None and grouping.lines:
            return ""
        if not self.rows:
            return "No domains on this connection."
        if self.view():
            return ""
        what = [f"name containing {self.name_filter.strip()!r}"] if self.name_filter.strip() else []
        what += [f"state {self.state_filter}"] if self.state_filter != ALL_STATES else []
        what += [f"host {self.host_filter}"] if self.host_filter != ALL_HOSTS else []
        return f"No domain matches {' and '.join(what)}."

    def summary(self, where: str, closed: str = "") -> str:
        """ "4 domains on test:///default (1 running, 3 shutoff)", and why it is stale."""
        if self._counts is None:
            self._counts = {}
            for r in self.rows.values():
                self._counts[r.state] = self._counts.get(r.state, 0) + 1
        counts = {state: n for state, n in self._counts.items() if n}
        states = ", ".join(f"{counts[s]:,} {s}" for s in DOMAIN_STATES if s in counts)
        n = len(self.rows)
        text = f"{n:,} domain{'s' * (n != 1)} on {where}"
        text += f" ({states})" if states else ""
        return text + (f" - {closed}" if closed else "")

    # -- the selection --------------------------------------------------------------------------

    def select(self, key: str, on: bool = True) -> None:
        if on and key in self.rows:
            self.selected.add(key)
        else:
            self.selected.discard(key)
        self._changed(Change(view=True))

    def select_all(self, on: bool = True) -> None:
        """Select (or unselect) every row the filter shows, on every page (a collapsed
        host's rows are not shown)."""
        shown = {r.key for r in self._open(self.view())}
        self.selected = self.selected | shown if on else self.selected - shown
        self._changed(Change(view=True))

    def targets(self, view: list[DomainRow] | None = None) -> list[DomainRow]:
        """The selected rows the filter shows, in view order: what an action acts on.
        *view*: :meth:`view`, when the caller has it already."""
        if not self.selected:
            return []
        view = self.view() if view is None else view
        at = self._view_at if view is self._view else {r.key: i for i, r in enumerate(view)}
        rows = [view[i] for i in sorted(at[k] for k in self.selected if k in at)]
        return self._open(rows)

    def _open(self, rows: list[DomainRow]) -> list[DomainRow]:
        """*rows* but those a collapsed host folds."""
        if not self.group or not self.collapsed:
            return rows
        return [r for r in rows if r.host not in self.collapsed]

    def applicable(self, action: str) -> bool:
        """*action* applies to every selected domain the filter shows (and there is one)."""
        return not self.why_not(action)

    def why_not(self, action: str, targets: list[DomainRow] | None = None) -> str:
        """Why *action* does not apply to the selection, one line; "" when it does.
        *targets*: :meth:`targets`, when the caller has it already (a view of 10,000 rows
        is sorted once per redraw, not once per action)."""
        targets = self.targets() if targets is None else targets
        if not targets:
            return "select domains first"
        states = ACTIONS[action].states
        wrong = [r for r in targets if r.state not in states]
        if not wrong:
            return ""
        them = ", ".join(f"{r.name} is {r.state}" for r in wrong[:3])
        more = f" (and {len(wrong) - 3} more)" if len(wrong) > 3 else ""
        return f"{action} applies to {' or '.join(sorted(states))} domains: {them}{more}"

    # -- plain data -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain data (what a front end needs once; deltas follow)."""
        return {
            "rows": [r.as_dict() for r in self.by_name()],
            "view": [r.key for r in self.view()],
            "page": self.page,
            "pages": self.pages,
            "page_size": self.page_size,
            "name_filter": self.name_filter,
            "state_filter": self.state_filter,
            "host_filter": self.host_filter,
            "sort": self.sort,
            "descending": self.descending,
            "selected": sorted(self.selected),
            "applicable": [a for a in ACTIONS if self.applicable(a)],
            "empty": self.empty_text(),
        }
