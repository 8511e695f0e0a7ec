"""The errors ipyvirt raises at its users: one base class, a sentence that says what to do."""

from __future__ import annotations

from collections.abc import Iterable


class IpyvirtError(Exception):
    """Base class of every error ipyvirt raises on purpose."""


class EventLoopAlreadyRegistered(IpyvirtError):
    """libvirt already has an event loop implementation in this process."""


class LoopNotRunning(IpyvirtError):
    """An asyncio loop was needed and none was given or running."""


class LoopBusy(IpyvirtError):
    """The event implementation is still served by a loop running in another thread."""


class NoSuchNetwork(IpyvirtError, LookupError):
    """A network name that the hypervisor does not know."""


class NoSuchPool(IpyvirtError, LookupError):
    """A storage pool name that the hypervisor does not know."""


def known_names(names: Iterable[str], shown: int = 10) -> str:
    """The names that do exist, for a "no such ..." message: the first *shown*, sorted, and
    how many there are in all when that is more."""
    known = sorted(names)
    if not known:
        return "there are none"
    more = f", ... ({len(known)} in all)" if len(known) > shown else ""
    return "there are: " + ", ".join(known[:shown]) + more
