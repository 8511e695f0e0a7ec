"""A domain's screen, full size, refreshed at most every *interval* seconds while shown.

Each picture is a :func:`~ipyvirt.models.screen.screenshot` read off the main loop (an
:class:`~ipyvirt.models.offloop.OffLoop`, one read at a time) and sent to the views as one
PNG buffer. Views say ``{"do": "hello"}`` when they render and ``{"do": "bye"}`` when they
go; the refresh runs only while at least one view is shown, so a screen scrolled out of a
closed notebook costs nothing. The same feed (:class:`ScreenFeed`) draws the "screen" tab of a
:class:`~ipyvirt.widgets.DomainView` while that tab shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import libvirt
import traitlets

from ipyvirt.connection import Connection
from ipyvirt.models.offloop import OffLoop
from ipyvirt.models.screen import NoScreen, Screenshot, screenshot
from ipyvirt.widgets.base import Repeater
from ipyvirt.widgets.view import View, css, esm

__all__ = ["Screen", "ScreenFeed"]


class ScreenFeed:
    """Pictures of one screen for the views that show it: *read()* (blocking: a
    :func:`~ipyvirt.models.screen.screenshot`) off the loop every *interval* seconds while
    a view is shown (:meth:`hello` .. :meth:`bye`) or has asked lately (:meth:`ask`), and
    only while *why_not()* is "" (else *status* says it: "not running"). Each picture goes
    out as
    ``send({"kind": "shot", "width", "height"}, [png])``; *status(text)* gets "" while
    pictures come, or why none does ("no screen"). Used on the main loop's thread."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        read: Callable[[], Screenshot],
        interval: float,
        send: Callable[[dict[str, object], list[bytes]], object],
        status: Callable[[str], object],
        *,
        why_not: Callable[[], str] = lambda: "",
        name: str = "ipyvirt-screen",
    ) -> None:
        self._read_shot, self._send, self._status, self._why_not = read, send, status, why_not
        self.views = 0
        #: the latest picture, and how many were sent
        self.latest: Screenshot | None = None
        self.sent = 0
        self._loop, self.interval = loop, interval
        self._lease = float("-inf")
        self._reads = OffLoop(loop, name=name)
        self._repeater = Repeater(loop, interval, self.read)

    @property
    def wanted(self) -> bool:
        """A view shows the pictures (it said hello, or asked lately)."""
        return self.views > 0 or self._loop.time() < self._lease

    def read(self) -> None:
        """Read a picture now (off the loop), if a view wants one and none is being read."""
        if self._reads.closed:
            return
        if not self.wanted:
            self._repeater.cancel()  # the last ask expired: a browser closed says nothing
            return
        why = self._why_not()
        if why:
            self._status(why)
            return
        self._reads.submit(self._read_shot, self._apply, self._fail)

    def _apply(self, shot: Screenshot) -> None:
        self.latest = shot
        self._status("")
        if self.wanted:  # else the last view went while this was read: the next hello
            self._show(shot)

    def _show(self, shot: Screenshot) -> None:
        self.sent += 1
        self._send({"kind": "shot", "width": shot.width, "height": shot.height}, [shot.png])

    def _fail(self, err: BaseException) -> None:
        self._status("no screen" if isinstance(err, NoScreen) else str(err))

    def hello(self) -> None:
        """A view is shown: the last picture at once, a fresh one soon, then one an interval."""
        self.views += 1
        if self.latest is not None:
            self._show(self.latest)
        self.read()
        self._repeater.start()

    def bye(self) -> None:
        """A view went (or hid its picture); the last one stops the reads."""
        self.views = max(0, self.views - 1)
        if not self.wanted:
            self._repeater.cancel()

    def ask(self, on: bool, fresh: bool = False) -> None:
        """A view showing the pictures asks (*on*) when it comes on screen and then every
        interval or sooner; reads go on for 2.5 intervals after the latest ask, so a browser
        closed without a word stops them soon. ``on=False``: it hid them (another view
        showing them asks again within its interval). *fresh*: it has no picture yet."""
        if not on:
            self._lease = float("-inf")
            if not self.wanted:
                self._repeater.cancel()
            return
        first = not self.wanted
        self._lease = self._loop.time() + 2.5 * self.interval
        if (first or fresh) and self.latest is not None:
            self._show(self.latest)
        if first:
            self.read()
            self._repeater.start()

    def close(self) -> None:
        """Stop; a read under way ends first (it uses the connection)."""
        self._repeater.cancel()
        self._reads.close()


class Screen(View):
    """Screen *screen* of *dom*, full size, a new picture every *interval* seconds (at
    least 1) while a view shows it; "no screen" when the domain has none."""

    _esm = esm("screen")
    _css = css("screen")
    #: the domain's name
    name = traitlets.Unicode("").tag(sync=True)
    #: "" while pictures come; "no screen", or why the last one failed
    status = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        dom: libvirt.virDomain,
        *,
        conn: Connection | None = None,
        screen: int = 0,
        interval: float = 3.0,
    ) -> None:
        if not isinstance(dom, libvirt.virDomain):
            raise TypeError(f"expected a libvirt domain, got {type(dom).__name__}")
        if interval < 1:
            raise ValueError(f"interval={interval!r}: refresh at most once a second (>= 1)")
        super().__init__()
        self._live(conn if conn is not None else dom.connect())
        self.dom = dom
        self.screen = screen
        self.name = dom.name()
        self.feed = ScreenFeed(
            self._rt.main_loop,
            lambda: screenshot(self.dom, self.screen),
            interval,
            self.send,
            self._say,
        )

    def _say(self, status: str) -> None:
        self.status = status

    @property
    def views(self) -> int:
        """How many views show the screen now."""
        return self.feed.views

    @property
    def latest(self) -> Screenshot | None:
        """The latest picture (None before the first)."""
        return self.feed.latest

    @property
    def sent(self) -> int:
        """How many pictures went to the views."""
        return self.feed.sent

    def _handle(self, do: str, content: dict[str, Any]) -> None:
        if do == "hello":
            self.feed.hello()
        elif do == "bye":
            self.feed.bye()

    def _closing(self) -> None:
        if hasattr(self, "feed"):  # a domain whose name could not be read has none
            self.feed.close()

    def __repr__(self) -> str:
        shown = f"{self.latest.width}x{self.latest.height}" if self.latest else "no picture yet"
        return f"Screen of {self.name}: {self.status or shown}"
