"""What each action button does, when it asks first, and to which domain states it applies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["ACTIONS", "Action"]


@dataclass(frozen=True)
class Action:
    name: str
    #: the virDomain method it calls
    method: str
    #: whether it asks for confirmation first (it stops or restarts a guest)
    confirm: bool
    #: the domain states it applies to (names.DOMAIN_STATES)
    states: frozenset[str]


ACTIONS: Final = {
    a.name: a
    for a in (
        Action("start", "create", False, frozenset({"shutoff", "crashed"})),
        Action("shutdown", "shutdown", True, frozenset({"running"})),
        Action("reboot", "reboot", True, frozenset({"running"})),
        Action("suspend", "suspend", False, frozenset({"running"})),
        Action("resume", "resume", False, frozenset({"paused"})),
        Action("destroy", "destroy", True, frozenset({"running", "paused"})),
    )
}
