"""One connection's domains kept current in a domain table's model: what a
:class:`~ipyvirt.widgets.DomainTable` does for its connection, and a fleet's table for each
host.

An event marks its domain dirty; a coalesced re-read (at most 1/*interval* a second, off the
loop) updates the model; every *resync* seconds everything is read again (libvirt sends no
event for some changes: autostart). Rows carry *host* ("" in a one-host table).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import libvirt

from ipyvirt import runtime
from ipyvirt.connection import Connection
from ipyvirt.domains import DomainRow, query_all_with_handles, query_domain, shown_reason
from ipyvirt.hub import Event
from ipyvirt.leases import Closing
from ipyvirt.models.domain_table import DomainTableModel
from ipyvirt.models.offloop import OffLoop
from ipyvirt.names import state_name
from ipyvirt.widgets.base import Coalescer, Repeater

__all__ = ["HostRows"]

log = logging.getLogger("ipyvirt")

# lifecycle events after which only a domain's state and reason differ
_STATE_ONLY = frozenset({"suspended", "resumed", "pmsuspended"})

_Found = tuple[DomainRow, libvirt.virDomain]
#: (state, reason) by domain name from the bulk call; whole rows (None: gone) by name
_Read = tuple[dict[str, tuple[int, int]], dict[str, "_Found | None"]]


class HostRows:
    """Keeps *conn*'s domains in *model* as rows of *host*; calls *changed()* when what it
    says about the connection (``closed``) changed. Used on the main loop's thread."""

    def __init__(
        self,
        conn: Connection,
        model: DomainTableModel,
        rt: runtime.Runtime,
        *,
        host: str = "",
        interval: float = 0.05,
        resync: float = 30.0,
        changed: Callable[[], object] = lambda: None,
    ) -> None:
        self.conn, self.model, self.host = conn, model, host
        self._changed = changed
        # libvirt keeps a connection open while any of its domain handles lives: these are
        # held here, the model holds plain data only
        self._handles: dict[str, libvirt.virDomain] = {}
        #: domain name -> whether it needs a full re-read (False: its state alone)
        self._dirty: dict[str, bool] = {}
        #: why the rows are stale ("connection closed (eof)"), "" while live
        self.closed = ""
        self._reads = OffLoop(rt.main_loop, name="ipyvirt-table")
        self._want_all = False
        self._coalescer = Coalescer(rt.main_loop, interval, self._flush)
        self._resync = Repeater(rt.main_loop, resync, self.resync_all)
        self._subscription = conn.subscribe(self._on_event, families=["domain", "connection"])

    def load_now(self) -> None:
        """Read every domain now, on this thread (a table's first picture)."""
        self._load(_tagged(query_all_with_handles(self.conn.reader), self.host))

    def start(self) -> None:
        self._resync.start()

    def handle(self, key: str) -> libvirt.virDomain | None:
        return self._handles.get(key)

    # -- events ---------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if event.kind == "close":
            self.closed = f"connection closed ({event.detail})"
            self._changed()
            return
        if event.kind == "reconnect":
            # registrations are back already: what changed while we were away shows now
            self.closed = ""
            self._dirty.clear()
            self._changed()
            self.resync_all()
            return
        # a pause or a resume changes the state alone: one bulk stats call re-reads those
        state_only = event.kind == "lifecycle" and event.name in _STATE_ONLY
        self._dirty[event.subject] = self._dirty.get(event.subject, False) or not state_only
        self._coalescer.poke()

    def _load(self, rows: dict[str, _Found]) -> None:
        self._handles = {key: dom for key, (_, dom) in rows.items()}
        self.model.load((row for row, _ in rows.values()), self.host if self.host else None)

    # Reading libvirt blocks (an RPC per call; behind thousands of queued events on a busy
    # daemon socket, for a while): self._reads (an OffLoop, its invariants beside it) runs
    # one read at a time on a worker and applies it on the main loop, also when the read
    # raises. What became dirty meanwhile is read next; a failed read is logged and its
    # domains are read again at their next event or the next full re-read (resync), not
    # at once: a read that fails for good must not spin.

    def _flush(self) -> None:
        if self._reads.busy:
            return  # the read under way pokes again when it is applied
        dirty, self._dirty = self._dirty, {}
        states = {}
        for name, whole in dirty.items():
            key = self.model.key_of(name, self.host)
            if not whole and key is not None and key in self._handles:
                states[name] = self._handles[key]
        full = [n for n in dirty if n not in states]
        reader, host = self.conn.reader, self.host
        read = self.conn.leases.holding(lambda: _read(reader, states, full, host))
        self._reads.submit(read, self._apply, self._failed)

    def _apply(self, read: _Read) -> None:
        states, rows = read
        with self.model.batch():  # one redraw for the whole read
            for name, (state, reason) in states.items():
                self.model.set_state(
                    name, state_name(state), shown_reason(state, reason), self.host
                )
            for name, found in rows.items():
                self._put(name, found)
        self._after_read()

    def _failed(self, err: BaseException) -> None:
        if isinstance(err, Closing):
            self._closing()
            return
        log.error("ipyvirt: re-reading domains failed", exc_info=err)
        self._after_read()

    def _after_read(self) -> None:
        """After a read: the full re-read asked for meanwhile, else what became dirty."""
        if self._want_all:
            self.resync_all()
        elif self._dirty:
            self._coalescer.poke()

    def _put(self, name: str, found: _Found | None) -> None:
        old = self.model.key_of(name, self.host)
        if old is not None:
            self._handles.pop(old, None)
        if found is not None:
            self._handles[found[0].key] = found[1]
        self.model.put(name, None if found is None else found[0], self.host)

    def resync_all(self) -> None:
        """Read every domain again, off the loop (after the read under way)."""
        if self.closed:
            return  # nothing to read until the connection is back
        if self._reads.busy:
            self._want_all = True  # after the read under way
            return
        self._want_all = False
        reader, host = self.conn.reader, self.host
        read = self.conn.leases.holding(lambda: _read_all(reader, host))
        self._reads.submit(read, self._apply_all, self._failed_all)

    def _apply_all(self, rows: dict[str, _Found] | None) -> None:
        if rows is not None:
            self._load(rows)
        self._after_read()

    def _failed_all(self, err: BaseException) -> None:
        if isinstance(err, Closing):
            self._closing()
            return
        log.error("ipyvirt: re-reading every domain failed", exc_info=err)
        self._after_read()

    def _closing(self) -> None:
        """The connection is closing (closed by someone else than our owner): nothing more
        to read, and the rows say so."""
        if not self.closed:
            self.closed = "connection closed (client)"
            self._changed()

    @property
    def settled(self) -> bool:
        """No event is waiting to be shown."""
        return (
            not self._dirty
            and not self._coalescer.pending
            and not self._reads.busy
            and not self._want_all
        )

    def close(self, forget: bool = False, wait: bool = True) -> None:
        """Stop; a read under way ends first (it uses the connection, which may be the
        user's: they may close it next). Without *wait* it ends on its own, for a connection
        ipyvirt closes: its read holds a lease, which that close waits for, off the loop.
        With *forget*, its rows leave the model."""
        self._reads.close(wait=wait)
        self._handles.clear()
        self._coalescer.cancel()
        self._resync.cancel()
        self._subscription.cancel()
        if forget:
            self.model.load((), self.host)


def _tagged(rows: dict[str, _Found], host: str) -> dict[str, _Found]:
    """*rows* as rows of *host*, by key."""
    if not host:
        return rows
    tagged = ((replace(row, host=host), dom) for row, dom in rows.values())
    return {row.key: (row, dom) for row, dom in tagged}


def _read(
    reader: libvirt.virConnect, states: dict[str, libvirt.virDomain], full: list[str], host: str
) -> _Read:
    """On the worker: the states of *states* in one call, whole rows for the rest."""
    found: dict[str, tuple[int, int]] = {}
    if states:
        try:
            for dom, values in reader.domainListGetStats(
                list(states.values()), libvirt.VIR_DOMAIN_STATS_STATE
            ):
                if "state.state" in values:
                    found[dom.name()] = (values["state.state"], values.get("state.reason", 0))
        except libvirt.libvirtError:
            pass  # one of them is gone: the rest are read one by one below
    rows: dict[str, _Found | None] = {}
    for name in [*full, *(n for n in states if n not in found)]:
        try:
            dom = reader.lookupByName(name)
            row = query_domain(dom)
            rows[name] = (replace(row, host=host) if host else row, dom)
        except libvirt.libvirtError:
            rows[name] = None  # undefined, or a transient domain that stopped: gone
    return found, rows


def _read_all(reader: libvirt.virConnect, host: str) -> dict[str, _Found] | None:
    try:
        return _tagged(query_all_with_handles(reader), host)
    except libvirt.libvirtError:
        return None  # closed meanwhile: its close event tells
