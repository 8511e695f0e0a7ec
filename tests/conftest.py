"""Fixtures shared by every test: a real libvirtd, and ipyvirt registered with libvirt.

libvirt accepts one event loop implementation per process and this test process registers
ipyvirt's, once; a test that needs another registration runs a subprocess or a kernel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import libvirt
import pytest

import ipyvirt
from guest import GuestImage, QemuGuest, build_guest, defined_guest
from ipyvirt.testing.libvirtd import Libvirtd

import host
from hammering import MainLoop
from inproc import Run

# the session's libvirtd: the fixture ipyvirt ships for other projects' tests
pytest_plugins = ["ipyvirt.testing.fixtures"]


@pytest.fixture(scope="session")
def qemu_host() -> None:
    """This machine ready for QEMU guests, if this run may prepare it (see tests/host.py)."""
    host.prepare("qemu")


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    """The test guest's kernel and initramfs (tests/guest.py): fetched and built once, cached."""
    return build_guest()


@pytest.fixture
def qemu_guest(
    qemu_host: None, libvirtd_qemu: Libvirtd, guest_image: GuestImage
) -> Iterator[QemuGuest]:
    """A Linux guest running on the QEMU test daemon, its shell on a serial console and a VGA
    screen; undefined after the test."""
    yield from defined_guest(libvirtd_qemu, guest_image)


@pytest.fixture(scope="session")
def sasl_host() -> None:
    """saslpasswd2 and the SCRAM plugin, if this run may install them (see tests/host.py)."""
    host.prepare("sasl")


@pytest.fixture(scope="session")
def ssh_host() -> None:
    """sshd, ssh and nc, and /run/sshd, if this run may prepare them (see tests/host.py)."""
    host.prepare("ssh")


@pytest.fixture(scope="session")
def tls_host() -> None:
    """certtool, if this run may install it (see tests/host.py)."""
    host.prepare("tls")


class Registered:
    """The process's registered AsyncioEventImpl, moved to a fresh loop for each test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.impl = ipyvirt.AsyncioEventImpl(self.loop).register()

    def fresh_loop(self) -> asyncio.AbstractEventLoop:
        old, self.loop = self.loop, asyncio.new_event_loop()
        self.impl.bind(self.loop)
        old.close()
        return self.loop


@pytest.fixture(scope="session")
def registered() -> Registered:
    return Registered()


@pytest.fixture
def libvirt_loop(registered: Registered) -> asyncio.AbstractEventLoop:
    """A new loop that the registered implementation serves for this test."""
    return registered.fresh_loop()


@pytest.fixture
def run(libvirt_loop: asyncio.AbstractEventLoop) -> Iterator[Run]:
    """ipyvirt's runtime started in this process on a fresh loop; runs a coroutine there
    (stopped afterwards)."""
    libvirt.registerErrorHandler(lambda *a: None, None)
    ipyvirt.start(libvirt_loop)
    yield libvirt_loop.run_until_complete
    ipyvirt.stop()


@pytest.fixture
def main() -> Iterator[MainLoop]:
    """An asyncio loop in a thread of its own, as a kernel's main loop (tests/stress)."""
    m = MainLoop()
    yield m
    m.stop()
