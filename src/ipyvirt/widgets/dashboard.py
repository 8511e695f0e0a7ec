"""The domain table and its actions, usage, the timeline, the event log and the loop monitor,
together: one comm per part, one for the tabs, one for the domains tab (the table, and the
domain opened from it)."""

from __future__ import annotations

import ipywidgets as widgets
import libvirt
import traitlets

from ipyvirt.connection import Connection
from ipyvirt.widgets.base import LIVE, as_connection
from ipyvirt.widgets.domain_table import DomainTable
from ipyvirt.widgets.domain_view import DomainView
from ipyvirt.widgets.event_log import EventLog
from ipyvirt.widgets.loop_monitor import LoopMonitor
from ipyvirt.widgets.timeline import Timeline
from ipyvirt.widgets.usage import Usage

__all__ = ["Dashboard"]


class _Slot(widgets.VBox):  # type: ignore[misc]
    """The domains tab: the table, and under it the domain opened from it."""

    layout = traitlets.Instance(widgets.Layout, allow_none=True, default_value=None).tag(
        sync=True, **widgets.widget_serialization
    )


class Dashboard(widgets.Tab):  # type: ignore[misc]
    """Tabs: domains (with actions), usage, timeline, events, event loop. A click on a
    domain's name in the table opens it in depth under the table (:attr:`domain_view`, a
    :class:`~ipyvirt.widgets.DomainView`; the one opened before is closed).

    *thumbnails* as :class:`~ipyvirt.widgets.DomainTable`'s, off by default: a screenshot
    is a write to libvirt (a read-only connection is refused one), and on a real host each
    is a hypervisor's screen dump, a PNG of up to a few hundred KiB, streamed over the
    connection the table's events are read through, for every running guest of the page.
    """

    # no Layout widget (a comm of its own) for the tabs either, as for every view
    layout = traitlets.Instance(widgets.Layout, allow_none=True, default_value=None).tag(
        sync=True, **widgets.widget_serialization
    )

    def __init__(
        self, conn: Connection | libvirt.virConnect, *, thumbnails: bool | float = False
    ) -> None:
        self._conn, self._owns_conn = as_connection(conn)
        try:
            self.table = DomainTable(self._conn, thumbnails=thumbnails)
            self.usage = Usage(self._conn)
            self.timeline = Timeline(self._conn)
            self.event_log = EventLog(self._conn, history=True)
            self.monitor = LoopMonitor()
        except BaseException:
            if self._owns_conn:  # closes the parts already made, too
                self._conn.close()
            raise
        #: the domain opened from the table, under it (None until one is)
        self.domain_view: DomainView | None = None
        self._domains = _Slot([self.table])
        self.table.on_open(self.open_domain)
        parts = [self._domains, self.usage, self.timeline, self.event_log, self.monitor]
        super().__init__(parts, titles=("domains", "usage", "timeline", "events", "event loop"))
        self._shut = False
        LIVE.add(self)
        self._conn.depend(self)

    def open_domain(self, name: str) -> DomainView:
        """Show domain *name* in depth under the table, in place of the one shown before
        (closed: its comm goes)."""
        old, self.domain_view = self.domain_view, None
        if old is not None:
            old.close()
        view = DomainView(self._conn, name)
        self.domain_view = view
        self._domains.children = [self.table, view]
        return view

    def _repr_mimebundle_(self, **kwargs: object) -> object:
        self.usage._repeater.start()
        return super()._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return "\n\n".join(repr(part) for part in (self.table, self.event_log, self.monitor))

    def close(self) -> None:
        if self._shut:
            return  # closing its connection closes it too
        self._shut = True
        for part in (self.table, self.usage, self.timeline, self.event_log, self.monitor):
            part.close()
        if self.domain_view is not None:
            self.domain_view.close()
        self._domains.close()
        if self._owns_conn:
            self._conn.close()
        super().close()
