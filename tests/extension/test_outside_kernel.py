"""The same user code in a plain script, an asyncio program and a kernel."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from kernel import Kernel

USER_CODE = """
import threading, ipyvirt
got = []
def watch_and_act():
    conn = ipyvirt.Connection(uri="test:///default", readonly=False)
    conn.subscribe(
        lambda e: got.append((e.name, threading.current_thread().name)),
        families=["domain"], kinds=["lifecycle"],
    )
    dom = conn.conn.lookupByName("test")
    dom.suspend()
    dom.resume()
    return conn
"""


def _run(script: str) -> str:
    code = USER_CODE + textwrap.dedent(script)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_plain_script_runs_a_loop_thread_of_its_own() -> None:
    out = _run(
        """
        import time
        rt = ipyvirt.start()
        watch_and_act()
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        print(got, rt.main_thread_name)
        """
    )
    assert out == "[('suspended', 'ipyvirt-main'), ('resumed', 'ipyvirt-main')] ipyvirt-main"


def test_asyncio_program_uses_its_running_loop() -> None:
    out = _run(
        """
        import asyncio
        async def main():
            ipyvirt.start()
            watch_and_act()
            await asyncio.sleep(0.2)
            print(got)
        asyncio.run(main())
        """
    )
    assert out == "[('suspended', 'MainThread'), ('resumed', 'MainThread')]"


@pytest.mark.kernel
def test_kernel_runs_it_on_the_main_thread() -> None:
    kernel = Kernel()
    try:
        kernel.execute("%load_ext ipyvirt\n" + USER_CODE + "\nc = watch_and_act()").ok()
        assert kernel.value("got") == [("suspended", "MainThread"), ("resumed", "MainThread")]
    finally:
        kernel.shutdown()


def test_connection_without_a_running_loop_says_what_to_do() -> None:
    out = _run(
        """
        try:
            watch_and_act()
        except ipyvirt.IpyvirtError as err:
            print(err)
        """
    )
    assert out == (
        "ipyvirt's event loop is not running: %load_ext ipyvirt in a notebook, or "
        "ipyvirt.start() elsewhere, before opening connections."
    )
