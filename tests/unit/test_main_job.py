"""The README's first command: scripts/lab serves JupyterLab on the first tutorial."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_scripts_lab_serves_the_tutorial(tmp_path: Path) -> None:
    port = _free_port()
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    with open(tmp_path / "lab.log", "wb") as log:
        lab = subprocess.Popen(
            [
                str(ROOT / "scripts" / "lab"),
                f"--port={port}",
                "--no-browser",
                "--ServerApp.token=",
                "--ip=127.0.0.1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert lab.poll() is None, (tmp_path / "lab.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status") as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "scripts/lab did not answer in 90 s"
                time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/api/contents/notebooks/01-getting-started.ipynb"
        with urllib.request.urlopen(url + "?content=0") as r:
            assert json.load(r)["type"] == "notebook"
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(30)
