"""Cross-thread latency: a domain action on a worker thread until its lifecycle callback runs.

A worker thread calls ``dom.suspend()`` / ``dom.resume()`` (alternately) and waits for the
lifecycle callback; the time from just before the call until the callback runs is one sample.
The asyncio loop in the main thread is otherwise idle: it waits on a future and nothing else
wakes it, which is where a missing wake-up shows (libvirtaio arms its timer from the worker
thread with ``ensure_future``, and the loop sleeps on). When a sample's callback has not run
after ``--patience`` seconds, the benchmark wakes the loop itself (an empty
``call_soon_threadsafe``), standing in for "whatever wakes the loop next", and does so again
every ``--patience`` seconds until the callback runs; those samples are counted.

Each implementation runs in a process of its own (libvirt takes one registration per
process), all in one run:

- ipyvirt: ``ipyvirt.start()`` on the running loop (fd watches on its ``ipyvirt-io`` thread);
- libvirtaio: ``libvirtaio.virEventRegisterAsyncIOImpl(loop)``;
- libvirt default: ``virEventRegisterDefaultImpl`` and a thread looping
  ``virEventRunDefaultImpl``; its callback runs on that thread and hands the event to the
  asyncio loop with ``call_soon_threadsafe`` (the row "→ loop"); the row "own thread" is the
  time the callback started on libvirt's thread.

Hypervisors: ``test:///default`` in-process, and a real libvirtd of our own over its UNIX
socket (``test+unix://``), where the action, the events and the callback share one connection.
Usage: ``python benchmarks/latency.py [--samples N] [--patience S] [--markdown]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import threading
import time

from _common import child, daemon, percentile, print_table

IMPLS = ["ipyvirt", "libvirtaio", "libvirt default"]
TARGET_P99_MS = 5.0


def measure(impl: str, uri: str, samples: int, patience: float) -> dict[str, object]:
    """Latencies (s) of *samples* actions on *uri* with *impl*, in this process."""
    import libvirt

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    arrived = threading.Event()
    stamps = {"cb": 0.0, "loop": 0.0}

    def on_loop() -> None:
        stamps["loop"] = time.perf_counter()
        arrived.set()

    def lifecycle(conn: object, dom: object, event: int, detail: int, opaque: object) -> None:
        stamps["cb"] = time.perf_counter()
        if impl == "libvirt default":  # on libvirt's thread: hand over to the loop
            loop.call_soon_threadsafe(on_loop)
        else:
            on_loop()

    async def run() -> dict[str, object]:
        if impl == "ipyvirt":
            import ipyvirt

            ipyvirt.start()
        elif impl == "libvirtaio":
            import libvirtaio

            libvirtaio.virEventRegisterAsyncIOImpl(loop)
        else:
            libvirt.virEventRegisterDefaultImpl()
            threading.Thread(target=_run_default, name="libvirt-default", daemon=True).start()
        conn = libvirt.open(uri)
        dom = conn.lookupByName("test")
        if not dom.isActive():
            dom.create()
        conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle, None)
        done: asyncio.Future[dict[str, object]] = loop.create_future()

        def worker() -> None:
            to_loop, to_cb, woken = [], [], 0
            rng = random.Random(1)
            paused = dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED
            for _ in range(samples):
                time.sleep(rng.uniform(0.001, 0.004))  # the loop settles into its wait
                arrived.clear()
                start = time.perf_counter()
                dom.resume() if paused else dom.suspend()
                paused = not paused
                if not arrived.wait(patience):
                    woken += 1
                    loop.call_soon_threadsafe(_nothing)
                    while not arrived.wait(patience):
                        loop.call_soon_threadsafe(_nothing)
                to_loop.append(stamps["loop"] - start)
                to_cb.append(stamps["cb"] - start)
            if paused:
                dom.resume()
            result = {"loop": to_loop, "cb": to_cb, "woken": woken}
            loop.call_soon_threadsafe(done.set_result, result)

        threading.Thread(target=worker, name="worker").start()
        return await done

    return loop.run_until_complete(run())


def _run_default() -> None:
    import libvirt

    while True:
        libvirt.virEventRunDefaultImpl()


def _nothing() -> None:
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--patience", type=float, default=0.05)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--no-daemon", action="store_true", help="test:///default only")
    parser.add_argument("--one", nargs=2, metavar=("IMPL", "URI"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.samples, args.patience)))
        return
    rows = []
    ipyvirt_p99 = []

    def run_all(label: str, uri: str) -> None:
        for impl in IMPLS:
            got = child(
                __file__,
                *("--one", impl, uri),
                *("--samples", str(args.samples), "--patience", str(args.patience)),
            )
            series = [("", got["loop"])]
            if impl == "libvirt default":
                series = [(", → loop", got["loop"]), (", own thread", got["cb"])]
            for suffix, values in series:
                ms = [v * 1e3 for v in values]
                p50, p99 = percentile(ms, 50), percentile(ms, 99)
                rows.append(
                    (
                        impl + suffix,
                        label,
                        f"{p50:.3f}",
                        f"{p99:.3f}",
                        f"{max(ms):.3f}",
                        f"{got['woken']}/{len(ms)}",
                    )
                )
                if impl == "ipyvirt":
                    ipyvirt_p99.append((label, p99))

    run_all("test:///default", "test:///default")
    if not args.no_daemon and os.geteuid() == 0:
        with daemon() as d:
            run_all("libvirtd (test+unix)", d.test_uri)
    headers = ("implementation", "hypervisor", "p50 ms", "p99 ms", "max ms", "woken by us")
    print_table(headers, rows, args.markdown, right=2)
    print(
        f"\n{args.samples} samples each; 'woken by us': samples whose callback had not run "
        f"after {args.patience * 1e3:.0f} ms of an idle loop, until the benchmark woke the loop."
    )
    verdicts = [
        f"{label} {p99:.2f} ms ({'met' if p99 <= TARGET_P99_MS else 'MISSED'})"
        for label, p99 in ipyvirt_p99
    ]
    print(f"Target ipyvirt p99 <= {TARGET_P99_MS:g} ms: " + "; ".join(verdicts) + ".")


if __name__ == "__main__":
    main()
