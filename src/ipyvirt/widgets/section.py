"""One part of the explorer (the host, networks, storage, ...) as one comm, read when shown.

A :class:`Section` reads nothing until a view of it is on screen (the view says
``{"do": "hello"}`` when it first becomes visible, or code calls :meth:`Section.load`): an
explorer opened on a host with thousands of objects costs a read of what the user looks at
only. From then on it follows libvirt's events for its family (``network``, ``pool``,
``nodedev``, ``secret``): an event marks it stale, and one coalesced re-read off the main
loop sets :attr:`Section.data` (one comm message). That re-read reads again only the objects
the events named, where the section can (:meth:`Section._update`): on a host of 100 networks,
one network's event costs a listing and that network's read, not a hundred reads. Where the
driver cannot send those events it re-reads every *every* seconds instead, and
:attr:`Section.live` says which, in words.

Actions (start a network, delete a volume, ...) run off the loop on the connection the user
acts through; their outcome is one line (:attr:`Section.outcome`), an error saying what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

import libvirt
import traitlets

from ipyvirt.connection import Connection
from ipyvirt.hub import Event, Subscription
from ipyvirt.models.offloop import OffLoop
from ipyvirt.names import event_ids
from ipyvirt.widgets.base import Coalescer, Repeater
from ipyvirt.widgets.view import View, css, esm

__all__ = ["READ_ONLY", "Section"]

log = logging.getLogger("ipyvirt")

#: what an action on a read-only connection says (the view disables it with this title)
#: an event family in words
_FAMILY_WORDS = {"network": "network", "pool": "storage pool", "nodedev": "node device"}

READ_ONLY = "read-only connection: %virt connect --rw (or ipyvirt.Connection(readonly=False)) to"


class Section(View):
    """A part of the explorer: :meth:`_read` gives what the view draws (a plain dict,
    read on a worker), :meth:`_act` does what the view asks. Subclasses set ``KIND`` (the
    view's part of explorer.js), ``FAMILY`` (the event family it follows, "" for none) and
    ``WHAT`` (its objects, in words)."""

    _esm = esm("explorer")
    _css = css("explorer")

    KIND: ClassVar[str] = ""
    FAMILY: ClassVar[str] = ""
    WHAT: ClassVar[str] = ""

    #: which part of explorer.js draws it
    kind = traitlets.Unicode().tag(sync=True)
    #: what the view draws; {} until the first read is in
    data = traitlets.Dict().tag(sync=True)
    #: how it keeps current, in words ("live: libvirt's network events")
    live = traitlets.Unicode().tag(sync=True)
    readonly = traitlets.Bool(True).tag(sync=True)
    #: the last action's outcome, one line; an error starts with "error: "
    outcome = traitlets.Unicode().tag(sync=True)

    def __init__(
        self,
        conn: Connection | libvirt.virConnect,
        *,
        interval: float = 0.05,
        every: float = 10.0,
    ) -> None:
        super().__init__(kind=self.KIND)
        self._live(conn)
        self.readonly = bool(self.conn.readonly)
        loop = self._rt.main_loop
        self._reads = OffLoop(loop, name=f"ipyvirt-{self.KIND}")
        self._acts = OffLoop(loop, name=f"ipyvirt-{self.KIND}-act")
        self._coalescer = Coalescer(loop, interval, self._read)
        self._repeater = Repeater(loop, every, self.refresh)
        self._every = every
        self._subscription: Subscription | None = None
        self._again = False
        #: the objects events named since the last read began (None: read everything)
        self._changed: set[str] | None = None
        #: reads applied so far (tests wait on it)
        self.reads = 0
        #: the view asked, or :meth:`load` was called: it reads and follows events
        self.loaded = False

    # -- following -------------------------------------------------------------------------

    def load(self) -> None:
        """Read now and follow changes from then on (a view does it when first shown)."""
        if self.loaded or self._shut:
            return
        self.loaded = True
        families = ["connection"] + ([self.FAMILY] if self.FAMILY else [])
        self._subscription = self.conn.subscribe(self._on_event, families=families)
        self.live = self._how_live()
        if self.live.startswith("re-read"):
            self._repeater.start()
        self._read()

    def _how_live(self) -> str:
        """Whether the driver sends this family's events; if not, a periodic re-read."""
        if not self.FAMILY:
            return f"re-read every {self._every:g} s"
        kinds = event_ids(self.FAMILY).values()
        missing = {(self.FAMILY, k) for k in kinds} & self.conn.hub.unsupported
        words = _FAMILY_WORDS.get(self.FAMILY, self.FAMILY)
        if len(missing) == len(kinds):
            return f"re-read every {self._every:g} s: this driver sends no {words} events"
        return f"live: libvirt's {words} events"

    def _on_event(self, event: Event) -> None:
        if event.family == "connection":
            if event.name != "reconnected":
                return  # closed: nothing to read until it is back
            self._changed = None  # what changed meanwhile is unknown
        elif self._changed is not None:
            self._changed.add(event.subject)
        self._coalescer.poke()

    def refresh(self) -> None:
        """Read everything again now (what the view's refresh button asks)."""
        self._changed = None
        self._coalescer.poke()

    # -- reading (blocking libvirt calls: on a worker, applied on the main loop) -----------

    def _read(self) -> None:
        if self._shut or not self.loaded:
            return
        if self._reads.busy:
            self._again = True  # what changed meanwhile is read right after
            return
        self._again = False
        changed, self._changed = self._changed, set()
        last = self.data
        if changed is None or not last or "error" in last or last.get("supported") is False:
            self._reads.submit(lambda: self._snapshot(self.conn.reader), self._apply, self._fail)
        else:
            self._reads.submit(
                lambda: self._update(self.conn.reader, last, changed), self._apply, self._fail
            )

    def _snapshot(self, reader: libvirt.virConnect) -> dict[str, Any]:
        """What the view draws, read from libvirt (on a worker)."""
        raise NotImplementedError

    def _update(
        self, reader: libvirt.virConnect, last: dict[str, Any], changed: set[str]
    ) -> dict[str, Any]:
        """What the view draws, from *last* (what it draws now) and a read of the objects
        named in *changed* (on a worker); by default everything is read again."""
        return self._snapshot(reader)

    def _apply(self, data: dict[str, Any]) -> None:
        self.data = data
        self.reads += 1
        if data.get("supported") is False:  # nothing to follow (the test driver's secrets)
            self._repeater.cancel()
            self.live = "nothing to follow"  # the view says why in its place
        if self._again:
            self._read()

    def _fail(self, err: BaseException) -> None:
        why = err.get_error_message() if isinstance(err, libvirt.libvirtError) else str(err)
        log.info("ipyvirt: reading %s: %s", self.WHAT, why)
        self.data = {**self.data, "error": f"cannot read the {self.WHAT}: {why}"}
        self._changed = None  # the objects named since were not read: everything next time
        if self._again:
            self._read()

    # -- acting ----------------------------------------------------------------------------

    def _handle(self, do: str, content: dict[str, Any]) -> None:
        if do == "hello":
            self.load()
        elif do == "refresh":
            self.refresh()
        else:
            self.act(do, **{k: v for k, v in content.items() if k != "do"})

    def act(self, what: str, /, **fields: Any) -> None:
        """Do *what* (an action of this section) with *fields*, off the loop; the outcome
        goes to :attr:`outcome`, the data is read again after it."""
        try:
            action = self._action(what, fields)
        except (KeyError, TypeError, ValueError) as err:  # a view (or a caller) gave bad fields
            self.outcome = f"error: {what}: {str(err).strip(chr(39))}"
            return
        if action is None:
            self.outcome = f"error: {self.WHAT} cannot {what!r}"
            return
        describe, run, needs_rw = action
        if needs_rw and self.readonly:
            self.outcome = f"error: {READ_ONLY} {describe}"
            return
        self.outcome = f"{describe} ..."

        def done(_: object) -> None:
            self.outcome = f"done: {describe}"
            self.refresh()

        def failed(err: BaseException) -> None:
            why = err.get_error_message() if isinstance(err, libvirt.libvirtError) else str(err)
            self.outcome = f"error: {describe}: {' '.join(str(why).split())}"
            self.refresh()

        if not self._acts.submit(lambda: run(self.conn.conn), done, failed):
            self.outcome = f"error: busy with the last action; try {describe} again in a moment"

    def _action(
        self, what: str, fields: dict[str, Any]
    ) -> tuple[str, Callable[[libvirt.virConnect], object], bool] | None:
        """(what it does in words, the call on the acting connection, needs read-write), or
        None for an action this section does not have."""
        return None

    def _closing(self) -> None:
        if self._subscription is not None:
            self._subscription.cancel()
        self._coalescer.cancel()
        self._repeater.cancel()
        self._reads.close()
        self._acts.close()
