"""libvirt's events as records, and one registration per event fanned out to many listeners.

libvirt refuses a second callback for the same event ID and filter on one connection
("event callback already tracked": libvirt-python registers one C function per event ID), so
an :class:`EventHub` holds one registration per (family, event ID) and calls every
subscriber from it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import libvirt

from ipyvirt.names import (
    FAMILIES,
    close_reason_name,
    event_detail_name,
    event_ids,
    event_name,
)

__all__ = ["Event", "EventHub", "Subscription"]

log = logging.getLogger("ipyvirt")

# family -> (virConnect method that registers, the one that deregisters)
_REGISTER: Final = {
    "domain": ("domainEventRegisterAny", "domainEventDeregisterAny"),
    "network": ("networkEventRegisterAny", "networkEventDeregisterAny"),
    "pool": ("storagePoolEventRegisterAny", "storagePoolEventDeregisterAny"),
    "nodedev": ("nodeDeviceEventRegisterAny", "nodeDeviceEventDeregisterAny"),
    "secret": ("secretEventRegisterAny", "secretEventDeregisterAny"),
}

# the names of the values libvirt passes with each non-lifecycle event, by event ID name
_ARGS: Final[dict[str, tuple[str, ...]]] = {
    "rtc_change": ("utcoffset",),
    "watchdog": ("action",),
    "io_error": ("src_path", "dev_alias", "action"),
    "io_error_reason": ("src_path", "dev_alias", "action", "reason"),
    "graphics": ("phase", "local", "remote", "auth_scheme", "subject"),
    "block_job": ("disk", "type", "status"),
    "block_job_2": ("disk", "type", "status"),
    "disk_change": ("old_src", "new_src", "dev_alias", "reason"),
    "tray_change": ("dev_alias", "reason"),
    "pmwakeup": ("reason",),
    "pmsuspend": ("reason",),
    "balloon_change": ("actual_kib",),
    "pmsuspend_disk": ("reason",),
    "device_removed": ("dev_alias",),
    "tunable": ("params",),
    "agent_lifecycle": ("state", "reason"),
    "device_added": ("dev_alias",),
    "migration_iteration": ("iteration",),
    "job_completed": ("params",),
    "device_removal_failed": ("dev_alias",),
    "metadata_change": ("type", "nsuri"),
    "block_threshold": ("dev", "path", "threshold", "excess"),
    "memory_failure": ("recipient", "action", "flags"),
    "memory_device_size_change": ("alias", "size"),
}

_seq = itertools.count(1)
_TRACEBACKS = 5
_SUMMARY_EVERY = 1000


@dataclass(frozen=True)
class Event:
    """One libvirt event, decoded."""

    #: increasing across the process: the order libvirt delivered events in
    seq: int
    #: seconds since the epoch, when ipyvirt received it
    time: float
    #: the ipyvirt connection's name
    connection: str
    #: "domain", "network", "pool", "nodedev", "secret" or "connection"
    family: str
    #: the event ID's name: "lifecycle", "reboot", "balloon_change", ...; "close"
    kind: str
    #: the domain's (network's, pool's ...) name; a secret's UUID; "" for the connection
    subject: str
    #: lifecycle events: "started", "suspended" ...; otherwise the kind
    name: str
    #: lifecycle events: "booted", "paused" ...; otherwise "key=value, ..."
    detail: str
    #: the values libvirt passed, undecoded
    args: tuple[Any, ...] = ()
    #: the thread libvirt ran the callback on
    thread: str = field(default="", compare=False)

    @property
    def clock(self) -> str:
        """The local time it arrived, ``HH:MM:SS``."""
        return time.strftime("%H:%M:%S", time.localtime(self.time))

    def __str__(self) -> str:
        what = f"{self.family} {self.subject}".strip()
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.clock} {what}: {self.name}{detail}"


def decode(connection: str, family: str, kind: str, subject: str, args: tuple[Any, ...]) -> Event:
    """Build the :class:`Event` for a callback's values."""
    if family == "connection" and kind == "reconnect":
        name, detail = "reconnected", f"after {args[0]} attempts" if args else ""
    elif family == "connection":
        name, detail = "closed", close_reason_name(args[0]) if args else ""
    elif kind == "lifecycle" and len(args) >= 2:
        name = event_name(family, args[0])
        detail = event_detail_name(family, args[0], args[1])
    else:
        name = kind
        names = _ARGS.get(kind, ())
        detail = ", ".join(
            f"{names[i] if i < len(names) else i}={value}" for i, value in enumerate(args)
        )
    return Event(
        next(_seq),
        time.time(),
        connection,
        family,
        kind,
        subject,
        name,
        detail,
        args,
        threading.current_thread().name,
    )


def _kinds(family: str) -> Iterable[str]:
    return ("close", "reconnect") if family == "connection" else event_ids(family).values()


def _subject(family: str, obj: Any) -> str:
    try:
        return str(obj.UUIDString() if family == "secret" else obj.name())
    except libvirt.libvirtError:
        return "?"


class Subscription:
    """A listener's place in an :class:`~ipyvirt.hub.EventHub`; :meth:`cancel` leaves it."""

    def __init__(
        self,
        hub: EventHub,
        callback: Callable[[Event], object],
        wants: frozenset[tuple[str, str]],
        subject: str | None,
    ) -> None:
        self.hub = hub
        self.callback = callback
        self.wants = wants
        self.subject = subject
        self.active = True
        #: how often its callback raised
        self.errors = 0

    def __repr__(self) -> str:
        kinds = sorted({f"{fam}/{kind}" for fam, kind in self.wants})
        what = ", ".join(kinds[:3]) + (f" and {len(kinds) - 3} more" if len(kinds) > 3 else "")
        about = f" about {self.subject}" if self.subject else ""
        state = "active" if self.active else "cancelled"
        return f"<ipyvirt.Subscription to {what}{about} on {self.hub.connection}, {state}>"

    def cancel(self) -> None:
        """Stop calling back; deregister what no other subscriber wants. Again: does nothing."""
        if self.active:
            self.active = False
            self.hub._leave(self)


class EventHub:
    """The event registrations of one libvirt connection, shared by every subscriber.

    Subscribers are called on the thread libvirt dispatches events on: with ipyvirt's loop,
    the main loop's thread (in a kernel, the main thread, between cells).
    """

    # Subscribing and cancelling may come from any thread (a cell or a widget handler on a
    # kernel subshell) while the main loop emits. Invariant: every change of the subscribers
    # and of libvirt's registrations happens under _lock, so the registrations always equal
    # what the live subscriptions want (one per event ID: a second one libvirt refuses as
    # "already tracked"); emit reads _subs, a tuple replaced whole, without the lock. The
    # one exception is detach() (a close), which must not wait for the lock: it sets the
    # closed flag and cancels every subscription without it; the registrations then stay,
    # serving no one, until deregister_all() takes them away under the lock.

    def __init__(self, conn: libvirt.virConnect, connection: str) -> None:
        self.conn = conn
        self.connection = connection
        self._lock = threading.RLock()
        self._subs: tuple[Subscription, ...] = ()
        # (family, kind) -> libvirt's callback id
        self._registered: dict[tuple[str, str], int] = {}
        #: subscriber callbacks that raised
        self.errors = 0
        #: (family, kind) pairs this libvirt could not register (older than the binding)
        self.unsupported: set[tuple[str, str]] = set()
        # set once by detach(), before anything else it does: from then on nobody is called
        # back, subscribe() gives cancelled subscriptions, and a cancel() that begins
        # afterwards calls no libvirt (one under way when it is set may still deregister:
        # under the lock, so deregister_all() sees what it left)
        self._closed = False

    def subscribe(
        self,
        callback: Callable[[Event], object],
        *,
        families: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        subject: str | None = None,
    ) -> Subscription:
        """Call ``callback(event)`` for every event of *families* (default: all) of *kinds*
        (default: every event ID of those families), about *subject* if given."""
        fams = list(families) if families is not None else [*FAMILIES, "connection"]
        for fam in fams:
            if fam not in FAMILIES and fam != "connection":
                known = ", ".join([*FAMILIES, "connection"])
                raise ValueError(f"unknown event family {fam!r}: use one of {known}")
        wanted_kinds = set(kinds) if kinds is not None else None
        wants = frozenset(
            (fam, kind)
            for fam in fams
            for kind in _kinds(fam)
            if wanted_kinds is None or kind in wanted_kinds
        )
        sub = Subscription(self, callback, wants, subject)
        if self._closed:  # first without the lock, which a closing thread may hold long
            sub.active = False
            return sub
        with self._lock:
            if self._closed:
                sub.active = False
                return sub
            self._subs = (*self._subs, sub)
            for fam, kind in sorted(wants):
                if fam != "connection":  # the close callback is the Connection's
                    self._ensure(fam, kind)
            if self._closed:  # detached meanwhile, perhaps before this one was in _subs
                sub.active = False
                self._subs = tuple(s for s in self._subs if s is not sub)
        return sub

    def _ensure(self, family: str, kind: str) -> None:
        key = (family, kind)
        if key in self._registered or key in self.unsupported:
            return
        event_id = next(i for i, k in event_ids(family).items() if k == kind)
        register = getattr(self.conn, _REGISTER[family][0])

        def callback(conn: Any, obj: Any, *rest: Any) -> None:
            self._emit(family, kind, _subject(family, obj), rest[:-1])

        try:
            self._registered[key] = register(None, event_id, callback, None)
        except libvirt.libvirtError as err:
            self.unsupported.add(key)
            if err.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
                # an event family or ID this driver or library does not have: expected
                log.debug("ipyvirt: cannot register %s %s events: %s", family, kind, err)
            else:  # e.g. "event callback already tracked" on a shared connection
                log.warning(
                    "ipyvirt: %s %s events will not arrive on %s: %s",
                    family,
                    kind,
                    self.connection,
                    err.get_error_message(),
                )

    def _leave(self, sub: Subscription) -> None:
        if self._closed:
            return  # detached: deregister_all() deregisters, on the closing thread
        with self._lock:
            if self._closed:
                return
            self._subs = tuple(s for s in self._subs if s is not sub)
            still: set[tuple[str, str]] = set().union(*(s.wants for s in self._subs))
            for key in [k for k in self._registered if k not in still]:
                self._deregister(key)

    def _deregister(self, key: tuple[str, str]) -> None:
        cb_id = self._registered.pop(key)
        try:
            getattr(self.conn, _REGISTER[key[0]][1])(cb_id)
        except libvirt.libvirtError as err:  # the connection is gone already
            log.debug("ipyvirt: deregistering %s: %s", key, err)

    def _emit(self, family: str, kind: str, subject: str, args: tuple[Any, ...]) -> None:
        self.emit(decode(self.connection, family, kind, subject, args))

    def emit(self, event: Event) -> None:
        """Hand *event* to every subscriber that wants it; one that raises is logged."""
        key = (event.family, event.kind)
        for sub in self._subs:
            if not sub.active:
                continue
            if key not in sub.wants:
                continue
            if sub.subject is not None and event.subject != sub.subject:
                continue
            try:
                sub.callback(event)
            except Exception:
                sub.errors += 1
                self.errors += 1
                # a callback that fails on every event must not flood the notebook: the
                # first few with their traceback, then a count now and then
                if sub.errors <= _TRACEBACKS:
                    log.exception("ipyvirt: an event subscriber raised on %s", event)
                elif sub.errors % _SUMMARY_EVERY == 0:
                    log.error(
                        "ipyvirt: the subscriber %r has raised %d times (tracebacks stop after %d)",
                        sub.callback,
                        sub.errors,
                        _TRACEBACKS,
                    )

    def rebind(self, conn: libvirt.virConnect) -> None:
        """Register everything the subscribers want on *conn*, a replacement for a
        connection that closed (its registrations went with it)."""
        with self._lock:
            self.conn = conn
            self._registered.clear()
            self.unsupported.clear()
            for fam, kind in sorted(set().union(*(s.wants for s in self._subs))):
                if fam != "connection":
                    self._ensure(fam, kind)

    def registrations(self) -> dict[tuple[str, str], int]:
        """(family, kind) -> libvirt callback id, for what is registered now."""
        with self._lock:
            return dict(self._registered)

    def detach(self) -> None:
        """Cancel every subscription, without a call to libvirt (a frozen daemon would hold
        it): libvirt's registrations stay until :meth:`deregister_all`. Not under the lock,
        which a thread deregistering from a frozen daemon may hold. The closed flag is set
        first; a subscribe() under way checks it again once its subscription is in _subs,
        so either it sees the flag and cancels its own, or this sees the subscription."""
        self._closed = True
        for sub in self._subs:
            sub.active = False
        self._subs = ()

    def deregister_all(self) -> None:
        """Deregister everything from libvirt (calls to the daemon: any thread but the main
        loop's may wait for them)."""
        with self._lock:
            for key in list(self._registered):
                self._deregister(key)

    def close(self) -> None:
        """Cancel every subscription and deregister everything."""
        self.detach()
        self.deregister_all()
