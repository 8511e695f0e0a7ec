"""libvirt's failures to open a URI, told as what went wrong and what to do (real libvirt)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from ipyvirt.connect_errors import _no_daemon, explain


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    libvirt.registerErrorHandler(lambda ctx, err: None, None)
    yield
    libvirt.registerErrorHandler(None, None)


def _failure(uri: str) -> str:
    with pytest.raises(libvirt.libvirtError) as raised:
        libvirt.openReadOnly(uri)
    return explain(uri, raised.value)


@pytest.mark.parametrize("uri", ["nonsense://x", "nonsense:///x", "Nonsense+ssh://host/system"])
def test_an_unknown_driver_is_named(uri: str) -> None:
    assert _failure(uri) == (
        "libvirt has no driver 'nonsense': use one of test, qemu, lxc, xen, ch, bhyve, ... "
        "(e.g. test:///default, qemu:///system, qemu+ssh://HOST/system)"
    )


def test_a_missing_daemon_socket_says_how_to_start_one(tmp_path: Path) -> None:
    path = tmp_path / "virtqemud-sock"
    assert _failure(f"qemu+unix:///system?socket={path}") == (
        f"no libvirt daemon (virtqemud) runs here: {path}: its socket is missing; "
        "start it with `virtqemud --daemon` as yourself"
    )


def test_a_socket_nobody_listens_on(tmp_path: Path) -> None:
    path = tmp_path / "libvirt-sock"
    with socket.socket(socket.AF_UNIX) as bound:  # bound, not listening: refused
        bound.bind(str(path))
        assert _failure(f"qemu+unix:///system?socket={path}") == (
            f"no libvirt daemon (libvirtd) runs here: {path}: nothing listens on it; "
            "start it with `libvirtd --daemon` as yourself"
        )


def test_system_sockets_are_started_by_systemd() -> None:
    # what libvirt says on a host without a system daemon (this host may have one)
    hint = _no_daemon("/var/run/libvirt/libvirt-sock", "No such file or directory")
    assert hint == (
        "no libvirt daemon (libvirtd) runs here: /var/run/libvirt/libvirt-sock: its socket is "
        "missing; start it with `sudo systemctl start libvirtd` (on hosts with "
        "libvirt's modular daemons: virtqemud for qemu)"
    )


def test_other_failures_keep_libvirts_words() -> None:
    assert _failure("qemu+bogus:///system").endswith(
        "transport in URL not recognised (should be tls|unix|ssh|ext|tcp|libssh2|libssh)"
    )
