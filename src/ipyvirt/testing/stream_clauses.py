"""The contract's stream clauses: a ``virStream`` served through the event implementation.

libvirt serves a non-blocking stream's ``virStreamEventAddCallback`` through the registered
implementation: in process (``test:///default``'s screenshot, a file read by an fd stream)
with an fd *watch*; over a daemon with a *timer* that the client arms when the stream's data
is read off the connection's socket (itself a watch). The screenshot is the one stream both
drivers give without a guest: 1120x832 PNG, read to its end. Data both ways and a hang-up
from the peer need a guest's console: ``tests/daemon/test_console.py`` covers those.
"""

from __future__ import annotations

import gc
import struct
import weakref
from typing import Any

import libvirt

from ipyvirt.testing.bench import Bench
from ipyvirt.testing.clauses import clause, expect

__all__: list[str] = []

WANTED = (
    libvirt.VIR_STREAM_EVENT_READABLE
    | libvirt.VIR_STREAM_EVENT_ERROR
    | libvirt.VIR_STREAM_EVENT_HANGUP
)


class _Opaque:
    """The callback's opaque: freed (collected) only once libvirt ran the callback's free."""


async def _screenshot_stream(b: Bench, uri: str, *, check_free: bool = True) -> None:
    conn = libvirt.open(uri)
    b.on_exit(conn.close)
    dom = conn.lookupByName("test")
    if not dom.isActive():
        dom.create()
    stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
    mime = dom.screenshot(stream, 0)
    chunks: list[bytes] = []
    calls: list[int] = []
    errors: list[str] = []
    at_end: list[bool] = []  # a flag the callback's thread sets
    ended, end = b.signal()

    def readable(st: libvirt.virStream, events: int, _opaque: Any) -> None:
        calls.append(events)
        # an fd stream at its end stays readable (and then fails to read) until the callback
        # is removed: on a thread of the implementation's own, it may fire meanwhile
        if at_end:
            return
        while True:
            try:
                data = st.recv(64 * 1024)
            except libvirt.libvirtError as err:
                errors.append(err.get_error_message())
                data = b""
            if data == -2:
                return
            if not data:  # the end of the stream
                at_end.append(True)
                end()
                return
            chunks.append(data)

    opaque = _Opaque()
    freed = weakref.ref(opaque)
    stream.eventAddCallback(WANTED, readable, opaque)
    del opaque
    try:
        await b.wait(ended, 5, "the screenshot's stream to its end")
    finally:
        stream.eventRemoveCallback()
        stream.finish()
    png = b"".join(chunks)
    expect(not errors, f"reading the stream failed: {errors}")
    expect(mime == "image/png", f"the screenshot is {mime}")
    expect(png[:8] == b"\x89PNG\r\n\x1a\n", f"not a PNG: {png[:16]!r}")
    size = struct.unpack(">II", png[16:24])
    expect(size == (1120, 832), f"a {size[0]}x{size[1]} PNG, not the test driver's 1120x832")
    # A dispatch the io thread began before the removal returned may still run to its end:
    # libvirt's own loop allows that too when another thread removes a watch (it drops its
    # lock before each callback), and waiting for it inside the removal could deadlock with
    # libvirt's locks. So what is checked is that the removal takes: the fd at its end stays
    # readable, and a watch left in place would fire on every round from then on.
    await b.idle(0.05)
    seen = len(calls)
    await b.idle(0.05)
    gc.collect()
    expect(len(calls) == seen, "the stream's callback still fires after its removal")
    # libvirt-python frees the callback's data (and so the opaque) in the callback's free
    # function, which libvirt calls once the implementation freed the watch or timer
    if check_free:
        expect(freed() is None, "the removed stream callback's free function never ran")


@clause(
    "stream-read",
    "a stream's data reaches its callback to the end; removed, it is freed and never fires",
    ("libvirt",),
)
async def stream_read(b: Bench) -> None:
    await _screenshot_stream(b, "test:///default")


@clause(
    "daemon-stream-read",
    "over libvirtd, a stream's data reaches its callback to the end; removed, it never fires",
    ("daemon",),
)
async def daemon_stream_read(b: Bench) -> None:
    assert b.daemon_uri is not None
    # Over libvirtd the callback's data stays alive after its removal with every
    # implementation tried (ipyvirt's, libvirtaio): libvirt's remote stream keeps it, not the
    # loop, so the free is not a clause here.
    await _screenshot_stream(b, b.daemon_uri, check_free=False)
