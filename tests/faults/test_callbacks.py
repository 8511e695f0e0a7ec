"""Callbacks and input that go wrong: reported in a line, nothing else disturbed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernel import Kernel

pytestmark = pytest.mark.kernel


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = Kernel()
    k.execute("%load_ext ipyvirt").ok()
    yield k
    k.shutdown()


def test_a_subscriber_raising_on_10000_events(kernel: Kernel) -> None:
    kernel.execute(
        "import ipyvirt, threading\n"
        "c = ipyvirt.Connection(uri='test:///default', readonly=False, history=0)\n"
        "good = []\n"
        "def bad(event):\n"
        "    raise ValueError('fails on every event, on purpose')\n"
        "c.subscribe(bad, families=['domain'])\n"
        "c.subscribe(good.append, families=['domain'])\n"
        "dom = c.conn.lookupByName('test')\n"
        "def storm():\n"
        "    for _ in range(5000):\n"
        "        dom.suspend(); dom.resume()\n"
        "t = threading.Thread(target=storm); t.start(); t.join()"
    ).ok()
    kernel.drain(1.0)
    # the kernel answers, every event reached the good subscriber, every failure was counted
    assert kernel.value("(len(good), c.hub.errors)") == (10_000, 10_000)
    logged = "".join(
        m["content"].get("text", "") for m in kernel.between if m["msg_type"] == "stream"
    )
    # ... and the notebook got 5 tracebacks and a count per 1000, not 10,000 tracebacks
    assert logged.count("Traceback (most recent call last)") == 5
    assert logged.count("has raised") == 10
    assert "has raised 10000 times" in logged


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (
            "ipyvirt.Connection(uri='nosuch:///x')",
            "ConnectFailed: cannot connect to nosuch:///x: ",
        ),
        (
            "c.domain('nope')",
            "NoSuchDomain: no domain named 'nope' on test:///default (there are: test)",
        ),
        (
            "ro.conn.lookupByName('test').suspend()",
            "libvirtError: operation forbidden: read only access",
        ),
    ],
    ids=["bad-uri", "unknown-domain", "read-only"],
)
def test_bad_input_leaves_everything_else_working(kernel: Kernel, code: str, says: str) -> None:
    kernel.execute(
        "import ipyvirt\n"
        "c = ipyvirt.Connection(uri='test:///default', readonly=False)\n"
        "ro = ipyvirt.Connection(uri='test:///default')\n"
        "seen = []\n"
        "c.subscribe(lambda e: seen.append(e.name), families=['domain'])"
    ).ok()
    failed = kernel.execute(code)
    assert failed.error is not None
    assert f"{failed.error[0]}: {failed.error[1]}".startswith(says), failed.error
    assert "\n" not in failed.error[1]
    kernel.execute("d = c.conn.lookupByName('test'); d.suspend(); d.resume()").ok()
    assert kernel.value("seen") == ["suspended", "resumed"]
