"""Credentials for ``libvirt.openAuth``, asked for once, never shown, never written down.

:class:`Prompt` answers libvirt's credential requests: a user name with ``input()``, a
passphrase with ``getpass.getpass()`` (in a kernel both become input requests to the
frontend, the passphrase as a password field, so it never reaches an output, the notebook
or the history). The answers stay in this object's memory, so ipyvirt can open its own
watch connection and reconnect without asking again; they appear in no repr and no log.
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import libvirt

from ipyvirt.remote import noninteractive

__all__ = ["Prompt"]

log = logging.getLogger("ipyvirt")

# libvirt's credential types that are secrets: asked without echo
_SECRET = {libvirt.VIR_CRED_PASSPHRASE, libvirt.VIR_CRED_NOECHOPROMPT}
# Not VIR_CRED_USERNAME: libvirt's remote driver asks it only as SASL's authorization name, a
# question virsh never asks (virConnectAuthDefault leaves it out) and that any name but the
# user's own fails.
_ASKED = [
    libvirt.VIR_CRED_AUTHNAME,
    libvirt.VIR_CRED_PASSPHRASE,
    libvirt.VIR_CRED_ECHOPROMPT,
    libvirt.VIR_CRED_NOECHOPROMPT,
]


class Prompt:
    """libvirt's ``auth`` argument for ``openAuth``: ``[types, callback, None]``."""

    def __init__(
        self,
        ask: Callable[[str], str] | None = None,
        ask_secret: Callable[[str], str] | None = None,
    ) -> None:
        # None: input() and getpass.getpass() as they are when asked, not at import. A kernel
        # puts its own (input requests to the frontend) in their place only while a cell runs.
        self._ask = ask
        self._ask_secret = ask_secret
        self._answers: dict[tuple[int, str], str] = {}
        #: what went wrong asking, for open_with() to raise once libvirt has given up
        self._failure: BaseException | None = None
        #: cleared once connected: reconnecting (on a worker thread, no cell running) may
        #: only replay the answers kept, never ask
        self.asking = True

    def __repr__(self) -> str:
        return f"<ipyvirt.Prompt {len(self._answers)} answers kept>"

    def auth(self) -> list[Any]:
        return [_ASKED, self._callback, None]

    def _callback(self, credentials: list[list[Any]], opaque: Any) -> int:
        # libvirt calls this from C: an exception would be printed through sys.excepthook (a
        # traceback in the cell) and lost. Keep it; -1 makes libvirt give up.
        try:
            # each item: [type, prompt, challenge, defresult, result]; fill in result
            for cred in credentials:
                cred[4] = self._answer(cred[0], str(cred[1] or "credential"))
        except BaseException as err:  # StdinNotImplementedError, EOFError, KeyboardInterrupt
            self._failure = err
            return -1
        return 0

    def _answer(self, kind: int, prompt: str) -> str:
        key = (kind, prompt)
        if key not in self._answers:
            if not self.asking:
                raise LookupError(f"{prompt!r} was not asked when connecting")
            question = f"{prompt}: " if not prompt.endswith(":") else f"{prompt} "
            if kind in _SECRET:
                self._answers[key] = (self._ask_secret or getpass.getpass)(question)
            else:
                self._answers[key] = (self._ask or input)(question)
        return self._answers[key]

    def take_failure(self) -> BaseException | None:
        """Why the last open could not get its answers, if asking failed (once)."""
        failure, self._failure = self._failure, None
        return failure

    def forget(self) -> None:
        """Drop every answer kept."""
        self._answers.clear()


def open_with(uri: str, readonly: bool, prompt: Prompt | None) -> libvirt.virConnect:
    """``libvirt.open``/``openReadOnly``, or ``openAuth`` answering with *prompt*.

    An ``+ssh`` URI is opened with ``no_tty=1``: ssh never asks on a terminal no one sees
    (see :mod:`ipyvirt.remote`).
    """
    uri = noninteractive(uri)
    if prompt is None:
        conn = libvirt.openReadOnly(uri) if readonly else libvirt.open(uri)
    else:
        prompt.take_failure()
        flags = libvirt.VIR_CONNECT_RO if readonly else 0
        conn = libvirt.openAuth(uri, prompt.auth(), flags)
    keep_alive(conn, uri)
    return conn


#: (interval s, count): a keepalive ping after this long without a word from the daemon,
#: and the connection closed after this many unanswered (about 30 s): virsh's and the
#: daemon's own defaults. libvirt's client sends none unless asked. Without it a frozen
#: daemon (SIGSTOP, a hung host, a cable pulled) holds every call on its connection for
#: ever; with it the connection closes, the calls fail, and reconnection takes over. The
#: pings run on the event loop's timers (the main loop, between cells); a long cell delays
#: them but cannot make a live daemon look dead: any packet from it, answered on the io
#: thread meanwhile, counts as alive, and a late timer sends a ping before it gives up.
KEEPALIVE = (5, 5)


def keep_alive(conn: libvirt.virConnect, uri: str) -> bool:
    """Turn on libvirt's client keepalive (:data:`KEEPALIVE`) where there is a daemon to
    lose: every URI but the in-process test driver's (``test:///...``), whose connection
    has no peer and no keepalive. True when it is on."""
    parts = urlsplit(uri)
    if parts.scheme == "test" and not parts.netloc:
        return False
    try:
        done: int = conn.setKeepAlive(*KEEPALIVE)
        return done == 0  # 1: the daemon does not do keepalive
    except libvirt.libvirtError as err:
        log.info("ipyvirt: no keepalive on %s (%s)", uri, err)
        return False
