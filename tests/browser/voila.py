"""A Voilà server for a test: ``ipyvirt-dashboard`` or ``voila`` itself, on 127.0.0.1 and a
free port, in a Jupyter home of its own, stopped with its kernels at the end."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .lab import _gone

__all__ = ["Server", "free_port", "serve"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


@contextmanager
def serve(command: Sequence[str], port: int, keep_log: Path | None = None) -> Iterator[Server]:
    """Run *command* (which must serve on 127.0.0.1:*port*) until the block ends."""
    with tempfile.TemporaryDirectory(prefix="ipyvirt-voila-") as home:
        env = dict(
            os.environ,
            JUPYTER_CONFIG_DIR=f"{home}/config",
            JUPYTER_DATA_DIR=f"{home}/data",
            JUPYTER_RUNTIME_DIR=f"{home}/runtime",
            IPYTHONDIR=f"{home}/ipython",
        )
        log = Path(home) / "server.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                list(command),
                env=env,
                cwd=home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its kernels too: stopped with the group below
            )
        server = Server(proc, f"http://127.0.0.1:{port}/", log)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, f"{command[0]} exited:\n{server.log_tail()}"
                try:  # not a page: each GET of one starts a kernel
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"no answer in 60 s:\n{server.log_tail()}"
                    time.sleep(0.2)
            yield server
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 15)  # Voilà shuts its kernels down on SIGTERM
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait(10)
            try:  # a kernel left behind is in the same process group
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
            assert _gone(proc.pid)
            if keep_log is not None:
                keep_log.parent.mkdir(exist_ok=True)
                keep_log.write_bytes(log.read_bytes())
