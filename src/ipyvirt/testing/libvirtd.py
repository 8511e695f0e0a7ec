"""A real libvirtd for tests and demos: started by hand with a config in a temporary dir.

As root on Debian (package libvirt-daemon). ``LIBVIRT_DRIVER_DIR`` points at an empty dir so
that only the drivers built into the daemon load (among them the test driver), needing no
system users, D-Bus or /etc changes. Clients reach its test driver as
``test+unix:///default?socket=<dir>/libvirt-sock``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["Libvirtd", "LibvirtdUnavailable"]


class LibvirtdUnavailable(RuntimeError):
    pass


class Libvirtd:
    def __init__(self, keepalive_interval: int = 5, keepalive_count: int = 5) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ipyvirt-libvirtd-"))
        self.socket = self.dir / "libvirt-sock"
        self.log = self.dir / "libvirtd.log"
        self.keepalive = (keepalive_interval, keepalive_count)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def test_uri(self) -> str:
        return f"test+unix:///default?socket={self.socket}"

    def start(self, timeout: float = 20.0) -> Libvirtd:
        binary = shutil.which("libvirtd") or "/usr/sbin/libvirtd"
        if not os.path.exists(binary):
            raise LibvirtdUnavailable(
                "libvirtd is not installed: run scripts/setup (as root it installs "
                "libvirt-daemon), or apt-get install --no-install-recommends libvirt-daemon"
            )
        if os.geteuid() != 0:
            raise LibvirtdUnavailable("the test libvirtd is started as root (it is here in CI)")
        drivers = self.dir / "drivers"
        drivers.mkdir()
        conf = self.dir / "libvirtd.conf"
        conf.write_text(
            f'unix_sock_dir = "{self.dir}"\n'
            'auth_unix_ro = "none"\n'
            'auth_unix_rw = "none"\n'
            f'log_outputs = "3:file:{self.log}"\n'
            f"keepalive_interval = {self.keepalive[0]}\n"
            f"keepalive_count = {self.keepalive[1]}\n"
        )
        env = dict(os.environ, LIBVIRT_DRIVER_DIR=str(drivers))
        with open(self.dir / "stderr", "wb") as stderr:
            self.proc = subprocess.Popen(
                [binary, "--config", str(conf), "--pid-file", str(self.dir / "libvirtd.pid")],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            if self.proc.poll() is not None:
                raise LibvirtdUnavailable(f"libvirtd exited: {self.diagnostics()}")
            if time.monotonic() > deadline:
                self.stop()
                raise LibvirtdUnavailable(f"no socket after {timeout} s: {self.diagnostics()}")
            time.sleep(0.02)
        return self

    def diagnostics(self) -> str:
        parts = []
        for f in (self.dir / "stderr", self.log):
            if f.exists():
                parts += f.read_text(errors="replace").strip().splitlines()[-5:]
        return " | ".join(parts) or "no output"

    def kill(self) -> None:
        """SIGKILL, as a crash would: the socket file stays behind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Libvirtd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
