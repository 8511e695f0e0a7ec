"""What /proc tells of a process: its command line, and whether it has exited."""

from __future__ import annotations

from pathlib import Path


def argv(pid: int) -> list[str]:
    """The command line of process *pid*; empty if it is gone (or exiting)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")[:-1]


def exited(pid: int) -> bool:
    """True once *pid* is a zombie or gone: it has let go of its locks and sockets.

    Its cmdline is no sign: it reads empty while a process exits, and just after exec.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")
