"""The fleet's widgets in process over real test libvirtds: one table over every host with
its host column and filter, actions routed to each row's host, one event log."""

from __future__ import annotations

from collections.abc import Iterator

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
    table = FleetTable(fleet)

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
    table = FleetTable(fleet, interval=0.2)

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
