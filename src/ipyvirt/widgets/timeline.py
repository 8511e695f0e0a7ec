"""A picture of what happened: one lane per domain, its states as coloured spans, events as
ticks, over the last minutes, live.

The state is a :class:`~ipyvirt.models.timeline.TimelineModel`; this module feeds it (the
connection's history, its events, reads of the domains' states off the main loop) and tells
the view what changed. The view (``static/timeline.js``) asks for the whole picture when it
renders (``{"do": "hello"}``) and then gets only changes, at most 1/*interval* messages a
second; it moves the time axis by itself, so nothing is sent while nothing happens.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import libvirt
import traitlets

from ipyvirt.connection import Connection
from ipyvirt.hub import Event
from ipyvirt.models.offloop import OffLoop
from ipyvirt.models.timeline import GONE, TimelineModel, says_state
from ipyvirt.names import state_name
from ipyvirt.widgets.base import Coalescer, Repeater
from ipyvirt.widgets.view import View, css, esm

__all__ = ["Timeline"]

log = logging.getLogger("ipyvirt")

# how often spans and ticks that left the window are forgotten (the view prunes its own)
_PRUNE_EVERY = 5.0

#: a read's result: when it began, domain name -> state, whether every domain was read
_Read = tuple[float, dict[str, str], bool]


def _read_states(reader: libvirt.virConnect, names: list[str] | None) -> _Read:
    """On a worker: the states of *names* (None: of every domain)."""
    at = time.time()  # before reading: an event after this is newer than what is read
    if names is None:
        every = {d.name(): state_name(d.state()[0]) for d in reader.listAllDomains()}
        return at, every, True
    states = {}
    for name in names:
        try:
            states[name] = state_name(reader.lookupByName(name).state()[0])
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise
            states[name] = GONE
    return at, states, False


class Timeline(View):
    """Every domain on *conn* as a lane: its states over the last *minutes* as coloured
    spans, its events as ticks, "now" at the right edge.

    With *history* it starts from the events *conn* recorded before
    (:attr:`ipyvirt.Connection.history`). At most *max_lanes* lanes are shown (past that,
    the most recently active ones), at most 1/*interval* messages a second are sent. What
    it shows lives in ``model`` (:class:`~ipyvirt.models.timeline.TimelineModel`).
    """

    _esm = esm("timeline")
    _css = css("timeline")
    #: the URI the lanes are on (the view's title and empty state)
    uri = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        conn: Connection | libvirt.virConnect,
        *,
        minutes: float = 5,
        history: bool = True,
        max_lanes: int = 40,
        interval: float = 0.05,
    ) -> None:
        # bad arguments fail before a comm opens (super().__init__ opens it)
        model = TimelineModel(minutes, max_lanes=max_lanes)
        if not isinstance(conn, Connection | libvirt.virConnect):
            raise TypeError(
                f"expected a libvirt connection or an ipyvirt.Connection, got {type(conn).__name__}"
            )
        super().__init__()
        self._live(conn)
        self.uri = self.conn.uri
        self.model = model
        if history:
            model.seed(self.conn.history)
        loop = self._rt.main_loop
        self._coalescer = Coalescer(loop, interval, self._flush)
        self._pruner = Repeater(loop, _PRUNE_EVERY, self._prune)
        self._reads = OffLoop(loop, name="ipyvirt-timeline")
        #: domains whose state to read again (None: every domain)
        self._unread: set[str] | None = None
        #: the first read of every domain's state is in
        self.ready = False
        self._subscription = self.conn.subscribe(self._on_event, families=["domain", "connection"])
        self._pruner.start()
        self._read()

    def _on_event(self, event: Event) -> None:
        if event.family == "connection":
            if event.name == "reconnected":  # what changed meanwhile sent no event here
                self._unread = None
                self._coalescer.poke()
            return
        self.model.add(event)
        if self._unread is not None and not says_state(event):
            # a lifecycle event that leaves the state open ("shutdown": the guest shut
            # down, the domain may not have stopped yet): read it. One that says the state
            # needs no read: under a storm of pauses and resumes, reading after each flush
            # kept the daemon and the io thread busy for nothing
            self._unread.add(event.subject)
        self._coalescer.poke()

    # Reads block (libvirt RPCs): one at a time on a worker (self._reads, an OffLoop),
    # applied here on the main loop; what an event asked to read meanwhile is read next.

    def _read(self) -> None:
        if self._reads.busy or self._shut:
            return
        names = None if self._unread is None else sorted(self._unread)
        if names == []:
            return
        self._unread = set()
        self._reads.submit(lambda: _read_states(self.conn.reader, names), self._apply, self._fail)

    def _apply(self, read: _Read) -> None:
        at, states, complete = read
        self.model.observe(states, at, complete=complete)
        if complete and not self.ready:
            self.ready = True
            self._send_picture()
        self._coalescer.poke()

    def _fail(self, err: BaseException) -> None:
        log.error("ipyvirt: the timeline could not read domain states", exc_info=err)
        if not self.ready:  # say what is known rather than "reading" for ever
            self.ready = True
            self._send_picture()
        self._coalescer.poke()

    def _prune(self) -> None:
        self.model.prune()
        self._coalescer.poke()

    def _flush(self) -> None:
        changes = self.model.take_changes()
        if changes is not None:
            self.send(changes)
        self._read()

    def _send_picture(self) -> None:
        self.send({**self.model.picture(), "ready": self.ready})

    def _handle(self, do: str, content: dict[str, Any]) -> None:
        if do == "hello":  # a view rendered: it gets the whole picture, then changes
            self._send_picture()

    def _closing(self) -> None:
        self._subscription.cancel()
        self._coalescer.cancel()
        self._pruner.cancel()
        self._reads.close()

    def __repr__(self) -> str:
        shown = self.model.shown()
        m = self.model.window / 60
        minutes = f"{m:g} minute" + ("" if m == 1 else "s")
        head = (
            f"Timeline on {getattr(self, 'uri', '?')}: {_count(len(shown), 'domain')}, "
            f"{_count(self.model.events_in_window(), 'event')} in the last {minutes}"
        )
        if self.model.hidden:
            head += f" ({_count(self.model.hidden, 'more domain')} not shown)"
        lines = [head]
        for name in shown:
            states = [state for state, _, _ in self.model.spans(name)]
            if self.model.lanes[name].state == GONE:
                states.append(GONE)
            lines.append(f"  {name}: {' -> '.join(states) or 'nothing known yet'}")
        return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
