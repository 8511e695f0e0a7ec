"""ipyvirt's live widgets: import this module only where ipywidgets is installed."""

from __future__ import annotations

from ipyvirt.widgets.actions import ActionBar
from ipyvirt.widgets.console import Console
from ipyvirt.widgets.dashboard import Dashboard
from ipyvirt.widgets.domain_table import DomainTable
from ipyvirt.widgets.domain_view import DomainView
from ipyvirt.widgets.event_log import EventLog
from ipyvirt.widgets.explorer import Explorer
from ipyvirt.widgets.fleet import FleetDashboard, FleetHealth, FleetTable
from ipyvirt.widgets.loop_monitor import LoopMonitor
from ipyvirt.widgets.screen import Screen
from ipyvirt.widgets.timeline import Timeline
from ipyvirt.widgets.usage import Usage

__all__ = [
    "ActionBar",
    "Console",
    "Dashboard",
    "DomainTable",
    "DomainView",
    "EventLog",
    "Explorer",
    "FleetDashboard",
    "FleetHealth",
    "FleetTable",
    "LoopMonitor",
    "Screen",
    "Timeline",
    "Usage",
]


def close_all() -> None:
    """Close every ipyvirt widget still alive (``%unload_ext ipyvirt`` does)."""
    from ipyvirt.widgets.base import LIVE

    for widget in list(LIVE):
        widget.close()
