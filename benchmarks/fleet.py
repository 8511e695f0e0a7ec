"""A fleet of N test-driver libvirtds held by one process: connect, 10,000 domains, an event
storm, every daemon killed and restarted.

The parent starts the daemons (``ipyvirt.testing.libvirtd.Libvirtd``), defines the domains
over each daemon's socket (a node XML file would give each connection a private copy, so
events would reach only the connection that caused them), keeping one connection per daemon
open (libvirt's test driver forgets its default hypervisor once its last client leaves), and
causes the events. A child process holds the fleet (``ipyvirt.start()``, an
``ipyvirt.Fleet``, a ``FleetTable``) and measures:

- time to connect every host (``Fleet(uris)`` until every host is connected), its RSS and
  open fds per host;
- time until the fleet table holds every domain (one read per host, off the loop);
- events received per second while the parent suspends and resumes domains from 8 threads
  for a few seconds, and how many of those it caused were lost;
- every daemon killed at once, then restarted: time until every host is back and its rows
  equal a fresh query, and how the hosts' reconnections spread over time (jitter).

Usage: ``python benchmarks/fleet.py [--hosts 10,100] [--domains 10000] [--storm 5]
[--markdown]``. Needs root (libvirtd).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import ROOT, print_table

sys.path.insert(0, str(ROOT / "src"))

DOMAIN = (
    "<domain type='test'><name>{name}</name><memory>65536</memory>"
    "<os><type>hvm</type></os></domain>"
)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the child: the fleet --------------------------------------------------------------------


async def _child(uris: list[str], domains: int) -> None:
    import libvirt

    import ipyvirt
    from ipyvirt.widgets import FleetTable

    libvirt.registerErrorHandler(lambda *a: None, None)
    loop = asyncio.get_running_loop()
    ipyvirt.start(loop)
    commands: asyncio.Queue[str] = asyncio.Queue()
    threading.Thread(
        target=lambda: [loop.call_soon_threadsafe(commands.put_nowait, ln) for ln in sys.stdin],
        daemon=True,
    ).start()

    def say(**values: Any) -> None:
        print(json.dumps(values), flush=True)

    async def until(done: Any, timeout: float) -> float:
        start = loop.time()
        while not done():
            if loop.time() - start > timeout:
                raise TimeoutError
            await asyncio.sleep(0.005)
        return loop.time() - start

    rss0, fds0 = _rss_mib(), len(os.listdir("/proc/self/fd"))
    start = time.perf_counter()
    fleet = ipyvirt.Fleet(uris, probe=3600)  # probes are not what is measured here
    await until(lambda: all(h.connection is not None for h in fleet.hosts.values()), 120)
    connect = time.perf_counter() - start
    fds = len(os.listdir("/proc/self/fd")) - fds0
    rss_connected = _rss_mib()
    start = time.perf_counter()
    table = FleetTable(fleet, page_size=50)
    await until(lambda: len(table.rows()) == domains and table.settled, 300)
    loaded = time.perf_counter() - start
    received = [0]
    fleet.subscribe(lambda e: received.__setitem__(0, received[0] + 1), families=["domain"])
    say(
        connect=connect,
        fds_per_host=fds / len(uris),
        rss_before=rss0,
        rss_connected=rss_connected,
        table=loaded,
        rss_table=_rss_mib(),
    )

    caused = int(await commands.get())  # the storm is over
    try:
        await until(lambda: received[0] >= caused, 30)
    except TimeoutError:
        pass
    say(received=received[0])

    closed: dict[str, float] = {}
    back: dict[str, float] = {}
    for name, conn in fleet.connections().items():
        conn.subscribe(
            lambda e, n=name: (closed if e.kind == "close" else back).setdefault(n, loop.time()),
            families=["connection"],
        )
    say(ready=True)
    await commands.get()  # every daemon killed
    await until(lambda: len(closed) == len(uris), 60)
    planned = [c.retry_at for c in fleet.connections().values() if c.retry_at is not None]
    say(closed=True)
    await commands.get()  # every daemon started again
    restarted = loop.time()
    from ipyvirt.domains import query_all

    def fresh() -> bool:
        want = sorted(
            (name, r.name, r.state)
            for name, c in fleet.connections().items()
            for r in query_all(c.reader).values()
        )
        return sorted((r.host, r.name, r.state) for r in table.rows()) == want

    await until(lambda: len(back) == len(uris) and table.settled, 120)
    await until(fresh, 60)
    say(
        back=loop.time() - restarted,
        spread=max(back.values()) - min(back.values()),
        planned_spread=(max(planned) - min(planned)) if planned else 0.0,
        rss_end=_rss_mib(),
    )
    table.close()
    fleet.close()
    ipyvirt.stop()


# -- the parent: daemons, domains, events ----------------------------------------------------


def _storm(conns: list[Any], names: list[list[str]], seconds: float) -> tuple[int, float]:
    """Suspend and resume running domains from 8 threads for *seconds*: (events, seconds)."""
    stop = time.monotonic() + seconds
    counts = [0] * 8

    def work(worker: int) -> None:
        i = worker
        while time.monotonic() < stop:
            host = i % len(conns)
            dom = conns[host].lookupByName(names[host][(i // len(conns)) % len(names[host])])
            dom.suspend()
            dom.resume()
            counts[worker] += 2
            i += 8

    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    return sum(counts), time.monotonic() - start


def run(hosts: int, domains: int, storm: float) -> dict[str, Any]:
    import libvirt

    from ipyvirt.testing.libvirtd import Libvirtd

    libvirt.registerErrorHandler(lambda *a: None, None)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the parent's keepers
    start = time.perf_counter()
    daemons = [Libvirtd() for _ in range(hosts)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda d: d.start(), daemons))
    started = time.perf_counter() - start
    try:
        conns = [libvirt.open(d.test_uri) for d in daemons]
        per_host = domains // hosts
        names = [[f"d{h:03}-{i:04}" for i in range(per_host - 1)] for h in range(hosts)]

        def define(h: int) -> None:
            for name in names[h]:
                conns[h].defineXML(DOMAIN.format(name=name)).create()

        start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(define, range(hosts)))
        defined = time.perf_counter() - start
        total = sum(len(n) + 1 for n in names)  # and each daemon's own "test"
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", str(total), *(d.test_uri for d in daemons)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        said: dict[str, Any] = {}

        def hear() -> None:
            said.update(json.loads(child.stdout.readline()))  # type: ignore[union-attr]

        def tell(line: str) -> None:
            child.stdin.write(line + "\n")  # type: ignore[union-attr]
            child.stdin.flush()  # type: ignore[union-attr]

        hear()
        caused, took = _storm(conns, names, storm)
        tell(str(caused))
        hear()
        hear()  # ready
        for d in daemons:
            d.kill()
        tell("killed")
        hear()  # every host saw its close
        start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda d: d.start(), daemons))
        restart = time.perf_counter() - start
        tell("started")
        hear()
        child.stdin.close()
        child.wait(60)
        return {
            "hosts": hosts,
            "domains": total,
            "daemons_started": started,
            "defined": defined,
            "caused": caused,
            "storm_s": took,
            "restart": restart,
            **said,
        }
    finally:
        for d in daemons:
            d.cleanup()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", default="10,100", help="fleet sizes (default: 10,100)")
    parser.add_argument("--domains", type=int, default=10_000, help="in all (default: 10,000)")
    parser.add_argument("--storm", type=float, default=5.0, help="seconds of events (5)")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child(args.child[1:], int(args.child[0])))
        return
    results = [run(int(n), args.domains, args.storm) for n in args.hosts.split(",")]
    rows = []
    for r in results:
        lost = r["caused"] - r["received"]
        rows.append(
            (
                f"{r['hosts']} hosts x {r['domains'] // r['hosts']:,}",
                f"{r['daemons_started']:.2f}",
                f"{r['connect']:.2f}",
                f"{r['fds_per_host']:.1f}",
                f"{r['rss_connected'] - r['rss_before']:.1f}",
                f"{r['table']:.2f}",
                f"{r['rss_table']:.1f}",
                f"{r['received'] / r['storm_s']:,.0f}",
                f"{lost:,} of {r['caused']:,}",
                f"{r['back']:.2f}",
                f"{r['spread'] * 1000:.0f}",
            )
        )
    print_table(
        (
            "fleet",
            "daemons up s",
            "all connected s",
            "fds/host",
            "RSS for conns MiB",
            "table full s",
            "RSS MiB",
            "events/s",
            "lost",
            "all back s",
            "reconnect spread ms",
        ),
        rows,
        args.markdown,
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
