"""A guest's serial console as a non-blocking libvirt stream, served by the event loop.

:class:`ConsoleSession` opens ``virDomainOpenConsole`` on a ``VIR_STREAM_NONBLOCK`` stream
and asks libvirt for ``READABLE | ERROR | HANGUP`` through ``virStreamEventAddCallback``:
libvirt then calls back from the registered event implementation (ipyvirt's loop), never
from a thread of ours that blocks in ``recv``. Over a daemon connection (``qemu+unix://``)
the callback runs from a libvirt *timer*, so on the main loop; an in-process fd stream would
call it from an fd *watch*, on the io thread.

Cross-thread invariant: the session's state (its buffers, its waiters, its stream handle) is
read and written on the main loop's thread only. The stream callback reads the stream on
whichever thread libvirt calls it (libvirt locks the stream; reading there is what keeps a
level-triggered fd from firing again) and hands the bytes to the main loop with
``call_soon_threadsafe``, which keeps their order: one stream's callbacks all come from one
timer or one watch, so from one thread.

No RPC that may never be answered runs on the main loop's thread: a stream's abort waits for
the daemon's answer, and the daemon never answers for a stream it dropped without a word
(see ``abort_stream``), so the abort runs on a thread of its own and the loop waits for
it at most ``ABORT_WAIT`` seconds.
"""

from __future__ import annotations

import asyncio
import codecs
import re
import threading
from collections.abc import Callable
from typing import Any

import libvirt

from ipyvirt.errors import IpyvirtError
from ipyvirt.lanes import running_loop

__all__ = ["ConsoleError", "ConsoleSession", "clean"]

#: raw bytes kept for a view that renders late (its scrollback), and the text for expect()
SCROLLBACK = 256 * 1024
#: how much one callback reads before it lets the loop run something else
READ_PER_CALLBACK = 64 * 1024
#: how long closing waits for the daemon to confirm a stream's abort (it takes milliseconds;
#: waiting keeps a close followed by an open, without force, in that order at the daemon)
ABORT_WAIT = 2.0

# terminal control sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), two-byte ESC x
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
# an escape sequence cut at the end of a chunk: held back until the rest arrives
_PARTIAL = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*)?$")


class ConsoleError(IpyvirtError):
    """The console could not be opened; the message says what to do."""


def clean(text: str) -> str:
    """*text* without terminal control sequences, carriage returns and bells."""
    return _CONTROL.sub("", text).replace("\r", "").replace("\x07", "")


def abort_stream(stream: libvirt.virStream, wait: float = ABORT_WAIT) -> bool:
    """Abort *stream* on a thread of its own; wait at most *wait* s for the daemon's answer.
    True if it came.

    A console taken over with force while it floods is dropped by the daemon without a word
    to its holder (no error, no end of stream: the stream just goes quiet), and the daemon
    ignores an abort for a stream it no longer knows: libvirt then waits for the answer for
    ever. On the main loop that froze the kernel (tests/daemon/test_console_takeover.py
    caught it: the main thread in ``virStreamAbort``, the daemon idle). A thread left
    waiting stays blocked in libvirt (a daemon thread); libvirt serves the connection's
    other calls meanwhile (the test goes on opening consoles after such an abort).
    """
    done = threading.Event()

    def run() -> None:
        try:
            stream.abort()
        except libvirt.libvirtError:
            pass  # the stream had failed already: nothing to abort
        finally:
            done.set()

    threading.Thread(target=run, name="ipyvirt-stream-abort", daemon=True).start()
    return done.wait(wait)


def open_error(name: str, err: libvirt.libvirtError) -> ConsoleError:
    """One line for why the console of domain *name* could not be opened."""
    code = err.get_error_code()
    message = err.get_error_message() or str(err)
    if code == libvirt.VIR_ERR_NO_SUPPORT:
        return ConsoleError(
            f"this hypervisor driver has no consoles ({message}): "
            "use a driver with serial consoles, such as qemu"
        )
    if code == libvirt.VIR_ERR_OPERATION_DENIED:
        return ConsoleError(
            f"the console of {name} needs a read-write connection: %virt connect URI --rw "
            "(libvirt.open, not openReadOnly)"
        )
    if "active console session" in message.lower():
        return ConsoleError(
            f"another client holds the console of {name}: open it with --force "
            "(force=True) to take it over"
        )
    if code == libvirt.VIR_ERR_OPERATION_INVALID and "not running" in message:
        return ConsoleError(f"domain {name} is not running: start it, then open its console")
    return ConsoleError(f"cannot open the console of {name}: {message}")


class ConsoleSession:
    """The console of *dom*, open while the domain runs.

    Output is kept (the last *scrollback* bytes raw, for views; the same as text without
    control sequences, for :meth:`text` and :meth:`expect`) and handed to *on_output* as it
    arrives; *on_state* hears the status line change. Used on the main loop's thread.
    """

    def __init__(
        self,
        dom: libvirt.virDomain,
        loop: asyncio.AbstractEventLoop,
        *,
        force: bool = False,
        scrollback: int = SCROLLBACK,
        read_size: int = READ_PER_CALLBACK,
        per_callback: int = READ_PER_CALLBACK,
        on_output: Callable[[bytes], object] = lambda data: None,
        on_state: Callable[[str], object] = lambda status: None,
    ) -> None:
        self.dom = dom
        self.name = dom.name()
        self.loop = loop
        self.force = force
        self.scrollback = scrollback
        self.read_size = read_size  # bytes asked of one recv
        self.per_callback = per_callback  # bytes one callback reads at most
        self.on_output = on_output
        self.on_state = on_state
        self.raw = bytearray()
        self._text = ""
        self._held = ""  # an escape sequence cut at a chunk's end
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._expect_from = 0  # where the next expect() starts looking in _text
        self._waiters: list[tuple[re.Pattern[str], asyncio.Future[re.Match[str]]]] = []
        self._outbox = bytearray()  # keystrokes the stream could not take yet
        self.stream: libvirt.virStream | None = None
        self.status = "closed"
        #: bytes and chunks (reads handed over) received
        self.received = 0
        self.chunks = 0
        #: batches handed over from another thread (an in-process stream's fd watch)
        self.handed_over = 0
        self.closed = False

    # -- the stream -------------------------------------------------------------------------

    def open(self) -> None:
        """Open the console; raises :class:`ConsoleError` (one line) if it cannot."""
        stream = self.dom.connect().newStream(libvirt.VIR_STREAM_NONBLOCK)
        flags = libvirt.VIR_DOMAIN_CONSOLE_FORCE if self.force else 0
        try:
            self.dom.openConsole(None, stream, flags)
        except libvirt.libvirtError as err:
            raise open_error(self.name, err) from None
        self.attach(stream)

    def attach(self, stream: libvirt.virStream) -> None:
        """Serve *stream* (non-blocking, already opened on something) as this console's:
        :meth:`open` does it for the domain's console; the stress tests, for other streams."""
        events = (
            libvirt.VIR_STREAM_EVENT_READABLE
            | libvirt.VIR_STREAM_EVENT_ERROR
            | libvirt.VIR_STREAM_EVENT_HANGUP
        )
        stream.eventAddCallback(events, self._stream_event, None)
        self.stream = stream
        self._set_status(f"connected to {self.name}")

    def _stream_event(self, stream: libvirt.virStream, events: int, _opaque: Any) -> None:
        # on the thread libvirt calls from (see the module's invariant): read here, hand over
        chunks: list[bytes] = []
        # HANGUP or ERROR: the peer is gone, but what it wrote before may still wait to be
        # read; the stream has ended once recv says so (b"", or an error), or has nothing
        # left (-2) after a hang-up. (Ending at the HANGUP itself lost a stream's tail: the
        # stress test in tests/stress/test_console_stream.py caught it.)
        hung_up = bool(events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP))
        ended = False
        got = 0
        if events & libvirt.VIR_STREAM_EVENT_READABLE or hung_up:
            while got < self.per_callback:
                try:
                    data = stream.recv(self.read_size)
                except libvirt.libvirtError:
                    ended = True
                    break
                if data == -2:  # nothing more for now
                    ended = hung_up
                    break
                if not isinstance(data, bytes) or not data:  # b"": the guest's side closed
                    ended = True
                    break
                chunks.append(data)
                got += len(data)
        if events & libvirt.VIR_STREAM_EVENT_WRITABLE:
            chunks.append(b"")  # an empty chunk: "send what waits" (see _arrived)
        if chunks or ended:
            self._hand_over(self._arrived, stream, chunks, ended)

    def _hand_over(self, fn: Callable[..., object], *args: Any) -> None:
        if running_loop() is self.loop:
            fn(*args)
        else:
            self.handed_over += 1  # on the one thread this stream's callbacks come from
            self.loop.call_soon_threadsafe(fn, *args)

    def _arrived(self, stream: libvirt.virStream, chunks: list[bytes], ended: bool) -> None:
        if stream is not self.stream:
            return  # a stream closed meanwhile
        for chunk in chunks:
            if chunk:
                self._take(chunk)
        if self._outbox:
            self._flush_outbox()
        if ended:
            self._drop_stream(abort=True)
            self._set_status(f"disconnected: {self._why_ended()}")

    def _why_ended(self) -> str:
        try:
            running = self.dom.isActive()
        except libvirt.libvirtError:
            return "domain stopped"  # a transient domain is gone once stopped
        return "console closed (taken over by another client?)" if running else "domain stopped"

    def _take(self, chunk: bytes) -> None:
        self.received += len(chunk)
        self.chunks += 1
        self.raw += chunk
        if len(self.raw) > self.scrollback:
            del self.raw[: len(self.raw) - self.scrollback]
        text = self._held + self._decoder.decode(chunk)
        cut = _PARTIAL.search(text)
        self._held = text[cut.start() :] if cut else ""
        self._text += clean(text[: cut.start()] if cut else text)
        if len(self._text) > self.scrollback:
            drop = len(self._text) - self.scrollback
            self._text = self._text[drop:]
            self._expect_from = max(0, self._expect_from - drop)
        self._wake_waiters()
        self.on_output(chunk)

    def _drop_stream(self, *, abort: bool) -> None:
        stream, self.stream = self.stream, None
        if stream is None:
            return
        # the callback's removal frees libvirt's watch or timer; dropping the last reference
        # frees the stream (virStreamFree), and with it the console for the next client
        try:
            stream.eventRemoveCallback()
        except libvirt.libvirtError:
            pass
        if abort:
            abort_stream(stream)  # never on this thread: it may wait for ever
        self._outbox.clear()

    def close(self) -> None:
        """Let the console go: the stream, its callback and the guest's console are freed."""
        if self.closed:
            return
        self.closed = True
        self._drop_stream(abort=True)
        self._set_status("closed")
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(ConsoleError(f"the console of {self.name} was closed"))
        self._waiters.clear()

    def _set_status(self, status: str) -> None:
        self.status = status
        self.on_state(status)

    @property
    def connected(self) -> bool:
        return self.stream is not None

    # -- scripting ------------------------------------------------------------------------

    def send(self, data: str | bytes) -> None:
        """Type *data* into the console (a str is sent as UTF-8)."""
        if self.stream is None:
            raise ConsoleError(f"the console of {self.name} is {self.status}: nothing to type into")
        self._outbox += data.encode() if isinstance(data, str) else data
        self._flush_outbox()

    def _flush_outbox(self) -> None:
        stream = self.stream
        assert stream is not None, "the outbox is flushed only while a stream is open"
        while self._outbox:
            try:
                sent = stream.send(bytes(self._outbox))
            except libvirt.libvirtError:
                return  # the ERROR/HANGUP event that follows ends the stream
            if sent == -2:  # the stream is full: WRITABLE says when to go on
                self._watch(writable=True)
                return
            del self._outbox[:sent]
        self._watch(writable=False)

    def _watch(self, *, writable: bool) -> None:
        assert self.stream is not None
        events = (
            libvirt.VIR_STREAM_EVENT_READABLE
            | libvirt.VIR_STREAM_EVENT_ERROR
            | libvirt.VIR_STREAM_EVENT_HANGUP
        )
        if writable:
            events |= libvirt.VIR_STREAM_EVENT_WRITABLE
        self.stream.eventUpdateCallback(events)

    def text(self) -> str:
        """What the console printed (the last *scrollback* characters), without control
        sequences or carriage returns."""
        return self._text

    async def expect(self, pattern: str | re.Pattern[str], timeout: float = 10) -> re.Match[str]:
        """Wait until the console prints *pattern* (a str is matched literally, a compiled
        regex as itself) after the previous expect's match; the match.

        Output arrives in chunks and each one is searched as it comes, so end a pattern with
        what must follow it: ``\\n`` for a whole line. ``$`` also matches where the output so
        far ends (``^(\\d+)$`` can match the "4" of "42"), as in pexpect.

        Raises :class:`TimeoutError` after *timeout* seconds, naming what it waited for."""
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        match = self._search(regex)
        if match is not None:
            return match
        if self.closed:
            raise ConsoleError(f"the console of {self.name} was closed")
        future: asyncio.Future[re.Match[str]] = self.loop.create_future()
        entry = (regex, future)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            tail = self._text[-200:]
            wanted = pattern if isinstance(pattern, str) else regex.pattern
            raise TimeoutError(
                f"{wanted!r} did not appear on the console of {self.name} within "
                f"{timeout:g} s; its last lines: {tail!r}"
            ) from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _search(self, regex: re.Pattern[str]) -> re.Match[str] | None:
        match = regex.search(self._text, self._expect_from)
        if match is not None:
            self._expect_from = match.end()
        return match

    def _wake_waiters(self) -> None:
        for regex, future in list(self._waiters):
            if future.done():
                continue
            match = self._search(regex)
            if match is not None:
                future.set_result(match)
