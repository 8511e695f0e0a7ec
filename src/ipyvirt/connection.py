"""A libvirt connection as ipyvirt watches it: events fanned out, the close reported.

ipyvirt subscribes to events through a second, read-only connection to the same URI that it
owns (its *watch* connection). A user's own ``domainEventRegisterAny`` on their connection
therefore never meets "event callback already tracked", before or after ipyvirt's widgets
subscribe, and ipyvirt's close callback never takes the one slot libvirt gives a connection.
Where a second connection cannot be opened (it needs credentials), ipyvirt subscribes on the
user's connection itself and says so in :attr:`Connection.shares_connection`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import libvirt

from ipyvirt import backoff, explore, runtime
from ipyvirt.connect_errors import explain
from ipyvirt.credentials import Prompt, open_with
from ipyvirt.errors import IpyvirtError, known_names
from ipyvirt.explore import Domain
from ipyvirt.hub import Event, EventHub, Subscription, decode
from ipyvirt.leases import Leases
from ipyvirt.models.ring import Ring
from ipyvirt.names import close_reason_name
from ipyvirt.threads import in_thread

__all__ = ["ConnectFailed", "Connection", "NoSuchDomain"]

log = logging.getLogger("ipyvirt")

#: how long close() waits for libvirt's part of a close (deregistering, closing) before it
#: lets it go on in the background: a daemon that answers needs milliseconds
CLOSE_WAIT = 0.5


class ConnectFailed(IpyvirtError):
    """libvirt could not open, or refused an operation on, a connection."""


class NoSuchDomain(IpyvirtError, LookupError):
    """A domain name that the hypervisor does not know."""


def open_libvirt(uri: str, readonly: bool, prompt: Prompt | None = None) -> libvirt.virConnect:
    """Open *uri* (asking *prompt* for credentials if libvirt wants any), turning libvirt's
    error into one line naming the URI."""
    try:
        return open_with(uri, readonly, prompt)
    except libvirt.libvirtError as err:
        why = explain(uri, err)
        failure = prompt.take_failure() if prompt is not None else None
        if failure is not None and not isinstance(failure, Exception):
            raise failure from None  # KeyboardInterrupt: the user stopped the cell
        if failure is not None:
            why = (
                f"it wants credentials, and asking for them failed ({failure}): "
                "run the cell in a frontend that takes input, such as JupyterLab"
            )
        raise ConnectFailed(f"cannot connect to {uri}: {why}") from None


class Connection:
    """Events and the close of one libvirt connection, delivered on ipyvirt's main loop.

    *conn* is the user's ``libvirt.virConnect``; with *uri* instead, ipyvirt opens one
    (read-only unless *readonly* is false) and closes it in :meth:`close`. libvirt cannot
    tell whether a connection is read-only: pass *readonly* for yours if it is (actions on
    it are then disabled rather than refused by libvirt).

    *credentials* (an :class:`ipyvirt.credentials.Prompt`) answers libvirt when the URI
    needs a user name or passphrase; they are asked once and kept in memory only.

    With *reconnect* (default: on for connections ipyvirt opened), a connection that closes
    for any reason but :meth:`close` is reopened with jittered backoff (up to 0.5 s doubling
    to 30 s, each wait drawn from its upper half: ``ipyvirt.backoff``); every subscription
    is registered again and subscribers get a ``reconnected`` event.

    *adopt* (with *conn*): *conn* was opened for this Connection (read-only as *readonly*
    says), which closes it and reopens it as if it had opened it from *uri*; *watch*: a
    read-only connection to the same URI, opened for it to watch with. ``ipyvirt.Fleet``
    opens both off the loop and hands them over so.
    """

    def __init__(
        self,
        conn: libvirt.virConnect | None = None,
        *,
        uri: str | None = None,
        readonly: bool | None = None,
        name: str | None = None,
        history: int = 1000,
        reconnect: bool | None = None,
        credentials: Prompt | None = None,
        adopt: bool = False,
        watch: libvirt.virConnect | None = None,
    ) -> None:
        rt = runtime.current()
        if rt is None:
            raise IpyvirtError(
                "ipyvirt's event loop is not running: %load_ext ipyvirt in a notebook, or "
                "ipyvirt.start() elsewhere, before opening connections."
            )
        self._runtime = rt
        if conn is None:
            if uri is None:
                raise ValueError("give a libvirt connection or a uri")
            readonly = True if readonly is None else readonly
            conn = open_libvirt(uri, readonly, credentials)
            self.owned = True
        else:
            self.owned = adopt
            readonly = bool(readonly)
        self.conn = conn
        self._credentials = credentials
        self.uri: str = conn.getURI()
        self.readonly = readonly
        self.reconnect = self.owned if reconnect is None else reconnect
        #: successful reconnections so far
        self.reconnects = 0
        self._attempt = 0
        self._retry: asyncio.TimerHandle | None = None
        #: the main loop's time of the next reconnection attempt (None: none planned)
        self.retry_at: float | None = None
        #: a reconnection attempt is under way (on a thread of its own)
        self.reopening = False
        self._closing = False
        self._dependents: weakref.WeakSet[Any] = weakref.WeakSet()
        #: the thread that deregisters and closes, once close() started it
        self.closer: threading.Thread | None = None
        self.name = name or self.uri
        #: one libvirt connection both acts and watches (*watch* is *conn*): a fleet's host
        self._single = watch is conn
        if watch is not None:
            self._watch, self.shares_connection = watch, False
        else:
            self._watch, self.shares_connection = self._open_watch(conn)
        if credentials is not None:
            credentials.asking = False
        self.hub = EventHub(self._watch, self.name)
        #: what ipyvirt's threads hold while they call on this connection (a table's re-read,
        #: a fleet's probe): closing waits until none is held
        self.leases = Leases(self.name)
        self.closed_reason: str | None = None
        #: the latest events of every family, oldest first (``%virt events``)
        self.history: Ring[Event] = Ring(history)
        self._recorder: Subscription | None = None
        if history:
            self._recorder = self.hub.subscribe(self._record)
        self._watch.registerCloseCallback(self._closed_on_any_thread, None)

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "read-write"
        state = f"closed ({self.closed_reason})" if self.closed_reason else "open"
        if self._retry is not None or (self.closed_reason and self._attempt):
            state += ", reconnecting"
        return f"<ipyvirt.Connection {self.name!r} {self.uri} {mode} {state}>"

    def _open_watch(self, conn: libvirt.virConnect) -> tuple[libvirt.virConnect, bool]:
        if self.uri.startswith("test:///") and self.uri != "test:///default":
            # the test driver gives every connection to a file of its own its own hypervisor:
            # only this connection sees what is done through it
            return conn, True
        try:
            return open_with(self.uri, True, self._credentials), False
        except libvirt.libvirtError as err:
            log.info("ipyvirt: watching %s on its own connection (%s)", self.uri, err)
            return conn, True

    @property
    def dropped(self) -> int:
        """Events pushed out of :attr:`history`."""
        return self.history.dropped

    def _record(self, event: Event) -> None:
        self.history.append(event)

    def subscribe(
        self,
        callback: Callable[[Event], object],
        *,
        families: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        subject: str | None = None,
    ) -> Subscription:
        """Call ``callback(event)`` on the main loop for the events asked for (default: all,
        including the connection's close). See :meth:`ipyvirt.hub.EventHub.subscribe`."""
        return self.hub.subscribe(callback, families=families, kinds=kinds, subject=subject)

    def domain(self, name: str) -> Domain:
        """The domain called *name*, on the connection you act through: a
        ``libvirt.virDomain`` that also has :meth:`~ipyvirt.explore.Domain.details`."""
        try:
            dom = self.conn.lookupByName(name)
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise ConnectFailed(f"{self.uri}: {err.get_error_message()}") from None
            known = known_names(d.name() for d in self.conn.listAllDomains())
            raise NoSuchDomain(f"no domain named {name!r} on {self.uri} ({known})") from None
        if not isinstance(dom, libvirt.virDomain):
            return dom  # type: ignore[no-any-return]  # a replay's recorded domain: read calls only
        return Domain(dom, self.history)

    # -- the hypervisor, read from code (ipyvirt.explore; each read is fresh) ---------------

    def host(self) -> explore.Host:
        """The host: versions, CPUs, memory, NUMA cells, this URI and whether read-only."""
        return explore.host(self.conn, readonly=self.readonly)

    def networks(self) -> explore.Listing[explore.Network]:
        """Every virtual network, with its DHCP leases where the driver has them."""
        return explore.networks(self.conn)

    def network(self, name: str) -> explore.Network:
        """The network called *name* (:class:`NoSuchNetwork` names the ones there are)."""
        return explore.network(self.conn, name)

    def pools(self) -> explore.Listing[explore.Pool]:
        """Every storage pool, with its volumes."""
        return explore.pools(self.conn)

    def pool(self, name: str) -> explore.Pool:
        """The storage pool called *name* (:class:`NoSuchPool` names the ones there are)."""
        return explore.pool(self.conn, name)

    def devices(self) -> explore.Listing[explore.Device]:
        """The node devices, as a tree by parent."""
        return explore.devices(self.conn)

    def secrets(self) -> explore.Listing[explore.Secret]:
        """The secrets: what each is for, never its value."""
        return explore.secrets(self.conn)

    @property
    def reader(self) -> libvirt.virConnect:
        """The read-only connection ipyvirt watches with: fine for queries, and reopened
        when it closes (with *reconnect*)."""
        return self._watch

    def _closed_on_any_thread(self, conn: Any, reason: int, opaque: Any) -> None:
        # libvirt calls this where it noticed: usually ipyvirt's io thread. Invariant: the
        # Connection's state changes on the main loop only; the close (from here) and a
        # reopen (from an executor, through its future's done callback) hand over to it.
        self._runtime.deliver_soon(self._closed, conn, reason)

    def _closed(self, conn: Any, reason: int) -> None:
        if self._closing or conn is not self._watch:
            return  # ours, on purpose; or a connection already replaced
        self.closed_reason = close_reason_name(reason)
        self.hub.emit(decode(self.name, "connection", "close", "", (reason,)))
        if self.reconnect and not self.shares_connection:
            self._schedule_retry()

    # -- reconnecting ----------------------------------------------------------------------

    def _schedule_retry(self) -> None:
        delay = backoff.delay(self._attempt)
        self._attempt += 1
        loop = self._runtime.main_loop
        self.retry_at = loop.time() + delay
        self._retry = loop.call_later(delay, self._try_reopen)

    def _try_reopen(self) -> None:
        self._retry = None
        self.retry_at = None
        self.reopening = True
        # opening blocks (a socket connect, a handshake; for ever on a frozen daemon): on a
        # thread of its own, so that a frozen host holds no worker another host needs
        future = in_thread(
            self._runtime.main_loop, self._reopen, name="ipyvirt-reopen", orphan=_close_pair
        )
        future.add_done_callback(self._reopened)

    def _reopen(self) -> tuple[libvirt.virConnect, libvirt.virConnect]:
        if self._single:
            conn = open_libvirt(self.uri, self.readonly, self._credentials)
            return conn, conn
        watch = open_with(self.uri, True, self._credentials)
        try:
            owned = self.owned
            conn = open_libvirt(self.uri, self.readonly, self._credentials) if owned else self.conn
        except ConnectFailed:
            _close_quietly(watch)
            raise
        return watch, conn

    def _reopened(
        self, future: asyncio.Future[tuple[libvirt.virConnect, libvirt.virConnect]]
    ) -> None:
        self.reopening = False
        if self._closing:
            if not future.cancelled() and future.exception() is None:
                for c in set(future.result()) - {self.conn}:
                    _close_quietly(c)
            return
        error = future.exception()
        if error is not None:
            log.info("ipyvirt: reconnecting to %s: %s", self.uri, error)
            self._schedule_retry()
            return
        watch, conn = future.result()
        old_watch, old_conn = self._watch, self.conn
        self._watch, self.conn = watch, conn
        # subscriptions first, then the news: a widget that re-reads now misses nothing
        self.hub.rebind(watch)
        try:
            watch.registerCloseCallback(self._closed_on_any_thread, None)
        except libvirt.libvirtError as err:  # it died again already: try again later
            log.info("ipyvirt: reconnecting to %s: %s", self.uri, err)
            self._watch = old_watch
            if self._single:
                self.conn = old_conn
            _close_quietly(watch)
            self._schedule_retry()
            return
        _close_quietly(old_watch)
        if old_conn is not conn and old_conn is not old_watch:
            _close_quietly(old_conn)
        attempts, self._attempt = self._attempt, 0
        self.reconnects += 1
        self.closed_reason = None
        self.hub.emit(decode(self.name, "connection", "reconnect", "", (attempts,)))

    def depend(self, dependent: Any) -> None:
        """Close *dependent* (anything with ``close()``, a widget) before this connection:
        it may have a libvirt call under way on it."""
        self._dependents.add(dependent)

    def close(self, wait: float = CLOSE_WAIT) -> None:
        """Stop watching: close what depends on it, deregister everything, close the
        connections ipyvirt opened.

        The deregistering and closing are calls to the daemon. They run on a thread of their
        own (:attr:`closer`) once ipyvirt's threads holding a lease (:attr:`leases`) are done
        with the connection, and close() waits for them at most *wait* seconds (0.5): a
        frozen daemon's connection closes when it answers again or dies. The widgets that
        depend on it are closed first, on the main loop, and wait for their reads.

        Called on another thread than the main loop's (a cell on a kernel subshell) while
        that loop runs, it hands the work over and returns at once: no event, close or
        reconnection is taken from then on, and the rest happens on the main loop, where the
        widgets that depend on it are closed.
        """
        if self._closing:
            return
        # Invariant: _closing is set once, first; _closed and _reopened (main loop) ignore
        # everything after it, and _close_now runs once, on the main loop while it runs.
        self._closing = True
        rt = self._runtime
        if rt.on_main_loop() or not rt.main_loop.is_running():
            self._close_now(wait)
        else:
            rt.call_soon(self._close_now, wait)

    def _close_now(self, wait: float = CLOSE_WAIT) -> None:
        for dependent in list(self._dependents):
            dependent.close()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
            self.retry_at = None
        self.hub.detach()
        self.closed_reason = self.closed_reason or "client"
        # libvirt's part (deregistrations, the close) are calls to the daemon: a frozen one
        # would hold the main loop until it answers. On a thread of its own; waited for a
        # moment, which a daemon that answers needs, so that closed means closed for it.
        closer = self.closer = threading.Thread(
            target=self._release, name=f"ipyvirt-close-{self.name}", daemon=True
        )
        closer.start()
        if wait > 0:
            self.wait_closed(wait)

    def wait_closed(self, timeout: float) -> bool:
        """Wait at most *timeout* seconds for libvirt's part of :meth:`close`; True once it
        is done (a frozen daemon's is done when it answers again or dies: said in the log)."""
        if self.closer is None:
            return False
        self.closer.join(max(0.0, timeout))
        if self.closer.is_alive():
            log.info("ipyvirt: %s does not answer; it is closed when it does", self.uri)
            return False
        return True

    def _release(self) -> None:
        """On a thread of its own: once no lease is held (no call of ipyvirt's threads on
        the connection under way, and none to come), deregister and close. _watch and conn
        stay as they are: _closing is set, so no reconnection replaces them."""
        self.leases.close()
        self.hub.deregister_all()
        try:
            self._watch.unregisterCloseCallback()
        except libvirt.libvirtError:
            pass
        if not self.shares_connection:
            _close_quietly(self._watch)
        if self.owned and self.conn is not self._watch:
            _close_quietly(self.conn)


def _close_pair(pair: tuple[libvirt.virConnect, libvirt.virConnect]) -> None:
    for conn in set(pair):
        _close_quietly(conn)


def _close_quietly(conn: libvirt.virConnect) -> None:
    try:
        conn.close()
    except libvirt.libvirtError:
        pass
