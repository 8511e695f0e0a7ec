"""%load_ext ipyvirt in a real kernel driven through jupyter_client."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pytest

from kernel import Kernel, Reply
from libvirtd import Libvirtd

pytestmark = pytest.mark.kernel

# A lifecycle callback that notes where and when it ran: on which thread, and whether a cell
# of the main shell was executing (pre/post_run_cell hooks keep the flag; a subshell's cells
# run those hooks too, on their own thread).
WATCH_EVENTS = """
import threading, time, libvirt
ip = get_ipython()
state = {"in_cell": False}
def main_cell(running):
    def hook(*args):
        if threading.current_thread() is threading.main_thread():
            state["in_cell"] = running
    return hook
ip.events.register("pre_run_cell", main_cell(True))
ip.events.register("post_run_cell", main_cell(False))
seen = []
def lifecycle(conn, dom, event, detail, opaque):
    seen.append((event, threading.current_thread().name, state["in_cell"], time.monotonic()))
c = libvirt.open(URI)
dom = c.lookupByName("test")
c.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle, None)
"""


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = Kernel()
    yield k
    k.shutdown()


def _watch(kernel: Kernel, uri: str = "test:///default") -> None:
    kernel.execute("%load_ext ipyvirt").ok()
    kernel.execute(f"URI = {uri!r}\n" + WATCH_EVENTS).ok()


def test_events_from_a_thread_arrive_on_the_main_thread_between_cells(kernel: Kernel) -> None:
    _watch(kernel)
    kernel.execute(
        "def worker():\n"
        "    for _ in range(100):\n"
        "        dom.suspend()\n"
        "        dom.resume()\n"
        "t = threading.Thread(target=worker)\n"
        "t.start()\n"
        "t.join()\n"
        "print(len(seen))"
    ).ok()
    events = kernel.value("[(e, t, c) for e, t, c, _ in seen]")
    assert len(events) == 200
    assert [e for e, _, _ in events] == [3, 4] * 100  # suspended, resumed, in order
    assert {(t, c) for _, t, c in events} == {("MainThread", False)}


def test_an_action_on_an_idle_kernel_wakes_it(kernel: Kernel) -> None:
    """A worker acts while no cell runs: only a woken loop delivers the event promptly (the
    latency itself is measured by benchmarks/latency.py, not asserted here)."""
    _watch(kernel)
    kernel.execute(
        "acted = []\n"
        "def later():\n"
        "    time.sleep(0.3)\n"
        "    acted.append(time.monotonic())\n"
        "    dom.suspend()\n"
        "threading.Thread(target=later).start()"
    ).ok()
    kernel.drain(1.5)  # the kernel is idle meanwhile
    took = kernel.value("seen[0][3] - acted[0] if seen else None")
    assert took is not None and took < 1.0, took
    assert kernel.value("seen[0][1:3]") == ("MainThread", False)
    kernel.execute("dom.resume()").ok()


def test_an_action_on_a_subshell_delivers_on_the_main_thread(kernel: Kernel) -> None:
    if not kernel.supports("kernel subshells"):
        pytest.skip(f"ipykernel {version('ipykernel')} has no subshells (ipykernel 7 has)")
    _watch(kernel)
    subshell = kernel.create_subshell()
    out = kernel.execute(
        "import threading\nprint(threading.current_thread().name)\nacted = time.monotonic()\n"
        "dom.suspend()\ndom.resume()",
        subshell_id=subshell,
    ).ok()
    assert out.stdout.startswith("subshell")
    kernel.drain(1.0)
    events = kernel.value("[(e, t, c, round(w - acted, 3)) for e, t, c, w in seen]")
    assert [(e, t, c) for e, t, c, _ in events] == [
        (3, "MainThread", False),
        (4, "MainThread", False),
    ]
    assert max(w for *_, w in events) < 1.0, events


def test_unload_undoes_everything_and_reload_works(kernel: Kernel) -> None:
    kernel.execute("%load_ext ipyvirt\n%virt connect --rw --name t").ok()
    kernel.execute("ipyconn = ipyvirt_conn = get_ipython().run_line_magic('virt', 'status')").ok()
    threads = "sorted(t.name for t in threading.enumerate() if t.name.startswith('ipyvirt'))"
    kernel.execute("import threading").ok()
    assert kernel.value(threads) == ["ipyvirt-io"]
    kernel.execute(
        "import ipyvirt.extension as e\n"
        "magics = next(iter(e._loaded.values())).magics\n"
        "watched = magics.connections['t']"
    ).ok()
    unloaded = kernel.execute("%unload_ext ipyvirt").ok()
    assert unloaded.stdout == (
        "ipyvirt unloaded: closed 0 widgets and 1 connection, stopped 1 thread (ipyvirt-io)\n"
    )
    assert kernel.value(threads) == []
    assert kernel.value("watched.closed_reason") == "client"
    assert kernel.value("'virt' in get_ipython().magics_manager.magics['line']") is False
    assert (
        kernel.value("any(type(c).__name__ == 'VirtMagics' for c in get_ipython().configurables)")
        is False
    )
    gone = kernel.execute("%virt status")
    assert "UsageError: Line magic function `%virt` not found." in gone.stderr
    kernel.execute("%reload_ext ipyvirt").ok()
    _watch_again = "URI = 'test:///default'\n" + WATCH_EVENTS
    kernel.execute(_watch_again).ok()
    kernel.execute("dom.suspend(); dom.resume()").ok()
    assert kernel.value("[(e, t) for e, t, _, _ in seen]") == [(3, "MainThread"), (4, "MainThread")]
    assert kernel.value(threads) == ["ipyvirt-io"]


def test_unload_counts_the_widgets_it_closed(kernel: Kernel) -> None:
    kernel.execute("%load_ext ipyvirt\nc = %virt connect\nd = %virt dashboard").ok()
    kernel.execute("%virt connect --name second").ok()
    live = kernel.value("len(__import__('ipyvirt.widgets.base').widgets.base.LIVE)")
    assert live >= 1
    assert kernel.execute("%unload_ext ipyvirt").ok().stdout == (
        f"ipyvirt unloaded: closed {live} widget{'s' if live > 1 else ''} and 2 connections, "
        "stopped 1 thread (ipyvirt-io)\n"
    )


def test_loading_twice_is_harmless(kernel: Kernel) -> None:
    kernel.execute("%load_ext ipyvirt").ok()
    kernel.execute("import ipyvirt; ipyvirt.load_ipython_extension(get_ipython())").ok()
    kernel.execute("%load_ext ipyvirt").ok()
    kernel.execute("import threading").ok()
    assert kernel.value("[t.name for t in threading.enumerate()].count('ipyvirt-io')") == 1


def test_a_raising_subscriber_is_reported_and_later_events_arrive(kernel: Kernel) -> None:
    kernel.execute("%load_ext ipyvirt\nc = %virt connect --rw").ok()
    kernel.execute(
        "got = []\n"
        "def bad(event):\n"
        "    raise RuntimeError('subscriber failed on purpose')\n"
        "c.subscribe(bad, families=['domain'])\n"
        "c.subscribe(got.append, families=['domain'])\n"
        "d = c.conn.lookupByName('test')\n"
        "d.suspend(); d.resume()"
    ).ok()
    out = kernel.execute("print([e.name for e in got], c.hub.errors)").ok()
    assert out.stdout.strip() == "['suspended', 'resumed'] 2"
    logged = "".join(
        m["content"].get("text", "") for m in kernel.between if m["msg_type"] == "stream"
    )
    assert logged.count("ipyvirt: an event subscriber raised on") == 2
    assert logged.count("RuntimeError: subscriber failed on purpose") == 2


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("%virt", "%virt COMMAND ...: explore libvirt hypervisors"),  # usage, not an error
        ("%virt --help", "%virt connect [--rw] [--name NAME] [--auth] [URI]\n"),
        ("%virt help", "%virt disconnect [NAME]\n    close a connection"),
        ("%virt help list", "usage: %virt list [-h] [NAME]"),
        ("%virt connect --help", "usage: %virt connect [-h] [--rw] [--name NAME] [--auth] [URI]"),
        ("%virt events -h", "  --last N    how many of the latest events to show"),
        (
            "%virt frobnicate",
            "UsageError: %virt: unknown command 'frobnicate' (commands: connect, disconnect, "
            "list, events, dashboard, explore, show, fleet, console, loop, status); "
            "see %virt --help",
        ),
        ("%virt list", "UsageError: %virt: no connection is open: %virt connect [URI] first"),
        (
            "%virt connect --bogus",
            "UsageError: %virt connect: unrecognized arguments: --bogus; see %virt connect --help",
        ),
        (
            "%virt --bogus",
            "UsageError: %virt: unrecognized arguments: --bogus; see %virt --help",
        ),
        (
            "%virt connect nosuch:///x",
            "UsageError: cannot connect to nosuch:///x: libvirt has no driver 'nosuch': use one "
            "of test, qemu, lxc, xen, ch, bhyve, ... (e.g. test:///default, qemu:///system, "
            "qemu+ssh://HOST/system)",
        ),
        (
            "%virt connect nonsense://x",
            "UsageError: cannot connect to nonsense://x: libvirt has no driver 'nonsense'",
        ),
        (
            "%virt events --follow --stop",
            "UsageError: %virt events: argument --stop: not allowed with argument --follow; "
            "see %virt events --help",
        ),
        (
            "%virt events --last many",
            "UsageError: %virt events: argument --last: invalid int value: 'many'; "
            "see %virt events --help",
        ),
        ("%virt connect 'test:///default", "UsageError: %virt: No closing quotation; check"),
    ],
)
def test_magic_misuse_is_one_line(kernel: Kernel, line: str, says: str) -> None:
    kernel.execute("%load_ext ipyvirt").ok()
    reply = kernel.execute(line)
    if not says.startswith("UsageError"):
        assert says in reply.ok().stdout and not reply.stderr, reply
        return
    assert (reply.status, reply.error) == ("error", None)  # failed, with no traceback
    assert reply.stderr.startswith(says), reply.stderr
    assert reply.stderr.count("\n") == 1, reply.stderr  # one line, no traceback


def test_a_missing_daemon_is_named_with_how_to_start_it(kernel: Kernel, tmp_path: Any) -> None:
    socket = tmp_path / "virtqemud-sock"
    kernel.execute("%load_ext ipyvirt").ok()
    assert _usage_error(kernel.execute(f"%virt connect qemu+unix:///system?socket={socket}")) == (
        f"cannot connect to qemu+unix:///system?socket={socket}: no libvirt daemon (virtqemud) "
        f"runs here: {socket}: its socket is missing; start it with `virtqemud --daemon` as "
        "yourself"
    )


def _display_id(message: dict[str, Any]) -> str:
    return str(message["content"]["transient"]["display_id"])


def _displays(messages: list[dict[str, Any]], kind: str) -> list[tuple[str, str]]:
    return [
        (_display_id(m), m["content"]["data"]["text/plain"])
        for m in messages
        if m["msg_type"] == kind
    ]


def test_following_events_again_replaces_the_live_table(kernel: Kernel) -> None:
    kernel.execute("%load_ext ipyvirt\nc = %virt connect --rw").ok()
    [(first, _)] = _displays(kernel.execute("%virt events --follow").ok().messages, "display_data")
    again = kernel.execute("%virt events --follow").ok()
    assert again.stdout == (
        "%virt events: this table replaces the earlier live one on test:///default\n"
    )
    [(stopped, text)] = _displays(again.messages, "update_display_data")
    assert stopped == first
    assert text.endswith("no longer live: a later %virt events --follow replaced it")
    [(second, _)] = _displays(again.messages, "display_data")
    kernel.execute("c.domain('test').suspend()\nc.domain('test').resume()").ok()
    after = kernel.execute("pass").ok()  # refreshes waiting run before a cell at the latest
    updates = _displays(kernel.between + after.messages, "update_display_data")
    assert updates and {d for d, _ in updates} == {second}, updates
    assert "resumed" in updates[-1][1]
    stop = kernel.execute("%virt events --stop").ok()
    [(ended, text)] = _displays(stop.messages, "update_display_data")
    assert ended == second and text.endswith("stopped by %virt events --stop")
    assert kernel.execute("%virt events --stop").ok().stdout == (
        "%virt events: no live table on test:///default to stop\n"
    )


def _usage_error(reply: Reply) -> str:
    assert reply.stderr.startswith("UsageError: ") and reply.stderr.count("\n") == 1, reply
    return reply.stderr[len("UsageError: ") : -1]


def test_magic_errors_name_what_failed(kernel: Kernel) -> None:
    kernel.execute("%load_ext ipyvirt\n%virt connect --name a").ok()
    assert _usage_error(kernel.execute("%virt connect --name a")) == (
        "%virt connect: a connection named 'a' is open: %virt disconnect a first, "
        "or give another --name"
    )
    assert (
        _usage_error(kernel.execute("%virt list b")) == "%virt: no connection named 'b' (open: a)"
    )
    kernel.execute("%virt connect --rw --name rw").ok()
    refused = kernel.execute("c = %virt connect --name ro\nc.conn.lookupByName('test').suspend()")
    assert refused.error is not None and "read only" in refused.error[1]


def test_config_sets_the_default_uri(kernel: Kernel) -> None:
    kernel.execute("%load_ext ipyvirt\n%config VirtMagics.default_uri = 'test:///default'").ok()
    out = kernel.execute("%virt connect --name x").ok()
    assert out.result == "<ipyvirt.Connection 'x' test:///default read-only open>"


def test_another_event_loop_already_registered_says_so(kernel: Kernel) -> None:
    kernel.execute("import libvirtaio; libvirtaio.virEventRegisterAsyncIOImpl()").ok()
    message = _usage_error(kernel.execute("%load_ext ipyvirt"))
    assert message.startswith("ipyvirt: libvirt refused a second event loop implementation")
    assert "Event loop is already registered" in message and "restart" in message
    assert kernel.value("'virt' in get_ipython().magics_manager.magics['line']") is False


@pytest.mark.daemon
def test_a_connection_opened_before_loading_is_named(kernel: Kernel, libvirtd: Libvirtd) -> None:
    kernel.execute(f"import libvirt; early = libvirt.open({libvirtd.test_uri!r})").ok()
    out = kernel.execute("%load_ext ipyvirt").ok()
    assert out.stdout == (
        f"ipyvirt: the connection to {libvirtd.test_uri} was opened before %load_ext ipyvirt, "
        "so libvirt gave it no socket watch (no events, no keepalive): close and reopen it.\n"
    )


# The control: ipyvirt's impl on the kernel's loop alone, fd watches included, as libvirtaio
# or any single-loop integration does it.
SINGLE_LOOP = """
import asyncio, threading, time, libvirt, ipyvirt
loop = asyncio.get_running_loop()
ipyvirt.AsyncioEventImpl(loop, io_loop=loop).register()  # one-loop mode
c = libvirt.open(URI)
"""


@pytest.mark.daemon
def test_a_45_second_blocking_cell_keeps_the_daemon_connection(
    kernel: Kernel, libvirtd: Libvirtd
) -> None:
    """The daemon pings every 5 s and gives up after 5 unanswered (its defaults): ipyvirt's io
    thread answers while the main loop sleeps, and the events wait for the cell to end. A
    control kernel, its fd watches on the sleeping loop, loses its connection meanwhile."""
    _watch(kernel, libvirtd.test_uri)
    control = Kernel()
    try:
        control.execute(f"URI = {libvirtd.test_uri!r}\n" + SINGLE_LOOP).ok()
        other = subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(
                    f"""
                    import libvirt, time
                    dom = libvirt.open({libvirtd.test_uri!r}).lookupByName("test")
                    time.sleep(3)
                    for _ in range(5):
                        dom.suspend(); time.sleep(1)
                        dom.resume(); time.sleep(1)
                    """
                ),
            ]
        )
        sleeps = [(k, k.submit("time.sleep(45)")) for k in (kernel, control)]  # side by side
        for k, msg_id in sleeps:
            k.collect(msg_id, timeout=120).ok()
        assert other.wait(30) == 0
        assert kernel.value("c.getVersion() > 0")
        events = kernel.value("[(e, t, c) for e, t, c, _ in seen]")
        assert [e for e, _, _ in events] == [3, 4] * 5
        assert {(t, c) for _, t, c in events} == {("MainThread", False)}
        dropped = control.execute(
            "try:\n    c.getVersion()\nexcept libvirt.libvirtError as err:\n    print(err)"
        ).ok()
        assert dropped.stdout.strip(), "the control kept its connection: the test proves nothing"
    finally:
        control.shutdown()


def test_a_raw_fd_watch_shows_where_it_runs(kernel: Kernel) -> None:
    kernel.execute(
        "%load_ext ipyvirt\n"
        "import libvirt, socket, threading\n"
        "a, b = socket.socketpair()\n"
        "ran = []\n"
        "w = libvirt.virEventAddHandle(a.fileno(), libvirt.VIR_EVENT_HANDLE_READABLE,\n"
        "    lambda *args: (ran.append(threading.current_thread().name), a.recv(1)), None)\n"
        "b.send(b'x')"
    ).ok()
    kernel.drain(0.5)
    assert kernel.value("ran") == ["ipyvirt-io"]
    table = kernel.execute("%virt loop").ok().result
    row = next(
        line.split() for line in table.splitlines() if line.startswith(str(kernel.value("w")))
    )
    assert row[2:] == ["READABLE", "1", "io", "ipyvirt-io"], table


def test_events_follow_updates_the_output_between_cells(kernel: Kernel) -> None:
    kernel.execute("%load_ext ipyvirt\nc = %virt connect --rw").ok()
    follow = kernel.execute("%virt events --follow --last 2").ok()
    display_id = follow.messages[-2]["content"]["transient"]["display_id"]
    kernel.execute(
        "import threading\n"
        "d = c.conn.lookupByName('test')\n"
        "threading.Timer(0.2, lambda: (d.suspend(), d.resume())).start()"
    ).ok()

    def updates() -> list[dict[str, Any]]:
        return [
            m
            for m in kernel.between
            if m["msg_type"] == "update_display_data"
            and m["content"]["transient"]["display_id"] == display_id
        ]

    kernel.drain(1.5)
    assert updates(), "no update arrived while no cell ran"
    last = updates()[-1]["content"]["data"]["text/plain"]
    assert [line.split()[3:] for line in last.splitlines()[3:5]] == [
        ["suspended", "paused"],
        ["resumed", "unpaused"],
    ], last
    kernel.execute("%virt events --stop").ok()
    before = len(updates())
    kernel.execute("d.suspend(); d.resume()").ok()
    kernel.drain(0.5)
    assert len(updates()) == before, "still updated after --stop"


def test_loaded_from_config_finishes_in_the_first_cell() -> None:
    """c.InteractiveShellApp.extensions loads ipyvirt before the kernel's loop runs."""
    kernel = Kernel("--InteractiveShellApp.extensions=ipyvirt")
    try:
        out = kernel.execute(
            "import asyncio, ipyvirt\n"
            "rt = ipyvirt.runtime.current()\n"
            "print(rt.main_loop is asyncio.get_running_loop(), rt.main_thread_name)"
        ).ok()
        assert out.stdout == "True MainThread\n"
        kernel.execute(f"URI = 'test:///default'\n{WATCH_EVENTS}\ndom.suspend(); dom.resume()").ok()
        assert kernel.value("[(e, t) for e, t, _, _ in seen]") == [
            (3, "MainThread"),
            (4, "MainThread"),
        ]
    finally:
        kernel.shutdown()


def test_a_cell_the_kernel_skips_is_not_reported_ok(kernel: Kernel) -> None:
    """The harness reads each cell's execute_reply: with stop_on_error (what JupyterLab
    sends), a cell queued behind a failing one is aborted, and ok() says it did not run."""
    failing = kernel.submit("raise ValueError('stop here')")
    behind = kernel._send("ran = True")  # queued while the first one runs
    assert kernel.collect(failing).status == "error"
    skipped = kernel.collect(behind)
    assert (skipped.status, skipped.error) == ("aborted", None)
    with pytest.raises(AssertionError, match="did not run: its execute_reply says 'aborted'"):
        skipped.ok()
    assert kernel.value("'ran' in globals()") is False
