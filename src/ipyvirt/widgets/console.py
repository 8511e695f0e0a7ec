"""A guest's serial console in the notebook: xterm.js in the page, the stream in the kernel.

The stream is a :class:`~ipyvirt.models.console.ConsoleSession` (served by ipyvirt's event
loop). This module coalesces its output to the browser (at most 1/*interval* messages a
second, raw bytes as one binary buffer each; under a flood the oldest unsent bytes go and
the terminal is told how many), passes keystrokes on, and reconnects when asked.

xterm.js travels once per page, not per display: it is shipped in the package
(``static/vendor/``, copied by ``scripts/vendor``) and sent when the first console view in
a page asks for it, which imports it from a blob URL. No CDN, no internet.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import libvirt
import traitlets

from ipyvirt.connection import Connection
from ipyvirt.hub import Event
from ipyvirt.models.console import SCROLLBACK, ConsoleError, ConsoleSession
from ipyvirt.widgets.base import Coalescer
from ipyvirt.widgets.view import STATIC, View, css, esm

__all__ = ["Console"]

# what a terminal answers to ESC[6n (where is the cursor?): ESC[row;colR
_CURSOR_REPORT = re.compile(r"\x1b\[\d+;\d+R")

#: unsent output kept for the browser at most (a flood beyond it skips the oldest bytes)
PENDING_MAX = 64 * 1024


@cache
def _xterm() -> bytes:
    return (STATIC / "vendor" / "xterm.mjs").read_bytes()


class Console(View):
    """The serial console of *dom*, live: type into it in the page, or script it with
    :meth:`send`, :meth:`expect` and :meth:`text`.

    Its status follows the domain's lifecycle events, on *conn* (an
    :class:`~ipyvirt.Connection` on the same hypervisor) or on one of its own.
    *force* takes the console over from another client; *reconnect* opens it again each
    time the domain starts. The last *scrollback* bytes are kept (for views that render
    later, and for :meth:`text`). Closing it frees the stream, its callback and the console.
    """

    _esm = esm("console")
    _css = css("console") + (STATIC / "vendor" / "xterm.css").read_text()
    #: the domain's name
    name = traitlets.Unicode("").tag(sync=True)
    #: "connected to NAME", "disconnected: domain stopped", "closed", ...
    status = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        dom: libvirt.virDomain,
        *,
        conn: Connection | None = None,
        force: bool = False,
        reconnect: bool = False,
        scrollback: int = SCROLLBACK,
        interval: float = 0.05,
    ) -> None:
        if not isinstance(dom, libvirt.virDomain):
            raise TypeError(f"expected a libvirt domain, got {type(dom).__name__}")
        from ipyvirt.widgets.base import need_runtime

        loop = need_runtime().main_loop
        session = ConsoleSession(dom, loop, force=force, scrollback=scrollback)
        running = dom.isActive()
        if running or not reconnect:
            session.open()  # a one-line ConsoleError, before any comm opens
        super().__init__()
        self._live(conn if conn is not None else dom.connect())
        self.session = session
        self.reconnect = reconnect
        self.name = session.name
        self._pending = bytearray()
        self._skipped = 0
        self._greeted = False  # a view said hello: output is worth sending
        #: messages of output sent to the views, and cursor reports (ESC[6n answered) from them
        self.messages = 0
        self.cursor_reports = 0
        self._coalescer = Coalescer(loop, interval, self._flush)
        session.on_output = self._output
        session.on_state = self._state
        self.status = session.status if running else "waiting: domain not running"
        self._subscription = self.conn.subscribe(self._on_event, families=["domain"])

    # -- kernel to page -----------------------------------------------------------------

    def _output(self, chunk: bytes) -> None:
        if not self._greeted:
            return  # a view that renders later gets the scrollback
        self._pending += chunk
        if len(self._pending) > PENDING_MAX:
            drop = len(self._pending) - PENDING_MAX
            self._skipped += drop
            del self._pending[:drop]
        self._coalescer.poke()

    def _flush(self) -> None:
        if not self._pending or self._shut:
            return
        data = bytes(self._pending)
        self._pending.clear()
        if self._skipped:
            data = f"\r\n[ipyvirt: {self._skipped} bytes skipped]\r\n".encode() + data
            self._skipped = 0
        self.messages += 1
        self.send({"kind": "out"}, [data])

    def _state(self, status: str) -> None:
        if not self._shut:
            self.status = status

    def _on_event(self, event: Event) -> None:
        if event.kind != "lifecycle" or event.subject != self.name or self._shut:
            return
        if event.name == "stopped" and not self.session.connected:
            self.status = "disconnected: domain stopped"
        elif event.name in ("started", "resumed") and self._wants_console():
            try:
                self.session.open()
            except ConsoleError as err:
                self.status = f"disconnected: {err}"

    def _wants_console(self) -> bool:
        return self.reconnect and not self.session.connected and not self.session.closed

    # -- page to kernel -----------------------------------------------------------------

    def _handle(self, do: str, content: dict[str, Any]) -> None:
        if do == "hello":  # a view rendered: the scrollback, and xterm.js if it lacks it
            self._greeted = True
            self._pending.clear()
            # only buffers with bytes in them: an empty one may not reach the view at all
            xterm = bool(content.get("xterm"))
            scrollback = bytes(self.session.raw)
            buffers = ([_xterm()] if xterm else []) + ([scrollback] if scrollback else [])
            hello = {"kind": "hello", "xterm": xterm, "scrollback": bool(scrollback)}
            self.send(hello, buffers)
        elif do == "keys" and isinstance(content.get("data"), str) and self.session.connected:
            if _CURSOR_REPORT.fullmatch(content["data"]):
                self.cursor_reports += 1
            self.session.send(content["data"])

    # -- scripting ----------------------------------------------------------------------

    def send_keys(self, data: str | bytes) -> None:
        """Type *data* into the console (``send`` is the same; see :meth:`send`)."""
        self.session.send(data)

    def send(self, content: Any, buffers: Any = None) -> None:
        """``con.send("echo hi\\n")`` types into the guest's console; with a dict it is the
        widget's message to its views (anywidget's ``send``)."""
        if isinstance(content, str | bytes):
            self.session.send(content)
        else:
            super().send(content, buffers)

    async def expect(self, pattern: str | re.Pattern[str], timeout: float = 10) -> re.Match[str]:
        """Wait until the console prints *pattern* after the previous match (a str is taken
        literally, a compiled regex as itself); the match. :class:`TimeoutError` after
        *timeout* seconds. End a pattern with what must follow it (``\\n`` for a whole line):
        ``$`` also matches where the output so far ends."""
        return await self.session.expect(pattern, timeout)

    def text(self) -> str:
        """What the console printed, without terminal control sequences."""
        return self.session.text()

    def _closing(self) -> None:
        self._subscription.cancel()
        self._coalescer.cancel()
        self.session.close()
        self.status = "closed"  # the session's own word for it; _state ignores a shut view

    def __repr__(self) -> str:
        return f"Console of {self.name}: {self.status}, {self.session.received} bytes received"
