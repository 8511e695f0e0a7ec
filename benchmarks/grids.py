"""The domain table's renderer: ipydatagrid and Perspective against a page view of our own.

Issue #11 asks to choose the table's renderer by measurement. Three candidates show the same
synthetic rows of the domain table's shape (name, state, reason, vcpus, memory; names
``d00000``...):

- **page view**: the design the ``table`` branch builds, at its smallest
  (``benchmarks/_pageview.py``): one anywidget model, every row kept in the kernel, only the
  shown page (``page_size`` 50) sent to the browser as JSON rows, a ``<table>`` drawn by a
  40-line ES module;
- **ipydatagrid** ``DataGrid(df)``, rows updated with ``set_cell_value`` (its delta API);
- **Perspective** ``PerspectiveWidget(rows, index="name", plugin="Datagrid")``, rows updated
  with ``update()`` (its streaming API; in its default "server" binding the browser asks the
  kernel for the rows it shows).

Part 1, a real kernel through jupyter_client (no browser), for each size: the comms that
displaying the widget opens, and the bytes of the first render (comm_open and comm_msg: JSON
content plus binary buffers); then the storm: 5 rows shown on the first page change (state
and reason) 20 times a second for 5 s, from an asyncio task on the kernel's loop, and the
messages and bytes the kernel sends meanwhile, with the kernel's CPU.

Part 2, the real browser (JupyterLab and Chromium, as ``tests/browser`` drives them): each
candidate's notebook is run, the frames on the kernel's websocket are counted (what the
browser takes in and sends), the same storm is started from a second jupyter_client on that
kernel, and the page is asked whether a domain's name is text in the page (an ARIA cell and
``get_by_text``, what screen readers and find-in-page use) and whether the grid is a
``<canvas>``. JS: the bytes the page fetched from the candidate's labextension, and the ES
module its comm carried.

Candidates that are not installed are skipped, and the output says so; neither grid is a
dependency of ipyvirt. To run all three::

    .venv/bin/pip install ipydatagrid perspective-python
    .venv/bin/python benchmarks/grids.py [--sizes 1000,10000] [--no-browser] [--markdown]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import queue
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import ROOT, KernelProcess, print_table

HERE = Path(__file__).resolve().parent
SHOWN = "d00003"  # a domain on the first page of every candidate
TICKS, TICK_S = 100, 0.05  # the storm: 20 ticks a second for 5 s, 5 rows each
BUSY_LIMIT = 120.0  # s to wait for a page busy after the storm

SETUP = f"""
import asyncio, sys, time
sys.path.insert(0, {str(HERE)!r})
_states = [("running", "booted"), ("paused", "user"), ("shut off", "shutdown")]
ROWS = [dict(name=f"d{{i:05}}", state=_states[i % 3][0], reason=_states[i % 3][1],
             vcpus=1 + i % 4, memory=1048576 * (1 + i % 8)) for i in range(10_000)]

def changed(i):
    state, reason = ("paused", "user") if i % 2 else ("running", "unpaused")
    return [dict(r, state=state, reason=reason) for r in ROWS[:5]]

STORM_S = 0.0

async def _storm():
    global STORM_S
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range({TICKS}):
        await asyncio.sleep(max(0.0, start + i * {TICK_S} - loop.time()))
        tick(changed(i))
    STORM_S = loop.time() - start  # 4.95 s when every tick kept time
"""

STORM = "_task = asyncio.get_running_loop().create_task(_storm())"


@dataclass(frozen=True)
class Candidate:
    key: str
    label: str
    dist: str  # the distribution whose version is reported
    render: str  # kernel code: ``w`` showing ``ROWS[:N]``, displayed
    tick: str  # kernel code: ``def tick(rows)`` applying the changed rows to ``w``
    #: the labextension dirs its pip install adds (lab/extensions/<dir>/)
    extensions: tuple[str, ...]


CANDIDATES = [
    Candidate(
        "page",
        "page view (table branch design)",
        "anywidget",
        "from _pageview import PageView\nw = PageView(ROWS[:{n}])\ndisplay(w)",
        "def tick(rows):\n    w.update(rows)",
        ("anywidget",),
    ),
    Candidate(
        "patch",
        "page view + row patches (variant)",
        "anywidget",
        "from _pageview import PatchedPageView\nw = PatchedPageView(ROWS[:{n}])\ndisplay(w)",
        "def tick(rows):\n    w.update(rows)",
        ("anywidget",),
    ),
    Candidate(
        "datagrid",
        "ipydatagrid",
        "ipydatagrid",
        "import pandas as pd\nfrom ipydatagrid import DataGrid\n"
        "w = DataGrid(pd.DataFrame(ROWS[:{n}]).set_index('name'), selection_mode='row')\n"
        "display(w)",
        "def tick(rows):\n    for r in rows:\n"
        "        w.set_cell_value('state', r['name'], r['state'])\n"
        "        w.set_cell_value('reason', r['name'], r['reason'])",
        ("ipydatagrid", "bqplot", "bqscales"),
    ),
    Candidate(
        "perspective",
        "Perspective",
        "perspective-python",
        "from perspective.widget import PerspectiveWidget\n"
        "w = PerspectiveWidget(ROWS[:{n}], index='name', plugin='Datagrid')\ndisplay(w)",
        "def tick(rows):\n    w.update(rows)",
        ("@perspective-dev/jupyterlab",),
    ),
]


def installed(c: Candidate) -> str | None:
    """The candidate's version, or None when it is not installed."""
    try:
        return importlib.metadata.version(c.dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def msg_bytes(m: dict[str, Any]) -> int:
    """JSON content plus binary buffers of a jupyter_client message."""
    return len(json.dumps(m["content"])) + sum(len(b) for b in m.get("buffers") or [])


def esm_bytes(opens: list[dict[str, Any]]) -> int:
    """Bytes of the ES modules (anywidget's ``_esm``, ``_css``) the comm_opens carried."""
    return sum(
        len(str(m["content"]["data"]["state"].get(k, ""))) for m in opens for k in ("_esm", "_css")
    )


# ---------------------------------------------------------------- part 1: the kernel alone


def kernel_part(c: Candidate, sizes: list[int]) -> list[dict[str, Any]]:
    out = []
    with KernelProcess() as kp:
        kp.k.execute(SETUP, timeout=120).ok()
        kp.k.execute(c.tick).ok()
        for n in sizes:
            kp.k.drain(0.3)
            reply = kp.k.execute(c.render.format(n=n), timeout=300).ok()
            kp.k.drain(1.0)  # what the widget sends right after its display
            render = [*reply.messages, *kp.k.between]
            kp.k.between.clear()
            opens = [m for m in render if m["msg_type"] == "comm_open"]
            comm = [m for m in render if m["msg_type"] in ("comm_open", "comm_msg")]
            cpu = kp.cpu_seconds()
            start = time.monotonic()
            sent = kp.k.execute(STORM).ok().messages
            kp.k.drain(TICKS * TICK_S)
            while True:  # the task's messages may name this cell as their parent
                reply = kp.k.execute("print(_task.done())").ok()
                sent += reply.messages
                if reply.stdout.strip() == "True":
                    break
                kp.k.drain(0.2)
            kp.k.drain(0.5)
            cpu = kp.cpu_seconds() - cpu
            wall = time.monotonic() - start
            storm = [m for m in (*sent, *kp.k.between) if m["msg_type"] == "comm_msg"]
            kp.k.between.clear()
            kp.k.execute("w.close()").ok()
            out.append(
                {
                    "n": n,
                    "opens": len(opens),
                    "render_bytes": sum(msg_bytes(m) for m in comm),
                    "esm": esm_bytes(opens),
                    "storm_msgs": len(storm),
                    "storm_bytes": sum(msg_bytes(m) for m in storm),
                    "cpu": cpu / wall,
                    "storm_s": float(kp.k.value("STORM_S")),
                }
            )
    return out


# ---------------------------------------------------------------- part 2: the real browser


def ws_message(payload: str | bytes) -> tuple[str, str]:
    """(channel, msg_type) of a kernel websocket frame: JSON text, or JupyterLab 4's binary
    ``v1.kernel.websocket.jupyter.org`` frame (8-byte count, offsets, then channel, header...)."""
    if isinstance(payload, str):
        msg = json.loads(payload)
        return msg.get("channel", ""), msg["header"]["msg_type"]
    (count,) = struct.unpack_from("<Q", payload, 0)
    offsets = struct.unpack_from(f"<{count}Q", payload, 8)
    channel = payload[offsets[0] : offsets[1]].decode()
    header = json.loads(payload[offsets[1] : offsets[2]])
    return channel, header["msg_type"]


@dataclass
class Wire:
    """Comm frames on the page's kernel websockets, by phase."""

    phase: str = "load"
    frames: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    js: dict[str, int] = field(default_factory=dict)  # bytes fetched per lab/extensions/<dir>

    def frame(self, direction: str, payload: str | bytes) -> None:
        _, kind = ws_message(payload)
        if kind.startswith("comm_"):
            size = len(payload.encode() if isinstance(payload, str) else payload)
            self.frames.setdefault((self.phase, direction, kind), []).append(size)

    def count(self, phase: str, direction: str, kinds: tuple[str, ...]) -> tuple[int, int]:
        sizes = [s for k in kinds for s in self.frames.get((phase, direction, k), [])]
        return len(sizes), sum(sizes)


def browser_part(todo: list[Candidate], sizes: list[int]) -> dict[tuple[str, int], Any]:
    sys.path.insert(1, str(ROOT))
    from jupyter_client.blocking.client import BlockingKernelClient
    from playwright.sync_api import sync_playwright
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT
    from tests.browser.lab import Lab

    results: dict[tuple[str, int], Any] = {}
    with Lab() as lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        print(f"Chromium {browser.version}\n")
        for c in todo:
            for n in sizes:
                cells = [SETUP, c.tick, c.render.format(n=n)]
                path = lab.write_notebook(f"{c.key}-{n}.ipynb", cells)
                context = browser.new_context(viewport=VIEWPORT)
                page = context.new_page()
                wire = Wire()

                def response(r: Any, wire: Wire = wire) -> None:
                    if "/lab/extensions/" in r.url:
                        part = r.url.split("/lab/extensions/", 1)[1].split("/static/")[0]
                        wire.js[part] = wire.js.get(part, 0) + int(
                            r.headers.get("content-length", 0)
                        )

                def socket(ws: Any, wire: Wire = wire) -> None:
                    if "/api/kernels/" in ws.url:
                        ws.on("framereceived", lambda p: wire.frame("in", p))
                        ws.on("framesent", lambda p: wire.frame("out", p))

                page.on("response", response)
                page.on("websocket", socket)
                results[(c.key, n)] = browse(lab, page, wire, path, BlockingKernelClient)
                context.close()
                lab.shutdown_kernels()
        browser.close()
        keep = ROOT / "test-artifacts" / "grids-jupyterlab.log"
        keep.write_text(lab.log.read_text(errors="replace"))
    return results


def browse(lab: Any, page: Any, wire: Wire, path: str, client_class: Any) -> dict[str, Any]:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from tests.browser.lab import LabPage

    lp = LabPage(lab, page, ROOT / "test-artifacts", workspace=Path(path).stem)
    lp.open(path, timeout=120)
    wire.phase = "render"
    start = time.monotonic()
    lp.run_all(timeout=300)
    output = lp.panel.locator(".jp-OutputArea-output").last
    shown = output.get_by_text(SHOWN, exact=True).or_(output.locator("canvas")).first
    shown.wait_for(state="visible", timeout=120_000)
    seen = time.monotonic() - start
    quiet(page, wire)
    lp.screenshot(f"grids-{Path(path).stem}")
    text = output.get_by_text(SHOWN, exact=True).count()
    cells = sum(
        output.get_by_role(role, name=SHOWN, exact=True).count()  # type: ignore[arg-type]
        for role in ("cell", "gridcell", "rowheader")
    )
    found = page.evaluate(f"() => window.find({SHOWN!r})")
    canvases = output.locator("canvas").count()
    session = next(s for s in lab.api("GET", "api/sessions") if s["path"] == path)
    kernel_id = session["kernel"]["id"]
    kc = client_class(connection_file=str(lab.home / "runtime" / f"kernel-{kernel_id}.json"))
    kc.load_connection_file()
    kc.start_channels()
    try:
        wire.phase = "storm"
        kc.execute(STORM)
        page.wait_for_timeout(TICKS * TICK_S * 1000)
        # the page's own thread: does it answer at once when the storm ends, or is it busy?
        start = time.monotonic()
        try:
            page.wait_for_function("() => true", timeout=BUSY_LIMIT * 1000)
            busy = time.monotonic() - start
        except PlaywrightTimeout:
            busy = float("inf")
        quiet(page, wire)
        wire.phase = "after"
        sent = kernel_sent(kc)
        if busy != float("inf"):
            lp.screenshot(f"grids-{Path(path).stem}-after")
    finally:
        kc.stop_channels()
        kc.context.destroy(linger=0)
    return {
        "seen": seen,
        "text": text,
        "cells": cells,
        "find": bool(found),
        "canvases": canvases,
        "render_in": wire.count("render", "in", ("comm_open", "comm_msg")),
        "render_out": wire.count("render", "out", ("comm_msg",)),
        "storm_in": wire.count("storm", "in", ("comm_msg",)),
        "storm_out": wire.count("storm", "out", ("comm_msg",)),
        "storm_sent": sent,
        "busy": busy,
        "js": dict(wire.js),
    }


def kernel_sent(kc: Any) -> int:
    """The comm_msgs the kernel sent on iopub since *kc* connected (what the browser should
    have had of them)."""
    count = 0
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=0.5)
        except queue.Empty:
            return count
        count += msg["msg_type"] == "comm_msg"


def quiet(page: Any, wire: Wire, gap: float = 1.0, limit: float = 60.0) -> None:
    """Wait until no comm frame has come for *gap* seconds (at most *limit*)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = sum(len(v) for v in wire.frames.values())
        page.wait_for_timeout(gap * 1000)
        if sum(len(v) for v in wire.frames.values()) == before:
            return


# ---------------------------------------------------------------- the report


def kib(b: float) -> str:
    return f"{b / 1024:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--only", default="", help="candidate keys, comma-separated")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    todo = []
    for c in CANDIDATES:
        if args.only and c.key not in args.only.split(","):
            continue
        if installed(c) is None:
            print(f"skipped {c.label}: {c.dist} is not installed (pip install {c.dist})")
            continue
        todo.append(c)
    dists = dict.fromkeys([*(c.dist for c in todo), "ipywidgets", "ipykernel", "jupyterlab"])
    versions = ", ".join(f"{d} {importlib.metadata.version(d)}" for d in dists)
    print(f"versions: {versions}; Python {platform.python_version()}\n")

    kernel = {c.key: kernel_part(c, sizes) for c in todo}
    base = {r["n"]: r for r in kernel.get("page", [])}
    rows = []
    for c in todo:
        for r in kernel[c.key]:
            b = base.get(r["n"])
            ratio = f"{r['render_bytes'] / b['render_bytes']:.1f}x" if b else "-"
            sratio = (
                f"{r['storm_bytes'] / b['storm_bytes']:.1f}x" if b and b["storm_bytes"] else "-"
            )
            rows.append(
                (
                    c.label,
                    f"{r['n']:,}",
                    r["opens"],
                    kib(r["render_bytes"]),
                    kib(r["esm"]),
                    ratio,
                    r["storm_msgs"],
                    kib(r["storm_bytes"]),
                    sratio,
                    f"{r['storm_s']:.2f}",
                    f"{r['cpu'] * 100:.0f}",
                )
            )
    print("Kernel through jupyter_client, no browser:\n")
    headers = (
        "candidate",
        "rows",
        "comms opened",
        "first render KiB",
        "of it JS/CSS KiB",
        "vs page view",
        "storm msgs",
        "storm KiB",
        "vs page view",
        "storm took s",
        "kernel CPU %",
    )
    print_table(headers, rows, args.markdown, right=1)
    print(
        f"\nStorm: 5 rows on the first page change state and reason {1 / TICK_S:.0f} times a "
        f"second for {TICKS * TICK_S:.0f} s ({TICKS} ticks). Bytes: JSON content + buffers."
    )
    if args.no_browser:
        return

    print("\nIn JupyterLab + Chromium (kernel websocket frames, headers included):\n")
    web = browser_part(todo, sizes)
    rows = []
    for c in todo:
        for n in sizes:
            w = web[(c.key, n)]
            js = sum(w["js"].get(d, 0) for d in c.extensions)
            rows.append(
                (
                    c.label,
                    f"{n:,}",
                    "yes" if w["cells"] else ("text only" if w["text"] else "no"),
                    "yes" if w["find"] else "no",
                    w["canvases"],
                    f"{w['seen']:.1f}",
                    f"{w['render_in'][0]} / {kib(w['render_in'][1])}",
                    f"{w['render_out'][0]}",
                    f"{w['storm_in'][0]} of {w['storm_sent']} / {kib(w['storm_in'][1])}",
                    f"{w['storm_out'][0]}",
                    f"{w['busy']:.1f}" if w["busy"] != float("inf") else f"> {BUSY_LIMIT:.0f}",
                    kib(js),
                )
            )
    headers = (
        "candidate",
        "rows",
        f"{SHOWN} a cell (ARIA)",
        "find-in-page",
        "canvas",
        "shown after s",
        "render in: msgs / KiB",
        "render out: msgs",
        "storm in: msgs of sent / KiB",
        "storm out: msgs",
        "page busy after s",
        "extension JS KiB",
    )
    print_table(headers, rows, args.markdown, right=2)
    print(
        "\n'in': kernel to browser; 'out': browser to kernel (comm frames); 'sent': comm_msgs "
        "the kernel sent meanwhile (a second client's count). 'page busy after': how long the "
        "page took to run a trivial script once the storm ended. 'shown after': Run "
        f"All until {SHOWN} (or a canvas) is visible. 'extension JS': fetched from "
        "lab/extensions/<its dir>/ by the page; an anywidget's module comes in its comm_open "
        "instead (in 'render in')."
    )
    print(
        "fetched per extension dir (KiB): "
        + json.dumps(
            {
                f"{c.key}": {k: round(v / 1024) for k, v in web[(c.key, sizes[0])]["js"].items()}
                for c in todo
            }
        )
    )


if __name__ == "__main__":
    os.environ.setdefault("LIBVIRT_DEFAULT_URI", "test:///default")
    main()
