"""Make storm.jsonl, the recording notebooks/06-recorded-events.ipynb studies.

A small made-up incident on libvirt's test:///default, recorded live with ipyvirt.record():
six domains start, run quietly, then three web servers flap (paused and resumed twenty times a
second), the cache is destroyed, the network is restarted and the database's metadata is
rewritten; then everything recovers and the batch job shuts down. About 20 s of events.

    .venv/bin/python notebooks/recordings/make_storm.py    # writes storm.jsonl next to itself
"""

from __future__ import annotations

import time
from pathlib import Path

import libvirt

import ipyvirt

HERE = Path(__file__).resolve().parent
NAMES = ("web1", "web2", "web3", "db1", "cache1", "batch1")
XML = (
    "<domain type='test'><name>{name}</name><memory unit='MiB'>{mib}</memory>"
    "<vcpu>{vcpus}</vcpu><os><type>hvm</type></os></domain>"
)


def main() -> None:
    libvirt.registerErrorHandler(lambda *a: None, None)
    ipyvirt.start()  # a loop thread of its own: the events arrive there while this sleeps
    conn = ipyvirt.Connection(uri="test:///default", readonly=False, name="lab")
    lv = conn.conn
    for i, name in enumerate(NAMES):
        lv.defineXML(XML.format(name=name, mib=512 * (1 + i % 3), vcpus=1 + i % 2))
    dom = {name: lv.lookupByName(name) for name in NAMES}
    path = HERE / "storm.jsonl"
    path.unlink(missing_ok=True)
    with ipyvirt.record(conn, path) as recorder:
        for name in NAMES:  # 0-2.4 s: the morning start
            dom[name].create()
            time.sleep(0.4)
        for _ in range(5):  # 2.4-7.4 s: quiet, the batch job pauses now and then
            dom["batch1"].suspend()
            time.sleep(0.5)
            dom["batch1"].resume()
            time.sleep(0.5)
        for tick in range(60):  # 7.4-10.4 s: the incident
            for name in ("web1", "web2", "web3"):
                dom[name].suspend()
                dom[name].resume()
            if tick == 10:
                dom["cache1"].destroy()
            if tick == 25:
                net = lv.networkLookupByName("default")
                net.destroy()
                net.create()
            if tick % 12 == 0:
                desc = f"failover step {tick // 12}"
                dom["db1"].setMetadata(libvirt.VIR_DOMAIN_METADATA_DESCRIPTION, desc, None, None)
            time.sleep(0.05)
        dom["web2"].suspend()  # 10.4-16 s: web2 stays paused until the fix is in
        time.sleep(2.0)
        dom["cache1"].create()
        time.sleep(1.5)
        dom["web2"].resume()
        time.sleep(2.0)
        dom["batch1"].shutdown()  # 16-18 s: the batch job is done
        time.sleep(2.0)
    conn.close()
    size = path.stat().st_size
    print(f"{recorder.count} events, {size // 1024} KiB in {path}")


if __name__ == "__main__":
    main()
