"""ipyvirt: explore and watch libvirt hypervisors live from a Jupyter notebook.

Importing this package imports libvirt and nothing of IPython or ipywidgets; the notebook
parts load with ``%load_ext ipyvirt``.
"""

from __future__ import annotations

from ipyvirt.asyncio_impl import AsyncioEventImpl
from ipyvirt.connection import ConnectFailed, Connection, NoSuchDomain
from ipyvirt.errors import (
    EventLoopAlreadyRegistered,
    IpyvirtError,
    LoopBusy,
    LoopNotRunning,
    NoSuchNetwork,
    NoSuchPool,
)
from ipyvirt.eventimpl import (
    HANDLE_ERROR,
    HANDLE_HANGUP,
    HANDLE_READABLE,
    HANDLE_WRITABLE,
    EventImpl,
    registered_impl,
)
from ipyvirt.explore import Domain
from ipyvirt.fleet import Fleet
from ipyvirt.hub import Event, Subscription
from ipyvirt.recording import Recorder, record
from ipyvirt.records import Recording, RecordingError, read_recording, to_pandas, to_records
from ipyvirt.replay import Replay, replay
from ipyvirt.runtime import Runtime, start, stop
from ipyvirt.statistics import LoopStatistics, TimerInfo, WatchInfo
from ipyvirt.streams import events, wait_for

__version__ = "0.1.0"


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext ipyvirt``: run libvirt's events on the kernel's loop, add ``%virt``."""
    from ipyvirt.extension import load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext ipyvirt``: undo all that loading did."""
    from ipyvirt.extension import unload

    unload(ipython)


__all__ = [
    "HANDLE_ERROR",
    "HANDLE_HANGUP",
    "HANDLE_READABLE",
    "HANDLE_WRITABLE",
    "AsyncioEventImpl",
    "ConnectFailed",
    "Connection",
    "Domain",
    "Event",
    "EventImpl",
    "EventLoopAlreadyRegistered",
    "Fleet",
    "IpyvirtError",
    "LoopBusy",
    "LoopNotRunning",
    "LoopStatistics",
    "NoSuchDomain",
    "NoSuchNetwork",
    "NoSuchPool",
    "Recorder",
    "Recording",
    "RecordingError",
    "Replay",
    "Runtime",
    "Subscription",
    "TimerInfo",
    "WatchInfo",
    "__version__",
    "events",
    "read_recording",
    "record",
    "registered_impl",
    "replay",
    "start",
    "stop",
    "to_pandas",
    "to_records",
    "wait_for",
]
