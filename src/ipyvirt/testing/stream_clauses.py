"""The contract's stream clauses: a ``virStream`` served through the event implementation.

libvirt serves a non-blocking stream's ``virStreamEventAddCallback`` through the registered
implementation: in process (``test:///default``'s screenshot, a file read by an fd stream)
with an fd *watch*; over a daemon with a *timer* that the client arms when the stream's data
is read off the connection's socket (itself a watch). The screenshot is the one stream both
drivers give without a guest: 1120x832 PNG, read to its end. Data both ways and a peer that
closes need a guest's console: the ``guest`` mode's clauses, on a QEMU domain whose serial
console runs a shell (:mod:`ipyvirt.testing.guest`).
"""

from __future__ import annotations

import gc
import struct
import weakref
from collections.abc import Callable
from typing import Any

import libvirt

from ipyvirt.testing.bench import Bench, ClauseFailed
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


# -- a guest's console: data both ways, and a peer that closes ---------------------------------
# Over a daemon libvirt serves a stream's callback from a timer it arms when data (or the
# stream's end) arrives on the connection's socket, and keeps that timer armed while the
# callback asks for WRITABLE (a remote stream can always take more).

#: what the guest's shell answers; its echo of the command line shows "$((40 + 2))" instead
_ASK, _ANSWER = b"echo ipyvirt-$((40 + 2))\n", b"ipyvirt-42"


def _console(b: Bench) -> tuple[str, libvirt.virDomain, libvirt.virStream]:
    """The guest's console on a non-blocking stream of a connection of the clause's own,
    taken over from whoever held it; aborted and closed after the clause."""
    assert b.guest is not None, "guest mode has a guest"
    uri, name = b.guest
    conn = libvirt.open(uri)
    b.on_exit(conn.close)
    dom = conn.lookupByName(name)
    expect(dom.isActive(), f"the guest {name} is not running: start it, and wait for its shell")
    stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
    dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
    b.on_exit(lambda: _quietly(stream.abort))
    return uri, dom, stream


def _quietly(fn: Callable[[], object]) -> None:
    try:
        fn()
    except libvirt.libvirtError:
        pass


async def _never_again(b: Bench, calls: list[int], stream: libvirt.virStream, *, ask: bool) -> None:
    """Remove the callback: nothing may reach it afterwards, not even (with *ask*) the answer
    to a command typed after the removal."""
    stream.eventRemoveCallback()
    # a dispatch another thread began before the removal returned may still end (as in
    # stream-read): count from a moment later
    await b.idle(0.05)
    seen = len(calls)
    if ask:
        _quietly(lambda: stream.send(_ASK))
    await b.idle(0.5)  # the guest answers in ~30 ms
    expect(len(calls) == seen, "the stream's callback still fires after its removal")


@clause(
    "stream-both-ways",
    "a console stream's WRITABLE carries keystrokes to the guest and READABLE its answer back",
    ("guest",),
)
async def stream_both_ways(b: Bench) -> None:
    _, _, stream = _console(b)
    received = bytearray()
    calls: list[int] = []
    writable: list[int] = []
    errors: list[str] = []
    answered, answer = b.signal()

    def on_event(st: libvirt.virStream, events: int, _opaque: Any) -> None:
        calls.append(events)
        if events & libvirt.VIR_STREAM_EVENT_WRITABLE:
            writable.append(events)
            try:
                st.send(_ASK)  # a few bytes: a remote stream takes them at once
            except libvirt.libvirtError as err:
                errors.append(f"send: {err.get_error_message()}")
            st.eventUpdateCallback(WANTED)  # typed: now only the answer
        if events & WANTED:
            while True:
                try:
                    data = st.recv(64 * 1024)
                except libvirt.libvirtError as err:
                    errors.append(f"recv: {err.get_error_message()}")
                    return
                if data == -2 or not isinstance(data, bytes):
                    break
                if not data:
                    errors.append("the console ended")
                    return
                received.extend(data)
            if _ANSWER in received:
                answer()

    stream.eventAddCallback(WANTED | libvirt.VIR_STREAM_EVENT_WRITABLE, on_event, None)
    # a shell still starting may drop what was typed before it: ask again, a few times
    for _ in range(10):
        try:
            await b.wait(answered, 3, "")
            break
        except ClauseFailed:
            expect(not errors, f"the console failed: {errors}")
            stream.eventUpdateCallback(WANTED | libvirt.VIR_STREAM_EVENT_WRITABLE)
    expect(not errors, f"the console failed: {errors}")
    expect(writable, "WRITABLE, asked for, never reached the callback: nothing was typed")
    expect(
        answered.done(),
        f"the guest's answer {_ANSWER.decode()!r} never reached the callback in 30 s "
        f"({len(received)} bytes did; callback events: {sorted(set(calls))})",
    )
    await _never_again(b, calls, stream, ask=True)


@clause(
    "stream-peer-closes",
    "when the peer closes a stream (another client takes the console), the callback hears "
    "it and reads the end; removed, it never fires",
    ("guest",),
)
async def stream_peer_closes(b: Bench) -> None:
    uri, dom, stream = _console(b)
    calls: list[int] = []
    how: list[str] = []
    ended, end = b.signal()

    def on_event(st: libvirt.virStream, events: int, _opaque: Any) -> None:
        calls.append(events)
        if how:
            return  # the end was read; the stream may stay readable until removed
        while True:
            try:
                data = st.recv(64 * 1024)
            except libvirt.libvirtError as err:
                how.append(f"a read failed: {err.get_error_message()}")
                break
            if data == -2 or not isinstance(data, bytes):
                if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
                    how.append("ERROR or HANGUP")
                    break
                return
            if not data:
                how.append("the end of the stream")
                break
        end()

    stream.eventAddCallback(WANTED, on_event, None)
    await b.idle(0.1)

    def take_over() -> None:  # another client, as `virsh console --force` would
        other = libvirt.open(uri)
        b.on_exit(other.close)
        theirs = other.newStream(libvirt.VIR_STREAM_NONBLOCK)
        other.lookupByName(dom.name()).openConsole(None, theirs, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        b.on_exit(lambda: _quietly(theirs.abort))

    # from another thread while the loop sleeps: what wakes it is the daemon's message on
    # the connection's socket (a watch), which arms the stream's timer
    b.from_thread(take_over, delay=0.05)
    await b.wait(ended, 10, "the callback to hear that the peer closed the stream")
    expect(how, "the callback was told nothing of the end")
    # a stream at its end stays readable (the error waits to be read): a callback left in
    # place would fire again and again
    await _never_again(b, calls, stream, ask=False)
