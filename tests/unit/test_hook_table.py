"""register() hands libvirt six hooks, each to the right method (libvirtaio's own test mock
once wired remove-timeout into the remove-handle slot and nothing noticed)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from typing import Any

import libvirt
import pytest

from ipyvirt.eventimpl import HOOK_TABLE, EventImpl, libvirt_hooks


class Recorder(EventImpl):
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fail = fail

    def _record(self, name: str, *args: Any) -> int:
        self.calls.append((name, args))
        if self.fail:
            raise RuntimeError(f"{name} failed on purpose")
        return 7

    def add_handle(self, fd: int, events: int, cb: Any, opaque: Any, ff: Any) -> int:
        return self._record("add_handle", fd, events, cb, opaque, ff)

    def update_handle(self, watch: int, events: int) -> None:
        self._record("update_handle", watch, events)

    def remove_handle(self, watch: int) -> int:
        return self._record("remove_handle", watch)

    def add_timeout(self, interval_ms: int, cb: Any, opaque: Any, ff: Any) -> int:
        return self._record("add_timeout", interval_ms, cb, opaque, ff)

    def update_timeout(self, timer: int, interval_ms: int) -> None:
        self._record("update_timeout", timer, interval_ms)

    def remove_timeout(self, timer: int) -> int:
        return self._record("remove_timeout", timer)


def test_table_follows_virEventRegisterImpl_argument_order() -> None:
    import inspect

    params = list(inspect.signature(libvirt.virEventRegisterImpl).parameters)
    assert [slot for slot, *_ in HOOK_TABLE] == params


def test_each_slot_calls_its_method() -> None:
    rec = Recorder()
    add_h, upd_h, rem_h, add_t, upd_t, rem_t = libvirt_hooks(rec)
    assert add_h(3, 1, "cb", "opaque") == 7
    upd_h(11, 2)
    assert rem_h(12) == 7
    assert add_t(50, "tcb", "topaque") == 7
    upd_t(13, -1)
    assert rem_t(14) == 7
    names = [name for name, _ in rec.calls]
    assert names == [
        "add_handle",
        "update_handle",
        "remove_handle",
        "add_timeout",
        "update_timeout",
        "remove_timeout",
    ]
    # libvirt's free function rides in opaque; the adapter supplies the one that runs it
    ff = rec.calls[0][1][4]
    assert rec.calls[0][1][:4] == (3, 1, "cb", "opaque")
    assert rec.calls[3][1][3] is ff and callable(ff)
    assert [args for _, args in rec.calls[1:3]] == [(11, 2), (12,)]
    assert [args for _, args in rec.calls[4:]] == [(13, -1), (14,)]


def test_a_failing_hook_returns_libvirts_error_value(caplog: pytest.LogCaptureFixture) -> None:
    add_h, upd_h, rem_h, add_t, upd_t, rem_t = libvirt_hooks(Recorder(fail=True))
    with caplog.at_level(logging.ERROR, "ipyvirt"):
        results = [add_h(3, 1, None, None), upd_h(1, 1), rem_h(1)]
        results += [add_t(1, None, None), upd_t(1, 1), rem_t(1)]
    assert results == [-1, None, -1, -1, None, -1]
    assert len(caplog.records) == 6
    assert all(r.exc_info for r in caplog.records)


def test_slots_through_libvirts_c_api() -> None:
    """In a fresh process: register a recorder, call libvirt's six public functions."""
    code = textwrap.dedent(
        f"""
        import json, sys, libvirt
        sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parent)!r})
        from test_hook_table import Recorder
        rec = Recorder().register()
        libvirt.virEventAddHandle(0, 1, lambda *a: None, None)
        libvirt.virEventUpdateHandle(21, 2)
        libvirt.virEventRemoveHandle(22)
        libvirt.virEventAddTimeout(30, lambda *a: None, None)
        libvirt.virEventUpdateTimeout(23, 40)
        libvirt.virEventRemoveTimeout(24)
        print(json.dumps([[n, [a for a in args if isinstance(a, int)]] for n, args in rec.calls]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [
        # register() asks libvirt for a disabled timer, to check that libvirt calls it
        ["add_timeout", [-1]],
        ["remove_timeout", [7]],
        ["add_handle", [0, 1]],
        ["update_handle", [21, 2]],
        ["remove_handle", [22]],
        ["add_timeout", [30]],
        ["update_timeout", [23, 40]],
        ["remove_timeout", [24]],
    ]


@pytest.mark.parametrize(
    ("first", "says"),
    [
        ("libvirt.virEventRegisterDefaultImpl()", "libvirt's default event loop"),
        (
            "import libvirtaio; libvirtaio.virEventRegisterAsyncIOImpl(loop)",
            "Event loop is already",
        ),
    ],
    ids=["default-impl", "libvirtaio"],
)
def test_registering_after_another_impl_says_so(first: str, says: str) -> None:
    code = textwrap.dedent(
        f"""
        import asyncio, libvirt, ipyvirt
        loop = asyncio.new_event_loop()
        {first}
        try:
            ipyvirt.AsyncioEventImpl(loop).register()
        except ipyvirt.EventLoopAlreadyRegistered as err:
            print(err)
        print(ipyvirt.registered_impl())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    message, registered = out.stdout.strip().splitlines()
    assert says in message and "restart" in message
    assert registered == "None"
