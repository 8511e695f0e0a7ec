"""ipyvirt's widgets in a real kernel: what reaches the frontend, and when."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kernel import Kernel

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext ipyvirt
import threading, time, asyncio, libvirt, ipyvirt
from ipyvirt.widgets import DomainTable, EventLog, LoopMonitor, Usage, Dashboard
from ipyvirt.domains import query_all
c = libvirt.open("test:///default")
dom = c.lookupByName("test")
"""

DEFINE = """
import re
_xml = re.sub(r"<uuid>.*</uuid>", "", dom.XMLDesc())
def define(n, prefix="d"):
    for i in range(n):
        c.defineXML(re.sub(r"<name>.*</name>", f"<name>{prefix}{i:04}</name>", _xml))
"""


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = Kernel()
    k.execute(SETUP).ok()
    yield k
    k.shutdown()


def comm_updates(
    messages: list[dict[str, Any]], model_id: str | None = None
) -> list[dict[str, Any]]:
    return [
        m
        for m in messages
        if m["msg_type"] == "comm_msg"
        and m["content"]["data"].get("method") == "update"
        and (model_id is None or m["content"]["comm_id"] == model_id)
    ]


def nbytes(messages: list[dict[str, Any]]) -> int:
    return sum(len(json.dumps(m["content"])) for m in messages)


def ask(kernel: Kernel, do: str, widget: str = "t", **fields: object) -> None:
    """What the table's view sends when the user does *do* (domain_table.js's ``ask``)."""
    kernel.send_custom(kernel.value(f"{widget}.model_id"), {"do": do, **fields})


def uuid_of(kernel: Kernel, name: str) -> str:
    return str(kernel.value(f"c.lookupByName({name!r}).UUIDString()"))


SETTLE = "for _ in range(200):\n    if t.settled:\n        break\n    await asyncio.sleep(0.05)"


def test_table_updates_arrive_between_cells_coalesced(kernel: Kernel) -> None:
    kernel.execute("t = DomainTable(c)\ndisplay(t)").ok()
    table = kernel.value("t.model_id")
    kernel.execute(
        "def storm():\n"
        "    time.sleep(0.3)\n"
        "    for _ in range(200):\n"
        "        dom.suspend(); dom.resume()\n"
        "threading.Thread(target=storm).start()"
    ).ok()
    before = len(kernel.between)
    kernel.drain(3.0)  # no cell runs meanwhile
    updates = comm_updates(kernel.between[before:], table)
    assert updates, "the table did not change between cells"
    # 400 events in well under a second: coalesced to a handful of refreshes, never one each
    assert len(updates) < 40, len(updates)
    rows = [
        u["content"]["data"]["state"]["page_rows"]
        for u in updates
        if "page_rows" in u["content"]["data"]["state"]
    ]
    assert rows[-1][0][1:4] == ["test", 1, "running"]
    assert kernel.value("t.settled and [r.state for r in t.rows()]") == ["running"]


def test_a_table_is_one_comm_and_a_10000_domain_first_render_is_small(kernel: Kernel) -> None:
    kernel.execute(DEFINE + "define(9999)").ok()
    shown = kernel.execute("t = DomainTable(c, page_size=50)\ndisplay(t)").ok()
    opened = [m for m in shown.messages if m["msg_type"] == "comm_open"]
    comm = [m for m in shown.messages if m["msg_type"] in ("comm_open", "comm_msg")]
    print(f"{len(opened)} comms opened, {nbytes(comm)} bytes of comm data")
    # the table alone: a view has no Layout widget (the bound is 3)
    assert len(opened) == 1, [m["content"]["data"]["state"]["_model_name"] for m in opened]
    assert nbytes(comm) <= 20 * 1024
    assert kernel.value("(t.pager['label'], len(t.page_rows))") == ("1-50 of 10,000", 50)


def test_one_event_costs_the_same_bytes_for_10_or_1000_domains(kernel: Kernel) -> None:
    kernel.execute(DEFINE).ok()
    costs = {}
    for total in (10, 1000):
        kernel.execute(f"define({total - 1}, prefix='n{total}-')").ok()
        kernel.execute("t = DomainTable(c, page_size=5)\ndisplay(t)").ok()
        kernel.drain(0.5)
        before = len(kernel.between)
        kernel.execute("dom.suspend()").ok()  # 'test' sorts after the n... domains: another page
        kernel.drain(0.5)
        hidden = nbytes(comm_updates(kernel.between[before:]))
        ask(kernel, "look", name_filter="test")
        kernel.drain(0.5)
        before = len(kernel.between)
        kernel.execute("dom.resume()").ok()
        kernel.drain(0.5)
        shown = nbytes(comm_updates(kernel.between[before:]))
        costs[total] = (hidden, shown)
        kernel.execute(
            "t.close()\nfor d in c.listAllDomains():\n    d.name() != 'test' and d.undefine()"
        ).ok()
    print("comm bytes per event (off page, on page):", costs)
    for hidden, shown in costs.values():
        assert 0 < hidden < 300 and 0 < shown < 800
    assert abs(costs[1000][1] - costs[10][1]) < 100, costs
    assert abs(costs[1000][0] - costs[10][0]) < 100, costs


# Every operation here is announced by an event. Not reboot: the test driver reboots without
# one (the state reason changes, running/unknown to running/booted): the periodic re-read
# catches that (next test).
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_after_random_operations_the_table_equals_a_fresh_query(kernel: Kernel, seed: int) -> None:
    kernel.execute(DEFINE + "define(20)").ok()
    kernel.execute(
        "import random\n"
        "t = DomainTable(c, page_size=10)\n"
        "display(t)\n"
        f"rng = random.Random({seed})\n"
        "def step():\n"
        "    doms = c.listAllDomains()\n"
        "    d = rng.choice(doms)\n"
        "    op = rng.choice(['create', 'destroy', 'suspend', 'resume', 'shutdown', 'undefine',\n"
        "                     'define', 'transient'])\n"
        "    n = rng.randrange(10**6)\n"
        "    named = lambda p: re.sub('<name>.*</name>', f'<name>{p}{n}</name>', _xml)\n"
        "    try:\n"
        "        if op == 'define':\n"
        "            c.defineXML(named('x'))\n"
        "        elif op == 'transient':\n"
        "            c.createXML(named('tr'))\n"
        "        else:\n"
        "            getattr(d, op)()\n"
        "    except libvirt.libvirtError:\n"
        "        pass  # refused (not running, already paused ...): part of the sequence\n"
        "def run(n):\n"
        "    for _ in range(n):\n"
        "        step()\n"
        "worker = threading.Thread(target=run, args=(150,))\n"
        "worker.start()\n"
        "run(150)\n"
        "worker.join()"
    ).ok()
    # the table settles once every event is shown (reads run on a worker thread)
    kernel.execute(
        "for _ in range(200):\n    if t.settled:\n        break\n    await asyncio.sleep(0.05)"
    ).ok()
    kernel.execute(
        "fresh = sorted(query_all(c).values(), key=lambda r: r.name)\n"
        "diff = [(repr(a), repr(b)) for a, b in zip(t.rows(), fresh) if a != b]\n"
        "report = (t.settled, len(t.rows()), len(fresh), diff[:3])"
    ).ok()
    settled, shown, fresh, diff = kernel.value("report")
    assert settled and shown == fresh and not diff, (settled, shown, fresh, diff)


@pytest.mark.parametrize("order", ["user-first", "widgets-first"])
def test_users_own_registration_works_alongside_the_widgets(kernel: Kernel, order: str) -> None:
    user = (
        "mine = []\n"
        "c.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,\n"
        "    lambda conn, d, ev, det, op: mine.append(ev), None)\n"
    )
    widgets = "t = DomainTable(c)\nlog = EventLog(c)\ndisplay(t, log)\n"
    kernel.execute(user + widgets if order == "user-first" else widgets + user).ok()
    kernel.execute("dom.suspend(); dom.resume()").ok()
    kernel.drain(0.3)
    assert kernel.value("mine") == [3, 4]
    assert kernel.value("[e.name for e in log.events if e.family == 'domain']") == [
        "suspended",
        "resumed",
    ]
    assert kernel.value("[r.state for r in t.rows()]") == ["running"]


def test_actions_run_off_the_loop_and_report_errors_in_one_line(kernel: Kernel) -> None:
    kernel.execute(
        "rw = ipyvirt.Connection(uri='test:///default', readonly=False)\n"
        "t = DomainTable(rw)\n"
        "display(t)\n"
        "threads = []\n"
        "_orig = libvirt.virDomain.suspend\n"
        "def spy(self):\n"
        "    threads.append(threading.current_thread().name)\n"
        "    return _orig(self)\n"
        "libvirt.virDomain.suspend = spy"
    ).ok()
    assert kernel.value("t.buttons['suspend']") == "select domains first"
    ask(kernel, "select", uuid=uuid_of(kernel, "test"), on=True)
    assert kernel.value("(t.selection, t.page_rows[0][-1])") == ({"selected": 1, "shown": 1}, True)
    reasons = kernel.value("t.buttons")
    assert [a for a, why in reasons.items() if not why] == [
        "shutdown",
        "reboot",
        "suspend",
        "destroy",
    ]
    assert reasons["start"] == "start applies to crashed or shutoff domains: test is running"
    ask(kernel, "act", action="suspend")
    kernel.execute(SETTLE).ok()
    assert kernel.value("threads")[0].startswith("ipyvirt-action")
    assert kernel.value("([r.state for r in t.rows()], t.outcome)") == (
        ["paused"],
        "suspend test: done",
    )
    ask(kernel, "act", action="destroy")
    assert kernel.value("t.question") == "destroy test?"
    ask(kernel, "cancel")
    assert kernel.value("t.question") == ""
    # a click on a disabled button (from code, or a view drawn before the state changed)
    ask(kernel, "act", action="start")
    assert kernel.value("t.outcome") == (
        "error: start test: start applies to crashed or shutoff domains: test is paused"
    )
    ask(kernel, "act", action="resume")
    kernel.execute(SETTLE).ok()
    assert kernel.value("([r.state for r in t.rows()], t.outcome)") == (
        ["running"],
        "resume test: done",
    )


def test_actions_never_reach_a_row_the_filter_hides(kernel: Kernel) -> None:
    kernel.execute(
        DEFINE + "define(3)\n"
        "rw = ipyvirt.Connection(uri='test:///default', readonly=False)\n"
        "t = DomainTable(rw)\n"
        "display(t)"
    ).ok()
    ask(kernel, "look", name_filter="d000")
    ask(kernel, "select_all", on=True)
    assert kernel.value("t.selection") == {"selected": 3, "shown": 3}
    ask(kernel, "select", uuid=uuid_of(kernel, "d0001"), on=False)
    assert kernel.value("t.selection") == {"selected": 2, "shown": 3}
    assert kernel.value("(t.buttons['start'], t.buttons['suspend'][:31])") == (
        "",
        "suspend applies to running doma",
    )
    ask(kernel, "look", name_filter="d0000")  # d0002 stays selected, hidden
    ask(kernel, "act", action="start")
    kernel.execute(SETTLE).ok()
    states = "{r.name: r.state for r in t.rows()}"
    assert kernel.value(states) == {
        "d0000": "running",
        "d0001": "shutoff",
        "d0002": "shutoff",
        "test": "running",
    }
    ask(kernel, "look", name_filter="zzz")  # nothing shown: nothing to act on
    assert kernel.value("(t.empty, t.pager['label'], set(t.buttons.values()))") == (
        "No domain matches name containing 'zzz'.",
        "",
        {"select domains first"},
    )
    ask(kernel, "act", action="start")
    assert kernel.value("t.outcome") == "error: start: select domains first"


def test_actions_are_disabled_on_a_read_only_connection(kernel: Kernel) -> None:
    kernel.execute("ro = ipyvirt.Connection(uri='test:///default')\nt = DomainTable(ro)").ok()
    ask(kernel, "select", uuid=uuid_of(kernel, "test"), on=True)
    assert kernel.value("all(b.disabled for b in t.actions.buttons.values())") is True
    assert kernel.value("t.actions.buttons['start'].tooltip").startswith("read-only connection")
    assert kernel.value("set(t.buttons.values())") == {
        "read-only connection: %virt connect --rw (or libvirt.open) to act"
    }


def test_a_table_without_actions_draws_no_buttons_and_refuses_them(kernel: Kernel) -> None:
    kernel.execute("t = DomainTable(c, actions=False)").ok()
    ask(kernel, "select", uuid=uuid_of(kernel, "test"), on=True)
    ask(kernel, "act", action="suspend")
    assert kernel.value("(t.buttons, t.outcome, [r.state for r in t.rows()])") == (
        {},
        "",
        ["running"],
    )


def test_event_log_decodes_every_family_in_bounded_memory(kernel: Kernel) -> None:
    kernel.execute(
        "log = EventLog(c, capacity=5)\n"
        "display(log)\n"
        "net = c.networkLookupByName('default')\n"
        "net.destroy(); net.create()\n"
        "pool = c.storagePoolLookupByName('default-pool')\n"
        "pool.destroy(); pool.create()\n"
        "dom.suspend(); dom.resume()"
    ).ok()
    kernel.drain(0.3)
    kept = kernel.value("[(e.family, e.subject, e.name, e.detail) for e in log.events]")
    assert kept[-2:] == [
        ("domain", "test", "suspended", "paused"),
        ("domain", "test", "resumed", "unpaused"),
    ]
    assert any(f == "pool" for f, *_ in kept)
    assert kernel.value("log.dropped") == 1  # 6 events, room for 5
    assert kernel.value("(log.kept, log.status)") == (5, "5 events kept, 1 dropped")
    # the rows the view draws: newest first, a key then the columns' cells
    assert kernel.value("log.columns") == ["time", "family", "subject", "event", "detail"]
    assert [row[2:] for row in kernel.value("log.rows")[:2]] == [
        ["domain", "test", "resumed", "unpaused"],
        ["domain", "test", "suspended", "paused"],
    ]
    text = kernel.execute("print(repr(log))").ok().stdout
    assert text.startswith("EventLog on test:///default: 5 events kept, 1 dropped")


def filtered(kernel: Kernel, model_id: str, content: dict[str, Any]) -> Any:
    """Send the view's request, then read back (filter, rows' families, notice) once handled.

    The request reaches the kernel on the shell channel, like a cell: the cell sent after it
    runs once the main loop has handled it (the OnMain hand-over runs before the cell's code).
    """
    kernel.send_custom(model_id, {"do": "look", **content})
    kernel.execute("await asyncio.sleep(0)").ok()
    return kernel.value("(log.family, log.subject, [r[2] for r in log.rows], log.notice)")


def test_event_log_filters_are_requests_from_the_view(kernel: Kernel) -> None:
    kernel.execute(
        "log = EventLog(c)\n"
        "display(log)\n"
        "net = c.networkLookupByName('default')\n"
        "net.destroy(); net.create()\n"
        "dom.suspend(); dom.resume()"
    ).ok()
    kernel.drain(0.3)
    model_id = kernel.value("log.model_id")
    family, subject, families, notice = filtered(kernel, model_id, {"family": "domain"})
    assert (family, subject, families, notice) == ("domain", "", ["domain", "domain"], "")
    assert kernel.value("[e.family for e in log.matching()]") == ["domain", "domain"]
    # the subject filter keeps the family filter; "none" matches nothing: the view says so
    assert filtered(kernel, model_id, {"subject": "none"}) == ("domain", "none", [], "")
    assert filtered(kernel, model_id, {"family": "all families", "subject": "DEF"})[2] == [
        "network",
        "network",
    ]
    # a family the view does not offer is refused in one line; the filters stay as they were
    family, subject, families, notice = filtered(kernel, model_id, {"family": "volumes"})
    assert (family, subject, families) == ("all families", "DEF", ["network", "network"])
    assert notice.startswith("unknown family 'volumes': use one of all families, domain")
    assert filtered(kernel, model_id, {"subject": ""})[3] == ""


def test_event_log_starts_from_the_history_when_asked(kernel: Kernel) -> None:
    kernel.execute(
        "conn = ipyvirt.Connection(c)\n"
        "dom.suspend(); dom.resume()\n"
        "await asyncio.sleep(0.2)\n"
        "late = EventLog(conn)\n"
        "since = EventLog(conn, history=True, visible=1)\n"
        "net_only = EventLog(conn, history=True, families=['network'])"
    ).ok()
    late = kernel.value("(late.kept, late.rows, late.status)")
    assert late == (0, [], "0 events kept, 0 dropped")
    assert kernel.value("[e.name for e in since.events]") == ["suspended", "resumed"]
    assert kernel.value("[r[4] for r in since.rows]") == ["resumed"]  # visible=1: the newest
    assert kernel.value("(since.status, since.uri)") == (
        "2 events kept, 0 dropped",
        "test:///default",
    )
    # a log of other families starts empty, and offers only its families to filter by
    assert kernel.value("(net_only.kept, net_only.families)") == (
        0,
        ["all families", "network"],
    )


def test_event_log_refuses_bad_arguments_in_one_line_and_leaves_no_comm(kernel: Kernel) -> None:
    bad_family = kernel.execute("EventLog(c, families=['volumes'])")
    assert bad_family.error is not None and bad_family.error[0] == "ValueError"
    assert "\n" not in bad_family.error[1] and "volumes" in bad_family.error[1]
    not_a_conn = kernel.execute("EventLog('test:///default')")
    assert not_a_conn.error == (
        "TypeError",
        "expected a libvirt connection or an ipyvirt.Connection, got str",
    )
    closed = [
        m for r in (bad_family, not_a_conn) for m in r.messages if m["msg_type"] == "comm_close"
    ]
    assert len(closed) == 2, "a refused EventLog left its comm open"


def test_each_view_opens_exactly_one_comm(kernel: Kernel) -> None:
    for make in ("EventLog(c, history=True)", "LoopMonitor()"):
        reply = kernel.execute(f"w = {make}\ndisplay(w)").ok()
        opened = [m for m in reply.messages if m["msg_type"] == "comm_open"]
        assert len(opened) == 1, (make, [m["content"]["data"]["state"] for m in opened])
        assert opened[0]["content"]["comm_id"] == kernel.value("w.model_id")
        kernel.execute("w.close()").ok()


def test_a_dashboard_is_one_comm_per_part_and_one_for_its_tabs(kernel: Kernel) -> None:
    reply = kernel.execute("d = Dashboard(c)\ndisplay(d)").ok()
    opened = [
        m["content"]["data"]["state"]["_model_name"]
        for m in reply.messages
        if m["msg_type"] == "comm_open"
    ]
    # the tabs, the domains tab (the table and the domain opened from it) and five parts
    # (table, usage, timeline, events, loop): the bound is 10; the composite widgets
    # before opened 300
    assert sorted(opened) == ["AnyModel"] * 5 + ["TabModel", "VBoxModel"], opened
    kernel.execute("d.close()").ok()


def test_loop_monitor_shows_which_loop_runs_what(kernel: Kernel) -> None:
    kernel.execute("conn = ipyvirt.Connection(c)\nm = LoopMonitor(interval=0.2)\ndisplay(m)").ok()
    before = len(kernel.between)
    kernel.drain(1.2)
    reading = kernel.value("m.reading")
    assert set(reading) == {"watches", "timers", "rates", "totals", "loops"}
    assert set(reading["rates"]) == {
        "dispatches_per_s",
        "fires_per_s",
        "frees_per_s",
        "pending_frees",
        "callback_errors",
    }
    # test:///default: libvirt's one timer, disabled, runs on the main loop
    assert [(t["interval"], t["loop"]) for t in reading["timers"]] == [("disabled", "main")]
    assert [loop for loop, _thread in reading["loops"]] == ["main", "io"]
    assert kernel.value("repr(m)").startswith("LoopMonitor: ")
    # on an idle loop a reading changes nothing after the first rates: no message for it
    # (six readings in 1.2 s)
    updates = comm_updates(kernel.between[before:], kernel.value("m.model_id"))
    assert len(updates) <= 2, len(updates)
    kernel.execute("m.close()").ok()
    assert kernel.value("m._repeater.running") is False


def custom(messages: list[dict[str, Any]], model_id: str, kind: str) -> list[dict[str, Any]]:
    """What the kernel sent the views of *model_id* with ``send()`` (a custom message)."""
    return [
        m["content"]["data"]["content"]
        for m in messages
        if m["msg_type"] == "comm_msg"
        and m["content"]["comm_id"] == model_id
        and m["content"]["data"].get("method") == "custom"
        and m["content"]["data"]["content"].get("kind") == kind
    ]


def wait_for(kernel: Kernel, expr: str, what: str, patience: float = 60) -> None:
    """Collect messages between cells until *expr* is true in the kernel (or fail)."""
    deadline = time.monotonic() + patience
    while not kernel.value(expr):
        assert time.monotonic() < deadline, f"{what}: still not {expr!r} after {patience} s"
        kernel.drain(0.2)


def test_usage_is_one_comm_and_sends_new_samples_once_shown(kernel: Kernel) -> None:
    made = kernel.execute("u = Usage(c, interval=0.2, history=5)").ok()
    assert [m["msg_type"] for m in made.messages].count("comm_open") == 1
    model = kernel.value("u.model_id")
    kernel.drain(0.6)
    assert kernel.value("u.polls") == 0, "it polled before anyone looked"
    start = len(kernel.between)
    kernel.send_custom(model, {"do": "window"})  # a view rendered, as in a Tab never displayed
    wait_for(kernel, "u.polls >= 3", "the usage polls once a view asks")
    kernel.drain(0.3)
    seen = kernel.between[start:]
    assert custom(seen, model, "window") == [{"kind": "window", "frames": []}]
    frames = [m["frame"] for m in custom(seen, model, "frame")]
    assert len(frames) >= 3 and [f["t"] for f in frames] == sorted(f["t"] for f in frames)
    # test:///default's domain "test" runs: its figures come from per-domain calls, not n/a
    (first,) = frames[0]["domains"]
    assert first[0] == "test" and first[1] is None and first[2] > 0  # CPU %: from 2 samples
    name, cpu, mem = frames[-1]["domains"][0]
    assert name == "test" and cpu is not None and cpu >= 0 and mem > 0
    assert kernel.value("u.source") == "per-domain calls, bulk stats lack cpu/memory on this driver"
    assert not [m for m in seen if m["msg_type"] == "comm_open"], "polling opened a comm"
    # only changes cross: the traits once (polled, source, in one message), then frames alone
    assert len(comm_updates(seen, model)) == 1, comm_updates(seen, model)
    # a view that renders later gets the window (the last *history* frames), once
    wait_for(kernel, "u.polls >= 6", "more polls than the window holds")
    start = len(kernel.between)
    kernel.send_custom(model, {"do": "window"})
    deadline = time.monotonic() + 60
    while not custom(kernel.between[start:], model, "window"):
        assert time.monotonic() < deadline, "no window for a view that rendered late"
        kernel.drain(0.1)
    (window,) = custom(kernel.between[start:], model, "window")
    assert len(window["frames"]) == 5 and window["frames"][-1]["t"] >= frames[-1]["t"]
    assert kernel.value("repr(u)") == "Usage on test:///default: 1 running domains"
    kernel.execute("dom.destroy()").ok()
    wait_for(kernel, "u.model.frames[-1][1] == []", "a frame with no running domain")
    kernel.execute("dom.create()\nu.close()").ok()
    polls = kernel.value("u.polls")
    kernel.drain(0.5)
    assert kernel.value("u.polls") == polls and kernel.value("u.comm is None") is True


def test_usage_polls_only_once_displayed(kernel: Kernel) -> None:
    kernel.execute("u = Usage(c, interval=0.2)").ok()
    kernel.drain(0.6)
    assert kernel.value("u.polls") == 0
    kernel.execute("display(u)").ok()
    wait_for(kernel, "u.polls >= 2", "the usage polls once displayed")
    bad = kernel.execute("Usage(c, interval=0)")
    assert bad.error == (
        "ValueError",
        "Usage needs interval > 0, history >= 2, max_domains >= 1 and lines >= 1: "
        "got 0, 30, 20 and 5",
    )


def test_dashboard_magic_and_unload_closes_widgets(kernel: Kernel) -> None:
    kernel.execute("%virt connect --rw\nd = %virt dashboard").ok()
    text = kernel.execute("print(repr(d))").ok().stdout
    assert text.startswith("DomainTable: 1 domain on test:///default (1 running)")
    kernel.execute("%unload_ext ipyvirt").ok()
    assert (
        kernel.value("d.comm is None and d.table.comm is None and d.event_log.comm is None") is True
    )


def test_async_for_and_wait_for_with_top_level_await(kernel: Kernel) -> None:
    kernel.execute(
        "threading.Timer(0.3, lambda: (dom.suspend(), dom.resume())).start()\n"
        "got = []\n"
        "async for e in ipyvirt.events(c, families=['domain'], kinds=['lifecycle']):\n"
        "    got.append(e.name)\n"
        "    if len(got) == 2:\n"
        "        break"
    ).ok()
    assert kernel.value("got") == ["suspended", "resumed"]
    kernel.execute(
        "threading.Timer(0.3, dom.suspend).start()\n"
        "await ipyvirt.wait_for(dom, 'paused', timeout=5)\n"
        "state_after = dom.state()[0]"
    ).ok()
    assert kernel.value("state_after") == 3
    late = kernel.execute("await ipyvirt.wait_for(dom, 'running', timeout=0.3)")
    assert late.error == ("TimeoutError", "domain test is paused, not running, after 0.3 s")
    bad = kernel.execute("await ipyvirt.wait_for(dom, 'runing')")
    assert bad.error is not None and bad.error[1].startswith("unknown domain state 'runing'")
    kernel.execute("dom.resume()").ok()
    # leaving the loop and cancelling both close what they opened to watch
    kernel.execute(
        "from ipyvirt import streams\n"
        "task = asyncio.ensure_future(ipyvirt.wait_for(dom, 'paused'))\n"
        "await asyncio.sleep(0.05)\n"
        "while_waiting = len(streams.active)\n"
        "task.cancel()\n"
        "await asyncio.sleep(0.05)\n"
        "after = [w.closed_reason for w in streams.active]"
    ).ok()
    assert kernel.value("(while_waiting, after)") == (1, [])


def test_sort_filter_and_pages(kernel: Kernel) -> None:
    kernel.execute(DEFINE + "define(12)\nt = DomainTable(c, page_size=5)\ndisplay(t)").ok()
    kernel.execute("c.lookupByName('d0003').create(); c.lookupByName('d0007').create()").ok()
    kernel.execute(SETTLE).ok()
    shown = "[line.split()[0] for line in repr(t).splitlines()[3:]]"
    page = "[row[1] for row in t.page_rows]"
    assert kernel.value(shown) == ["d0000", "d0001", "d0002", "d0003", "d0004", "1-5"]
    assert kernel.value(page) == ["d0000", "d0001", "d0002", "d0003", "d0004"]
    ask(kernel, "turn", step=1)
    assert kernel.value("t.pager") == {"label": "6-10 of 13", "page": 1, "pages": 3}
    ask(kernel, "look", state_filter="running")  # back to the only page
    assert kernel.value(page) == ["d0003", "d0007", "test"]
    assert kernel.value("t.pager") == {"label": "1-3 of 3", "page": 0, "pages": 1}
    ask(kernel, "look", state_filter="all states", name_filter="d001")
    assert kernel.value(page) == ["d0010", "d0011"]
    ask(kernel, "look", name_filter="")
    ask(kernel, "sort", key="state")  # a click on the state header
    assert kernel.value(page)[:3] == ["d0003", "d0007", "test"]  # running first
    assert kernel.value("(t.look['sort'], t.look['descending'])") == ("state", False)
    ask(kernel, "sort", key="state")  # the same header again: the other way
    assert kernel.value("t.look['descending']") is True and kernel.value(page)[0] != "d0003"
    ask(kernel, "sort", key="memory")  # another header: ascending again
    assert kernel.value("(t.look['sort'], t.look['descending'])") == ("memory", False)
    assert kernel.value("repr(t).splitlines()[0]") == (
        "DomainTable: 13 domains on test:///default (3 running, 10 shutoff)"
    )
    # a request no view sends changes nothing and raises nowhere
    ask(kernel, "sort", key="colour")
    ask(kernel, "turn")
    assert kernel.value("t.look['sort']") == "memory"


def test_a_change_no_event_announces_shows_at_the_next_full_read(kernel: Kernel) -> None:
    kernel.execute("t = DomainTable(c, resync=0.3)\ndisplay(t)").ok()
    assert kernel.value("[(r.state, r.reason) for r in t.rows()]") == [("running", "unknown")]
    assert kernel.value("t.page_rows[0][3:5]") == ["running", ""]  # "unknown" says nothing
    kernel.execute("dom.reboot()").ok()  # the test driver sends no event for it
    kernel.drain(1.0)
    assert kernel.value("[(r.state, r.reason) for r in t.rows()]") == [("running", "booted")]


def test_disconnect_closes_the_widgets_on_that_connection_first(kernel: Kernel) -> None:
    kernel.execute("%virt connect --rw --name a\nd = %virt dashboard\ndisplay(d)").ok()
    out = kernel.execute("%virt disconnect a").ok()
    assert out.stdout == "disconnected from test:///default\n" and not out.stderr
    assert kernel.value("(d.comm, d.table.comm, d.event_log.comm, d.usage.comm)") == (None,) * 4
