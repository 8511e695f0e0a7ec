"""UsageSamples, EventHistory, Ring and LoopRates, without a kernel, on test:///default."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import libvirt
import pytest

import ipyvirt
from ipyvirt import statistics
from ipyvirt.connection import Connection
from ipyvirt.models.event_history import COLUMNS, EventHistory, event_row
from ipyvirt.models.loop_rates import LoopRates, interval_label, watch_label
from ipyvirt.models.ring import Ring
from ipyvirt.models.usage import (
    BULK,
    PER_DOMAIN,
    Sample,
    UsageSamples,
    describe_sources,
    read_usage,
)

from inproc import Run, until


def test_the_test_driver_gets_usage_from_per_domain_calls() -> None:
    libvirt.registerErrorHandler(lambda *a: None, None)
    conn = libvirt.open("test:///default")
    try:
        # what made the Usage tab say "n/a" for ever: bulk stats without cpu.* or balloon.*
        bulk = conn.getAllDomainStats(
            libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_BALLOON,
            libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE,
        )
        assert not any("cpu.time" in values for _, values in bulk)
        samples = read_usage(conn)
        model = UsageSamples(history=3)
        model.add(time.monotonic(), samples)
        model.add(time.monotonic() + 0.5, read_usage(conn))
    finally:
        conn.close()
    test = next(s for s in samples if s.name == "test")
    assert test.source == PER_DOMAIN and test.cpu_ns is not None and test.memory_kib
    (record,) = [r for r in model.records() if r["name"] == "test"]
    assert record["source"] == "per-domain calls"
    assert len(record["cpu_percent"]) == 1 and len(record["memory_mib"]) == 2
    assert record["memory_mib"][-1] > 0


def test_usage_rates_history_and_gone_domains() -> None:
    model = UsageSamples(history=2)
    model.add(0.0, [Sample("a", 0, 2, 1024, BULK), Sample("b", 0, 1, None, PER_DOMAIN)])
    model.add(1.0, [Sample("a", 10**9, 2, 2048, BULK), Sample("b", 5 * 10**8, 1, None, PER_DOMAIN)])
    assert model.samples["a"] == ([50.0], [1.0, 2.0]) or list(model.samples["a"][0]) == [50.0]
    assert list(model.samples["b"][0]) == [50.0] and list(model.samples["b"][1]) == []
    model.add(2.0, [Sample("a", 2 * 10**9, 2, 3072, BULK)])
    assert list(model.samples["a"][1]) == [2.0, 3.0]  # history of two
    assert set(model.samples) == {"a"} and model.sources == {"a": BULK}
    model.failed("connection closed")
    assert model.error == "connection closed" and model.polls == 4
    # the window a chart draws: the last *history* polls that worked, times from the first
    assert list(model.frames) == [
        (1.0, [("a", 50.0, 2.0), ("b", 50.0, None)]),
        (2.0, [("a", 50.0, 3.0)]),
    ]


def test_a_domain_restarted_between_polls_has_no_cpu_rate_for_that_poll() -> None:
    model = UsageSamples(history=3)
    model.add(0.0, [Sample("a", 5 * 10**9, 1, 1024, BULK)])
    model.add(1.0, [Sample("a", 10**8, 1, 1024, BULK)])  # its CPU time started again
    model.add(2.0, [Sample("a", 6 * 10**8, 1, 1024, BULK)])
    assert [f[1][0][1] for f in model.frames] == [None, None, 50.0]


def test_usage_says_its_source_in_words() -> None:
    assert describe_sources({}) == ""
    assert describe_sources({"a": BULK}) == "bulk stats (getAllDomainStats)"
    assert describe_sources({"a": PER_DOMAIN, "b": PER_DOMAIN}) == (
        "per-domain calls, bulk stats lack cpu/memory on this driver"
    )
    assert describe_sources({"a": BULK, "b": PER_DOMAIN, "c": BULK}) == (
        "bulk stats for 2, per-domain calls for 1 (bulk stats lack cpu/memory for it)"
    )


def test_a_ring_keeps_the_newest_and_counts_the_dropped() -> None:
    ring = Ring(3, range(5))
    assert list(ring) == [2, 3, 4] and ring.dropped == 2
    ring.append(5)
    assert list(reversed(ring)) == [5, 4, 3] and ring.dropped == 3 and len(ring) == 3
    assert (ring[0], ring[-1]) == (3, 5)  # indexed as a deque: EventLog.events[-1] works
    empty: Ring[int] = Ring(0, [1])
    assert list(empty) == [] and empty.dropped == 1
    with pytest.raises(ValueError, match="capacity must be 0 or more"):
        Ring(-1)


def test_event_history_starts_from_the_connections_history(run: Run) -> None:
    conn = Connection(uri="test:///default", readonly=False)
    dom = conn.conn.lookupByName("test")

    async def scenario() -> EventHistory:
        dom.suspend()
        dom.resume()
        await until(lambda: len(conn.history) >= 2, "two events in the connection's history")
        history = EventHistory(capacity=3, history=conn.history)
        conn.subscribe(history.add)
        dom.suspend()
        dom.resume()
        await until(lambda: len(history.events) == 3, "the ring buffer to fill")
        return history

    try:
        history = run(scenario())
    finally:
        conn.close()
    names = [e.name for e in history.events]
    assert names == ["resumed", "suspended", "resumed"] and history.dropped == 1
    assert history.status() == "3 events kept, 1 dropped"
    history.look(family="network")
    assert history.newest(10) == []
    history.look(family="domain", subject="TES")
    assert [e.name for e in history.newest(2)] == ["resumed", "suspended"]
    (first,) = history.records(1)
    assert tuple(first) == COLUMNS and first["event"] == "resumed"
    assert tuple(first.values()) == event_row(history.newest(1)[0])
    with pytest.raises(ValueError, match="use one of all families, domain"):
        history.look(family="volumes")


def test_loop_rates_per_second_and_interval_labels(run: Run) -> None:
    impl = ipyvirt.runtime.current().impl  # type: ignore[union-attr]
    rates = LoopRates()
    assert rates.records() == {
        "watches": [],
        "timers": [],
        "rates": None,
        "totals": None,
        "loops": [],
    }

    async def scenario() -> None:
        conn = Connection(uri="test:///default")
        try:
            rates.add(0.0, impl.statistics())
            await asyncio.sleep(0.05)
            rates.add(2.0, impl.statistics())
        finally:
            conn.close()

    run(scenario())
    assert rates.rates is not None and rates.rates.dispatches_per_s >= 0
    assert str(rates.rates).endswith("callback errors")
    assert [interval_label(n) for n in (-1, 0, 5000)] == ["disabled", "every iteration", "5000 ms"]
    watch = statistics.WatchInfo(id=1, fd=5, events=0, dispatches=0, loop="io", thread="")
    assert watch_label(watch) == "disabled"
    assert watch_label(dataclasses.replace(watch, events=1)) == "READABLE"
    records = rates.records()
    assert {"watches", "timers", "rates", "totals", "loops"} == set(records)
    assert rates.rates.frees_per_s >= 0 and records["totals"]["callback_errors"] == 0
    # a watch or timer's own rate: None for one the previous reading did not have
    assert all(t["per_s"] is None or t["per_s"] >= 0 for t in records["timers"])
    assert all(
        t["interval"] in ("disabled", "every iteration") or t["interval"].endswith(" ms")
        for t in records["timers"]
    )


def test_the_models_import_no_widgets_and_no_ipython() -> None:
    import subprocess
    import sys

    code = (
        "import sys, ipyvirt.models.offloop, ipyvirt.models.domain_table, "
        "ipyvirt.models.event_history, ipyvirt.models.usage, ipyvirt.models.loop_rates\n"
        "print(sorted(m for m in ('ipywidgets', 'IPython', 'ipykernel') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
