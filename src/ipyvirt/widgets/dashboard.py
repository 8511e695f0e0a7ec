"""The domain table, its actions and usage, the event log and the loop monitor, together."""

from __future__ import annotations

import ipywidgets as widgets
import libvirt

from ipyvirt.connection import Connection
from ipyvirt.widgets.base import LIVE, as_connection
from ipyvirt.widgets.domain_table import DomainTable
from ipyvirt.widgets.event_log import EventLog
from ipyvirt.widgets.loop_monitor import LoopMonitor
from ipyvirt.widgets.usage import Usage

__all__ = ["Dashboard"]


class Dashboard(widgets.Tab):  # type: ignore[misc]
    """Tabs: domains (with actions), usage, events, event loop."""

    def __init__(self, conn: Connection | libvirt.virConnect) -> None:
        self._conn, self._owns_conn = as_connection(conn)
        try:
            self.table = DomainTable(self._conn)
            self.usage = Usage(self._conn)
            self.event_log = EventLog(self._conn)
            self.monitor = LoopMonitor()
        except BaseException:
            if self._owns_conn:  # closes the parts already made, too
                self._conn.close()
            raise
        super().__init__([self.table, self.usage, self.event_log, self.monitor])
        for i, title in enumerate(("domains", "usage", "events", "event loop")):
            self.set_title(i, title)
        self._shut = False
        LIVE.add(self)
        self._conn.depend(self)

    def _repr_mimebundle_(self, **kwargs: object) -> object:
        self.usage._repeater.start()
        return super()._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return "\n\n".join(repr(part) for part in (self.table, self.event_log, self.monitor))

    def close(self) -> None:
        if self._shut:
            return  # closing its connection closes it too
        self._shut = True
        for part in (self.table, self.usage, self.event_log, self.monitor):
            part.close()
        if self._owns_conn:
            self._conn.close()
        super().close()
