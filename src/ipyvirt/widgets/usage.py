"""CPU and memory sparklines per running domain, polled only while displayed."""

from __future__ import annotations

import html
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ipywidgets as widgets
import libvirt

from ipyvirt.connection import Connection
from ipyvirt.widgets.base import LIVE, Repeater, as_connection, need_runtime

__all__ = ["Usage", "sparkline"]

_STATS = (
    libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_VCPU
)
_ACTIVE = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE


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
    """CPU % and memory of the running domains of *conn*, from ``getAllDomainStats``, every
    *interval* seconds (default 2) from the moment it is displayed until it is closed."""

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
        self._history = history
        self._max = max_domains
        #: domain name -> (cpu % samples, memory MiB samples)
        self.samples: dict[str, tuple[deque[float], deque[float]]] = {}
        self._last_cpu: dict[str, tuple[float, int]] = {}
        self.polls = 0
        self._rt = rt
        self._reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ipyvirt-usage")
        self._polling = False
        self._shut = False
        self._repeater = Repeater(rt.main_loop, interval, self.poll)
        self._html = widgets.HTML("<i>usage appears once displayed</i>")
        super().__init__([self._html])
        LIVE.add(self)
        self._conn.depend(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self._repeater.start()  # poll only once someone looks
        return super()._repr_mimebundle_(**kwargs)

    def poll(self) -> None:
        """Read every running domain's CPU time and memory (on a worker thread: it is an RPC,
        slow on a busy or hung daemon) and redraw on the main loop."""
        if self._polling or self._shut:
            return
        self._polling = True
        self._reads.submit(self._read, self._conn.reader)

    def _read(self, reader: libvirt.virConnect) -> None:
        now = time.monotonic()
        try:
            stats = [
                (dom.name(), values) for dom, values in reader.getAllDomainStats(_STATS, _ACTIVE)
            ]
            error = ""
        except libvirt.libvirtError as err:
            stats, error = [], err.get_error_message()
        self._rt.call_soon(self._apply, now, stats, error)

    def _apply(self, now: float, stats: list[tuple[str, dict[str, Any]]], error: str) -> None:
        self._polling = False
        if self._shut:
            return
        self.polls += 1
        if error:
            self._html.value = html.escape(f"usage unavailable: {error}")
            return
        seen = set()
        for name, values in stats:
            seen.add(name)
            cpu_hist, mem_hist = self.samples.setdefault(
                name, (deque(maxlen=self._history), deque(maxlen=self._history))
            )
            cpu_ns = values.get("cpu.time")
            if cpu_ns is not None:
                last = self._last_cpu.get(name)
                if last is not None and now > last[0]:
                    vcpus = max(1, values.get("vcpu.current", 1))
                    cpu_hist.append(100.0 * (cpu_ns - last[1]) / ((now - last[0]) * 1e9) / vcpus)
                self._last_cpu[name] = (now, cpu_ns)
            mem = values.get("balloon.rss") or values.get("balloon.current")
            if mem is not None:
                mem_hist.append(mem / 1024)
        for gone in set(self.samples) - seen:
            del self.samples[gone]
            self._last_cpu.pop(gone, None)
        self._draw()

    def _draw(self) -> None:
        names = sorted(self.samples)
        rows = []
        for name in names[: self._max]:
            cpu, mem = self.samples[name]
            cpu_text = f"{cpu[-1]:.0f} %" if cpu else "n/a"
            mem_text = f"{mem[-1]:.0f} MiB" if mem else "n/a"
            rows.append(
                f"<tr><td>{html.escape(name)}</td><td>{sparkline(list(cpu))}</td>"
                f"<td>{cpu_text}</td><td>{sparkline(list(mem))}</td><td>{mem_text}</td></tr>"
            )
        more = (
            f"<div>{len(names) - self._max} more running domains</div>"
            if len(names) > self._max
            else ""
        )
        head = "<tr><th>domain</th><th colspan=2>CPU</th><th colspan=2>memory</th></tr>"
        self._html.value = f"<table>{head}{''.join(rows)}</table>{more}"

    def __repr__(self) -> str:
        return f"Usage on {self._conn.name}: {len(self.samples)} running domains"

    def close(self) -> None:
        if self._shut:
            return  # closing its connection closes it too
        self._shut = True
        self._repeater.cancel()
        self._reads.shutdown(wait=True)  # a read under way uses the connection
        if self._owns_conn:
            self._conn.close()
        super().close()
