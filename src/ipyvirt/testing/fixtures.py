"""pytest fixtures with a real libvirtd, for your own tests. Enable them in a conftest.py::

    pytest_plugins = ["ipyvirt.testing.fixtures"]

``libvirtd`` is the session's daemon: its test driver at ``libvirtd.test_uri``.
``libvirtd_qemu`` is one that also serves the machine's QEMU driver at ``.qemu_uri`` (one such
daemon per machine), with libvirt's secret driver where installed. Both run as root and use
only what is installed: when a part is missing, the tests that use them error with one line
that names it (see :mod:`ipyvirt.testing.host`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ipyvirt.testing.libvirtd import Libvirtd

__all__ = ["libvirtd", "libvirtd_qemu"]


@pytest.fixture(scope="session")
def libvirtd() -> Iterator[Libvirtd]:
    """A libvirtd of the session's own (keepalive 5 s x 5, its defaults), stopped after it."""
    yield from _started(Libvirtd())


@pytest.fixture(scope="session")
def libvirtd_qemu() -> Iterator[Libvirtd]:
    """A libvirtd serving qemu+unix:// and test+unix://; its guests are destroyed after."""
    yield from _started(Libvirtd(qemu=True))


def _started(daemon: Libvirtd) -> Iterator[Libvirtd]:
    try:
        yield daemon.start()
    finally:
        daemon.cleanup()  # also when start() failed: its temporary dir goes
