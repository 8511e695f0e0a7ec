"""A real guest's serial console: keystroke echo, keystroke to glyph, and a ``yes`` flood.

One QEMU libvirtd of our own (``Libvirtd(qemu=True)``) runs one TCG guest (``tests/guest.py``:
Debian's cloud kernel and a busybox shell on ``ttyS0``, cached in ``~/.cache/ipyvirt/guest``).

1. **Keystroke echo, kernel side.** A byte typed into the guest's shell, until its echo
   arrives, timed in the process that reads the console. ipyvirt: a real kernel
   (jupyter_client, ``%load_ext ipyvirt``) with ``Console(dom)`` greeted as a view would
   greet it (so its output goes out on iopub as with a page); a cell starts the block and
   returns, and the keystrokes come from the kernel's loop (``call_later``), so the kernel is
   idle between them as a user's is. The echo is stamped where ``Console`` gets it (the
   session's ``on_output``, on the main thread). libvirt's default loop: another process,
   ``virEventRegisterDefaultImpl`` and a thread running ``virEventRunDefaultImpl``, the same
   console stream (non-blocking, ``eventAddCallback``), the keystrokes from a libvirt timer on
   that thread, the echo stamped in the stream callback after ``recv``. A console has one
   client at a time, so the two take turns in blocks (``--blocks`` each, ``--keys`` keystrokes
   a block), alternating, each opening the console afresh (``force``). The keys alternate
   ``x`` and DEL (the line stays empty); ``--gap`` s between an echo and the next key.
2. **Keystroke to glyph** (JupyterLab in Debian's Chromium, ``benchmarks/_browser.py``): the
   notebook shows ``Console(dom)``; Playwright types ``x`` and Backspace into xterm.js, each
   after the previous one showed plus ``--gap`` s. In the page a keydown listener (capture
   phase) stamps the key and a MutationObserver on xterm's rows stamps the first change of
   their text after it (and the start of the next animation frame). Where the time goes: the
   notebook wraps the console's steps (keys in from the page, echo in from the guest, the
   coalesced send to the page, the comm message leaving on ipykernel's IOPub thread) with
   ``time.monotonic()``; in the page, a script run before Lab's stamps each comm message as
   its kernel websocket takes it in, and xterm.js's ``Terminal.write`` is wrapped. The page's
   clock against the kernel's is measured before and after, and their mean subtracted. With
   ``--nodelay-too`` the keystrokes are typed again into a second Lab whose server turns
   Nagle's algorithm off on its kernel websockets (``_browser.NODELAY``), in the same run.
3. **A flood** in the same page: the guest runs ``yes`` for ``--flood`` s. A second client on
   the kernel's connection file runs a trivial cell every 0.1 s and reads the kernel's RSS
   and CPU: with the guest idle, during the flood, after ^C, and during the same flood read by
   another process on libvirt's default loop (the console taken over: the control, which
   costs the machine the same guest and daemon work while this kernel does nothing for it);
   the page counts the console's comm messages on its kernel websocket.

Targets (issue #13): echo p50 <= 1.1x and p99 <= 1.5x libvirt's default loop; key to glyph
p50 <= 30 ms, p99 <= 60 ms; under the flood a trivial cell p99 <= 50 ms, kernel memory flat,
<= 30 comm messages/s to the browser.

Usage: ``python benchmarks/console.py [--blocks 4] [--keys 100] [--gap S] [--samples 100]
[--flood 10] [--no-echo] [--no-browser] [--nodelay-too] [--markdown]``; needs root
(libvirtd), a host prepared for QEMU (``scripts/prepare-host --qemu``) and Chromium
(``scripts/setup``). The machine's QEMU driver is one per machine: when another daemon holds
it, this waits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from _common import (
    KernelProcess,
    cpu_seconds,
    load,
    machine_jiffies,
    percentile,
    print_table,
    rss_mib,
)

ECHO_P50_RATIO, ECHO_P99_RATIO = 1.1, 1.5
GLYPH_P50_MS, GLYPH_P99_MS = 30.0, 60.0
FLOOD_CELL_P99_MS, FLOOD_MSGS_PER_S = 50.0, 30.0
KEY_TIMEOUT_S = 2.0  # an echo not back by then is counted lost
QEMU_WAIT_S = 900.0  # how long to wait for another daemon to let the QEMU driver go
#: the keys typed, in turn: a letter, then DEL, so the shell's line stays empty
KEYS = ("x", "\x7f")
KILL_LINE = "\x15"  # ^U: the line empty again, after a lost echo

# -- the guest ----------------------------------------------------------------------------------


@contextlib.contextmanager
def qemu_guest() -> Iterator[tuple[str, str]]:
    """(URI, domain name) of the test guest, running on a QEMU libvirtd of our own."""
    from guest import build_guest, defined_guest
    from ipyvirt.testing.libvirtd import Libvirtd, LibvirtdUnavailable

    image = build_guest()
    deadline = time.monotonic() + QEMU_WAIT_S
    while True:
        d = Libvirtd(qemu=True)
        try:
            d.start()
            break
        except LibvirtdUnavailable as err:
            d.cleanup()
            if "QEMU driver" not in str(err) or time.monotonic() > deadline:
                raise
            print(f"waiting for the QEMU driver: {err}", file=sys.stderr, flush=True)
            time.sleep(45)
    try:
        with contextlib.contextmanager(defined_guest)(d, image) as g:
            yield g.uri, g.name
    finally:
        d.cleanup()


# -- 1. keystroke echo: ipyvirt in a kernel -----------------------------------------------------

KERNEL_SETUP = """
%load_ext ipyvirt
import asyncio, time, libvirt
from ipyvirt.widgets import Console
from ipyvirt.models import console as _mc
_dom = libvirt.open({uri!r}).lookupByName({name!r})

# the stream callback's entry, stamped (libvirt calls it from the stream's timer, here on the
# main thread): the time to it is the loop's, the rest the console's own reading
_entered = [0.0]
_stream_event = _mc.ConsoleSession._stream_event
def _timed_stream_event(self, *a):
    _entered[0] = time.perf_counter()
    return _stream_event(self, *a)
_mc.ConsoleSession._stream_event = _timed_stream_event

class _Echo:
    # keystrokes from the kernel's loop, one after each echo (+ gap): the kernel idles between
    def __init__(self, con, n, gap):
        self.con, self.n, self.gap = con, n, gap
        self.loop = asyncio.get_running_loop()
        self.times, self.lost, self.i, self.t0 = [], 0, 0, None
        self.to_callback = []
        self.timer = None
        inner = con.session.on_output
        def on_output(chunk):
            if self.t0 is not None:
                self.times.append((time.perf_counter() - self.t0) * 1000)
                self.to_callback.append((_entered[0] - self.t0) * 1000)
                self.t0 = None
                self.timer.cancel()
                self.loop.call_later(self.gap, self.key)
            inner(chunk)
        con.session.on_output = on_output

    def key(self):
        if self.i >= self.n:
            self.con.close()
            print("echo block done", flush=True)
            return
        ch = {keys!r}[self.i % 2]
        self.i += 1
        self.t0 = time.perf_counter()
        self.con.send(ch)
        self.timer = self.loop.call_later({timeout}, self.missed)

    def missed(self):
        self.t0 = None
        self.lost += 1
        self.i += self.i % 2  # the next key is a letter, on a line made empty
        self.con.send({kill!r})
        self.loop.call_later(0.5, self.key)
"""

# a fresh console, greeted as a view greets it; the block starts once the guest is quiet
KERNEL_BLOCK = """
_con = Console(_dom, force=True)
_con.send({kill!r})
_echo = _Echo(_con, {n}, {gap})
print(_con.model_id)
"""


def kernel_block(kp: KernelProcess, n: int, gap: float) -> dict[str, Any]:
    """One block of *n* keystrokes in the kernel; their echo times (ms) and the lost."""
    k = kp.k
    model_id = k.execute(KERNEL_BLOCK.format(kill=KILL_LINE, n=n, gap=gap)).ok().stdout.strip()
    k.send_custom(model_id, {"do": "hello", "xterm": False})
    time.sleep(0.5)  # the ^U's answer and the hello go by
    k.execute("_echo.loop.call_soon(_echo.key)").ok()
    wait_for_stream(k, "echo block done", timeout=n * (gap + KEY_TIMEOUT_S) + 30)
    times, lost, to_callback = k.value("(_echo.times, _echo.lost, _echo.to_callback)")
    return {"times": times, "lost": lost, "to_callback": to_callback}


def wait_for_stream(k: Any, text: str, timeout: float) -> None:
    """Read iopub until a stream message printing *text* (printed between cells)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        k.drain(0.2)
        found = any(
            m["msg_type"] == "stream" and text in m["content"].get("text", "") for m in k.between
        )
        k.between.clear()  # the console's own output messages too: nobody reads them here
        if found:
            return
    raise TimeoutError(f"the kernel did not print {text!r} within {timeout:g} s")


# -- 1. keystroke echo: libvirt's default loop, in a process of its own ------------------------


def default_loop_child(uri: str, name: str) -> None:
    """Serve blocks asked for on stdin ("N GAP"), one JSON line each on stdout."""
    import libvirt

    libvirt.virEventRegisterDefaultImpl()
    conn = libvirt.open(uri)
    dom = conn.lookupByName(name)

    def run() -> None:
        while True:
            libvirt.virEventRunDefaultImpl()

    threading.Thread(target=run, daemon=True, name="default-loop").start()
    for line in sys.stdin:
        n, gap = line.split()
        print(json.dumps(default_block(conn, dom, int(n), float(gap))), flush=True)


def default_block(conn: Any, dom: Any, n: int, gap: float) -> dict[str, Any]:
    """The kernel's block, on libvirt's default loop: keys from a timer, echoes stamped in
    the stream callback, both on the loop's thread."""
    import libvirt

    stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
    dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
    state: dict[str, Any] = {"i": 0, "t0": None, "sent_at": 0.0, "times": [], "lost": 0}
    state["to_callback"] = []
    done = threading.Event()

    def on_stream(st: Any, events: int, _opaque: Any) -> None:
        entered = time.perf_counter()
        while True:
            try:
                data = st.recv(64 * 1024)
            except libvirt.libvirtError:
                return
            if not isinstance(data, bytes) or not data:
                return
            if state["t0"] is not None:
                state["times"].append((time.perf_counter() - state["t0"]) * 1000)
                state["to_callback"].append((entered - state["t0"]) * 1000)
                state["t0"] = None
                libvirt.virEventUpdateTimeout(timer, int(gap * 1000))

    def key(_timer: int, _opaque: Any) -> None:
        if state["t0"] is not None:  # no echo within KEY_TIMEOUT_S
            if time.perf_counter() - state["sent_at"] < KEY_TIMEOUT_S:
                return
            state["t0"] = None
            state["lost"] += 1
            state["i"] += state["i"] % 2
            stream.send(KILL_LINE.encode())
            libvirt.virEventUpdateTimeout(timer, 500)
            return
        if state["i"] >= n:
            libvirt.virEventUpdateTimeout(timer, -1)
            done.set()
            return
        ch = KEYS[state["i"] % 2]
        state["i"] += 1
        state["sent_at"] = state["t0"] = time.perf_counter()
        stream.send(ch.encode())
        # checked again for a lost echo; an echo sets the next key's time
        libvirt.virEventUpdateTimeout(timer, int(KEY_TIMEOUT_S * 1000))

    events = (
        libvirt.VIR_STREAM_EVENT_READABLE
        | libvirt.VIR_STREAM_EVENT_ERROR
        | libvirt.VIR_STREAM_EVENT_HANGUP
    )
    stream.eventAddCallback(events, on_stream, None)
    stream.send(KILL_LINE.encode())
    timer = libvirt.virEventAddTimeout(-1, key, None)
    time.sleep(0.5)  # the ^U's answer goes by
    libvirt.virEventUpdateTimeout(timer, 0)
    done.wait()
    libvirt.virEventRemoveTimeout(timer)
    stream.eventRemoveCallback()
    with contextlib.suppress(libvirt.libvirtError):
        stream.abort()
    return {"times": state["times"], "lost": state["lost"], "to_callback": state["to_callback"]}


def flood_child(uri: str, name: str, seconds: float) -> None:
    """The flood's control: the console taken over (force) and read on libvirt's default
    loop in this process, the guest flooding it for *seconds*; the bytes read, as JSON."""
    import libvirt

    libvirt.virEventRegisterDefaultImpl()
    conn = libvirt.open(uri)
    stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
    conn.lookupByName(name).openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
    got = [0]

    def on_stream(st: Any, events: int, _opaque: Any) -> None:
        while True:
            try:
                data = st.recv(64 * 1024)
            except libvirt.libvirtError:
                return
            if not isinstance(data, bytes) or not data:
                return
            got[0] += len(data)

    def run() -> None:
        while True:
            libvirt.virEventRunDefaultImpl()

    stream.eventAddCallback(libvirt.VIR_STREAM_EVENT_READABLE, on_stream, None)
    threading.Thread(target=run, daemon=True, name="default-loop").start()
    stream.send(f"{KILL_LINE}yes ipyvirt-flood\n".encode())
    time.sleep(seconds)
    stream.send(b"\x03")
    time.sleep(2)
    print(json.dumps({"bytes": got[0]}), flush=True)


def echo(uri: str, name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Blocks of keystrokes, ipyvirt's kernel and the default loop's process in turn."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--default-loop-child", uri, name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    out: dict[str, Any] = {"ipyvirt": [], "default": [], "lost": {"ipyvirt": 0, "default": 0}}
    out["to_callback"] = {"ipyvirt": [], "default": []}
    load0, busy0 = load(), machine_jiffies()
    try:
        with KernelProcess() as kp:
            setup = KERNEL_SETUP.format(
                uri=uri, name=name, keys=KEYS, timeout=KEY_TIMEOUT_S, kill=KILL_LINE
            )
            kp.k.execute(setup).ok()
            wait_for_prompt(kp)
            for b in range(args.blocks):
                print(f"echo block {b + 1}/{args.blocks}", file=sys.stderr, flush=True)
                order = ("ipyvirt", "default") if b % 2 == 0 else ("default", "ipyvirt")
                for side in order:
                    if side == "ipyvirt":
                        got = kernel_block(kp, args.keys, args.gap)
                    else:
                        child.stdin.write(f"{args.keys} {args.gap}\n")
                        child.stdin.flush()
                        got = json.loads(child.stdout.readline())
                    out[side] += got["times"]
                    out["to_callback"][side] += got["to_callback"]
                    out["lost"][side] += got["lost"]
    finally:
        child.kill()
        child.wait()
    busy1 = machine_jiffies()
    out["load"] = (load0, load())
    out["busy"] = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    return out


def wait_for_prompt(kp: KernelProcess) -> None:
    """Until the guest's shell answers (it may still be booting)."""
    kp.k.execute(
        "_con = Console(_dom, force=True)\n"
        "for _ in range(120):\n"
        "    _con.send('\\n')\n"
        "    try:\n"
        "        await _con.expect('# ', timeout=1)\n"
        "        break\n"
        "    except TimeoutError:\n"
        "        pass\n"
        "else:\n"
        "    raise TimeoutError('the guest shell did not answer in 120 s')\n"
        "_con.close()",
        timeout=200,
    ).ok()


# -- 2 and 3. the browser -----------------------------------------------------------------------

NOTEBOOK_SETUP = """
import asyncio, json, time, libvirt
from ipyvirt.widgets import Console
dom = libvirt.open({uri!r}).lookupByName({name!r})
con = Console(dom, force=True)
for _ in range(120):
    con.send('\\n')
    try:
        await con.expect('# ', timeout=1)
        break
    except TimeoutError:
        pass
# the console's steps, with CLOCK_MONOTONIC (ms; the page's clock runs with it, the wall
# clock drifts from both): keys in from the page, the guest's output in, the coalesced send
_trace = []
def _wrap(obj, attr, step, when=lambda *a: True):
    inner = getattr(obj, attr)
    def timed(*a, **k):
        if when(*a, **k):
            _trace.append((step, time.monotonic() * 1000))
        return inner(*a, **k)
    setattr(obj, attr, timed)
_wrap(con, "_handle", "keys in kernel", lambda do, content: do == "keys")
_wrap(con.session, "on_output", "echo in kernel")
# the coalescer holds the bound _flush it was made with
_wrap(con._coalescer, "flush", "send to page", lambda: bool(con._pending))
# and the comm messages leaving on the kernel's IOPub thread (ipykernel's actual zmq send)
_iopub = get_ipython().kernel.iopub_thread
_wrap(
    _iopub,
    "_really_send",
    "iopub sends",
    lambda msg, *a, **k: any(isinstance(p, bytes) and b'"comm_msg"' in p for p in msg[:8]),
)
con
"""

# in the page: each keydown (capture phase, before xterm.js takes it) and each change of the
# terminal rows' text, with the page's clock, and the animation frame after the change
OBSERVE = """() => {
  const rows = document.querySelector(".ipyvirt-con .xterm-rows");
  const now = () => performance.timeOrigin + performance.now();
  const seen = { keys: [], changes: [], last: rows.textContent };
  window.__con = seen;
  document.addEventListener("keydown", () => seen.keys.push(now()), true);
  new MutationObserver(() => {
    const text = rows.textContent;
    if (text === seen.last) return;
    seen.last = text;
    const change = [now(), null];
    seen.changes.push(change);
    requestAnimationFrame(() => { change[1] = now(); });
  }).observe(rows, { childList: true, subtree: true, characterData: true });
}"""

# the rows' text changed after keydown number k
SHOWN = """k => {
  const s = window.__con;
  return s.keys.length > k && s.changes.some(c => c[0] >= s.keys[k]);
}"""

# before Lab's code: every comm message on a kernel websocket stamped as it arrives (this
# listener is added first, so it runs before Lab's handler)
WS_STAMPS = """(() => {
  const Native = window.WebSocket;
  window.__wsIn = [];
  // a comm_msg? (Lab 4's binary frame: an 8-byte count, offsets, channel, header...)
  const commMsg = (data) => {
    if (typeof data === "string") return /"msg_type": ?"comm_msg"/.test(data);
    const view = new DataView(data);
    const header = new Uint8Array(data, Number(view.getBigUint64(16, true)),
      Number(view.getBigUint64(24, true)) - Number(view.getBigUint64(16, true)));
    return new TextDecoder().decode(header).includes('"comm_msg"');
  };
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      if (String(args[0]).includes("/api/kernels/")) {
        this.addEventListener("message", (event) => {
          const at = performance.timeOrigin + performance.now();
          if (!commMsg(event.data)) return;
          const stamps = window.__wsIn;
          stamps.push(at);
          if (stamps.length > 50000) stamps.splice(0, 25000);
        });
      }
    }
  };
})();"""

# xterm.js's Terminal.write, stamped (console.js writes each output message's bytes)
WRITE_STAMPS = """async () => {
  const { Terminal } = await globalThis.__ipyvirtXterm;
  const write = Terminal.prototype.write;
  window.__writes = [];
  Terminal.prototype.write = function (...args) {
    window.__writes.push(performance.timeOrigin + performance.now());
    return write.apply(this, args);
  };
}"""

#: the steps of a keystroke, in order: the kernel's (traced there), then the page's
TRACED = (
    "keys in kernel",
    "echo in kernel",
    "send to page",
    "iopub sends",
    "comm msg in page",
    "term.write",
)
PRESS = {"x": "x", "\x7f": "Backspace"}
#: a glyph sample's stamps, in the page's clock
PAGE_STAMPS = ("key", "dom", "frame")


def browser(
    uri: str, name: str, args: argparse.Namespace, *, nodelay: bool = False, floods: bool = True
) -> dict[str, Any]:
    """Keystroke to glyph, then the flood (with *floods*), in one JupyterLab page; with
    *nodelay*, Lab's server sends on its kernel websockets with Nagle's algorithm off."""
    from _browser import NODELAY, Frames, clock_offset, lab_and_browser, lab_client, notebook_page

    out: dict[str, Any] = {"load": [load()], "nodelay": nodelay}
    frames = Frames()
    with lab_and_browser(NODELAY if nodelay else None) as (lab, chromium):
        path = lab.write_notebook(
            "console.ipynb", ["%load_ext ipyvirt", NOTEBOOK_SETUP.format(uri=uri, name=name)]
        )
        pages = notebook_page(lab, chromium, path, frames, WS_STAMPS)
        with pages as lp, lab_client(lab, path) as kc:
            page = lp.page
            rows = lp.panel.locator(".ipyvirt-con .xterm-rows")
            rows.wait_for(timeout=120_000)
            page.wait_for_function(
                "el => el.textContent.includes('#')", arg=rows.element_handle(), timeout=60_000
            )
            lp.panel.locator(".ipyvirt-con .xterm").click()
            page.keyboard.press("Control+U")
            page.wait_for_timeout(500)
            page.evaluate(OBSERVE)
            page.evaluate(WRITE_STAMPS)
            out["offset"] = clock_offset(page, time.monotonic)
            glyph = glyph_samples(page, args)
            out["load"].append(load())
            from _browser import client_print

            out["offset_end"] = clock_offset(page, time.monotonic)
            # page stamps moved onto the kernel's clock (CLOCK_MONOTONIC; against the wall
            # clock the page's drifted 40-120 ms within a run here) by the offsets' mean
            shift = (out["offset"][0] + out["offset_end"][0]) / 2
            out["glyph"] = [
                {k: (v - shift if k in PAGE_STAMPS and v is not None else v) for k, v in g.items()}
                for g in glyph
            ]
            out["trace"] = json.loads(client_print(kc, "print(json.dumps(_trace))"))
            stamps = page.evaluate("() => [window.__wsIn, window.__writes]")
            out["trace"] += [("comm msg in page", t - shift) for t in stamps[0]]
            out["trace"] += [("term.write", t - shift) for t in stamps[1]]
            page.evaluate("document.activeElement.blur()")
            if floods:
                out["flood"] = flood(kc, page, frames, (uri, name), args)
                out["load"].append(load())
    return out


def glyph_samples(page: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Type the keys in turn; each sample: the page's keydown, the rows' change, the frame."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    lost = 0
    for i in range(args.samples):
        page.keyboard.press(PRESS[KEYS[i % 2]])
        try:
            page.wait_for_function(SHOWN, arg=i, timeout=KEY_TIMEOUT_S * 5000)
        except PlaywrightTimeout:
            lost += 1
            page.keyboard.press("Control+U")
            page.wait_for_timeout(500)
        time.sleep(args.gap)
    page.wait_for_timeout(200)  # the last change's animation frame
    seen = page.evaluate("() => window.__con")
    keys, changes = seen["keys"], seen["changes"]
    out: list[dict[str, Any]] = [{"lost": True}] * lost
    for i, key in enumerate(keys):
        until = keys[i + 1] if i + 1 < len(keys) else float("inf")
        change = next((c for c in changes if key <= c[0] < until), None)
        if change is not None:
            out.append({"key": key, "dom": change[0], "frame": change[1], "lost": False})
    return out


FLOOD_STATE = "print(con.session.received, con.messages, len(con.session.raw))"


def flood(
    kc: Any, page: Any, frames: Any, guest: tuple[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    """Trivial cells and the kernel's RSS, the guest idle then flooding; the page's count of
    the console's comm messages meanwhile."""
    from _browser import client_print

    pid = int(client_print(kc, "import os; print(os.getpid())"))
    comm = client_print(kc, "print(con.model_id)").strip()
    idle = cells(kc, pid, 3.0)
    received0, messages0, _ = map(int, client_print(kc, FLOOD_STATE).split())
    busy0 = machine_jiffies()
    frames.counting = True
    wall0 = time.time() * 1000
    client_print(kc, "con.send('yes ipyvirt-flood\\n')")
    busy = cells(kc, pid, args.flood)
    client_print(kc, "con.send('\\x03')")  # ^C
    wall1 = time.time() * 1000
    busy1 = machine_jiffies()
    after = cells(kc, pid, 5.0)  # the tail drains, the prompt comes back
    # Playwright's sync API hands the page's frames over only while it is called: let it
    page.wait_for_timeout(2000)
    frames.counting = False
    received1, messages1, raw = map(int, client_print(kc, FLOOD_STATE).split())
    # the control: the same flood read by another process (the page's console loses it)
    child = subprocess.Popen(
        [sys.executable, __file__, "--flood-child", *guest, str(args.flood)],
        stdout=subprocess.PIPE,
        text=True,
    )
    busy2 = machine_jiffies()
    try:
        control = cells(kc, pid, args.flood)
    except TimeoutError:  # the kernel stopped answering: say where its threads are
        control = {"times": [], "rss": [], "cpu": [float("nan")], "stuck": py_spy_dump(pid)}
    busy3 = machine_jiffies()
    control_bytes = json.loads(child.communicate(timeout=args.flood + 60)[0].splitlines()[-1])
    mine = [f for f in frames.seen if f[3] == comm]
    in_window = [f for f in mine if wall0 <= f[1] <= wall1]
    per_second = [
        sum(1 for f in in_window if s <= f[1] - wall0 < s + 1000)
        for s in range(0, int(wall1 - wall0) - 999, 1000)
    ]
    return {
        "idle": idle,
        "busy": busy,
        "after": after,
        "bytes": received1 - received0,
        "messages": messages1 - messages0,
        "frames": len(in_window),
        "frame_bytes": sum(f[0] for f in in_window),
        "per_second": per_second,
        "seconds": (wall1 - wall0) / 1000,
        "scrollback": raw,
        "machine_busy": (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]),
        "control": control,
        "control_bytes": control_bytes["bytes"],
        "control_busy": (busy3[0] - busy2[0]) / max(1, busy3[1] - busy2[1]),
    }


def py_spy_dump(pid: int) -> str:
    """py-spy's dump of process *pid*'s threads (``pip install py-spy``), or why not."""
    import shutil
    from pathlib import Path

    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    try:
        done = subprocess.run([exe, "dump", "-p", str(pid)], capture_output=True, text=True)
    except OSError as err:
        return f"no py-spy: {err}"
    return done.stdout + done.stderr


def cells(kc: Any, pid: int, seconds: float, gap: float = 0.1) -> dict[str, list[float]]:
    """A trivial cell every *gap* s for *seconds*: each one's latency (ms, sent until the
    kernel is idle again) and the kernel's RSS (MiB) after it; the kernel's CPU (share of a
    core) meanwhile."""
    times, rss = [], []
    t0, cpu0 = time.monotonic(), cpu_seconds(pid)
    until = t0 + seconds
    while time.monotonic() < until:
        start = time.monotonic()
        kc.execute_interactive("x = 1", output_hook=lambda msg: None, timeout=30)
        times.append((time.monotonic() - start) * 1000)
        rss.append(rss_mib(pid))
        time.sleep(max(0.0, gap - (time.monotonic() - start)))
    cpu = [(cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)]
    return {"times": times, "rss": rss, "cpu": cpu}


# -- the report -----------------------------------------------------------------------------------


def stats(values: list[float]) -> str:
    return " / ".join(f"{percentile(values, p):.1f}" for p in (50, 99)) if values else "-"


def report_echo(r: dict[str, Any], args: argparse.Namespace) -> None:
    base = r["default"]
    rows = []
    for side, label in (("ipyvirt", "ipyvirt (kernel)"), ("default", "libvirt default loop")):
        v = r[side]
        cb = r["to_callback"][side]
        rest = [t - c for t, c in zip(v, cb, strict=True)]
        ratio = (
            f"{percentile(v, 50) / percentile(base, 50):.2f}x / "
            f"{percentile(v, 99) / percentile(base, 99):.2f}x"
        )
        rows.append(
            (
                label,
                f"{len(v)}" + (f" ({r['lost'][side]} lost)" if r["lost"][side] else ""),
                f"{percentile(v, 50):.2f}",
                f"{percentile(v, 90):.2f}",
                f"{percentile(v, 99):.2f}",
                f"{max(v):.2f}",
                ratio,
                f"{percentile(cb, 50):.2f} / {percentile(cb, 99):.2f}",
                f"{percentile(rest, 50):.3f} / {percentile(rest, 99):.3f}",
            )
        )
    print_table(
        (
            "loop",
            "keystrokes",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "vs default p50 / p99",
            "to the stream callback p50 / p99",
            "callback to echo p50 / p99",
        ),
        rows,
        args.markdown,
    )
    ours = r["ipyvirt"]
    p50 = percentile(ours, 50) / percentile(base, 50)
    p99 = percentile(ours, 99) / percentile(base, 99)
    print(
        f"\n{args.blocks} blocks of {args.keys} keystrokes each way, alternating, {args.gap:g} s "
        f"after each echo; load average {r['load'][0]} before, {r['load'][1]} after; machine "
        f"busy {r['busy'] * 100:.0f} % of {os.cpu_count()} cores. Target p50 <= "
        f"{ECHO_P50_RATIO:g}x: {p50:.2f}x ({verdict(p50 <= ECHO_P50_RATIO)}); p99 <= "
        f"{ECHO_P99_RATIO:g}x: {p99:.2f}x ({verdict(p99 <= ECHO_P99_RATIO)}).\n"
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def glyph_timelines(r: dict[str, Any]) -> list[dict[str, float]]:
    """Per sample, ms from the page's keydown to each step: the first of its kind after the
    step before."""
    trace = sorted((when, step) for step, when in r["trace"])
    out = []
    for s in r["glyph"]:
        if s["lost"]:
            continue
        t, at = s["key"], {}
        for step in TRACED:
            when = next((w for w, name in trace if name == step and w >= t), None)
            if when is not None and when <= s["dom"]:
                at[step] = when - s["key"]
                t = when
        at["DOM changed"] = s["dom"] - s["key"]
        if s["frame"] is not None:
            at["next frame"] = s["frame"] - s["key"]
        out.append(at)
    return out


def report_glyph(r: dict[str, Any], args: argparse.Namespace) -> None:
    lines = glyph_timelines(r)
    lost = sum(s["lost"] for s in r["glyph"])
    steps = (*TRACED, "DOM changed", "next frame")
    rows = []
    for step in steps:
        v = [at[step] for at in lines if step in at]
        rows.append(
            (
                step,
                f"{len(v)}",
                f"{percentile(v, 50):.1f}" if v else "-",
                f"{percentile(v, 99):.1f}" if v else "-",
                f"{max(v):.1f}" if v else "-",
            )
        )
    print_table(
        ("from the keydown to", "samples", "p50 ms", "p99 ms", "max ms"), rows, args.markdown
    )
    dom = [at["DOM changed"] for at in lines]
    p50, p99 = percentile(dom, 50), percentile(dom, 99)
    (offset, err), (offset_end, err_end) = r["offset"], r["offset_end"]
    print(
        f"\n{len(dom)} keystrokes ({lost} lost), x and Backspace in turn, {args.gap:g} s after "
        f"each showed; the page's clock against the kernel's moved {offset_end - offset:+.2f} "
        f"ms over the samples (measured ± {max(err, err_end):.2f} ms, the mean subtracted); "
        f"load average {r['load'][0]} before, {r['load'][1]} after. Target p50 <= "
        f"{GLYPH_P50_MS:g} ms: {p50:.1f} ({verdict(p50 <= GLYPH_P50_MS)}); p99 <= "
        f"{GLYPH_P99_MS:g} ms: {p99:.1f} ({verdict(p99 <= GLYPH_P99_MS)}).\n"
    )


def report_flood(r: dict[str, Any], args: argparse.Namespace) -> None:
    f = r["flood"]

    def cell(run: dict[str, list[float]]) -> str:
        return f"{stats(run['times'])} ({len(run['times'])} cells)"

    if "stuck" in f["control"]:
        print(
            "The kernel stopped answering in the control phase; its threads:\n"
            + f["control"]["stuck"]
        )

    def rss(run: dict[str, list[float]]) -> str:
        v = run["rss"]
        return f"{v[0]:.1f} / {max(v):.1f} / {v[-1]:.1f}" if v else "-"

    rate = f["frames"] / f["seconds"]
    busiest = max(f["per_second"], default=0)
    phases = ("idle", "busy", "after", "control")

    def kib(n: int) -> str:
        return f"{n / 1024:,.0f} KiB ({n / 1024 / args.flood:,.0f} KiB/s)"

    rows = [
        ("trivial cell p50 / p99 ms", *(cell(f[p]) for p in phases)),
        ("kernel RSS MiB start / peak / end", *(rss(f[p]) for p in phases)),
        ("kernel CPU, % of a core", *(f"{f[p]['cpu'][0] * 100:.0f}" for p in phases)),
        ("console comm msgs/s to the page (mean / busiest s)", "-", f"{rate:.1f} / {busiest}"),
        ("bytes from the guest", "-", kib(f["bytes"]), "-", kib(f["control_bytes"])),
        ("bytes in the console's comm msgs", "-", f"{f['frame_bytes'] / 1024:,.0f} KiB"),
        (
            f"machine busy, % of {os.cpu_count()} cores",
            "-",
            f"{f['machine_busy'] * 100:.0f}",
            "-",
            f"{f['control_busy'] * 100:.0f}",
        ),
    ]
    rows = [(*row, *["-"] * (5 - len(row))) for row in rows]
    print_table(
        (
            "measure",
            "guest idle",
            f"yes flood, {args.flood:g} s, in the page",
            "after ^C, 5 s",
            "the same flood read by another process (control)",
        ),
        rows,
        args.markdown,
    )
    p99 = percentile(f["busy"]["times"], 99)
    idle99, control99 = percentile(f["idle"]["times"], 99), percentile(f["control"]["times"], 99)
    start, end = f["idle"]["rss"][0], f["after"]["rss"][-1]
    print(
        f"\nA trivial cell every 0.1 s by a second client of the page's kernel; load average "
        f"{r['load'][1]} before, {r['load'][2]} after. Targets: cell p99 <= "
        f"{FLOOD_CELL_P99_MS:g} ms: {p99:.1f} ({verdict(p99 <= FLOOD_CELL_P99_MS)}; guest idle "
        f"{idle99:.1f}, the control {control99:.1f}); kernel "
        f"RSS {start:.1f} -> {end:.1f} MiB; <= {FLOOD_MSGS_PER_S:g} comm msgs/s: "
        f"{rate:.1f} (busiest second {busiest}) ({verdict(busiest <= FLOOD_MSGS_PER_S)})."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=4, help="echo blocks per loop")
    parser.add_argument("--keys", type=int, default=100, help="keystrokes per echo block")
    parser.add_argument("--gap", type=float, default=0.05, help="s after an echo, next key")
    parser.add_argument("--samples", type=int, default=100, help="keystrokes in the browser")
    parser.add_argument("--flood", type=float, default=10.0, help="s of yes")
    parser.add_argument("--no-echo", action="store_true", help="skip the kernel-side echo")
    parser.add_argument(
        "--nodelay-too",
        action="store_true",
        help="type into a second Lab too, its kernel websockets with Nagle's algorithm off",
    )
    parser.add_argument("--no-browser", action="store_true", help="skip the browser parts")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--default-loop-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--flood-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.default_loop_child:
        default_loop_child(*args.default_loop_child)
        return
    if args.flood_child:
        uri, name, seconds = args.flood_child
        flood_child(uri, name, float(seconds))
        return
    if min(args.blocks, args.keys, args.samples) < 1 or args.flood <= 0:
        parser.error("--blocks, --keys and --samples must be at least 1, --flood over 0")
    print(f"load average at start: {load()}", file=sys.stderr, flush=True)
    started = time.monotonic()
    with qemu_guest() as (uri, name):
        echoed = None if args.no_echo else echo(uri, name, args)
        shown = None if args.no_browser else browser(uri, name, args)
        nodelay = None
        if args.nodelay_too and not args.no_browser:
            nodelay = browser(uri, name, args, nodelay=True, floods=False)
    if echoed is not None:
        report_echo(echoed, args)
    if shown is not None:
        report_glyph(shown, args)
        if nodelay is not None:
            print("The same in a second Lab whose server sends with Nagle's algorithm off:\n")
            report_glyph(nodelay, args)
        report_flood(shown, args)
    print(f"\n*{time.monotonic() - started:.0f} s in all.*")


if __name__ == "__main__":
    main()
