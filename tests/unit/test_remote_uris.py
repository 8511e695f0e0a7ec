"""ipyvirt opens ``+ssh`` URIs with ``no_tty=1``: ssh fails at once rather than asking on a
terminal no one sees. Other transports, and a URI that sets no_tty itself, are left alone.
"""

from __future__ import annotations

import pytest

from ipyvirt.remote import noninteractive, transport


@pytest.mark.parametrize(
    ("uri", "opened"),
    [
        ("qemu+ssh://root@host/system", "qemu+ssh://root@host/system?no_tty=1"),
        ("test+ssh://h:2222/default?socket=/s", "test+ssh://h:2222/default?socket=/s&no_tty=1"),
        ("qemu+SSH://host/system", "qemu+SSH://host/system?no_tty=1"),
        ("qemu+ssh://host/system?no_tty=0", "qemu+ssh://host/system?no_tty=0"),
        ("qemu+ssh://host/system?no_tty=", "qemu+ssh://host/system?no_tty="),
        ("qemu+libssh://host/system", "qemu+libssh://host/system"),
        ("qemu+tls://host/system", "qemu+tls://host/system"),
        ("qemu:///system", "qemu:///system"),
        ("test:///default", "test:///default"),
        ("myalias", "myalias"),
    ],
)
def test_only_ssh_uris_get_no_tty(uri: str, opened: str) -> None:
    assert noninteractive(uri) == opened
    assert noninteractive(opened) == opened  # once: a reconnection reopens the same URI


def test_transport() -> None:
    assert transport("qemu+ssh://host/system") == "ssh"
    assert transport("test+tls://127.0.0.1:1/default") == "tls"
    assert transport("qemu:///system") == ""
    assert transport("hail") == ""
