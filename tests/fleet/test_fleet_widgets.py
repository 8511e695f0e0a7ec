"""The fleet's widgets in process over real test libvirtds: one table over every host with
its host column and filter, actions routed to each row's host, one event log."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from ipyvirt import Fleet
from ipyvirt.widgets import EventLog, FleetDashboard, FleetTable

from inproc import Run, until
from libvirtd import Libvirtd

pytestmark = pytest.mark.daemon


@pytest.fixture(scope="module")
def daemons() -> Iterator[list[Libvirtd]]:
    started: list[Libvirtd] = []
    try:
        for _ in range(3):
            started.append(Libvirtd().start())
        yield started
    finally:
        for d in started:
            d.cleanup()


def _define(uri: str, names: list[str]) -> libvirt.virConnect:
    """Define and start *names* on *uri*; the connection returned keeps them: the test
    driver forgets what was done to its default hypervisor once its last client left."""
    conn = libvirt.open(uri)
    for name in names:
        conn.defineXML(
            f"<domain type='test'><name>{name}</name><memory>65536</memory>"
            "<os><type>hvm</type></os></domain>"
        ).create()
    return conn


def test_one_table_over_every_host_acts_on_the_right_host(
    run: Run, daemons: list[Libvirtd]
) -> None:
    keeper = _define(daemons[1].test_uri, ["web1", "web2"])
    fleet = Fleet([f"h{i}={d.test_uri}" for i, d in enumerate(daemons)], readonly=False)
    table = FleetTable(fleet, group=False)  # a host column (grouping: the test below)

    def ask(do: str, **fields: object) -> None:  # what the view sends, as the comm hands it
        table._received(table, {"do": do, **fields}, [])

    async def scenario() -> None:
        await fleet.settled()
        await until(lambda: len(table.rows()) == 5 and table.settled, "every host's rows")
        assert sorted((r.host, r.name) for r in table.rows()) == [
            ("h0", "test"), ("h1", "test"), ("h1", "web1"), ("h1", "web2"), ("h2", "test")
        ]  # fmt: skip
        assert table.hosts == ["h0", "h1", "h2"]
        assert table.summary.startswith("5 domains on 3 hosts (3 connected)")
        # every row carries its host last; the test domain's UUID is the same on each host
        assert {tuple(r[-1:]) for r in table.page_rows} == {("h0",), ("h1",), ("h2",)}
        assert len({r[0] for r in table.page_rows}) == 5
        ask("look", host_filter="h1")
        assert [r[1] for r in table.page_rows] == ["test", "web1", "web2"]
        assert table.look["host_filter"] == "h1"
        key = next(r[0] for r in table.page_rows if r[1] == "test")
        ask("select", uuid=key, on=True)
        ask("act", action="suspend")
        await until(lambda: table.settled and "done" in table.outcome, "the suspend")
        await until(
            lambda: [r.state for r in table.rows() if r.name == "test"].count("paused") == 1,
            "the paused row",
        )
        states = {
            i: libvirt.openReadOnly(d.test_uri).lookupByName("test").state()[0]
            for i, d in enumerate(daemons)
        }
        running, paused = libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_PAUSED
        assert states == {0: running, 1: paused, 2: running}
        ask("sort", key="host")
        ask("look", host_filter="")
        assert [r[-1] for r in table.page_rows] == ["h0", "h1", "h1", "h1", "h2"]
        fleet.remove("h1")
        assert sorted(r.host for r in table.rows()) == ["h0", "h2"]
        await until(lambda: table.hosts == ["h0", "h2"], "the host list")

    try:
        run(scenario())
    finally:
        table.close()
        fleet.close()
        keeper.close()  # and the test driver forgets web1, web2 and the pause


def test_removing_a_frozen_host_holds_no_cell(run: Run, daemons: list[Libvirtd]) -> None:
    """A frozen host removed while its probe, the table's re-read of it and an action's
    lookup wait on it: remove() returns while the daemon is still frozen (the deregistrations
    and the close wait for it, on a thread of their own, after those calls), the loop goes
    on, and once the daemon answers the connection is closed: none of those calls ran on it
    after that (each holds a lease, and the close waited for all three)."""
    frozen = daemons[0]
    pid = frozen.pid
    assert pid is not None
    fleet = Fleet(
        [f"frozen={frozen.test_uri}", f"live={daemons[1].test_uri}"], readonly=False, timeout=0.3
    )
    table = FleetTable(fleet, group=False)
    thawed = threading.Event()
    # a bound on a hang: a remove() that waited for the daemon would return only then
    safety = threading.Timer(20, lambda: (thawed.set(), os.kill(pid, signal.SIGCONT)))

    def ask(do: str, **fields: object) -> None:
        table._received(table, {"do": do, **fields}, [])

    async def scenario() -> None:
        await fleet.settled()
        await until(lambda: len(table.rows()) == 2 and table.settled, "both hosts' rows")
        host, conn = fleet["frozen"], fleet["frozen"].connection
        assert conn is not None
        key = next(r[0] for r in table.page_rows if r[-1] == "frozen")
        ask("select", uuid=key, on=True)
        os.kill(pid, signal.SIGSTOP)
        safety.start()
        try:
            ask("act", action="suspend")  # its lookup waits on the frozen daemon
            table._sources["frozen"].resync_all()  # and a re-read
            await until(lambda: host.health.startswith("not responding"), "silence")
            await until(lambda: conn.leases.held == 3, "the probe, the re-read, the lookup")
            fleet.remove("frozen")
            assert not thawed.is_set()  # returned while the daemon was still frozen
            assert conn.closed_reason == "client" and "frozen" not in fleet.hosts
            assert conn.closer is not None
            await asyncio.sleep(0.3)  # the loop runs on: the other host is probed meanwhile
            assert conn.closer.is_alive() and conn.leases.held == 3
            assert fleet["live"].health == "connected"
            assert [r.host for r in table.rows()] == ["live"]
        finally:
            safety.cancel()
            os.kill(pid, signal.SIGCONT)
        await until(lambda: conn.closer is not None and not conn.closer.is_alive(), "the close")
        assert conn.leases.held == 0 and conn.leases.closing
        with pytest.raises(libvirt.libvirtError):
            conn.reader.getLibVersion()  # closed
        await until(lambda: table.settled, "the action's end")

    try:
        run(scenario())
    finally:
        table.close()
        fleet.close()


def test_grouped_by_host_a_header_per_host_that_folds(
    run: Run, daemons: list[Libvirtd], tmp_path: Path
) -> None:
    keeper = _define(daemons[1].test_uri, ["web1", "web2"])
    missing = f"gone=test+unix:///default?socket={tmp_path}/gone/libvirt-sock"
    uris = [f"h{i}={d.test_uri}" for i, d in enumerate(daemons)]
    fleet = Fleet([*uris, missing], readonly=False)
    table = FleetTable(fleet, page_size=4)

    def ask(do: str, **fields: object) -> None:
        table._received(table, {"do": do, **fields}, [])

    def lines() -> list[object]:  # a header: host, health, shown, total, states, folded,
        return [  # continued from the page before
            tuple(r[1:8]) if r[0] is None else r[1] for r in table.page_rows
        ]  # fmt: skip

    async def scenario() -> None:
        await fleet.settled()
        await until(lambda: len(table.rows()) == 5 and table.settled, "every host's rows")
        h0, h1, h2 = (
            (f"h{i}", "connected", n, n, [["running", n]], 0, 0) for i, n in enumerate((1, 3, 1))
        )
        gone, *rest = lines()
        assert isinstance(gone, tuple) and gone[1].startswith("failed (")
        assert (gone[0], *gone[2:]) == ("gone", 0, 0, [], 0, 0)
        assert rest == [h0, "test", h1]
        assert table.pager == {"label": "1-1 of 5 on 4 hosts", "page": 0, "pages": 3}
        ask("turn", step=1)  # h1's rows go on from the page before: its header again
        assert lines() == [(*h1[:6], 1), "test", "web1", "web2", h2]
        assert table.pager["label"] == "2-4 of 5 on 4 hosts"
        ask("turn", step=1)
        assert lines() == [(*h2[:6], 1), "test"]
        ask("collapse", host="h1", on=True)  # two pages now: the page turns back
        assert table.look["collapsed"] == ["h1"] and table.pager["pages"] == 2
        assert lines() == [h2, "test"]
        ask("turn", step=-1)
        assert lines()[1:] == [h0, "test", (*h1[:5], 1, 0)]
        ask("select_all", on=True)  # a folded host's domains are not selected
        assert {r.host for r in table.rows() if r.key in table.selected} == {"h0", "h2"}
        assert table.selection == {"selected": 2, "shown": 2}
        ask("select_all", on=False)
        ask("collapse", on=False)  # every host unfolds
        ask("look", name_filter="web")  # hosts with nothing to show have no header
        assert lines() == [("h1", "connected", 2, 3, [["running", 2]], 0, 0), "web1", "web2"]
        ask("look", name_filter="", host_filter="h2")
        assert lines() == [h2, "test"]
        ask("look", host_filter="", group=False)  # the host column again
        ask("sort", key="host")
        assert [r[-1] for r in table.page_rows] == ["h0", "h1", "h1", "h1"]
        for name in ("gone", "h0", "h1", "h2"):
            fleet.remove(name)
        await until(lambda: table.empty.startswith("No host in the fleet"), "the empty text")
        assert table.page_rows == [] and table.empty.endswith("%virt fleet add URI... adds some.")

    try:
        run(scenario())
    finally:
        table.close()
        fleet.close()
        keeper.close()


def test_read_only_hosts_say_why_no_action(run: Run, daemons: list[Libvirtd]) -> None:
    fleet = Fleet([f"h{i}={d.test_uri}" for i, d in enumerate(daemons)])
    table = FleetTable(fleet)

    async def scenario() -> None:
        await until(lambda: len(table.rows()) == 3, "every host's rows")
        table.model.select_all()
        await until(lambda: table.settled, "the redraw")  # coalesced, as every model change
        assert table.buttons["suspend"] == (
            "read-only host h0, h1, h2: %virt fleet add --rw to act"
        )

    try:
        run(scenario())
    finally:
        table.close()
        fleet.close()


def test_changes_on_many_hosts_make_one_redraw(run: Run, daemons: list[Libvirtd]) -> None:
    """A fleet's hosts each re-read at most 20 times a second; their changes together are
    one redraw (one comm message), not one per host. What the view asks for shows at once."""
    fleet = Fleet([f"h{i}={d.test_uri}" for i, d in enumerate(daemons)])
    table = FleetTable(fleet, interval=0.2, group=False)  # rows only, a host column

    async def scenario() -> None:
        await until(lambda: len(table.rows()) == 3 and table.settled, "every host's rows")
        redraws = table._redraw.flushes
        for host in ("h0", "h1", "h2"):  # as three hosts' reads applied in one loop turn
            table.model.set_state("test", "paused", "user", host)
        assert [r[3] for r in table.page_rows] == ["running"] * 3  # not yet: coalesced
        await until(lambda: table.settled, "the redraw")
        assert table._redraw.flushes == redraws + 1
        assert [r[3] for r in table.page_rows] == ["paused"] * 3
        table._received(table, {"do": "sort", "key": "host"}, [])
        assert [r[-1] for r in table.page_rows] == ["h0", "h1", "h2"]
        table._received(table, {"do": "sort", "key": "host"}, [])  # descending, at once
        assert [r[-1] for r in table.page_rows] == ["h2", "h1", "h0"]

    try:
        run(scenario())
    finally:
        table.close()
        fleet.close()


def test_one_event_log_for_every_host(run: Run, daemons: list[Libvirtd]) -> None:
    fleet = Fleet([f"h{i}={d.test_uri}" for i, d in enumerate(daemons)], readonly=False)
    dash: list[FleetDashboard] = []

    async def scenario() -> None:
        await fleet.settled()
        dash.append(FleetDashboard(fleet))
        log = dash[0].event_log
        assert isinstance(log, EventLog) and log.columns[:3] == ["time", "host", "family"]
        for name in ("h0", "h2"):
            conn = fleet[name].connection
            assert conn is not None
            conn.domain("test").suspend()
            conn.domain("test").resume()
        await until(lambda: len(log.rows) == 4, "four events")
        assert sorted((r[2], r[5]) for r in log.rows) == [
            ("h0", "resumed"), ("h0", "suspended"), ("h2", "resumed"), ("h2", "suspended")
        ]  # fmt: skip
        await until(lambda: len(dash[0].health.rows) == 3, "the health rows")
        assert [r[2] for r in dash[0].health.rows] == ["connected"] * 3

    try:
        run(scenario())
    finally:
        for d in dash:
            d.close()
        fleet.close()
