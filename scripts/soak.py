"""Soak: random domain operations for a while with ipyvirt's widgets attached, then a report.

    .venv/bin/python scripts/soak.py [--seconds 600] [--qemu] [--control]

Operations run on the main thread and on worker threads, against test:///default (in
process) and a real libvirtd's test driver (its socket an fd watch); with --qemu, also TCG
guests under the same daemon. Each operation used causes one lifecycle event when it succeeds
(define, undefine, create, destroy, suspend, resume; QEMU adds resumed to a start and shutdown
to a destroy). Each hypervisor has at most --domains of the soak's own at a time, so that what
libvirt and the widgets rightly keep per domain stays the same size.

It reports watches and timers added vs freed once everything is closed, collected and drained
(must be equal); events caused vs received by ipyvirt vs delivered by libvirt's own callback
(ipyvirt must receive what libvirt delivered, and on the test driver what was caused; on QEMU
libvirt itself may drop the event of an operation that another thread's raced, a suspend just
before a destroy); and RSS sampled every --sample seconds, with its slope after --warmup
(least squares, in bytes per operation and MiB per minute).

--control then runs the same operations for as long in a child process on libvirt's default
event loop (``virEventRegisterDefaultImpl`` and a thread running ``virEventRunDefaultImpl``;
libvirt takes one event loop per process), with libvirt's own callback only, and prints both
slopes side by side: what libvirt's memory does under these operations, which ipyvirt should
not add to. --attach bisects what ipyvirt adds: its loop alone, a Connection, or the widgets.
Exit 1 if any check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import libvirt

import ipyvirt
from ipyvirt.names import event_name
from ipyvirt.testing.libvirtd import Libvirtd

OPS = ("define", "undefine", "create", "destroy", "suspend", "resume")
_QEMU_EXTRA = {"started": ("resumed",), "stopped": ("shutdown",)}
_KIND = {
    "define": "defined",
    "undefine": "undefined",
    "create": "started",
    "destroy": "stopped",
    "suspend": "suspended",
    "resume": "resumed",
}
MIB = 1024 * 1024


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        return 1024 * next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def malloc_bytes() -> int:
    """Bytes malloc has handed out and not had back, over every arena (glibc's mallinfo2):
    C memory in use. Python objects live in pymalloc's own mmapped arenas, not here."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except AttributeError:
        return 0
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return int(info.uordblks + info.hblkhd)


@dataclass(frozen=True)
class Sample:
    seconds: float
    ops: int
    rss: int
    malloc: int


@dataclass(frozen=True)
class Summary:
    loop: str
    attach: str
    ops: int
    seconds: float
    warmup: float
    start_rss: int
    end_rss: int
    #: least-squares slopes over the samples after the warm-up
    rss_per_op: float
    rss_mib_per_min: float
    malloc_per_op: float

    def line(self) -> str:
        who = (
            "libvirt's default loop (control)"
            if self.loop == "default"
            else f"ipyvirt ({self.attach})"
        )
        return (
            f"{who}: {self.rss_per_op:.1f} bytes/op, {self.rss_mib_per_min:.2f} MiB/min "
            f"(malloc'd: {self.malloc_per_op:.1f} bytes/op); RSS {self.start_rss / MIB:.1f} -> "
            f"{self.end_rss / MIB:.1f} MiB, {self.ops} ops in {self.seconds:.0f} s"
        )


def slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return float("nan")
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


class Sampler:
    """RSS and malloc'd bytes every *every* seconds, against the operations done so far."""

    def __init__(self, every: float, ops: Callable[[], int]) -> None:
        self.every = every
        self.ops = ops
        self.samples: list[Sample] = []
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def _take(self) -> None:
        self.samples.append(
            Sample(time.monotonic() - self._t0, self.ops(), rss_bytes(), malloc_bytes())
        )

    def _run(self) -> None:
        self._take()
        while not self._stop.wait(self.every):
            self._take()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._take()

    def summary(self, loop: str, attach: str, warmup: float) -> Summary:
        after = [s for s in self.samples if s.seconds >= warmup]
        last = self.samples[-1]
        ops = [float(s.ops) for s in after]
        return Summary(
            loop,
            attach,
            last.ops,
            last.seconds,
            warmup,
            self.samples[0].rss,
            last.rss,
            slope(ops, [float(s.rss) for s in after]),
            slope([s.seconds for s in after], [float(s.rss) for s in after]) * 60 / MIB,
            slope(ops, [float(s.malloc) for s in after]),
        )


def on_main(rt: ipyvirt.Runtime | None, fn: Callable[[], Any]) -> Any:
    """Run *fn* on ipyvirt's main loop (widgets live there) and return its result."""
    if rt is None:
        return fn()

    async def call() -> Any:
        return fn()

    return asyncio.run_coroutine_threadsafe(call(), rt.main_loop).result(30)


class Hypervisor:
    """One URI's share of the soak: its domains, its counters."""

    def __init__(
        self,
        rt: ipyvirt.Runtime | None,
        attach: str,
        uri: str,
        template: str,
        prefix: str,
        qemu: bool = False,
        max_domains: int = 20,
    ) -> None:
        self.uri = uri
        self.max_domains = max_domains
        # QEMU announces a start as resumed + started and a destroy as shutdown + stopped, and
        # sends some events after the call returned: its operations wait for their event
        self.qemu = qemu
        self.conn = libvirt.open(uri)
        self.template = re.sub(r"<uuid>.*</uuid>", "", template)
        self.prefix = prefix
        self.caused: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        #: (operation, libvirt error code) of refused operations: told on a mismatch
        self.refused: Counter[tuple[str, int]] = Counter()
        self.lock = threading.Lock()
        self.watched: ipyvirt.Connection | None = None
        self.widgets: tuple[Any, ...] = ()
        if attach != "loop":
            self.watched = ipyvirt.Connection(uri=uri, history=0)
            self.watched.subscribe(self._received, families=["domain"], kinds=["lifecycle"])
        # libvirt's own delivery, on a connection of its own: the reference for QEMU, whose
        # events for an operation raced by another thread's can be dropped by libvirt itself
        self.by_libvirt: Counter[str] = Counter()
        self._callback = self.conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._libvirt_saw, None
        )
        if attach == "widgets":
            from ipyvirt.widgets import DomainTable, EventLog

            watched = self.watched
            self.widgets = on_main(
                rt, lambda: (DomainTable(watched), EventLog(watched, capacity=500))
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
        mine = [d for d in self.conn.listAllDomains() if d.name().startswith(self.prefix)]
        # defines outrun undefines (an undefined running domain lives on until destroyed):
        # unchecked, the domains, and what libvirt and every table keep for them, would grow
        # for as long as the soak runs, and so would the RSS, leak or not
        op = rng.choice(OPS if len(mine) < self.max_domains else OPS[1:])
        try:
            if op == "define" or not mine:
                name = f"{self.prefix}{rng.randrange(10**9)}"
                self.conn.defineXML(
                    re.sub(r"<name>.*</name>", f"<name>{name}</name>", self.template)
                )
                kind = "defined"
            else:
                dom = rng.choice(mine)
                if op == "create":
                    # create() over a daemon asks for the new ID in a second call, which fails
                    # if another thread destroyed the (transient) domain meanwhile: started,
                    # yet reported as refused. createWithFlags() gets it in one.
                    dom.createWithFlags(0)
                else:
                    getattr(dom, op)()
                kind = _KIND[op]
        except libvirt.libvirtError as err:
            # refused (already running, not paused ...): no event either
            with self.lock:
                self.refused[op, err.get_error_code()] += 1
            return
        with self.lock:
            self.caused[kind] += 1
            for extra in _QEMU_EXTRA.get(kind, ()) if self.qemu else ():
                self.caused[extra] += 1
        if self.qemu:
            self.settle(2.0)

    def delivered(self) -> Counter[str]:
        """What the soak counts as received: ipyvirt's subscriber, else libvirt's callback."""
        return self.received if self.watched is not None else self.by_libvirt

    def settle(self, timeout: float) -> bool:
        """Wait until every event caused was received; False if some never came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                got = self.delivered()
                if self.by_libvirt == got and all(got[k] >= n for k, n in self.caused.items()):
                    return True
            time.sleep(0.01)
        return False

    def check(self, ops: int) -> bool:
        with self.lock:
            caused, got, seen = dict(self.caused), dict(self.delivered()), dict(self.by_libvirt)
            refused = dict(self.refused)
        # ipyvirt delivered what libvirt did; and on the test driver, what we caused
        same = got == seen and (self.qemu or caused == got)
        mismatch = (
            ""
            if same
            else f" MISMATCH caused {caused}, received {got}, libvirt {seen}; "
            f"refused (operation, libvirt error code): {refused}"
        )
        print(
            f"{self.uri}: {ops} operations; events caused {sum(caused.values())}, "
            f"received {sum(got.values())} (libvirt's own callback: "
            f"{sum(seen.values())}){mismatch}"
        )
        return same

    def close(self, rt: ipyvirt.Runtime | None) -> None:
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
        if self.watched is not None:
            self.watched.close()
        self.conn.domainEventDeregisterAny(self._callback)
        self.conn.close()


def start_default_loop() -> None:
    """libvirt's own event loop, run by a daemon thread: the control run's."""
    libvirt.virEventRegisterDefaultImpl()

    def run() -> None:
        while True:
            libvirt.virEventRunDefaultImpl()

    threading.Thread(target=run, name="libvirt-default-loop", daemon=True).start()


def soak(args: argparse.Namespace) -> tuple[bool, Summary, list[Sample]]:
    """Run the operations; print the per-hypervisor lines and the loop's accounting."""
    libvirt.registerErrorHandler(lambda *a: None, None)  # refusals are part of the soak
    rt = ipyvirt.start() if args.loop == "ipyvirt" else None
    if rt is None:
        start_default_loop()
    attach = args.attach if rt is not None else "loop"
    with Libvirtd(qemu=args.qemu) if args.qemu else Libvirtd() as daemon:
        targets = hypervisors(rt, attach, daemon, args)
        for target in targets:  # warm up, so the start RSS includes what every run needs
            target.step(random.Random(0))
        ops, sampler = run(targets, args)
        for t in targets:  # let the last events arrive
            t.settle(10.0)
        ok = all([t.check(ops[t.prefix]) for t in targets])
        for t in targets:
            t.close(rt)
        if rt is not None:
            # A closed connection lives on, socket watch and all, while anything holds one of
            # its objects: reference cycles (widgets, callbacks) hold some until collected.
            gc.collect()
            time.sleep(0.5)
            asyncio.run_coroutine_threadsafe(rt.impl.drain(10), rt.main_loop).result(15)
            ok &= report_loop(rt)
    return ok, sampler.summary(args.loop, attach, warmup_seconds(args)), sampler.samples


def hypervisors(
    rt: ipyvirt.Runtime | None, attach: str, daemon: Libvirtd, args: argparse.Namespace
) -> list[Hypervisor]:
    template = libvirt.open("test:///default").lookupByName("test").XMLDesc()
    targets = [
        Hypervisor(rt, attach, "test:///default", template, "soak-", False, args.domains),
        Hypervisor(rt, attach, daemon.test_uri, template, "soakd-", False, args.domains),
    ]
    if args.qemu:
        from ipyvirt.testing.libvirtd import minimal_domain_xml

        xml = minimal_domain_xml("soakq-0")
        # each running one is a QEMU process on a machine that others share
        most = min(args.domains, 3)
        targets.append(Hypervisor(rt, attach, daemon.qemu_uri, xml, "soakq-", True, most))
    return targets


def run(targets: list[Hypervisor], args: argparse.Namespace) -> tuple[Counter[str], Sampler]:
    """Operations from *args.threads* threads and this one until the time is up; how many
    on each hypervisor, and the RSS samples taken meanwhile."""
    deadline = time.monotonic() + args.seconds
    # one counter per thread: no lock on the hot path, summed by the sampler
    counts = [Counter[str]() for _ in range(args.threads + 1)]
    sampler = Sampler(args.sample, lambda: sum(sum(c.values()) for c in counts))

    def work(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            target = rng.choice(targets)
            target.step(rng)
            counts[seed][target.prefix] += 1

    sampler.start()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(args.threads)]
    for w in workers:
        w.start()
    work(args.threads)
    for w in workers:
        w.join()
    sampler.stop()
    return sum(counts, Counter[str]()), sampler


def warmup_seconds(args: argparse.Namespace) -> float:
    return float(args.warmup) if args.warmup is not None else min(60.0, args.seconds / 5)


def report_loop(rt: ipyvirt.Runtime) -> bool:
    stats = rt.impl.statistics()
    added = stats.handles_added + stats.timeouts_added
    freed = stats.frees_run
    live = len(stats.watches) + len(stats.timers)
    print(
        f"watches+timers added {added}, freed {freed}, still live {live}, "
        f"owed frees {stats.pending_frees}"
    )
    for entry in (*stats.watches, *stats.timers):
        print(f"  still live: {entry}")
    print(f"callback errors: {stats.callback_errors}")
    return added == freed and live == 0 and stats.pending_frees == 0


def control(args: argparse.Namespace) -> tuple[bool, Summary | None]:
    """The same soak in a child process on libvirt's default loop; its summary."""
    command = [
        sys.executable,
        __file__,
        "--loop=default",
        f"--seconds={args.seconds}",
        f"--threads={args.threads}",
        f"--domains={args.domains}",
        f"--sample={args.sample}",
        f"--warmup={warmup_seconds(args)}",
        *(["--qemu"] if args.qemu else []),
    ]
    child = subprocess.run(command, capture_output=True, text=True, timeout=args.seconds + 300)
    lines = child.stdout.splitlines()
    for line in lines:
        if not line.startswith("summary "):
            print(f"  control: {line}")
    found = [json.loads(line[len("summary ") :]) for line in lines if line.startswith("summary ")]
    if child.returncode != 0:
        print(f"control run failed (exit {child.returncode}): {child.stderr.strip()[-2000:]}")
    return child.returncode == 0, Summary(**found[0]) if found else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--qemu", action="store_true", help="add a QEMU TCG guest")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--domains", type=int, default=20, help="most domains of its own per hypervisor"
    )
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument(
        "--warmup",
        type=float,
        help="seconds left out of the slope (default: 1/5 of the run, <= 60)",
    )
    parser.add_argument(
        "--loop",
        choices=["ipyvirt", "default"],
        default="ipyvirt",
        help="the event loop: ipyvirt's, or libvirt's default (the control)",
    )
    parser.add_argument(
        "--attach",
        choices=["widgets", "connection", "loop"],
        default="widgets",
        help="what of ipyvirt watches the events: a DomainTable and an EventLog on a "
        "Connection, a Connection alone, or nothing (libvirt's own callback only)",
    )
    parser.add_argument(
        "--control", action="store_true", help="then the same on libvirt's default loop"
    )
    args = parser.parse_args()
    if args.seconds <= 0 or args.sample <= 0 or args.threads < 0 or args.domains < 1:
        parser.error("--seconds, --sample and --domains must be positive, --threads >= 0")
    ok, mine, samples = soak(args)
    print(f"RSS: {mine.start_rss / MIB:.1f} MiB at start, {mine.end_rss / MIB:.1f} MiB at end")
    step = max(1, len(samples) // 10)
    print(
        "RSS over time: "
        + ", ".join(f"{s.seconds:.0f} s {s.rss / MIB:.1f}" for s in samples[::step])
        + " MiB"
    )
    if args.loop == "default":
        print("summary " + json.dumps(asdict(mine)))
    summaries = [mine]
    if args.control:
        done, theirs = control(args)
        ok &= done
        summaries += [theirs] if theirs is not None else []
    print(f"RSS slope after {mine.warmup:.0f} s of warm-up, least squares:")
    for summary in summaries:
        print(f"  {summary.line()}")
    if len(summaries) == 2:
        extra = mine.rss_per_op - summaries[1].rss_per_op
        per_min = mine.rss_mib_per_min - summaries[1].rss_mib_per_min
        print(f"  ipyvirt minus control: {extra:+.1f} bytes/op ({per_min:+.2f} MiB/min)")
    print("soak: OK" if ok else "soak: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
