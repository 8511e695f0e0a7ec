"""Soak: random domain operations for a while with ipyvirt's widgets attached, then a report.

    .venv/bin/python scripts/soak.py [--seconds 600] [--qemu]

Operations run on the main thread and on worker threads, against test:///default (in
process) and a real libvirtd's test driver (its socket an fd watch); with --qemu, also TCG
guests under the same daemon. Each operation used causes one lifecycle event when it succeeds
(define, undefine, create, destroy, suspend, resume; QEMU adds resumed to a start and shutdown
to a destroy). It reports RSS at start and end; watches and timers added vs freed once
everything is closed, collected and drained (must be equal); and events caused vs received
by ipyvirt vs delivered by libvirt's own callback. ipyvirt must receive what libvirt
delivered, and on the test driver what was caused. On QEMU libvirt itself may drop the event
of an operation that another thread's raced (a suspend just before a destroy). Exit 1 if any
check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
from ipyvirt.names import event_name
from ipyvirt.testing.libvirtd import Libvirtd

OPS = ("define", "undefine", "create", "destroy", "suspend", "resume")
_QEMU_EXTRA = {"started": ("resumed",), "stopped": ("shutdown",)}


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

    def __init__(
        self, rt: ipyvirt.Runtime, uri: str, template: str, prefix: str, qemu: bool = False
    ) -> None:
        self.uri = uri
        # QEMU announces a start as resumed + started and a destroy as shutdown + stopped, and
        # sends some events after the call returned: its operations wait for their event
        self.qemu = qemu
        self.conn = libvirt.open(uri)
        self.template = re.sub(r"<uuid>.*</uuid>", "", template)
        self.prefix = prefix
        self.caused: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.watched = ipyvirt.Connection(uri=uri, history=0)
        self.watched.subscribe(self._received, families=["domain"], kinds=["lifecycle"])
        # libvirt's own delivery, on a connection of its own: the reference for QEMU, whose
        # events for an operation raced by another thread's can be dropped by libvirt itself
        self.by_libvirt: Counter[str] = Counter()
        self._callback = self.conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._libvirt_saw, None
        )
        from ipyvirt.widgets import DomainTable, EventLog

        self.widgets = on_main(
            rt, lambda: (DomainTable(self.watched), EventLog(self.watched, capacity=500))
        )

    def _libvirt_saw(self, conn: Any, dom: Any, event: int, detail: int, opaque: Any) -> None:
        if dom.name().startswith(self.prefix):
            with self.lock:
                self.by_libvirt[event_name("domain", event)] += 1

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
            for extra in _QEMU_EXTRA.get(kind, ()) if self.qemu else ():
                self.caused[extra] += 1
        if self.qemu:
            self.settle(2.0)

    def settle(self, timeout: float) -> bool:
        """Wait until every event caused was received; False if some never came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.by_libvirt == self.received and all(
                    self.received[k] >= n for k, n in self.caused.items()
                ):
                    return True
            time.sleep(0.01)
        return False

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
        self.conn.domainEventDeregisterAny(self._callback)
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

            targets.append(
                Hypervisor(rt, daemon.qemu_uri, minimal_domain_xml("soakq-0"), "soakq-", qemu=True)
            )
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
        for t in targets:  # let the last events arrive
            t.settle(10.0)
        ok = True
        for t in targets:
            with t.lock:
                caused, received, seen = dict(t.caused), dict(t.received), dict(t.by_libvirt)
            # ipyvirt delivered what libvirt did; and on the test driver, what we caused
            same = received == seen and (t.qemu or caused == received)
            ok &= same
            mismatch = (
                "" if same else f" MISMATCH caused {caused}, received {received}, libvirt {seen}"
            )
            print(
                f"{t.uri}: {ops[t.prefix]} operations; events caused {sum(caused.values())}, "
                f"received {sum(received.values())} (libvirt's own callback: "
                f"{sum(seen.values())}){mismatch}"
            )
        for t in targets:
            t.close(rt)
        # A closed connection lives on, socket watch and all, while anything holds one of
        # its objects: reference cycles (widgets, callbacks) hold some until collected.
        gc.collect()
        time.sleep(0.5)
        asyncio.run_coroutine_threadsafe(rt.impl.drain(10), rt.main_loop).result(15)
        stats = rt.impl.statistics()
    added = stats.handles_added + stats.timeouts_added
    freed = stats.frees_run
    live = len(stats.watches) + len(stats.timers)
    print(f"RSS: {start_rss:.1f} MiB at start, {rss_mib():.1f} MiB at end")
    print(
        f"watches+timers added {added}, freed {freed}, still live {live}, "
        f"owed frees {stats.pending_frees}"
    )
    for entry in (*stats.watches, *stats.timers):
        print(f"  still live: {entry}")
    print(f"callback errors: {stats.callback_errors}")
    ok &= added == freed and live == 0 and stats.pending_frees == 0
    print("soak: OK" if ok else "soak: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
