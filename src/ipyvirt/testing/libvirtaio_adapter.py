"""libvirt-python's ``libvirtaio`` behind the :class:`~ipyvirt.EventImpl` interface.

So the conformance kit can hold ipyvirt and libvirtaio to the same clauses:
``python -m ipyvirt.testing ipyvirt.testing.libvirtaio_adapter:LibvirtaioImpl``.
In ``libvirt`` mode libvirtaio registers its own hooks, untouched; in ``direct`` mode this
adapter calls them with Python callables.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import libvirt

from ipyvirt.eventimpl import EventImpl, FreeCallback, HandleCallback, TimeoutCallback

__all__ = ["LibvirtaioImpl"]


@dataclass(frozen=True)
class _Opaque:
    opaque: Any
    ff: FreeCallback | None


_libvirt_free = libvirt.virEventInvokeFreeCallback


def _free(opaque: Any) -> None:
    # libvirtaio frees with libvirt.virEventInvokeFreeCallback(opaque), which expects the
    # tuple libvirt's C code builds; the adapter's Python free functions ride in an _Opaque.
    if isinstance(opaque, _Opaque):
        if opaque.ff is not None:
            opaque.ff(opaque.opaque)
    else:
        _libvirt_free(opaque)


class LibvirtaioImpl(EventImpl):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        import libvirtaio

        libvirt.virEventInvokeFreeCallback = _free
        self.inner = libvirtaio.virEventAsyncIOImpl(loop=loop)

    def register(self) -> LibvirtaioImpl:
        self.inner.register()
        return self

    def add_handle(
        self, fd: int, events: int, cb: HandleCallback, opaque: Any, ff: FreeCallback | None
    ) -> int:
        def unwrap(watch: int, fd: int, events: int, wrapped: _Opaque) -> None:
            cb(watch, fd, events, wrapped.opaque)

        return int(self.inner._add_handle(fd, events, unwrap, _Opaque(opaque, ff)))

    def update_handle(self, watch: int, events: int) -> None:
        self.inner._update_handle(watch, events)

    def remove_handle(self, watch: int) -> int:
        return int(self.inner._remove_handle(watch))

    def add_timeout(
        self, interval_ms: int, cb: TimeoutCallback, opaque: Any, ff: FreeCallback | None
    ) -> int:
        def unwrap(timer: int, wrapped: _Opaque) -> None:
            cb(timer, wrapped.opaque)

        return int(self.inner._add_timeout(interval_ms, unwrap, _Opaque(opaque, ff)))

    def update_timeout(self, timer: int, interval_ms: int) -> None:
        self.inner._update_timeout(timer, interval_ms)

    def remove_timeout(self, timer: int) -> int:
        return int(self.inner._remove_timeout(timer))
