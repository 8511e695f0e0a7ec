"""A 45 s blocking cell against a real QEMU hypervisor keeps its connection."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest

from ipyvirt.testing.libvirtd import Libvirtd, minimal_domain_xml

from kernel import Kernel

pytestmark = [pytest.mark.qemu, pytest.mark.kernel]


def test_a_45_second_cell_keeps_a_qemu_connection(
    qemu_daemon: Libvirtd, guest_name: Callable[[], str]
) -> None:
    name = guest_name()
    kernel = Kernel()
    try:
        kernel.execute(
            "%load_ext ipyvirt\n"
            "import threading, time, libvirt, ipyvirt\n"
            f"c = ipyvirt.Connection(uri={qemu_daemon.qemu_uri!r}, readonly=False)\n"
            f"dom = c.conn.createXML({minimal_domain_xml(name)!r})\n"
            "seen = []\n"
            "c.subscribe(lambda e: seen.append((e.name, threading.current_thread().name)),\n"
            f"    families=['domain'], kinds=['lifecycle'], subject={name!r})"
        ).ok()
        other = subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(
                    f"""
                    import libvirt, time
                    dom = libvirt.open({qemu_daemon.qemu_uri!r}).lookupByName({name!r})
                    time.sleep(3)
                    for _ in range(3):
                        dom.suspend(); time.sleep(1)
                        dom.resume(); time.sleep(1)
                    """
                ),
            ]
        )
        kernel.execute(  # the guest's own start events first (resumed, started)
            "import asyncio\nwhile len(seen) < 2:\n    await asyncio.sleep(0.05)"
        ).ok()
        assert kernel.value("[n for n, _ in seen]") == ["resumed", "started"]
        kernel.execute("seen.clear()\ntime.sleep(45)", timeout=120).ok()
        assert other.wait(30) == 0
        assert kernel.value("c.conn.getVersion() > 0 and c.closed_reason is None")
        assert kernel.value("seen") == [("suspended", "MainThread"), ("resumed", "MainThread")] * 3
        kernel.execute("dom.destroy()").ok()
    finally:
        kernel.shutdown()
