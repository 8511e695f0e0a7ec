"""A real QEMU hypervisor: TCG guests under the tests' own libvirtd, events through ipyvirt."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libvirt
import pytest

from ipyvirt.domains import query_all, query_domain
from ipyvirt.testing.libvirtd import Libvirtd, LibvirtdUnavailable
from ipyvirt.testing.qemu import QEMU_STATE_DIR
from ipyvirt.testing.qemu import minimal_domain_xml as domain_xml

from .conftest import QEMU_LOG_DIR

pytestmark = pytest.mark.qemu

REPO = Path(__file__).resolve().parents[2]
Event = tuple[int, int]
# lifecycle (event, detail) pairs, as libvirt reports them
STARTED = (libvirt.VIR_DOMAIN_EVENT_STARTED, libvirt.VIR_DOMAIN_EVENT_STARTED_BOOTED)
SUSPENDED = (libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED)
RESUMED = (libvirt.VIR_DOMAIN_EVENT_RESUMED, libvirt.VIR_DOMAIN_EVENT_RESUMED_UNPAUSED)
SHUTDOWN = (libvirt.VIR_DOMAIN_EVENT_SHUTDOWN, libvirt.VIR_DOMAIN_EVENT_SHUTDOWN_HOST)
STOPPED = (libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED)


def guest_processes(name: str) -> list[int]:
    """Live qemu-system processes running guest *name* (zombies are not: here PID 1 reaps
    orphans seconds late, and ``pgrep -f qemu-system`` still lists them meanwhile)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        qemu = Path(argv[0]).name.startswith("qemu-system")
        if qemu and state != "Z" and any(arg.startswith(f"guest={name},") for arg in argv):
            found.append(int(entry.name))
    return found


def virsh(uri: str, *args: str) -> str:
    done = subprocess.run(["virsh", "-q", "-c", uri, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def start_guest(uri: str, name: str, tmp_path: Path) -> int:
    """Start guest *name* with virsh, outside this process; its QEMU pid."""
    xml = tmp_path / f"{name}.xml"
    xml.write_text(domain_xml(name))
    virsh(uri, "create", str(xml))
    pids = guest_processes(name)
    assert len(pids) == 1, f"guest {name}: QEMU processes {pids}"
    return pids[0]


# -- guests and their events ----------------------------------------------------------------


def test_guest_lifecycle_events_through_ipyvirt(
    qemu_daemon: Libvirtd,
    libvirt_loop: asyncio.AbstractEventLoop,
    guest_name: Callable[[], str],
) -> None:
    events, threads = libvirt_loop.run_until_complete(lifecycle(qemu_daemon.qemu_uri, guest_name()))
    assert events == [
        [RESUMED, STARTED],  # QEMU starts paused (-S); libvirt starts its CPUs, then says so
        [SUSPENDED],
        [RESUMED],
        [SHUTDOWN, STOPPED],  # QEMU reports the SIGTERM destroy() sends it
    ]
    # libvirt hands events to callbacks from a timer: on the thread that runs the loop
    assert set(threads) == {threading.current_thread().name}


async def lifecycle(uri: str, name: str) -> tuple[list[list[Event]], list[str]]:
    """Create, suspend, resume, destroy guest *name*; the lifecycle events after each step."""
    conn = libvirt.open(uri)
    queue: asyncio.Queue[Event] = asyncio.Queue()
    threads: list[str] = []

    def callback(conn: Any, dom: Any, event: int, detail: int, opaque: Any) -> None:
        if dom.name() == name:
            threads.append(threading.current_thread().name)
            queue.put_nowait((event, detail))

    callback_id = conn.domainEventRegisterAny(
        None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, callback, None
    )
    dom = None
    events: list[list[Event]] = []
    try:
        dom = conn.createXML(domain_xml(name))
        events.append(await events_until(queue, STARTED))
        dom.suspend()
        events.append(await events_until(queue, SUSPENDED))
        dom.resume()
        events.append(await events_until(queue, RESUMED))
        dom.destroy()
        events.append(await events_until(queue, STOPPED))
        await asyncio.sleep(0.1)  # and nothing after
        events[-1] += [queue.get_nowait() for _ in range(queue.qsize())]
    finally:
        if dom is not None and (not events or STOPPED not in events[-1]):
            dom.destroy()  # a failed test leaves no guest running
        conn.domainEventDeregisterAny(callback_id)
        conn.close()
        await asyncio.sleep(0.01)  # let the frees libvirt owes run on this loop
    return events, threads


async def events_until(queue: asyncio.Queue[Event], last: Event) -> list[Event]:
    """The events that arrive until *last* arrives (10 s at most)."""
    events: list[Event] = []
    while last not in events:
        events.append(await asyncio.wait_for(queue.get(), 10))
    return events


def test_guest_states_as_libvirt_reports_them(
    qemu_daemon: Libvirtd, guest_name: Callable[[], str]
) -> None:
    conn = libvirt.open(qemu_daemon.qemu_uri)
    try:
        dom = conn.createXML(domain_xml(guest_name()))
        try:
            assert dom.state() == [libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_BOOTED]
            assert dom.info()[1] == 64 * 1024  # KiB
            dom.suspend()
            assert dom.state() == [libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER]
            dom.resume()
            assert dom.state() == [libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_UNPAUSED]
        finally:
            dom.destroy()
        assert guest_processes(dom.name()) == []
    finally:
        conn.close()


def test_the_bulk_read_of_qemu_domains_equals_reading_each(
    qemu_daemon: Libvirtd, guest_name: Callable[[], str]
) -> None:
    """QEMU's bulk stats carry the memory and vCPUs (the test driver's only the state): the
    domain table's rows from them equal those read domain by domain, running, paused, shut
    off."""
    conn = libvirt.open(qemu_daemon.qemu_uri)
    running, paused, defined = guest_name(), guest_name(), guest_name()
    try:
        conn.createXML(domain_xml(running))
        conn.createXML(domain_xml(paused)).suspend()
        conn.defineXML(domain_xml(defined)).setAutostart(1)
        stats = {d.name(): v for d, v in conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_BALLOON)}
        assert "balloon.current" in stats[running]  # so no info() is asked for it
        bulk = {r.name: r for r in query_all(conn).values()}
        plain = {r.name: r for r in map(query_domain, conn.listAllDomains())}
        assert bulk == plain
        assert [bulk[n].state for n in (running, paused, defined)] == [
            "running",
            "paused",
            "shutoff",
        ]
        assert bulk[defined].autostart and not bulk[running].persistent
    finally:
        for name in (running, paused):
            conn.lookupByName(name).destroy()
        conn.lookupByName(defined).undefine()
        conn.close()


def test_the_same_daemon_serves_the_test_driver(qemu_daemon: Libvirtd) -> None:
    assert "test" in virsh(qemu_daemon.test_uri, "list", "--all", "--name").split()


# -- stopping, killing ----------------------------------------------------------------------


def test_stop_destroys_the_guests(
    stoppable_qemu_daemon: Libvirtd, guest_name: Callable[[], str], tmp_path: Path
) -> None:
    daemon = stoppable_qemu_daemon
    names = [guest_name(), guest_name()]
    for name in names:
        start_guest(daemon.qemu_uri, name, tmp_path)
    daemon.stop()
    assert not daemon.running()
    assert [guest_processes(name) for name in names] == [[], []]
    for name in names:
        # destroyed through libvirt, not killed behind its back
        assert "shutting down, reason=destroyed" in (QEMU_LOG_DIR / f"{name}.log").read_text()


def test_kill_leaves_guests_until_cleanup(
    stoppable_qemu_daemon: Libvirtd, guest_name: Callable[[], str], tmp_path: Path
) -> None:
    daemon = stoppable_qemu_daemon
    name = guest_name()
    pid = start_guest(daemon.qemu_uri, name, tmp_path)
    daemon.kill()
    assert not daemon.running()
    # as after a crash: QEMU runs on, its pid file left in libvirt's state dir
    assert guest_processes(name) == [pid]
    assert (QEMU_STATE_DIR / f"{name}.pid").exists()
    daemon.cleanup()
    assert guest_processes(name) == []
    assert not daemon.dir.exists()
    # ended through a daemon that took the guest back: libvirt's state on it is gone
    assert "shutting down, reason=destroyed" in (QEMU_LOG_DIR / f"{name}.log").read_text()
    assert not (QEMU_STATE_DIR / f"{name}.pid").exists()
    assert not (QEMU_STATE_DIR / f"{name}.xml").exists()


def test_a_second_qemu_daemon_says_who_holds_the_driver(qemu_daemon: Libvirtd) -> None:
    second = Libvirtd(qemu=True)
    try:
        with pytest.raises(LibvirtdUnavailable) as raised:
            second.start()
    finally:
        second.cleanup()
    message = str(raised.value)
    assert message.startswith(f"another libvirtd runs the QEMU driver (pid {qemu_daemon.pid}: ")
    assert message.endswith("stop it first (python -m ipyvirt.testing.libvirtd stop [--dir DIR])")
    assert "\n" not in message
    assert qemu_daemon.running()


# -- the command line -----------------------------------------------------------------------


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ipyvirt.testing.libvirtd", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def script(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [str(REPO / "scripts" / "libvirt-daemon"), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_the_script_starts_and_stops_a_qemu_daemon(
    stoppable_qemu_daemon: Libvirtd, guest_name: Callable[[], str], tmp_path: Path
) -> None:
    stoppable_qemu_daemon.stop()  # the machine's one QEMU driver goes to the script's daemon
    name = guest_name()
    started = script("start", "--qemu", "--dir", tmp_path)
    try:
        assert started.returncode == 0, started.stderr
        socket = tmp_path / "libvirt-sock"
        assert started.stdout.splitlines() == [
            f"test=test+unix:///default?socket={socket}",
            f"qemu=qemu+unix:///system?socket={socket}",
        ]
        assert script("start", "--dir", tmp_path).stdout == started.stdout  # already running
        start_guest(started.stdout.splitlines()[1].removeprefix("qemu="), name, tmp_path)
    finally:
        stopped = script("stop", "--dir", tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert guest_processes(name) == []
    assert Libvirtd.attach(tmp_path) is None
    assert (tmp_path / "libvirtd.log").exists()  # a given dir is kept, logs and all


def test_the_command_line_without_qemu(tmp_path: Path) -> None:
    started = cli("start", "--dir", tmp_path)
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout == f"test=test+unix:///default?socket={tmp_path}/libvirt-sock\n"
    finally:
        assert cli("stop", "--dir", tmp_path).returncode == 0
    again = cli("stop", "--dir", tmp_path)
    assert (again.returncode, again.stderr) == (
        0,
        f"libvirt-daemon: no libvirtd runs from {tmp_path}\n",
    )


def test_the_command_line_says_what_to_do(tmp_path: Path) -> None:
    started = cli("start", "--dir", tmp_path)
    try:
        assert started.returncode == 0, started.stderr
        refused = cli("start", "--qemu", "--dir", tmp_path)
        assert (refused.returncode, refused.stdout) == (1, "")
        assert refused.stderr == (
            f"libvirt-daemon: the libvirtd running from {tmp_path} has no QEMU driver: stop it "
            f"first (python -m ipyvirt.testing.libvirtd stop --dir {tmp_path})\n"
        )
    finally:
        cli("stop", "--dir", tmp_path)
    usage = script("restart")
    assert (usage.returncode, usage.stderr) == (
        2,
        "usage: scripts/libvirt-daemon start [--qemu] [--dir DIR] | stop [--dir DIR]\n",
    )
