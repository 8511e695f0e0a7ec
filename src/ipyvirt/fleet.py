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
- every *probe* seconds each host answers a cheap call (``getLibVersion``: its round-trip
  time) and one bulk stats call (``getAllDomainStats``: its domains, how many run, their
  CPU time and memory), on a thread of its own, at most one probe per host in flight; a
  probe that has waited longer than *timeout* makes the host "not responding".

Everything here runs on the main loop's thread (a cell, a loop callback); the threads only
run libvirt calls and hand their outcome back (:func:`~ipyvirt.threads.in_thread`).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ipyvirt import runtime
from ipyvirt.connection import CLOSE_WAIT, Connection
from ipyvirt.errors import IpyvirtError
from ipyvirt.fleet_host import HEALTH_COLUMNS, FleetHost, HostHealth, host_name
from ipyvirt.hub import Event, Subscription
from ipyvirt.limits import make_room
from ipyvirt.tables import Table

__all__ = ["Fleet", "FleetSubscription"]

log = logging.getLogger("ipyvirt")


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
        #: the hosts by name (changed on the main loop's thread only)
        self.hosts: dict[str, FleetHost] = {}
        # the names added and not removed, hand-overs still queued included: add() and
        # remove() check them on their own thread, at once (the dict lags behind)
        self._names: set[str] = set()
        self._lock = threading.Lock()
        #: the latest one-line note about the open-file limit ("" when there was room)
        self.note = ""
        self._subscribers: list[tuple[Callable[[Event], object], dict[str, Any]]] = []
        self._listeners: list[Callable[[FleetHost], object]] = []
        self._prober: asyncio.TimerHandle | None = None
        self._closed = False
        self.add(*uris)

    def add(self, *uris: str, readonly: bool | None = None) -> list[FleetHost]:
        """Add hosts by URI (``NAME=URI`` names one; else ``fleet_host.host_name(uri)``)
        and start opening them; returns them at once. A name taken already is a
        ValueError."""
        readonly = self.readonly if readonly is None else readonly
        wanted = [_named(u) for u in uris]
        with self._lock:
            taken = [n for n, _ in wanted if n in self._names]
            twice = {n for n, _ in wanted if [m for m, _ in wanted].count(n) > 1}
            if taken or twice:
                names = ", ".join(sorted({*taken, *twice}))
                raise ValueError(
                    f"a fleet host is named {names} already: name it NAME=URI, or remove "
                    "the other first"
                )
            self._names.update(n for n, _ in wanted)
        self.note = make_room(len(wanted))
        if self.note:
            log.warning("%s", self.note)
        added = [FleetHost(self, name, uri, readonly) for name, uri in wanted]
        self._on_main(self._open, added)
        return added

    def _on_main(self, fn: Callable[..., object], *args: Any) -> None:
        """Run *fn* now on the main loop's thread, else hand it over. Invariant: the hosts,
        their timers and the listeners (widgets) change on the main loop's thread only; a
        cell on a kernel subshell hands its change over, in order."""
        rt = self.runtime
        if rt.on_main_loop() or not rt.main_loop.is_running():
            fn(*args)
        else:
            rt.call_soon(fn, *args)

    def _open(self, hosts: list[FleetHost]) -> None:
        for host in hosts:
            self.hosts[host.name] = host
            host.open()
        self._start_probing()

    def remove(self, name: str) -> None:
        """Close host *name* and forget it (from another thread: handed to the main loop,
        after the adds handed over before it)."""
        with self._lock:
            if name not in self._names:
                known = ", ".join(sorted(self._names)) or "none"
                raise KeyError(f"no fleet host named {name!r} (hosts: {known})")
            self._names.discard(name)
        self._on_main(self._remove, name)

    def _remove(self, name: str, wait: float = CLOSE_WAIT) -> None:
        host = self.hosts.pop(name, None)
        if host is None:
            return  # removed meanwhile
        host.removed = True
        self._changed(host)  # first: a table lets go of the host's connection
        host.close(wait)

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
        """Probe every host, spread over the interval: each probe starts a thread, and
        starting one waits until it runs; 50 of them in one callback held the main loop
        ~0.1 s every 2 s on a busy machine (a cell arriving meanwhile waited)."""
        self._prober = None
        hosts = list(self.hosts.values())
        step = self.interval / max(1, len(hosts))
        for i, host in enumerate(hosts):
            if i == 0:
                host.probe()
            else:
                self.runtime.main_loop.call_later(i * step, self._probe_one, host)
        self._start_probing()

    def _probe_one(self, host: FleetHost) -> None:
        if not self._closed and not host.removed:
            host.probe()

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

    # -- events for analysis ----------------------------------------------------------------

    def events(self) -> builtins.list[tuple[Event, str]]:
        """The events every connected host kept (its connection's history, *history* of
        them a host), oldest first, each with its host's URI."""
        uris = {name: host.uri for name, host in self.hosts.items()}
        events = [e for c in self.connections().values() for e in c.history]
        return [(e, uris.get(e.connection, e.connection)) for e in sorted(events, key=_seq)]

    def to_records(self) -> builtins.list[dict[str, Any]]:
        """:meth:`events` as the ``event`` records a recording holds (``host``: the host's
        URI, ``connection``: its name in the fleet), JSON-ready."""
        from ipyvirt.records import event_record

        return [event_record(event, uri) for event, uri in self.events()]

    def to_pandas(self) -> Any:
        """:meth:`events` as a DataFrame, a row per event (see :func:`ipyvirt.to_pandas`;
        ``host`` is the host's URI, ``connection`` its name). Needs pandas."""
        from ipyvirt.records import Entry, entries_frame

        return entries_frame([Entry(event, uri) for event, uri in self.events()])

    def listen(self, fn: Callable[[FleetHost], object]) -> None:
        """Call ``fn(host)`` when a host connects, fails, is probed or removed."""
        self._listeners.append(fn)

    def unlisten(self, fn: Callable[[FleetHost], object]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

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
        """Close every host's connection (from another thread: handed to the main loop)."""
        self._on_main(self._close)

    def _close(self) -> None:
        self._closed = True
        if self._prober is not None:
            self._prober.cancel()
            self._prober = None
        with self._lock:
            self._names.clear()
        hosts = list(self.hosts.values())
        for host in hosts:
            self._remove(host.name, wait=0.0)
        # their closes run at once, each on a thread of its own: waited for together, so that
        # many frozen hosts cost CLOSE_WAIT once, not once each
        deadline = time.monotonic() + CLOSE_WAIT
        for host in hosts:
            if host.connection is not None:
                host.connection.wait_closed(deadline - time.monotonic())

    def __repr__(self) -> str:
        return repr(self.list())


def _seq(event: Event) -> int:
    return event.seq


class FleetSubscription:
    """A :meth:`ipyvirt.Fleet.subscribe`: ``cancel()`` stops it on every host."""

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
