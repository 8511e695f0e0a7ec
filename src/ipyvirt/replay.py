"""A recording played back as if a hypervisor sent it: :func:`replay`.

    r = ipyvirt.replay("storm.jsonl", speed=10)     # ten times as fast as it happened
    display(EventLog(r), DomainTable(r))            # the same cell: they see every event

A :class:`Replay` is an :class:`~ipyvirt.Connection` whose events come from a file: its
:class:`~ipyvirt.hub.EventHub` is fed the recorded :class:`~ipyvirt.Event` s on ipyvirt's
main loop at their recorded pace divided by *speed*, so every subscriber (widgets,
``ipyvirt.events()``, ``subscribe()`` callbacks, its own :attr:`~Connection.history`) gets
them as it would from libvirt. Its :attr:`~Connection.reader` answers the read-only calls a
:class:`~ipyvirt.widgets.DomainTable` makes from the domain rows recorded with the events.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import weakref
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Final

import libvirt

from ipyvirt import runtime
from ipyvirt.connection import Connection
from ipyvirt.domains import DomainRow
from ipyvirt.errors import IpyvirtError
from ipyvirt.hub import EventHub
from ipyvirt.leases import Leases
from ipyvirt.models.ring import Ring
from ipyvirt.names import state_name, state_reason_name
from ipyvirt.records import Entry, Recording, read_recording

__all__ = ["Replay", "replay"]

#: events fed in one turn of the loop at most, so a fast replay leaves room for cells
_BATCH: Final = 500


@cache
def _state_number(state: str) -> int:
    return next((n for n in range(16) if state_name(n) == state), 0)


@cache
def _reason_number(state: int, reason: str) -> int:
    return next((n for n in range(64) if state_reason_name(state, n) == reason), 0)


def _no_domain(name: str) -> libvirt.libvirtError:
    """The error libvirt raises for an unknown domain, with its code (Connection.domain and
    the widgets tell "gone" from "failed" by it)."""
    err = libvirt.libvirtError(f"Domain not found: no domain with matching name '{name}'")
    err.err = (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_FROM_DOM, str(err), 2, name, None, None, 0, 0)
    return err


class RecordedDomain:
    """A domain of a replay, as far as reading it goes (``libvirt.virDomain``'s read calls)."""

    def __init__(self, hypervisor: RecordedHypervisor, uuid: str, name: str) -> None:
        self._hypervisor = hypervisor
        self._uuid = uuid
        self._name = name

    def _row(self) -> DomainRow:
        return self._hypervisor.row(self._uuid, self._name)

    def name(self) -> str:
        return self._name

    def UUIDString(self) -> str:
        return self._uuid

    def ID(self) -> int:
        return self._row().id

    def state(self, flags: int = 0) -> list[int]:
        row = self._row()
        state = _state_number(row.state)
        return [state, _reason_number(state, row.reason)]

    def info(self) -> list[int]:
        row = self._row()
        kib = row.memory_mib * 1024
        return [_state_number(row.state), kib, kib, row.vcpus, 0]

    def autostart(self) -> int:
        return int(self._row().autostart)

    def isPersistent(self) -> int:
        return int(self._row().persistent)


_LIST_FILTERS: Final[dict[int, Callable[[DomainRow], bool]]] = {
    libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART: lambda row: row.autostart,
    libvirt.VIR_CONNECT_LIST_DOMAINS_NO_AUTOSTART: lambda row: not row.autostart,
    libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT: lambda row: row.persistent,
    libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT: lambda row: not row.persistent,
}


class RecordedHypervisor:
    """The recorded hypervisor's domains, as they were at the point the replay has reached;
    answers the read-only ``libvirt.virConnect`` calls ipyvirt's widgets make."""

    def __init__(self, recording: Recording) -> None:
        self.uri = recording.host
        # widgets read on worker threads while the replay changes rows on the main loop
        self._lock = threading.Lock()
        self._rows = {r.uuid: r for r in recording.domains or ()}
        self._ids = itertools.count(1)

    def apply(self, entry: Entry) -> None:
        """The domain as recorded just after *entry*'s event."""
        if not entry.has_row:
            return
        with self._lock:
            for uuid in [u for u, r in self._rows.items() if r.name == entry.event.subject]:
                del self._rows[uuid]
            if entry.row is not None:
                self._rows[entry.row.uuid] = entry.row

    def row(self, uuid: str, name: str) -> DomainRow:
        with self._lock:
            row = self._rows.get(uuid)
        if row is None:
            raise _no_domain(name)
        return row

    def getURI(self) -> str:
        return self.uri

    def listAllDomains(self, flags: int = 0) -> list[RecordedDomain]:
        """The domains, filtered by libvirt's autostart and persistence flags (the ones the
        domain table's bulk read uses); other flags are not filtered on."""
        with self._lock:
            rows = sorted(self._rows.values(), key=lambda r: r.name)
        for flag, keep in _LIST_FILTERS.items():
            if flags & flag:
                rows = [r for r in rows if keep(r)]
        return [RecordedDomain(self, r.uuid, r.name) for r in rows]

    def getAllDomainStats(
        self, stats: int = 0, flags: int = 0
    ) -> list[tuple[RecordedDomain, dict[str, int]]]:
        """The state group only, like libvirt's test driver."""
        return self.domainListGetStats(self.listAllDomains(), stats, flags)

    def lookupByName(self, name: str) -> RecordedDomain:
        with self._lock:
            uuid = next((u for u, r in self._rows.items() if r.name == name), None)
        if uuid is None:
            raise _no_domain(name)
        return RecordedDomain(self, uuid, name)

    def domainListGetStats(
        self, doms: list[RecordedDomain], stats: int = 0, flags: int = 0
    ) -> list[tuple[RecordedDomain, dict[str, int]]]:
        found = []
        for dom in doms:
            try:
                state, reason = dom.state()
            except libvirt.libvirtError:
                continue  # gone: the caller reads it on its own and learns so
            found.append((dom, {"state.state": state, "state.reason": reason}))
        return found

    # The replay feeds its EventHub itself: registrations only need an id.
    def _register(self, *args: Any) -> int:
        return next(self._ids)

    def _deregister(self, callback_id: int) -> int:
        return 0

    domainEventRegisterAny = networkEventRegisterAny = _register
    storagePoolEventRegisterAny = nodeDeviceEventRegisterAny = _register
    secretEventRegisterAny = _register
    domainEventDeregisterAny = networkEventDeregisterAny = _deregister
    storagePoolEventDeregisterAny = nodeDeviceEventDeregisterAny = _deregister
    secretEventDeregisterAny = _deregister

    def close(self) -> int:
        return 0


class Replay(Connection):
    """A :class:`Connection` whose events are a recording's: see :func:`replay`."""

    def __init__(
        self, recording: Recording, *, speed: float = 1.0, name: str | None = None
    ) -> None:
        if not speed > 0:  # also NaN
            raise ValueError(
                f"speed must be more than 0, not {speed}: 1.0 replays at the recorded pace, "
                "10 ten times faster, math.inf as fast as the loop goes"
            )
        rt = runtime.current()
        if rt is None:
            raise IpyvirtError(
                "ipyvirt's event loop is not running: %load_ext ipyvirt in a notebook, or "
                "ipyvirt.start() elsewhere, before replaying."
            )
        # What Connection.__init__ sets, for a connection that is never opened: the
        # recording is the hypervisor (tests/unit/test_replay.py keeps the two in step).
        self._runtime = rt
        self.owned = False
        self.conn = self._watch = RecordedHypervisor(recording)
        self._credentials = None
        self.uri = recording.host
        self.readonly = True  # actions are disabled: there is nothing to act on
        self.reconnect = False
        self.reconnects = 0
        self._attempt = 0
        self._retry = None
        self.retry_at = None
        self.reopening = False
        self._single = False
        self._closing = False
        self._dependents: weakref.WeakSet[Any] = weakref.WeakSet()
        self.closer = None
        self.name = name or recording.connection
        self.shares_connection = True
        self.hub = EventHub(self._watch, self.name)
        self.leases = Leases(self.name)  # a table's reads hold them; nothing to wait for
        self.closed_reason = None
        self.history = Ring(max(len(recording), 1))
        self._recorder = self.hub.subscribe(self._record)

        self.recording = recording
        self.speed = speed
        #: events fed so far
        self.position = 0
        self._entries = recording.entries
        self._first = recording.entries[0].event.time if recording.entries else 0.0
        self._began: float | None = None
        self._handle: asyncio.Handle | None = None
        self._finished = threading.Event()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def __repr__(self) -> str:
        if self._finished.is_set():
            state = "finished" if self.position == len(self._entries) else "stopped"
        else:
            state = "playing" if self._began is not None else "not started"
        return (
            f"<ipyvirt.Replay of {self.recording.path.name} ({self.uri}): "
            f"{self.position} of {len(self._entries)} events at speed {self.speed:g}, {state}>"
        )

    def due(self, index: int) -> float:
        """Seconds after :meth:`start` at which event *index* is fed: its recorded offset
        from the first event divided by ``speed``."""
        offset = max(0.0, self._entries[index].event.time - self._first)
        return 0.0 if math.isinf(self.speed) else offset / self.speed

    def start(self) -> None:
        """Start feeding events (from any thread); :func:`replay` does unless ``start=False``."""
        self._runtime.call_soon(self._begin)

    def _begin(self) -> None:
        if self._began is None and not self._closing:
            self._began = self._runtime.main_loop.time()
            self._feed()

    def _feed(self) -> None:
        """On the main loop: feed every event that is due, then wait for the next one."""
        self._handle = None
        loop = self._runtime.main_loop
        assert self._began is not None  # _begin ran
        for _ in range(_BATCH):
            if self.position >= len(self._entries):
                self._finish()
                return
            due = self._began + self.due(self.position)
            if due > loop.time():
                self._handle = loop.call_at(due, self._feed)
                return
            entry = self._entries[self.position]
            self.position += 1
            self._watch.apply(entry)  # the domain as it was, before anyone reads it
            self.hub.emit(entry.event)
        self._handle = loop.call_soon(self._feed)

    def _finish(self) -> None:
        self._finished.set()
        waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                pass

    @property
    def finished(self) -> bool:
        """Every event was fed, or the replay was closed."""
        return self._finished.is_set()

    async def wait(self) -> None:
        """Return once every event was fed (or the replay was closed)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiters.append((loop, future))
        if self._finished.is_set():  # it finished before we were on the list
            _resolve(future)
        await future

    def close(self, wait: float = 0.0) -> None:
        """Stop the replay and close what depends on it (its widgets); nothing to wait
        for."""
        if self._closing:
            return
        self._closing = True
        if self._handle is not None:
            self._runtime.call_soon(self._handle.cancel)
        for dependent in list(self._dependents):
            dependent.close()
        self.hub.close()
        self.closed_reason = "client"
        self._finish()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def replay(
    source: str | Path | Recording,
    speed: float = 1.0,
    *,
    start: bool = True,
    name: str | None = None,
) -> Replay:
    """Play the recording *source* (a path, or a :class:`Recording`) back: its events go to
    the returned :class:`Replay`'s subscribers on ipyvirt's main loop, *speed* times as fast
    as they were recorded (``math.inf``: without waiting), starting on the loop's next turn.

    Build the widgets in the same cell (the loop turns after it), or pass ``start=False`` and
    call :meth:`Replay.start` once they are up; ``await r.wait()`` returns at the end.
    """
    recording = source if isinstance(source, Recording) else read_recording(source)
    played = Replay(recording, speed=speed, name=name)
    if start:
        played.start()
    return played
