"""``ipyvirt-dashboard``: the live dashboard as a page of its own, served by Voilà.

The page is a notebook of two cells that Voilà runs in a kernel of its own and shows without
its code: ipyvirt loaded, a connection opened, a :class:`~ipyvirt.widgets.Dashboard` on it.
The kernel lives as long as the page, so libvirt's events keep reaching the widgets, exactly
as in JupyterLab. Voilà serves the widgets' code itself (no CDN): the page works offline.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import libvirt

__all__ = ["main", "notebook"]

PROG = "ipyvirt-dashboard"
DEFAULT_PORT = 8866  # Voilà's own default


def notebook(uri: str, rw: bool) -> dict[str, Any]:
    """The notebook Voilà runs (nbformat 4): one cell connects, the last shows the dashboard."""
    connect = (
        "%load_ext ipyvirt\n"
        "import ipyvirt\n"
        "from ipyvirt.widgets import Dashboard\n"
        f"conn = ipyvirt.Connection(uri={uri!r}, readonly={not rw!r})"
    )

    def cell(source: str) -> dict[str, Any]:
        return {
            "cell_type": "code",
            "metadata": {},
            "source": source,
            "outputs": [],
            "execution_count": None,
        }

    return {
        "nbformat": 4,
        "nbformat_minor": 4,  # 5 would want cell ids
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "cells": [cell(connect), cell("Dashboard(conn)")],
    }


# Voilà's "lab" template links Font Awesome from a CDN though its own bundle carries it: a
# page that must work offline gets a template of its own, "lab" with those two links made
# empty (a data: URL), found through JUPYTER_PATH. Voilà's page loads nothing else from outside.
_CDN = "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@^5/css/"
_TEMPLATE = (
    "{%- extends 'voila/templates/lab/index.html.j2' -%}\n"
    "{%- block notebook_css -%}\n"
    f"{{{{ super() | replace('{_CDN}all.min.css', 'data:text/css,')"
    f" | replace('{_CDN}v4-shims.min.css', 'data:text/css,') }}}}\n"
    "{%- endblock notebook_css -%}\n"
)


def _write_template(root: Path) -> str:
    """Write the offline template under *root* (a Jupyter data dir); return its name."""
    folder = root / "voila" / "templates" / "ipyvirt-offline"
    folder.mkdir(parents=True)
    (folder / "conf.json").write_text(json.dumps({"base_template": "lab"}))
    (folder / "index.html.j2").write_text(_TEMPLATE)
    return folder.name


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve ipyvirt's live dashboard (domains, actions, usage, events, the "
        "event loop) as a web page on 127.0.0.1.",
    )
    parser.add_argument(
        "uri",
        nargs="?",
        help="the libvirt URI to watch (default: $LIBVIRT_DEFAULT_URI, else test:///default)",
    )
    parser.add_argument(
        "--rw",
        action="store_true",
        help="open the connection read-write: the action buttons then start, stop, pause... "
        "domains (anyone who can reach the port on this machine can press them)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"the port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="do not open the page in a browser"
    )
    return parser


def _check_uri(uri: str, rw: bool) -> str | None:
    """Why *uri* cannot be opened as asked, in one line; None when it can."""
    # libvirt's default handler prints every error on stderr, the one we report included
    libvirt.registerErrorHandler(lambda *_: None, None)
    try:
        conn = libvirt.open(uri) if rw else libvirt.openReadOnly(uri)
    except libvirt.libvirtError as err:
        message = (err.get_error_message() or str(err)).splitlines()[0]
        return (
            f"{PROG}: cannot open {uri!r}: {message}: check the URI and that its daemon runs "
            f"(`virsh -c '{uri}' list` must work), or try test:///default"
        )
    conn.close()
    return None


def _check_port(port: int) -> str | None:
    """Why *port* cannot be served on 127.0.0.1, in one line; None when it can (for now)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as err:
            return (
                f"{PROG}: cannot listen on 127.0.0.1:{port} ({err.strerror}): give another --port"
            )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    uri = args.uri or os.environ.get("LIBVIRT_DEFAULT_URI") or "test:///default"
    if not 0 < args.port < 65536:
        print(f"{PROG}: --port {args.port}: give a port from 1 to 65535", file=sys.stderr)
        return 2
    try:
        voila = importlib.import_module("voila.app")  # the app extra; untyped
    except ImportError:
        print(f"{PROG}: Voilà is not installed: pip install 'ipyvirt[app]'", file=sys.stderr)
        return 2
    problem = _check_port(args.port) or _check_uri(uri, args.rw)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ipyvirt-dashboard-") as folder:
        # Voilà titles the page after the file
        path = Path(folder) / "ipyvirt dashboard.ipynb"
        path.write_text(json.dumps(notebook(uri, args.rw)))
        template = _write_template(Path(folder))
        os.environ["JUPYTER_PATH"] = os.pathsep.join(
            p for p in (folder, os.environ.get("JUPYTER_PATH")) if p
        )
        voila_argv = [
            str(path),
            "--Voila.ip=127.0.0.1",  # never another interface: the page has no login
            f"--Voila.port={args.port}",
            "--Voila.port_retries=0",  # the port asked for, or a clear error
            f"--Voila.root_dir={folder}",
            f"--template={template}",
        ]
        if args.no_browser:
            voila_argv.append("--no-browser")
        voila.Voila.launch_instance(argv=voila_argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
