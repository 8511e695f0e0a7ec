"""Screens in a real kernel on test:///default (its driver gives a fixed 1120x832 PNG): the
domain table's thumbnail column reads the shown page's running and paused rows only, only
while a view asks, each picture sent once; the domain view's screen tab only while it shows.
(A QEMU guest's thumbnail and "no screen": tests/daemon/test_screen.py.)"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pytest

from kernel import Kernel

pytestmark = pytest.mark.kernel

# "test" runs; "off" is shut off; "two" runs, on the second page of two rows (by name)
SETUP = """
%load_ext ipyvirt
import asyncio, libvirt
from ipyvirt.widgets import Dashboard, DomainTable, DomainView
c = libvirt.open("test:///default")
for name in ("off", "two"):
    d = c.defineXML(f"<domain type='test'><name>{name}</name><memory>1024</memory>"
                    "<os><type>hvm</type></os></domain>")
    if name == "two":
        d.create()
key = {d.name(): d.UUIDString() for d in c.listAllDomains()}
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


def customs(
    messages: list[dict[str, Any]], comm_id: str, kind: str
) -> list[tuple[Any, list[bytes]]]:
    """The custom messages of *kind* sent on *comm_id*, with their buffers."""
    found = []
    for m in messages:
        if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == comm_id:
            data = m["content"]["data"]
            if data.get("method") == "custom" and data["content"].get("kind") == kind:
                found.append((data["content"], [bytes(b) for b in m["buffers"]]))
    return found


def test_thumbnails_of_the_shown_page_while_a_view_asks(kernel: Kernel) -> None:
    kernel.execute("t = DomainTable(c, page_size=2, thumbnails=3)").ok()
    table = kernel.value("t.model_id")
    assert kernel.value("t.thumbnails") == 3.0
    kernel.execute("await asyncio.sleep(1.5)").ok()
    assert kernel.value("[t._thumbs.reads, t._thumbs.sent]") == [0, 0]  # nobody asked yet

    kernel.send_custom(table, {"do": "thumbs", "fresh": True})
    asked = kernel.execute("await until(lambda: t._thumbs.sent >= 1 and t.settled)").ok()
    got = customs(kernel.between + asked.messages, table, "thumbs")
    assert len(got) == 1
    content, buffers = got[0]
    test = kernel.value("key['test']")
    # page one is "off" (shut off: no picture) and "test"
    assert content == {"kind": "thumbs", "shots": [[test, 1120, 832]], "words": {}}
    assert buffers[0].startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", buffers[0][16:24]) == (1120, 832)

    # asked again within the interval: not read again; after it, read but the same picture
    # is not sent twice
    kernel.send_custom(table, {"do": "thumbs"})
    kernel.execute("await asyncio.sleep(0.3)").ok()
    assert kernel.value("[t._thumbs.reads, t._thumbs.sent]") == [1, 1]
    kernel.execute("await asyncio.sleep(3)").ok()
    kernel.send_custom(table, {"do": "thumbs"})
    kernel.execute("await until(lambda: t._thumbs.reads == 2 and t.settled)").ok()
    assert kernel.value("t._thumbs.sent") == 1

    # the next page's running row is read soon, while the view asks
    before = len(kernel.between)
    kernel.send_custom(table, {"do": "turn", "step": 1})
    turned = kernel.execute("await until(lambda: t._thumbs.sent == 2 and t.settled)").ok()
    two = kernel.value("key['two']")
    sent = customs(kernel.between[before:] + turned.messages, table, "thumbs")
    shots = [c["shots"] for c, _ in sent]
    assert shots == [[[two, 1120, 832]]]

    # no view asks any more: back on page one nothing is read ("test" left the page: the
    # kernel forgot its picture, as the view did)
    kernel.execute("await asyncio.sleep(7.6)").ok()  # 2.5 intervals after the last ask
    kernel.send_custom(table, {"do": "turn", "step": -1})
    kernel.execute("await asyncio.sleep(1)").ok()
    assert kernel.value("[t._thumbs.reads, t._thumbs.sent]") == [3, 2]
    assert kernel.value("sorted(t._thumbs.schedule.have)") == []

    # a second view's first ask gets what is held at once; a stopped domain leaves the page's
    # wanted rows
    kernel.send_custom(table, {"do": "thumbs", "fresh": True})
    kernel.execute("await until(lambda: t._thumbs.sent == 3 and t.settled)").ok()
    kernel.execute("c.lookupByName('test').destroy()").ok()
    kernel.execute("await until(lambda: t.settled and not t._thumbs.schedule.wanted)").ok()
    kernel.execute("t.close()").ok()
    assert kernel.value("t._thumbs._reads.closed") is True


def test_no_thumbnails_unless_asked_for_and_a_bad_value_is_one_line(kernel: Kernel) -> None:
    kernel.execute("t = DomainTable(c)").ok()
    assert kernel.value("[t.thumbnails, t._thumbs]") == [0.0, None]
    kernel.send_custom(kernel.value("t.model_id"), {"do": "thumbs", "fresh": True})
    kernel.execute("await asyncio.sleep(0.5)\nt.close()").ok()
    assert kernel.value("DomainTable(c, thumbnails=True).thumbnails") == 5.0
    assert kernel.execute("DomainTable(c, thumbnails=0.5)").error == (
        "ValueError",
        "thumbnails=0.5: give True (every 5 s), False, or the seconds between pictures (>= 1)",
    )


def test_the_domain_views_screen_only_while_its_tab_shows(kernel: Kernel) -> None:
    kernel.execute("v = DomainView(c, 'test')").ok()
    view = kernel.value("v.model_id")
    kernel.execute("await asyncio.sleep(2.5)").ok()
    assert kernel.value("v.screen.sent") == 0  # the tab was never shown
    kernel.send_custom(view, {"do": "screen", "on": True})
    shown = kernel.execute("await until(lambda: v.screen.sent >= 1)").ok()
    got = customs(kernel.between + shown.messages, view, "shot")
    assert got[0][0] == {"kind": "shot", "width": 1120, "height": 832}
    assert got[0][1][0].startswith(b"\x89PNG\r\n\x1a\n")
    assert kernel.value("v.screen_status") == ""
    kernel.send_custom(view, {"do": "screen", "on": False})
    kernel.execute("await until(lambda: not v.screen.wanted)").ok()
    after = kernel.value("v.screen.sent")
    kernel.execute("await asyncio.sleep(4.5)").ok()  # more than two intervals: none is read
    assert kernel.value("v.screen.sent") == after
    # a stopped domain: no read, the tab says so
    kernel.execute(
        "c.lookupByName('test').destroy()\nawait until(lambda: v.overview['state'] == 'shutoff')"
    ).ok()
    kernel.send_custom(view, {"do": "screen", "on": True})
    kernel.execute("await until(lambda: v.screen_status == 'not running')").ok()
    assert kernel.value("v.screen.sent") == after + 1  # the last picture, at the ask
    # no more asks and no "off" (a browser closed): the reads stop by themselves
    kernel.execute("await until(lambda: not v.screen.wanted)").ok()
    kernel.execute("await asyncio.sleep(2.5)").ok()  # the repeater's next tick cancels it
    assert kernel.value("v.screen._repeater.running") is False
    kernel.execute("v.close()").ok()


def test_the_dashboard_has_thumbnails_when_asked_on_a_read_write_connection(
    kernel: Kernel,
) -> None:
    kernel.execute("_ = %virt connect test:///default --name ro").ok()
    reply = kernel.execute("%virt dashboard ro --thumbnails")
    assert reply.status == "error"
    assert reply.stderr.strip() == (
        "UsageError: %virt dashboard: thumbnails need a read-write connection (libvirt "
        "refuses a read-only one a screenshot): %virt connect --rw, or libvirt.open"
    )
    kernel.execute("_ = %virt connect test:///default --rw --name rw").ok()
    kernel.execute("d = %virt dashboard rw --thumbnails").ok()
    assert kernel.value("[d.table.thumbnails, Dashboard(c).table.thumbnails]") == [5.0, 0.0]
