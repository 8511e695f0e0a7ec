"""A domain table's re-read that raises something other than libvirtError.

Before the off-loop reads were written once, DomainTable._read (now HostRows') let such an
exception end the worker without handing back to the loop: ``_reading`` stayed True and the
table never updated again. The read now ends in exactly one hand-over whatever it raises.
"""

from __future__ import annotations

import re

import libvirt
import pytest

import ipyvirt.widgets.domain_table as domain_table
import ipyvirt.widgets.host_rows as host_rows
from ipyvirt.connection import Connection

from inproc import Run, until


def _xml(conn: libvirt.virConnect, name: str) -> str:
    xml = re.sub(r"<uuid>.*</uuid>", "", conn.lookupByName("test").XMLDesc())
    return re.sub(r"<name>.*</name>", f"<name>{name}</name>", xml)


def test_a_read_that_raises_does_not_stop_the_table(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = Connection(libvirt.open("test:///default"))
    table = domain_table.DomainTable(conn, interval=0.01)
    real = host_rows.query_domain
    calls = {"n": 0}

    def once_broken(dom: libvirt.virDomain) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug in the read")
        return real(dom)

    # the table's rows are read by its HostRows (also a fleet table's, one per host)
    monkeypatch.setattr(host_rows, "query_domain", once_broken)

    async def scenario() -> None:
        first = conn.conn.defineXML(_xml(conn.conn, "broken-read"))
        await until(lambda: calls["n"] >= 1 and table.settled, "the failed read to end")
        first.create()
        await until(
            lambda: any(r.name == "broken-read" and r.state == "running" for r in table.rows()),
            "the table to update after the failed read",
        )

    try:
        run(scenario())
    finally:
        table.close()
        dom = conn.conn.lookupByName("broken-read")
        if dom.isActive():
            dom.destroy()
        dom.undefine()
        conn.close()
