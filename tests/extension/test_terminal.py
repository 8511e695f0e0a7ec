"""%load_ext ipyvirt in terminal IPython (the venv's), loaded in a cell with a top-level await.

IPython runs its asyncio loop during such cells only: ipyvirt must not bind to it, but run a
loop thread of its own (``ipyvirt-main``) that delivers events between cells and during code
that blocks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

IMPORTS = "import asyncio, json, threading, time, ipyvirt"
# one cell per line when typed into a terminal (a compound statement ends at a blank line)
AFTER_LOADING = [
    "got = []; conn = ipyvirt.Connection(uri='test:///default', readonly=False)",
    "conn.subscribe(lambda e: got.append((e.name, threading.current_thread().name)), "
    "families=['domain'], kinds=['lifecycle']); conn.conn.lookupByName('test').suspend()",
    # no await from here on: only a loop that runs by itself can deliver the event
    "deadline = time.monotonic() + 30",
    "while not got and time.monotonic() < deadline: time.sleep(0.01)\n",
    "rt = ipyvirt.runtime.current(); print('RESULT', json.dumps("
    "[got, rt.main_thread_name, rt.main_loop is loading_loop]))",
]
# the event, on ipyvirt's loop thread, which is not the loop the loading cell ran in
DELIVERED = [[["suspended", "ipyvirt-main"]], "ipyvirt-main", False]


def _ipython(tmp_path: Path, *arguments: str, stdin: str = "") -> list[object]:
    """Run the venv's terminal IPython (a profile dir of its own); what RESULT printed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}  # IPython runs it
    env["IPYTHONDIR"] = str(tmp_path / "ipython")
    out = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--simple-prompt", *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    lines = [line for line in out.stdout.splitlines() if "RESULT " in line]
    assert out.returncode == 0 and len(lines) == 1, f"{out.stdout}\n{out.stderr}"
    result: list[object] = json.loads(lines[0].partition("RESULT ")[2])
    return result


def test_cells_typed_into_the_terminal_get_events_without_awaiting(tmp_path: Path) -> None:
    loading = (
        'get_ipython().run_line_magic("load_ext", "ipyvirt"); await asyncio.sleep(0); '
        "loading_loop = asyncio.get_running_loop()"
    )
    cells = [IMPORTS, loading, *AFTER_LOADING]
    assert _ipython(tmp_path, stdin="\n".join(cells) + "\n") == DELIVERED


def test_an_ipy_script_with_an_await_gets_events_without_awaiting(tmp_path: Path) -> None:
    """IPython runs a .ipy file as one cell: with an await anywhere, all of it runs in
    IPython's loop, which the script's blocking code holds up."""
    loading = [
        "%load_ext ipyvirt",
        "await asyncio.sleep(0)",
        "loading_loop = asyncio.get_running_loop()",
    ]
    script = tmp_path / "script.ipy"
    script.write_text("\n".join([IMPORTS, *loading, *AFTER_LOADING]) + "\n")
    assert _ipython(tmp_path, str(script)) == DELIVERED
