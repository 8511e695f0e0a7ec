"""AsyncioEventImpl.fire_due_timers(): libvirt's due timers fired now, without a loop turn."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import libvirt
import pytest

from ipyvirt import AsyncioEventImpl
from ipyvirt.io_thread import IoThread
from ipyvirt.runtime import DELIVER_ROUNDS, Runtime

from conftest import Registered


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_due_timers_fire_in_id_order_and_no_other(loop: asyncio.AbstractEventLoop) -> None:
    impl = AsyncioEventImpl(loop)
    fired: list[str] = []

    def add(interval: int, name: str) -> int:
        return impl.add_timeout(interval, lambda timer, o: fired.append(o), name, None)

    async def scenario() -> int:
        add(60_000, "later")
        add(0, "now")
        add(-1, "disabled")
        add(1, "past")
        time.sleep(0.01)  # the loop gets no turn meanwhile: "past" is overdue, not fired
        return impl.fire_due_timers(10)

    assert loop.run_until_complete(scenario()) == 2
    assert fired[:2] == ["now", "past"]
    impl.close()


def test_the_budget_bounds_a_pass(loop: asyncio.AbstractEventLoop) -> None:
    impl = AsyncioEventImpl(loop)
    fired: list[int] = []

    async def scenario() -> tuple[int, list[int]]:
        ids = [impl.add_timeout(0, lambda timer, o: fired.append(timer), None, None) for _ in "abc"]
        assert impl.fire_due_timers(2) == 2
        return impl.fire_due_timers(0), ids

    none, ids = loop.run_until_complete(scenario())
    assert none == 0 and fired[:2] == ids[:2]
    impl.close()


def test_a_callback_that_disables_a_later_timer_wins(loop: asyncio.AbstractEventLoop) -> None:
    impl = AsyncioEventImpl(loop)
    fired: list[str] = []
    later: dict[str, int] = {}

    def first(timer: int, opaque: object) -> None:
        fired.append("first")
        impl.update_timeout(later["disabled"], -1)
        impl.remove_timeout(later["removed"])

    async def scenario() -> int:
        impl.add_timeout(0, first, None, None)  # ids in order of adding: it fires first
        for name in ("disabled", "removed", "kept"):
            later[name] = impl.add_timeout(0, lambda t, o: fired.append(o), name, None)
        return impl.fire_due_timers(10)

    assert loop.run_until_complete(scenario()) == 2
    assert fired[:2] == ["first", "kept"]
    impl.close()


def test_an_arming_handed_over_from_another_thread_fires_now(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """libvirt enables its event timer from whatever thread queued the event; the arming
    waits in the loop's queue, yet the timer's wanted state says it is due."""
    impl = AsyncioEventImpl(loop)
    fired: list[int] = []

    def flush(timer: int, opaque: object) -> None:  # as libvirt's event timer: fire, disable
        fired.append(timer)
        impl.update_timeout(timer, -1)

    async def scenario() -> tuple[int, int]:
        timer = impl.add_timeout(-1, flush, None, None)
        worker = threading.Thread(target=impl.update_timeout, args=(timer, 0))
        worker.start()
        worker.join()
        now = impl.fire_due_timers(10)
        for _ in range(5):  # the hand-over arrives: it re-arms a disabled timer, so nothing
            await asyncio.sleep(0)
        return now, timer

    now, timer = loop.run_until_complete(scenario())
    assert (now, fired) == (1, [timer])
    impl.close()


def test_a_timer_fired_early_is_not_also_fired_by_the_loop(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Two timers that fire on every loop turn; one is fired early once. If the handle the
    loop held for it were not cancelled, it would fire twice a turn from then on."""
    impl = AsyncioEventImpl(loop)
    fires = {"early": 0, "control": 0}

    def count(timer: int, name: str) -> None:
        fires[name] += 1

    async def scenario() -> None:
        impl.add_timeout(0, count, "early", None)
        impl.add_timeout(0, count, "control", None)
        assert impl.fire_due_timers(1) == 1  # the lower id: "early"
        for _ in range(50):
            await asyncio.sleep(0)

    loop.run_until_complete(scenario())
    assert fires["control"] >= 49
    assert 0 <= fires["early"] - fires["control"] <= 2, fires
    impl.close()


def test_off_the_timer_loop_it_refuses(loop: asyncio.AbstractEventLoop) -> None:
    impl = AsyncioEventImpl(loop)
    with pytest.raises(RuntimeError, match="runs on the loop that serves the timers"):
        impl.fire_due_timers(10)
    impl.close()


def test_events_queued_on_a_worker_are_delivered_without_a_loop_turn(
    registered: Registered, libvirt_loop: asyncio.AbstractEventLoop
) -> None:
    """Through libvirt's C API: the test driver queues the events on the worker and enables
    its event timer there; firing the due timers runs both callbacks."""
    conn = libvirt.open("test:///default")
    dom = conn.lookupByName("test")
    got: list[int] = []
    cb = conn.domainEventRegisterAny(
        None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lambda c, d, ev, x, o: got.append(ev), None
    )

    def act() -> None:
        dom.suspend()
        dom.resume()

    async def scenario() -> list[int]:
        worker = threading.Thread(target=act)
        worker.start()
        worker.join()
        registered.impl.fire_due_timers(100)
        return list(got)

    try:
        assert libvirt_loop.run_until_complete(scenario()) == [
            libvirt.VIR_DOMAIN_EVENT_SUSPENDED,
            libvirt.VIR_DOMAIN_EVENT_RESUMED,
        ]
    finally:
        conn.domainEventDeregisterAny(cb)
        conn.close()


# -- the budget the kernel uses: Runtime.deliver_queued() ---------------------------------------


@pytest.fixture
def rt(loop: asyncio.AbstractEventLoop) -> Iterator[Runtime]:
    impl = AsyncioEventImpl(loop)
    io: IoThread = impl.io_thread("test-io")
    impl.bind(loop, io_loop=io)
    yield Runtime(impl, loop, io)
    io.stop()
    impl.close()
    io.close()


def test_a_timer_always_due_stops_after_the_rounds(rt: Runtime) -> None:
    fires: list[int] = []

    async def scenario() -> None:
        rt.impl.add_timeout(0, lambda timer, o: fires.append(timer), None, None)
        delivery = rt.deliver_queued()
        assert (delivery.rounds, delivery.fires, delivery.budget_spent) == (
            DELIVER_ROUNDS,
            DELIVER_ROUNDS,
            True,
        )

    rt.main_loop.run_until_complete(scenario())


def test_nothing_due_is_one_empty_round(rt: Runtime) -> None:
    async def scenario() -> None:
        rt.impl.add_timeout(60_000, lambda timer, o: None, None, None)
        delivery = rt.deliver_queued()
        assert (delivery.rounds, delivery.fires, delivery.handed_over) == (1, 0, 0)
        assert not delivery.budget_spent

    rt.main_loop.run_until_complete(scenario())


def test_handed_over_deliveries_run_once(rt: Runtime) -> None:
    ran: list[str] = []

    async def scenario() -> None:
        worker = threading.Thread(target=rt.deliver_soon, args=(ran.append, "closed"))
        worker.start()
        worker.join()
        assert rt.deliver_queued().handed_over == 1
        assert ran == ["closed"]
        for _ in range(3):  # the hand-over's own call arrives and finds nothing left
            await asyncio.sleep(0)

    rt.main_loop.run_until_complete(scenario())
    assert ran == ["closed"]
