"""Room for many connections: the process's open-file limit (``ulimit -n``, RLIMIT_NOFILE).

Each host of a fleet holds 2 fds (its socket, and libvirt's per-connection wake-up pipe's;
measured by benchmarks/fleet.py), so the usual soft limit of 1,024 stops a kernel near 500
hosts with "Too many open files". The soft limit may be raised up to the hard one without privilege:
ipyvirt does so when a fleet would need it, and says in one line when even the hard limit is
too low.
"""

from __future__ import annotations

import logging
import os
import resource

__all__ = ["FDS_PER_HOST", "make_room"]

log = logging.getLogger("ipyvirt")

#: file descriptors one host of a fleet holds (benchmarks/fleet.py measures it)
FDS_PER_HOST = 2
#: kept free for everything else (a kernel's zmq sockets, files, other widgets' threads)
_SPARE = 64


def open_fds() -> int:
    """How many file descriptors this process has open now."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # no procfs: assume the worst we know of
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 2


def make_room(hosts: int) -> str:
    """Make room for *hosts* more hosts' file descriptors: raise the soft limit (up to the
    hard one) when the open ones plus theirs would pass it. Returns "" when there is room,
    else one line saying what is missing and what to do."""
    need = open_fds() + hosts * FDS_PER_HOST + _SPARE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or need <= soft:
        return ""
    target = need * 2 if hard == resource.RLIM_INFINITY else hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as err:
        return (
            f"ipyvirt: {hosts:,} more hosts need about {need:,} open files and the limit is "
            f"{soft:,}, which ipyvirt could not raise ({err}): raise `ulimit -n` before "
            "starting Jupyter"
        )
    log.info("ipyvirt: raised the open-file limit from %d to %d", soft, target)
    if need > target:
        return (
            f"ipyvirt: {hosts:,} more hosts need about {need:,} open files, over this "
            f"process's hard limit of {hard:,}: raise it (`ulimit -Hn`, or LimitNOFILE= for "
            "a service) and restart the kernel; hosts past it will fail to connect"
        )
    return ""
