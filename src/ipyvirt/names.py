"""libvirt's numbers as names: domain states and reasons, event IDs, events and details.

Built from the constants the installed libvirt-python exposes, so a newer binding's additions
show up without a code change, and a number libvirt has no name for shows as itself.
"""

from __future__ import annotations

from functools import cache
from typing import Final

import libvirt

__all__ = [
    "DOMAIN_STATES",
    "FAMILIES",
    "close_reason_name",
    "event_detail_name",
    "event_id_name",
    "event_ids",
    "event_name",
    "state_name",
    "state_reason_name",
]

#: event family -> the prefix of its event ID constants
FAMILIES: Final = {
    "domain": "VIR_DOMAIN_EVENT_ID_",
    "network": "VIR_NETWORK_EVENT_ID_",
    "pool": "VIR_STORAGE_POOL_EVENT_ID_",
    "nodedev": "VIR_NODE_DEVICE_EVENT_ID_",
    "secret": "VIR_SECRET_EVENT_ID_",
}

# family -> the prefix of its lifecycle events (VIR_DOMAIN_EVENT_STARTED ...)
_LIFECYCLE: Final = {
    "domain": "VIR_DOMAIN_EVENT_",
    "network": "VIR_NETWORK_EVENT_",
    "pool": "VIR_STORAGE_POOL_EVENT_",
    "nodedev": "VIR_NODE_DEVICE_EVENT_",
    "secret": "VIR_SECRET_EVENT_",
}

#: every domain state, listed here once, in the order ``sort by state`` and the summaries use
#: (the interesting ones first); libvirt's number for each is its ``VIR_DOMAIN_<NAME>``
DOMAIN_STATES: Final = (
    "running",
    "paused",
    "blocked",
    "pmsuspended",
    "shutdown",
    "crashed",
    "shutoff",
    "nostate",
)

# libvirt's number -> the state's name
_STATE_NUMBERS: Final = {getattr(libvirt, f"VIR_DOMAIN_{s.upper()}"): s for s in DOMAIN_STATES}


def _constants(prefix: str) -> dict[int, str]:
    """value -> lower-case suffix, for the int constants named PREFIX<SUFFIX> (no '_' inside,
    unless *prefix* ends a word: the caller's prefixes are chosen so)."""
    found: dict[int, str] = {}
    for key, value in vars(libvirt).items():
        if key.startswith(prefix) and isinstance(value, int) and not key.endswith("_LAST"):
            found.setdefault(value, key[len(prefix) :].lower())
    return found


@cache
def event_ids(family: str) -> dict[int, str]:
    """The event IDs this binding offers for *family*: ``{0: "lifecycle", 1: "reboot", ...}``."""
    return _constants(FAMILIES[family])


def event_id_name(family: str, event_id: int) -> str:
    return event_ids(family).get(event_id, str(event_id))


@cache
def _lifecycle_events(family: str) -> dict[int, str]:
    prefix = _LIFECYCLE[family]
    names: dict[int, str] = {}
    for key, value in vars(libvirt).items():
        rest = key[len(prefix) :]
        # VIR_DOMAIN_EVENT_STARTED, not VIR_DOMAIN_EVENT_STARTED_BOOTED nor ..._ID_REBOOT
        if key.startswith(prefix) and isinstance(value, int) and "_" not in rest != "LAST":
            names.setdefault(value, rest.lower())
    return names


def event_name(family: str, event: int) -> str:
    """A lifecycle event's name: ``event_name("domain", 2) == "started"``."""
    return _lifecycle_events(family).get(event, str(event))


def event_detail_name(family: str, event: int, detail: int) -> str:
    """A lifecycle event's detail: ``event_detail_name("domain", 3, 0) == "paused"``."""
    name = event_name(family, event).upper()
    found = _named(f"{_LIFECYCLE[family]}{name}_").get(detail)
    if found is None:  # events without named details (a network's) pass 0
        return "" if detail == 0 else str(detail)
    return found


def state_name(state: int) -> str:
    """A domain state: ``state_name(1) == "running"``."""
    return _STATE_NUMBERS.get(state, str(state))


def state_reason_name(state: int, reason: int) -> str:
    """Why a domain is in *state*: ``state_reason_name(3, 1) == "user"``."""
    name = _STATE_NUMBERS.get(state)
    if name is None:
        return str(reason)
    prefix = f"VIR_DOMAIN_{name.upper()}_"
    return _named(prefix).get(reason, str(reason))


@cache
def _named(prefix: str) -> dict[int, str]:
    # cached: _constants() walks every name libvirt-python has (~1,300), and decoding an
    # event comes here for every event
    return _constants(prefix)


def close_reason_name(reason: int) -> str:
    """``close_reason_name(libvirt.VIR_CONNECT_CLOSE_REASON_EOF) == "eof"``."""
    return _named("VIR_CONNECT_CLOSE_REASON_").get(reason, str(reason))
