"""CPU % and memory of the running domains as charts and a table, in one comm, polled only
while displayed.

The kernel polls (off the loop: the reads are RPCs) and keeps the window
(:attr:`UsageSamples.frames`); the view (``static/usage.js``) draws it. What crosses the comm:
the slow-changing facts as traits (connection, interval, where the figures come from, the
last error), the window once when a view asks for it (``{"do": "window"}``, sent by each view
as it renders), then one frame per poll as a custom message: only the new figures.
"""

from __future__ import annotations

import time
from typing import Any

import libvirt
import traitlets

from ipyvirt.connection import Connection
from ipyvirt.models.offloop import OffLoop
from ipyvirt.models.usage import Frame, Sample, UsageSamples, describe_sources, read_usage
from ipyvirt.widgets.base import Repeater
from ipyvirt.widgets.view import View, css, esm

__all__ = ["Usage"]


class Usage(View):
    """CPU % and memory of the running domains of *conn*, every *interval* seconds
    (default 2) from the moment it is displayed until it is closed, over the last *history*
    polls: from ``getAllDomainStats``, or per-domain calls where that lacks them (it says
    which). The charts draw the *lines* busiest domains, the rest summed; the table lists
    *max_domains*. What it shows lives in ``model``
    (:class:`~ipyvirt.models.usage.UsageSamples`)."""

    _esm = esm("usage")
    _css = css("usage")

    #: the connection's name, as the empty state says it
    uri = traitlets.Unicode("").tag(sync=True)
    interval = traitlets.Float(2.0).tag(sync=True)
    history = traitlets.Int(30).tag(sync=True)
    lines = traitlets.Int(5).tag(sync=True)
    max_domains = traitlets.Int(20).tag(sync=True)
    #: where the figures come from, in words ("" before the first poll)
    source = traitlets.Unicode("").tag(sync=True)
    #: the last poll's error, one line ("" after a poll that worked)
    error = traitlets.Unicode("").tag(sync=True)
    #: a poll has answered (the view tells "not polled yet" from "nothing runs")
    polled = traitlets.Bool(False).tag(sync=True)

    def __init__(
        self,
        conn: Connection | libvirt.virConnect,
        *,
        interval: float = 2.0,
        history: int = 30,
        max_domains: int = 20,
        lines: int = 5,
    ) -> None:
        if interval <= 0 or history < 2 or max_domains < 1 or lines < 1:
            raise ValueError(
                "Usage needs interval > 0, history >= 2, max_domains >= 1 and lines >= 1: "
                f"got {interval}, {history}, {max_domains} and {lines}"
            )
        super().__init__(interval=interval, history=history, max_domains=max_domains, lines=lines)
        self._live(conn)
        self.uri = self.conn.name
        self.model = UsageSamples(history)
        self._reads = OffLoop(self._rt.main_loop, name="ipyvirt-usage")
        self._repeater = Repeater(self._rt.main_loop, interval, self.poll)
        self.model.listen(self._publish)

    @property
    def samples(self) -> dict[str, Any]:
        """Domain name -> (CPU % values, memory MiB values), oldest first."""
        return self.model.samples

    @property
    def polls(self) -> int:
        return self.model.polls

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self._repeater.start()  # poll only once someone looks
        return super()._repr_mimebundle_(**kwargs)

    def _handle(self, do: str, content: dict[str, Any]) -> None:
        if do == "window":  # a view rendered: it may be a child never shown by itself
            self._repeater.start()
            self.send({"kind": "window", "frames": [_frame(f) for f in self.model.frames]})

    def poll(self) -> None:
        """Read every running domain's CPU time and memory (on a worker thread: it is an RPC,
        slow on a busy or hung daemon) and hand them to the model on the main loop."""
        if self._shut:
            return
        reader = self.conn.reader
        self._reads.submit(lambda: _read(reader), self._apply, self._failed)

    def _apply(self, read: tuple[float, list[Sample] | str]) -> None:
        now, found = read
        if isinstance(found, str):
            self.model.failed(found)
        else:
            self.model.add(now, found)

    def _failed(self, err: BaseException) -> None:
        self.model.failed(f"{type(err).__name__}: {err}")

    def _publish(self) -> None:
        """After each poll: the traits that changed, and the new frame (if it worked)."""
        with self.hold_sync():
            self.polled = True
            self.error = self.model.error
            if not self.error:
                self.source = describe_sources(self.model.sources)
        if not self.model.error and self.model.frames:
            self.send({"kind": "frame", "frame": _frame(self.model.frames[-1])})

    def __repr__(self) -> str:
        return f"Usage on {self.conn.name}: {len(self.model.samples)} running domains"

    def _closing(self) -> None:
        self._repeater.cancel()
        self._reads.close()  # a read under way uses the connection


def _frame(frame: Frame) -> dict[str, Any]:
    when, figures = frame
    return {"t": when, "domains": [list(f) for f in figures]}


def _read(reader: libvirt.virConnect) -> tuple[float, list[Sample] | str]:
    """On the worker: when, and what was read (or libvirt's error, one line)."""
    now = time.monotonic()
    try:
        return now, read_usage(reader)
    except libvirt.libvirtError as err:
        return now, str(err.get_error_message())
