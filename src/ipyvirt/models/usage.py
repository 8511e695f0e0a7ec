"""The usage tab's state: CPU % and memory over time per running domain, and their source.

libvirt 9.0's test driver answers ``getAllDomainStats`` with ``state.*`` at most (no
``cpu.time``, no ``balloon.*``): where bulk stats lack a field, :func:`read_usage` asks the
domain itself (``getCPUStats(True)``, ``memoryStats()``, ``info()``) and says so in
:attr:`Sample.source`, so a view can tell which numbers came how.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import libvirt

__all__ = [
    "BULK",
    "PER_DOMAIN",
    "Frame",
    "Sample",
    "UsageSamples",
    "describe_sources",
    "read_domain_usage",
    "read_usage",
]

BULK: Final = "bulk stats"
PER_DOMAIN: Final = "per-domain calls"

_STATS: Final = (
    libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_VCPU
)
_ACTIVE: Final = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE


#: one poll as a view draws it: (when, [(name, CPU % or None, memory MiB or None), ...]),
#: *when* in seconds since the samples began, figures rounded to what a chart can show
Frame = tuple[float, list[tuple[str, float | None, float | None]]]


@dataclass(frozen=True)
class Sample:
    """One running domain's counters at one moment, as read."""

    name: str
    #: CPU time used so far, ns (None: nothing said it)
    cpu_ns: int | None
    vcpus: int
    #: memory in use, KiB (None: nothing said it)
    memory_kib: int | None
    #: BULK or PER_DOMAIN: where cpu_ns and memory_kib came from
    source: str


def _per_domain(dom: libvirt.virDomain, name: str) -> Sample:
    """One domain's counters from calls on the domain itself (raises libvirtError if gone)."""
    _, _, mem_kib, vcpus, cpu_ns = dom.info()
    try:
        cpu_ns = dom.getCPUStats(True)[0]["cpu_time"]
    except (libvirt.libvirtError, IndexError, KeyError):
        pass  # info()'s cpuTime is what there is
    try:
        mem = dom.memoryStats()
        mem_kib = mem.get("rss") or mem.get("actual") or mem_kib
    except libvirt.libvirtError:
        pass
    return Sample(name, cpu_ns, max(1, vcpus), mem_kib, PER_DOMAIN)


def read_usage(conn: libvirt.virConnect) -> list[Sample]:
    """Every running domain's counters: bulk stats, per-domain calls where they fall short.

    Blocks (RPCs): call it off the loop. A domain gone meanwhile is left out."""
    samples = []
    for dom, values in conn.getAllDomainStats(_STATS, _ACTIVE):
        name = dom.name()
        cpu = values.get("cpu.time")
        mem = values.get("balloon.rss") or values.get("balloon.current")
        if cpu is not None and mem is not None:
            samples.append(Sample(name, cpu, max(1, values.get("vcpu.current", 1)), mem, BULK))
            continue
        try:
            samples.append(_per_domain(dom, name))
        except libvirt.libvirtError:
            continue  # stopped meanwhile
    return samples


def read_domain_usage(dom: libvirt.virDomain) -> Sample:
    """One running domain's counters, as :func:`read_usage` reads each (for the domain
    view): bulk stats of it alone, per-domain calls where they fall short. Blocks; raises
    libvirtError if it is gone."""
    name = dom.name()
    try:
        found = dom.connect().domainListGetStats([dom], _STATS)
    except libvirt.libvirtError:
        found = []  # a driver without bulk stats: the calls below say it all
    for _, values in found:
        cpu = values.get("cpu.time")
        mem = values.get("balloon.rss") or values.get("balloon.current")
        if cpu is not None and mem is not None:
            return Sample(name, cpu, max(1, values.get("vcpu.current", 1)), mem, BULK)
    return _per_domain(dom, name)


class UsageSamples:
    """The last *history* CPU % and memory MiB values per running domain, oldest first.

    ``listen(fn)``: ``fn()`` after each ``add`` or ``failed``. One thread only.
    """

    def __init__(self, history: int = 30) -> None:
        self.history = history
        #: domain name -> (cpu % values, memory MiB values)
        self.samples: dict[str, tuple[deque[float], deque[float]]] = {}
        #: domain name -> where its last numbers came from (BULK or PER_DOMAIN)
        self.sources: dict[str, str] = {}
        self._last_cpu: dict[str, tuple[float, int]] = {}
        #: the last *history* polls that worked, oldest first: what a chart of the window draws
        self.frames: deque[Frame] = deque(maxlen=history)
        self._epoch: float | None = None
        self.polls = 0
        #: the last read's error, one line; "" after a read that worked
        self.error = ""
        self._listeners: list[Callable[[], object]] = []

    def listen(self, fn: Callable[[], object]) -> None:
        self._listeners.append(fn)

    def _changed(self) -> None:
        for fn in list(self._listeners):
            fn()

    def failed(self, error: str) -> None:
        self.polls += 1
        self.error = error
        self._changed()

    def add(self, now: float, samples: list[Sample]) -> None:
        """Samples read at *now* (monotonic seconds): CPU % is the CPU time used since the
        previous sample over the wall time between them, per vCPU."""
        self.polls += 1
        self.error = ""
        if self._epoch is None:
            self._epoch = now
        seen = set()
        figures: list[tuple[str, float | None, float | None]] = []
        for s in samples:
            seen.add(s.name)
            cpu, mem = self.samples.setdefault(
                s.name, (deque(maxlen=self.history), deque(maxlen=self.history))
            )
            self.sources[s.name] = s.source
            cpu_now = mem_now = None
            if s.cpu_ns is not None:
                last = self._last_cpu.get(s.name)
                # CPU time that went back: the domain restarted between two polls, no rate
                if last is not None and now > last[0] and s.cpu_ns >= last[1]:
                    cpu_now = 100.0 * (s.cpu_ns - last[1]) / ((now - last[0]) * 1e9) / s.vcpus
                    cpu.append(cpu_now)
                self._last_cpu[s.name] = (now, s.cpu_ns)
            if s.memory_kib is not None:
                mem_now = s.memory_kib / 1024
                mem.append(mem_now)
            figures.append((s.name, _round(cpu_now, 2), _round(mem_now, 1)))
        for gone in set(self.samples) - seen:
            del self.samples[gone]
            self.sources.pop(gone, None)
            self._last_cpu.pop(gone, None)
        self.frames.append((round(now - self._epoch, 3), figures))
        self._changed()

    def records(self) -> list[dict[str, Any]]:
        """Per domain, sorted by name: its values over time and their source, plain data."""
        return [
            {
                "name": name,
                "cpu_percent": list(cpu),
                "memory_mib": list(mem),
                "source": self.sources.get(name, ""),
            }
            for name, (cpu, mem) in sorted(self.samples.items())
        ]


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def describe_sources(sources: dict[str, str]) -> str:
    """Where the figures of *sources* (domain name -> BULK or PER_DOMAIN) came from, in words."""
    per_domain = sum(1 for source in sources.values() if source == PER_DOMAIN)
    bulk = len(sources) - per_domain
    if not sources:
        return ""
    if not per_domain:
        return f"{BULK} (getAllDomainStats)"
    if not bulk:
        return f"{PER_DOMAIN}, bulk stats lack cpu/memory on this driver"
    return (
        f"{BULK} for {bulk}, {PER_DOMAIN} for {per_domain} "
        f"(bulk stats lack cpu/memory for {'it' if per_domain == 1 else 'them'})"
    )
