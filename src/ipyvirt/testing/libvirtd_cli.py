"""``python -m ipyvirt.testing.libvirtd start|stop``: a detached libvirtd for demos.

``scripts/libvirt-daemon`` wraps it. ``start`` prints the daemon's URIs as ``name=uri`` lines
(or those of the one already running from that dir), ``stop`` destroys its QEMU guests and
ends it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ipyvirt.testing.libvirtd import Libvirtd, LibvirtdUnavailable

CLI_DIR = Path("/tmp/ipyvirt-daemon")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ipyvirt.testing.libvirtd",
        description="A libvirtd for demos, detached: start prints its URIs, stop ends it.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start a daemon and print its URIs, name=uri")
    start.add_argument("--qemu", action="store_true", help="serve qemu+unix:// too (root)")
    stop = commands.add_parser("stop", help="destroy its QEMU guests and stop the daemon")
    for command in (start, stop):
        command.add_argument(
            "--dir", type=Path, default=CLI_DIR, help=f"its config, socket, logs ({CLI_DIR})"
        )
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            _start(args.dir, args.qemu)
        else:
            _stop(args.dir)
    except LibvirtdUnavailable as e:
        print(f"libvirt-daemon: {e}", file=sys.stderr)
        return 1
    return 0


def _start(dir: Path, qemu: bool) -> None:
    daemon = Libvirtd.attach(dir)
    if daemon is not None and qemu and not daemon.qemu:
        raise LibvirtdUnavailable(
            f"the libvirtd running from {daemon.dir} has no QEMU driver: stop it first "
            f"(python -m ipyvirt.testing.libvirtd stop --dir {daemon.dir})"
        )
    if daemon is None:
        daemon = Libvirtd(qemu=qemu, dir=dir).start(detach=True)
    print(f"test={daemon.test_uri}")
    if daemon.qemu:
        print(f"qemu={daemon.qemu_uri}")


def _stop(dir: Path) -> None:
    daemon = Libvirtd.attach(dir)
    if daemon is None:
        print(f"libvirt-daemon: no libvirtd runs from {dir.absolute()}", file=sys.stderr)
        return
    daemon.stop()
