"""What the browser benchmarks share: a libvirtd's domains, a Lab page with its kernel
websocket frames counted, the page's clock against ours, a second client on a Lab kernel.

Imported by screen.py and explore.py (``python benchmarks/x.py`` puts this directory first
on ``sys.path``); not part of ipyvirt. Needs Chromium and JupyterLab (``scripts/setup``).
"""

from __future__ import annotations

import contextlib
import json
import re
import struct
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _common import ROOT
from grids import ws_message

# -- the daemon's domains ------------------------------------------------------------------------


def populate(conn: Any, n: int) -> list[str]:
    """Define and start *n* - 1 domains d00000... beside the test driver's own "test" (*n* in
    all), on 4 threads (one connection serves concurrent calls); their names, sorted."""
    import libvirt

    xml = re.sub(r"<uuid>.*</uuid>", "", conn.lookupByName("test").XMLDesc())
    names = [f"d{i:05}" for i in range(n - 1)]

    def make(name: str) -> None:
        dom = conn.defineXML(re.sub(r"<name>.*</name>", f"<name>{name}</name>", xml))
        if dom.state()[0] != libvirt.VIR_DOMAIN_RUNNING:
            dom.create()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(make, names))
    return names


# -- the page's kernel websocket -----------------------------------------------------------------


@dataclass
class Frames:
    """Comm messages the page takes in on its kernel websocket: (bytes, the kernel's send
    time in ms, the traits an update sets, the comm id)."""

    counting: bool = False
    seen: list[tuple[int, float, list[str], str]] = field(default_factory=list)

    def received(self, payload: str | bytes) -> None:
        if not self.counting:
            return
        _, kind = ws_message(payload)
        if kind != "comm_msg":
            return
        msg = decode(payload)
        data = msg["content"].get("data", {})
        state = data.get("state", {})
        size = len(payload.encode() if isinstance(payload, str) else payload)
        comm = msg["content"].get("comm_id", "")
        self.seen.append((size, ms(msg["header"]["date"]), sorted(state), comm))


def decode(payload: str | bytes) -> dict[str, Any]:
    """header and content of a kernel websocket frame (JSON text, or Lab 4's binary frame:
    an 8-byte count, offsets, then channel, header, parent header, metadata, content...)."""
    if isinstance(payload, str):
        return dict(json.loads(payload))
    (count,) = struct.unpack_from("<Q", payload, 0)
    offsets = struct.unpack_from(f"<{count}Q", payload, 8)
    part = [payload[offsets[i] : offsets[i + 1]] for i in range(min(count - 1, 5))]
    return {"header": json.loads(part[1]), "content": json.loads(part[4])}


def ms(date: str) -> float:
    """A message header's ISO date, as ms since the epoch."""
    stamp = datetime.fromisoformat(date.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp() * 1000


#: a jupyter_server_config.py that turns Nagle's algorithm off on the kernel websockets
#: (``lab_and_browser(server_config=NODELAY)``): Tornado leaves it on unless a handler asks
NODELAY = """
from jupyter_server.services.kernels.websocket import KernelWebsocketHandler

_open = KernelWebsocketHandler.open

async def _open_nodelay(self, *args, **kwargs):
    self.set_nodelay(True)
    return await _open(self, *args, **kwargs)

KernelWebsocketHandler.open = _open_nodelay
"""


@contextlib.contextmanager
def lab_and_browser(server_config: str | None = None) -> Iterator[tuple[Any, Any]]:
    """A JupyterLab of our own and Debian's Chromium, both stopped on the way out; with
    *server_config*, the server's ``jupyter_server_config.py``."""
    sys.path.insert(1, str(ROOT))
    from playwright.sync_api import sync_playwright
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.browser.lab import Lab

    lab = Lab()
    if server_config is not None:
        (lab.home / "config").mkdir(parents=True, exist_ok=True)
        (lab.home / "config" / "jupyter_server_config.py").write_text(server_config)
    with lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield lab, browser
        finally:
            browser.close()


@contextlib.contextmanager
def notebook_page(
    lab: Any, browser: Any, path: str, frames: Frames, init_script: str | None = None
) -> Iterator[Any]:
    """The notebook at *path* open in a fresh page (a ``LabPage``), every cell run; its
    kernel websocket's comm messages go to *frames* while ``frames.counting``; *init_script*
    runs in the page before Lab's own. The page closes and the Lab's kernels shut down on
    the way out."""
    from tests.browser.conftest import VIEWPORT
    from tests.browser.lab import LabPage

    context = browser.new_context(viewport=VIEWPORT)
    if init_script is not None:
        context.add_init_script(init_script)
    page = context.new_page()

    def socket(ws: Any) -> None:
        if "/api/kernels/" in ws.url:
            ws.on("framereceived", frames.received)

    page.on("websocket", socket)
    try:
        lp = LabPage(lab, page, ROOT / "test-artifacts", workspace=Path(path).stem)
        lp.open(path, timeout=120)
        lp.run_all(timeout=300)
        yield lp
    finally:
        context.close()
        lab.shutdown_kernels()


def clock_offset(page: Any, clock: Callable[[], float] = time.time) -> tuple[float, float]:
    """(page clock - *clock*, ± ms): the closest of 20 round trips. The page's clock is its
    time origin (the wall clock when it loaded) plus a monotonic clock: against
    ``time.monotonic`` (the same CLOCK_MONOTONIC) it keeps, against ``time.time`` it drifts
    as the wall clock is slewed."""
    best = (0.0, float("inf"))
    for _ in range(20):
        before = clock() * 1000
        theirs = page.evaluate("() => performance.timeOrigin + performance.now()")
        after = clock() * 1000
        if (after - before) / 2 < best[1]:
            best = (theirs - (before + after) / 2, (after - before) / 2)
    return best


@contextlib.contextmanager
def lab_client(lab: Any, path: str) -> Iterator[Any]:
    """A second client (``BlockingKernelClient``) of the kernel of the notebook at *path*,
    on its connection file: it runs code in the same namespace as the page's cells."""
    from jupyter_client.blocking.client import BlockingKernelClient

    session = next(s for s in lab.api("GET", "api/sessions") if s["path"] == path)
    kc = BlockingKernelClient(
        connection_file=str(lab.home / "runtime" / f"kernel-{session['kernel']['id']}.json")
    )
    kc.load_connection_file()
    kc.start_channels()
    try:
        yield kc
    finally:
        kc.stop_channels()
        kc.context.destroy(linger=0)


def client_print(kc: Any, code: str, timeout: float = 60) -> str:
    """What *code* prints, run by the client *kc* (its other output is dropped)."""
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    kc.execute_interactive(code, output_hook=hook, timeout=timeout)
    return "".join(out)


def kernel_print(lab: Any, path: str, code: str) -> str:
    """What *code* prints in the kernel of the notebook at *path*, run by a second client on
    its connection file."""
    with lab_client(lab, path) as kc:
        return client_print(kc, code)


def step_times(
    samples: list[dict[str, Any]],
    trace: list[tuple[float, str]],
    sent: list[float],
    steps: tuple[str, ...],
) -> list[dict[str, float]]:
    """Per sample shown, ms from the libvirt call (``t0``) to each of the kernel's *steps*
    (the first of its kind in *trace*, ``(when, step)`` pairs in time order, after the step
    before), then to the first comm message in *sent* after those, to the DOM change and to
    the next frame."""
    out = []
    for s in samples:
        if s["lost"]:
            continue
        t, at = s["t0"], {}
        for step in steps:
            when = next((w for w, name in trace if name == step and w >= t), None)
            if when is not None:
                at[step] = when - s["t0"]
                t = when
        when = next((w for w in sent if w >= t), None)
        if when is not None:
            at["sent"] = when - s["t0"]
        at["dom"] = s["dom"] - s["t0"]
        if s["frame"] is not None:
            at["frame"] = s["frame"] - s["t0"]
        out.append(at)
    return out
