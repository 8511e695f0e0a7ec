"""The event loop itself: live fd watches and timers, rates, owed frees, callback errors."""

from __future__ import annotations

import time

import ipywidgets as widgets

from ipyvirt.asyncio_impl import AsyncioEventImpl
from ipyvirt.models.loop_rates import LoopRates
from ipyvirt.tables import loop_table
from ipyvirt.widgets.base import LIVE, Repeater, need_runtime

__all__ = ["LoopMonitor"]


class LoopMonitor(widgets.VBox):  # type: ignore[misc]
    """:meth:`~ipyvirt.AsyncioEventImpl.statistics` as tables, refreshed every *interval* seconds,
    with dispatch and fire rates since the previous refresh. *impl* defaults to the one
    ipyvirt runs. What it shows lives in ``model``
    (:class:`~ipyvirt.models.loop_rates.LoopRates`)."""

    def __init__(self, impl: AsyncioEventImpl | None = None, *, interval: float = 1.0) -> None:
        rt = need_runtime()
        self.impl = impl or rt.impl
        self._html = widgets.HTML()
        self._rates = widgets.Label()
        self.model = LoopRates()
        self._repeater = Repeater(rt.main_loop, interval, self.refresh)
        super().__init__([self._rates, self._html])
        self.refresh()
        self._repeater.start()
        LIVE.add(self)

    def refresh(self) -> None:
        stats = self.impl.statistics()
        self.model.add(time.monotonic(), stats)
        if self.model.rates is not None:
            rates = str(self.model.rates)
            if self._rates.value != rates:
                self._rates.value = rates
        value = loop_table(stats)._repr_html_()
        if self._html.value != value:
            self._html.value = value

    def __repr__(self) -> str:
        stats = self.impl.statistics()
        return (
            f"LoopMonitor: {_count(len(stats.watches), 'fd watch', 'fd watches')}, "
            f"{_count(len(stats.timers), 'timer')}, "
            f"{_count(stats.pending_frees, 'free owed', 'frees owed')}, "
            f"{_count(stats.callback_errors, 'callback error')}"
        )

    def close(self) -> None:
        self._repeater.cancel()
        super().close()


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"
