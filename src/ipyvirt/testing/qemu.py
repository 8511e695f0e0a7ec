"""The machine's privileged QEMU driver, as :class:`~ipyvirt.testing.libvirtd.Libvirtd` sees it.

A privileged QEMU driver has fixed homes (/etc/libvirt/qemu.conf, /run/libvirt/qemu,
/var/lib/libvirt/qemu, /var/cache/libvirt/qemu) and takes a machine-wide lock: one daemon per
machine holds it at a time. This module reads that state (the lock's holder, the guests' pid
files) and ends guests a dead daemon left behind; it changes nothing else.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from xml.sax.saxutils import escape

from ipyvirt.testing.procfs import argv, exited

__all__ = ["QEMU_DRIVER", "QEMU_STATE_DIR", "SECRET_DRIVER", "minimal_domain_xml"]

QEMU_DRIVER = "libvirt_driver_qemu.so"
#: linked beside it where installed: real secrets (usage, events) for QEMU's connections
SECRET_DRIVER = "libvirt_driver_secret.so"
# Where libvirt's QEMU driver keeps its lock and each running guest's pid file and status.
QEMU_STATE_DIR = Path("/run/libvirt/qemu")


def minimal_domain_xml(name: str) -> str:
    """A QEMU guest that starts here in ~0.35 s: TCG (no KVM), 64 MiB, no disk, no display.

    It boots into SeaBIOS, finds nothing to boot and keeps running until destroyed. There is
    no ``<graphics>`` element at all (libvirt rejects ``type='none'``).
    """
    return (
        "<domain type='qemu'>"
        f"<name>{escape(name)}</name>"
        "<memory unit='MiB'>64</memory>"
        "<vcpu>1</vcpu>"
        "<os><type arch='x86_64'>hvm</type></os>"
        "<devices><memballoon model='none'/></devices>"
        "</domain>"
    )


def driver_path(name: str = QEMU_DRIVER) -> Path | None:
    """A loadable driver's shared object, if installed: by default the QEMU driver's
    (package libvirt-daemon-driver-qemu)."""
    found = sorted(glob.glob(f"/usr/lib/*/libvirt/connection-driver/{name}"))
    return Path(found[0]) if found else None


def lock_holder() -> int | None:
    """The daemon that holds the machine's QEMU driver, if one runs."""
    try:
        pid = int((QEMU_STATE_DIR / "driver.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    # a killed daemon leaves the file behind
    return None if exited(pid) else pid


def guest_pids() -> list[int]:
    """The QEMU guests of the machine's privileged QEMU driver (which writes their pid files).

    One libvirtd at a time holds that driver: while ours does, these are its guests.
    """
    pids = []
    for pid_file in QEMU_STATE_DIR.glob("*.pid"):
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        args = argv(pid)
        # driver.pid is the daemon's own; a stale file may name a reused pid
        if args and Path(args[0]).name.startswith("qemu-system"):
            pids.append(pid)
    return sorted(pids)


def kill_guests(pids: Iterable[int], timeout: float = 10.0) -> None:
    """SIGKILL those of *pids* that are still QEMU guests, and wait until they are gone."""
    alive = [pid for pid in pids if pid in guest_pids()]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while not all(exited(pid) for pid in alive) and time.monotonic() < deadline:
        time.sleep(0.02)


def on_one_cpu(command: list[str]) -> list[str]:
    """*command* run on the lowest CPU this process may use (with taskset, if there)."""
    # On some VMs the CPUs answer CPUID differently. The QEMU driver reads CPUID once at start,
    # on whichever CPU it runs, and re-probes QEMU (~8 s) when that differs from the cached
    # probe's: half the starts were slow. One fixed CPU reads the same CPUID every time.
    taskset = shutil.which("taskset")
    if taskset is None:
        return command
    return [taskset, "--cpu-list", str(min(os.sched_getaffinity(0))), *command]


def virsh(uri: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``virsh -q -c URI ARGS...``, its output as text (libvirt-clients, which Libvirtd needs)."""
    command = [shutil.which("virsh") or "virsh", "-q", "-c", uri, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
