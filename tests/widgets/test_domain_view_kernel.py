"""The domain view in a real kernel, on test:///default and on the tests' libvirtd: one comm,
it follows the domain changed elsewhere, define validates first and loses nothing, snapshots,
the read-only and unknown-domain errors, and the dashboard's table opening it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from kernel import Kernel
from libvirtd import Libvirtd

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext ipyvirt
import asyncio, re, libvirt, ipyvirt
from ipyvirt.widgets import DomainView, Dashboard
"""

SETTLE = """
async def settle(v, reads=None):
    for _ in range(200):
        if v.settled and (reads is None or v.reads > reads):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the view did not settle: {v!r}")
"""


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = Kernel()
    k.execute(SETUP + SETTLE).ok()
    yield k
    k.shutdown()


def ask(kernel: Kernel, do: str, widget: str = "v", **fields: object) -> None:
    """What the view sends when the user does *do* (domain_view.js's ``ask``)."""
    kernel.send_custom(kernel.value(f"{widget}.model_id"), {"do": do, **fields})


def settle(kernel: Kernel, widget: str = "v", after: int | None = None) -> None:
    """Wait until *widget* has no read or action under way (and, with *after*, has applied a
    read since it had *after*)."""
    kernel.execute(f"await settle({widget}, {after})").ok()


def custom(messages: list[dict[str, Any]], comm_id: str) -> list[dict[str, Any]]:
    return [
        m["content"]["data"]["content"]
        for m in messages
        if m["msg_type"] == "comm_msg"
        and m["content"]["comm_id"] == comm_id
        and m["content"]["data"].get("method") == "custom"
    ]


def test_one_comm_overview_devices_and_charts(kernel: Kernel) -> None:
    kernel.execute("c = ipyvirt.Connection(uri='test:///default', readonly=False)").ok()
    shown = kernel.execute("v = DomainView(c, 'test')\ndisplay(v)").ok()
    opens = [m for m in shown.messages if m["msg_type"] == "comm_open"]
    assert len(opens) == 1, [m["content"]["data"]["state"]["_model_name"] for m in opens]
    overview = kernel.value("v.overview")
    assert overview["state"] == "running"
    assert overview["vcpus"] == "2 of 2"
    assert overview["memory"] == "2.0 GiB of 8.0 GiB"
    assert overview["autostart"] == "no"
    devices = kernel.value("v.devices")
    assert devices["disks"]["rows"][0][:4] == ["vda", "disk", "virtio", "/guest/diskimage1"]
    # the test driver's NIC has a lease (interfaceAddresses), its graphics and consoles none
    nic = devices["nics"]["rows"][0]
    assert nic[0] == "aa:bb:cc:dd:ee:ff"
    assert re.fullmatch(r"192\.168\.122\.\d+/24", nic[-1]), nic  # the driver makes one up
    assert devices["graphics"]["rows"] == [] and devices["consoles"]["rows"] == []
    assert kernel.value("v.snapshots") == []
    assert kernel.value("v.xml").startswith("<domain type='test'")
    # the view says hello when it renders; then the kernel polls: the frames carry CPU and
    # memory from the per-domain calls (the test driver's bulk stats have state.* only)
    model_id = kernel.value("v.model_id")
    kernel.send_custom(model_id, {"do": "hello"})
    before = len(kernel.between)
    kernel.execute("v._poller.cancel(); v._poller.interval = 0.2; v._poller.start()").ok()
    kernel.drain(1.5)
    sent = custom(kernel.between[before:], model_id)
    assert sent[0]["kind"] == "window"
    frames = [m["frame"] for m in sent if m["kind"] == "frame"]
    assert len(frames) >= 3, sent
    assert all(f["mem"] == 1024.0 for f in frames), frames  # memoryStats' rss: 1 GiB
    assert all(f["cpu"] is not None and f["cpu"] >= 0 for f in frames[1:]), frames
    assert kernel.value("v.job") == {"text": "n/a: this driver has no virDomainGetJobStats"}
    assert kernel.value("repr(v)") == "DomainView of test on test:///default: running"


def test_it_follows_events_and_says_when_the_domain_is_gone(kernel: Kernel) -> None:
    kernel.execute(
        "c = ipyvirt.Connection(uri='test:///default', readonly=False)\n"
        "x = re.sub(r'<uuid>.*</uuid>', '', c.conn.lookupByName('test').XMLDesc())\n"
        "c.conn.defineXML(re.sub(r'<name>.*</name>', '<name>dv</name>', x))\n"
        "v = DomainView(c, c.conn.lookupByName('dv'))  # a virDomain works too"
    ).ok()
    assert kernel.value("v.overview['state']") == "shutoff"
    assert kernel.value("v.job") == {"text": "no job running (the domain is not running)"}
    reads = kernel.value("v.reads")
    kernel.execute("other = libvirt.open('test:///default')\nother.lookupByName('dv').create()")
    settle(kernel, after=reads)
    assert kernel.value("(v.overview['state'], v.overview['reason'])") == ("running", "booted")
    assert kernel.value("v.last_event").endswith("started (booted)")
    # libvirt has no call for uptime: the started event in the history gives it
    assert 0 <= kernel.value("v.overview['uptime']") < 60
    reads = kernel.value("v.reads")
    kernel.execute("d = other.lookupByName('dv')\nd.destroy()\nd.undefine()").ok()
    settle(kernel, after=reads)
    gone = kernel.value("v.gone")
    assert gone.startswith("dv is no longer defined on test:///default (noticed ")
    assert gone.endswith("): what shows is how it was")
    assert kernel.value("v.overview['state']") == "gone"
    ask(kernel, "define", xml=kernel.value("v.definition"))
    settle(kernel)
    assert kernel.value("v.outcome") == "error: define: dv is no longer defined"


def test_a_define_libvirt_rejects_keeps_the_old_xml_and_the_text(kernel: Kernel) -> None:
    kernel.execute("c = ipyvirt.Connection(uri='test:///default', readonly=False)").ok()
    kernel.execute("v = DomainView(c, 'test')\nold = c.conn.lookupByName('test').XMLDesc()").ok()
    bad = kernel.value("old.replace('<memory', '<bogus/><memory')")
    ask(kernel, "define", xml=bad)
    settle(kernel)
    assert kernel.value("v.define_error") == (
        "XML document failed to validate against schema: Element domain has extra content: bogus"
    )
    assert kernel.value("v.outcome") == "error: define test: libvirt refused it, nothing changed"
    assert kernel.value("v.draft") == bad, "the edited text was lost"
    assert kernel.value("c.conn.lookupByName('test').XMLDesc() == old") is True
    # another name would define a new domain: refused before libvirt
    renamed = kernel.value("old.replace('<name>test</name>', '<name>other</name>')")
    ask(kernel, "define", xml=renamed)
    settle(kernel)
    assert kernel.value("v.define_error").startswith(
        "the XML names domain 'other', this view is of 'test': keep <name>test</name>"
    )
    assert kernel.value("[d.name() for d in c.conn.listAllDomains()]") == ["test"]
    ask(kernel, "discard")  # the user's cancel: the kept text goes
    settle(kernel)
    assert kernel.value("(v.draft, v.define_error)") == ("", "")
    # a valid change is defined: the definition and the view follow, the draft is cleared
    good = kernel.value('v.definition.replace("<on_crash>destroy", "<on_crash>restart")')
    reads = kernel.value("v.reads")
    ask(kernel, "define", xml=good)
    settle(kernel, after=reads)
    assert kernel.value("(v.define_error, v.draft, v.outcome)") == ("", "", "define test: done")
    assert "<on_crash>restart</on_crash>" in kernel.value("v.definition")
    assert "<on_crash>restart</on_crash>" in kernel.value(
        "c.conn.lookupByName('test').XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)"
    )


def test_snapshots_create_revert_delete_asked_first(kernel: Kernel) -> None:
    kernel.execute("c = ipyvirt.Connection(uri='test:///default', readonly=False)").ok()
    kernel.execute("v = DomainView(c, 'test')").ok()
    ask(kernel, "snapshot", op="create", name="before", description="as it was")
    settle(kernel)
    ask(kernel, "snapshot", op="create", name="after")
    settle(kernel)
    rows = kernel.value("[(s['name'], s['depth'], s['current']) for s in v.snapshots]")
    assert rows == [("before", 0, False), ("after", 1, True)]
    assert kernel.value("v.snapshots[0]['description']") == "as it was"
    assert kernel.value("v.outcome") == "create a snapshot of test: done"
    ask(kernel, "snapshot", op="revert", name="before")
    settle(kernel)
    assert kernel.value("v.question").startswith("revert test to snapshot 'before'?")
    assert kernel.value("[s['current'] for s in v.snapshots]") == [False, True], "ran unasked"
    ask(kernel, "confirm")
    settle(kernel)
    assert kernel.value("(v.question, v.outcome)") == ("", "revert test to 'before': done")
    assert kernel.value("[s['current'] for s in v.snapshots]") == [True, False]
    ask(kernel, "snapshot", op="delete", name="after")
    settle(kernel)
    ask(kernel, "cancel")
    settle(kernel)
    assert kernel.value("[s['name'] for s in v.snapshots]") == ["before", "after"]
    ask(kernel, "snapshot", op="delete", name="after")
    ask(kernel, "confirm")
    settle(kernel)
    assert kernel.value("[s['name'] for s in v.snapshots]") == ["before"]
    # libvirt's refusal is one line and changes nothing
    ask(kernel, "snapshot", op="create", name="before")
    settle(kernel)
    assert kernel.value("v.outcome").startswith("error: create a snapshot of test: ")
    assert "\n" not in kernel.value("v.outcome")
    assert kernel.value("[s['name'] for s in v.snapshots]") == ["before"]


def test_read_only_and_unknown_domains_are_one_line(kernel: Kernel) -> None:
    kernel.execute("%virt connect").ok()
    kernel.execute("v = %virt show test").ok()
    assert kernel.value("v.readonly") == (
        "read-only connection: %virt connect --rw (or libvirt.open) to change the domain"
    )
    ask(kernel, "snapshot", op="create", name="x")
    ask(kernel, "define", xml="<domain/>")
    settle(kernel)
    assert kernel.value("v.outcome") == (
        "error: define: read-only connection: %virt connect --rw (or libvirt.open) to change "
        "the domain"
    )
    assert kernel.value("(v.snapshots, v.draft)") == ([], "<domain/>")
    missing = kernel.execute("%virt show nope")
    assert missing.status == "error"
    assert missing.stderr.strip() == (
        "UsageError: %virt show: no domain named 'nope' on test:///default (there are: test); "
        "%virt list shows them"
    )
    code = kernel.execute("DomainView(v.conn, 'nope')")
    assert code.error is not None and code.error[0] == "NoSuchDomain"
    help_text = kernel.execute("%virt show --help").ok().stdout
    assert "usage: %virt show [-h] [--name NAME] DOMAIN" in help_text


def test_the_dashboard_opens_a_domain_under_its_table(kernel: Kernel) -> None:
    kernel.execute("c = libvirt.open('test:///default')").ok()
    shown = kernel.execute("d = Dashboard(c)\ndisplay(d)").ok()
    models = [
        m["content"]["data"]["state"]["_model_name"]
        for m in shown.messages
        if m["msg_type"] == "comm_open"
    ]
    assert sorted(models) == ["AnyModel"] * 5 + ["TabModel", "VBoxModel"], models
    assert kernel.value("d.table.openable") is True
    uuid = kernel.value("c.lookupByName('test').UUIDString()")
    for i in range(2):  # the second replaces the first, which is closed
        before = len(kernel.between)
        ask(kernel, "open", widget="d.table", uuid=uuid)
        kernel.execute("await asyncio.sleep(0.2)").ok()
        opened = [m for m in kernel.drain(0.3)[before:] if m["msg_type"] == "comm_open"]
        assert len(opened) == 1, opened
        if i == 0:
            kernel.execute("first = d.domain_view").ok()
    assert kernel.value("d.domain_view.name") == "test"
    assert kernel.value("[type(w).__name__ for w in d._domains.children]") == [
        "DomainTable",
        "DomainView",
    ]
    assert kernel.value("(first.comm, d.domain_view is first)") == (None, False)
    # selecting rows still works beside the names
    ask(kernel, "select", widget="d.table", uuid=uuid, on=True)
    kernel.execute("await asyncio.sleep(0.2)").ok()
    assert kernel.value("d.table.selected") == {uuid}
    kernel.execute("d.close()").ok()
    assert kernel.value("d.domain_view.comm") is None


@pytest.mark.daemon
def test_it_follows_a_domain_another_connection_changes_over_the_daemon(
    kernel: Kernel, libvirtd: Libvirtd
) -> None:
    uri = libvirtd.test_uri
    kernel.execute(
        f"uri = {uri!r}\n"
        "other = libvirt.open(uri)\n"
        "x = re.sub(r'<uuid>.*</uuid>', '', other.lookupByName('test').XMLDesc())\n"
        "other.defineXML(re.sub(r'<name>.*</name>', '<name>dv-daemon</name>', x))\n"
        "c = ipyvirt.Connection(uri=uri, readonly=False)\n"
        "v = DomainView(c, 'dv-daemon')"
    ).ok()
    try:
        assert kernel.value("v.overview['state']") == "shutoff"
        for op, state in (("create", "running"), ("suspend", "paused"), ("resume", "running")):
            reads = kernel.value("v.reads")
            kernel.execute(f"other.lookupByName('dv-daemon').{op}()").ok()
            settle(kernel, after=reads)
            assert kernel.value("v.overview['state']") == state, op
        reads = kernel.value("v.reads")
        kernel.execute("other.lookupByName('dv-daemon').setAutostart(1)").ok()
        # libvirt sends no event for autostart: a define does (the view reads everything)
        kernel.execute(
            "dom = other.lookupByName('dv-daemon')\n"
            "other.defineXML(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))"
        ).ok()
        settle(kernel, after=reads)
        assert kernel.value("v.overview['autostart']") == "yes"
        assert kernel.value("v.last_event").endswith("defined (updated)")
    finally:
        kernel.execute(
            "d = other.lookupByName('dv-daemon')\nd.isActive() and d.destroy()\nd.undefine()"
        ).ok()
