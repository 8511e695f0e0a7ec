"""The event loop itself: live fd watches and timers, rates, owed frees, callback errors: one
comm."""

from __future__ import annotations

import time
from typing import Any

import traitlets

from ipyvirt.asyncio_impl import AsyncioEventImpl
from ipyvirt.models.loop_rates import LoopRates
from ipyvirt.widgets.base import Repeater
from ipyvirt.widgets.view import View, css, esm

__all__ = ["LoopMonitor"]


class LoopMonitor(View):
    """:meth:`~ipyvirt.AsyncioEventImpl.statistics` as a styled table of the loop's watches
    and timers, with per-second rates (dispatches, timer fires, frees) since the previous
    reading, refreshed every *interval* seconds. *impl* defaults to the one ipyvirt runs. What
    it shows lives in ``model`` (:class:`~ipyvirt.models.loop_rates.LoopRates`)."""

    _esm = esm("loop_monitor")
    _css = css("loop_monitor")

    #: the last reading, as :meth:`~ipyvirt.models.loop_rates.LoopRates.records` gives it
    #: (watches, timers, rates, totals, loops)
    reading = traitlets.Dict().tag(sync=True)
    #: seconds between readings, for the view's "rates over the last N s"
    interval = traitlets.Float(1.0).tag(sync=True)

    def __init__(self, impl: AsyncioEventImpl | None = None, *, interval: float = 1.0) -> None:
        super().__init__(interval=interval)
        try:
            with self.hold_sync():  # the first reading goes in one message
                self._live(None)
                self.impl = impl or self._rt.impl
                self.model = LoopRates()
                self._repeater = Repeater(self._rt.main_loop, interval, self.refresh)
                self.refresh()
        except BaseException:  # no runtime: no comm left open
            self.close()
            raise
        self._repeater.start()

    def refresh(self) -> None:
        """Take a reading now (the view shows it)."""
        self.model.add(time.monotonic(), self.impl.statistics())
        self.reading = self.model.records()  # traitlets sends nothing for an equal value

    def _handle(self, do: str, content: dict[str, Any]) -> None:
        if do == "refresh":
            self.refresh()

    def __repr__(self) -> str:
        stats = self.impl.statistics()
        return (
            f"LoopMonitor: {_count(len(stats.watches), 'fd watch', 'fd watches')}, "
            f"{_count(len(stats.timers), 'timer')}, "
            f"{_count(stats.pending_frees, 'free owed', 'frees owed')}, "
            f"{_count(stats.callback_errors, 'callback error')}"
        )

    def _closing(self) -> None:
        if hasattr(self, "_repeater"):  # not after a failed __init__
            self._repeater.cancel()


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"
