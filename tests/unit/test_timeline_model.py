"""The timeline's model without a kernel: spans from state changes, ticks, bounded memory,
what the view is sent."""

from __future__ import annotations

import itertools
import json

import pytest

from ipyvirt.hub import Event
from ipyvirt.models.timeline import GONE, TimelineModel, says_state, state_after

_seq = itertools.count()

T0 = 1_000_000.0  # "now" when each model is made


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def event(at: float, subject: str, name: str, detail: str = "", kind: str = "lifecycle") -> Event:
    return Event(next(_seq), at, "c", "domain", kind, subject, name, detail)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_events_make_spans_and_ticks(clock: Clock) -> None:
    m = TimelineModel(5, clock=clock)
    m.observe({"test": "running"}, T0, complete=True)
    m.add(event(T0 + 10, "test", "suspended", "paused"))
    m.add(event(T0 + 20, "test", "resumed", "unpaused"))
    m.add(event(T0 + 25, "test", "reboot", kind="reboot"))
    clock.now = T0 + 30
    assert m.spans("test") == [
        ("running", T0, T0 + 10),
        ("paused", T0 + 10, T0 + 20),
        ("running", T0 + 20, T0 + 30),
    ]
    assert list(m.lanes["test"].ticks) == [
        (T0 + 10, "suspended (paused)"),
        (T0 + 20, "resumed (unpaused)"),
        (T0 + 25, "reboot"),
    ]
    assert m.events_in_window() == 3


@pytest.mark.parametrize(
    ("name", "current", "after"),
    [
        ("started", "shutoff", "running"),
        ("suspended", "running", "paused"),
        ("resumed", "paused", "running"),
        ("stopped", "running", "shutoff"),
        ("crashed", "running", "crashed"),
        ("pmsuspended", "running", "pmsuspended"),
        ("shutdown", "running", None),  # still running until "stopped"
        ("defined", None, "shutoff"),  # a new domain
        ("defined", "running", None),  # a running domain's new definition
        ("undefined", "shutoff", GONE),
    ],
)
def test_state_after_each_lifecycle_event(name: str, current: str | None, after: str) -> None:
    assert state_after(event(T0, "d", name), current) == after


@pytest.mark.parametrize(
    ("name", "kind", "says"),
    [
        ("suspended", "lifecycle", True),
        ("started", "lifecycle", True),
        ("undefined", "lifecycle", True),
        ("shutdown", "lifecycle", False),  # the domain may still run: read it
        ("defined", "lifecycle", False),  # a redefinition keeps whatever state it had
        ("reboot", "reboot", True),  # no lifecycle event: nothing to read
    ],
)
def test_only_events_that_leave_the_state_open_ask_for_a_read(
    name: str, kind: str, says: bool
) -> None:
    assert says_state(event(T0, "d", name, kind=kind)) is says


def test_an_event_on_an_unseen_domain_implies_its_state_back_to_since(clock: Clock) -> None:
    m = TimelineModel(5, clock=clock)  # since = T0: every event since is seen
    m.add(event(T0 + 5, "d", "suspended", "paused"))
    clock.now = T0 + 10
    assert m.spans("d") == [("running", T0, T0 + 5), ("paused", T0 + 5, T0 + 10)]


def test_history_starts_the_picture_and_a_read_finishes_it(clock: Clock) -> None:
    m = TimelineModel(5, clock=clock)
    # the connection's history: the oldest event is where knowledge begins
    m.seed([event(T0 - 100, "a", "started", "booted"), event(T0 - 50, "b", "suspended")])
    assert m.since == T0 - 100
    # a domain no event mentions was in its read state since then; b resumed meanwhile
    m.observe({"a": "running", "b": "running", "quiet": "shutoff"}, T0, complete=True)
    assert m.spans("a") == [("running", T0 - 100, T0)]
    assert m.spans("b") == [
        ("running", T0 - 100, T0 - 50),
        ("paused", T0 - 50, T0),
        ("running", T0, T0),
    ]
    assert m.spans("quiet") == [("shutoff", T0 - 100, T0)]


def test_an_event_newer_than_a_read_wins(clock: Clock) -> None:
    m = TimelineModel(5, clock=clock)
    m.observe({"d": "running"}, T0, complete=True)
    m.add(event(T0 + 2, "d", "suspended"))  # after the read below began
    m.observe({"d": "running"}, T0 + 1, complete=True)
    assert m.lanes["d"].state == "paused"
    m.observe({}, T0 + 1, complete=True)  # nor is it gone
    assert m.lanes["d"].state == "paused"
    m.observe({}, T0 + 3, complete=True)  # a later complete read without it: gone
    assert m.lanes["d"].state == GONE


def test_old_spans_and_ticks_are_pruned_and_gone_lanes_forgotten(clock: Clock) -> None:
    m = TimelineModel(1, clock=clock)  # one minute
    m.observe({"d": "running", "x": "shutoff"}, T0, complete=True)
    for i in range(100):  # one change a second, for 100 s
        m.add(event(T0 + i, "d", "suspended" if i % 2 == 0 else "resumed"))
    m.add(event(T0 + 1, "x", "undefined"))
    clock.now = T0 + 100
    m.prune()
    lane = m.lanes["d"]
    # only what shows in the last 60 s (a span that began before them and ran into it stays)
    assert len(lane.spans) == 60 and lane.spans[0][0] == T0 + 40
    assert len(lane.ticks) == 60 and lane.ticks[0][0] == T0 + 40
    assert m.spans("d")[0] == ("paused", T0 + 40, T0 + 41)
    assert "x" not in m.lanes  # undefined 99 s ago: past the window
    assert m.dropped_spans == m.dropped_ticks == 0  # aged out, not dropped
    clock.now = T0 + 100.5
    m.prune()  # the span that began at T0 + 40 still shows its last half second
    assert m.spans("d")[0] == ("paused", T0 + 40.5, T0 + 41)


def test_each_lane_keeps_at_most_max_spans_and_max_ticks(clock: Clock) -> None:
    m = TimelineModel(5, max_spans=10, max_ticks=5, clock=clock)
    m.observe({"d": "running"}, T0, complete=True)
    for i in range(50):
        m.add(event(T0 + i / 100, "d", "suspended" if i % 2 == 0 else "resumed"))
    assert len(m.lanes["d"].spans) == 10 and len(m.lanes["d"].ticks) == 5
    assert m.dropped_spans == 41 and m.dropped_ticks == 45


def test_many_domains_show_the_most_active_in_name_order(clock: Clock) -> None:
    m = TimelineModel(5, max_lanes=3, clock=clock)
    m.observe({f"d{i}": "shutoff" for i in range(1, 11)} | {"d7": "running"}, T0, complete=True)
    m.add(event(T0 + 1, "d10", "started"))
    m.add(event(T0 + 2, "d2", "started"))
    # the two active ones, then running before shut off
    assert m.shown() == ["d2", "d7", "d10"]
    assert m.hidden == 7
    assert m.picture()["hidden"] == 7
    m.add(event(T0 + 3, "d5", "started"))  # a hidden lane comes alive: shown, whole
    changes = m.take_changes()
    assert changes is not None
    assert ["lanes", ["d2", "d5", "d10"], 7] in changes["changes"]
    assert ["lane", m.lanes["d5"].record()] in changes["changes"]


def test_changes_are_deltas_of_shown_lanes_then_nothing(clock: Clock) -> None:
    m = TimelineModel(5, clock=clock)
    m.observe({"d": "running"}, T0, complete=True)
    first = m.picture()
    assert first["kind"] == "picture" and [ln["name"] for ln in first["lanes"]] == ["d"]
    assert m.take_changes() is None
    clock.now = T0 + 1
    m.add(event(T0 + 1, "d", "suspended", "paused"))
    assert m.take_changes() == {
        "kind": "changes",
        "now": T0 + 1,
        "changes": [["tick", "d", T0 + 1, "suspended (paused)"], ["span", "d", T0 + 1, "paused"]],
        "dropped": 0,
    }
    assert m.take_changes() is None
    json.dumps(first)  # plain data: it crosses to the browser as JSON


def test_a_flood_between_two_flushes_sends_the_picture_instead(clock: Clock) -> None:
    m = TimelineModel(5, clock=clock)
    m.observe({"d": "running"}, T0, complete=True)
    m.picture()
    for i in range(3000):
        m.add(event(T0 + i / 1000, "d", "suspended" if i % 2 == 0 else "resumed"))
    sent = m.take_changes()
    assert sent is not None and sent["kind"] == "picture"
    assert len(sent["lanes"][0]["spans"]) == 200  # capped
    assert m.take_changes() is None


def test_lanes_sort_naturally_and_ignore_other_families(clock: Clock) -> None:
    m = TimelineModel(5, clock=clock)
    m.observe({"vm10": "running", "vm2": "running", "a": "paused"}, T0, complete=True)
    m.add(Event(next(_seq), T0, "c", "network", "lifecycle", "default", "started", ""))
    assert m.shown() == ["a", "vm2", "vm10"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"minutes": 0}, "minutes must be more than 0, got 0"),
        ({"minutes": 5, "max_lanes": 0}, "max_lanes must be 1 or more, got 0"),
    ],
)
def test_bad_arguments_say_what_to_give(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        TimelineModel(**kwargs)  # type: ignore[arg-type]
