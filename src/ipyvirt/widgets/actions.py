"""Buttons that act on the selected domains, off the kernel's loop, errors in one line."""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as widgets
import libvirt

from ipyvirt import runtime
from ipyvirt.connection import Connection
from ipyvirt.models.actions import ACTIONS
from ipyvirt.models.offloop import OffLoop
from ipyvirt.widgets.base import OnMain

__all__ = ["ACTIONS", "ActionBar"]


class ActionBar(widgets.VBox):  # type: ignore[misc]
    """start, shutdown, reboot, suspend, resume, destroy for what *selection()* returns
    (``[(uuid, name)]``). The libvirt calls run on a worker thread, never on the loop.

    *why_not(action)*, if given, says in one line why *action* does not apply to the
    selection ("" when it does): its button is disabled with that as its tooltip, and a
    click on it anyway (from code) reports it as the action's error.
    """

    def __init__(
        self,
        conn: Connection,
        selection: Callable[[], list[tuple[str, str]]],
        rt: runtime.Runtime,
        *,
        enabled: bool = True,
        why_not: Callable[[str], str] | None = None,
    ) -> None:
        self._conn = conn
        self._selection = selection
        self._on_main = OnMain(rt)
        self._rt = rt
        self._enabled = enabled
        self._why_not = why_not or (lambda action: "")
        # every click's calls run, two at a time: no limit on how many wait
        self._calls = OffLoop(rt.main_loop, name="ipyvirt-action", workers=2, limit=None)
        self.buttons = {name: widgets.Button(description=name) for name in ACTIONS}
        for name, button in self.buttons.items():
            button.on_click(lambda _, name=name: self._on_main(self._clicked, name))
        self._question = widgets.Label()
        self._confirm = widgets.Button(description="confirm", button_style="danger")
        self._cancel = widgets.Button(description="cancel")
        self._confirm.on_click(lambda _: self._on_main(self._confirmed))
        self._cancel.on_click(lambda _: self._on_main(self._ask, None))
        self._confirm_row = widgets.HBox(
            [self._question, self._confirm, self._cancel], layout={"display": "none"}
        )
        #: the last action's outcome, one line; errors start with "error:"
        self.status = widgets.HTML()
        self._pending: str | None = None
        self._targets: list[tuple[str, str]] = []
        super().__init__(
            [widgets.HBox(list(self.buttons.values())), self._confirm_row, self.status]
        )
        if not enabled:
            self.layout.display = "none"
        self.refresh(0)

    def refresh(self, selected: int) -> None:
        """Enable the buttons for *selected* domains on a read-write connection."""
        why = ""
        if self._conn.readonly:
            why = "read-only connection: %virt connect --rw (or libvirt.open) to act"
        elif not selected:
            why = "select domains first"
        for action, button in self.buttons.items():
            reason = why or (self._why_not(action) if selected else "")
            disabled = bool(reason)
            if button.disabled != disabled:
                button.disabled = disabled
            if button.tooltip != (reason or None):
                button.tooltip = reason or None

    def _clicked(self, action: str) -> None:
        targets = self._selection()
        if not targets or self._conn.readonly:
            return
        refused = self._why_not(action)
        if refused:
            self._error(f"{action} {', '.join(n for _, n in targets)}: {refused}")
            return
        if ACTIONS[action].confirm:
            self._ask(action)
        else:
            self._run(action, targets)

    def _ask(self, action: str | None) -> None:
        self._pending = action
        # confirming acts on the domains the question named, whatever the selection is by then
        self._targets = self._selection() if action is not None else []
        if action is None:
            self._confirm_row.layout.display = "none"
            return
        names = ", ".join(name for _, name in self._targets)
        self._question.value = f"{action} {names}?"
        self._confirm_row.layout.display = "flex"

    def _confirmed(self) -> None:
        action, targets = self._pending, self._targets
        self._ask(None)
        if action is not None and targets:
            self._run(action, targets)

    def _run(self, action: str, targets: list[tuple[str, str]]) -> None:
        self.status.value = html.escape(f"{action}: {', '.join(n for _, n in targets)} …")
        for uuid, name in targets:
            self._calls.submit(
                lambda uuid=uuid, name=name: self._call(action, uuid, name),  # type: ignore[misc]
                lambda error, name=name: self._done(action, name, error),  # type: ignore[misc]
                lambda err, name=name: self._done(action, name, f"{action} {name}: {err}"),  # type: ignore[misc]
            )

    def _call(self, action: str, uuid: str, name: str) -> str:
        """On a worker thread: the libvirt call; its error in one line, "" if none."""
        try:
            dom = self._conn.conn.lookupByUUIDString(uuid)
            getattr(dom, ACTIONS[action].method)()
        except libvirt.libvirtError as err:
            return f"{action} {name}: {err.get_error_message()}"
        return ""

    def _error(self, error: str) -> None:
        self.status.value = f'<span style="color:#b00">error: {html.escape(error)}</span>'

    def _done(self, action: str, name: str, error: str) -> None:
        if error:
            self._error(error)
        elif not self.status.value.startswith("<span"):
            self.status.value = html.escape(f"{action}: {name} done")

    @property
    def busy(self) -> bool:
        """An action is still running."""
        return self._calls.busy

    def close(self) -> None:
        # an action under way uses the connection: let it end before anyone may close that
        self._calls.close()
        super().close()
