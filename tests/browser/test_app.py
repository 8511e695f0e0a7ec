"""``ipyvirt-dashboard``: the console script serves the live dashboard through Voilà, on
127.0.0.1 only, offline; the page follows a domain that another process changes.

Every request the page makes that is not for the app's own address is aborted and counted:
a widget that Voilà could only fetch from a CDN would leave the page without it, and the test
says which address it wanted. Screenshots: ``test-artifacts/app-running.png``,
``app-paused.png``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route

from .conftest import ARTIFACTS
from .test_live_update import act_elsewhere
from .voila import Server, free_port, serve
from libvirtd import Libvirtd

pytestmark = [pytest.mark.browser, pytest.mark.daemon]

APP = Path(sys.executable).parent / "ipyvirt-dashboard"
ROW = '.ipyvirt-row[data-state="{}"]'


def _listening(pid: int) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp* writes them) *pid* listens on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append(fields[1])
    return found


@pytest.fixture
def app(libvirtd: Libvirtd) -> Iterator[Server]:
    """``ipyvirt-dashboard`` on the tests' libvirtd."""
    port = free_port()
    command = [str(APP), libvirtd.test_uri, "--port", str(port), "--no-browser"]
    with serve(command, port, keep_log=ARTIFACTS / "app.log") as server:
        yield server


def test_the_app_serves_the_live_dashboard_offline_on_localhost(
    libvirtd: Libvirtd, app: Server, page: Page
) -> None:
    uri = libvirtd.test_uri
    act_elsewhere(uri, "ensure-running")
    addresses = _listening(app.proc.pid)
    assert addresses, "ipyvirt-dashboard listens on nothing"
    # 0100007F is 127.0.0.1 as /proc/net/tcp writes it; any tcp6 socket would be another
    assert all(a.startswith("0100007F:") for a in addresses), f"it listens on {addresses}"

    elsewhere: list[str] = []

    def only_here(route: Route) -> None:
        if route.request.url.startswith(app.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_here)
    page.goto(app.url)
    running = page.locator(ROW.format("running")).filter(has_text="test")
    running.first.wait_for(timeout=90_000)  # Voilà runs the notebook before it shows it
    assert not page.get_by_text("Error displaying widget").count()
    page.screenshot(path=_artifact("app-running"))
    try:
        act_elsewhere(uri, "suspend")
        page.locator(ROW.format("paused")).filter(has_text="test").first.wait_for(timeout=10_000)
        page.screenshot(path=_artifact("app-paused"))
        # read-only without --rw: the actions say so rather than act
        suspend = page.get_by_role("button", name="suspend")
        assert suspend.count() and suspend.first.is_disabled()
        act_elsewhere(uri, "resume")
        running.first.wait_for(timeout=10_000)
    finally:
        act_elsewhere(uri, "ensure-running")
    assert not elsewhere, f"the page asked for addresses outside the app: {elsewhere}"


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / f"{name}.png"


@pytest.mark.parametrize(
    "argv, says",
    [
        (["nosuchdriver:///x"], "cannot open 'nosuchdriver:///x'"),
        (["test+unix:///default?socket=/nonexistent/sock"], "cannot open"),
        (["--port", "0"], "give a port from 1 to 65535"),
    ],
)
def test_a_bad_uri_or_port_is_one_line_that_says_what_to_do(argv: list[str], says: str) -> None:
    _fails_in_one_line([str(APP), *argv, "--no-browser"], says)


def test_a_port_in_use_is_one_line_that_says_what_to_do() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _fails_in_one_line([str(APP), "--port", str(port), "--no-browser"], "give another --port")


def _fails_in_one_line(command: list[str], says: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ipyvirt-dashboard: ") and says in lines[0], lines[0]
