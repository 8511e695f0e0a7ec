"""What the benchmarks share: child processes, percentiles, tables, a daemon, a kernel.

Imported by the scripts next to it (``python benchmarks/x.py`` puts this directory first on
``sys.path``); not part of ipyvirt.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# the tests' jupyter_client driver (tests/kernel.py)
sys.path.insert(1, str(ROOT / "tests"))


def child(script: str, *args: str, timeout: float = 300) -> Any:
    """Run ``python <script> *args`` in a process of its own; its last stdout line, as JSON."""
    cmd = [sys.executable, script, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def percentile(values: Sequence[float], p: float) -> float:
    """The *p*-th percentile (0-100) of *values*, linear between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], markdown: bool, right: int = 1
) -> None:
    """*rows* under *headers*; columns from index *right* on are right-aligned numbers."""
    cells = [[str(c) for c in row] for row in rows]
    if markdown:
        print("| " + " | ".join(headers) + " |")
        print("|" + "|".join("---" if i < right else "---:" for i in range(len(headers))) + "|")
        for row in cells:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.ljust(w) if i < right else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    print(line(headers))
    for row in cells:
        print(line(row))


@contextlib.contextmanager
def daemon() -> Iterator[Any]:
    """A libvirtd of our own (``ipyvirt.testing.libvirtd``), stopped on the way out."""
    from ipyvirt.testing.libvirtd import Libvirtd

    with Libvirtd() as d:
        yield d


def cpu_seconds(pid: int) -> float:
    """user + system CPU time process *pid* used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory of process *pid* now, MiB (/proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine_jiffies() -> tuple[int, int]:
    """(busy, all) jiffies of every CPU of the machine so far (/proc/stat): two readings
    give the share of the machine that was busy between them."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


def load() -> str:
    """The load average (1, 5, 15 min), as printed beside every figure."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


class KernelProcess:
    """A real ipykernel through the tests' driver, with its pid for /proc readings."""

    def __init__(self) -> None:
        from kernel import Kernel

        class _Kernel(Kernel):
            # tests/kernel.py's, but a kernel that does not answer in time is shut down
            def __init__(self) -> None:
                try:
                    super().__init__()
                except BaseException:
                    if hasattr(self, "kc"):
                        self.kc.stop_channels()
                    if hasattr(self, "km"):
                        self.km.shutdown_kernel(now=True)
                    shutil.rmtree(getattr(self, "_ipc_dir", ""), ignore_errors=True)
                    raise

        self.k = _Kernel()
        pid = self.k.km.provisioner.pid if self.k.km.provisioner else None
        assert pid is not None, "a local kernel has a pid"
        self.pid: int = pid

    def cpu_seconds(self) -> float:
        """user + system CPU time the kernel process used so far."""
        return cpu_seconds(self.pid)

    def rss_mib(self) -> float:
        return rss_mib(self.pid)

    def shutdown(self) -> None:
        self.k.shutdown()

    def __enter__(self) -> KernelProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def comm_bytes(messages: Sequence[dict[str, Any]], kind: str = "comm_msg") -> int:
    """Bytes of the JSON content of *messages* of *kind* (what the frontend must take in)."""
    return sum(len(json.dumps(m["content"])) for m in messages if m["msg_type"] == kind)
