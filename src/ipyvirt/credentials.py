"""Credentials for ``libvirt.openAuth``, asked for once, never shown, never written down.

:class:`Prompt` answers libvirt's credential requests: a user name with ``input()``, a
passphrase with ``getpass.getpass()`` (in a kernel both become input requests to the
frontend, the passphrase as a password field, so it never reaches an output, the notebook
or the history). The answers stay in this object's memory, so ipyvirt can open its own
watch connection and reconnect without asking again; they appear in no repr and no log.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import Any

import libvirt

__all__ = ["Prompt"]

# libvirt's credential types that are secrets: asked without echo
_SECRET = {libvirt.VIR_CRED_PASSPHRASE, libvirt.VIR_CRED_NOECHOPROMPT}
_ASKED = [
    libvirt.VIR_CRED_AUTHNAME,
    libvirt.VIR_CRED_USERNAME,
    libvirt.VIR_CRED_PASSPHRASE,
    libvirt.VIR_CRED_ECHOPROMPT,
    libvirt.VIR_CRED_NOECHOPROMPT,
]


class Prompt:
    """libvirt's ``auth`` argument for ``openAuth``: ``[types, callback, None]``."""

    def __init__(
        self,
        ask: Callable[[str], str] = input,
        ask_secret: Callable[[str], str] = getpass.getpass,
    ) -> None:
        self._ask = ask
        self._ask_secret = ask_secret
        self._answers: dict[tuple[int, str], str] = {}

    def __repr__(self) -> str:
        return f"<ipyvirt.Prompt {len(self._answers)} answers kept>"

    def auth(self) -> list[Any]:
        return [_ASKED, self._callback, None]

    def _callback(self, credentials: list[list[Any]], opaque: Any) -> int:
        # each item: [type, prompt, challenge, defresult, result]; fill in result
        for cred in credentials:
            kind, prompt = cred[0], cred[1] or "credential"
            key = (kind, prompt)
            if key not in self._answers:
                question = f"{prompt}: " if not str(prompt).endswith(":") else f"{prompt} "
                ask = self._ask_secret if kind in _SECRET else self._ask
                self._answers[key] = ask(question)
            cred[4] = self._answers[key]
        return 0

    def forget(self) -> None:
        """Drop every answer kept."""
        self._answers.clear()


def open_with(uri: str, readonly: bool, prompt: Prompt | None) -> libvirt.virConnect:
    """``libvirt.open``/``openReadOnly``, or ``openAuth`` answering with *prompt*."""
    if prompt is None:
        return libvirt.openReadOnly(uri) if readonly else libvirt.open(uri)
    flags = libvirt.VIR_CONNECT_RO if readonly else 0
    return libvirt.openAuth(uri, prompt.auth(), flags)
