"""The tests' remote hypervisors: a libvirtd reached through a real sshd, or with TLS.

Each daemon is the tests' own (``ipyvirt.testing.libvirtd.Libvirtd``); the sshd and the
certificates are made by ``ipyvirt.testing.sshd`` and ``ipyvirt.testing.pki`` in dirs of
their own. Nothing here changes the machine: what it lacks, the fixtures ``ssh_host`` and
``tls_host`` install where this run may (tests/host.py), and otherwise the start fails with
one line naming ``scripts/prepare-host``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from ipyvirt.testing.libvirtd import Libvirtd


@contextmanager
def frozen(daemon: Libvirtd) -> Iterator[None]:
    """The daemon stopped by SIGSTOP (alive, its sockets open, answering nothing)."""
    assert daemon.pid is not None, "the daemon runs"
    os.kill(daemon.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(daemon.pid, signal.SIGCONT)


def one_line(message: str, uri: str) -> str:
    """*message* is ipyvirt's one line about *uri*; what it says after the URI."""
    assert "\n" not in message and "\r" not in message, message
    prefix = f"cannot connect to {uri}: "
    assert message.startswith(prefix), message
    return message[len(prefix) :]
