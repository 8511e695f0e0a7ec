"""Stress: a console taken over with force, over and over, while ipyvirt's loop serves it.

A kernel holding a guest's console stopped answering just after another process took the
console over with ``VIR_DOMAIN_CONSOLE_FORCE``. The cause: taken over while it floods, a
console's stream is dropped by the daemon without a word to its holder (no error, no end:
it goes quiet), and the daemon ignores an abort for it, so ``virStreamAbort`` waits for ever;
closing the session aborted on the main loop's thread (see ``abort_stream`` in
models/console.py). Here, in one process, ipyvirt's runtime holds a :class:`ConsoleSession`
on a real guest flooding its console (``yes``), a child process on libvirt's default loop
takes it over with force, ipyvirt closes it and takes it back with force, round after round.
A watchdog thread pings the main loop: a loop silent for ``HANG`` seconds ends the process
with every thread's stack (Python's, and the native ones when gdb is there), since a thread
stuck in libvirt cannot be interrupted. Before the fix, the first round usually hung.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

import libvirt
import pytest

from guest import BANNER, QemuGuest
from ipyvirt.models import console
from ipyvirt.models.console import ConsoleSession
from ipyvirt.testing.libvirtd import Libvirtd

from inproc import Run, until

pytestmark = [pytest.mark.qemu, pytest.mark.stress]

ROUNDS = 12
#: a main loop silent this long is stuck (a busy machine delays it by a second or two)
HANG = 60.0
BOOT_TIMEOUT = 120

# The other process: libvirt's default loop on a thread; on stdin "take" opens the console
# with force and reads it (the stream it held before is dropped unaborted: an abort of a
# stream the daemon dropped would wait for ever, in libvirt's own loop as in ours); it answers
# one line, the bytes read so far.
TAKER = r"""
import os, sys, threading, libvirt
libvirt.virEventRegisterDefaultImpl()
libvirt.registerErrorHandler(lambda *a: None, None)
conn = libvirt.open(sys.argv[1])
dom = conn.lookupByName(sys.argv[2])
threading.Thread(target=lambda: [libvirt.virEventRunDefaultImpl() for _ in iter(int, 1)],
                 daemon=True).start()
got = [0]
def read(st, events, _):
    while True:
        try:
            data = st.recv(65536)
        except libvirt.libvirtError:
            return
        if not isinstance(data, bytes) or not data:
            return
        got[0] += len(data)
held = []
for line in sys.stdin:
    stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
    dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
    stream.eventAddCallback(libvirt.VIR_STREAM_EVENT_READABLE
                            | libvirt.VIR_STREAM_EVENT_ERROR
                            | libvirt.VIR_STREAM_EVENT_HANGUP, read, None)
    held.append(stream)
    print(got[0], flush=True)
os._exit(0)
"""


class Taker:
    """The child process that takes the console over."""

    def __init__(self, guest: QemuGuest) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TAKER, guest.uri, guest.name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def do(self, command: str) -> int:
        """Run *command* there (blocking: call it off the loop); the bytes it read so far."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], HANG)
        assert ready, f"the taker did not answer {command!r} within {HANG:g} s"
        line = self.proc.stdout.readline()
        assert line, f"the taker died doing {command!r}"
        return int(line)

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()


def native_stacks() -> str:
    gdb = shutil.which("gdb")
    if gdb is None:
        return "(no gdb for the native stacks)"
    done = subprocess.run(
        [gdb, "-batch", "-ex", "thread apply all bt", "-p", str(os.getpid())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout


class Watchdog:
    """Pings *loop* from a thread; a loop silent for HANG s ends the process, stacks first
    (on the terminal: pytest's capture, which os._exit would lose, is suspended)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, config: pytest.Config, daemon: Libvirtd
    ) -> None:
        self.loop = loop
        self.config = config
        self.daemon = daemon  # stopped before the exit, which skips the fixtures' teardown
        self.last = time.monotonic()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self.thread.start()

    def _beat(self) -> None:
        self.last = time.monotonic()

    def _run(self) -> None:
        while not self.stopped.wait(0.2):
            self.loop.call_soon_threadsafe(self._beat)
            silent = time.monotonic() - self.last
            if silent > HANG:
                with tempfile.TemporaryFile("w+") as out:
                    faulthandler.dump_traceback(out, all_threads=True)
                    out.seek(0)
                    python = out.read()
                report = (
                    f"\nthe main loop was silent for {silent:.0f} s: every thread's stack\n"
                    f"{python}\n{native_stacks()}\n"
                )
                capture = self.config.pluginmanager.getplugin("capturemanager")
                if capture is not None:
                    capture.suspend_global_capture(in_=True)
                sys.stderr.write(report)
                sys.stderr.flush()
                self.daemon.cleanup()
                os._exit(70)  # the stuck thread cannot be interrupted: end the run loudly

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()


@pytest.fixture
def taker(qemu_guest: QemuGuest) -> Iterator[Taker]:
    t = Taker(qemu_guest)
    yield t
    t.close()


def test_closing_a_console_taken_over_while_it_floods_never_blocks_the_loop(
    run: Run,
    qemu_guest: QemuGuest,
    taker: Taker,
    monkeypatch: pytest.MonkeyPatch,
    pytestconfig: pytest.Config,
    libvirtd_qemu: Libvirtd,
) -> None:
    answered: list[bool] = []

    def counted(stream: libvirt.virStream, wait: float = console.ABORT_WAIT) -> bool:
        answered.append(console_abort(stream, wait))
        return answered[-1]

    console_abort = console.abort_stream
    monkeypatch.setattr(console, "abort_stream", counted)

    async def rounds() -> None:
        loop = asyncio.get_running_loop()
        watchdog = Watchdog(loop, pytestconfig, libvirtd_qemu)
        conn = libvirt.open(qemu_guest.uri)
        # if the daemon drops this connection, the failure says when and why
        closed: list[str] = []
        conn.registerCloseCallback(
            lambda _c, reason, _o: closed.append(
                f"the connection closed (reason {reason}) after {len(answered)} closes"
            ),
            None,
        )
        dom = conn.lookupByName(qemu_guest.name)
        try:
            first = ConsoleSession(dom, loop, force=True)
            first.open()
            await first.expect(BANNER, timeout=BOOT_TIMEOUT)
            first.send("\nyes ipyvirt-flood\n")  # floods until the ^C at the end
            await first.expect("ipyvirt-flood\nipyvirt-flood\n", timeout=30)  # text() drops the \\r
            first.close()
            for r in range(ROUNDS):
                # ipyvirt takes the console back with force (from the other process after
                # the first round), the flood streams in
                session = ConsoleSession(dom, loop, force=True)
                session.open()
                await until(
                    lambda s=session: s.received > 0,  # type: ignore[misc]
                    f"round {r}: the flood",
                    HANG,
                )
                # the other process takes it over with force: the daemon may tell us (an
                # error on the stream) or drop our stream without a word
                await loop.run_in_executor(None, taker.do, "take")
                await asyncio.sleep(0.3)
                session.close()  # returns, whatever the daemon did with our stream
                assert session.stream is None and session.status == "closed"
        finally:
            try:
                assert not closed, closed[0]
                last = ConsoleSession(dom, loop, force=True)
                last.open()
                last.send("\x03")  # the flood ends
                last.close()
            finally:
                # stopped whatever happened: a watchdog left running outlives its loop and
                # fails the next test
                watchdog.stop()
                conn.close()

    run(rounds())
    # every close aborted its stream; the loop never waited for an answer that never came
    assert len(answered) == ROUNDS + 2
