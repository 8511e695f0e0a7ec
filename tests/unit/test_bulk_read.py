"""The domain table's bulk read (``query_all``: one stats call, two filtered lists, an
``info()`` where the stats lack memory) against the plain read of each domain
(``query_domain``: state, info, autostart, persistent), on a libvirtd over its socket with
domains in every state the test driver has, autostart on some, transient ones among them."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator

import libvirt
import pytest

from ipyvirt.domains import query_all, query_all_with_handles, query_domain
from ipyvirt.testing.libvirtd import Libvirtd

XML = (
    "<domain type='test'><name>bulk-{n}</name><memory>{kib}</memory>"
    "<currentMemory>{cur}</currentMemory><vcpu current='{cur_vcpus}'>4</vcpu>"
    "<os><type>hvm</type></os></domain>"
)


@pytest.fixture
def conn(libvirtd: Libvirtd) -> Iterator[libvirt.virConnect]:
    libvirt.registerErrorHandler(lambda *a: None, None)
    c = libvirt.open(libvirtd.test_uri)
    yield c
    for dom in c.listAllDomains():
        if dom.name().startswith("bulk-"):
            persistent = dom.isPersistent()  # a transient one is gone once destroyed
            if dom.isActive():
                dom.destroy()
            if persistent:
                dom.undefine()
    c.close()


def _mixed(conn: libvirt.virConnect, count: int, rng: random.Random) -> None:
    """*count* domains in random states: shut off, running, paused, destroyed, transient."""
    for n in range(count):
        kib = rng.choice((65536, 131072, 262144))
        xml = XML.format(n=n, kib=kib, cur=kib // rng.choice((1, 2)), cur_vcpus=rng.randint(1, 4))
        if rng.random() < 0.15:
            dom = conn.createXML(xml)  # transient, running
        else:
            dom = conn.defineXML(xml)
            dom.setAutostart(rng.random() < 0.4)
            if rng.random() < 0.6:
                dom.create()
        if dom.isActive():
            roll = rng.random()
            if roll < 0.3:
                dom.suspend()
            elif roll < 0.45 and dom.isPersistent():
                dom.destroy()


def test_the_bulk_read_equals_reading_each_domain(conn: libvirt.virConnect) -> None:
    _mixed(conn, 60, random.Random(12))
    bulk = query_all(conn)
    plain = {row.uuid: row for row in map(query_domain, conn.listAllDomains())}
    assert bulk == plain
    states = {row.state for row in bulk.values()}
    assert {"running", "paused", "shutoff"} <= states  # the mix really has them all
    assert any(r.autostart for r in bulk.values()) and any(not r.persistent for r in bulk.values())
    assert {r.memory_mib for r in bulk.values()} >= {32, 64, 128}  # current, not maximum


def test_handles_are_the_rows_domains(conn: libvirt.virConnect) -> None:
    _mixed(conn, 10, random.Random(3))
    for uuid, (row, dom) in query_all_with_handles(conn).items():
        assert dom.UUIDString() == uuid == row.uuid and dom.name() == row.name


def test_a_read_only_connection_reads_the_same(
    conn: libvirt.virConnect, libvirtd: Libvirtd
) -> None:
    _mixed(conn, 10, random.Random(5))
    reader = libvirt.openReadOnly(libvirtd.test_uri)
    try:
        assert query_all(reader) == query_all(conn)
    finally:
        reader.close()


def test_a_rows_dict_is_asdicts_without_the_copy(conn: libvirt.virConnect) -> None:
    _mixed(conn, 5, random.Random(8))
    for row in query_all(conn).values():
        assert row.as_dict() == dataclasses.asdict(row)
        assert row.as_dict() is not row.as_dict()  # a dict of its own: callers may change it
