"""Small tables that render as text (terminals, nbval) and as HTML (notebooks)."""

from __future__ import annotations

import html
from dataclasses import dataclass

import libvirt

from ipyvirt.domains import COLUMNS, query_all
from ipyvirt.models.loop_rates import interval_label, watch_label
from ipyvirt.statistics import LoopStatistics

__all__ = ["Table", "Tables", "domain_table", "loop_table"]


@dataclass(frozen=True)
class Table:
    """Rows under named columns: aligned text as its ``repr``, an HTML table in a notebook."""

    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]
    title: str = ""
    #: a line under the table ("3 more not shown" ...)
    note: str = ""
    #: what shows in place of rows when there are none
    empty: str = "(none)"

    def __repr__(self) -> str:
        cells = [self.columns, *((str(c) for c in row) for row in self.rows)]
        grid = [tuple(str(c) for c in row) for row in cells]
        widths = [max(len(row[i]) for row in grid) for i in range(len(self.columns))]
        lines = [self.title] if self.title else []
        for n, row in enumerate(grid):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        if not self.rows:
            lines.append(self.empty)
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
            for row in self.rows
        )
        if not self.rows:
            body = f'<tr><td colspan="{len(self.columns)}">{html.escape(self.empty)}</td></tr>'
        title = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        note = f"<div>{html.escape(self.note)}</div>" if self.note else ""
        return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


class Tables(tuple[Table, ...]):
    """Several tables shown one after the other."""

    def __repr__(self) -> str:
        return "\n\n".join(repr(t) for t in self)

    def _repr_html_(self) -> str:
        return "".join(t._repr_html_() for t in self)


def domain_table(conn: libvirt.virConnect, title: str = "") -> Table:
    """Every domain, sorted by name: what ``%virt list`` shows."""
    rows = sorted(query_all(conn).values(), key=lambda r: r.name)
    return Table(COLUMNS, tuple(r.cells() for r in rows), title)


def loop_table(stats: LoopStatistics) -> Tables:
    """The live watches and timers, and the counters, as tables."""
    watches = Table(
        ("watch", "fd", "events", "dispatches", "loop", "thread"),
        tuple((w.id, w.fd, watch_label(w), w.dispatches, w.loop, w.thread) for w in stats.watches),
        "fd watches",
    )
    timers = Table(
        ("timer", "interval", "fires", "loop", "thread"),
        tuple(
            (t.id, interval_label(t.interval_ms), t.fires, t.loop, t.thread) for t in stats.timers
        ),
        "timers",
    )
    totals = Table(
        (
            "handles added",
            "handles removed",
            "timeouts added",
            "timeouts removed",
            "frees run",
            "pending frees",
            "callback errors",
        ),
        (
            (
                stats.handles_added,
                stats.handles_removed,
                stats.timeouts_added,
                stats.timeouts_removed,
                stats.frees_run,
                stats.pending_frees,
                stats.callback_errors,
            ),
        ),
        "totals",
    )
    return Tables((watches, timers, totals))
