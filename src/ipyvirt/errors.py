"""The errors ipyvirt raises at its users: one base class, a sentence that says what to do."""

from __future__ import annotations


class IpyvirtError(Exception):
    """Base class of every error ipyvirt raises on purpose."""


class EventLoopAlreadyRegistered(IpyvirtError):
    """libvirt already has an event loop implementation in this process."""


class LoopNotRunning(IpyvirtError):
    """An asyncio loop was needed and none was given or running."""


class LoopBusy(IpyvirtError):
    """The event implementation is still served by a loop running in another thread."""
