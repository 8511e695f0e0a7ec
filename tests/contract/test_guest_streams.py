"""The kit's ``guest`` clauses (a console stream: data both ways, a peer that closes) on a
real QEMU guest, against ipyvirt, libvirtaio and an implementation broken on purpose.

Each clause runs in a process of its own (``--isolate``), the implementation registered
there; the guest is the tests' (``ipyvirt.testing.guest``), on the QEMU test daemon.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from guest import QemuGuest
from ipyvirt.testing import clauses_for
from ipyvirt.testing.libvirtd import Libvirtd

pytestmark = [pytest.mark.qemu, pytest.mark.daemon]

HERE = Path(__file__).resolve().parent
GUEST_CLAUSES = {f"{c.name}[guest]" for c in clauses_for("guest")}

# libvirtaio fails none of them: over a daemon a stream's callback is a timer, armed on the
# loop's thread when the connection's watch reads the stream's data, which libvirtaio serves
LIBVIRTAIO_FAILS: set[str] = set()


def _kit(
    factory: str, guest: QemuGuest, *args: str, env: dict[str, str] | None = None
) -> dict[str, dict[str, object]]:
    cmd = [sys.executable, "-m", "ipyvirt.testing", factory, "--isolate", "--json"]
    cmd += ["--guest-uri", guest.uri, "--guest", guest.name, *args]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    results = json.loads(run.stdout)
    return {f"{r['clause']}[{r['mode']}]": r for r in results}


def test_ipyvirt_passes_and_libvirtaio_fails_exactly_these(qemu_guest: QemuGuest) -> None:
    # fd watches on an io thread of their own (the default), and everything on one loop
    for factory in ("ipyvirt:AsyncioEventImpl", "ipyvirt.testing.factories:one_loop"):
        ours = _kit(factory, qemu_guest, "--mode", "guest")
        assert ours.keys() == GUEST_CLAUSES
        assert {k: r["detail"] for k, r in ours.items() if not r["passed"]} == {}, factory
    theirs = _kit(
        "ipyvirt.testing.libvirtaio_adapter:LibvirtaioImpl", qemu_guest, "--mode", "guest"
    )
    assert theirs.keys() == GUEST_CLAUSES
    failed = {k: r["detail"] for k, r in theirs.items() if not r["passed"]}
    assert failed.keys() == LIBVIRTAIO_FAILS, failed


def test_an_implementation_that_never_arms_a_timer_fails_every_stream_clause(
    qemu_guest: QemuGuest, libvirtd_qemu: Libvirtd
) -> None:
    """A clause that cannot fail is a defect: with update_timeout doing nothing, no stream
    over a daemon reaches its callback."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), *sys.path]))
    results = _kit(
        "deaf_timers:DeafTimers",
        qemu_guest,
        *("--mode", "guest", "--mode", "daemon", "--daemon-uri", libvirtd_qemu.test_uri),
        *("--clause", "stream-both-ways", "--clause", "stream-peer-closes"),
        *("--clause", "daemon-stream-read"),
        env=env,
    )
    assert results.keys() == GUEST_CLAUSES | {"daemon-stream-read[daemon]"}
    assert {k for k, r in results.items() if r["passed"]} == set()
