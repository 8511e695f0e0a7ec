"""Stress: ipyvirt.start() and stop() over and over while other threads cause events.

runtime.start/stop retire and replace the io thread and the main loop (in a script, a loop
thread of ipyvirt's own) while libvirt calls the hooks from the threads that act. The
invariant: every event libvirt queued is delivered exactly once, on whichever main loop
runs when it is dispatched, and every free is paid. One process of its own: libvirt takes
one event loop registration per process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.stress

SCRIPT = textwrap.dedent(
    """
    import json, threading, time
    import libvirt, ipyvirt
    from ipyvirt import runtime

    libvirt.registerErrorHandler(lambda *a: None, None)
    ipyvirt.start()
    conn = libvirt.open("test:///default")
    doms = [conn.lookupByName("test")]
    for i in range(3):  # more domains, so that several threads act at once
        xml = doms[0].XMLDesc().replace("<name>test</name>", f"<name>s{i}</name>")
        xml = "\\n".join(l for l in xml.splitlines() if "<uuid>" not in l)
        doms.append(conn.createXML(xml))
    got = {d.name(): 0 for d in doms}
    where = set()

    def on_event(c, d, event, detail, opaque):
        got[d.name()] += 1
        where.add(threading.current_thread().name)

    conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, on_event, None)
    ROUNDS = 150

    def act(dom):
        for _ in range(ROUNDS):
            dom.suspend()
            dom.resume()

    def cycle():
        for _ in range(40):
            ipyvirt.stop()
            ipyvirt.start()

    threads = [threading.Thread(target=act, args=(d,)) for d in doms]
    threads.append(threading.Thread(target=cycle))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ipyvirt.start()
    want = {d.name(): 2 * ROUNDS for d in doms}
    deadline = time.monotonic() + 10
    while got != want and time.monotonic() < deadline:
        time.sleep(0.01)
    impl = runtime.current().impl
    stats = impl.statistics()
    print(json.dumps({
        "got": got, "want": want, "where": sorted(where),
        "pending_frees": stats.pending_frees,
        "callback_errors": stats.callback_errors,
    }))
    """
)


def test_start_and_stop_while_threads_cause_events() -> None:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["got"] == out["want"], f"events lost or doubled: {out}"
    assert out["where"] == ["ipyvirt-main"]
    assert out["callback_errors"] == 0
    assert out["pending_frees"] == 0
