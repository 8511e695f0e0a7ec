"""The jittered backoff's bounds, and making room for a fleet's file descriptors."""

from __future__ import annotations

import resource
from collections.abc import Iterator

import pytest

from ipyvirt import backoff
from ipyvirt.fleet_host import host_name
from ipyvirt.limits import FDS_PER_HOST, make_room, open_fds


def test_each_delay_is_drawn_from_the_upper_half_of_the_doubling() -> None:
    for attempt, most in [(0, 0.5), (1, 1.0), (2, 2.0), (6, 30.0), (200, 30.0)]:
        delays = [backoff.delay(attempt) for _ in range(200)]
        assert most / 2 <= min(delays) and max(delays) <= most
        assert len(set(delays)) > 150  # spread, not one instant


@pytest.fixture
def low_soft_limit() -> Iterator[int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = open_fds() + 100
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    yield hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_soft_limit_is_raised_when_a_fleet_needs_it(low_soft_limit: int) -> None:
    assert make_room(1) == ""  # room enough: left alone
    low = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert make_room(100) == ""
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == low_soft_limit > low


def test_past_the_hard_limit_it_says_what_to_do_in_one_line(low_soft_limit: int) -> None:
    hosts = low_soft_limit // FDS_PER_HOST + 1
    note = make_room(hosts)
    assert note.startswith(f"ipyvirt: {hosts:,} more hosts need about ")
    assert "hard limit" in note and "ulimit -Hn" in note and "\n" not in note


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("qemu+ssh://root@web1.example/system", "web1.example"),
        ("test+tls://10.0.0.7/default?pkipath=/pki", "10.0.0.7"),
        ("test+unix:///default?socket=/run/d7/libvirt-sock", "d7"),
        ("qemu:///system", "qemu:///system"),
    ],
)
def test_host_names_from_uris(uri: str, name: str) -> None:
    assert host_name(uri) == name
