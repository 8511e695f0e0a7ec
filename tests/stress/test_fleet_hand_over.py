"""Stress: a Fleet changed from many threads while its hosts open on threads of their own.

A cell on a kernel subshell may add or remove hosts while the main loop opens, probes and
reconnects them. The invariant (``Fleet._on_main``): the hosts, their timers and the
listeners change on the main loop's thread only; add and remove from another thread hand
over, in order. Afterwards every host added and not removed is connected, every removed
host's connection is closed, and every listener ran on the main thread.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

import ipyvirt
from ipyvirt.fleet_host import FleetHost

from hammering import hammer, jitter
from inproc import Run, until

pytestmark = pytest.mark.stress

THREADS = 6
ROUNDS = 15


def test_add_and_remove_from_many_threads(run: Run) -> None:
    main = threading.current_thread().name
    heard_on: set[str] = set()
    removed: list[FleetHost] = []

    async def go() -> None:
        fleet = ipyvirt.Fleet(probe=0.01)  # probes all the while
        fleet.listen(lambda host: heard_on.add(threading.current_thread().name))

        def work(i: int) -> None:
            for r in range(ROUNDS):
                (host,) = fleet.add(f"t{i}-{r}=test:///default")
                jitter()
                if r % 2:
                    fleet.remove(host.name)  # handed over after the add, in order
                    removed.append(host)

        await asyncio.get_running_loop().run_in_executor(None, hammer, THREADS, work)
        kept = {f"t{i}-{r}" for i in range(THREADS) for r in range(ROUNDS) if not r % 2}
        await until(lambda: set(fleet.hosts) == kept, "the hand-overs")
        await until(
            lambda: all(h.health == "connected" for h in fleet.hosts.values()), "every host open"
        )
        # a host removed while its open was under way: the late connection was closed
        await until(
            lambda: all(
                h.connection is None or h.connection.closed_reason == "client" for h in removed
            ),
            "every removed host closed",
        )
        fleet.close()
        await until(lambda: not fleet.hosts, "the close")

    run(go())
    assert heard_on == {main}
