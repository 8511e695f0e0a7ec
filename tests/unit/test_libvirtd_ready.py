"""Libvirtd.start returns once the daemon listens, not once its socket file exists.

libvirtd binds its socket (the file appears) before it listens on it, after its drivers
start: a client that connects in between is refused ("Connection refused"), which one
daemon start in about fifteen did on a busy machine. The readiness check is shown here on a
socket of our own that is bound first and listens later, as the daemon's is.
"""

from __future__ import annotations

import socket
from pathlib import Path

from ipyvirt.testing.libvirtd import _accepts


def test_a_socket_is_ready_once_it_listens_not_once_it_exists(tmp_path: Path) -> None:
    path = tmp_path / "libvirt-sock"
    assert not _accepts(path)  # no file yet
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        assert path.exists()
        assert not _accepts(path)  # bound, not listening: a client is refused
        server.listen()
        assert _accepts(path)
