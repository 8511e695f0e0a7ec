"""``%virt fleet`` in a real kernel, over real test libvirtds: add, list, dashboard, remove,
and misuse in one line."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from kernel import Kernel, Reply
from libvirtd import Libvirtd

pytestmark = [pytest.mark.kernel, pytest.mark.daemon]

SETUP = """
%load_ext ipyvirt
import asyncio
vm = get_ipython().magics_manager.registry["VirtMagics"]
"""


@pytest.fixture(scope="module")
def daemons() -> Iterator[list[Libvirtd]]:
    started: list[Libvirtd] = []
    try:
        for _ in range(2):
            started.append(Libvirtd().start())
        yield started
    finally:
        for d in started:
            d.cleanup()


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = Kernel()
    k.execute(SETUP).ok()
    yield k
    k.shutdown()


def _usage_error(reply: Reply) -> str:
    assert reply.status == "error"
    assert reply.stderr.startswith("UsageError: ") and reply.stderr.count("\n") == 1, reply
    return reply.stderr[len("UsageError: ") : -1]


def test_fleet_commands(kernel: Kernel, daemons: list[Libvirtd], tmp_path: object) -> None:
    assert _usage_error(kernel.execute("%virt fleet list")) == (
        "%virt fleet: the fleet is empty: %virt fleet add URI... first"
    )
    assert "give URIs" in _usage_error(kernel.execute("%virt fleet add"))
    assert "invalid choice: 'bogus'" in _usage_error(kernel.execute("%virt fleet bogus"))
    missing = f"test+unix:///default?socket={tmp_path}/gone/libvirt-sock"
    uris = " ".join(f"h{i}={d.test_uri}" for i, d in enumerate(daemons))
    added = kernel.execute(f"%virt fleet add --rw {uris} {missing}").ok()
    assert added.stdout == "adding 3 hosts (h0, h1, gone): %virt fleet list shows their health\n"
    kernel.execute("await vm.fleet.settled()").ok()
    kernel.execute("await asyncio.sleep(2.5)").ok()  # a probe
    listed = kernel.execute("%virt fleet list").ok().result
    lines = listed.splitlines()
    assert lines[0] == "fleet: 3 hosts, 2 connected", listed
    rows = {line.split()[0]: line for line in lines[3:]}
    assert "failed (" in rows["gone"] and "next try in" in rows["gone"]
    version = kernel.value("vm.fleet['h0'].record().libvirt")
    assert version.count(".") == 2
    for name in ("h0", "h1"):
        assert rows[name].split()[2:5] == ["connected", version, "1"], listed
    assert "already" in _usage_error(kernel.execute(f"%virt fleet add h0={daemons[0].test_uri}"))

    shown = kernel.execute("d = %virt fleet dashboard\ndisplay(d)").ok()
    opened = [m for m in shown.messages if m["msg_type"] == "comm_open"]
    comm = [m for m in shown.messages if m["msg_type"] in ("comm_open", "comm_msg")]
    size = sum(len(json.dumps(m["content"])) for m in comm)
    print(f"fleet dashboard: {len(opened)} comms, {size} bytes of comm data")
    # the tabs, the table, the health, the event log: one comm each, no Layout widgets
    assert len(opened) == 4, [m["content"]["data"]["state"]["_model_name"] for m in opened]
    kernel.execute("await asyncio.sleep(1)").ok()
    assert kernel.value("sorted([r.host, r.name] for r in d.table.rows())") == [
        ["h0", "test"],
        ["h1", "test"],
    ]
    # grouped by host: a header per host (the failed one too), its rows under it; a click
    # on a header (what the view sends) folds them
    headers = "[[r[1], r[2].split(' (')[0], r[3], r[6]] for r in d.table.page_rows if r[0] is None]"
    assert kernel.value(headers) == [
        ["gone", "failed", 0, 0], ["h0", "connected", 1, 0], ["h1", "connected", 1, 0]
    ]  # fmt: skip
    kernel.execute("d.table._received(d.table, {'do': 'collapse', 'host': 'h0', 'on': True}, [])")
    assert kernel.value("[r[1] for r in d.table.page_rows]") == ["gone", "h0", "h1", "test"]

    assert _usage_error(kernel.execute("%virt fleet remove nope")) == (
        "%virt fleet remove: no host named nope (hosts: gone, h0, h1)"
    )
    assert kernel.execute("%virt fleet remove gone h1").ok().stdout == "removed gone, h1\n"
    kernel.execute("await asyncio.sleep(1)").ok()
    assert kernel.value("[r.host for r in d.table.rows()]") == ["h0"]
    assert kernel.execute("%virt fleet list").ok().result.startswith("fleet: 1 hosts, 1 connected")
    unloaded = kernel.execute("%unload_ext ipyvirt").ok()
    assert "closed" in unloaded.stdout, unloaded.stdout
    assert "fleet" in kernel.execute("%load_ext ipyvirt\n%virt --help").ok().stdout
