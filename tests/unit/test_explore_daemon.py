"""The explorer's models through a real libvirtd over its UNIX socket (the session's test
daemon, serving test:///default): the same reads as in process."""

from __future__ import annotations

from collections.abc import Iterator

import libvirt
import pytest

import ipyvirt
from ipyvirt import explore

from libvirtd import Libvirtd


@pytest.fixture
def remote(libvirtd: Libvirtd) -> Iterator[libvirt.virConnect]:
    libvirt.registerErrorHandler(lambda *a: None, None)
    c = libvirt.open(libvirtd.test_uri)
    yield c
    c.close()


def test_the_test_hypervisor_over_a_socket(remote: libvirt.virConnect) -> None:
    host = explore.host(remote)
    assert host.uri.startswith("test+unix:///default") and host.hypervisor == "TEST"
    assert len(host.numa_cells) == 2
    assert explore.networks(remote)["default"].forward_mode == "nat"
    assert explore.pools(remote)["default-pool"].state == "running"
    assert explore.devices(remote)["computer"].depth == 0
    details = explore.domain_details(remote.lookupByName("test"))
    assert details.state == "running" and details.disks[0].target == "vda"
    assert details.snapshots is not None


def test_an_unknown_network_over_a_socket(remote: libvirt.virConnect) -> None:
    with pytest.raises(ipyvirt.NoSuchNetwork, match=r"^no network named 'nope' on test\+unix"):
        explore.network(remote, "nope")


def test_a_driver_without_secrets_over_a_socket(remote: libvirt.virConnect) -> None:
    # the daemon's test driver has no secret driver either: its "not supported" crosses the
    # wire as such (tests/daemon/test_explore_qemu.py reads real secrets)
    found = explore.secrets(remote)
    assert (found.supported, found.to_records()) == (False, [])
    assert "n/a" in repr(found)
