"""Stress: a fleet host removed while its probe's thread is inside a call on its connection.

``virConnect.close()`` frees the connection under any other thread still calling on it
(libvirt-python's close drops the reference a call does not hold: SIGSEGV, or a hang). The
invariant (``FleetHost.close``): a host's connection is closed only after its probe's thread
has returned from its calls. Each round removes a host at the moment a probe is under way
on a daemon of 300 domains (a bulk stats call of a few ms), until 50 removals have met one:
how many rounds that takes depends on the machine's load (a CI run on a busy machine met a
probe in 40 of 100 rounds), so the rounds go on, up to 1,000, rather than a share being
asserted.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import libvirt
import pytest

import ipyvirt
from ipyvirt.testing.libvirtd import Libvirtd, minimal_domain_xml

from inproc import Run, until

pytestmark = [pytest.mark.stress, pytest.mark.daemon]

#: removals that must meet a probe under way
CAUGHT = 50
#: rounds at most to get there
ROUNDS = 1000


@pytest.fixture(scope="module")
def daemon() -> Iterator[Libvirtd]:
    with Libvirtd() as d:
        conn = libvirt.open(d.test_uri)
        try:
            for i in range(300):
                conn.defineXML(minimal_domain_xml(f"d{i:03}"))
        finally:
            conn.close()
        yield d


def test_remove_a_host_whose_probe_is_under_way(run: Run, daemon: Libvirtd) -> None:
    async def go() -> None:
        fleet = ipyvirt.Fleet(probe=0.001)  # a probe starts as soon as the last one ended
        caught = r = 0
        while caught < CAUGHT:
            assert r < ROUNDS, f"only {caught} of {r} removals met a probe under way"
            r += 1
            (host,) = fleet.add(f"h{r}={daemon.test_uri}")
            await until(lambda h=host: h.health == "connected" and h.last is not None, "a probe")
            await until(lambda h=host: h._probing_since is not None, "a probe under way")
            await asyncio.sleep(random.random() * 0.004)  # into its calls
            caught += host._probing_since is not None
            fleet.remove(host.name)
            conn = host.connection
            assert conn is not None and conn.closed_reason == "client"
        fleet.close()

    run(go())
