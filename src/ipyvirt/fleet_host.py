"""One host of an :class:`ipyvirt.Fleet`: opened off the loop, probed, its health in words.

See :mod:`ipyvirt.fleet` for what a fleet promises; everything here runs on the main loop's
thread, the threads only run libvirt calls and hand their outcome back
(:func:`~ipyvirt.threads.in_thread`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import libvirt

from ipyvirt import backoff
from ipyvirt.connect_errors import explain
from ipyvirt.connection import CLOSE_WAIT, Connection, _close_quietly
from ipyvirt.credentials import open_with
from ipyvirt.errors import IpyvirtError
from ipyvirt.hub import Event, Subscription
from ipyvirt.threads import in_thread

if TYPE_CHECKING:
    from ipyvirt.fleet import Fleet

__all__ = ["HEALTH_COLUMNS", "FleetHost", "HostHealth", "host_name"]

log = logging.getLogger("ipyvirt")

HEALTH_COLUMNS = (
    "host", "uri", "health", "libvirt", "domains", "running", "CPU %", "memory MiB", "rtt ms",
    "events/s",
)  # fmt: skip


#: what a probe's bulk stats call asks for
def _figure(probed: int | None, value: float | None, text: str) -> str:
    """A usage figure: "-" before the first probe, "n/a" where the driver has none."""
    return "-" if probed is None else "n/a" if value is None else text


_STATS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
    | libvirt.VIR_DOMAIN_STATS_BALLOON
)
#: events/s is the mean over this many seconds
_RATE_WINDOW = 5


def host_name(uri: str) -> str:
    """A short name for *uri*: its host (``qemu+ssh://root@web1/system``: web1), else the
    directory of its socket (``...?socket=/run/d7/libvirt-sock``: d7), else the URI."""
    parts = urlsplit(uri)
    if parts.hostname:
        return parts.hostname
    socket = parse_qs(parts.query).get("socket")
    if socket:
        folders = [p for p in socket[0].split("/")[:-1] if p]
        if folders:
            return folders[-1]
    return uri


@dataclass(frozen=True)
class HostHealth:
    """One row of ``%virt fleet list``: a host, its URI, its health and its figures."""

    name: str
    uri: str
    #: connected / connecting / reconnecting (next try in N s) / not responding (...) /
    #: failed (libvirt's reason)
    health: str
    #: "9.0.0"; "" before the first probe answered
    libvirt: str
    domains: int | None
    #: the round trip of ``getLibVersion``, in ms
    rtt_ms: float | None
    events_per_s: float
    running: int | None = None
    #: the running domains' CPU time per wall time between two probes, in % of one CPU;
    #: None where the driver's bulk stats have no CPU time (libvirt 9.0's test driver)
    cpu_percent: float | None = None
    #: the running domains' memory (balloon), where the driver's bulk stats have it
    memory_mib: float | None = None

    def cells(self) -> tuple[object, ...]:
        return (
            self.name,
            self.uri,
            self.health,
            self.libvirt or "-",
            "-" if self.domains is None else f"{self.domains:,}",
            "-" if self.running is None else f"{self.running:,}",
            _figure(self.running, self.cpu_percent, f"{self.cpu_percent or 0:.1f}"),
            _figure(self.running, self.memory_mib, f"{self.memory_mib or 0:,.0f}"),
            "-" if self.rtt_ms is None else f"{self.rtt_ms:.1f}",
            f"{self.events_per_s:,.1f}",
        )


@dataclass(frozen=True)
class _Probe:
    version: int
    #: seconds
    rtt: float
    domains: int
    running: int
    #: the running domains' CPU time (ns), memory (KiB): None where the stats lack them
    cpu_ns: int | None
    memory_kib: int | None
    #: time.monotonic() when the stats were read
    at: float


def _probe(reader: libvirt.virConnect) -> _Probe:
    """On a thread: one cheap call timed, then one bulk stats call."""
    start = time.perf_counter()
    version = reader.getLibVersion()
    rtt = time.perf_counter() - start
    stats = [values for _, values in reader.getAllDomainStats(_STATS)]
    running = [v for v in stats if v.get("state.state") == libvirt.VIR_DOMAIN_RUNNING]
    cpu = [v["cpu.time"] for v in running if "cpu.time" in v]
    memory = [v["balloon.current"] for v in running if "balloon.current" in v]
    return _Probe(
        version,
        rtt,
        len(stats),
        len(running),
        sum(cpu) if cpu or not running else None,
        sum(memory) if memory or not running else None,
        time.monotonic(),
    )


class FleetHost:
    """One host of a :class:`ipyvirt.Fleet`: its :attr:`connection` once open, and its health."""

    def __init__(self, fleet: Fleet, name: str, uri: str, readonly: bool) -> None:
        self.fleet = fleet
        self.name = name
        self.uri = uri
        self.readonly = readonly
        #: the open connection (None until the first open succeeds)
        self.connection: Connection | None = None
        #: libvirt's reason the latest open failed ("" when it did not)
        self.failure = ""
        self.version = 0
        self.domains: int | None = None
        self.rtt: float | None = None
        #: the latest probe's figures, and the one before (CPU % is a difference)
        self.last: _Probe | None = None
        self._before: _Probe | None = None
        self._opening_since: float | None = None
        self._attempt = 0
        self._retry: asyncio.TimerHandle | None = None
        self.retry_at: float | None = None
        self._probing_since: float | None = None
        self._buckets: deque[list[int]] = deque(maxlen=_RATE_WINDOW + 1)
        self._subscriptions: list[Subscription] = []
        self.removed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.fleet.runtime.main_loop

    # -- opening --------------------------------------------------------------------------

    def open(self) -> None:
        """Start opening, unless an attempt is under way (libvirt cannot cancel one)."""
        self._retry = None
        self.retry_at = None
        if self._opening_since is not None or self.removed:
            return
        self._opening_since = self.loop.time()
        uri, readonly, credentials = self.uri, self.readonly, self.fleet.credentials

        def opening() -> libvirt.virConnect:
            return open_with(uri, readonly, credentials)

        future = in_thread(self.loop, opening, name=f"ipyvirt-open-{self.name}")
        future.add_done_callback(self._opened)

    def _opened(self, future: asyncio.Future[libvirt.virConnect]) -> None:
        self._opening_since = None
        error = future.exception()
        if self.removed:
            if error is None:
                _close_quietly(future.result())
            return
        if error is None:
            try:
                self._adopt(future.result())
            except (libvirt.libvirtError, IpyvirtError) as err:  # it died again already
                error = err
            else:
                self.fleet._changed(self)
                return
        why = explain(self.uri, error) if isinstance(error, libvirt.libvirtError) else error
        self.failure = str(why)
        log.info("ipyvirt: fleet host %s: %s", self.name, self.failure)
        delay = backoff.delay(self._attempt)
        self._attempt += 1
        self.retry_at = self.loop.time() + delay
        self._retry = self.loop.call_later(delay, self.open)
        self.fleet._changed(self)

    def _adopt(self, conn: libvirt.virConnect) -> None:
        try:
            connection = Connection(
                conn,
                readonly=self.readonly,
                name=self.name,
                history=self.fleet.history,
                reconnect=True,
                adopt=True,
                watch=conn,
            )
        except BaseException:
            _close_quietly(conn)
            raise
        self.connection = connection
        self.failure, self._attempt = "", 0
        self._subscriptions.append(connection.subscribe(self._count))
        for callback, options in self.fleet._subscribers:
            self._subscriptions.append(connection.subscribe(callback, **options))
        self.probe()

    # -- health ---------------------------------------------------------------------------

    def _count(self, event: Event) -> None:
        second = int(self.loop.time())
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += 1
        else:
            self._buckets.append([second, 1])

    @property
    def events_per_s(self) -> float:
        """Events received per second, over the last complete seconds (up to 5)."""
        now = int(self.loop.time())
        counted = sum(n for s, n in self._buckets if now - _RATE_WINDOW <= s < now)
        return counted / _RATE_WINDOW

    def probe(self) -> None:
        """Ask the host a cheap call and count its domains (off the loop), unless a probe is
        under way or the host is not connected."""
        conn = self.connection
        if conn is None or conn.closed_reason or self._probing_since is not None:
            return
        reader = conn.reader
        self._probing_since = self.loop.time()
        # under a lease: the connection is closed only once none is held, not under these calls
        probing = conn.leases.holding(lambda: _probe(reader))
        future = in_thread(self.loop, probing, name=f"ipyvirt-probe-{self.name}")
        future.add_done_callback(self._probed)

    def _probed(self, future: asyncio.Future[_Probe]) -> None:
        self._probing_since = None
        if self.removed:
            return
        if future.exception() is None:
            self._before, self.last = self.last, future.result()
            self.version, self.domains, self.rtt = (
                self.last.version,
                self.last.domains,
                self.last.rtt,
            )
        self.fleet._changed(self)

    @property
    def cpu_percent(self) -> float | None:
        """CPU time of the running domains per wall time between the last two probes."""
        now, before = self.last, self._before
        if now is None or before is None or now.cpu_ns is None or before.cpu_ns is None:
            return None
        wall = now.at - before.at
        return max(0.0, (now.cpu_ns - before.cpu_ns) / 1e9 / wall * 100) if wall > 0 else None

    @property
    def health(self) -> str:
        """connected / connecting / reconnecting (next try in N s) / not responding (...) /
        failed (libvirt's reason)."""
        now, timeout = self.loop.time(), self.fleet.timeout
        conn = self.connection
        if conn is None:
            if self._opening_since is not None:
                waited = now - self._opening_since
                if waited > timeout:
                    return f"not responding (no answer to connect for {waited:.0f} s)"
                return "connecting"
            if self.retry_at is not None:
                return f"failed ({self.failure}); next try in {_seconds(self.retry_at - now)}"
            return f"failed ({self.failure})"
        if conn.closed_reason:
            if conn.retry_at is not None:
                return f"reconnecting (next try in {_seconds(conn.retry_at - now)})"
            if conn.reopening:
                return "reconnecting (trying now)"
            return f"failed (connection {conn.closed_reason})"
        if self._probing_since is not None and now - self._probing_since > timeout:
            return f"not responding (no answer for {now - self._probing_since:.0f} s)"
        return "connected"

    def record(self) -> HostHealth:
        major, rest = divmod(self.version, 1_000_000)
        return HostHealth(
            name=self.name,
            uri=self.uri,
            health=self.health,
            libvirt=f"{major}.{rest // 1000}.{rest % 1000}" if self.version else "",
            domains=self.domains,
            rtt_ms=None if self.rtt is None else self.rtt * 1000,
            events_per_s=self.events_per_s,
            running=None if self.last is None else self.last.running,
            cpu_percent=self.cpu_percent,
            memory_mib=(
                None
                if self.last is None or self.last.memory_kib is None
                else self.last.memory_kib / 1024
            ),
        )

    def close(self, wait: float = CLOSE_WAIT) -> None:
        """Close its connection, waiting for libvirt's part at most *wait* seconds (see
        :meth:`ipyvirt.Connection.close`)."""
        self.removed = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.connection is not None:
            # first: its hub is detached, so the cancels below call no libvirt (a frozen
            # daemon would hold them); its close waits for a probe under way, off the loop
            self.connection.close(wait)
        for sub in self._subscriptions:
            sub.cancel()
        self._subscriptions.clear()

    def __repr__(self) -> str:
        return f"<ipyvirt.FleetHost {self.name!r} {self.uri} {self.health}>"


def _seconds(delay: float) -> str:
    return f"{max(delay, 0.0):.1f} s"
