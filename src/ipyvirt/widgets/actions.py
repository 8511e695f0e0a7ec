"""What a domain table's action buttons do: which apply and why not, the confirmation, the
libvirt calls off the kernel's loop, the outcome in one line.

Not a widget of its own: :class:`~ipyvirt.widgets.DomainTable` draws it in its one comm, and
tells it what its view asked for (a click, a confirmation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import libvirt

from ipyvirt import runtime
from ipyvirt.connection import Connection
from ipyvirt.models.actions import ACTIONS
from ipyvirt.models.offloop import OffLoop

__all__ = ["ACTIONS", "ActionBar", "Button"]

READ_ONLY = "read-only connection: %virt connect --rw (or libvirt.open) to act"
NOTHING_SELECTED = "select domains first"

#: at most this many domain names in a question or an outcome line (then "and N more")
_NAMED = 3


@dataclass(frozen=True)
class Button:
    """One action's button as the view shows it: disabled, and the tooltip saying why."""

    disabled: bool
    tooltip: str | None


@dataclass
class _Run:
    """One click's calls: what they do, to whom, how many are not done, their errors."""

    action: str
    names: list[str]
    left: int
    errors: list[str] = field(default_factory=list)


def _names(names: list[str]) -> str:
    more = f" and {len(names) - _NAMED} more" if len(names) > _NAMED else ""
    return ", ".join(names[:_NAMED]) + more


class ActionBar:
    """start, shutdown, reboot, suspend, resume, destroy for what *selection()* returns
    (``[(uuid, name)]``). The libvirt calls run on worker threads, never on the loop.

    *why_not(action)* says in one line why *action* does not apply to the selection (""
    when it does). *changed()* is called (on the main loop) whenever :attr:`question` or
    :attr:`status` changed, so the owner redraws. *route(key)*, for a table over many hosts
    (*conn* None there): the domain a selected row's key names, on its host's connection.
    """

    def __init__(
        self,
        conn: Connection | None,
        selection: Callable[[], list[tuple[str, str]]],
        rt: runtime.Runtime,
        *,
        enabled: bool = True,
        why_not: Callable[[str], str] | None = None,
        changed: Callable[[], object] = lambda: None,
        route: Callable[[str], libvirt.virDomain] | None = None,
    ) -> None:
        if conn is None and route is None:
            raise ValueError("an ActionBar needs a connection or a route")
        self._conn = conn
        self._route = route
        self._selection = selection
        self.enabled = enabled
        self._why_not = why_not or (lambda action: "")
        self._changed = changed
        # every click's calls run, two at a time: no limit on how many wait
        self._calls = OffLoop(rt.main_loop, name="ipyvirt-action", workers=2, limit=None)
        #: "destroy test?" while a confirmation is asked for, else ""
        self.question = ""
        #: the last action's outcome, one line; an error starts with "error: "
        self.status = ""
        self._pending: str | None = None
        self._targets: list[tuple[str, str]] = []
        # the latest run: only its outcome is told (an earlier run's late calls are not)
        self._latest: _Run | None = None

    def reason(self, action: str, why_not: Callable[[str], str] | None = None) -> str:
        """Why *action*'s button is disabled, one line; "" when it is enabled."""
        if self._conn is not None and self._conn.readonly:
            return READ_ONLY
        return (why_not or self._why_not)(action)

    @property
    def buttons(self) -> dict[str, Button]:
        """Each action's button as the view shows it now."""
        reasons = {action: self.reason(action) for action in ACTIONS}
        return {a: Button(bool(why), why or None) for a, why in reasons.items()}

    def click(self, action: str) -> None:
        """What a click on *action*'s button does: refused in one line, asked, or run."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
        targets = self._selection()
        refused = self.reason(action)
        if refused:
            names = _names([n for _, n in targets])
            self._say(f"error: {action}{' ' + names if names else ''}: {refused}")
        elif ACTIONS[action].confirm:
            # confirming acts on the domains the question named, whatever is selected by then
            self._pending, self._targets = action, targets
            self.question = f"{action} {_names([n for _, n in targets])}?"
            self._changed()
        else:
            self._run(action, targets)

    def confirm(self) -> None:
        """Run the action the question asked about (nothing if none is asked)."""
        action, targets = self._pending, self._targets
        self.cancel()
        if action is not None and targets:
            self._run(action, targets)

    def cancel(self) -> None:
        """Drop the question."""
        self._pending, self._targets = None, []
        if self.question:
            self.question = ""
            self._changed()

    def _say(self, status: str) -> None:
        self.status = status
        self._changed()

    def _run(self, action: str, targets: list[tuple[str, str]]) -> None:
        run = self._latest = _Run(action, [name for _, name in targets], len(targets))
        self._say(f"{action} {_names(run.names)} …")
        for uuid, name in targets:
            self._calls.submit(
                lambda uuid=uuid, name=name: self._call(action, uuid, name),  # type: ignore[misc]
                lambda error: self._done(run, error),
                lambda err, name=name: self._done(run, f"{action} {name}: {err}"),  # type: ignore[misc]
            )

    def _call(self, action: str, key: str, name: str) -> str:
        """On a worker thread: the libvirt call; its error in one line, "" if none."""
        try:
            if self._route is not None:
                dom = self._route(key)
            else:
                assert self._conn is not None, "__init__ checked: a connection or a route"
                dom = self._conn.conn.lookupByUUIDString(key)
            getattr(dom, ACTIONS[action].method)()
        except libvirt.libvirtError as err:
            return f"{action} {name}: {err.get_error_message()}"
        return ""

    def _done(self, run: _Run, error: str) -> None:
        """On the loop: one of *run*'s calls ended; its outcome once the last one has."""
        if error:
            run.errors.append(error)
        run.left -= 1
        if run.left or run is not self._latest:
            return
        if run.errors:
            more = len(run.errors) - 1
            self._say(f"error: {run.errors[0]}" + (f" (and {more} more)" if more else ""))
        else:
            self._say(f"{run.action} {_names(run.names)}: done")

    @property
    def busy(self) -> bool:
        """An action is still running."""
        return self._calls.busy

    def close(self) -> None:
        # an action under way uses the connection: let it end before anyone may close that
        self._calls.close()
