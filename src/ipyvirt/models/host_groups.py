"""A fleet table's rows grouped by host: a header line per host, then its rows, unless the
host is collapsed.

The pages are cut from these lines, headers included: 50 collapsed hosts are 50 lines, two
pages of 25, not one page of 50 headers the browser must get whole. A page that starts
inside a host's rows gets that host's header again on top ("continued"; one line more than
*page_size*), so every row on screen sits under its host's name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ipyvirt.domains import DomainRow

__all__ = ["Group", "Grouping", "group"]


@dataclass
class Group:
    """One host's header: its rows the filter shows (by state), and all its rows."""

    host: str
    #: state -> how many of the host's rows the filter shows are in it
    counts: dict[str, int] = field(default_factory=dict)
    #: the host's rows, whatever the filter
    total: int = 0
    collapsed: bool = False

    @property
    def shown(self) -> int:
        return sum(self.counts.values())


@dataclass
class Grouping:
    """The view's rows as lines: a :class:`Group` (a header) or an index into the view."""

    groups: dict[str, Group]
    lines: list[Group | int]
    #: the rows of the groups not collapsed: what the pages show, and actions act on
    open: int

    def page(self, page: int, page_size: int) -> list[Group | int]:
        """The lines of *page*, its first row's header on top when the page starts inside
        a group (the only way a page holds ``page_size + 1`` lines)."""
        first = page * page_size
        lines = self.lines[first : first + page_size]
        if lines and isinstance(lines[0], int):
            for line in reversed(self.lines[:first]):
                if isinstance(line, Group):
                    return [line, *lines]
        return lines

    def label(self, page: int, page_size: int, rows: int) -> str:
        """*page*'s label: "26-49 of 120 on 5 hosts", "hosts 2-3 of 5" for headers alone,
        and how many of the *rows* the filter shows are folded."""
        lines = self.page(page, page_size)
        if not lines:
            return "0 of 0"
        first = page * page_size
        before = sum(1 for line in self.lines[:first] if isinstance(line, int))
        shown = sum(1 for line in lines if isinstance(line, int))
        n = len(self.groups)
        folded = f", {rows - self.open:,} folded" if rows > self.open else ""
        if not shown:
            order = list(self.groups)
            hosts = [order.index(line.host) + 1 for line in lines if isinstance(line, Group)]
            return f"hosts {hosts[0]:,}-{hosts[-1]:,} of {n:,}{folded}"
        where = f"on {n:,} host{'s' * (n != 1)}"
        return f"{before + 1:,}-{before + shown:,} of {self.open:,} {where}{folded}"


def group(
    view: list[DomainRow],
    totals: dict[str, int],
    hosts: Iterable[str],
    collapsed: set[str],
    *,
    descending: bool = False,
) -> Grouping:
    """*view* (sorted by host, then as the user sorts) grouped by host. *hosts*: the hosts
    that get a header even with no row in the view (a fleet's hosts, when no filter hides
    them); *totals*: each host's rows, whatever the filter."""
    groups: dict[str, Group] = {}
    for name in sorted({*hosts, *(r.host for r in view)}, reverse=descending):
        groups[name] = Group(name, total=totals.get(name, 0), collapsed=name in collapsed)
    indexes: dict[str, list[int]] = {name: [] for name in groups}
    for i, row in enumerate(view):
        counts = groups[row.host].counts
        counts[row.state] = counts.get(row.state, 0) + 1
        indexes[row.host].append(i)
    lines: list[Group | int] = []
    open_rows = 0
    for name, g in groups.items():
        lines.append(g)
        if not g.collapsed:
            lines.extend(indexes[name])
            open_rows += len(indexes[name])
    return Grouping(groups, lines, open_rows)
