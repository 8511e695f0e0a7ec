"""Fixtures shared by every test: a real libvirtd, and ipyvirt registered with libvirt.

libvirt accepts one event loop implementation per process and this test process registers
ipyvirt's, once; a test that needs another registration runs a subprocess or a kernel.
"""

from __future__ import annotations

import asyncio

import pytest

import ipyvirt

import host

# the session's libvirtd: the fixture ipyvirt ships for other projects' tests
pytest_plugins = ["ipyvirt.testing.fixtures"]


@pytest.fixture(scope="session")
def qemu_host() -> None:
    """This machine ready for QEMU guests, if this run may prepare it (see tests/host.py)."""
    host.prepare("qemu")


@pytest.fixture(scope="session")
def sasl_host() -> None:
    """saslpasswd2 and the SCRAM plugin, if this run may install them (see tests/host.py)."""
    host.prepare("sasl")


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
