"""One comm per widget: a Python model and an ES module of ours that renders it (anywidget).

A widget built on :class:`View` is one ipywidgets model. Its state goes to the browser as a
few synced traits, and the browser draws it with the module in ``widgets/static/`` (shipped
in the package: the kernel and the browser may have no internet). Nothing else opens a comm.

The rule between the two sides: **the kernel owns the state**. The view never sets a trait;
what the user does reaches the kernel as a message (``model.send({"do": ..., ...})`` in the
module), handled by :meth:`View._handle` on the main loop's thread. ipykernel 7 may deliver a
comm message on a subshell thread: the message is handed over (:class:`OnMain`), in order.
Invariant: traits are written on the main loop's thread only, so a view never sees a state
half-made by two threads, and the model classes need no lock.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets
import libvirt
import traitlets

from ipyvirt.connection import Connection
from ipyvirt.widgets.base import LIVE, OnMain, as_connection, need_runtime

__all__ = ["View", "css", "esm"]

STATIC = Path(__file__).with_name("static")


@cache
def esm(name: str, *parts: str) -> str:
    """The ES module of view *name*: the shared helpers (``common.js``), the helpers of
    *parts* (a few views' own: ``health.js``), then its own file."""
    files = ("common", *parts, name)
    return "\n".join((STATIC / f"{f}.js").read_text() for f in files)


@cache
def css(name: str, *parts: str) -> str:
    """The style of view *name*: the shared style (``common.css``), then its own, if any,
    then that of *parts*."""
    own = [STATIC / f"{f}.css" for f in (name, *parts)]
    return (STATIC / "common.css").read_text() + "".join(f.read_text() for f in own if f.exists())


class View(anywidget.AnyWidget):
    """A live widget in one comm: owns or shares a :class:`~ipyvirt.Connection`, closes once
    (also when ``%unload_ext ipyvirt`` or its connection closes), and handles the view's
    messages on the main loop.

    Subclasses set ``_esm = esm("name")`` and ``_css = css("name")``, call :meth:`_live` in
    ``__init__`` after ``super().__init__()``, and implement :meth:`_handle`.
    """

    # A DOMWidget makes itself a Layout, a widget of its own and so a second comm, which no
    # view of ours uses: none unless the user gives one (then it is theirs, comm and all).
    # The frontend takes a null layout as "no layout".
    layout = traitlets.Instance(ipywidgets.Layout, allow_none=True, default_value=None).tag(
        sync=True, **ipywidgets.widget_serialization
    )

    def _live(self, conn: Connection | libvirt.virConnect | None) -> None:
        """Start living: on *conn* (None: a view of the runtime itself, no connection)."""
        rt = need_runtime()
        self._rt = rt
        self._on_main = OnMain(rt)
        self._shut = False
        self._owns_conn = False
        self._conn: Connection | None = None
        if conn is not None:
            self._conn, self._owns_conn = as_connection(conn)
        self.on_msg(self._received)
        LIVE.add(self)
        if self._conn is not None:
            self._conn.depend(self)

    @property
    def conn(self) -> Connection:
        assert self._conn is not None, "this view has no connection"
        return self._conn

    def _received(self, _widget: Any, content: Any, buffers: list[bytes]) -> None:
        # on whichever thread the comm message arrived: hand over (see the module's rule)
        if isinstance(content, dict) and isinstance(content.get("do"), str):
            self._on_main(self._dispatch, content)

    def _dispatch(self, content: dict[str, Any]) -> None:
        if not self._shut:
            self._handle(content["do"], content)

    def _handle(self, do: str, content: dict[str, Any]) -> None:
        """Act on the view's request *do* (on the main loop's thread)."""

    def _closing(self) -> None:
        """Release what the subclass holds (subscriptions, timers), once, before the comm
        closes."""

    def close(self) -> None:
        if getattr(self, "_shut", False):
            return  # closing its connection closes it too
        self._shut = True
        if hasattr(self, "_rt"):  # it lived (_live ran)
            self._closing()
            if self._owns_conn and self._conn is not None:
                self._conn.close()
        super().close()
