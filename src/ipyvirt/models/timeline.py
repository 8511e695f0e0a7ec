"""The timeline's state: each domain's states over a sliding window, its events as ticks.

A domain's lane is a list of spans, each a state and the time it began (a span ends where the
next begins; the last one runs to now), and a list of ticks (an event and its time). States
come from lifecycle events (``suspended`` -> paused ...) and from reads of the domains' states
(:meth:`TimelineModel.observe`), which also correct what an event only implies.

Memory is bounded whatever runs for how long: spans and ticks that ended before the window
are pruned (:meth:`TimelineModel.prune`), each lane keeps at most *max_spans* spans and
*max_ticks* ticks (the oldest go, counted), and lanes of domains gone longer than the window
are forgotten. At most *max_lanes* lanes are shown; the rest are counted.

The view learns the picture once (:meth:`TimelineModel.picture`) and then only what changed
(:meth:`TimelineModel.take_changes`). Used on one thread (the main loop's).
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ipyvirt.hub import Event
from ipyvirt.names import DOMAIN_STATES

__all__ = ["GONE", "Lane", "TimelineModel", "says_state", "state_after"]

#: the "state" of a domain that was undefined: its lane shows no span from then on
GONE: Final = "gone"

# a lifecycle event -> the state the domain is in after it (shutdown: still running until
# "stopped"; defined: see state_after)
_AFTER: Final = {
    "started": "running",
    "resumed": "running",
    "suspended": "paused",
    "stopped": "shutoff",
    "crashed": "crashed",
    "pmsuspended": "pmsuspended",
    "undefined": GONE,
}

# a lifecycle event -> the state the domain was in before it
_BEFORE: Final = {
    "started": "shutoff",
    "resumed": "paused",
    "suspended": "running",
    "stopped": "running",
    "shutdown": "running",
    "crashed": "running",
    "pmsuspended": "running",
}

# more changes than this between two flushes: the view gets the whole picture instead
_MAX_CHANGES: Final = 2000


def state_after(event: Event, current: str | None) -> str | None:
    """The state *event* leaves its domain in (None: it says nothing about the state)."""
    if event.family != "domain" or event.kind != "lifecycle":
        return None
    if event.name == "defined":  # a new domain is shut off; a redefined one keeps its state
        return "shutoff" if current in (None, GONE) else None
    return _AFTER.get(event.name)


def says_state(event: Event) -> bool:
    """Whether *event* says its domain's state without a read: every event but a domain's
    lifecycle events that leave it open: ``shutdown`` (the guest shut down; the domain may
    not have stopped yet), ``defined`` (a redefinition keeps whatever state it had), a name
    unknown here."""
    if event.family != "domain" or event.kind != "lifecycle":
        return True  # says nothing of the state, and needs nothing read either
    return event.name in _AFTER


def _natural(name: str) -> list[Any]:
    """A sort key putting d2 before d10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


@dataclass
class Lane:
    """One domain: its spans ``(start, state)`` oldest first, its ticks ``(time, label)``."""

    name: str
    spans: deque[tuple[float, str]] = field(default_factory=deque)
    ticks: deque[tuple[float, str]] = field(default_factory=deque)
    #: the newest change or tick: the most active lanes are the ones shown
    last_activity: float = float("-inf")

    @property
    def state(self) -> str | None:
        return self.spans[-1][1] if self.spans else None

    @property
    def changed_at(self) -> float:
        return self.spans[-1][0] if self.spans else float("-inf")

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "spans": list(self.spans), "ticks": list(self.ticks)}


class TimelineModel:
    """Every domain's lane over the last *minutes*; see the module's docstring.

    *clock* gives the time (seconds since the epoch, as :attr:`ipyvirt.Event.time`); tests pass
    their own.
    """

    def __init__(
        self,
        minutes: float = 5,
        *,
        max_lanes: int = 40,
        max_spans: int = 200,
        max_ticks: int = 200,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not minutes > 0:
            raise ValueError(f"minutes must be more than 0, got {minutes}")
        for what, value in (("max_lanes", max_lanes), ("max_spans", max_spans)):
            if value < 1:
                raise ValueError(f"{what} must be 1 or more, got {value}")
        self.window = minutes * 60.0
        self.max_lanes = max_lanes
        self.max_spans = max_spans
        self.max_ticks = max_ticks
        self.clock = clock
        self.lanes: dict[str, Lane] = {}
        #: spans and ticks pushed out by the per-lane caps (not those that aged out)
        self.dropped_spans = 0
        self.dropped_ticks = 0
        self._shown: list[str] = []
        self._order_stale = True
        self._changes: list[list[Any]] = []
        self._overflow = False
        #: since when the model knows every domain event (it saw them all): a domain's
        #: state holds back to here unless an event says otherwise; earlier is unknown
        self.since = clock()

    # -- what happened ---------------------------------------------------------------------

    def add(self, event: Event) -> None:
        """A domain event: a tick on its lane, and a new span if it changes the state."""
        if event.family != "domain" or not event.subject:
            return
        lane = self._lane(event.subject)
        label = f"{event.name} ({event.detail})" if event.detail else event.name
        self._tick(lane, event.time, label)
        before = _BEFORE.get(event.name) if event.kind == "lifecycle" else None
        if lane.state is None and before is not None and self.since < event.time:
            self._set(lane, before, self.since)  # no event since `since` changed it
        state = state_after(event, lane.state)
        if state is not None:
            self._set(lane, state, event.time)

    def observe(self, states: Mapping[str, str], read_at: float, *, complete: bool) -> None:
        """Domain states read at *read_at*. A lane changed by an event after *read_at* keeps
        that newer state. With *complete* (every domain was read), a lane missing from
        *states* is a domain that is gone."""
        for name, state in states.items():
            lane = self._lane(name)
            if lane.state is None:  # no event since `since`: in this state all along
                self._set(lane, state, min(self.since, read_at))
            elif lane.changed_at <= read_at:
                self._set(lane, state, read_at)
        if complete:
            for lane in list(self.lanes.values()):
                if lane.name not in states and lane.changed_at <= read_at:
                    self._set(lane, GONE, read_at)

    def _lane(self, name: str) -> Lane:
        lane = self.lanes.get(name)
        if lane is None:
            lane = self.lanes[name] = Lane(name)
            self._order_stale = True
        return lane

    def _set(self, lane: Lane, state: str, at: float) -> None:
        if state == lane.state:
            return
        if lane.state is None and state == GONE:
            return  # never seen alive: nothing to draw
        at = max(at, lane.changed_at)  # spans stay in order whatever the clock did
        lane.spans.append((at, state))
        if len(lane.spans) > self.max_spans:
            lane.spans.popleft()
            self.dropped_spans += 1
        self._active(lane, at)
        self._change(["span", lane.name, at, state])

    def _tick(self, lane: Lane, at: float, label: str) -> None:
        lane.ticks.append((at, label))
        if len(lane.ticks) > self.max_ticks:
            lane.ticks.popleft()
            self.dropped_ticks += 1
        self._active(lane, at)
        self._change(["tick", lane.name, at, label])

    def _active(self, lane: Lane, at: float) -> None:
        lane.last_activity = max(lane.last_activity, at)
        if lane.name not in self._shown and len(self.lanes) > self.max_lanes:
            self._order_stale = True  # a hidden lane came alive: it may be shown now

    def _change(self, change: list[Any]) -> None:
        if len(self._changes) >= _MAX_CHANGES:
            self._overflow = True
            self._changes.clear()
        if not self._overflow:
            self._changes.append(change)

    # -- forgetting ------------------------------------------------------------------------

    def prune(self, now: float | None = None) -> None:
        """Forget what ended before the window; a lane gone for longer than it goes."""
        start = (self.clock() if now is None else now) - self.window
        for lane in list(self.lanes.values()):
            # the first span that began before the window still shows from its start: keep
            # the newest of those, drop the ones before it
            while len(lane.spans) > 1 and lane.spans[1][0] <= start:
                lane.spans.popleft()
            while lane.ticks and lane.ticks[0][0] < start:
                lane.ticks.popleft()
            if lane.state == GONE and lane.changed_at < start:
                del self.lanes[lane.name]
                self._order_stale = True

    # -- what the view is told -------------------------------------------------------------

    def shown(self) -> list[str]:
        """The lanes shown, in order: by name (d2 before d10), at most *max_lanes*; past
        that, the most recently active ones (then the running ones, then by name)."""
        if self._order_stale:
            self._order_stale = False
            lanes = list(self.lanes.values())
            if len(lanes) > self.max_lanes:
                rank = {s: i for i, s in enumerate(DOMAIN_STATES)}
                lanes.sort(
                    key=lambda ln: (
                        -ln.last_activity,
                        rank.get(ln.state or "", len(rank)),
                        _natural(ln.name),
                    )
                )
                lanes = lanes[: self.max_lanes]
            names = sorted((ln.name for ln in lanes), key=_natural)
            if names != self._shown:
                added = set(names) - set(self._shown)
                self._shown = names
                self._change(["lanes", names, self.hidden])
                for name in names:  # a lane newly shown arrives whole
                    if name in added:
                        self._change(["lane", self.lanes[name].record()])
        return self._shown

    @property
    def hidden(self) -> int:
        """Lanes kept but not shown (past *max_lanes*)."""
        return max(0, len(self.lanes) - self.max_lanes)

    def picture(self) -> dict[str, Any]:
        """Everything the view shows, as plain data; pending changes are dropped (the
        picture has them)."""
        shown = self.shown()
        self._changes.clear()
        self._overflow = False
        return {
            "kind": "picture",
            "now": self.clock(),
            "window": self.window,
            "since": self.since,
            "lanes": [self.lanes[n].record() for n in shown],
            "hidden": self.hidden,
            "dropped": self.dropped_spans + self.dropped_ticks,
            # the view keeps no more of each a lane than this model does
            "max_spans": self.max_spans,
            "max_ticks": self.max_ticks,
        }

    def take_changes(self) -> dict[str, Any] | None:
        """What changed on the shown lanes since the last call (or picture), as one message:
        ``{"kind": "changes", "now": t, "changes": [...], "dropped": n}``, each change one of
        ``["span", lane, start, state]``, ``["tick", lane, time, label]``,
        ``["lanes", names, hidden]``, ``["lane", record]``. The whole picture instead after
        too many changes at once; None when nothing changed."""
        shown = set(self.shown())
        if self._overflow:
            return self.picture()
        changes, self._changes = self._changes, []
        changes = [c for c in changes if c[0] in ("lanes", "lane") or c[1] in shown]
        if not changes:
            return None
        dropped = self.dropped_spans + self.dropped_ticks
        return {"kind": "changes", "now": self.clock(), "changes": changes, "dropped": dropped}

    def events_in_window(self, now: float | None = None) -> int:
        """Ticks within the window on every lane."""
        start = (self.clock() if now is None else now) - self.window
        return sum(1 for lane in self.lanes.values() for t, _ in lane.ticks if t >= start)

    def spans(self, name: str, now: float | None = None) -> list[tuple[str, float, float]]:
        """Lane *name*'s spans as ``(state, start, end)``, clipped to the window (the last
        one ends now); gone spans left out."""
        end = self.clock() if now is None else now
        start = end - self.window
        lane = self.lanes.get(name)
        if lane is None:
            return []
        ends = [*(begin for begin, _ in lane.spans), end][1:]
        return [
            (state, max(begin, start), stop)
            for (begin, state), stop in zip(lane.spans, ends, strict=True)
            if stop > start and state != GONE
        ]

    def seed(self, history: Iterable[Event]) -> None:
        """Start from earlier events (a connection's history, oldest first, contiguous:
        every event since the first one given)."""
        for event in history:
            self.since = min(self.since, event.time)
            self.add(event)
