"""The loop monitor's state: statistics over time, rates between two readings, labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ipyvirt.statistics import LoopStatistics, WatchInfo

__all__ = ["LoopRates", "Rates", "interval_label", "watch_label"]


def interval_label(interval_ms: int) -> str:
    """A timer's interval as a reader says it: -1 disabled, 0 every iteration, else N ms."""
    if interval_ms < 0:
        return "disabled"
    if interval_ms == 0:
        return "every iteration"
    return f"{interval_ms} ms"


def watch_label(watch: WatchInfo) -> str:
    """The events a watch waits for ("READABLE|WRITABLE"), or "disabled" for none (libvirt
    disables a watch while it handles what arrived)."""
    return watch.event_names if watch.events else "disabled"


@dataclass(frozen=True)
class Rates:
    """What happened per second between two readings, and what is owed now."""

    dispatches_per_s: float
    fires_per_s: float
    frees_per_s: float
    pending_frees: int
    callback_errors: int

    def __str__(self) -> str:
        return (
            f"{self.dispatches_per_s:.0f} dispatches/s, {self.fires_per_s:.0f} fires/s, "
            f"{self.frees_per_s:.0f} frees/s, "
            f"{self.pending_frees} frees owed, {self.callback_errors} callback errors"
        )


class LoopRates:
    """Readings of ``impl.statistics()`` fed to ``add`` with the time they were taken."""

    def __init__(self) -> None:
        self.last: LoopStatistics | None = None
        self._previous: LoopStatistics | None = None
        self._then = 0.0
        self._span = 0.0
        #: the rates between the last two readings; None before the second
        self.rates: Rates | None = None

    def add(self, now: float, stats: LoopStatistics) -> None:
        if self.last is not None:
            span = max(now - self._then, 1e-9)
            self.rates = Rates(
                (stats.dispatches - self.last.dispatches) / span,
                (stats.fires - self.last.fires) / span,
                (stats.frees_run - self.last.frees_run) / span,
                stats.pending_frees,
                stats.callback_errors,
            )
            self._span = span
        self._previous, self.last, self._then = self.last, stats, now

    def _per_s(self, counts: dict[int, int], ident: int, count: int) -> float | None:
        """Per second for the watch or timer *ident* between the last two readings, from
        *counts* (id -> count) of the previous one; None for one it did not have."""
        if ident not in counts:
            return None
        return (count - counts[ident]) / self._span

    def records(self) -> dict[str, Any]:
        """The last reading as plain data: watches, timers (with interval labels and their
        own rates, None before a second reading), the rates and the totals."""
        stats = self.last
        if stats is None:
            return {"watches": [], "timers": [], "rates": None, "totals": None, "loops": []}
        previous = self._previous
        dispatched = {w.id: w.dispatches for w in previous.watches} if previous else {}
        fired = {t.id: t.fires for t in previous.timers} if previous else {}
        return {
            "watches": [
                {
                    "id": w.id,
                    "fd": w.fd,
                    "events": watch_label(w),
                    "dispatches": w.dispatches,
                    "per_s": self._per_s(dispatched, w.id, w.dispatches),
                    "loop": w.loop,
                    "thread": w.thread,
                }
                for w in stats.watches
            ],
            "timers": [
                {
                    "id": t.id,
                    "interval": interval_label(t.interval_ms),
                    "fires": t.fires,
                    "per_s": self._per_s(fired, t.id, t.fires),
                    "loop": t.loop,
                    "thread": t.thread,
                }
                for t in stats.timers
            ],
            "rates": None if self.rates is None else vars(self.rates).copy(),
            "totals": {
                "handles_added": stats.handles_added,
                "handles_removed": stats.handles_removed,
                "timeouts_added": stats.timeouts_added,
                "timeouts_removed": stats.timeouts_removed,
                "frees_run": stats.frees_run,
                "pending_frees": stats.pending_frees,
                "callback_errors": stats.callback_errors,
            },
            "loops": [list(pair) for pair in stats.loops],
        }
