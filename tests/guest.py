"""The test guest (``ipyvirt.testing.guest``) on the tests' QEMU libvirtd: the fixtures in
``tests/conftest.py`` use these."""

from __future__ import annotations

from collections.abc import Iterator

from ipyvirt.testing.guest import (
    BANNER,
    GuestImage,
    GuestUnavailable,
    QemuGuest,
    build_guest,
    guest_xml,
    start_guest,
)
from ipyvirt.testing.libvirtd import Libvirtd

__all__ = [
    "BANNER",
    "GuestImage",
    "GuestUnavailable",
    "QemuGuest",
    "build_guest",
    "defined_guest",
    "guest_xml",
]


def defined_guest(daemon: Libvirtd, image: GuestImage) -> Iterator[QemuGuest]:
    """A persistent guest (so a stopped one can start again), started; gone after."""
    guest = start_guest(daemon.qemu_uri, image)
    try:
        yield guest
    finally:
        guest.remove()
