"""Screen(dom) in a real kernel on the test driver: a PNG through a stream, sent while a view
is shown and not after it says bye (the QEMU guest's screen: tests/daemon/test_console.py)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pytest

from kernel import Kernel

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext ipyvirt
import asyncio, libvirt
from ipyvirt.widgets import Screen
from ipyvirt.models.screen import screenshot
c = libvirt.open("test:///default")
dom = c.lookupByName("test")
scr = Screen(dom, interval=1)
async def until(check, seconds=30):
    for _ in range(seconds * 100):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {seconds} s")
"""


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = Kernel()
    k.execute(SETUP).ok()
    yield k
    k.shutdown()


def shots(messages: list[dict[str, Any]], comm_id: str) -> list[tuple[dict[str, Any], bytes]]:
    found = []
    for m in messages:
        if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == comm_id:
            data = m["content"]["data"]
            if data.get("method") == "custom" and data["content"]["kind"] == "shot":
                found.append((data["content"], bytes(m["buffers"][0])))
    return found


def test_the_test_drivers_screen_while_shown(kernel: Kernel) -> None:
    assert kernel.value("repr(screenshot(dom))") == "Screenshot(1120x832 PNG, 33443 bytes)"
    model_id = kernel.value("scr.model_id")
    assert kernel.value("scr.sent") == 0  # nothing is read before a view is shown
    kernel.send_custom(model_id, {"do": "hello"})
    shown = kernel.execute("await until(lambda: scr.sent >= 2)\nprint(scr.views)").ok()
    got = shots(kernel.between + shown.messages, model_id)
    assert len(got) >= 2
    content, png = got[0]
    assert (content["width"], content["height"]) == (1120, 832)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", png[16:24]) == (1120, 832)
    kernel.send_custom(model_id, {"do": "bye"})
    kernel.execute("await until(lambda: scr.views == 0)").ok()
    after = kernel.value("scr.sent")
    kernel.execute("await asyncio.sleep(2.5)").ok()  # more than two intervals: none is read
    assert kernel.value("scr.sent") == after
    assert kernel.value("repr(scr)") == "Screen of test: 1120x832"


def test_a_bad_interval_is_one_line(kernel: Kernel) -> None:
    reply = kernel.execute("Screen(dom, interval=0.1)")
    assert reply.error == (
        "ValueError",
        "interval=0.1: refresh at most once a second (>= 1)",
    )
