"""A fleet of real test libvirtds in this process: add, remove, list, health, events, actions,
and daemons killed, frozen and restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator

import libvirt
import pytest

from ipyvirt import Fleet
from ipyvirt.fleet_host import HEALTH_COLUMNS
from ipyvirt.hub import Event

from inproc import Run, until
from libvirtd import Libvirtd

pytestmark = pytest.mark.daemon


@pytest.fixture
def daemons() -> Iterator[list[Libvirtd]]:
    """Four libvirtds of this test's own (they get killed and frozen)."""
    started: list[Libvirtd] = []
    try:
        for _ in range(4):
            started.append(Libvirtd().start())
        yield started
    finally:
        for d in started:
            if d.pid is not None:
                try:
                    os.kill(d.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            d.cleanup()


def _names(fleet: Fleet, health: str) -> list[str]:
    return [r.name for r in fleet.health() if r.health.startswith(health)]


def test_add_list_and_remove(run: Run, daemons: list[Libvirtd], tmp_path: object) -> None:
    async def go() -> None:
        uris = [f"h{i}={d.test_uri}" for i, d in enumerate(daemons)]
        missing = f"test+unix:///default?socket={tmp_path}/gone/libvirt-sock"
        fleet = Fleet([*uris, missing], probe=0.1)
        # add returned at once: nothing is open yet
        assert {r.health for r in fleet.health()} == {"connecting"}
        await fleet.settled()
        assert _names(fleet, "connected") == ["h0", "h1", "h2", "h3"]
        gone = fleet["gone"].record()
        assert gone.health.startswith("failed (") and "next try in" in gone.health
        assert "\n" not in gone.health and "libvirt-sock" in gone.health
        await until(lambda: all(r.rtt_ms is not None for r in fleet.health()[1:]), "probes")
        h0 = fleet["h0"].record()
        major, rest = divmod(libvirt.getVersion(), 1_000_000)
        assert h0.libvirt == f"{major}.{rest // 1000}.{rest % 1000}"
        assert h0.domains == 1  # the test driver's "test"
        table = fleet.list()
        assert table.columns == HEALTH_COLUMNS
        text = repr(table)
        assert text.startswith("fleet: 5 hosts, 4 connected")
        assert text.splitlines()[1].startswith("host  ")
        assert h0.running == 1 and h0.cpu_percent is None  # the test driver's stats: no CPU
        conn = fleet["h1"].connection
        assert conn is not None
        fleet.remove("h1")
        assert "h1" not in fleet.hosts and conn.closed_reason == "client"
        with pytest.raises(ValueError, match="named h0 already"):
            fleet.add(daemons[0].test_uri.replace("?", "?x=1&"), "h0=test:///default")
        fleet.close()

    run(go())


def test_killed_daemon_reconnects_on_its_own(run: Run, daemons: list[Libvirtd]) -> None:
    async def go() -> None:
        fleet = Fleet([f"h{i}={d.test_uri}" for i, d in enumerate(daemons)], probe=0.1)
        await fleet.settled()
        daemons[2].kill()
        await until(lambda: fleet["h2"].health.startswith("reconnecting"), "h2 reconnecting")
        assert "next try in" in fleet["h2"].health or "trying now" in fleet["h2"].health
        assert _names(fleet, "connected") == ["h0", "h1", "h3"]
        daemons[2].start()
        await until(lambda: fleet["h2"].health == "connected", "h2 back")
        conn = fleet["h2"].connection
        assert conn is not None and conn.reconnects == 1
        fleet.close()

    run(go())


def test_every_daemon_killed_reconnects_spread_over_time(run: Run, daemons: list[Libvirtd]) -> None:
    """Killed together, the hosts plan their next tries at different moments (jitter)."""

    async def go() -> None:
        fleet = Fleet([f"h{i}={d.test_uri}" for i, d in enumerate(daemons)], probe=0.1)
        await fleet.settled()
        conns = list(fleet.connections().values())
        back: dict[str, float] = {}
        for c in conns:
            c.subscribe(
                lambda e, name=c.name: back.setdefault(name, fleet.runtime.main_loop.time()),
                kinds=["reconnect"],
            )
        for d in daemons:
            d.kill()
        await until(lambda: all(c.retry_at is not None for c in conns), "every host to plan")
        planned = sorted(c.retry_at or 0.0 for c in conns)
        # equal jitter: each first try drawn over [0.25, 0.5] s after its close
        assert len(set(planned)) == len(planned)
        assert planned[-1] - planned[0] > 0.01, planned
        for d in daemons:
            d.start()
        await until(lambda: len(back) == len(conns), "every host back", timeout=60)
        assert _names(fleet, "connected") == ["h0", "h1", "h2", "h3"]
        spread = max(back.values()) - min(back.values())
        print(f"reconnects spread over {spread * 1000:.0f} ms")
        fleet.close()

    run(go())


def test_a_frozen_host_blocks_neither_cells_nor_others(run: Run, daemons: list[Libvirtd]) -> None:
    async def go() -> None:
        frozen = daemons[0]
        assert frozen.pid is not None
        os.kill(frozen.pid, signal.SIGSTOP)
        fleet = Fleet([f"frozen={frozen.test_uri}", f"ok={daemons[1].test_uri}"], timeout=0.3)
        await until(lambda: fleet["ok"].health == "connected", "the other host")
        await until(lambda: fleet["frozen"].health.startswith("not responding"), "the frozen one")
        os.kill(frozen.pid, signal.SIGCONT)
        await until(lambda: fleet["frozen"].health == "connected", "the thawed one")
        fleet.close()

    run(go())


def test_a_frozen_hosts_calls_wait_and_complete_when_it_thaws(
    run: Run, daemons: list[Libvirtd]
) -> None:
    """Calls on a frozen daemon's connection from several threads at once (its probe, and two
    more as a table's re-read and an action make them) wait, the host says "not responding",
    and when the daemon thaws every call completes on the same connection: no close, no
    reconnection. With libvirt's client keepalive on, the same freeze kills the process
    (tests/daemon/test_libvirt_keepalive.py), which is why ipyvirt leaves it off."""

    async def go() -> None:
        frozen, live = daemons[0], daemons[1]
        assert frozen.pid is not None
        fleet = Fleet(
            [f"frozen={frozen.test_uri}", f"live={live.test_uri}"], timeout=0.3, probe=0.2
        )
        await fleet.settled()
        conn = fleet["frozen"].connection
        assert conn is not None
        closes: list[Event] = []
        conn.subscribe(closes.append, kinds=["close", "reconnect"])
        outcomes: list[object] = []

        def call() -> None:
            try:
                outcomes.append(len(conn.reader.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE)))
            except libvirt.libvirtError as err:
                outcomes.append(err.get_error_message())

        os.kill(frozen.pid, signal.SIGSTOP)
        try:
            calls = [threading.Thread(target=call) for _ in range(2)]
            for t in calls:
                t.start()
            await until(lambda: fleet["frozen"].health.startswith("not responding"), "silence")
            await asyncio.sleep(3)  # longer than a 1 s x 1 keepalive would wait
            assert outcomes == [] and all(t.is_alive() for t in calls)
            assert fleet["live"].health == "connected"
        finally:
            os.kill(frozen.pid, signal.SIGCONT)
        for t in calls:
            await asyncio.to_thread(t.join, 10)
        assert outcomes == [1, 1], outcomes  # the test driver's one domain, "test"
        await until(lambda: fleet["frozen"].health == "connected", "the thawed one")
        assert closes == [] and conn.reconnects == 0 and fleet["frozen"].connection is conn
        fleet.close()

    run(go())


def test_probes_spread_over_the_interval(run: Run, daemons: list[Libvirtd]) -> None:
    """Each probe starts a thread (and waits until it runs): a fleet's probes start one host
    at a time over the interval, not all in one loop callback; none after close()."""

    async def go() -> None:
        fleet = Fleet([f"h{i}={d.test_uri}" for i, d in enumerate(daemons)], probe=3600)
        hosts = list(fleet.hosts.values())
        await until(
            lambda: all(h.last is not None and h._probing_since is None for h in hosts),
            "every host's first probe",
        )
        fleet._probe_all()  # what the timer does every *probe* seconds
        assert [h._probing_since is not None for h in hosts] == [True, False, False, False]
        fleet._probe_one(hosts[1])  # its turn, 900 s later
        assert hosts[1]._probing_since is not None
        await until(lambda: all(h._probing_since is None for h in hosts), "the two probes")
        fleet.close()
        fleet._probe_one(hosts[2])  # a turn still scheduled when the fleet closed
        assert hosts[2]._probing_since is None

    run(go())


def test_events_of_every_host_in_one_subscription_and_actions_routed(
    run: Run, daemons: list[Libvirtd]
) -> None:
    async def go() -> None:
        fleet = Fleet([f"h{i}={d.test_uri}" for i, d in enumerate(daemons)], readonly=False)
        seen: list[Event] = []
        fleet.subscribe(seen.append, families=["domain"])  # before they connect
        await fleet.settled()
        assert _names(fleet, "connected") == ["h0", "h1", "h2", "h3"], fleet.list()
        for name in ("h1", "h3"):
            conn = fleet[name].connection
            assert conn is not None
            conn.domain("test").suspend()
        await until(lambda: len(seen) >= 2, "both events")
        assert sorted((e.connection, e.subject, e.name) for e in seen) == [
            ("h1", "test", "suspended"),
            ("h3", "test", "suspended"),
        ]
        for i, d in enumerate(daemons):
            state = libvirt.openReadOnly(d.test_uri).lookupByName("test").state()[0]
            paused = i in (1, 3)
            assert state == (libvirt.VIR_DOMAIN_PAUSED if paused else libvirt.VIR_DOMAIN_RUNNING)
        # the same events for analysis: records and a DataFrame, a host per row
        uris = {f"h{i}": d.test_uri for i, d in enumerate(daemons)}
        suspended = [
            (r["connection"], r["host"])
            for r in fleet.to_records()
            if r["family"] == "domain" and r["name"] == "suspended"
        ]
        assert sorted(suspended) == [("h1", uris["h1"]), ("h3", uris["h3"])]
        frame = fleet.to_pandas()
        rows = frame[frame["name"] == "suspended"]
        assert sorted(zip(rows["connection"], rows["host"], strict=True)) == sorted(suspended)
        assert list(frame["seq"]) == sorted(frame["seq"])  # oldest first, across hosts
        fleet.close()

    run(go())


def test_fifty_daemons_in_one_fleet(run: Run) -> None:
    """The issue's scale in a test (its speed is benchmarks/fleet.py's): 50 libvirtds of this
    test's own, one fleet, every host connected, a domain defined on each heard from each
    host in one subscription, and every host's probe counting it."""
    started: list[Libvirtd] = []
    try:
        for _ in range(50):
            started.append(Libvirtd().start())

        async def go() -> None:
            fleet = Fleet([f"h{i:02d}={d.test_uri}" for i, d in enumerate(started)], timeout=10)
            seen: set[str] = set()
            fleet.subscribe(
                lambda e: seen.add(e.connection) if e.subject == "fifty" else None,
                families=["domain"],
            )
            await fleet.settled()
            assert len(_names(fleet, "connected")) == 50, fleet.list()
            for d in started:
                conn = libvirt.open(d.test_uri)
                conn.defineXML(
                    "<domain type='test'><name>fifty</name><memory>65536</memory>"
                    "<os><type>hvm</type></os></domain>"
                )
                conn.close()
            await until(lambda: len(seen) == 50, "a define heard from every host")
            counts = {r.name: r.domains for r in fleet.health()}
            await until(
                lambda: all(r.domains == 2 for r in fleet.health()),
                f"every host counting test and fifty: {counts}",
            )
            fleet.close()

        run(go())
    finally:
        for d in started:
            d.cleanup()
