"""Fixtures for tests against a real QEMU hypervisor: the tests' own root libvirtd.

Its QEMU driver is machine-wide (one per machine, state under /run/libvirt/qemu), so the
session shares one daemon; a test that stops or kills it gets it started again after.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ipyvirt.testing.libvirtd import Libvirtd

# where the QEMU driver writes each guest's stdio and start/stop lines (stdio_handler = "file")
QEMU_LOG_DIR = Path("/var/log/libvirt/qemu")


@pytest.fixture(scope="session")
def qemu_daemon(qemu_host: None, libvirtd_qemu: Libvirtd) -> Libvirtd:
    """A libvirtd serving qemu+unix:// and test+unix:// (in CI, on a host prepared for it):
    the fixture ipyvirt ships, ``libvirtd_qemu``."""
    return libvirtd_qemu


@pytest.fixture
def stoppable_qemu_daemon(qemu_daemon: Libvirtd) -> Iterator[Libvirtd]:
    """The session's QEMU daemon, for a test that stops or kills it: it runs again after."""
    yield qemu_daemon
    if not qemu_daemon.running():
        qemu_daemon.stop()  # the guests a kill() left behind
        qemu_daemon.start()


@pytest.fixture
def guest_name() -> Iterator[Callable[[], str]]:
    """Makes unique guest names; their logs in /var/log/libvirt/qemu go after the test."""
    names: list[str] = []

    def new() -> str:
        names.append(f"ipyvirt-test-{uuid.uuid4().hex[:8]}")
        return names[-1]

    yield new
    for name in names:
        (QEMU_LOG_DIR / f"{name}.log").unlink(missing_ok=True)
