"""ipyvirt: explore and watch libvirt hypervisors live from a Jupyter notebook.

Importing this package imports libvirt and nothing of IPython or ipywidgets; the notebook
parts load with ``%load_ext ipyvirt``.
"""

from __future__ import annotations

from ipyvirt.asyncio_impl import AsyncioEventImpl
from ipyvirt.errors import EventLoopAlreadyRegistered, IpyvirtError, LoopBusy, LoopNotRunning
from ipyvirt.eventimpl import (
    HANDLE_ERROR,
    HANDLE_HANGUP,
    HANDLE_READABLE,
    HANDLE_WRITABLE,
    EventImpl,
    registered_impl,
)
from ipyvirt.statistics import LoopStatistics, TimerInfo, WatchInfo

__version__ = "0.1.0"

__all__ = [
    "HANDLE_ERROR",
    "HANDLE_HANGUP",
    "HANDLE_READABLE",
    "HANDLE_WRITABLE",
    "AsyncioEventImpl",
    "EventImpl",
    "EventLoopAlreadyRegistered",
    "IpyvirtError",
    "LoopBusy",
    "LoopNotRunning",
    "LoopStatistics",
    "TimerInfo",
    "WatchInfo",
    "__version__",
    "registered_impl",
]
