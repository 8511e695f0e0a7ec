"""The public API is exactly ``ipyvirt.__all__``, ``ipyvirt.widgets.__all__``,
``ipyvirt.explore.__all__`` and ``ipyvirt.testing.__all__``, and importing ``ipyvirt`` stays
light."""

from __future__ import annotations

import subprocess
import sys

import ipyvirt
import ipyvirt.explore
import ipyvirt.testing
import ipyvirt.widgets


def test_public_names() -> None:
    assert sorted(ipyvirt.__all__) == sorted(
        [
            "HANDLE_ERROR",
            "HANDLE_HANGUP",
            "HANDLE_READABLE",
            "HANDLE_WRITABLE",
            "AsyncioEventImpl",
            "Connection",
            "ConnectFailed",
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
    )
    for name in ipyvirt.__all__:
        assert hasattr(ipyvirt, name), name


def test_widget_names() -> None:
    assert sorted(ipyvirt.widgets.__all__) == sorted(
        [
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
    )
    for name in ipyvirt.widgets.__all__:
        assert hasattr(ipyvirt.widgets, name), name


def test_explore_names() -> None:
    assert sorted(ipyvirt.explore.__all__) == sorted(
        [
            "NA",
            "Console",
            "Device",
            "Disk",
            "Domain",
            "DomainDetails",
            "Graphics",
            "Host",
            "Lease",
            "Listing",
            "Network",
            "Nic",
            "NumaCell",
            "Pool",
            "Record",
            "Secret",
            "Snapshot",
            "Volume",
            "create_volume",
            "delete_volume",
            "devices",
            "domain_details",
            "host",
            "host_free_memory",
            "network",
            "networks",
            "pool",
            "pools",
            "secrets",
        ]
    )
    for name in ipyvirt.explore.__all__:
        assert hasattr(ipyvirt.explore, name), name
    assert ipyvirt.Domain is ipyvirt.explore.Domain


def test_testing_names() -> None:
    assert sorted(ipyvirt.testing.__all__) == sorted(
        [
            "CLAUSES",
            "Clause",
            "ClauseFailed",
            "ClauseResult",
            "clauses_for",
            "run_clause",
            "run_conformance",
        ]
    )
    for name in ipyvirt.testing.__all__:
        assert hasattr(ipyvirt.testing, name), name


def test_import_does_not_pull_in_ipython_widgets_or_pandas() -> None:
    code = (
        "import sys, ipyvirt; "
        "print(sorted(m for m in ('IPython', 'ipywidgets', 'pandas', 'matplotlib') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_errors_share_one_base() -> None:
    errors = (ipyvirt.EventLoopAlreadyRegistered, ipyvirt.LoopBusy, ipyvirt.LoopNotRunning)
    for err in (*errors, ipyvirt.ConnectFailed, ipyvirt.NoSuchDomain, ipyvirt.RecordingError):
        assert issubclass(err, ipyvirt.IpyvirtError)
