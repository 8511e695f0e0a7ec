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
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route

from .conftest import ARTIFACTS
from .lab import _gone
from .test_live_update import act_elsewhere
from libvirtd import Libvirtd

pytestmark = [pytest.mark.browser, pytest.mark.daemon]

APP = Path(sys.executable).parent / "ipyvirt-dashboard"
ROW = '.ipyvirt-row[data-state="{}"]'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


class App:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


@pytest.fixture
def app(libvirtd: Libvirtd) -> Iterator[App]:
    """``ipyvirt-dashboard`` on the tests' libvirtd, in a Jupyter home of its own."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="ipyvirt-app-") as home:
        env = dict(
            os.environ,
            JUPYTER_CONFIG_DIR=f"{home}/config",
            JUPYTER_DATA_DIR=f"{home}/data",
            JUPYTER_RUNTIME_DIR=f"{home}/runtime",
            IPYTHONDIR=f"{home}/ipython",
        )
        log = Path(home) / "app.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(APP), libvirtd.test_uri, "--port", str(port), "--no-browser"],
                env=env,
                cwd=home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its kernel too: stopped with the group below
            )
        app = App(proc, f"http://127.0.0.1:{port}/", log)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, f"ipyvirt-dashboard exited:\n{app.log_tail()}"
                try:  # not a page: each GET of one starts a kernel
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"no answer in 60 s:\n{app.log_tail()}"
                    time.sleep(0.2)
            yield app
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 15)  # Voilà shuts its kernels down on SIGTERM
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait(10)
            # a kernel Voilà left behind is in the same process group
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
            assert _gone(proc.pid)
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / "app.log").write_bytes(log.read_bytes())


def test_the_app_serves_the_live_dashboard_offline_on_localhost(
    libvirtd: Libvirtd, app: App, page: Page
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
    done = subprocess.run(
        [str(APP), *argv, "--no-browser"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ipyvirt-dashboard: ") and says in lines[0], lines[0]
