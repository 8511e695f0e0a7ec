"""A libvirt connection as ipyvirt watches it: events fanned out, the close reported.

ipyvirt subscribes to events through a second, read-only connection to the same URI that it
owns (its *watch* connection). A user's own ``domainEventRegisterAny`` on their connection
therefore never meets "event callback already tracked", before or after ipyvirt's widgets
subscribe, and ipyvirt's close callback never takes the one slot libvirt gives a connection.
Where a second connection cannot be opened (it needs credentials), ipyvirt subscribes on the
user's connection itself and says so in :attr:`Connection.shares_connection`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import libvirt

from ipyvirt import runtime
from ipyvirt.errors import IpyvirtError
from ipyvirt.hub import Event, EventHub, Subscription, decode
from ipyvirt.names import close_reason_name

__all__ = ["Connection", "ConnectionError"]

log = logging.getLogger("ipyvirt")


class ConnectionError(IpyvirtError):
    """libvirt could not open, or refused an operation on, a connection."""


def open_libvirt(uri: str, readonly: bool) -> libvirt.virConnect:
    """Open *uri*, turning libvirt's error into one line naming the URI."""
    try:
        return libvirt.openReadOnly(uri) if readonly else libvirt.open(uri)
    except libvirt.libvirtError as err:
        raise ConnectionError(f"cannot connect to {uri}: {err.get_error_message()}") from None


class Connection:
    """Events and the close of one libvirt connection, delivered on ipyvirt's main loop.

    *conn* is the user's ``libvirt.virConnect``; with *uri* instead, ipyvirt opens one
    (read-only unless *readonly* is false) and closes it in :meth:`close`.
    """

    def __init__(
        self,
        conn: libvirt.virConnect | None = None,
        *,
        uri: str | None = None,
        readonly: bool = True,
        name: str | None = None,
        history: int = 1000,
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
            conn = open_libvirt(uri, readonly)
            self.owned = True
        else:
            self.owned = False
            readonly = bool(conn.isReadOnly()) if hasattr(conn, "isReadOnly") else readonly
        self.conn = conn
        self.uri: str = conn.getURI()
        self.readonly = readonly
        self.name = name or self.uri
        self._watch, self.shares_connection = self._open_watch(conn)
        self.hub = EventHub(self._watch, self.name)
        self.closed_reason: str | None = None
        #: the latest events of every family, oldest first (``%virt events``)
        self.history: deque[Event] = deque(maxlen=history)
        self.dropped = 0
        self._recorder: Subscription | None = None
        if history:
            self._recorder = self.hub.subscribe(self._record)
        self._watch.registerCloseCallback(self._closed_on_any_thread, None)

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "read-write"
        state = f"closed ({self.closed_reason})" if self.closed_reason else "open"
        return f"<ipyvirt.Connection {self.name!r} {self.uri} {mode} {state}>"

    def _open_watch(self, conn: libvirt.virConnect) -> tuple[libvirt.virConnect, bool]:
        try:
            return libvirt.openReadOnly(self.uri), False
        except libvirt.libvirtError as err:
            log.info("ipyvirt: watching %s on its own connection (%s)", self.uri, err)
            return conn, True

    def _record(self, event: Event) -> None:
        if len(self.history) == self.history.maxlen:
            self.dropped += 1
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

    def _closed_on_any_thread(self, conn: Any, reason: int, opaque: Any) -> None:
        # libvirt calls this where it noticed: usually ipyvirt's io thread
        self._runtime.call_soon(self._closed, reason)

    def _closed(self, reason: int) -> None:
        self.closed_reason = close_reason_name(reason)
        self.hub.emit(decode(self.name, "connection", "close", "", (reason,)))

    def close(self) -> None:
        """Stop watching: deregister everything; close the connections ipyvirt opened."""
        self.hub.close()
        try:
            self._watch.unregisterCloseCallback()
        except libvirt.libvirtError:
            pass
        if not self.shares_connection:
            _close_quietly(self._watch)
        if self.owned:
            _close_quietly(self.conn)
        self.closed_reason = self.closed_reason or "client"


def _close_quietly(conn: libvirt.virConnect) -> None:
    try:
        conn.close()
    except libvirt.libvirtError:
        pass
