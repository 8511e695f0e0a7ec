"""Every clause of the event loop contract, against ipyvirt's AsyncioEventImpl.

``direct``: the hooks called with Python callables on a fresh implementation per clause
(the default, fd watches on an io thread of its own, and one-loop mode).
``libvirt``: through libvirt's C API to the implementation this process registered.
``daemon``: through a real libvirtd's socket, an fd watch.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from ipyvirt import AsyncioEventImpl
from ipyvirt.testing import Clause, clauses_for, run_clause
from ipyvirt.testing.factories import one_loop

from conftest import Registered
from libvirtd import Libvirtd


def _ids(clauses: list[Clause]) -> list[str]:
    return [c.name for c in clauses]


@pytest.mark.parametrize("clause", clauses_for("direct"), ids=_ids(clauses_for("direct")))
def test_direct(clause: Clause) -> None:
    run_clause(clause, "direct", factory=AsyncioEventImpl)


@pytest.mark.parametrize("clause", clauses_for("direct"), ids=_ids(clauses_for("direct")))
def test_direct_one_loop(clause: Clause) -> None:
    """One-loop mode: fd watches on the same asyncio loop as the timers."""
    run_clause(clause, "direct", factory=one_loop)


@pytest.mark.daemon
def test_through_libvirt_one_loop(libvirtd: Libvirtd) -> None:
    """The libvirt and daemon clauses, with a one-loop implementation registered in a
    process of its own."""
    cmd = [sys.executable, "-m", "ipyvirt.testing", "ipyvirt.testing.factories:one_loop"]
    cmd += ["--json"]
    cmd += ["--mode", "libvirt", "--mode", "daemon", "--daemon-uri", libvirtd.test_uri]
    results = json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout)
    assert len(results) == len(clauses_for("libvirt")) + len(clauses_for("daemon"))
    assert [(r["clause"], r["detail"]) for r in results if not r["passed"]] == []


@pytest.mark.parametrize("clause", clauses_for("libvirt"), ids=_ids(clauses_for("libvirt")))
def test_through_libvirt(clause: Clause, libvirt_loop: asyncio.AbstractEventLoop) -> None:
    run_clause(clause, "libvirt", loop=libvirt_loop)


@pytest.mark.daemon
@pytest.mark.parametrize("clause", clauses_for("daemon"), ids=_ids(clauses_for("daemon")))
def test_through_daemon(
    clause: Clause, libvirt_loop: asyncio.AbstractEventLoop, libvirtd: Libvirtd
) -> None:
    run_clause(clause, "daemon", loop=libvirt_loop, daemon_uri=libvirtd.test_uri)


def test_every_clause_runs_somewhere() -> None:
    from ipyvirt.testing import CLAUSES

    modes = {"direct", "libvirt", "daemon", "guest"}
    assert all(set(c.modes) <= modes and c.modes for c in CLAUSES)
    assert len({c.name for c in CLAUSES}) == len(CLAUSES)


def test_registered_impl_is_ours(registered: Registered) -> None:
    import ipyvirt

    assert ipyvirt.registered_impl() is registered.impl


def test_free_once_catches_a_free_inside_the_hook() -> None:
    """The kit is honest about ``free-once``: it fails an implementation that pays a free
    inside the remove hook, while it passes ours, whose timers' frees are paid on the main
    loop while the io thread's callback that removed them still runs (the clause waits for
    that, so the interleaving happens every run)."""
    from eager_frees import EagerFrees

    from ipyvirt.testing import CLAUSES, ClauseFailed

    (free_once,) = [c for c in CLAUSES if c.name == "free-once"]
    with pytest.raises(ClauseFailed, match="inside a callback or hook"):
        run_clause(free_once, "direct", factory=EagerFrees)
    for _ in range(5):
        run_clause(free_once, "direct", factory=AsyncioEventImpl)
