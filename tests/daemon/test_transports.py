"""One libvirtd, reached three ways: its UNIX socket, a real sshd (``test+ssh://``) and TLS
(``test+tls://``). Over each, ipyvirt lists domains, receives events live on its loop, the
daemon's keepalive pings are answered while nothing else happens, and calls from two threads
to a daemon that stops answering (SIGSTOP) wait and complete once it answers again.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator

import libvirt
import pytest

import ipyvirt
from ipyvirt.hub import Event
from ipyvirt.testing.libvirtd import Libvirtd
from ipyvirt.testing.pki import Pki
from ipyvirt.testing.sshd import Sshd

from inproc import Run, until
from transport import frozen

pytestmark = [pytest.mark.daemon]

# The daemon pings an idle client every second and drops it after two unanswered pings: a
# client whose loop did not answer would be closed within ~3 s of the test's idle wait.
KEEPALIVE = (1, 2)


@pytest.fixture(scope="module")
def pki(tls_host: None) -> Iterator[Pki]:
    p = Pki().make()
    yield p
    p.cleanup()


@pytest.fixture(scope="module")
def daemon(pki: Pki) -> Iterator[Libvirtd]:
    with Libvirtd(*KEEPALIVE, tls=pki.server) as d:
        yield d


@pytest.fixture(scope="module")
def sshd(ssh_host: None) -> Iterator[Sshd]:
    with Sshd() as s:
        s.accept_host_key()
        yield s


@pytest.fixture(params=["unix", "ssh", "tls"])
def uri(request: pytest.FixtureRequest, daemon: Libvirtd, pki: Pki) -> str:
    if request.param == "unix":
        return daemon.test_uri
    if request.param == "ssh":
        return request.getfixturevalue("sshd").uri(daemon.socket)  # type: ignore[no-any-return]
    return daemon.tls_uri(pki.client())


def _xml(name: str) -> str:
    return (
        f"<domain type='test'><name>{name}</name><memory unit='MiB'>64</memory>"
        "<os><type>hvm</type></os></domain>"
    )


def test_domains_listed_and_events_live(run: Run, daemon: Libvirtd, uri: str) -> None:
    name = f"ipyvirt-transport-{uuid.uuid4().hex[:8]}"
    seen: list[tuple[str, str]] = []

    def note(event: Event) -> None:
        seen.append((event.name, threading.current_thread().name))

    async def main() -> None:
        c = ipyvirt.Connection(uri=uri, readonly=False)
        try:
            assert not c.shares_connection, "ipyvirt opened its own watch connection"
            assert "test" in [d.name() for d in c.conn.listAllDomains()]
            c.subscribe(note, families=["domain"], kinds=["lifecycle"], subject=name)
            # acted on through the UNIX socket: the events cross the transport under test
            other = libvirt.open(daemon.test_uri)
            try:
                dom = other.defineXML(_xml(name))
                dom.create()
                dom.suspend()
                dom.resume()
                dom.destroy()
                dom.undefine()
            finally:
                other.close()
            await until(lambda: len(seen) >= 6, "six lifecycle events")
            assert c.host().uri == c.uri
        finally:
            c.close()

    run(main())
    names = ["defined", "started", "suspended", "resumed", "stopped", "undefined"]
    main_thread = threading.main_thread().name
    assert seen == [(n, main_thread) for n in names]


def test_idle_and_frozen(run: Run, daemon: Libvirtd, uri: str) -> None:
    closes: list[Event] = []

    async def main() -> None:
        c = ipyvirt.Connection(uri=uri)
        try:
            c.subscribe(closes.append, families=["connection"])
            # idle for twice the daemon's patience: its pings are answered on ipyvirt's loop
            await asyncio.sleep(2 * KEEPALIVE[0] * (KEEPALIVE[1] + 1))
            assert closes == [], [str(e) for e in closes]
            assert c.reader.isAlive() == 1
            names: list[list[str]] = []
            calls = [
                threading.Thread(
                    target=lambda: names.append([d.name() for d in c.reader.listAllDomains()])
                )
                for _ in range(2)
            ]
            with frozen(daemon):
                for t in calls:
                    t.start()
                await asyncio.sleep(2)
                assert names == [] and all(t.is_alive() for t in calls)
            for t in calls:
                await asyncio.to_thread(t.join, 10)
            assert names == [["test"], ["test"]]
            assert closes == [] and c.reconnects == 0
        finally:
            c.close()

    run(main())


def test_a_host_whose_sshd_dies_comes_back(run: Run, daemon: Libvirtd, sshd: Sshd) -> None:
    """sshd killed with the connections it serves (the daemon behind it fine): ipyvirt sees
    the connection end, and reconnects once sshd listens on its port again."""
    events: list[Event] = []

    async def main() -> None:
        c = ipyvirt.Connection(uri=sshd.uri(daemon.socket))
        try:
            c.subscribe(events.append, families=["connection"])
            sshd.kill()
            await until(lambda: bool(events), "the close")
            assert [e.name for e in events] == ["closed"], [str(e) for e in events]
            sshd.start()
            await until(lambda: c.reconnects == 1, "the reconnection")
            assert [e.name for e in events] == ["closed", "reconnected"]
            assert "test" in [d.name() for d in c.reader.listAllDomains()]
        finally:
            c.close()

    run(main())


def test_a_fleet_over_the_socket_ssh_and_tls_at_once(
    run: Run, daemon: Libvirtd, pki: Pki, sshd: Sshd
) -> None:
    """`%virt fleet add` with a unix, an ssh and a tls URI: one fleet, every host connected
    with its health, one subscription hearing each host, an action routed to the host it
    names (here the ssh one). The three hosts are one daemon reached three ways, so a change
    made through one is heard on all three."""
    name = f"ipyvirt-fleet-{uuid.uuid4().hex[:8]}"
    uris = {
        "unix": daemon.test_uri,
        "ssh": sshd.uri(daemon.socket),
        "tls": daemon.tls_uri(pki.client()),
    }

    async def main() -> None:
        fleet = ipyvirt.Fleet([f"{k}={u}" for k, u in uris.items()], readonly=False)
        seen: list[Event] = []
        fleet.subscribe(
            lambda e: seen.append(e) if e.subject == name else None,
            families=["domain"],
            kinds=["lifecycle"],
        )
        try:
            await fleet.settled()
            await until(lambda: all(r.rtt_ms is not None for r in fleet.health()), "probes")
            records = {r.name: r for r in fleet.health()}
            assert {n: r.health for n, r in records.items()} == dict.fromkeys(uris, "connected")
            assert all(r.domains is not None and r.domains >= 1 for r in records.values())
            via_ssh = fleet["ssh"].connection
            assert via_ssh is not None and via_ssh.uri.startswith("test+ssh://")
            dom = via_ssh.conn.defineXML(_xml(name))
            dom.create()
            await until(
                lambda: len({e.connection for e in seen if e.name == "started"}) == 3,
                "the start heard over every transport",
            )
            dom.destroy()
            dom.undefine()
            await until(
                lambda: len({e.connection for e in seen if e.name == "undefined"}) == 3,
                "the undefine heard over every transport",
            )
        finally:
            fleet.close()

    run(main())
