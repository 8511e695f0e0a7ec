"""A domain's screen, full size, refreshed at most every *interval* seconds while shown.

Each picture is a :func:`~ipyvirt.models.screen.screenshot` read off the main loop (an
:class:`~ipyvirt.models.offloop.OffLoop`, one read at a time) and sent to the views as one
PNG buffer. Views say ``{"do": "hello"}`` when they render and ``{"do": "bye"}`` when they
go; the refresh runs only while at least one view is shown, so a screen scrolled out of a
closed notebook costs nothing.
"""

from __future__ import annotations

from typing import Any

import libvirt
import traitlets

from ipyvirt.connection import Connection
from ipyvirt.models.offloop import OffLoop
from ipyvirt.models.screen import NoScreen, Screenshot, screenshot
from ipyvirt.widgets.base import Repeater
from ipyvirt.widgets.view import View, css, esm

__all__ = ["Screen"]


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
        self.views = 0
        #: the latest picture, and how many were sent
        self.latest: Screenshot | None = None
        self.sent = 0
        loop = self._rt.main_loop
        self._reads = OffLoop(loop, name="ipyvirt-screen")
        self._repeater = Repeater(loop, interval, self._read)

    def _read(self) -> None:
        if self.views > 0 and not self._shut:
            self._reads.submit(lambda: screenshot(self.dom, self.screen), self._apply, self._fail)

    def _apply(self, shot: Screenshot) -> None:
        if self._shut:
            return
        self.latest = shot
        self.status = ""
        if self.views == 0:
            return  # the last view went while this was read: it waits for the next hello
        self.sent += 1
        self.send({"kind": "shot", "width": shot.width, "height": shot.height}, [shot.png])

    def _fail(self, err: BaseException) -> None:
        if not self._shut:
            self.status = "no screen" if isinstance(err, NoScreen) else str(err)

    def _handle(self, do: str, content: dict[str, Any]) -> None:
        if do == "hello":
            self.views += 1
            if self.latest is not None:  # the last picture at once, a fresh one soon
                shot = self.latest
                self.send({"kind": "shot", "width": shot.width, "height": shot.height}, [shot.png])
            self._read()
            self._repeater.start()
        elif do == "bye":
            self.views = max(0, self.views - 1)
            if self.views == 0:
                self._repeater.cancel()

    def _closing(self) -> None:
        self._repeater.cancel()
        self._reads.close()

    def __repr__(self) -> str:
        shown = f"{self.latest.width}x{self.latest.height}" if self.latest else "no picture yet"
        return f"Screen of {self.name}: {self.status or shown}"
