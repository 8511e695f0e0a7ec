"""CPU and memory sparklines per running domain, polled only while displayed."""

from __future__ import annotations

import html
import time
from typing import Any

import ipywidgets as widgets
import libvirt

from ipyvirt.connection import Connection
from ipyvirt.models.offloop import OffLoop
from ipyvirt.models.usage import Sample, UsageSamples, read_usage
from ipyvirt.widgets.base import LIVE, Repeater, as_connection, need_runtime

__all__ = ["Usage", "sparkline"]


def sparkline(values: list[float], width: int = 90, height: int = 18) -> str:
    """An inline SVG polyline of *values* (oldest first), scaled to its own maximum."""
    if len(values) < 2:
        return f'<svg width="{width}" height="{height}"></svg>'
    top = max(max(values), 1e-9)
    step = width / (len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 1 - (v / top) * (height - 2):.1f}" for i, v in enumerate(values)
    )
    return (
        f'<svg width="{width}" height="{height}"><polyline points="{points}" '
        'fill="none" stroke="currentColor" stroke-width="1.2"/></svg>'
    )


class Usage(widgets.VBox):  # type: ignore[misc]
    """CPU % and memory of the running domains of *conn*, every *interval* seconds
    (default 2) from the moment it is displayed until it is closed: from
    ``getAllDomainStats``, or per-domain calls where that lacks them (each row says which).
    What it shows lives in ``model`` (:class:`~ipyvirt.models.usage.UsageSamples`)."""

    def __init__(
        self,
        conn: Connection | libvirt.virConnect,
        *,
        interval: float = 2.0,
        history: int = 30,
        max_domains: int = 20,
    ) -> None:
        rt = need_runtime()
        self._conn, self._owns_conn = as_connection(conn)
        self._max = max_domains
        self.model = UsageSamples(history)
        self._rt = rt
        self._reads = OffLoop(rt.main_loop, name="ipyvirt-usage")
        self._shut = False
        self._repeater = Repeater(rt.main_loop, interval, self.poll)
        self._html = widgets.HTML("<i>usage appears once displayed</i>")
        super().__init__([self._html])
        self.model.listen(self._draw)
        LIVE.add(self)
        self._conn.depend(self)

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

    def poll(self) -> None:
        """Read every running domain's CPU time and memory (on a worker thread: it is an RPC,
        slow on a busy or hung daemon) and redraw on the main loop."""
        if self._shut:
            return
        reader = self._conn.reader
        self._reads.submit(lambda: _read(reader), self._apply, self._failed)

    def _apply(self, read: tuple[float, list[Sample] | str]) -> None:
        now, found = read
        if isinstance(found, str):
            self.model.failed(found)
        else:
            self.model.add(now, found)

    def _failed(self, err: BaseException) -> None:
        self.model.failed(f"{type(err).__name__}: {err}")

    def _draw(self) -> None:
        if self.model.error:
            self._html.value = html.escape(f"usage unavailable: {self.model.error}")
            return
        records = self.model.records()
        rows = []
        for r in records[: self._max]:
            cpu, mem = r["cpu_percent"], r["memory_mib"]
            cpu_text = f"{cpu[-1]:.0f} %" if cpu else "n/a"
            mem_text = f"{mem[-1]:.0f} MiB" if mem else "n/a"
            rows.append(
                f"<tr><td>{html.escape(r['name'])}</td><td>{sparkline(cpu)}</td>"
                f"<td>{cpu_text}</td><td>{sparkline(mem)}</td><td>{mem_text}</td>"
                f"<td><small>{html.escape(r['source'])}</small></td></tr>"
            )
        more = (
            f"<div>{len(records) - self._max} more running domains</div>"
            if len(records) > self._max
            else ""
        )
        head = (
            "<tr><th>domain</th><th colspan=2>CPU</th><th colspan=2>memory</th><th>from</th></tr>"
        )
        self._html.value = f"<table>{head}{''.join(rows)}</table>{more}"

    def __repr__(self) -> str:
        return f"Usage on {self._conn.name}: {len(self.model.samples)} running domains"

    def close(self) -> None:
        if self._shut:
            return  # closing its connection closes it too
        self._shut = True
        self._repeater.cancel()
        self._reads.close()  # a read under way uses the connection
        if self._owns_conn:
            self._conn.close()
        super().close()


def _read(reader: libvirt.virConnect) -> tuple[float, list[Sample] | str]:
    """On the worker: when, and what was read (or libvirt's error, one line)."""
    now = time.monotonic()
    try:
        return now, read_usage(reader)
    except libvirt.libvirtError as err:
        return now, str(err.get_error_message())
