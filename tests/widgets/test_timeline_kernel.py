"""The timeline in a real kernel: one comm, the picture once, then changes that reach it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from kernel import Kernel

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext ipyvirt
import libvirt, ipyvirt
from ipyvirt.widgets import Timeline
c = libvirt.open("test:///default")
dom = c.lookupByName("test")
"""


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = Kernel()
    k.execute(SETUP).ok()
    yield k
    k.shutdown()


def comm_opens(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["msg_type"] == "comm_open"]


def custom(messages: list[dict[str, Any]], comm_id: str) -> list[dict[str, Any]]:
    """What the kernel sent the widget's views with ``send()`` (anywidget custom messages)."""
    return [
        m["content"]["data"]["content"]
        for m in messages
        if m["msg_type"] == "comm_msg"
        and m["content"]["comm_id"] == comm_id
        and m["content"]["data"].get("method") == "custom"
    ]


def as_the_view_sees_it(sent: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The lanes a view has after the messages *sent*, applied as timeline.js does."""
    lanes: dict[str, dict[str, Any]] = {}
    for message in sent:
        if message["kind"] == "picture":
            lanes = {lane["name"]: lane for lane in message["lanes"]}
            continue
        for change in message["changes"]:
            if change[0] in ("span", "tick"):
                lane = lanes.setdefault(change[1], {"name": change[1], "spans": [], "ticks": []})
                lane[change[0] + "s"].append(change[2:])
            elif change[0] == "lanes":
                lanes = {name: lanes[name] for name in change[1] if name in lanes}
            elif change[0] == "lane":
                lanes[change[1]["name"]] = change[1]
    return lanes


def test_one_comm_and_a_suspend_resume_reaches_it_as_spans(kernel: Kernel) -> None:
    shown = kernel.execute("tl = Timeline(c)\ndisplay(tl)").ok()
    opens = comm_opens(shown.messages)
    assert len(opens) == 1, [m["content"]["target_name"] for m in opens]
    model_id = kernel.value("tl.model_id")
    assert opens[0]["content"]["comm_id"] == model_id
    # the view says hello when it renders; the kernel answers with the whole picture
    kernel.send_custom(model_id, {"do": "hello"})
    before = len(kernel.between)
    cells = [kernel.execute("dom.suspend()").ok(), kernel.execute("dom.resume()").ok()]
    kernel.drain(0.5)
    assert kernel.value("[s for s, _, _ in tl.model.spans('test')]") == [
        "running",
        "paused",
        "running",
    ]
    # a message sent from a timer carries the parent of the cell last run: some are in the
    # cells' replies, some between cells; in the order the kernel sent them
    arrived = kernel.between[before:] + [m for cell in cells for m in cell.messages]
    arrived.sort(key=lambda m: m["header"]["date"])  # datetimes, as jupyter_client reads them
    sent = custom(arrived, model_id)
    assert sent[0]["kind"] == "picture", "the hello was not answered with the picture"
    assert sent[0]["window"] == 300
    lanes = as_the_view_sees_it(sent)
    assert list(lanes) == ["test"]
    assert [state for _, state in lanes["test"]["spans"]] == ["running", "paused", "running"]
    assert [label for _, label in lanes["test"]["ticks"]] == [
        "suspended (paused)",
        "resumed (unpaused)",
    ]
    assert sent[-1]["kind"] == "changes", "the resume came as a change, not a new picture"
    text = kernel.value("repr(tl)")
    assert text.startswith("Timeline on test:///default: 1 domain, 2 events in the last 5 minutes")
    assert "test: running -> paused -> running" in text
    assert not comm_opens(kernel.between), "something else opened a comm"


def test_changes_are_coalesced_to_at_most_20_messages_a_second(kernel: Kernel) -> None:
    kernel.execute("tl = Timeline(c)\ndisplay(tl)").ok()
    model_id = kernel.value("tl.model_id")
    kernel.execute(
        "import threading, time\n"
        "def storm():\n"
        "    for _ in range(100):  # about 2 s of events, many each 50 ms\n"
        "        dom.suspend(); dom.resume()\n"
        "        time.sleep(0.02)\n"
        "threading.Thread(target=storm).start()"
    ).ok()
    before = len(kernel.between)
    kernel.drain(3.0)
    messages = [
        m
        for m in kernel.between[before:]
        if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == model_id
    ]
    assert messages, "the storm sent nothing"
    sent = [m["content"]["data"]["content"] for m in messages]
    # stamped by the kernel as it sent them: never two within 50 ms (20 a second); the
    # pictures (one per view's hello, one when the first read is in) are not changes
    stamps = [m["now"] for m in sent if m["kind"] == "changes"]
    assert len(stamps) >= 10, sent
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(gap >= 0.045 for gap in gaps), gaps
    assert kernel.value("tl.model.lanes['test'].state") == "running"
    assert kernel.value("len(tl.model.lanes['test'].spans) <= tl.model.max_spans") is True
    # pauses and resumes say the state: the first read of every domain is the only one
    assert kernel.value("tl._reads.started") == 1


def test_history_and_closing(kernel: Kernel) -> None:
    kernel.execute("rw = ipyvirt.Connection(c)\ndom.suspend(); dom.resume()").ok()
    kernel.execute("tl = Timeline(rw)\nplain = Timeline(rw, history=False)").ok()
    kernel.execute("import asyncio\nawait asyncio.sleep(0.3)").ok()
    ticks = "[label for _, label in {}.model.lanes['test'].ticks]"
    assert kernel.value(ticks.format("tl")) == ["suspended (paused)", "resumed (unpaused)"]
    assert kernel.value(ticks.format("plain")) == []
    assert kernel.value("[s for s, _, _ in plain.model.spans('test')]") == ["running"]
    kernel.execute("%unload_ext ipyvirt").ok()
    assert kernel.value("(tl.comm, plain.comm, tl._subscription.active)") == (None, None, False)


def test_bad_arguments_are_one_line_and_open_no_comm(kernel: Kernel) -> None:
    bad = kernel.execute("Timeline(c, minutes=-1)")
    assert bad.error == ("ValueError", "minutes must be more than 0, got -1")
    wrong = kernel.execute("Timeline('test:///default')")
    assert wrong.error == (
        "TypeError",
        "expected a libvirt connection or an ipyvirt.Connection, got str",
    )
    assert not comm_opens(bad.messages + wrong.messages)
