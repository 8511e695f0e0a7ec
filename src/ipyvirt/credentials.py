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


# No client keepalive (``virConnectSetKeepAlive``) on the connections ipyvirt opens, on
# purpose: libvirt's client (9.0, as shipped here) breaks when a keepalive timeout closes a
# connection that more than one thread is calling on, which is what every ipyvirt widget
# does (a table's re-read, a fleet's probe, an action). The thread whose call was waiting
# on the socket gets "connection closed due to keepalive timeout"; the others stay blocked,
# the close callback never runs, and the process dies (SIGSEGV) or hangs when the daemon
# answers again or goes away. tests/daemon/test_libvirt_keepalive.py shows it with plain
# libvirt-python. Without client keepalive a frozen daemon's calls wait, and complete when
# it thaws; a daemon that dies ends them with an error and a close (eof), and ipyvirt
# reconnects. A fleet says "not responding" from its probes meanwhile. The daemon's own
# keepalive pings are answered on the io thread as before.
def open_with(uri: str, readonly: bool, prompt: Prompt | None) -> libvirt.virConnect:
    """``libvirt.open``/``openReadOnly``, or ``openAuth`` answering with *prompt*.

    An ``+ssh`` URI is opened with ``no_tty=1``: ssh never asks on a terminal no one sees
    (see :mod:`ipyvirt.remote`).
    """
    uri = noninteractive(uri)
    if prompt is None:
        return libvirt.openReadOnly(uri) if readonly else libvirt.open(uri)
    prompt.take_failure()
    flags = libvirt.VIR_CONNECT_RO if readonly else 0
    return libvirt.openAuth(uri, prompt.auth(), flags)
