"""scripts/test stops the libvirtds its own run left running, and no one else's.

A run here is scripts/test itself (setup, ruff, mypy, then pytest) on a one-test file that
starts two daemons, one detached, and leaves both running. Beside it run a demo daemon of
the kind scripts/libvirt-daemon starts (its dir named as the tests' are, so a pkill by
pattern would end it) and this session's own daemon: both must outlive the inner run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipyvirt.testing.libvirtd import PIDS_ENV
from ipyvirt.testing.procfs import exited

from libvirtd import Libvirtd

pytestmark = [pytest.mark.daemon]

REPO = Path(__file__).resolve().parents[2]
LEAVES = """
import os
import shutil
from pathlib import Path

from ipyvirt.testing.libvirtd import Libvirtd

LEFT = []


def test_leaves_two_daemons_running() -> None:
    LEFT.extend([Libvirtd().start(), Libvirtd().start(detach=True)])
    Path(os.environ["LEFT"]).write_text("".join(f"{d.pid} {d.dir}\\n" for d in LEFT))
"""


def cli(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ipyvirt.testing.libvirtd", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
def demo_daemon() -> Iterator[Path]:
    """A detached daemon started outside any test run, as a user's demo daemon is."""
    dir = Path(tempfile.mkdtemp(prefix="ipyvirt-libvirtd-"))
    env = {k: v for k, v in os.environ.items() if k != PIDS_ENV}
    started = cli("start", "--dir", dir, env=env)
    assert started.returncode == 0, started.stderr
    try:
        yield dir
    finally:
        cli("stop", "--dir", dir, env=env)
        shutil.rmtree(dir, ignore_errors=True)


def test_a_run_stops_its_own_daemons_only(
    libvirtd: Libvirtd, demo_daemon: Path, tmp_path: Path
) -> None:
    (tmp_path / "test_leaves.py").write_text(LEAVES)
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")
    left = tmp_path / "left"
    inner = ["-p", "no:cacheprovider", "-c", tmp_path / "pytest.ini", "--rootdir", tmp_path]
    command = [REPO / "scripts" / "test", *inner, tmp_path / "test_leaves.py"]
    done = subprocess.run(
        list(map(str, command)),
        env=dict(os.environ, LEFT=str(left)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    daemons = [line.split(" ", 1) for line in left.read_text().splitlines()]
    assert len(daemons) == 2
    assert [pid for pid, _ in daemons if not exited(int(pid))] == []
    for _, dir in daemons:  # the run stopped them; their temporary dirs are left
        shutil.rmtree(dir, ignore_errors=True)
    assert Libvirtd.attach(demo_daemon) is not None
    assert libvirtd.running()
