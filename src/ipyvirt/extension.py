"""``%load_ext ipyvirt`` and ``%unload_ext ipyvirt``: everything the one does, the other undoes."""

from __future__ import annotations

import gc
import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import libvirt
from IPython.core.error import UsageError

from ipyvirt import runtime
from ipyvirt.errors import EventLoopAlreadyRegistered
from ipyvirt.lanes import running_loop
from ipyvirt.magics import VirtMagics
from ipyvirt.widgets.base import flush_pending

__all__ = ["load", "unload"]

log = logging.getLogger("ipyvirt")


def _quiet(ctx: object, error: object) -> None:
    """libvirt's default error handler prints every error to stderr, also the ones that are
    raised as exceptions a moment later: in a notebook that is noise in cell outputs."""


class _Extension:
    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.magics = VirtMagics(shell)  # Magics adds itself to shell.configurables
        self.waiting = False

    def load(self) -> None:
        libvirt.registerErrorHandler(_quiet, None)
        early = _connections_opened_before()
        self.shell.register_magics(self.magics)
        # registered first, so it runs before the hooks that cells register later
        self.shell.events.register("pre_run_cell", self._deliver)
        loop = running_loop()
        if not hasattr(self.shell, "kernel"):
            # terminal IPython runs its loop only during cells with a top-level await: never
            # bind to it, run a loop thread of our own (ipyvirt-main)
            self._start(None)
        elif loop is not None:
            self._start(loop)  # a kernel cell
        else:
            # loaded from c.InteractiveShellApp.extensions before the kernel's loop runs:
            # finish when the first cell runs, inside it
            self.waiting = True
            self.shell.events.register("pre_run_cell", self._start_in_cell)
        for uri in early:
            print(
                f"ipyvirt: the connection to {uri} was opened before %load_ext ipyvirt, so "
                "libvirt gave it no socket watch (no events, no keepalive): close and reopen it."
            )

    def _start(self, loop: Any) -> None:
        try:
            if loop is None:
                # start() takes the loop running in its thread: call it where none runs
                with ThreadPoolExecutor(1) as pool:
                    pool.submit(runtime.start).result()
            else:
                runtime.start(loop)
        except EventLoopAlreadyRegistered as err:
            self.unload()
            raise UsageError(f"ipyvirt: {err}") from None

    def _start_in_cell(self, *args: object) -> None:
        self.shell.events.unregister("pre_run_cell", self._start_in_cell)
        self.waiting = False
        try:
            self._start(running_loop())
        except UsageError as err:  # raised in a hook it would come with a traceback
            print(f"UsageError: {err}", file=sys.stderr)

    def _deliver(self, *args: object) -> None:
        """Before a cell of the main shell: deliver every event libvirt has queued.

        Run All queues every execute request at once, and the kernel may start the next
        cell before its loop has taken the turns that fire libvirt's timers.
        """
        rt = runtime.current()
        if rt is not None and rt.on_main_loop():  # a subshell's cells run on their own thread
            rt.deliver_queued()
            flush_pending()  # what the widgets show, too

    def unload(self) -> str:
        """Undo :meth:`load`; one line saying what it closed and stopped."""
        from ipyvirt.widgets import close_all
        from ipyvirt.widgets.base import LIVE

        widgets = len(LIVE)
        close_all()
        self.shell.events.unregister("pre_run_cell", self._deliver)
        connections = self.magics.close()
        before = _ipyvirt_threads()
        if self.waiting:
            self.shell.events.unregister("pre_run_cell", self._start_in_cell)
            self.waiting = False
        runtime.stop()
        while self.magics in self.shell.configurables:
            self.shell.configurables.remove(self.magics)
        line_magics = self.shell.magics_manager.magics["line"]
        if getattr(line_magics.get("virt"), "__self__", None) is self.magics:
            del line_magics["virt"]
        self.shell.magics_manager.registry.pop(type(self.magics).__name__, None)
        libvirt.registerErrorHandler(None, None)  # libvirt's default again
        stopped = sorted(set(before) - set(_ipyvirt_threads()))
        return (
            f"ipyvirt unloaded: closed {_count(widgets, 'widget')} and "
            f"{_count(connections, 'connection')}, stopped {_count(len(stopped), 'thread')}"
            + (f" ({', '.join(stopped)})" if stopped else "")
        )


def _ipyvirt_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ipyvirt")]


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


_loaded: dict[int, _Extension] = {}


def load(shell: Any) -> None:
    if id(shell) in _loaded:
        return
    ext = _Extension(shell)
    _loaded[id(shell)] = ext
    try:
        ext.load()
    except BaseException:
        _loaded.pop(id(shell), None)
        raise


def unload(shell: Any) -> None:
    ext = _loaded.pop(id(shell), None)
    if ext is not None:
        print(ext.unload())


def _connections_opened_before() -> list[str]:
    """URIs of remote libvirt connections alive now: opened without ipyvirt's loop."""
    uris = []
    for obj in gc.get_objects():
        if isinstance(obj, libvirt.virConnect) and getattr(obj, "_o", None) is not None:
            try:
                uri = obj.getURI()
            except libvirt.libvirtError:
                continue
            if not uri.startswith("test:///"):  # in-process: no socket to watch
                uris.append(uri)
    return sorted(set(uris))
