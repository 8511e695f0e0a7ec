"""A domain table's thumbnail column, kernel side: the page's pictures read off the loop.

The view asks ``{"do": "thumbs"}`` when it comes on screen and then every *interval* while
it stays there (scrolled into view, its browser tab visible); each ask reads the rows that
are due (:class:`~ipyvirt.models.thumbnails.ThumbSchedule`), one read at a time on a worker
of its own (an :class:`~ipyvirt.models.offloop.OffLoop`: a screenshot is an RPC and a
stream read, it never blocks a cell), and sends what changed in one message. A new page
reads its rows soon, once a view watches; a view's first ask (``fresh``) gets every picture
held, as a second view of the same table needs them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import libvirt

from ipyvirt import runtime
from ipyvirt.models.offloop import OffLoop
from ipyvirt.models.thumbnails import Thumb, ThumbSchedule, message, read_thumbs
from ipyvirt.widgets.base import Coalescer

__all__ = ["TableThumbs"]

log = logging.getLogger("ipyvirt")

#: how soon after a page change its new rows are read (a burst of page turns is one read)
_SOON = 0.2

Send = Callable[[dict[str, object], list[bytes]], object]


class TableThumbs:
    """The thumbnails of a table's page, read on *conn* (read-write): *uuid_of(key)* gives
    a row's domain UUID (None: gone), *send(content, buffers)* reaches the views. Used on
    the main loop's thread."""

    def __init__(
        self,
        rt: runtime.Runtime,
        interval: float,
        conn: Callable[[], libvirt.virConnect],
        uuid_of: Callable[[str], str | None],
        send: Send,
    ) -> None:
        self.schedule = ThumbSchedule(interval)
        self._conn, self._uuid_of, self._send = conn, uuid_of, send
        self._reads = OffLoop(rt.main_loop, name="ipyvirt-thumbs")
        self._soon = Coalescer(rt.main_loop, _SOON, self.read)
        self._again = False
        #: the views' asks, pictures and words sent to them, reads applied: tests read these
        self.asks = 0
        self.sent = 0
        self.reads = 0

    def page(self, wanted: set[str]) -> None:
        """The page shows *wanted* (its running and paused rows' keys)."""
        if self.schedule.show(wanted) and self.schedule.watched(time.monotonic()):
            self._soon.poke()

    def ask(self, fresh: bool) -> None:
        """A view on screen asks (*fresh*: it has no picture yet)."""
        self.asks += 1
        self.schedule.watch(time.monotonic())
        if fresh and self.schedule.have:
            self._deliver(self.schedule.have)
        self.read()

    def read(self) -> None:
        """Read the due rows off the loop, after the read under way."""
        if self._reads.closed:
            return
        if self._reads.busy:
            self._again = True
            return
        self._again = False
        now = time.monotonic()
        uuids = {}
        for key in self.schedule.to_read(now):
            uuid = self._uuid_of(key)
            if uuid is not None:
                uuids[key] = uuid
        if uuids:
            self.schedule.reading(uuids, now)
            conn = self._conn()
            self._reads.submit(lambda: read_thumbs(conn, uuids), self._apply, self._failed)

    def _apply(self, found: dict[str, Thumb]) -> None:
        self.reads += 1
        changed = self.schedule.got(found, time.monotonic())
        if changed:
            self._deliver(changed)
        if self._again:
            self.read()

    def _failed(self, err: BaseException) -> None:
        # read_thumbs turns libvirt's refusals into words: this is a bug; the rows are due
        # again an interval later
        self.reads += 1
        log.error("ipyvirt: reading the table's thumbnails failed", exc_info=err)

    def _deliver(self, thumbs: dict[str, Thumb]) -> None:
        content, buffers = message(thumbs)
        self.sent += len(thumbs)
        self._send(content, buffers)

    @property
    def settled(self) -> bool:
        return not (self._reads.busy or self._soon.pending)

    def close(self) -> None:
        """Stop; a read under way ends first (it uses the connection)."""
        self._soon.cancel()
        self._reads.close()
