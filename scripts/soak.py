"""Soak: random domain operations for a while with ipyvirt's widgets attached, then a report.

    .venv/bin/python scripts/soak.py [--seconds 600] [--qemu]

Operations run on the main thread and on worker threads, against test:///default (in
process) and a real libvirtd's test driver (its socket an fd watch); with --qemu, also a TCG
guest under the same daemon. Each operation used causes exactly one lifecycle event when it
succeeds (define, undefine, create, destroy, suspend, resume), so the events a
subscriber received must equal the successful operations. It reports RSS at start and end,
watches and timers added vs freed after closing everything and draining, and events caused
vs received; it exits 1 if either pair differs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import libvirt

import ipyvirt
from ipyvirt.testing.libvirtd import Libvirtd

OPS = ("define", "undefine", "create", "destroy", "suspend", "resume")


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kib / 1024


def on_main(rt: ipyvirt.Runtime, fn: Callable[[], Any]) -> Any:
    """Run *fn* on ipyvirt's main loop (widgets live there) and return its result."""

    async def call() -> Any:
        return fn()

    return asyncio.run_coroutine_threadsafe(call(), rt.main_loop).result(30)


class Hypervisor:
    """One URI's share of the soak: its domains, its counters."""

    def __init__(self, rt: ipyvirt.Runtime, uri: str, template: str, prefix: str) -> None:
        self.uri = uri
        self.conn = libvirt.open(uri)
        self.template = re.sub(r"<uuid>.*</uuid>", "", template)
        self.prefix = prefix
        self.caused: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.watched = ipyvirt.Connection(uri=uri, history=0)
        self.watched.subscribe(self._received, families=["domain"], kinds=["lifecycle"])
        from ipyvirt.widgets import DomainTable, EventLog

        self.widgets = on_main(
            rt, lambda: (DomainTable(self.watched), EventLog(self.watched, capacity=500))
        )

    def _received(self, event: ipyvirt.Event) -> None:
        if event.subject.startswith(self.prefix):
            with self.lock:
                self.received[event.name] += 1

    def step(self, rng: random.Random) -> None:
        op = rng.choice(OPS)
        mine = [d for d in self.conn.listAllDomains() if d.name().startswith(self.prefix)]
        try:
            if op == "define" or not mine:
                name = f"{self.prefix}{rng.randrange(10**9)}"
                self.conn.defineXML(
                    re.sub(r"<name>.*</name>", f"<name>{name}</name>", self.template)
                )
                kind = "defined"
            else:
                getattr(rng.choice(mine), op)()
                kind = {
                    "undefine": "undefined",
                    "create": "started",
                    "destroy": "stopped",
                    "suspend": "suspended",
                    "resume": "resumed",
                }[op]
        except libvirt.libvirtError:
            return  # refused (already running, not paused ...): no event either
        with self.lock:
            self.caused[kind] += 1

    def close(self, rt: ipyvirt.Runtime) -> None:
        for dom in self.conn.listAllDomains():
            if dom.name().startswith(self.prefix):
                try:
                    if dom.isActive():
                        dom.destroy()
                    if dom.isPersistent():
                        dom.undefine()
                except libvirt.libvirtError:
                    pass  # a transient one vanished as it stopped
        on_main(rt, lambda: [w.close() for w in self.widgets])
        self.watched.close()
        self.conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--qemu", action="store_true", help="add a QEMU TCG guest")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    libvirt.registerErrorHandler(lambda *a: None, None)  # refusals are part of the soak
    rt = ipyvirt.start()
    with Libvirtd(qemu=args.qemu) if args.qemu else Libvirtd() as daemon:
        template = libvirt.open("test:///default").lookupByName("test").XMLDesc()
        targets = [
            Hypervisor(rt, "test:///default", template, "soak-"),
            Hypervisor(rt, daemon.test_uri, template, "soakd-"),
        ]
        if args.qemu:
            from ipyvirt.testing.libvirtd import minimal_domain_xml

            targets.append(Hypervisor(rt, daemon.qemu_uri, minimal_domain_xml("soakq-0"), "soakq-"))
        for target in targets:  # warm up, so the start RSS includes what every run needs
            target.step(random.Random(0))
        start_rss = rss_mib()
        deadline = time.monotonic() + args.seconds
        ops = Counter[str]()

        def work(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                target = rng.choice(targets)
                target.step(rng)
                ops[target.prefix] += 1

        workers = [threading.Thread(target=work, args=(i,)) for i in range(args.threads)]
        for w in workers:
            w.start()
        work(args.threads)
        for w in workers:
            w.join()
        time.sleep(1.0)  # let the last events arrive
        ok = True
        for t in targets:
            with t.lock:
                caused, received = dict(t.caused), dict(t.received)
            same = caused == received
            ok &= same
            mismatch = "" if same else f" MISMATCH {caused} vs {received}"
            print(
                f"{t.uri}: {ops[t.prefix]} operations; events caused {sum(caused.values())}, "
                f"received {sum(received.values())}{mismatch}"
            )
        for t in targets:
            t.close(rt)
        on_main(rt, lambda: None)
        asyncio.run_coroutine_threadsafe(rt.impl.drain(10), rt.main_loop).result(15)
        time.sleep(0.5)
        stats = rt.impl.statistics()
    added = stats.handles_added + stats.timeouts_added
    freed = stats.frees_run
    live = len(stats.watches) + len(stats.timers)
    print(f"RSS: {start_rss:.1f} MiB at start, {rss_mib():.1f} MiB at end")
    print(
        f"watches+timers added {added}, freed {freed}, still live {live} "
        f"(libvirt's own, kept for the process), owed frees {stats.pending_frees}"
    )
    print(f"callback errors: {stats.callback_errors}")
    ok &= added == freed + live and stats.pending_frees == 0
    print("soak: OK" if ok else "soak: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
