"""Many hypervisors as one: a fleet of named hosts, each connected, probed and reconnected on
its own.

libvirt's remote protocol is the distributed engine: every host is a libvirt connection, its
events arrive on ipyvirt's loop like any other. What a fleet adds is that no host waits for
another, and no cell waits for any host:

- opening is off the loop, on a thread per host (:func:`ipyvirt.threads.in_thread`), all at
  once; a host that has not answered after *timeout* seconds shows "not responding" while
  its attempt goes on (libvirt cannot cancel an open), and one that fails shows libvirt's
  reason and is tried again with jittered backoff (:mod:`ipyvirt.backoff`);
- once open, a host is an :class:`ipyvirt.Connection` over one libvirt connection (acting and
  watching: one socket per host), which reconnects on its own with the same jittered backoff,
  so that daemons killed together are not all tried again in the same instant;
- every *probe* seconds each host answers a cheap call (``getLibVersion``) and counts its
  domains, on a thread of its own, at most one probe per host in flight: its round-trip
  time, and "not responding" when a probe has waited longer than *timeout*.

Everything here runs on the main loop's thread (a cell, a loop callback); the threads only
run libvirt calls and hand their outcome back (:func:`~ipyvirt.threads.in_thread`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import libvirt

from ipyvirt import backoff, runtime
from ipyvirt.connect_errors import explain
from ipyvirt.connection import Connection, _close_quietly
from ipyvirt.credentials import open_with
from ipyvirt.errors import IpyvirtError
from ipyvirt.hub import Event, Subscription
from ipyvirt.limits import make_room
from ipyvirt.tables import Table
from ipyvirt.threads import in_thread

__all__ = ["HEALTH_COLUMNS", "Fleet", "FleetHost", "HostHealth", "host_name"]

log = logging.getLogger("ipyvirt")

HEALTH_COLUMNS = ("host", "uri", "health", "libvirt", "domains", "rtt ms", "events/s")
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

    def cells(self) -> tuple[object, ...]:
        return (
            self.name,
            self.uri,
            self.health,
            self.libvirt or "-",
            "-" if self.domains is None else f"{self.domains:,}",
            "-" if self.rtt_ms is None else f"{self.rtt_ms:.1f}",
            f"{self.events_per_s:,.1f}",
        )


_Probe = tuple[int, int, float]  # libvirt version, domains, round trip (s)


class FleetHost:
    """One host of a :class:`Fleet`: its :attr:`connection` once open, and its health."""

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
        if error is not None:
            why = explain(self.uri, error) if isinstance(error, libvirt.libvirtError) else error
            self.failure = str(why)
            log.info("ipyvirt: fleet host %s: %s", self.name, self.failure)
            delay = backoff.delay(self._attempt)
            self._attempt += 1
            self.retry_at = self.loop.time() + delay
            self._retry = self.loop.call_later(delay, self.open)
            self.fleet._changed(self)
            return
        conn = future.result()
        self.failure, self._attempt = "", 0
        self.connection = Connection(
            conn,
            readonly=self.readonly,
            name=self.name,
            history=self.fleet.history,
            reconnect=True,
            adopt=True,
            watch=conn,
        )
        self._subscriptions.append(self.connection.subscribe(self._count))
        for callback, options in self.fleet._subscribers:
            self._subscriptions.append(self.connection.subscribe(callback, **options))
        self.probe()
        self.fleet._changed(self)

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

        def probing() -> _Probe:
            start = time.perf_counter()
            version = reader.getLibVersion()
            rtt = time.perf_counter() - start
            return version, reader.numOfDomains() + reader.numOfDefinedDomains(), rtt

        future = in_thread(self.loop, probing, name=f"ipyvirt-probe-{self.name}")
        future.add_done_callback(self._probed)

    def _probed(self, future: asyncio.Future[_Probe]) -> None:
        self._probing_since = None
        if self.removed:
            return
        if future.exception() is None:
            self.version, self.domains, self.rtt = future.result()
        self.fleet._changed(self)

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
        )

    def close(self) -> None:
        self.removed = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        for sub in self._subscriptions:
            sub.cancel()
        self._subscriptions.clear()
        if self.connection is not None:
            self.connection.close()

    def __repr__(self) -> str:
        return f"<ipyvirt.FleetHost {self.name!r} {self.uri} {self.health}>"


def _seconds(delay: float) -> str:
    return f"{max(delay, 0.0):.1f} s"


class Fleet:
    """Many libvirt hosts as one: ``Fleet(uris)`` or :meth:`add`; :meth:`list` tells each
    host's health, :meth:`subscribe` gives the events of all of them.

    Connections open concurrently off the loop (*readonly* unless told otherwise), and
    :meth:`add` returns at once: a host that is slow or unreachable never blocks a cell or
    the others (after *timeout* seconds it shows "not responding"). Hosts are probed every
    *probe* seconds. Use it on ipyvirt's main loop (a cell, a loop callback).
    """

    def __init__(
        self,
        uris: Iterable[str] = (),
        *,
        readonly: bool = True,
        timeout: float = 5.0,
        probe: float = 2.0,
        history: int = 1000,
        credentials: Any = None,
    ) -> None:
        rt = runtime.current()
        if rt is None:
            raise IpyvirtError(
                "ipyvirt's event loop is not running: %load_ext ipyvirt in a notebook, or "
                "ipyvirt.start() elsewhere, before making a Fleet."
            )
        self.runtime = rt
        self.readonly = readonly
        self.timeout = timeout
        self.interval = probe
        self.history = history
        self.credentials = credentials
        self.hosts: dict[str, FleetHost] = {}
        #: the latest one-line note about the open-file limit ("" when there was room)
        self.note = ""
        self._subscribers: list[tuple[Callable[[Event], object], dict[str, Any]]] = []
        self._listeners: list[Callable[[FleetHost], object]] = []
        self._prober: asyncio.TimerHandle | None = None
        self._closed = False
        self.add(*uris)

    def add(self, *uris: str, readonly: bool | None = None) -> list[FleetHost]:
        """Add hosts by URI (``NAME=URI`` names one; else :func:`host_name`) and start
        opening them; returns them at once. A name taken already is a ValueError."""
        readonly = self.readonly if readonly is None else readonly
        wanted = [_named(u) for u in uris]
        taken = [n for n, _ in wanted if n in self.hosts]
        twice = {n for n, _ in wanted if [m for m, _ in wanted].count(n) > 1}
        if taken or twice:
            names = ", ".join(sorted({*taken, *twice}))
            raise ValueError(
                f"a fleet host is named {names} already: name it NAME=URI, or remove the "
                "other first"
            )
        self.note = make_room(len(wanted))
        if self.note:
            log.warning("%s", self.note)
        added = []
        for name, uri in wanted:
            host = FleetHost(self, name, uri, readonly)
            self.hosts[name] = host
            added.append(host)
            host.open()
        self._start_probing()
        return added

    def remove(self, name: str) -> None:
        """Close host *name* and forget it."""
        host = self[name]
        del self.hosts[name]
        host.close()
        self._changed(host)

    def __getitem__(self, name: str) -> FleetHost:
        if name not in self.hosts:
            known = ", ".join(sorted(self.hosts)) or "none"
            raise KeyError(f"no fleet host named {name!r} (hosts: {known})")
        return self.hosts[name]

    def __len__(self) -> int:
        return len(self.hosts)

    def connections(self) -> dict[str, Connection]:
        """The open connections by host name (hosts still opening are left out)."""
        return {n: h.connection for n, h in self.hosts.items() if h.connection is not None}

    # -- health ---------------------------------------------------------------------------

    def health(self) -> list[HostHealth]:
        """Every host's health and figures, by name."""
        return [self.hosts[n].record() for n in sorted(self.hosts)]

    def list(self) -> Table:
        """:meth:`health` as a table (``%virt fleet list``)."""
        records = self.health()
        up = sum(r.health == "connected" for r in records)
        title = f"fleet: {len(records)} hosts, {up} connected"
        return Table(HEALTH_COLUMNS, tuple(r.cells() for r in records), title, self.note)

    def _start_probing(self) -> None:
        if self._prober is None and not self._closed:
            self._prober = self.runtime.main_loop.call_later(self.interval, self._probe_all)

    def _probe_all(self) -> None:
        self._prober = None
        for host in list(self.hosts.values()):
            host.probe()
        self._start_probing()

    # -- events and changes ---------------------------------------------------------------

    def subscribe(
        self,
        callback: Callable[[Event], object],
        *,
        families: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
    ) -> FleetSubscription:
        """Call ``callback(event)`` for the events of every host, those connected later too
        (``event.connection`` is the host's name)."""
        options: dict[str, Any] = {
            "families": None if families is None else list(families),
            "kinds": None if kinds is None else list(kinds),
        }
        entry = (callback, options)
        self._subscribers.append(entry)
        subs = []
        for host in self.hosts.values():
            if host.connection is not None:
                sub = host.connection.subscribe(callback, **options)
                host._subscriptions.append(sub)
                subs.append(sub)
        return FleetSubscription(self, entry, subs)

    def listen(self, fn: Callable[[FleetHost], object]) -> None:
        """Call ``fn(host)`` when a host connects, fails, is probed or removed."""
        self._listeners.append(fn)

    def _changed(self, host: FleetHost) -> None:
        for fn in list(self._listeners):
            try:
                fn(host)
            except Exception:
                log.exception("ipyvirt: a fleet listener failed")

    async def settled(self, timeout: float = 30.0) -> None:
        """Wait until no host is still opening for the first time (each connected, failed
        or not responding); a bound on a hang, for scripts and tests."""
        loop = self.runtime.main_loop
        deadline = loop.time() + timeout
        while any(h.connection is None and h.health == "connecting" for h in self.hosts.values()):
            if loop.time() > deadline:
                raise TimeoutError(f"fleet hosts still connecting after {timeout} s")
            await asyncio.sleep(0.01)

    def close(self) -> None:
        """Close every host's connection."""
        self._closed = True
        if self._prober is not None:
            self._prober.cancel()
            self._prober = None
        for host in self.hosts.values():
            host.close()
        self.hosts.clear()

    def __repr__(self) -> str:
        return repr(self.list())


class FleetSubscription:
    """A :meth:`Fleet.subscribe`: :meth:`cancel` stops it on every host."""

    def __init__(
        self,
        fleet: Fleet,
        entry: tuple[Callable[[Event], object], dict[str, Any]],
        subs: list[Subscription],
    ) -> None:
        self._fleet, self._entry, self._subs = fleet, entry, subs

    def cancel(self) -> None:
        if self._entry in self._fleet._subscribers:
            self._fleet._subscribers.remove(self._entry)
        for sub in self._subs:
            sub.cancel()
        callback = self._entry[0]
        for host in self._fleet.hosts.values():  # those connected after subscribe()
            for sub in [s for s in host._subscriptions if s.callback is callback]:
                sub.cancel()
                host._subscriptions.remove(sub)


def _named(word: str) -> tuple[str, str]:
    """``NAME=URI`` or ``URI`` as (name, uri): a name has no ``:`` and comes first."""
    name, sep, rest = word.partition("=")
    if sep and name and ":" not in name and "/" not in name:
        return name, rest
    return host_name(word), word
