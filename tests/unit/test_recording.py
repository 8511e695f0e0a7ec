"""Recording real test:///default events to JSON Lines, reading them back, replaying them.

Each test runs ipyvirt on a fresh loop of its own (the process's registered implementation,
bound to it) and drives test:///default, in process, from that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import libvirt
import pytest

import ipyvirt
from ipyvirt.hub import Event
from ipyvirt.records import read_recording

from inproc import Run, until


def _xml(conn: libvirt.virConnect, name: str) -> str:
    xml = re.sub(r"<uuid>.*</uuid>", "", conn.lookupByName("test").XMLDesc())
    return re.sub(r"<name>.*</name>", f"<name>{name}</name>", xml)


async def storm(conn: libvirt.virConnect, prefix: str, gap: float = 0.0) -> None:
    """Domains defined, started, paused, resumed, stopped, undefined; a network restarted.
    Ends with the network's "started" event. Leaves {prefix}0 shut off, {prefix}2 running."""
    for i in range(3):
        dom = conn.defineXML(_xml(conn, f"{prefix}{i}"))
        dom.create()
        await asyncio.sleep(gap)
        dom.suspend()
        dom.resume()
        await asyncio.sleep(gap)
    conn.lookupByName(f"{prefix}0").destroy()
    gone = conn.lookupByName(f"{prefix}1")
    gone.destroy()
    gone.undefine()
    await asyncio.sleep(gap)
    net = conn.networkLookupByName("default")
    net.destroy()
    net.create()


def clean(conn: libvirt.virConnect, prefix: str) -> None:
    for dom in conn.listAllDomains():
        if dom.name().startswith(prefix):
            if dom.isActive():
                dom.destroy()
            dom.undefine()


def _network_back(events: list[Event]) -> bool:
    return any(e.family == "network" and e.name == "started" for e in events)


@pytest.fixture
def conn(run: Run) -> Iterator[ipyvirt.Connection]:
    c = ipyvirt.Connection(uri="test:///default", readonly=False, name="lab")
    yield c
    clean(c.conn, "rec-")
    c.close()


def record_storm(
    run: Run, conn: ipyvirt.Connection, path: Path, prefix: str, gap: float = 0.0
) -> list[Event]:
    """Record a storm on *conn* to *path*; the events a subscriber saw meanwhile."""
    seen: list[Event] = []

    async def go() -> None:
        with ipyvirt.record(conn, path):
            # subscribed with no loop turn after the recorder's subscription, and cancelled
            # with none before its end: both see the same events, late ones of an earlier
            # test's storm on the shared test:///default included
            sub = conn.subscribe(seen.append)
            try:
                await storm(conn.conn, prefix, gap)
                await until(lambda: _network_back(seen), "the storm's last event")
            finally:
                sub.cancel()

    run(go())
    return seen


def test_a_recording_reads_back_as_the_live_events(
    run: Run, conn: ipyvirt.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "storm.jsonl"
    live = record_storm(run, conn, path, "rec-a")
    recording = read_recording(path)
    assert recording.events == live
    assert [e.event.thread for e in recording.entries] == [e.thread for e in live]
    assert recording.host == "test:///default" and recording.connection == "lab"
    assert recording.stopped is not None and recording.skipped == 0
    assert {e.kind for e in live} == {"lifecycle"}
    assert {e.family for e in live} == {"domain", "network"}
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["record"] for line in lines] == ["start"] + ["event"] * len(live) + ["stop"]
    assert {line["host"] for line in lines[1:-1]} == {"test:///default"}
    assert {line["event_id"] for line in lines[1:-1]} == {libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE}
    # domain events carry the domain after them; the one undefined is gone at the end
    rows = {e.event.subject: e.row for e in recording.entries if e.event.family == "domain"}
    assert rows["rec-a1"] is None and rows["rec-a2"] is not None
    assert rows["rec-a2"].state == "running"
    assert recording.domains is not None
    assert "test" in {r.name for r in recording.domains}


def test_history_exports_what_the_connection_kept(
    run: Run, conn: ipyvirt.Connection, tmp_path: Path
) -> None:
    record_storm(run, conn, tmp_path / "first.jsonl", "rec-h")
    kept = list(conn.history)
    with ipyvirt.record(conn, tmp_path / "history.jsonl", history=True) as recorder:
        pass
    assert recorder.count == len(kept) and not recorder.active
    assert read_recording(tmp_path / "history.jsonl").events == kept
    assert (
        ipyvirt.to_records(kept, host=conn.uri)
        == read_recording(tmp_path / "history.jsonl").to_records()
    )


def test_a_libvirt_connection_is_recorded_through_a_connection_of_its_own(
    run: Run, tmp_path: Path
) -> None:
    lv = libvirt.open("test:///default")
    dom = lv.lookupByName("test")
    recorder = ipyvirt.record(lv, tmp_path / "plain.jsonl")

    async def act() -> None:
        dom.suspend()
        dom.resume()
        await until(lambda: recorder.count == 2, "two events")

    run(act())
    watcher = recorder.connection
    recorder.stop()
    assert watcher.closed_reason == "client"  # the Connection record() made is closed with it
    assert [e.name for e in read_recording(tmp_path / "plain.jsonl").events] == [
        "suspended",
        "resumed",
    ]
    with pytest.raises(TypeError, match=r"libvirt connection or an ipyvirt\.Connection, not str"):
        ipyvirt.record("test:///default", tmp_path / "x.jsonl")  # type: ignore[arg-type]
    lv.close()


def test_closing_the_connection_stops_its_recording(run: Run, tmp_path: Path) -> None:
    c = ipyvirt.Connection(uri="test:///default")
    recorder = ipyvirt.record(c, tmp_path / "r.jsonl")
    c.close()
    assert not recorder.active
    assert read_recording(tmp_path / "r.jsonl").stopped is not None


def test_replay_shows_the_same_rows_as_the_live_run(
    run: Run, conn: ipyvirt.Connection, tmp_path: Path
) -> None:
    from ipyvirt.widgets import DomainTable, EventLog

    live_log, live_table = EventLog(conn), DomainTable(conn, actions=False)
    path = tmp_path / "storm.jsonl"
    record_storm(run, conn, path, "rec-r")
    run(until(lambda: live_table.settled, "the live table"))

    replayed = ipyvirt.replay(path, speed=math.inf, start=False)
    log, table = EventLog(replayed), DomainTable(replayed, actions=False)
    replayed.start()

    async def finish() -> None:
        await replayed.wait()
        await until(lambda: table.settled, "the replayed table")

    run(finish())
    assert table.rows() == live_table.rows()
    assert [r.name for r in table.rows() if r.name.startswith("rec-r")] == ["rec-r0", "rec-r2"]
    assert log.events == live_log.events
    assert repr(log) == repr(live_log)
    assert list(replayed.history) == list(log.events)
    assert replayed.finished and replayed.position == len(log.events)
    for widget in (live_log, live_table):
        widget.close()
    replayed.close()
    assert table._shut and log._shut  # the replay closes its widgets, as a Connection does


def test_replay_speed_scales_the_recorded_gaps(
    run: Run, conn: ipyvirt.Connection, tmp_path: Path, libvirt_loop: asyncio.AbstractEventLoop
) -> None:
    path = tmp_path / "slow.jsonl"
    record_storm(run, conn, path, "rec-s", gap=0.05)
    recording = read_recording(path)
    offsets = [e.time - recording.events[0].time for e in recording.events]
    assert recording.duration == pytest.approx(offsets[-1]) and recording.duration >= 0.25

    fast = ipyvirt.replay(recording, speed=4.0, start=False)
    assert [fast.due(i) for i in range(len(offsets))] == [o / 4.0 for o in offsets]
    instant = ipyvirt.replay(recording, speed=math.inf, start=False)
    assert {instant.due(i) for i in range(len(offsets))} == {0.0}

    loop = libvirt_loop
    fed: list[float] = []
    fast.subscribe(lambda e: fed.append(loop.time()))
    fast.start()
    run(fast.wait())
    began = fast._began
    assert began is not None and len(fed) == len(offsets)
    # never early: each event waits for its scaled offset (how late it may be is a benchmark)
    slack = time.get_clock_info("monotonic").resolution  # asyncio's own slack when it fires
    assert all(t - began >= o / 4.0 - slack for t, o in zip(fed, offsets, strict=True))
    for r in (fast, instant):
        r.close()


def test_a_replay_streams_to_async_for(run: Run, conn: ipyvirt.Connection, tmp_path: Path) -> None:
    path = tmp_path / "storm.jsonl"
    live = record_storm(run, conn, path, "rec-e")
    replayed = ipyvirt.replay(path, speed=math.inf, start=False)

    async def read() -> list[Event]:
        got: list[Event] = []
        replayed.start()
        # closed here, not by the garbage collector after this test's loop is gone
        async with contextlib.aclosing(ipyvirt.events(replayed, families=["network"])) as stream:
            async for event in stream:
                got.append(event)
                if event.name == "started":
                    break
        return got

    assert run(read()) == [e for e in live if e.family == "network"]
    replayed.close()


def test_replay_is_a_whole_connection(run: Run, tmp_path: Path) -> None:
    c = ipyvirt.Connection(uri="test:///default")
    with ipyvirt.record(c, tmp_path / "r.jsonl"):
        pass
    replayed = ipyvirt.replay(tmp_path / "r.jsonl")
    # Replay sets up what Connection.__init__ does, without opening anything
    assert set(vars(c)) <= set(vars(replayed))
    assert replayed.domain("test").name() == "test"
    with pytest.raises(ipyvirt.NoSuchDomain, match="no domain named 'nosuch'"):
        replayed.domain("nosuch")
    c.close()
    replayed.close()


@pytest.mark.parametrize("speed", [0, -1.0, math.nan])
def test_a_bad_speed_says_what_to_use(run: Run, tmp_path: Path, speed: float) -> None:
    c = ipyvirt.Connection(uri="test:///default")
    with ipyvirt.record(c, tmp_path / "r.jsonl"):
        pass
    with pytest.raises(ValueError, match=r"^speed must be more than 0.*1\.0 replays") as err:
        ipyvirt.replay(tmp_path / "r.jsonl", speed=speed)
    assert "\n" not in str(err.value)
    c.close()


def test_to_pandas_columns_and_dtypes(run: Run, conn: ipyvirt.Connection, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")  # the "analysis" extra; the test extra installs it
    path = tmp_path / "storm.jsonl"
    live = record_storm(run, conn, path, "rec-p")
    frame = ipyvirt.read_recording(path).to_pandas()
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        "time": "datetime64[ns, UTC]",
        "seq": "int64",
        "host": "string",
        "connection": "string",
        "family": "category",
        "kind": "category",
        "event_id": "Int64",
        "subject": "string",
        "name": "category",
        "detail": "string",
        "state": "string",
        "args": "object",
    }
    assert len(frame) == len(live)
    assert list(frame["seq"]) == [e.seq for e in live]
    assert frame["time"].iloc[0] == pd.Timestamp(live[0].time, unit="s", tz="UTC")
    assert frame.loc[frame["family"] == "network", "event_id"].isna().sum() == 0
    assert frame.loc[frame["family"] == "network", "state"].isna().all()
    domains = frame[frame["family"] == "domain"]
    assert set(domains["state"].dropna()) <= {"running", "paused", "shutoff"}
    # the row of a domain undefined meanwhile is gone: no state
    assert domains.loc[domains["state"].isna(), "subject"].unique().tolist() == ["rec-p1"]
    history = ipyvirt.to_pandas(conn.history, host=conn.uri)
    assert list(history.columns) == list(frame.columns)
    assert set(history["host"]) == {"test:///default"}


# -- what goes wrong, and what is kept --------------------------------------------------------


def test_a_bad_path_says_what_to_do(run: Run, tmp_path: Path) -> None:
    c = ipyvirt.Connection(uri="test:///default")
    with pytest.raises(ipyvirt.RecordingError, match="choose a path in a directory") as err:
        ipyvirt.record(c, tmp_path / "no" / "such" / "dir.jsonl")
    assert "\n" not in str(err.value)
    kept = tmp_path / "kept.jsonl"
    with ipyvirt.record(c, kept):
        pass
    before = kept.read_bytes()
    with pytest.raises(ipyvirt.RecordingError, match="choose a new file name") as err:
        ipyvirt.record(c, kept)
    assert "\n" not in str(err.value)
    assert kept.read_bytes() == before  # an earlier recording is never overwritten
    with pytest.raises(ipyvirt.RecordingError, match="give the path of a file"):
        read_recording(tmp_path / "missing.jsonl")
    assert not c.hub._subs[1:]  # the failed recorders did not stay subscribed
    c.close()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda lines: [*lines[:3], '{"record": "event", "seq"', *lines[3:]], id="cut"),
        pytest.param(lambda lines: [*lines[:3], "garbage", *lines[3:]], id="garbage"),
        pytest.param(lambda lines: [*lines[:3], '{"record": "evt"}', *lines[3:]], id="unknown"),
        pytest.param(lambda lines: [*lines[:3], '{"record": "event"}', *lines[3:]], id="fields"),
        pytest.param(lambda lines: [*lines[:-1], lines[-1][:20]], id="died"),
    ],
)
def test_a_corrupt_line_is_named_and_the_rest_is_kept(
    run: Run, conn: ipyvirt.Connection, tmp_path: Path, damage: Callable[[list[str]], list[str]]
) -> None:
    path = tmp_path / "storm.jsonl"
    live = record_storm(run, conn, path, "rec-c")
    lines = path.read_text().splitlines()
    damaged = damage(lines)
    path.write_text("\n".join(damaged) + "\n")
    bad = next(i for i, (a, b) in enumerate(zip(damaged, [*lines, ""], strict=False)) if a != b)
    with pytest.raises(ipyvirt.RecordingError) as err:
        read_recording(path)
    message = str(err.value)
    assert "\n" not in message
    assert f"line {bad + 1} is not an ipyvirt event record" in message
    assert "read_recording(path, skip_bad=True)" in message
    recording = read_recording(path, skip_bad=True)
    assert recording.skipped == 1
    if bad == len(lines) - 1:  # the stop line cut short: every event is there
        assert recording.events == live and recording.stopped is None
    else:
        assert recording.events == live and recording.stopped is not None


def test_a_file_that_is_no_recording_says_so(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text('{"some": "json"}\n')
    with pytest.raises(ipyvirt.RecordingError, match=r"is not an ipyvirt recording .*give the"):
        read_recording(path)


def test_args_round_trip_with_their_tuples() -> None:
    # graphics events pass dicts and a list of tuples; tunable ones a dict of typed params
    args = (
        0,
        {"family": 0, "node": "127.0.0.1", "service": "5900"},
        [("x509dname", "CN=a"), ("saslUsername", "b")],
        {"cputune.vcpu_period": 100000, "cputune.quota": -1.5, "on": True, "none": None},
    )
    event = Event(7, 1.25, "lab", "domain", "graphics", "vm", "graphics", "phase=0", args)
    line = json.dumps(ipyvirt.to_records([event], host="qemu:///system")[0])
    start = {"record": "start", "format": "ipyvirt-events", "version": 1, "host": "h"}
    start |= {"connection": "lab", "time": 1.0, "domains": None}
    assert read_recording_lines([json.dumps(start), line]).events == [event]


def read_recording_lines(lines: list[str]) -> ipyvirt.Recording:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.jsonl"
        path.write_text("\n".join(lines) + "\n")
        return read_recording(path)


def test_a_failing_disk_stops_the_recording_and_keeps_what_was_written(
    run: Run, conn: ipyvirt.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "full.jsonl"
    recorder = ipyvirt.record(conn, path)
    dom = conn.conn.lookupByName("test")

    async def pause_and_resume() -> None:
        count = recorder.count
        dom.suspend()
        dom.resume()
        await until(lambda: recorder.count == count + 2, "two events recorded")

    run(pause_and_resume())
    assert recorder._file is not None
    recorder._file.close()  # what was written stays; the disk "fills up" from here on
    recorder._file = open("/dev/full", "w", buffering=1)  # noqa: SIM115 - the recorder closes it
    run(_suspend_resume(dom))
    run(until(lambda: not recorder.active, "the recorder to give up"))
    assert recorder.error is not None and "\n" not in recorder.error
    assert recorder.error.endswith("free some space or record to another path")
    assert "after 2 events" in recorder.error
    recording = read_recording(path)
    assert [e.name for e in recording.events] == ["suspended", "resumed"]
    assert recording.stopped is None  # cut short, and says so
    recorder.stop()  # a no-op now


async def _suspend_resume(dom: libvirt.virDomain) -> None:
    dom.suspend()
    dom.resume()
